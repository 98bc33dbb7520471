import * as React from "react";
import { keepPreviousData, useQuery, useQueryClient, type QueryClient } from "@tanstack/react-query";
import { useTranslation } from "react-i18next";
import { Badge } from "@/components/ui/badge";
import { api, buildUrl } from "./api";

export const STATUSES = ["queued", "extracting", "analyzing", "ready", "needs_ocr", "failed"] as const;
export type DocumentStatus = (typeof STATUSES)[number];
export const DOCUMENT_TYPES = ["invoice", "receipt", "contract", "letter", "bank_statement", "payslip", "tax_document", "other"] as const;
export const TASK_STATUSES = ["queued", "running", "succeeded", "failed", "superseded"] as const;
export const TASK_KINDS = ["extract", "analyze", "reprocess"] as const;
export const SORT_KEYS = ["uploaded_at", "document_date", "title", "filename", "size", "status", "relevance"] as const;
export const ACTIVE_STATUSES: string[] = ["queued", "extracting", "analyzing"];

export interface CategoryRef {
  id: string;
  name: string;
  source?: "ai" | "user"; // ai: suggested by the analysis
}

export interface DocumentSummary {
  id: string;
  filename: string;
  size: number;
  sha256?: string;
  status: DocumentStatus;
  failure_reason?: string | null;
  failure_message?: string | null;
  duplicate_of?: string | null;
  page_count?: number | null;
  document_type?: string | null;
  title?: string | null;
  document_date?: string | null;
  sender?: string | null;
  total_amount?: string | number | null;
  currency?: string | null;
  categories: CategoryRef[];
  uploaded_at: string;
  updated_at?: string;
  run_id?: string;
  snippet?: string | null;
}

export interface FieldValue {
  value: unknown;
  source: "model" | "user";
  provider?: string | null;
  model?: string | null;
  task_id?: string | null;
  updated_at?: string | null;
}

export interface Task {
  id: string;
  document_id?: string | null;
  filename?: string;
  run_id?: string;
  kind: string;
  status: string;
  attempt?: number;
  worker?: string | null;
  created_at?: string;
  started_at?: string | null;
  finished_at?: string | null;
  duration_ms?: number | null;
  error?: string | null;
  reason?: string | null;
  provider?: string | null;
  model?: string | null;
  tokens_in?: number | null;
  tokens_out?: number | null;
  owner_id?: string | null;
}

export interface DocumentDetail extends DocumentSummary {
  pages: { number: number; text: string; tables: (string | null)[][][] }[];
  metadata?: Record<string, unknown> | null;
  needs_ocr?: boolean;
  fields: Record<string, FieldValue>;
  tasks: Task[];
  preview_pages?: number; // pages 1..n may have a PNG preview
  pending_suggestions?: string[]; // suggested category names awaiting the user's accept/reject
}

export interface Page<T> {
  items: T[];
  total: number;
  next_cursor?: string | null;
}

export interface Category {
  id: string;
  name: string;
  document_count?: number;
  created_at?: string;
}

export interface DocumentQuery {
  q?: string;
  status?: string[];
  document_type?: string[];
  category_any?: string[];
  category_all?: string[];
  sender?: string;
  date_from?: string;
  date_to?: string;
  uploaded_from?: string;
  uploaded_to?: string;
  duplicate?: boolean;
  sort?: string;
  order?: "asc" | "desc";
  limit?: number;
  cursor?: string | null;
}

export function documentQueryParams(q: DocumentQuery): Record<string, string | number | boolean | string[] | null | undefined> {
  return {
    ...q,
    // Date-only inputs become the whole day in the user's zone, sent as instants.
    uploaded_from: q.uploaded_from ? new Date(`${q.uploaded_from}T00:00:00`).toISOString() : undefined,
    uploaded_to: q.uploaded_to ? new Date(`${q.uploaded_to}T23:59:59.999`).toISOString() : undefined,
  };
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
    queryFn: ({ signal }) => api<Page<DocumentSummary>>("/documents", { query: documentQueryParams(q), signal }),
    placeholderData: keepPreviousData,
    refetchInterval: opts.refetchInterval,
  });
}

export function useDocumentCounts() {
  return useQuery({
    queryKey: ["documents", "counts"],
    queryFn: async () => {
      const pairs = await Promise.all(
        STATUSES.map(async (s) => [s, (await api<Page<DocumentSummary>>("/documents", { query: { status: [s], limit: 1 } })).total] as const),
      );
      return Object.fromEntries(pairs) as Record<DocumentStatus, number>;
    },
    refetchInterval: 10_000,
  });
}

export function useCategories() {
  return useQuery({
    queryKey: ["categories"],
    queryFn: async () => {
      const data = await api<{ items: Category[] } | Category[]>("/categories");
      return Array.isArray(data) ? data : data.items;
    },
  });
}

