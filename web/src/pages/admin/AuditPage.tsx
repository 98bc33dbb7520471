import * as React from "react";
import { useTranslation } from "@/lib/i18n";
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { ChevronLeft, ChevronRight, ScrollText } from "lucide-react";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card } from "@/components/ui/card";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { EmptyState, ErrorState } from "@/components/ui/states";
import { Spinner } from "@/components/ui/spinner";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";
import { PageHeader } from "@/components/layout/PageHeader";
import type { AuditPage as AuditPageData } from "@/api/types";
import { api } from "@/lib/api";
import { formatDate } from "@/lib/format";

const AUDIT_PAGE = 50;

export function AdminAuditPage() {
  const { t, i18n } = useTranslation();
  const [action, setAction] = React.useState("");
  const [from, setFrom] = React.useState("");
  const [to, setTo] = React.useState("");
  const [offset, setOffset] = React.useState(0);
  const audit = useQuery({
    queryKey: ["admin", "audit", action, from, to, offset],
    queryFn: () =>
      api<AuditPageData>("/admin/audit", {
        query: {
          action: action || undefined,
          since: from ? new Date(`${from}T00:00:00`).toISOString() : undefined,
          until: to ? new Date(`${to}T23:59:59.999`).toISOString() : undefined,
          offset,
          limit: AUDIT_PAGE,
        },
      }),
    placeholderData: keepPreviousData,
  });
  return (
    <div className="grid grid-cols-1 gap-6">
      <PageHeader title={t("admin.audit_title")} description={t("admin.audit_subtitle")} />
      <div className="grid grid-cols-1 gap-3 sm:grid-cols-3">
        <div className="grid grid-cols-1 gap-1">
          <Label htmlFor="audit-action">{t("admin.audit_action")}</Label>
          <Input id="audit-action" type="search" value={action} placeholder="auth.login" onChange={(e) => { setOffset(0); setAction(e.target.value); }} />
        </div>
        <div className="grid grid-cols-1 gap-1">
          <Label htmlFor="audit-from">{t("filters.from")}</Label>
          <Input id="audit-from" type="date" value={from} onChange={(e) => { setOffset(0); setFrom(e.target.value); }} />
        </div>
        <div className="grid grid-cols-1 gap-1">
          <Label htmlFor="audit-to">{t("filters.to")}</Label>
          <Input id="audit-to" type="date" value={to} onChange={(e) => { setOffset(0); setTo(e.target.value); }} />
        </div>
      </div>
      {audit.isLoading ? <Spinner /> : audit.isError ? <ErrorState error={audit.error} onRetry={() => void audit.refetch()} /> : audit.data!.items.length === 0 ? (
        <EmptyState icon={<ScrollText className="h-8 w-8" />} title={t("admin.audit_empty")} />
      ) : (
        <Card>
          <Table>
            <TableHeader>
              <TableRow>
                <TableHead>{t("admin.audit_when")}</TableHead>
                <TableHead>{t("admin.audit_action")}</TableHead>
                <TableHead>{t("admin.audit_actor")}</TableHead>
                <TableHead className="hidden md:table-cell">{t("admin.audit_target")}</TableHead>
                <TableHead className="hidden lg:table-cell">IP</TableHead>
              </TableRow>
            </TableHeader>
            <TableBody>
              {audit.data!.items.map((e) => (
                <TableRow key={e.id}>
                  <TableCell className="whitespace-nowrap">{formatDate(e.at, i18n.language)}</TableCell>
                  <TableCell><Badge variant={/fail|reuse/.test(e.action) ? "destructive" : "outline"}>{e.action}</Badge></TableCell>
                  <TableCell className="max-w-[12rem] truncate font-mono text-xs">{e.actor_id ?? "—"}</TableCell>
                  <TableCell className="hidden max-w-[12rem] truncate md:table-cell">{e.target_id ?? "—"}</TableCell>
                  <TableCell className="hidden tabular-nums lg:table-cell">{e.ip ?? "—"}</TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
          <div className="flex justify-end gap-2 border-t p-3">
            <Button size="sm" variant="outline" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - AUDIT_PAGE))} aria-label={t("documents.prev_page")}><ChevronLeft /></Button>
            <Button size="sm" variant="outline" disabled={offset + AUDIT_PAGE >= audit.data!.total} onClick={() => setOffset(offset + AUDIT_PAGE)} aria-label={t("documents.next_page")}><ChevronRight /></Button>
          </div>
        </Card>
      )}
    </div>
  );
}
