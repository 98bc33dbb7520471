import { useTranslation } from "@/lib/i18n";
import { useQuery } from "@tanstack/react-query";
import { Activity } from "lucide-react";
import { Badge } from "@/components/ui/badge";
import { Card } from "@/components/ui/card";
import { ErrorState } from "@/components/ui/states";
import { Spinner } from "@/components/ui/spinner";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";
import { PageHeader } from "@/components/layout/PageHeader";
import type { SystemReport } from "@/api/types";
import { api } from "@/lib/api";
import { formatBytes } from "@/lib/format";

/** Services up, the pipeline's queues, documents per status and storage used: refreshed every 10 s. */
export function AdminSystemPage() {
  const { t, i18n } = useTranslation();
  const system = useQuery({
    queryKey: ["admin", "system"],
    queryFn: () => api<SystemReport>("/admin/system"),
    refetchInterval: 10_000,
  });
  if (system.isLoading) return <Spinner />;
  if (system.isError) return <ErrorState error={system.error} onRetry={() => void system.refetch()} />;
  const s = system.data!;
  const share = s.storage_limit_bytes > 0 ? s.storage_used_bytes / s.storage_limit_bytes : 0;
  return (
    <div className="grid grid-cols-1 gap-6">
      <PageHeader title={t("admin.system_title")} description={t("admin.system_subtitle")} />
      <div className="grid grid-cols-1 gap-6 lg:grid-cols-2">
        <Card className="p-4" aria-labelledby="system-services">
          <h2 id="system-services" className="mb-3 flex items-center gap-2 font-semibold"><Activity className="h-4 w-4" />{t("admin.system_services")}</h2>
          <ul className="grid grid-cols-1 gap-2">
            {Object.entries(s.services).map(([name, h]) => (
              <li key={name} className="flex items-center justify-between gap-2">
                <span className="font-mono text-sm">{name}</span>
                <Badge variant={h.status === "ok" ? "outline" : "destructive"}>
                  {h.status === "ok" ? t("admin.system_up") : h.error ?? h.status}
                </Badge>
              </li>
            ))}
          </ul>
        </Card>
        <Card className="p-4" aria-labelledby="system-storage">
          <h2 id="system-storage" className="mb-3 font-semibold">{t("admin.system_storage")}</h2>
          <p className="tabular-nums">
            {t("admin.system_storage_used", {
              used: formatBytes(s.storage_used_bytes, i18n.language),
              limit: formatBytes(s.storage_limit_bytes, i18n.language),
              percent: Math.round(share * 100),
            })}
          </p>
          <div className="mt-2 h-2 w-full rounded bg-muted" role="progressbar" aria-valuenow={Math.round(share * 100)} aria-valuemin={0} aria-valuemax={100} aria-label={t("admin.system_storage")}>
            <div className={share > 0.9 ? "h-2 rounded bg-destructive" : "h-2 rounded bg-primary"} style={{ width: `${Math.min(100, share * 100)}%` }} />
          </div>
        </Card>
        <Card className="p-4" aria-labelledby="system-documents">
          <h2 id="system-documents" className="mb-3 font-semibold">{t("admin.system_documents")}</h2>
          <Table>
            <TableBody>
              {Object.entries(s.documents).map(([status, count]) => (
                <TableRow key={status}>
                  <TableCell>{t(`status.${status}`, { defaultValue: status })}</TableCell>
                  <TableCell className="text-right tabular-nums">{count}</TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
        </Card>
        <Card className="p-4" aria-labelledby="system-queues">
          <h2 id="system-queues" className="mb-3 font-semibold">{t("admin.system_queues")}</h2>
          <Table>
            <TableHeader>
              <TableRow>
                <TableHead>{t("admin.system_consumer")}</TableHead>
                <TableHead className="text-right">{t("admin.system_pending")}</TableHead>
                <TableHead className="text-right">{t("admin.system_in_work")}</TableHead>
                <TableHead className="text-right">{t("admin.system_redelivered")}</TableHead>
              </TableRow>
            </TableHeader>
            <TableBody>
              {s.queues.map((q) => (
                <TableRow key={q.consumer}>
                  <TableCell className="font-mono text-sm">{q.consumer}</TableCell>
                  <TableCell className="text-right tabular-nums">{q.pending}</TableCell>
                  <TableCell className="text-right tabular-nums">{q.in_work}</TableCell>
                  <TableCell className="text-right tabular-nums">{q.redelivered}</TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
        </Card>
      </div>
    </div>
  );
}
