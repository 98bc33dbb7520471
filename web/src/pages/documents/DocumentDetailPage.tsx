import * as React from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { useTranslation } from "@/lib/i18n";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { ArrowLeft, Bot, Check, Download, FileText, RotateCw, Trash2, X } from "lucide-react";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { ConfirmDialog } from "@/components/ui/alert-dialog";
import { NativeSelect } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { Progress } from "@/components/ui/progress";
import { ErrorState } from "@/components/ui/states";
import { Spinner } from "@/components/ui/spinner";
import { Table, TableBody, TableCell, TableHead, TableRow } from "@/components/ui/table";
import { Tabs, TabsContent, TabsList, TabsTrigger } from "@/components/ui/tabs";
import { useToast } from "@/components/ui/toast";
import { displayValue, FieldEditor } from "@/components/documents/FieldEditor";
import { PagePreview } from "@/components/documents/PagePreview";
import { api, buildUrl } from "@/lib/api";
import { useUploads } from "@/lib/uploads";
import { StatusBadge } from "@/components/documents/StatusBadge";
import { EDITABLE_FIELDS, type BulkAction, type DocumentDetail, type DocumentEdit, type EditableField } from "@/api/types";
import { useLiveProgress } from "@/lib/documents/live";
import { isActive, processingPercent } from "@/lib/documents/progress";
import { forgetDocuments, useCategories } from "@/lib/documents/queries";
import { formatBytes, formatDate } from "@/lib/format";
import { TaskTable } from "./TasksPage";

