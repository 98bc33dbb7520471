import * as React from "react";
import { useTranslation } from "react-i18next";
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { ChevronLeft, ChevronRight, KeyRound, LogOut, Plus, ScrollText, Trash2, Users } from "lucide-react";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Checkbox } from "@/components/ui/checkbox";
import { ConfirmDialog } from "@/components/ui/alert-dialog";
import { Input, NativeSelect } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { EmptyState, ErrorState, FormError, Spinner } from "@/components/ui/states";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";
import { Tabs, TabsContent, TabsList, TabsTrigger } from "@/components/ui/tabs";
import { useToast } from "@/components/ui/toast";
import { PageHeader } from "@/components/layout/AppShell";
import { api } from "@/lib/api";
import type { User } from "@/lib/auth";
import { asList, formatDate } from "@/lib/utils";

interface UserPage {
  items: User[];
  total: number;
  limit: number;
  offset: number;
}

const USERS_PAGE = 25;

function useUsers(search: { q?: string; role?: string; state?: string; offset?: number; limit?: number }) {
  return useQuery({
    queryKey: ["admin", "users", search],
    queryFn: () =>
      api<UserPage>("/admin/users", {
        query: { search: search.q, role: search.role, state: search.state, offset: search.offset ?? 0, limit: search.limit ?? USERS_PAGE },
      }),
    placeholderData: keepPreviousData,
  });
}

