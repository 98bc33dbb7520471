/** Where a document is in its pipeline, for progress bars: from its status and the live progress events. */
import type { DocumentStatus } from "@/api/types";
import type { LiveProgress } from "./live";

/** Statuses of a document still being worked on (the pipeline's non-terminal steps). */
export const ACTIVE_STATUSES: readonly string[] = ["queued", "extracting", "ocr", "analyzing"] satisfies DocumentStatus[];

export function isActive(status: string | undefined): boolean {
  return ACTIVE_STATUSES.includes(status ?? "");
}

/** Percent of a document's pipeline: extraction fills most of the bar page by page, analysis the rest. */
export function processingPercent(status: string | undefined, live?: LiveProgress): number {
  if (status === "ready" || status === "needs_ocr" || status === "failed") return 100;
  if (status === "analyzing" || live?.stage === "analyze") return 85;
  // Extraction takes 5-35 %, OCR (which takes longer per page) 35-80 %.
  if (status === "ocr") return Math.round(35 + (45 * (live?.page ?? 0)) / Math.max(live?.pages ?? 1, 1));
  if (live?.page && live?.pages) return Math.round(5 + (30 * live.page) / live.pages);
  if (status === "extracting") return 10;
  return 3;
}
