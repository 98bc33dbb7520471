/** The documents app's reads: lists, counts, categories and tasks (TanStack Query), and cache upkeep. */
import { keepPreviousData, useQuery, type QueryClient } from "@tanstack/react-query";
import type { CategoryList, DocumentCounts, DocumentPage, DocumentStatus, DocumentType, TaskKind, TaskPage, TaskStatus } from "@/api/types";
import { api, type Query } from "@/lib/api";

export const SORT_KEYS = ["uploaded_at", "document_date", "title", "filename", "size", "status", "relevance"] as const;

export interface DocumentQuery {
  q?: string;
  status?: DocumentStatus[];
  document_type?: DocumentType[];
  category_any?: string[];
  category_all?: string[];
  sender?: string;
  date_from?: string;
  date_to?: string;
  uploaded_from?: string;
  uploaded_to?: string;
  duplicate?: boolean;
  sort?: (typeof SORT_KEYS)[number];
  order?: "asc" | "desc";
  limit?: number;
  cursor?: string | null;
}

/** Date-only inputs become the whole day in the user's zone, sent as instants. */
function dayStart(day: string | undefined): string | undefined {
  return day ? new Date(`${day}T00:00:00`).toISOString() : undefined;
}
function dayEnd(day: string | undefined): string | undefined {
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

export interface TaskQuery {
  status?: TaskStatus[];
  kind?: TaskKind[];
  created_from?: string;
  created_to?: string;
  filename?: string;
  all_users?: boolean;
  limit?: number;
  cursor?: string | null;
}

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
