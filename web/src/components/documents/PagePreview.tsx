import * as React from "react";
import { useTranslation } from "react-i18next";
import { buildUrl } from "@/lib/api";

/** A page's PNG preview, loaded only when scrolled near; renders nothing when the page has none
 * (the worker could not render it), so the page's text stands alone. */
export function PagePreview({ documentId, runId, page }: { documentId: string; runId?: string; page: number }) {
  const { t } = useTranslation();
  const [failed, setFailed] = React.useState(false);
  if (failed) return null;
  // The run in the query: a re-run renders new previews at the same path, and the browser caches them.
  const src = buildUrl(`/documents/${documentId}/pages/${page}/preview`, runId ? { run: runId } : undefined);
  return (
    <img
      src={src}
      alt={t("detail.page", { number: page })}
      loading="lazy"
      decoding="async"
      onError={() => setFailed(true)}
      className="mx-auto h-auto w-full max-w-2xl rounded-md border bg-white"
    />
  );
}
