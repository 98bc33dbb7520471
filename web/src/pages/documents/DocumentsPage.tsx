import * as React from "react";
import { Link, useSearchParams } from "react-router-dom";
import { useTranslation } from "@/lib/i18n";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { ChevronLeft, ChevronRight, FileText, FolderMinus, FolderPlus, RotateCw, Trash2 } from "lucide-react";
import { Button } from "@/components/ui/button";
import { Card } from "@/components/ui/card";
import { ConfirmDialog } from "@/components/ui/alert-dialog";
import { Dialog, DialogContent, DialogDescription, DialogFooter, DialogHeader, DialogTitle } from "@/components/ui/dialog";
import { NativeSelect } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { EmptyState, ErrorState } from "@/components/ui/states";
import { Spinner } from "@/components/ui/spinner";
import { useToast } from "@/components/ui/toast";
import { PageHeader } from "@/components/layout/PageHeader";
import { DocumentFilters, activeFilterCount } from "@/components/documents/DocumentFilters";
import { DocumentList } from "@/components/documents/DocumentList";
import { UploadDropzone, UploadList, isUploadFinished } from "@/components/documents/UploadList";
import { api } from "@/lib/api";
import type { BulkAction, BulkResult } from "@/api/types";
import { useLiveProgress } from "@/lib/documents/live";
import { forgetDocuments, useCategories, useDocuments, type DocumentQuery } from "@/lib/documents/queries";
import { useUploads } from "@/lib/uploads";

const PAGE_SIZE = 25;
const LIST_KEYS = ["status", "document_type", "category_any"] as const;
const TEXT_KEYS = ["q", "sort", "order", "date_from", "date_to", "uploaded_from", "uploaded_to"] as const;

export function queryFromParams(p: URLSearchParams): DocumentQuery {
  const q: DocumentQuery = { limit: PAGE_SIZE };
  // The URL is the user's to edit: values the server does not know are its to refuse (a 422 the page shows).
  if (p.has("status")) q.status = p.getAll("status") as DocumentQuery["status"];
  if (p.has("document_type")) q.document_type = p.getAll("document_type") as DocumentQuery["document_type"];
  if (p.has("category_any")) q.category_any = p.getAll("category_any");
  for (const k of TEXT_KEYS) {
    const v = p.get(k);
    if (v) (q as Record<string, string>)[k] = v;
  }
  return q;
}

function paramsFromQuery(q: DocumentQuery): URLSearchParams {
  const p = new URLSearchParams();
  for (const k of LIST_KEYS) (q[k] ?? []).forEach((v) => p.append(k, v));
  for (const k of TEXT_KEYS) {
    const v = q[k];
    if (v) p.set(k, String(v));
  }
  return p;
}

