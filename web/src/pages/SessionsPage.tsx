import * as React from "react";
import { useTranslation } from "@/lib/i18n";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Laptop } from "lucide-react";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card } from "@/components/ui/card";
import { ConfirmDialog } from "@/components/ui/alert-dialog";
import { ErrorState } from "@/components/ui/states";
import { Spinner } from "@/components/ui/spinner";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";
import { useToast } from "@/components/ui/toast";
import { PageHeader } from "@/components/layout/PageHeader";
import type { SessionList } from "@/api/types";
import { api } from "@/lib/api";
import { formatDate } from "@/lib/format";

export function SessionsPage() {
  const { t, i18n } = useTranslation();
  const qc = useQueryClient();
  const toast = useToast();
  const [confirmAll, setConfirmAll] = React.useState(false);
  const sessions = useQuery({ queryKey: ["auth", "sessions"], queryFn: async ({ signal }) => (await api<SessionList>("/auth/sessions", { signal })).items });
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
                      <span className="max-w-xs truncate" title={s.device ?? ""}>{s.device || t("sessions.unknown_device")}</span>
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