export function DocumentDetailPage() {
  const { id = "" } = useParams();
  const { t, i18n } = useTranslation();
  const qc = useQueryClient();
  const toast = useToast();
  const navigate = useNavigate();
  const uploads = useUploads();
  const live = useLiveProgress()[id];
  const key = ["documents", "detail", id];
  const doc = useQuery({
    queryKey: key,
    queryFn: () => api<DocumentDetail>(`/documents/${id}`),
    refetchInterval: (q) => (q.state.data && isActive(q.state.data.status) ? 3000 : false),
  });
  const categories = useCategories();
  const [confirmDelete, setConfirmDelete] = React.useState(false);
  const [addCategory, setAddCategory] = React.useState("");
  const refresh = () => {
    void qc.invalidateQueries({ queryKey: ["documents"] });
    void qc.invalidateQueries({ queryKey: ["categories"] });
  };
  const update = useMutation({
    mutationFn: (body: DocumentEdit) => api<DocumentDetail>(`/documents/${id}`, { method: "PATCH", body }),
    onSuccess: (d) => {
      if (d && typeof d === "object" && "id" in d) qc.setQueryData(key, d);
      refresh();
      toast({ title: t("detail.saved"), variant: "success" });
    },
  });
  const reprocess = useMutation({
    mutationFn: () => api(`/documents/${id}/reprocess`, { method: "POST", body: {} }),
    onSuccess: () => {
      toast({ title: t("detail.reprocess_started"), variant: "success" });
      refresh();
    },
    onError: (e) => toast({ title: t("detail.reprocess_failed"), description: (e as Error).message, variant: "destructive" }),
  });
  const remove = useMutation({
    mutationFn: () => api(`/documents/${id}`, { method: "DELETE" }),
    onSuccess: () => {
      toast({ title: t("detail.deleted"), variant: "success" });
      navigate("/documents", { replace: true });
      uploads.dismissDocuments([id]);
      forgetDocuments(qc, [id]);
    },
    onError: (e) => toast({ title: t("detail.delete_failed"), description: (e as Error).message, variant: "destructive" }),
  });
  // Rejecting an AI-suggested category is recorded by the server: no later analysis suggests it here again.
  const reject = useMutation({
    mutationFn: (categoryId: string) => api<DocumentDetail>(`/documents/${id}`, { method: "PATCH", body: { reject_categories: [categoryId] } satisfies DocumentEdit }),
    onSuccess: (d) => {
      qc.setQueryData(key, d);
      refresh();
    },
    onError: (e) => toast({ title: t("bulk.failed"), description: (e as Error).message, variant: "destructive" }),
  });
  // Pending suggestions (names with no category yet): accepting creates and assigns it, rejecting is for good.
  const decide = useMutation({
    mutationFn: (body: Pick<DocumentEdit, "accept_suggestions" | "reject_suggestions">) =>
      api<DocumentDetail>(`/documents/${id}`, { method: "PATCH", body }),
    onSuccess: (d) => {
      qc.setQueryData(key, d);
      refresh();
    },
    onError: (e) => toast({ title: t("bulk.failed"), description: (e as Error).message, variant: "destructive" }),
  });
  const category = useMutation({
    mutationFn: (b: { action: "assign_category" | "remove_category"; category_id: string }) =>
      api("/documents/bulk", { method: "POST", body: { ...b, ids: [id] } satisfies BulkAction }),
    onSuccess: () => refresh(),
    onError: (e) => toast({ title: t("bulk.failed"), description: (e as Error).message, variant: "destructive" }),
  });

  if (doc.isLoading) return <Spinner />;
  if (doc.isError || !doc.data) return <ErrorState error={doc.error} onRetry={() => void doc.refetch()} />;
  const d = doc.data;
  const status = isActive(d.status) && live?.status ? live.status : d.status;
  // An emptied field is cleared on purpose (`clear`: the API takes a null in `fields` as "unchanged"), and stays
  // empty when the document is analysed again.
  const saveField = (name: string, value: string | null) => {
    const field = name as EditableField;
    return update.mutateAsync(value === null ? { clear: [field] } : { fields: { [field]: value } });
  };
  // Lists the server always sends, though its schema marks them optional (they have defaults).
  const fields = d.fields ?? {};
  const pages = d.pages ?? [];
  const currency = displayValue(fields.currency?.value) || d.currency;
  const docCategories = d.categories ?? [];
  // Every editable field (the server's list, in its order), then any other field the analysis filled in.
  const editable: readonly string[] = EDITABLE_FIELDS;
  const names = [...editable, ...Object.keys(fields).filter((k) => !editable.includes(k) && k !== "suggested_categories")];
  const suggestedNames = d.pending_suggestions ?? [];
  const assigned = new Set(docCategories.map((c) => c.id));
  // Live events while the page is open; after a reload, the counts the document itself keeps.
  const step = live?.pages ? { done: live.page ?? 0, total: live.pages } : d.progress ? { done: d.progress.done, total: d.progress.total } : null;
  const progressLabel =
    status === "ocr" && step
      ? t("upload.ocr_page_of", { page: step.done, pages: step.total })
      : status === "extracting" && step
        ? t("upload.page_of", { page: step.done, pages: step.total })
        : t(`status.${status}`);
  const tables = pages.flatMap((p) => (p.tables ?? []).map((tbl, i) => ({ page: p.number, index: i + 1, rows: tbl })));

  return (
    <div className="grid grid-cols-1 gap-6">
      <div className="flex flex-col gap-3">
        <Link to="/documents" className="inline-flex w-fit items-center gap-1 text-sm text-muted-foreground hover:text-foreground">
          <ArrowLeft className="h-4 w-4" /> {t("detail.back")}
        </Link>
        <div className="flex flex-col gap-3 lg:flex-row lg:items-start lg:justify-between">
          <div className="min-w-0">
            <h1 className="break-words text-2xl font-semibold tracking-tight">{d.title || d.filename}</h1>
            <p className="mt-1 flex flex-wrap items-center gap-2 text-sm text-muted-foreground">
              <StatusBadge status={status} />
              <span className="break-all">{d.filename}</span>·<span>{formatBytes(d.size, i18n.language)}</span>
              {d.page_count ? <>· <span>{t("documents.pages", { count: d.page_count })}</span></> : null}
              · <span>{formatDate(d.uploaded_at, i18n.language)}</span>
              {d.duplicate_of && (
                <Link to={`/documents/${d.duplicate_of}`} className="text-primary underline">{t("detail.duplicate_of")}</Link>
              )}
            </p>
          </div>
          <div className="flex flex-wrap gap-2">
            <Button asChild variant="outline">
              <a href={buildUrl(`/documents/${id}/file`)} download={d.filename}>
                <Download /> {t("detail.download")}
              </a>
            </Button>
            {d.ocr?.text_layer && (
              <Button asChild variant="outline">
                <a href={buildUrl(`/documents/${id}/text-layer`)} download={textLayerName(d.filename)} title={t("detail.download_text_layer_hint")}>
                  <FileText /> {t("detail.download_text_layer")}
                </a>
              </Button>
            )}
            <Button variant="outline" onClick={() => reprocess.mutate()} disabled={reprocess.isPending || isActive(status)}>
              <RotateCw /> {t("detail.reprocess")}
            </Button>
            <Button variant="destructive" onClick={() => setConfirmDelete(true)}>
              <Trash2 /> {t("detail.delete")}
            </Button>
          </div>
        </div>
        {isActive(status) && (
          <div className="grid grid-cols-1 gap-1" role="status">
            <Progress value={processingPercent(status, step ? { document_id: d.id, run_id: d.run_id, stage: "extract", status, page: step.done, pages: step.total, message: "" } : undefined)} aria-label={t("detail.processing")} />
            <p className="text-xs text-muted-foreground" data-testid="detail-progress">{progressLabel}</p>
          </div>
        )}
        {d.status === "failed" && (
          <div role="alert" className="rounded-md border border-destructive/40 bg-destructive/5 p-3 text-sm">
            <p className="font-medium text-destructive">{t(`reason.${d.failure_reason ?? "internal"}`, { defaultValue: d.failure_reason ?? "" })}</p>
            {d.failure_message && <p className="text-muted-foreground">{d.failure_message}</p>}
            <p className="mt-1 text-muted-foreground">{t("detail.failed_hint")}</p>
          </div>
        )}
        {d.status === "needs_ocr" && (
          <div role="status" className="rounded-md border border-warning/40 bg-warning/10 p-3 text-sm" data-testid="needs-ocr">
            <p>{t("detail.needs_ocr_hint")}</p>
            {d.ocr?.reason && <p className="mt-1 text-muted-foreground">{d.ocr.reason}</p>}
          </div>
        )}
        {d.status === "ready" && d.ocr?.reason && (
          <p role="status" className="rounded-md border border-warning/40 bg-warning/10 p-3 text-sm">{d.ocr.reason}</p>
        )}
      </div>

      <div className="grid grid-cols-1 gap-6 xl:grid-cols-[minmax(0,1fr)_22rem]">
        <Tabs defaultValue="fields">
          <TabsList>
            <TabsTrigger value="fields">{t("detail.tab_fields")}</TabsTrigger>
            <TabsTrigger value="pages">{t("detail.tab_pages", { count: pages.length })}</TabsTrigger>
            <TabsTrigger value="tables">{t("detail.tab_tables", { count: tables.length })}</TabsTrigger>
            <TabsTrigger value="tasks">{t("detail.tab_tasks")}</TabsTrigger>
          </TabsList>
          <TabsContent value="fields">
            <Card>
              <CardHeader>
                <CardTitle>{t("detail.fields_title")}</CardTitle>
                <CardDescription>{t("detail.fields_hint")}</CardDescription>
              </CardHeader>
              <CardContent>
                {names.map((n) => (
                  <FieldEditor key={n} name={n} currency={currency} field={n === "title" && !fields.title && d.title ? { value: d.title, source: "model" } : fields[n]} onSave={saveField} saving={update.isPending} />
                ))}
              </CardContent>
            </Card>
          </TabsContent>
          <TabsContent value="pages">
            {pages.length === 0 ? (
              <p className="text-sm text-muted-foreground">{isActive(status) ? t("detail.pages_pending") : t("detail.no_text")}</p>
            ) : (
              <ol className="grid grid-cols-1 gap-4">
                {pages.map((p) => (
                  <li key={p.number}>
                    <Card>
                      <CardHeader className="pb-2">
                        <CardTitle className="text-sm">{t("detail.page", { number: p.number })}</CardTitle>
                        {p.ocr && (
                          <CardDescription className="text-xs" data-testid="page-ocr">
                            {p.ocr.reason
                              ? p.ocr.reason
                              : t("detail.page_ocr", { engine: p.ocr.engine, words: p.ocr.word_count, confidence: Math.round(p.ocr.confidence ?? 0) })}
                          </CardDescription>
                        )}
                      </CardHeader>
                      <CardContent className="space-y-3">
                        {p.number <= (d.preview_pages ?? 0) ? <PagePreview documentId={d.id} runId={d.run_id} page={p.number} /> : null}
                        <pre className="max-h-[32rem] overflow-auto whitespace-pre-wrap break-words rounded-md bg-muted p-3 font-mono text-xs leading-relaxed">{p.text || t("detail.page_empty")}</pre>
                      </CardContent>
                    </Card>
                  </li>
                ))}
              </ol>
            )}
          </TabsContent>
          <TabsContent value="tables">
            {tables.length === 0 ? (
              <p className="text-sm text-muted-foreground">{t("detail.no_tables")}</p>
            ) : (
              <div className="grid grid-cols-1 gap-4">
                {tables.map((tbl) => (
                  <Card key={`${tbl.page}-${tbl.index}`}>
                    <CardHeader className="pb-2">
                      <CardTitle className="text-sm">{t("detail.table", { page: tbl.page, index: tbl.index })}</CardTitle>
                    </CardHeader>
                    <CardContent>
                      <Table>
                        <TableBody>
                          {tbl.rows.map((row, r) => (
                            <TableRow key={r}>
                              {row.map((cell, c) => (r === 0 ? <TableHead key={c} className="normal-case">{cell}</TableHead> : <TableCell key={c}>{cell}</TableCell>))}
                            </TableRow>
                          ))}
                        </TableBody>
                      </Table>
                    </CardContent>
                  </Card>
                ))}
              </div>
            )}
          </TabsContent>
          <TabsContent value="tasks">
            <TaskTable tasks={d.tasks ?? []} showDocument={false} />
          </TabsContent>
        </Tabs>

        <div className="grid grid-cols-1 content-start gap-4">
          <Card>
            <CardHeader>
              <CardTitle>{t("detail.categories")}</CardTitle>
            </CardHeader>
            <CardContent className="grid grid-cols-1 gap-3">
              <ul className="flex flex-wrap gap-1.5" data-testid="detail-categories">
                {docCategories.length === 0 && <li className="text-sm text-muted-foreground">{t("detail.no_categories")}</li>}
                {docCategories.map((c) => (
                  <li key={c.id}>
                    <Badge variant="secondary" className="gap-1 py-1">
                      {c.source === "ai" && <Bot className="h-3 w-3" aria-label={t("fields.source_model")} />}
                      {c.name}
                      <button
                        type="button"
                        className="rounded-sm hover:text-destructive focus-visible:outline-none focus-visible:ring-2 focus-visible:ring-ring"
                        aria-label={t(c.source === "ai" ? "detail.reject_suggestion" : "detail.remove_category", { name: c.name })}
                        onClick={() => (c.source === "ai" ? reject.mutate(c.id) : category.mutate({ action: "remove_category", category_id: c.id }))}
                      >
                        <X className="h-3 w-3" />
                      </button>
                    </Badge>
                  </li>
                ))}
              </ul>
              <form
                className="flex items-end gap-2"
                onSubmit={(e) => {
                  e.preventDefault();
                  if (addCategory) category.mutate({ action: "assign_category", category_id: addCategory });
                  setAddCategory("");
                }}
              >
                <div className="grid grid-cols-1 flex-1 gap-1">
                  <Label htmlFor="add-category" className="text-xs">{t("detail.add_category")}</Label>
                  <NativeSelect id="add-category" value={addCategory} onChange={(e) => setAddCategory(e.target.value)}>
                    <option value="">{t("bulk.choose_category")}</option>
                    {(categories.data ?? []).filter((c) => !assigned.has(c.id)).map((c) => (
                      <option key={c.id} value={c.id}>{c.name}</option>
                    ))}
                  </NativeSelect>
                </div>
                <Button type="submit" size="sm" disabled={!addCategory}>{t("common.add")}</Button>
              </form>
              {suggestedNames.length > 0 && (
                <div className="grid grid-cols-1 gap-1.5">
                  <p className="text-xs font-medium text-muted-foreground">{t("detail.suggested")}</p>
                  <ul className="grid grid-cols-1 gap-1">
                    {suggestedNames.map((name) => (
                      <li key={name} className="flex items-center justify-between gap-2 text-sm">
                        <span className="flex items-center gap-1"><Bot className="h-3.5 w-3.5 text-muted-foreground" aria-hidden />{name}</span>
                        <span className="flex gap-1">
                          <Button size="icon" variant="ghost" className="h-7 w-7" disabled={decide.isPending} aria-label={t("detail.accept_suggestion", { name })} onClick={() => decide.mutate({ accept_suggestions: [name] })}>
                            <Check />
                          </Button>
                          <Button size="icon" variant="ghost" className="h-7 w-7" disabled={decide.isPending} aria-label={t("detail.reject_suggestion", { name })} onClick={() => decide.mutate({ reject_suggestions: [name] })}>
                            <X />
                          </Button>
                        </span>
                      </li>
                    ))}
                  </ul>
                </div>
              )}
            </CardContent>
          </Card>
          <Card>
            <CardHeader>
              <CardTitle>{t("detail.metadata")}</CardTitle>
            </CardHeader>
            <CardContent>
              <dl className="grid grid-cols-[auto_1fr] gap-x-3 gap-y-1.5 text-sm">
                {Object.entries(d.metadata ?? {})
                  .filter(([, v]) => v !== null && v !== "")
                  .map(([k, v]) => (
                    <React.Fragment key={k}>
                      <dt className="text-muted-foreground">{t(`meta.${k}`, { defaultValue: k })}</dt>
                      <dd className="min-w-0 break-words">{k.endsWith("date") ? formatDate(String(v), i18n.language) : String(v)}</dd>
                    </React.Fragment>
                  ))}
                <dt className="text-muted-foreground">SHA-256</dt>
                <dd className="min-w-0 truncate font-mono text-xs" title={d.sha256}>{d.sha256}</dd>
              </dl>
            </CardContent>
          </Card>
        </div>
      </div>
      <ConfirmDialog
        open={confirmDelete}
        onOpenChange={setConfirmDelete}
        title={t("detail.delete_title")}
        description={t("detail.delete_description", { name: d.filename })}
        confirmLabel={t("detail.delete")}
        onConfirm={() => remove.mutate()}
      />
    </div>
  );
}

/** "scan.pdf" → "scan.ocr.pdf" (what the server names the PDF with text layer too). */
function textLayerName(filename: string): string {
  return `${filename.replace(/\.[^.]*$/, "")}.ocr.pdf`;
}