export function DocumentsPage() {
  const { t } = useTranslation();
  const qc = useQueryClient();
  const toast = useToast();
  const uploads = useUploads();
  const live = useLiveProgress();
  const [params, setParams] = useSearchParams();
  const baseQuery = React.useMemo(() => queryFromParams(params), [params]);
  const [cursors, setCursors] = React.useState<(string | null)[]>([null]);
  const query = { ...baseQuery, cursor: cursors[cursors.length - 1] };
  const docs = useDocuments(query, { refetchInterval: 15_000 });
  const categories = useCategories();
  const [selected, setSelected] = React.useState<Set<string>>(new Set());
  const [confirm, setConfirm] = React.useState<null | "delete">(null);
  const [categoryAction, setCategoryAction] = React.useState<null | "assign_category" | "remove_category">(null);
  const [categoryId, setCategoryId] = React.useState("");

  const onFilters = React.useCallback(
    (q: DocumentQuery) => {
      setCursors([null]);
      setSelected(new Set());
      setParams(paramsFromQuery(q), { replace: true });
    },
    [setParams],
  );

  const bulk = useMutation({
    mutationFn: (body: BulkAction) => api<BulkResult>("/documents/bulk", { method: "POST", body }),
    onSuccess: (r, vars) => {
      const failed = r.failed;
      toast({
        title: t(`bulk.done_${vars.action}`, { count: r.succeeded }),
        description: failed ? t("bulk.some_failed", { count: failed, message: r.results.find((x) => !x.ok)?.message ?? "" }) : undefined,
        variant: failed ? "destructive" : "success",
      });
      setSelected(new Set());
      if (vars.action === "delete") {
        const deleted = r.results.filter((x) => x.ok).map((x) => x.id);
        uploads.dismissDocuments(deleted);
        forgetDocuments(qc, deleted);
      } else {
        void qc.invalidateQueries({ queryKey: ["documents"] });
        void qc.invalidateQueries({ queryKey: ["categories"] });
      }
    },
    onError: (e) => toast({ title: t("bulk.failed"), description: (e as Error).message, variant: "destructive" }),
  });

  const items = docs.data?.items ?? [];
  const toggle = (id: string) =>
    setSelected((prev) => {
      const next = new Set(prev);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });
  const ids = [...selected];
  const page = cursors.length;
  const filtered = activeFilterCount(baseQuery) > 0 || !!baseQuery.q;

  return (
    <div className="grid grid-cols-1 gap-6">
      <PageHeader title={t("documents.title")} description={t("documents.subtitle")} />
      <div className="grid grid-cols-1 gap-4 lg:grid-cols-2">
        <UploadDropzone onFiles={uploads.add} />
        <UploadList
          items={uploads.items}
          onDismiss={uploads.dismiss}
          onClearFinished={() => uploads.clearFinished((i) => isUploadFinished(i, live[i.documentId ?? ""]?.status ?? items.find((d) => d.id === i.documentId)?.status))}
        />
      </div>
      <DocumentFilters value={baseQuery} onChange={onFilters} categories={categories.data ?? []} />
      {selected.size > 0 && (
        <div className="sticky top-16 z-20 flex flex-wrap items-center gap-2 rounded-xl border bg-card p-2 shadow-sm" role="toolbar" aria-label={t("bulk.toolbar")}>
          <span className="px-2 text-sm font-medium" data-testid="selection-count">{t("bulk.selected", { count: selected.size })}</span>
          <Button size="sm" variant="outline" onClick={() => setCategoryAction("assign_category")}>
            <FolderPlus /> {t("bulk.assign_category")}
          </Button>
          <Button size="sm" variant="outline" onClick={() => setCategoryAction("remove_category")}>
            <FolderMinus /> {t("bulk.remove_category")}
          </Button>
          <Button size="sm" variant="outline" onClick={() => bulk.mutate({ action: "reprocess", ids })}>
            <RotateCw /> {t("bulk.reprocess")}
          </Button>
          <Button size="sm" variant="destructive" onClick={() => setConfirm("delete")}>
            <Trash2 /> {t("bulk.delete")}
          </Button>
          <Button size="sm" variant="ghost" onClick={() => setSelected(new Set())}>
            {t("bulk.clear_selection")}
          </Button>
        </div>
      )}
      {docs.isLoading ? (
        <Spinner />
      ) : docs.isError ? (
        <ErrorState error={docs.error} onRetry={() => void docs.refetch()} />
      ) : items.length === 0 ? (
        <EmptyState
          icon={<FileText className="h-8 w-8" />}
          title={filtered ? t("documents.empty_filtered") : t("documents.empty")}
          description={filtered ? t("documents.empty_filtered_hint") : t("documents.empty_hint")}
          action={filtered ? <Button variant="outline" onClick={() => onFilters({ limit: PAGE_SIZE })}>{t("filters.clear")}</Button> : undefined}
        />
      ) : (
        <Card>
          <DocumentList
            items={items}
            selected={selected}
            onToggle={toggle}
            onSelectAll={(all) => setSelected(all ? new Set(items.map((d) => d.id)) : new Set())}
          />
          <div className="flex flex-wrap items-center justify-between gap-2 border-t p-3 text-sm text-muted-foreground">
            <span data-testid="documents-total">{t("documents.total", { count: docs.data?.total ?? 0 })}</span>
            <div className="flex items-center gap-2">
              <span>{t("documents.page", { page })}</span>
              <Button size="sm" variant="outline" disabled={page <= 1} onClick={() => setCursors((c) => c.slice(0, -1))} aria-label={t("documents.prev_page")}>
                <ChevronLeft />
              </Button>
              <Button
                size="sm"
                variant="outline"
                disabled={!docs.data?.next_cursor}
                onClick={() => setCursors((c) => [...c, docs.data!.next_cursor!])}
                aria-label={t("documents.next_page")}
              >
                <ChevronRight />
              </Button>
            </div>
          </div>
        </Card>
      )}
      <ConfirmDialog
        open={confirm === "delete"}
        onOpenChange={(o) => !o && setConfirm(null)}
        title={t("bulk.delete_title", { count: ids.length })}
        description={t("bulk.delete_description")}
        confirmLabel={t("bulk.delete")}
        onConfirm={() => bulk.mutate({ action: "delete", ids })}
      />
      <Dialog open={categoryAction !== null} onOpenChange={(o) => !o && setCategoryAction(null)}>
        <DialogContent>
          <DialogHeader>
            <DialogTitle>{categoryAction === "remove_category" ? t("bulk.remove_category") : t("bulk.assign_category")}</DialogTitle>
            <DialogDescription>{t("bulk.category_description", { count: ids.length })}</DialogDescription>
          </DialogHeader>
          {(categories.data ?? []).length === 0 ? (
            <p className="text-sm text-muted-foreground">
              {t("bulk.no_categories")} <Link to="/categories" className="text-primary underline">{t("nav.categories")}</Link>
            </p>
          ) : (
            <div className="grid grid-cols-1 gap-1.5">
              <Label htmlFor="bulk-category">{t("bulk.category")}</Label>
              <NativeSelect id="bulk-category" value={categoryId} onChange={(e) => setCategoryId(e.target.value)}>
                <option value="">{t("bulk.choose_category")}</option>
                {(categories.data ?? []).map((c) => (
                  <option key={c.id} value={c.id}>{c.name}</option>
                ))}
              </NativeSelect>
            </div>
          )}
          <DialogFooter>
            <Button variant="outline" onClick={() => setCategoryAction(null)}>{t("common.cancel")}</Button>
            <Button
              disabled={!categoryId || bulk.isPending}
              onClick={() => {
                bulk.mutate({ action: categoryAction!, ids, category_id: categoryId });
                setCategoryAction(null);
              }}
            >
              {t("common.apply")}
            </Button>
          </DialogFooter>
        </DialogContent>
      </Dialog>
    </div>
  );
}
