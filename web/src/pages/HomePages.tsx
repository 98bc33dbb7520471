import * as React from "react";
import { Link } from "react-router-dom";
import { useTranslation } from "react-i18next";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { AppWindow, FileText, Laptop, Upload } from "lucide-react";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { ConfirmDialog } from "@/components/ui/alert-dialog";
import { EmptyState, ErrorState, Spinner } from "@/components/ui/states";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";
import { useToast } from "@/components/ui/toast";
import { PageHeader } from "@/components/layout/AppShell";
import { api } from "@/lib/api";
import { appRoute, useApps } from "@/lib/apps";
import { useMe } from "@/lib/auth";
import { STATUSES, StatusBadge, useDocumentCounts, useDocuments, useTasks } from "@/lib/documents";
import { asList, formatDate } from "@/lib/utils";

export function DashboardPage() {
  const { t, i18n } = useTranslation();
  const me = useMe();
  const apps = useApps();
  const hasDocs = (apps.data ?? []).some((a) => a.key === "documents");
  const name = me.data?.full_name || me.data?.email || "";
  return (
    <div>
      <PageHeader
        title={t("dashboard.welcome", { name })}
        description={t("dashboard.subtitle")}
        actions={
          hasDocs ? (
            <Button asChild>
              <Link to="/documents">
                <Upload /> {t("dashboard.upload")}
              </Link>
            </Button>
          ) : null
        }
      />
      {apps.isLoading ? (
        <Spinner />
      ) : hasDocs ? (
        <DocumentsOverview locale={i18n.language} />
      ) : (
        <EmptyState icon={<AppWindow className="h-8 w-8" />} title={t("dashboard.no_apps")} description={t("dashboard.no_apps_hint")} />
      )}
    </div>
  );
}

function DocumentsOverview({ locale }: { locale: string }) {
  const { t } = useTranslation();
  const counts = useDocumentCounts();
  const processing = useDocuments({ status: ["queued", "extracting", "analyzing"], limit: 5 }, { refetchInterval: 5000 });
  const tasks = useTasks({ limit: 8 });
  return (
    <div className="grid grid-cols-1 gap-4 lg:grid-cols-3">
      <Card className="lg:col-span-3">
        <CardHeader>
          <CardTitle>{t("dashboard.by_status")}</CardTitle>
        </CardHeader>
        <CardContent>
          {counts.isError ? (
            <ErrorState error={counts.error} onRetry={() => void counts.refetch()} />
          ) : (
            <ul className="grid grid-cols-2 gap-3 sm:grid-cols-3 lg:grid-cols-6">
              {STATUSES.map((s) => (
                <li key={s}>
                  <Link
                    to={`/documents?status=${s}`}
                    className="flex flex-col gap-1 rounded-lg border p-3 transition-colors hover:bg-accent focus-visible:outline-none focus-visible:ring-2 focus-visible:ring-ring"
                    data-testid={`count-${s}`}
                  >
                    <span className="text-2xl font-semibold tabular-nums">{counts.data?.[s] ?? "–"}</span>
                    <span className="text-xs text-muted-foreground">{t(`status.${s}`)}</span>
                  </Link>
                </li>
              ))}
            </ul>
          )}
        </CardContent>
      </Card>
      <Card>
        <CardHeader>
          <CardTitle>{t("dashboard.processing_now")}</CardTitle>
        </CardHeader>
        <CardContent>
          {processing.isLoading ? (
            <Spinner />
          ) : processing.isError ? (
            <ErrorState error={processing.error} />
          ) : (processing.data?.items.length ?? 0) === 0 ? (
            <p className="text-sm text-muted-foreground">{t("dashboard.nothing_processing")}</p>
          ) : (
            <ul className="grid grid-cols-1 gap-2">
              {processing.data!.items.map((d) => (
                <li key={d.id} className="flex items-center justify-between gap-2 text-sm">
                  <Link to={`/documents/${d.id}`} className="truncate hover:underline">{d.title || d.filename}</Link>
                  <StatusBadge status={d.status} />
                </li>
              ))}
            </ul>
          )}
        </CardContent>
      </Card>
      <Card className="lg:col-span-2">
        <CardHeader>
          <CardTitle>{t("dashboard.recent_activity")}</CardTitle>
          <CardDescription>{t("dashboard.recent_activity_hint")}</CardDescription>
        </CardHeader>
        <CardContent>
          {tasks.isLoading ? (
            <Spinner />
          ) : tasks.isError ? (
            <ErrorState error={tasks.error} />
          ) : (tasks.data?.items.length ?? 0) === 0 ? (
            <EmptyState icon={<FileText className="h-6 w-6" />} title={t("dashboard.no_activity")} description={t("dashboard.no_activity_hint")} />
          ) : (
            <ul className="divide-y">
              {tasks.data!.items.map((task) => (
                <li key={task.id} className="flex flex-wrap items-center justify-between gap-2 py-2 text-sm">
                  <span className="min-w-0 truncate">
                    <Badge variant="outline" className="mr-2">{t(`task_kind.${task.kind}`, { defaultValue: task.kind })}</Badge>
                    {task.document_id ? <Link to={`/documents/${task.document_id}`} className="hover:underline">{task.filename ?? task.document_id}</Link> : task.filename}
                  </span>
                  <span className="flex items-center gap-2 text-xs text-muted-foreground">
                    {formatDate(task.finished_at ?? task.started_at ?? task.created_at, locale)}
                    <StatusBadge status={task.status} />
                  </span>
                </li>
              ))}
            </ul>
          )}
        </CardContent>
      </Card>
    </div>
  );
}

