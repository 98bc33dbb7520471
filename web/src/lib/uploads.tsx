import * as React from "react";
import { useQueryClient } from "@tanstack/react-query";
import { ApiError, buildUrl, csrfToken, envelopeError, refreshSession } from "./api";
import type { DocumentSummary, UploadBatch } from "@/api/types";

export interface UploadItem {
  key: string;
  filename: string;
  size: number;
  loaded: number;
  phase: "waiting" | "uploading" | "uploaded" | "failed";
  documentId?: string;
  duplicate?: boolean;
  error?: string;
}

interface UploadsState {
  items: UploadItem[];
  add: (files: File[]) => void;
  dismiss: (key: string) => void;
  dismissDocuments: (documentIds: string[]) => void;
  clearFinished: (isFinished: (item: UploadItem) => boolean) => void;
}

const STORAGE_KEY = "atrium.uploads";
const PARALLEL = 2;
const UploadsContext = React.createContext<UploadsState | null>(null);

function restore(): UploadItem[] {
  try {
    const saved = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? "[]") as UploadItem[];
    // An upload cut off by the reload never finished: say so instead of showing it stuck.
    return saved.map((i) => (i.phase === "uploading" || i.phase === "waiting" ? { ...i, phase: "failed", error: "interrupted" } : i));
  } catch {
    return [];
  }
}

/** What one file's `POST /documents` came to: its document (maybe a duplicate), or why it was refused. */
export function uploadedDocument(batch: UploadBatch): { document?: DocumentSummary; duplicate?: boolean; error?: string } {
  const first = batch.documents[0];
  if (first) return { document: first.document, duplicate: first.duplicate };
  return batch.errors.length ? { error: batch.errors[0].message } : {};
}

export interface UploadHandle {
  promise: Promise<unknown>;
  abort: () => void;
}

/** XHR, not fetch: only XHR reports upload progress. */
export function uploadWithProgress(
  path: string,
  form: FormData,
  onProgress: (loaded: number, total: number) => void,
  method = "POST",
): UploadHandle {
  const xhr = new XMLHttpRequest();
  const promise = new Promise<unknown>((resolve, reject) => {
    const start = (retried: boolean) => {
      xhr.open(method, buildUrl(path));
      xhr.withCredentials = true;
      xhr.setRequestHeader("Accept", "application/json");
      const token = csrfToken();
      if (token) xhr.setRequestHeader("X-CSRF-Token", token);
      xhr.upload.onprogress = (e) => {
        if (e.lengthComputable) onProgress(e.loaded, e.total);
      };
      xhr.onload = async () => {
        if (xhr.status === 401 && !retried && (await refreshSession())) {
          start(true);
          return;
        }
        let body: unknown = null;
        try {
          body = xhr.responseText ? JSON.parse(xhr.responseText) : null;
        } catch {
          body = null;
        }
        if (xhr.status >= 200 && xhr.status < 300) resolve(body);
        else {
          reject(envelopeError(xhr.status, body, xhr.statusText || "Upload failed"));
        }
      };
      xhr.onerror = () => reject(new ApiError(0, "network", "The connection failed. Check your network and try again."));
      xhr.onabort = () => reject(new ApiError(0, "aborted", "Upload cancelled."));
      xhr.send(form);
    };
    start(false);
  });
  return { promise, abort: () => xhr.abort() };
}

export function UploadsProvider({ children }: { children: React.ReactNode }) {
  const qc = useQueryClient();
  const [items, setItems] = React.useState<UploadItem[]>(restore);
  const files = React.useRef(new Map<string, File>());
  const active = React.useRef(0);

  React.useEffect(() => {
    try {
      sessionStorage.setItem(STORAGE_KEY, JSON.stringify(items.slice(-100)));
    } catch {
      /* storage full or blocked: the list just won't survive a reload */
    }
  }, [items]);

  const update = React.useCallback((key: string, patch: Partial<UploadItem>) => {
    setItems((prev) => prev.map((i) => (i.key === key ? { ...i, ...patch } : i)));
  }, []);

  const queue = React.useRef<string[]>([]);
  const pump = React.useCallback(() => {
    while (active.current < PARALLEL && queue.current.length > 0) {
      const key = queue.current.shift()!;
      const file = files.current.get(key);
      if (!file) continue;
      active.current += 1;
      update(key, { phase: "uploading" });
      const form = new FormData();
      form.append("file", file, file.name);
      const handle = uploadWithProgress("/documents", form, (loaded) => update(key, { loaded }));
      handle.promise
        .then((body) => {
          const r = uploadedDocument(body as UploadBatch);
          if (r.error) throw new Error(r.error);
          update(key, { phase: "uploaded", loaded: file.size, documentId: r.document?.id, duplicate: r.duplicate });
          void qc.invalidateQueries({ queryKey: ["documents"] });
        })
        .catch((e: unknown) => update(key, { phase: "failed", error: e instanceof ApiError || e instanceof Error ? e.message : String(e) }))
        .finally(() => {
          files.current.delete(key);
          active.current -= 1;
          pump();
        });
    }
  }, [qc, update]);

  const add = React.useCallback(
    (list: File[]) => {
      const fresh = list.map((f) => {
        const key = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
        files.current.set(key, f);
        return { key, filename: f.name, size: f.size, loaded: 0, phase: "waiting" as const };
      });
      setItems((prev) => [...prev, ...fresh]);
      queue.current.push(...fresh.map((f) => f.key));
      pump();
    },
    [pump],
  );

  const dismiss = React.useCallback((key: string) => setItems((prev) => prev.filter((i) => i.key !== key)), []);
  const dismissDocuments = React.useCallback(
    (ids: string[]) => setItems((prev) => prev.filter((i) => !i.documentId || !ids.includes(i.documentId))),
    [],
  );
  const clearFinished = React.useCallback((isFinished: (i: UploadItem) => boolean) => setItems((prev) => prev.filter((i) => !isFinished(i))), []);

  return <UploadsContext.Provider value={{ items, add, dismiss, dismissDocuments, clearFinished }}>{children}</UploadsContext.Provider>;
}

export function useUploads(): UploadsState {
  const ctx = React.useContext(UploadsContext);
  if (!ctx) throw new Error("useUploads outside UploadsProvider");
  return ctx;
}
