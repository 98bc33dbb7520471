import * as React from "react";
import { useTranslation } from "@/lib/i18n";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Plus, Trash2 } from "lucide-react";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardHeader, CardTitle } from "@/components/ui/card";
import { Checkbox } from "@/components/ui/checkbox";
import { ConfirmDialog } from "@/components/ui/alert-dialog";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { EmptyState, ErrorState } from "@/components/ui/states";
import { FormError } from "@/components/ui/form-error";
import { Spinner } from "@/components/ui/spinner";
import { useToast } from "@/components/ui/toast";
import type { AdminApp, Group, GroupList } from "@/api/types";
import { api } from "@/lib/api";
import { useUsers } from "@/lib/admin";
import { UserPicker } from "./UserPicker";

/** Groups: their apps and members; a member gets every app of the group. */
export function GroupsPanel({ apps }: { apps: AdminApp[] }) {
  const { t } = useTranslation();
  const qc = useQueryClient();
  const toast = useToast();
  const groups = useQuery({ queryKey: ["admin", "groups"], queryFn: async ({ signal }) => (await api<GroupList>("/admin/groups", { signal })).groups });
  const users = useUsers({ limit: 200 });
  const [name, setName] = React.useState("");
  const [deleting, setDeleting] = React.useState<Group | null>(null);
  const refresh = () => void qc.invalidateQueries({ queryKey: ["admin"] });
  const fail = (e: unknown) => toast({ title: t("admin.action_failed"), description: (e as Error).message, variant: "destructive" });
  const create = useMutation({ mutationFn: () => api("/admin/groups", { method: "POST", body: { name: name.trim() } }), onSuccess: () => { setName(""); refresh(); } });
  const del = useMutation({ mutationFn: (id: string) => api(`/admin/groups/${id}`, { method: "DELETE" }), onSuccess: refresh, onError: fail });
  const grant = useMutation({
    mutationFn: (v: { group: string; app: string; on: boolean }) => api(`/admin/groups/${v.group}/grants/${v.app}`, { method: v.on ? "PUT" : "DELETE", body: v.on ? {} : undefined }),
    onSuccess: refresh,
    onError: fail,
  });
  const member = useMutation({
    mutationFn: (v: { group: string; user: string; on: boolean }) => api(`/admin/groups/${v.group}/members/${v.user}`, { method: v.on ? "PUT" : "DELETE", body: v.on ? {} : undefined }),
    onSuccess: refresh,
    onError: fail,
  });
  const emailOf = (id: string) => users.data?.items.find((u) => u.id === id)?.email ?? id;
  return (
    <div className="grid grid-cols-1 gap-4">
      <form className="flex flex-col gap-2 sm:flex-row sm:items-end" onSubmit={(e) => { e.preventDefault(); if (name.trim()) create.mutate(); }}>
        <div className="grid grid-cols-1 flex-1 gap-1.5">
          <Label htmlFor="group-name">{t("admin.new_group")}</Label>
          <Input id="group-name" value={name} maxLength={80} onChange={(e) => setName(e.target.value)} />
        </div>
        <Button type="submit" disabled={!name.trim()}><Plus /> {t("admin.create_group")}</Button>
      </form>
      <FormError error={create.error} />
      {groups.isLoading ? <Spinner /> : groups.isError ? <ErrorState error={groups.error} /> : (groups.data ?? []).length === 0 ? (
        <EmptyState title={t("admin.no_groups")} description={t("admin.no_groups_hint")} />
      ) : (
        <div className="grid grid-cols-1 gap-4 md:grid-cols-2">
          {groups.data!.map((g) => (
            <Card key={g.id}>
              <CardHeader className="flex-row items-center justify-between">
                <CardTitle>{g.name}</CardTitle>
                <Button size="icon" variant="ghost" aria-label={t("admin.delete_group", { name: g.name })} onClick={() => setDeleting(g)}><Trash2 /></Button>
              </CardHeader>
              <CardContent className="grid grid-cols-1 gap-4">
                <fieldset className="grid grid-cols-1 gap-2">
                  <legend className="mb-1 text-xs font-medium text-muted-foreground">{t("admin.group_apps")}</legend>
                  {apps.map((a) => (
                    <span key={a.key} className="flex items-center gap-2">
                      <Checkbox id={`g-${g.id}-${a.key}`} checked={g.app_keys.includes(a.key)} onCheckedChange={(v) => grant.mutate({ group: g.id, app: a.key, on: v === true })} />
                      <Label htmlFor={`g-${g.id}-${a.key}`} className="font-normal">{a.name}</Label>
                    </span>
                  ))}
                </fieldset>
                <div className="grid grid-cols-1 gap-2">
                  <p className="text-xs font-medium text-muted-foreground">{t("admin.members", { count: g.member_ids.length })}</p>
                  <ul className="flex flex-wrap gap-1.5">
                    {g.member_ids.map((id) => (
                      <li key={id}>
                        <Badge variant="secondary" className="gap-1 py-1">
                          {emailOf(id)}
                          <button type="button" aria-label={t("admin.remove_member", { email: emailOf(id) })} onClick={() => member.mutate({ group: g.id, user: id, on: false })} className="hover:text-destructive">×</button>
                        </Badge>
                      </li>
                    ))}
                  </ul>
                  <UserPicker id={`add-member-${g.id}`} label={t("admin.add_member")} onPick={(u) => member.mutate({ group: g.id, user: u.id, on: true })} />
                </div>
              </CardContent>
            </Card>
          ))}
        </div>
      )}
      <ConfirmDialog
        open={!!deleting}
        onOpenChange={(o) => !o && setDeleting(null)}
        title={t("admin.delete_group", { name: deleting?.name ?? "" })}
        description={t("admin.delete_group_description")}
        confirmLabel={t("common.delete")}
        onConfirm={() => deleting && del.mutate(deleting.id)}
      />
    </div>
  );
}
