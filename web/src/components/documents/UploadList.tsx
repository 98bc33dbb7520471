import * as React from "react";
import { Link } from "react-router-dom";
import { useTranslation } from "@/lib/i18n";
import { useQuery } from "@tanstack/react-query";
import { CheckCircle2, FileUp, X, XCircle } from "lucide-react";
import { Button } from "@/components/ui/button";
import { Progress } from "@/components/ui/progress";
import { StatusBadge } from "./StatusBadge";
import { api } from "@/lib/api";
import type { DocumentSummary } from "@/api/types";
import { useLiveProgress, type LiveProgress } from "@/lib/documents/live";
import { isActive, processingPercent } from "@/lib/documents/progress";
import type { UploadItem } from "@/lib/uploads";
import { cn } from "@/lib/utils";
import { formatBytes } from "@/lib/format";

const TERMINAL = ["ready", "needs_ocr", "failed"];

export function isUploadFinished(item: UploadItem, status?: string): boolean {
  return item.phase === "failed" || (item.phase === "uploaded" && (!item.documentId || TERMINAL.includes(status ?? "")));
}

/** One row's numbers, from the upload phase and then the document's status. */
export function uploadRowState(item: UploadItem, status: string | undefined, live?: LiveProgress): { percent: number; stage: string } {
  if (item.phase === "waiting") return { percent: 0, stage: "waiting" };
  if (item.phase === "uploading") // The request carries a little more than the file (multipart framing): never past 100 %.
  if (item.phase === "uploading") return { percent: item.size ? Math.min(100, Math.round((100 * item.loaded) / item.size)) : 0, stage: "uploading" };
  if (item.phase === "failed") return { percent: 100, stage: "failed_upload" };
  const s = live?.status ?? status ?? "queued";
  return { percent: processingPercent(s, live), stage: s };
}

function UploadRow({ item, onDismiss }: { item: UploadItem; onDismiss: () => void }) {
  const { t, i18n } = useTranslation();
  const live = useLiveProgress()[item.documentId ?? ""];
  const doc = useQuery({
    queryKey: ["documents", "one-summary", item.documentId],
    queryFn: () => api<DocumentSummary>(`/documents/${item.documentId}`),
    enabled: item.phase === "uploaded" && !!item.documentId,
    // Polling is the fallback when the live stream is not there; it stops at a terminal status.
    refetchInterval: (q) => (q.state.data && !isActive(q.state.data.status) ? false : 3000),
  });
  const status = live?.status && isActive(doc.data?.status ?? "queued") ? live.status : (doc.data?.status ?? live?.status);
  const { percent, stage } = uploadRowState(item, status, live);
  const failed = item.phase === "failed" || stage === "failed";
  const done = stage === "ready" || stage === "needs_ocr";
  const label =
    item.phase === "uploading"
      ? t("upload.uploading", { percent })
      : item.phase === "waiting"
        ? t("upload.waiting")
        : item.phase === "failed"
          ? t("upload.failed")
          : live?.page && live?.pages && stage === "extracting"
            ? t("upload.page_of", { page: live.page, pages: live.pages })
            : live?.pages && stage === "ocr"
              ? t("upload.ocr_page_of", { page: live.page ?? 0, pages: live.pages })
            : t(`status.${stage}`, { defaultValue: stage });
  return (
    <li className="grid grid-cols-1 gap-1.5 py-3" data-testid="upload-row" data-stage={stage}>
      <div className="flex items-center gap-2">
        {failed ? <XCircle className="h-4 w-4 shrink-0 text-destructive" aria-hidden /> : done ? <CheckCircle2 className="h-4 w-4 shrink-0 text-success" aria-hidden /> : <FileUp className="h-4 w-4 shrink-0 text-muted-foreground" aria-hidden />}
        {item.documentId ? (
          <Link to={`/documents/${item.documentId}`} className="min-w-0 flex-1 truncate text-sm font-medium hover:underline">{item.filename}</Link>
        ) : (
          <span className="min-w-0 flex-1 truncate text-sm font-medium">{item.filename}</span>
        )}
        <span className="hidden text-xs text-muted-foreground sm:inline">{formatBytes(item.size, i18n.language)}</span>
        {status && item.phase === "uploaded" ? <StatusBadge status={status} /> : null}
        <Button variant="ghost" size="icon" className="h-7 w-7" onClick={onDismiss} aria-label={t("upload.dismiss", { name: item.filename })}>
          <X />
        </Button>
      </div>
      <Progress
        value={percent}
        aria-label={t("upload.progress_of", { name: item.filename })}
        indicatorClassName={cn(failed && "bg-destructive", done && "bg-success")}
      />
      <p className={cn("text-xs", failed ? "text-destructive" : "text-muted-foreground")} aria-live="polite">
        {label}
        {item.duplicate && ` · ${t("upload.duplicate")}`}
        {item.phase === "failed" && item.error && ` — ${item.error === "interrupted" ? t("upload.interrupted") : item.error}`}
        {stage === "failed" && doc.data?.failure_reason && ` — ${t(`reason.${doc.data.failure_reason}`, { defaultValue: doc.data.failure_reason })}`}
      </p>
    </li>
  );
}

export function UploadList({ items, onDismiss, onClearFinished }: { items: UploadItem[]; onDismiss: (key: string) => void; onClearFinished?: () => void }) {
  const { t } = useTranslation();
  if (items.length === 0) return null;
  return (
    <section aria-label={t("upload.list_label")} className="rounded-xl border bg-card px-4">
      <div className="flex items-center justify-between pt-3">
        <h2 className="text-sm font-semibold">{t("upload.list_title", { count: items.length })}</h2>
        {onClearFinished && (
          <Button variant="ghost" size="sm" onClick={onClearFinished}>
            {t("upload.clear_finished")}
          </Button>
        )}
      </div>
      <ul className="divide-y">
        {items.map((item) => (
          <UploadRow key={item.key} item={item} onDismiss={() => onDismiss(item.key)} />
        ))}
      </ul>
    </section>
  );
}

export function UploadDropzone({ onFiles }: { onFiles: (files: File[]) => void }) {
  const { t } = useTranslation();
  const input = React.useRef<HTMLInputElement>(null);
  const [over, setOver] = React.useState(false);
  return (
    <div
      onDragOver={(e) => {
        e.preventDefault();
        setOver(true);
      }}
      onDragLeave={() => setOver(false)}
      onDrop={(e) => {
        e.preventDefault();
        setOver(false);
        const files = Array.from(e.dataTransfer.files);
        if (files.length) onFiles(files);
      }}
      className={cn(
        "flex flex-col items-center justify-center gap-2 rounded-xl border-2 border-dashed p-6 text-center transition-colors",
        over ? "border-primary bg-primary/5" : "border-border",
      )}
      data-testid="dropzone"
    >
      <FileUp className="h-7 w-7 text-muted-foreground" aria-hidden />
      <p className="text-sm font-medium">{t("upload.drop_here")}</p>
      <p className="text-xs text-muted-foreground">{t("upload.drop_hint")}</p>
      <input
        ref={input}
        id="upload-input"
        type="file"
        accept="application/pdf,.pdf,image/jpeg,image/png,image/tiff,.jpg,.jpeg,.png,.tif,.tiff"
        multiple
        className="sr-only"
        onChange={(e) => {
          const files = Array.from(e.target.files ?? []);
          if (files.length) onFiles(files);
          e.target.value = "";
        }}
      />
      <Button variant="outline" size="sm" onClick={() => input.current?.click()}>
        {t("upload.choose_files")}
      </Button>
    </div>
  );
}
