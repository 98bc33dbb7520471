import * as React from "react";
import { useTranslation } from "@/lib/i18n";
import { buildUrl } from "@/lib/api";

/** A page's PNG preview, loaded only when scrolled near; renders nothing when the page has none
 * (the worker could not render it), so the page's text stands alone. The first view of a page is
 * rendered on demand (a tenth of a second or so): until it arrives, a page-shaped placeholder keeps
 * the layout from jumping. */
export function PagePreview({ documentId, runId, page }: { documentId: string; runId?: string; page: number }) {
  const { t } = useTranslation();
  const [failed, setFailed] = React.useState(false);
  const [loaded, setLoaded] = React.useState(false);
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
      onLoad={() => setLoaded(true)}
      data-loaded={loaded ? "true" : "false"}
      className={`mx-auto h-auto w-full max-w-2xl rounded-md border ${loaded ? "bg-white" : "aspect-[17/22] animate-pulse bg-muted"}`}
    />
  );
}