export interface TaskQuery {
  status?: string[];
  kind?: string[];
  created_from?: string;
  created_to?: string;
  filename?: string;
  all_users?: boolean;
  limit?: number;
  cursor?: string | null;
}

export function taskQueryParams(q: TaskQuery) {
  return {
    ...q,
    created_from: q.created_from ? new Date(`${q.created_from}T00:00:00`).toISOString() : undefined,
    created_to: q.created_to ? new Date(`${q.created_to}T23:59:59.999`).toISOString() : undefined,
    all_users: q.all_users || undefined,
  };
}

export function useTasks(q: TaskQuery) {
  return useQuery({
    queryKey: ["tasks", "list", q],
    queryFn: ({ signal }) => api<Page<Task>>("/tasks", { query: taskQueryParams(q), signal }),
    placeholderData: keepPreviousData,
  });
}

const STATUS_VARIANT: Record<string, "success" | "warning" | "destructive" | "info" | "secondary" | "outline"> = {
  ready: "success",
  succeeded: "success",
  needs_ocr: "warning",
  failed: "destructive",
  queued: "secondary",
  extracting: "info",
  analyzing: "info",
  running: "info",
  superseded: "outline",
};

export function StatusBadge({ status }: { status: string }) {
  const { t } = useTranslation();
  return (
    <Badge variant={STATUS_VARIANT[status] ?? "outline"} data-status={status}>
      {t(`status.${status}`, { defaultValue: status })}
    </Badge>
  );
}

export interface LiveProgress {
  document_id: string;
  status?: string;
  stage?: string;
  page?: number | null;
  pages?: number | null;
  message?: string;
}

type ProgressMap = Record<string, LiveProgress>;
const LiveContext = React.createContext<ProgressMap>({});

export function useLiveProgress(): ProgressMap {
  return React.useContext(LiveContext);
}

/** Percent of a document's pipeline: extraction fills most of the bar page by page, analysis the rest. */
export function processingPercent(status: string | undefined, live?: LiveProgress): number {
  if (status === "ready" || status === "needs_ocr" || status === "failed") return 100;
  if (status === "analyzing" || live?.stage === "analyze") return 85;
  if (live?.page && live?.pages) return Math.round(5 + (70 * live.page) / live.pages);
  if (status === "extracting") return 10;
  return 3;
}

/**
 * Follows `/api/v1/events` (server-sent events) while signed in: progress per document into a map,
 * and a refresh of document queries whenever a document changes status.
 */
export function LiveEventsProvider({ enabled, children }: { enabled: boolean; children: React.ReactNode }) {
  const qc = useQueryClient();
  const [progress, setProgress] = React.useState<ProgressMap>({});
  React.useEffect(() => {
    if (!enabled || typeof EventSource === "undefined") return;
    let source: EventSource | null = null;
    let retry: ReturnType<typeof setTimeout> | undefined;
    let stopped = false;
    let invalidateTimer: ReturnType<typeof setTimeout> | undefined;
    const invalidate = () => {
      // Many pages arrive in a burst: refresh the lists once per burst, not per message.
      if (invalidateTimer) return;
      invalidateTimer = setTimeout(() => {
        invalidateTimer = undefined;
        void qc.invalidateQueries({ queryKey: ["documents"] });
        void qc.invalidateQueries({ queryKey: ["tasks"] });
      }, 400);
    };
    const handle = (ev: MessageEvent) => {
      let data: Record<string, unknown>;
      try {
        data = JSON.parse(ev.data);
      } catch {
        return;
      }
      const inner = (data.data && typeof data.data === "object" ? data.data : data) as Record<string, unknown>;
      const id = String(inner.document_id ?? inner.id ?? "");
      if (!id) return;
      setProgress((prev) => {
        const before = prev[id];
        const next: LiveProgress = {
          ...before,
          document_id: id,
          status: (inner.status as string) ?? before?.status,
          stage: (inner.stage as string) ?? before?.stage,
          page: (inner.page as number) ?? before?.page,
          pages: (inner.pages as number) ?? before?.pages,
          message: (inner.message as string) ?? before?.message,
        };
        if (before?.status !== next.status) invalidate();
        return { ...prev, [id]: next };
      });
    };
    const connect = () => {
      if (stopped) return;
      source = new EventSource(buildUrl("/events"), { withCredentials: true });
      source.onmessage = handle;
      for (const name of ["progress", "status", "document", "update"]) source.addEventListener(name, handle as EventListener);
      source.onerror = () => {
        source?.close();
        // Reconnect with a pause: the gateway may be restarting or the token refreshing.
        retry = setTimeout(connect, 3000);
      };
    };
    connect();
    return () => {
      stopped = true;
      source?.close();
      if (retry) clearTimeout(retry);
      if (invalidateTimer) clearTimeout(invalidateTimer);
    };
  }, [enabled, qc]);
  return <LiveContext.Provider value={progress}>{children}</LiveContext.Provider>;
}
