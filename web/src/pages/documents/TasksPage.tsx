import * as React from "react";
import { Link } from "react-router-dom";
import { useTranslation } from "@/lib/i18n";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { ChevronLeft, ChevronRight, FileDown, History, RotateCw } from "lucide-react";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardHeader, CardTitle } from "@/components/ui/card";
import { Checkbox } from "@/components/ui/checkbox";
import { Input, NativeSelect } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { EmptyState, ErrorState } from "@/components/ui/states";
import { Spinner } from "@/components/ui/spinner";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";
import { useToast } from "@/components/ui/toast";
import { BarList, TasksPerDayChart } from "@/components/Charts";
import { PageHeader } from "@/components/layout/PageHeader";
import { api, apiFetch, buildUrl, toApiError } from "@/lib/api";
import { useMe } from "@/lib/auth";
import { StatusBadge } from "@/components/documents/StatusBadge";
import { TASK_KINDS, TASK_STATUSES, type Task, type TaskKind, type TaskStats, type TaskStatus } from "@/api/types";
import { taskQueryParams, useTasks, type TaskQuery } from "@/lib/documents/queries";
import { downloadBlob } from "@/lib/utils";
import { formatDate } from "@/lib/format";

export function formatDuration(ms: number | null | undefined): string {
  if (ms == null) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

export function TaskTable({ tasks, showDocument = true, onRetry }: { tasks: Task[]; showDocument?: boolean; onRetry?: (id: string) => void }) {
  const { t, i18n } = useTranslation();
  if (tasks.length === 0) return <p className="text-sm text-muted-foreground">{t("tasks.none")}</p>;
  return (
    <Card>
      <Table data-testid="task-table">
        <TableHeader>
          <TableRow>
            {showDocument && <TableHead>{t("tasks.col_document")}</TableHead>}
            <TableHead>{t("tasks.col_kind")}</TableHead>
            <TableHead>{t("tasks.col_status")}</TableHead>
            <TableHead className="hidden md:table-cell">{t("tasks.col_started")}</TableHead>
            <TableHead className="hidden sm:table-cell">{t("tasks.col_duration")}</TableHead>
            <TableHead className="hidden lg:table-cell">{t("tasks.col_provider")}</TableHead>
            {onRetry && <TableHead><span className="sr-only">{t("common.actions")}</span></TableHead>}
          </TableRow>
        </TableHeader>
        <TableBody>
          {tasks.map((task) => (
            <TableRow key={task.id}>
              {showDocument && (
                <TableCell className="max-w-[12rem] truncate">
                  {task.document_id ? <Link to={`/documents/${task.document_id}`} className="hover:underline">{task.filename}</Link> : task.filename}
                </TableCell>
              )}
              <TableCell>{t(`task_kind.${task.kind}`, { defaultValue: task.kind })}{task.attempt && task.attempt > 1 ? ` · #${task.attempt}` : ""}</TableCell>
              <TableCell>
                <StatusBadge status={task.status} />
                {task.error && <p className="mt-1 max-w-xs truncate text-xs text-destructive" title={task.error}>{task.reason ? `${task.reason}: ` : ""}{task.error}</p>}
              </TableCell>
              <TableCell className="hidden whitespace-nowrap md:table-cell">{formatDate(task.started_at ?? task.created_at, i18n.language)}</TableCell>
              <TableCell className="hidden tabular-nums sm:table-cell">{formatDuration(task.duration_ms)}</TableCell>
              <TableCell className="hidden text-xs text-muted-foreground lg:table-cell">
                {task.provider ? `${task.provider}${task.model ? ` · ${task.model}` : ""}` : "—"}
                {task.tokens_in != null && <span className="block">{t("tasks.tokens", { in: task.tokens_in, out: task.tokens_out ?? 0 })}</span>}
              </TableCell>
              {onRetry && (
                <TableCell className="text-right">
                  {task.status === "failed" && (
                    <Button size="sm" variant="outline" onClick={() => onRetry(task.id)}>
                      <RotateCw /> {t("tasks.retry")}
                    </Button>
                  )}
                </TableCell>
              )}
            </TableRow>
          ))}
        </TableBody>
      </Table>
    </Card>
  );
}

export function TasksPage() {
  const { t, i18n } = useTranslation();
  const me = useMe();
  const qc = useQueryClient();
  const toast = useToast();
  const [filters, setFilters] = React.useState<TaskQuery>({ limit: 50 });
  const [cursors, setCursors] = React.useState<(string | null)[]>([null]);
  const query = { ...filters, cursor: cursors[cursors.length - 1] };
  const tasks = useTasks(query);
  const statsQuery = { created_from: filters.created_from, created_to: filters.created_to, all_users: filters.all_users };
  const stats = useQuery({
    queryKey: ["tasks", "stats", statsQuery],
    queryFn: () => api<TaskStats>("/tasks/stats", { query: taskQueryParams(statsQuery) }),
  });
  const retry = useMutation({
    mutationFn: (id: string) => api(`/tasks/${id}/retry`, { method: "POST", body: {} }),
    onSuccess: () => {
      toast({ title: t("tasks.retry_started"), variant: "success" });
      void qc.invalidateQueries({ queryKey: ["tasks"] });
      void qc.invalidateQueries({ queryKey: ["documents"] });
    },
    onError: (e) => toast({ title: t("tasks.retry_failed"), description: (e as Error).message, variant: "destructive" }),
  });
  const set = (patch: Partial<TaskQuery>) => {
    setCursors([null]);
    setFilters((f) => ({ ...f, ...patch }));
  };
  const exportAs = async (format: "csv" | "json") => {
    const params = taskQueryParams({ ...filters, cursor: undefined, limit: undefined });
    const res = await apiFetch(buildUrl("/tasks/export", { ...params, format }));
    if (!res.ok) {
      toast({ title: t("tasks.export_failed"), description: (await toApiError(res)).message, variant: "destructive" });
      return;
    }
    downloadBlob(await res.blob(), `atrium-tasks.${format}`);
  };
  const days = (stats.data?.by_day ?? []).map((d) => ({ day: String(d.day), succeeded: d.succeeded, failed: d.failed, other: Math.max(0, d.tasks - d.succeeded - d.failed) }));
  const page = cursors.length;
  return (
    <div className="grid grid-cols-1 gap-6">
      <PageHeader
        title={t("tasks.title")}
        description={t("tasks.subtitle")}
        actions={
          <>
            <Button variant="outline" onClick={() => void exportAs("csv")}><FileDown /> {t("tasks.export_csv")}</Button>
            <Button variant="outline" onClick={() => void exportAs("json")}><FileDown /> {t("tasks.export_json")}</Button>
          </>
        }
      />
      <Card>
        <CardContent className="grid grid-cols-1 gap-3 pt-5 sm:grid-cols-2 lg:grid-cols-5">
          <div className="grid grid-cols-1 gap-1">
            <Label htmlFor="task-filename">{t("tasks.filter_filename")}</Label>
            <Input id="task-filename" type="search" value={filters.filename ?? ""} onChange={(e) => set({ filename: e.target.value || undefined })} />
          </div>
          <div className="grid grid-cols-1 gap-1">
            <Label htmlFor="task-status">{t("tasks.filter_status")}</Label>
            <NativeSelect id="task-status" value={filters.status?.[0] ?? ""} onChange={(e) => set({ status: e.target.value ? [e.target.value as TaskStatus] : undefined })}>
              <option value="">{t("common.all")}</option>
              {TASK_STATUSES.map((s) => <option key={s} value={s}>{t(`task_status.${s}`)}</option>)}
            </NativeSelect>
          </div>
          <div className="grid grid-cols-1 gap-1">
            <Label htmlFor="task-kind">{t("tasks.filter_kind")}</Label>
            <NativeSelect id="task-kind" value={filters.kind?.[0] ?? ""} onChange={(e) => set({ kind: e.target.value ? [e.target.value as TaskKind] : undefined })}>
              <option value="">{t("common.all")}</option>
              {TASK_KINDS.map((k) => <option key={k} value={k}>{t(`task_kind.${k}`)}</option>)}
            </NativeSelect>
          </div>
          <div className="grid grid-cols-1 gap-1">
            <Label htmlFor="task-from">{t("filters.from")}</Label>
            <Input id="task-from" type="date" value={filters.created_from ?? ""} onChange={(e) => set({ created_from: e.target.value || undefined })} />
          </div>
          <div className="grid grid-cols-1 gap-1">
            <Label htmlFor="task-to">{t("filters.to")}</Label>
            <Input id="task-to" type="date" value={filters.created_to ?? ""} onChange={(e) => set({ created_to: e.target.value || undefined })} />
          </div>
          {me.data?.role === "admin" && (
            <div className="flex items-center gap-2 sm:col-span-2">
              <Checkbox id="task-all" checked={!!filters.all_users} onCheckedChange={(v) => set({ all_users: v === true })} />
              <Label htmlFor="task-all" className="font-normal">{t("tasks.all_users")}</Label>
            </div>
          )}
        </CardContent>
      </Card>
      <div className="grid grid-cols-1 gap-4 lg:grid-cols-3">
        <Card className="lg:col-span-2">
          <CardHeader><CardTitle>{t("tasks.chart_per_day")}</CardTitle></CardHeader>
          <CardContent>
            {stats.isLoading ? <Spinner /> : stats.isError ? <ErrorState error={stats.error} /> : days.length === 0 ? <p className="text-sm text-muted-foreground">{t("tasks.no_stats")}</p> : <TasksPerDayChart data={days} />}
          </CardContent>
        </Card>
        <Card>
          <CardHeader><CardTitle>{t("tasks.durations")}</CardTitle></CardHeader>
          <CardContent className="grid grid-cols-1 gap-4">
            <dl className="grid grid-cols-3 gap-2 text-center">
              <div><dt className="text-xs text-muted-foreground">{t("tasks.total")}</dt><dd className="text-lg font-semibold tabular-nums">{stats.data?.total ?? "—"}</dd></div>
              <div><dt className="text-xs text-muted-foreground">{t("tasks.avg")}</dt><dd className="text-lg font-semibold tabular-nums">{formatDuration(stats.data?.avg_duration_ms)}</dd></div>
              <div><dt className="text-xs text-muted-foreground">{t("tasks.p95")}</dt><dd className="text-lg font-semibold tabular-nums">{formatDuration(stats.data?.p95_duration_ms)}</dd></div>
            </dl>
            {(stats.data?.by_provider ?? []).length > 0 && (
              <BarList
                label={t("tasks.by_provider")}
                items={stats.data!.by_provider.map((p) => ({ label: `${p.provider}${p.model ? ` · ${p.model}` : ""}`, value: p.avg_duration_ms ?? 0 }))}
                format={formatDuration}
              />
            )}
            {stats.data && (
              <BarList
                label={t("tasks.by_status")}
                items={Object.entries(stats.data.by_status).map(([k, v]) => ({ label: t(`task_status.${k}`, { defaultValue: k }), value: v }))}
                format={(v) => new Intl.NumberFormat(i18n.language).format(v)}
              />
            )}
          </CardContent>
        </Card>
      </div>
      {tasks.isLoading ? (
        <Spinner />
      ) : tasks.isError ? (
        <ErrorState error={tasks.error} onRetry={() => void tasks.refetch()} />
      ) : (tasks.data?.items.length ?? 0) === 0 ? (
        <EmptyState icon={<History className="h-8 w-8" />} title={t("tasks.empty")} description={t("tasks.empty_hint")} />
      ) : (
        <div className="grid grid-cols-1 gap-2">
          <TaskTable tasks={tasks.data!.items} onRetry={(id) => retry.mutate(id)} />
          <div className="flex flex-wrap items-center justify-end gap-2 text-sm text-muted-foreground">
            <span>{tasks.data!.total_capped ? t("tasks.count_capped", { count: tasks.data!.total }) : t("tasks.count", { count: tasks.data!.total })} · {t("documents.page", { page })}</span>
            <Button size="sm" variant="outline" disabled={page <= 1} onClick={() => setCursors((c) => c.slice(0, -1))} aria-label={t("documents.prev_page")}><ChevronLeft /></Button>
            <Button size="sm" variant="outline" disabled={!tasks.data!.next_cursor} onClick={() => setCursors((c) => [...c, tasks.data!.next_cursor!])} aria-label={t("documents.next_page")}><ChevronRight /></Button>
          </div>
        </div>
      )}
    </div>
  );
}