export function AdminUsersPage() {
  const { t, i18n } = useTranslation();
  const qc = useQueryClient();
  const toast = useToast();
  const [q, setQ] = React.useState("");
  const [role, setRole] = React.useState("");
  const [active, setActive] = React.useState("");
  const [offset, setOffset] = React.useState(0);
  const users = useUsers({ q: q || undefined, role: role || undefined, state: active || undefined, offset });
  const [confirm, setConfirm] = React.useState<null | { kind: "sessions" | "reset" | "deactivate"; user: User }>(null);
  const ok = (title: string) => {
    toast({ title, variant: "success" });
    void qc.invalidateQueries({ queryKey: ["admin"] });
  };
  const fail = (e: unknown) => toast({ title: t("admin.action_failed"), description: (e as Error).message, variant: "destructive" });
  const patch = useMutation({
    mutationFn: (v: { id: string; body: Record<string, unknown> }) => api(`/admin/users/${v.id}`, { method: "PATCH", body: v.body }),
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
                    <NativeSelect id={`role-${u.id}`} className="w-28" value={u.role} onChange={(e) => patch.mutate({ id: u.id, body: { role: e.target.value } })}>
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

interface AdminApp {
  key: string;
  name: string;
  description?: string;
  available?: boolean;
  default_grant?: boolean;
  version?: string;
}
interface UserGrants {
  user_id: string;
  direct: { app_key: string; granted_at: string }[];
  via_groups: { group_id: string; group_name: string; app_key: string }[];
  effective: string[];
}
interface Group {
  id: string;
  name: string;
  description?: string;
  member_ids: string[];
  app_keys: string[];
}

export function AdminPermissionsPage() {
  const { t } = useTranslation();
  const apps = useQuery({ queryKey: ["admin", "apps"], queryFn: async () => asList<AdminApp>(await api("/admin/apps")) });
  return (
    <div className="grid grid-cols-1 gap-6">
      <PageHeader title={t("admin.permissions_title")} description={t("admin.permissions_subtitle")} />
      {apps.isError && <ErrorState error={apps.error} onRetry={() => void apps.refetch()} />}
      <Tabs defaultValue="users">
        <TabsList>
          <TabsTrigger value="users">{t("admin.per_user")}</TabsTrigger>
          <TabsTrigger value="groups">{t("admin.groups")}</TabsTrigger>
          <TabsTrigger value="apps">{t("admin.apps")}</TabsTrigger>
        </TabsList>
        <TabsContent value="users"><UserGrantsPanel apps={apps.data ?? []} /></TabsContent>
        <TabsContent value="groups"><GroupsPanel apps={apps.data ?? []} /></TabsContent>
        <TabsContent value="apps">
          <Card>
            <Table>
              <TableHeader>
                <TableRow>
                  <TableHead>{t("admin.app")}</TableHead>
                  <TableHead>{t("admin.state")}</TableHead>
                  <TableHead>{t("admin.default_grant")}</TableHead>
                </TableRow>
              </TableHeader>
              <TableBody>
                {(apps.data ?? []).map((a) => (
                  <TableRow key={a.key}>
                    <TableCell>
                      <span className="block font-medium">{a.name}</span>
                      <span className="block text-xs text-muted-foreground">{a.key}{a.version ? ` · ${a.version}` : ""}</span>
                    </TableCell>
                    <TableCell>{a.available === false ? <Badge variant="warning">{t("admin.unavailable")}</Badge> : <Badge variant="success">{t("admin.available")}</Badge>}</TableCell>
                    <TableCell>{a.default_grant ? t("common.yes") : t("common.no")}</TableCell>
                  </TableRow>
                ))}
              </TableBody>
            </Table>
          </Card>
        </TabsContent>
      </Tabs>
    </div>
  );
}

function UserPicker({ id, label, onPick }: { id: string; label: string; onPick: (u: User) => void }) {
  const { t } = useTranslation();
  const [q, setQ] = React.useState("");
  const users = useUsers({ q: q || undefined, limit: 8 });
  return (
    <div className="grid grid-cols-1 gap-1.5">
      <Label htmlFor={id}>{label}</Label>
      <Input id={id} type="search" value={q} placeholder={t("admin.search_placeholder")} onChange={(e) => setQ(e.target.value)} />
      {q && (
        <ul className="rounded-md border" role="listbox" aria-label={label}>
          {(users.data?.items ?? []).map((u) => (
            <li key={u.id}>
              <button type="button" className="w-full px-3 py-1.5 text-left text-sm hover:bg-accent focus-visible:bg-accent focus-visible:outline-none" onClick={() => { onPick(u); setQ(""); }}>
                {u.email}{u.full_name ? ` — ${u.full_name}` : ""}
              </button>
            </li>
          ))}
          {users.data?.items.length === 0 && <li className="px-3 py-1.5 text-sm text-muted-foreground">{t("admin.no_users")}</li>}
        </ul>
      )}
    </div>
  );
}

function UserGrantsPanel({ apps }: { apps: AdminApp[] }) {
  const { t } = useTranslation();
  const qc = useQueryClient();
  const toast = useToast();
  const [user, setUser] = React.useState<User | null>(null);
  const grants = useQuery({ queryKey: ["admin", "grants", user?.id], queryFn: () => api<UserGrants>(`/admin/users/${user!.id}/grants`), enabled: !!user });
  const change = useMutation({
    mutationFn: (v: { app: string; grant: boolean }) => api(`/admin/users/${user!.id}/grants/${v.app}`, { method: v.grant ? "PUT" : "DELETE", body: v.grant ? {} : undefined }),
    onSuccess: (_d, v) => {
      toast({ title: v.grant ? t("admin.granted") : t("admin.revoked"), variant: "success" });
      void qc.invalidateQueries({ queryKey: ["admin", "grants"] });
    },
    onError: (e) => toast({ title: t("admin.action_failed"), description: (e as Error).message, variant: "destructive" }),
  });
  return (
    <div className="grid grid-cols-1 gap-4">
      <UserPicker id="grant-user" label={t("admin.pick_user")} onPick={setUser} />
      {user && (
        <Card>
          <CardHeader>
            <CardTitle>{user.email}</CardTitle>
            <CardDescription>{user.role === "admin" ? t("admin.admin_sees_all") : t("admin.grants_hint")}</CardDescription>
          </CardHeader>
          <CardContent>
            {grants.isLoading ? <Spinner /> : grants.isError ? <ErrorState error={grants.error} /> : (
              <ul className="grid grid-cols-1 gap-2" data-testid="user-grants">
                {apps.map((a) => {
                  const direct = grants.data!.direct.some((g) => g.app_key === a.key);
                  const groups = grants.data!.via_groups.filter((g) => g.app_key === a.key).map((g) => g.group_name);
                  return (
                    <li key={a.key} className="flex flex-wrap items-center gap-3">
                      <Checkbox id={`grant-${a.key}`} checked={direct} onCheckedChange={(v) => change.mutate({ app: a.key, grant: v === true })} disabled={change.isPending} />
                      <Label htmlFor={`grant-${a.key}`} className="font-normal">{t("admin.direct_grant", { app: a.name })}</Label>
                      {groups.length > 0 && <Badge variant="info">{t("admin.via_groups", { groups: groups.join(", ") })}</Badge>}
                    </li>
                  );
                })}
              </ul>
            )}
          </CardContent>
        </Card>
      )}
    </div>
  );
}

function GroupsPanel({ apps }: { apps: AdminApp[] }) {
  const { t } = useTranslation();
  const qc = useQueryClient();
  const toast = useToast();
  const groups = useQuery({ queryKey: ["admin", "groups"], queryFn: async () => asList<Group>(await api("/admin/groups")) });
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

interface DocSettings {
  provider: string;
  model: string;
  base_url: string;
  prompt_instructions: string;
  request_timeout_s: number;
  max_upload_mb: number;
  duplicate_policy: "reject" | "mark";
  ai_may_create_categories: boolean;
  quota_documents_per_user?: number | null;
  quota_storage_mb_per_user?: number | null;
  task_retention_days: number;
  api_key_set?: boolean;
  api_key_last4?: string;
}
const PROVIDERS = ["builtin", "anthropic", "ollama", "openai_compatible"];

export function AdminDocumentsSettingsPage() {
  const { t } = useTranslation();
  const qc = useQueryClient();
  const toast = useToast();
  const settings = useQuery({ queryKey: ["admin", "doc-settings"], queryFn: () => api<DocSettings>("/apps/documents/settings") });
  const [form, setForm] = React.useState<DocSettings | null>(null);
  const [apiKey, setApiKey] = React.useState("");
  React.useEffect(() => {
    if (settings.data) setForm(settings.data);
  }, [settings.data]);
  const save = useMutation({
    mutationFn: () => {
      const body: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(form!)) {
        if (k === "api_key_set" || k === "api_key_last4") continue;
        if (v !== (settings.data as unknown as Record<string, unknown>)[k]) body[k] = v === "" && k.startsWith("quota") ? null : v;
      }
      if (apiKey) body.api_key = apiKey;
      return api<DocSettings>("/apps/documents/settings", { method: "PATCH", body });
    },
    onSuccess: (d) => {
      qc.setQueryData(["admin", "doc-settings"], d);
      setApiKey("");
      toast({ title: t("settings.saved"), variant: "success" });
    },
  });
  const clearKey = useMutation({
    mutationFn: () => api<DocSettings>("/apps/documents/settings", { method: "PATCH", body: { api_key: "" } }),
    onSuccess: (d) => qc.setQueryData(["admin", "doc-settings"], d),
  });
  const test = useMutation({
    mutationFn: () =>
      api<{ ok: boolean; provider: string; model: string; latency_ms: number; message: string }>("/apps/documents/settings/test", {
        method: "POST",
        body: { provider: form!.provider, model: form!.model || null, base_url: form!.base_url || null, ...(apiKey ? { api_key: apiKey } : {}) },
      }),
  });
  if (settings.isLoading || (!form && !settings.isError)) return <Spinner />;
  if (settings.isError) return <ErrorState error={settings.error} onRetry={() => void settings.refetch()} />;
  const f = form!;
  const set = (patch: Partial<DocSettings>) => setForm({ ...f, ...patch });
  const num = (v: string) => (v === "" ? null : Number(v));
  return (
    <div className="grid grid-cols-1 gap-6">
      <PageHeader title={t("settings.title")} description={t("settings.subtitle")} />
      <form className="grid grid-cols-1 gap-6" onSubmit={(e) => { e.preventDefault(); save.mutate(); }}>
        <Card>
          <CardHeader>
            <CardTitle>{t("settings.ai")}</CardTitle>
            <CardDescription>{t("settings.ai_hint")}</CardDescription>
          </CardHeader>
          <CardContent className="grid grid-cols-1 gap-4 sm:grid-cols-2">
            <div className="grid grid-cols-1 gap-1.5">
              <Label htmlFor="provider">{t("settings.provider")}</Label>
              <NativeSelect id="provider" value={f.provider} onChange={(e) => set({ provider: e.target.value })}>
                {PROVIDERS.map((p) => <option key={p} value={p}>{t(`provider.${p}`)}</option>)}
              </NativeSelect>
            </div>
            <div className="grid grid-cols-1 gap-1.5">
              <Label htmlFor="model">{t("settings.model")}</Label>
              <Input id="model" value={f.model} onChange={(e) => set({ model: e.target.value })} disabled={f.provider === "builtin"} />
            </div>
            <div className="grid grid-cols-1 gap-1.5 sm:col-span-2">
              <Label htmlFor="base_url">{t("settings.base_url")}</Label>
              <Input id="base_url" type="url" value={f.base_url} placeholder="http://127.0.0.1:11434" onChange={(e) => set({ base_url: e.target.value })} disabled={f.provider === "builtin" || f.provider === "anthropic"} />
            </div>
            <div className="grid grid-cols-1 gap-1.5 sm:col-span-2">
              <Label htmlFor="api_key">{t("settings.api_key")}</Label>
              <div className="flex flex-col gap-2 sm:flex-row">
                <Input
                  id="api_key"
                  type="password"
                  autoComplete="off"
                  value={apiKey}
                  placeholder={f.api_key_set ? t("settings.key_set", { last4: f.api_key_last4 }) : t("settings.key_not_set")}
                  onChange={(e) => setApiKey(e.target.value)}
                  aria-describedby="api-key-hint"
                />
                {f.api_key_set && <Button type="button" variant="outline" onClick={() => clearKey.mutate()}>{t("settings.clear_key")}</Button>}
              </div>
              <p id="api-key-hint" className="text-xs text-muted-foreground">
                {f.api_key_set ? t("settings.key_set", { last4: f.api_key_last4 }) : t("settings.key_not_set")} · {t("settings.key_hint")}
              </p>
            </div>
            <div className="grid grid-cols-1 gap-1.5">
              <Label htmlFor="timeout">{t("settings.timeout")}</Label>
              <Input id="timeout" type="number" min={1} max={600} value={f.request_timeout_s} onChange={(e) => set({ request_timeout_s: Number(e.target.value) })} />
            </div>
            <div className="flex items-center gap-2 pt-6">
              <Checkbox id="ai_cats" checked={f.ai_may_create_categories} onCheckedChange={(v) => set({ ai_may_create_categories: v === true })} />
              <Label htmlFor="ai_cats" className="font-normal">{t("settings.ai_may_create_categories")}</Label>
            </div>
            <div className="grid grid-cols-1 gap-1.5 sm:col-span-2">
              <Label htmlFor="prompt">{t("settings.prompt")}</Label>
              <textarea id="prompt" className="min-h-20 rounded-md border border-input bg-background px-3 py-2 text-sm" maxLength={4000} value={f.prompt_instructions} onChange={(e) => set({ prompt_instructions: e.target.value })} />
            </div>
            <div className="flex flex-wrap items-center gap-3 sm:col-span-2">
              <Button type="button" variant="outline" onClick={() => test.mutate()} disabled={test.isPending}>{test.isPending ? t("settings.testing") : t("settings.test")}</Button>
              {test.data && (
                <p role="status" className={test.data.ok ? "text-sm text-success" : "text-sm text-destructive"} data-testid="test-result">
                  {test.data.ok ? t("settings.test_ok", { model: test.data.model || test.data.provider, ms: Math.round(test.data.latency_ms) }) : t("settings.test_failed", { message: test.data.message })}
                </p>
              )}
              {test.error && <p role="alert" className="text-sm text-destructive">{(test.error as Error).message}</p>}
            </div>
          </CardContent>
        </Card>
        <Card>
          <CardHeader>
            <CardTitle>{t("settings.uploads")}</CardTitle>
          </CardHeader>
          <CardContent className="grid grid-cols-1 gap-4 sm:grid-cols-2">
            <div className="grid grid-cols-1 gap-1.5">
              <Label htmlFor="max_upload">{t("settings.max_upload")}</Label>
              <Input id="max_upload" type="number" min={1} max={2048} value={f.max_upload_mb} onChange={(e) => set({ max_upload_mb: Number(e.target.value) })} />
            </div>
            <div className="grid grid-cols-1 gap-1.5">
              <Label htmlFor="duplicates">{t("settings.duplicates")}</Label>
              <NativeSelect id="duplicates" value={f.duplicate_policy} onChange={(e) => set({ duplicate_policy: e.target.value as "reject" | "mark" })}>
                <option value="mark">{t("settings.dup_mark")}</option>
                <option value="reject">{t("settings.dup_reject")}</option>
              </NativeSelect>
            </div>
            <div className="grid grid-cols-1 gap-1.5">
              <Label htmlFor="quota_docs">{t("settings.quota_docs")}</Label>
              <Input id="quota_docs" type="number" min={1} placeholder={t("settings.unlimited")} value={f.quota_documents_per_user ?? ""} onChange={(e) => set({ quota_documents_per_user: num(e.target.value) })} />
            </div>
            <div className="grid grid-cols-1 gap-1.5">
              <Label htmlFor="quota_mb">{t("settings.quota_mb")}</Label>
              <Input id="quota_mb" type="number" min={1} placeholder={t("settings.unlimited")} value={f.quota_storage_mb_per_user ?? ""} onChange={(e) => set({ quota_storage_mb_per_user: num(e.target.value) })} />
            </div>
            <div className="grid grid-cols-1 gap-1.5">
              <Label htmlFor="retention">{t("settings.retention")}</Label>
              <Input id="retention" type="number" min={1} max={3650} value={f.task_retention_days} onChange={(e) => set({ task_retention_days: Number(e.target.value) })} />
            </div>
          </CardContent>
        </Card>
        <FormError error={save.error} />
        <div><Button type="submit" disabled={save.isPending}>{t("common.save")}</Button></div>
      </form>
    </div>
  );
}

const AUDIT_PAGE = 50;

interface AuditEntry {
  id: string;
  at?: string;
  created_at?: string;
  action: string;
  actor_id?: string | null;
  actor_email?: string | null;
  target_id?: string | null;
  target_email?: string | null;
  ip?: string | null;
  request_id?: string | null;
  details?: unknown;
}

export function AdminAuditPage() {
  const { t, i18n } = useTranslation();
  const [action, setAction] = React.useState("");
  const [from, setFrom] = React.useState("");
  const [to, setTo] = React.useState("");
  const [offset, setOffset] = React.useState(0);
  const audit = useQuery({
    queryKey: ["admin", "audit", action, from, to, offset],
    queryFn: () =>
      api<{ items: AuditEntry[]; total: number }>("/admin/audit", {
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
              {audit.data!.items.map((e, i) => (
                <TableRow key={e.id ?? i}>
                  <TableCell className="whitespace-nowrap">{formatDate(e.at ?? e.created_at, i18n.language)}</TableCell>
                  <TableCell><Badge variant={/fail|reuse/.test(e.action) ? "destructive" : "outline"}>{e.action}</Badge></TableCell>
                  <TableCell className="max-w-[12rem] truncate font-mono text-xs">{e.actor_email ?? e.actor_id ?? "—"}</TableCell>
                  <TableCell className="hidden max-w-[12rem] truncate md:table-cell">{e.target_email ?? e.target_id ?? "—"}</TableCell>
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