export function AppsPage() {
  const { t } = useTranslation();
  const apps = useApps();
  return (
    <div>
      <PageHeader title={t("apps.title")} description={t("apps.subtitle")} />
      {apps.isLoading ? (
        <Spinner />
      ) : apps.isError ? (
        <ErrorState error={apps.error} onRetry={() => void apps.refetch()} />
      ) : (apps.data ?? []).length === 0 ? (
        <EmptyState icon={<AppWindow className="h-8 w-8" />} title={t("apps.empty")} description={t("apps.empty_hint")} />
      ) : (
        <ul className="grid grid-cols-1 gap-4 sm:grid-cols-2 lg:grid-cols-3" data-testid="apps-list">
          {apps.data!.map((a) => (
            <li key={a.key}>
              <Link to={appRoute(a)} className="block h-full rounded-xl focus-visible:outline-none focus-visible:ring-2 focus-visible:ring-ring">
                <Card className="h-full transition-colors hover:bg-accent/50">
                  <CardHeader>
                    <div className="flex items-center gap-3">
                      <span className="rounded-lg bg-primary/10 p-2 text-primary">{a.key === "documents" ? <FileText className="h-5 w-5" /> : <AppWindow className="h-5 w-5" />}</span>
                      <CardTitle>{a.key === "documents" ? t("nav.documents") : a.name}</CardTitle>
                    </div>
                    <CardDescription>{a.key === "documents" ? t("apps.documents_description") : a.description}</CardDescription>
                  </CardHeader>
                </Card>
              </Link>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

interface SessionInfo {
  id: string;
  user_agent?: string | null;
  device?: string | null;
  ip?: string | null;
  created_at?: string;
  last_used_at?: string | null;
  current?: boolean;
  remember_me?: boolean;
}

export function SessionsPage() {
  const { t, i18n } = useTranslation();
  const qc = useQueryClient();
  const toast = useToast();
  const [confirmAll, setConfirmAll] = React.useState(false);
  const sessions = useQuery({ queryKey: ["auth", "sessions"], queryFn: async () => asList<SessionInfo>(await api("/auth/sessions")) });
  const end = useMutation({
    mutationFn: (id: string) => api(`/auth/sessions/${id}`, { method: "DELETE" }),
    onSuccess: () => {
      toast({ title: t("sessions.ended"), variant: "success" });
      void qc.invalidateQueries({ queryKey: ["auth", "sessions"] });
    },
    onError: (e) => toast({ title: t("sessions.end_failed"), description: (e as Error).message, variant: "destructive" }),
  });
  const endOthers = useMutation({
    mutationFn: async () => {
      for (const s of sessions.data ?? []) if (!s.current) await api(`/auth/sessions/${s.id}`, { method: "DELETE" });
    },
    onSuccess: () => {
      toast({ title: t("sessions.others_ended"), variant: "success" });
      void qc.invalidateQueries({ queryKey: ["auth", "sessions"] });
    },
    onError: (e) => toast({ title: t("sessions.end_failed"), description: (e as Error).message, variant: "destructive" }),
  });
  const others = (sessions.data ?? []).filter((s) => !s.current).length;
  return (
    <div>
      <PageHeader
        title={t("sessions.title")}
        description={t("sessions.subtitle")}
        actions={
          <Button variant="destructive" disabled={others === 0 || endOthers.isPending} onClick={() => setConfirmAll(true)}>
            {t("sessions.end_others")}
          </Button>
        }
      />
      {sessions.isLoading ? (
        <Spinner />
      ) : sessions.isError ? (
        <ErrorState error={sessions.error} onRetry={() => void sessions.refetch()} />
      ) : (
        <Card>
          <Table>
            <TableHeader>
              <TableRow>
                <TableHead>{t("sessions.device")}</TableHead>
                <TableHead>{t("sessions.ip")}</TableHead>
                <TableHead className="hidden md:table-cell">{t("sessions.created")}</TableHead>
                <TableHead>{t("sessions.last_used")}</TableHead>
                <TableHead className="text-right">
                  <span className="sr-only">{t("common.actions")}</span>
                </TableHead>
              </TableRow>
            </TableHeader>
            <TableBody>
              {sessions.data!.map((s) => (
                <TableRow key={s.id}>
                  <TableCell>
                    <span className="flex items-center gap-2">
                      <Laptop className="h-4 w-4 shrink-0 text-muted-foreground" aria-hidden />
                      <span className="max-w-xs truncate" title={s.user_agent ?? s.device ?? ""}>{s.device || s.user_agent || t("sessions.unknown_device")}</span>
                      {s.current && <Badge variant="success">{t("sessions.current")}</Badge>}
                    </span>
                  </TableCell>
                  <TableCell className="tabular-nums">{s.ip || "—"}</TableCell>
                  <TableCell className="hidden md:table-cell">{formatDate(s.created_at, i18n.language)}</TableCell>
                  <TableCell>{formatDate(s.last_used_at ?? s.created_at, i18n.language)}</TableCell>
                  <TableCell className="text-right">
                    {!s.current && (
                      <Button size="sm" variant="outline" onClick={() => end.mutate(s.id)} disabled={end.isPending}>
                        {t("sessions.end")}
                      </Button>
                    )}
                  </TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
        </Card>
      )}
      <ConfirmDialog
        open={confirmAll}
        onOpenChange={setConfirmAll}
        title={t("sessions.end_others_title")}
        description={t("sessions.end_others_description", { count: others })}
        confirmLabel={t("sessions.end_others")}
        onConfirm={() => endOthers.mutate()}
      />
    </div>
  );
}
