/** The documents app's reads: lists, counts, categories and tasks (TanStack Query), and cache upkeep. */
import { keepPreviousData, useQuery, type QueryClient } from "@tanstack/react-query";
import type { CategoryList, DocumentCounts, DocumentPage, DocumentsQuery, TaskPage, TasksQuery } from "@/api/types";
import { api, type Query } from "@/lib/api";

/** The list's query as the page holds it: the API's parameters, with the upload dates as days (`YYYY-MM-DD`). */
export type DocumentQuery = DocumentsQuery;

/** Date-only inputs become the whole day in the user's zone, sent as instants. */
function dayStart(day: string | null | undefined): string | undefined {
  return day ? new Date(`${day}T00:00:00`).toISOString() : undefined;
}
function dayEnd(day: string | null | undefined): string | undefined {
  return day ? new Date(`${day}T23:59:59.999`).toISOString() : undefined;
}

export function documentQueryParams(q: DocumentQuery): Query {
  return { ...q, uploaded_from: dayStart(q.uploaded_from), uploaded_to: dayEnd(q.uploaded_to) };
}

/** After a delete: drop the deleted documents' own queries (they would only 404) and refresh the lists. */
export function forgetDocuments(qc: QueryClient, ids: string[]): void {
  const gone = new Set(ids);
  const isGone = (key: readonly unknown[]) => key[0] === "documents" && gone.has(String(key[2]));
  qc.removeQueries({ predicate: (q) => isGone(q.queryKey) });
  void qc.invalidateQueries({ queryKey: ["documents"], predicate: (q) => !isGone(q.queryKey) });
  void qc.invalidateQueries({ queryKey: ["categories"] });
  void qc.invalidateQueries({ queryKey: ["tasks"] });
}

export function useDocuments(q: DocumentQuery, opts: { refetchInterval?: number | false } = {}) {
  return useQuery({
    queryKey: ["documents", "list", q],
    queryFn: ({ signal }) => api<DocumentPage>("/documents", { query: documentQueryParams(q), signal }),
    placeholderData: keepPreviousData,
    refetchInterval: opts.refetchInterval,
  });
}

/** One request for the dashboard's counts; live events refresh it (every "documents" query) as statuses change. */
export function useDocumentCounts() {
  return useQuery({
    queryKey: ["documents", "counts"],
    queryFn: ({ signal }) => api<DocumentCounts>("/documents/counts", { signal }),
    refetchInterval: 10_000,
  });
}

export function useCategories() {
  return useQuery({
    queryKey: ["categories"],
    queryFn: async ({ signal }) => (await api<CategoryList>("/categories", { signal })).items,
  });
}

/** The task list's query as the page holds it: the API's parameters, with the creation dates as days. */
export type TaskQuery = TasksQuery;

export function taskQueryParams(q: TaskQuery): Query {
  return { ...q, created_from: dayStart(q.created_from), created_to: dayEnd(q.created_to), all_users: q.all_users || undefined };
}

export function useTasks(q: TaskQuery) {
  return useQuery({
    queryKey: ["tasks", "list", q],
    queryFn: ({ signal }) => api<TaskPage>("/tasks", { query: taskQueryParams(q), signal }),
    placeholderData: keepPreviousData,
  });
}
