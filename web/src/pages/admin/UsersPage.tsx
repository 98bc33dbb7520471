import * as React from "react";
import { useTranslation } from "@/lib/i18n";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { ChevronLeft, ChevronRight, KeyRound, LogOut, Users } from "lucide-react";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card } from "@/components/ui/card";
import { Checkbox } from "@/components/ui/checkbox";
import { ConfirmDialog } from "@/components/ui/alert-dialog";
import { Input, NativeSelect } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { EmptyState, ErrorState } from "@/components/ui/states";
import { Spinner } from "@/components/ui/spinner";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";
import { useToast } from "@/components/ui/toast";
import { PageHeader } from "@/components/layout/PageHeader";
import type { AdminUserChanges, User, UsersQuery } from "@/api/types";
import { api } from "@/lib/api";
import { USERS_PAGE, useUsers } from "@/lib/admin";
import { formatDate } from "@/lib/format";

export function AdminUsersPage() {
  const { t, i18n } = useTranslation();
  const qc = useQueryClient();
  const toast = useToast();
  const [q, setQ] = React.useState("");
  const [role, setRole] = React.useState("");
  const [active, setActive] = React.useState("");
  const [offset, setOffset] = React.useState(0);
  const users = useUsers({ search: q || undefined, role: (role || undefined) as UsersQuery["role"], state: (active || undefined) as UsersQuery["state"], offset });
  const [confirm, setConfirm] = React.useState<null | { kind: "sessions" | "reset" | "deactivate"; user: User }>(null);
  const ok = (title: string) => {
    toast({ title, variant: "success" });
    void qc.invalidateQueries({ queryKey: ["admin"] });
  };
  const fail = (e: unknown) => toast({ title: t("admin.action_failed"), description: (e as Error).message, variant: "destructive" });
  const patch = useMutation({
    mutationFn: (v: { id: string; body: AdminUserChanges }) => api<User>(`/admin/users/${v.id}`, { method: "PATCH", body: v.body }),
    onSuccess: () => ok(t("admin.user_updated")),
    onError: fail,
  });
  const endSessions = useMutation({
    mutationFn: (id: string) => api(`/admin/users/${id}/sessions/end`, { method: "POST", body: {} }),
    onSuccess: () => ok(t("admin.sessions_ended")),
    onError: fail,
  });
  const startReset = useMutation({
    mutationFn: (id: string) => api(`/admin/users/${id}/password-reset`, { method: "POST", body: {} }),
    onSuccess: () => ok(t("admin.reset_started")),
    onError: fail,
  });
  const reset = (f: () => void) => {
    setOffset(0);
    f();
  };
  return (
    <div className="grid grid-cols-1 gap-6">
      <PageHeader title={t("admin.users_title")} description={t("admin.users_subtitle")} />
      <div className="grid grid-cols-1 gap-3 sm:grid-cols-[1fr_auto_auto]">
        <div className="grid grid-cols-1 gap-1">
          <Label htmlFor="user-search">{t("admin.search_users")}</Label>
          <Input id="user-search" type="search" value={q} onChange={(e) => reset(() => setQ(e.target.value))} placeholder={t("admin.search_placeholder")} />
        </div>
        <div className="grid grid-cols-1 gap-1">
          <Label htmlFor="user-role">{t("admin.role")}</Label>
          <NativeSelect id="user-role" value={role} onChange={(e) => reset(() => setRole(e.target.value))}>
            <option value="">{t("common.all")}</option>
            <option value="user">{t("role.user")}</option>
            <option value="admin">{t("role.admin")}</option>
          </NativeSelect>
        </div>
        <div className="grid grid-cols-1 gap-1">
          <Label htmlFor="user-active">{t("admin.state")}</Label>
          <NativeSelect id="user-active" value={active} onChange={(e) => reset(() => setActive(e.target.value))}>
            <option value="">{t("common.all")}</option>
            <option value="active">{t("admin.active")}</option>
            <option value="inactive">{t("admin.inactive")}</option>
          </NativeSelect>
        </div>
      </div>
      {users.isLoading ? (
        <Spinner />
      ) : users.isError ? (
        <ErrorState error={users.error} onRetry={() => void users.refetch()} />
      ) : users.data!.items.length === 0 ? (
        <EmptyState icon={<Users className="h-8 w-8" />} title={t("admin.no_users")} />
      ) : (
        <Card>
          <Table>
            <TableHeader>
              <TableRow>
                <TableHead>{t("admin.user")}</TableHead>
                <TableHead>{t("admin.role")}</TableHead>
                <TableHead>{t("admin.state")}</TableHead>
                <TableHead className="hidden md:table-cell">{t("admin.created")}</TableHead>
                <TableHead className="text-right"><span className="sr-only">{t("common.actions")}</span></TableHead>
              </TableRow>
            </TableHeader>
            <TableBody>
              {users.data!.items.map((u) => (
                <TableRow key={u.id} data-testid="admin-user-row">
                  <TableCell>
                    <span className="block font-medium">{u.full_name || u.email}</span>
                    {u.full_name && <span className="block text-xs text-muted-foreground">{u.email}</span>}
                    {u.email_verified === false && <Badge variant="warning" className="mt-1">{t("admin.unverified")}</Badge>}
                  </TableCell>
                  <TableCell>
                    <Label htmlFor={`role-${u.id}`} className="sr-only">{t("admin.role_of", { email: u.email })}</Label>
                    <NativeSelect id={`role-${u.id}`} className="w-28" value={u.role} onChange={(e) => patch.mutate({ id: u.id, body: { role: e.target.value as User["role"] } })}>
                      <option value="user">{t("role.user")}</option>
                      <option value="admin">{t("role.admin")}</option>
                    </NativeSelect>
                  </TableCell>
                  <TableCell>
                    <span className="flex items-center gap-2">
                      <Checkbox
                        id={`active-${u.id}`}
                        checked={u.is_active}
                        onCheckedChange={(v) => (v === true ? patch.mutate({ id: u.id, body: { is_active: true } }) : setConfirm({ kind: "deactivate", user: u }))}
                      />
                      <Label htmlFor={`active-${u.id}`} className="font-normal">{u.is_active ? t("admin.active") : t("admin.inactive")}</Label>
                    </span>
                  </TableCell>
                  <TableCell className="hidden whitespace-nowrap md:table-cell">{formatDate(u.created_at, i18n.language, false)}</TableCell>
                  <TableCell className="text-right">
                    <div className="flex justify-end gap-1">
                      <Button size="sm" variant="outline" onClick={() => setConfirm({ kind: "sessions", user: u })} aria-label={t("admin.end_sessions_of", { email: u.email })}>
                        <LogOut /> <span className="hidden xl:inline">{t("admin.end_sessions")}</span>
                      </Button>
                      <Button size="sm" variant="outline" onClick={() => setConfirm({ kind: "reset", user: u })} aria-label={t("admin.start_reset_of", { email: u.email })}>
                        <KeyRound /> <span className="hidden xl:inline">{t("admin.start_reset")}</span>
                      </Button>
                    </div>
                  </TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
          <div className="flex flex-wrap items-center justify-end gap-2 border-t p-3 text-sm text-muted-foreground">
            <span>{t("admin.users_total", { count: users.data!.total })}</span>
            <Button size="sm" variant="outline" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - USERS_PAGE))} aria-label={t("documents.prev_page")}><ChevronLeft /></Button>
            <Button size="sm" variant="outline" disabled={offset + USERS_PAGE >= users.data!.total} onClick={() => setOffset(offset + USERS_PAGE)} aria-label={t("documents.next_page")}><ChevronRight /></Button>
          </div>
        </Card>
      )}
      <ConfirmDialog
        open={!!confirm}
        onOpenChange={(o) => !o && setConfirm(null)}
        title={confirm ? t(`admin.confirm_${confirm.kind}_title`, { email: confirm.user.email }) : ""}
        description={confirm ? t(`admin.confirm_${confirm.kind}_description`) : ""}
        confirmLabel={confirm ? t(`admin.confirm_${confirm.kind}`) : ""}
        onConfirm={() => {
          if (!confirm) return;
          if (confirm.kind === "sessions") endSessions.mutate(confirm.user.id);
          else if (confirm.kind === "reset") startReset.mutate(confirm.user.id);
          else patch.mutate({ id: confirm.user.id, body: { is_active: false } });
        }}
      />
    </div>
  );
}
