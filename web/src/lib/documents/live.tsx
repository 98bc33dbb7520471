/**
 * Live progress of the signed-in user's documents: `GET /api/v1/events` (server-sent events).
 * The gateway sends one kind of event, `progress`, whose data is a `DocumentProgress`
 * (gateway/routes/events.py); anything else on the stream (comments, keep-alives) is ignored.
 */
import * as React from "react";
import { useQueryClient } from "@tanstack/react-query";
import type { DocumentProgress } from "@/api/types";
import { buildUrl } from "@/lib/api";

/** What the app knows live about one document: its latest progress event. */
export type LiveProgress = DocumentProgress;
type ProgressMap = Record<string, LiveProgress>;

export const PROGRESS_EVENT = "progress";
const RECONNECT_MS = 3000;
const LiveContext = React.createContext<ProgressMap>({});

export function useLiveProgress(): ProgressMap {
  return React.useContext(LiveContext);
}

/** The event's data if it is a progress event of the gateway's shape, else null (never throws). */
export function parseProgress(data: string): DocumentProgress | null {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return null;
  }
  const p = value as Partial<DocumentProgress> | null;
  if (!p || typeof p !== "object" || typeof p.document_id !== "string" || typeof p.status !== "string") return null;
  return p as DocumentProgress;
}

/** Follows the event stream while `enabled`: progress per document, and a refresh of the document and
 * task queries whenever a document changes status. */
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
    const onProgress = (ev: MessageEvent<string>) => {
      const p = parseProgress(ev.data);
      if (!p) return;
      setProgress((prev) => {
        if (prev[p.document_id]?.status !== p.status) invalidate();
        return { ...prev, [p.document_id]: p };
      });
    };
    const connect = () => {
      if (stopped) return;
      source = new EventSource(buildUrl("/events"), { withCredentials: true });
      source.addEventListener(PROGRESS_EVENT, onProgress);
      source.onerror = () => {
        source?.close();
        // Reconnect with a pause: the gateway may be restarting or the token refreshing.
        retry = setTimeout(connect, RECONNECT_MS);
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
