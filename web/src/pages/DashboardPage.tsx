import { Link } from "react-router-dom";
import { useTranslation } from "@/lib/i18n";
import { AppWindow, FileText, Upload } from "lucide-react";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { EmptyState, ErrorState } from "@/components/ui/states";
import { Spinner } from "@/components/ui/spinner";
import { PageHeader } from "@/components/layout/PageHeader";
import { StatusBadge } from "@/components/documents/StatusBadge";
import { DOCUMENT_STATUSES } from "@/api/types";
import { useApps } from "@/lib/apps";
import { useMe } from "@/lib/auth";
import { useDocumentCounts, useDocuments, useTasks } from "@/lib/documents/queries";
import { formatDate } from "@/lib/format";

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
  const processing = useDocuments({ status: ["queued", "extracting", "ocr", "analyzing"], limit: 5 }, { refetchInterval: 5000 });
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
              {DOCUMENT_STATUSES.map((s) => (
                <li key={s}>
                  <Link
                    to={`/documents?status=${s}`}
                    className="flex flex-col gap-1 rounded-lg border p-3 transition-colors hover:bg-accent focus-visible:outline-none focus-visible:ring-2 focus-visible:ring-ring"
                    data-testid={`count-${s}`}
                  >
                    <span className="text-2xl font-semibold tabular-nums">{counts.data?.by_status[s] ?? "–"}</span>
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
