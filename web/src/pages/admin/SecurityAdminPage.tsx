import * as React from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Plus, Trash2 } from "lucide-react";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Checkbox } from "@/components/ui/checkbox";
import { ConfirmDialog } from "@/components/ui/alert-dialog";
import { Dialog, DialogContent, DialogFooter, DialogHeader, DialogTitle } from "@/components/ui/dialog";
import { Input, NativeSelect } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { FormError } from "@/components/ui/form-error";
import { Spinner } from "@/components/ui/spinner";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";
import { useToast } from "@/components/ui/toast";
import { PageHeader } from "@/components/layout/PageHeader";
import type { ExternalAuthSettings, GroupList, SecondFactorPolicy, SecurityPolicy, SsoProvider, SsoProviderList } from "@/api/types";
import { api } from "@/lib/api";
import { useTranslation } from "@/lib/i18n";

const KEY = ["admin", "security"] as const;

/** Admin → Security: who must have a second factor, single sign-on providers, the external auth server. */
export function AdminSecurityPage() {
  const { t } = useTranslation();
  return (
    <div className="grid grid-cols-1 gap-4">
      <PageHeader title={t("admin_security.title")} description={t("admin_security.subtitle")} />
      <PolicyCard />
      <SsoCard />
      <ExternalCard />
    </div>
  );
}

function Check({ id, label, checked, onChange }: { id: string; label: string; checked: boolean; onChange: (v: boolean) => void }) {
  return (
    <div className="flex items-center gap-2">
      <Checkbox id={id} checked={checked} onCheckedChange={(v) => onChange(v === true)} />
      <Label htmlFor={id} className="font-normal">{label}</Label>
    </div>
  );
}

function TextField({ id, label, value, onChange, ...rest }: { id: string; label: string; value: string; onChange: (v: string) => void } & Omit<React.InputHTMLAttributes<HTMLInputElement>, "onChange" | "value">) {
  return (
    <div className="grid gap-1.5">
      <Label htmlFor={id}>{label}</Label>
      <Input id={id} value={value} onChange={(e) => onChange(e.target.value)} {...rest} />
    </div>
  );
}

function PolicyCard() {
  const { t } = useTranslation();
  const toast = useToast();
  const qc = useQueryClient();
  const policy = useQuery({ queryKey: [...KEY, "policy"], queryFn: () => api<SecurityPolicy>("/admin/security-policy") });
  const [value, setValue] = React.useState<SecondFactorPolicy>("optional");
  React.useEffect(() => { if (policy.data) setValue(policy.data.second_factor); }, [policy.data]);
  const save = useMutation({
    mutationFn: () => api("/admin/security-policy", { method: "PUT", body: { second_factor: value } }),
    onSuccess: () => { toast({ title: t("admin_security.policy_saved"), variant: "success" }); void qc.invalidateQueries({ queryKey: KEY }); },
  });
  return (
    <Card>
      <CardHeader><CardTitle>{t("admin_security.policy_title")}</CardTitle><CardDescription>{t("admin_security.policy_hint")}</CardDescription></CardHeader>
      <CardContent>
        <form className="flex flex-wrap items-end gap-2" onSubmit={(e) => { e.preventDefault(); save.mutate(); }}>
          <div className="grid gap-1.5">
            <Label htmlFor="policy">{t("admin_security.policy_label")}</Label>
            <NativeSelect id="policy" value={value} disabled={!policy.data} onChange={(e) => setValue(e.target.value as SecondFactorPolicy)}>
              {(["optional", "admins", "everyone"] as const).map((p) => <option key={p} value={p}>{t(`admin_security.policy_${p}`)}</option>)}
            </NativeSelect>
          </div>
          <Button type="submit" disabled={save.isPending || policy.isLoading}>{t("common.save")}</Button>
        </form>
        <FormError error={save.error} />
      </CardContent>
    </Card>
  );
}

interface ProviderForm {
  id: string; label: string; issuer: string; client_id: string; client_secret: string; scopes: string;
  link_by_email: boolean; create_users: boolean; groups_claim: string; group_map: [string, string][]; enabled: boolean;
}

const EMPTY: ProviderForm = {
  id: "", label: "", issuer: "", client_id: "", client_secret: "", scopes: "openid email profile",
  link_by_email: true, create_users: false, groups_claim: "", group_map: [], enabled: true,
};

function SsoCard() {
  const { t } = useTranslation();
  const qc = useQueryClient();
  const providers = useQuery({ queryKey: [...KEY, "sso"], queryFn: async () => (await api<SsoProviderList>("/admin/sso-providers")).items });
  const [editing, setEditing] = React.useState<{ form: ProviderForm; isNew: boolean } | null>(null);
  const [deleting, setDeleting] = React.useState<SsoProvider | null>(null);
  const remove = useMutation({
    mutationFn: (id: string) => api(`/admin/sso-providers/${id}`, { method: "DELETE" }),
    onSuccess: () => { setDeleting(null); void qc.invalidateQueries({ queryKey: KEY }); },
  });
  const open = (p: SsoProvider) => setEditing({
    isNew: false,
    form: { ...p, client_secret: "", groups_claim: p.groups_claim ?? "", group_map: Object.entries(p.group_map ?? {}) },
  });
  return (
    <Card>
      <CardHeader>
        <CardTitle>{t("admin_security.sso_title")}</CardTitle>
        <CardDescription>{t("admin_security.sso_hint")}</CardDescription>
      </CardHeader>
      <CardContent className="grid gap-3">
        {providers.isLoading ? <Spinner /> : (providers.data ?? []).length === 0 ? <p className="text-sm text-muted-foreground">{t("admin_security.no_providers")}</p> : (
          <Table aria-label={t("admin_security.sso_title")}>
            <TableHeader><TableRow>
              <TableHead>{t("admin_security.label")}</TableHead><TableHead>{t("admin_security.issuer")}</TableHead>
              <TableHead>{t("admin_security.redirect_uri")}</TableHead><TableHead><span className="sr-only">{t("common.actions")}</span></TableHead>
            </TableRow></TableHeader>
            <TableBody>
              {providers.data!.map((p) => (
                <TableRow key={p.id}>
                  <TableCell><span className="font-medium">{p.label}</span> {!p.enabled && <Badge variant="secondary">{t("admin_security.disabled")}</Badge>}</TableCell>
                  <TableCell className="max-w-xs truncate">{p.issuer}</TableCell>
                  <TableCell><code className="break-all text-xs">{p.redirect_uri}</code></TableCell>
                  <TableCell className="space-x-2 text-right">
                    <Button size="sm" variant="outline" onClick={() => open(p)}>{t("admin_security.edit")}</Button>
                    <Button size="sm" variant="ghost" aria-label={t("admin_security.delete_provider", { name: p.label })} onClick={() => setDeleting(p)}><Trash2 /></Button>
                  </TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
        )}
        <div><Button variant="outline" onClick={() => setEditing({ form: EMPTY, isNew: true })}><Plus /> {t("admin_security.add_provider")}</Button></div>
      </CardContent>
      {editing && <ProviderDialog initial={editing.form} isNew={editing.isNew} onClose={() => setEditing(null)} />}
      <ConfirmDialog
        open={!!deleting} onOpenChange={(o) => !o && setDeleting(null)}
        title={t("admin_security.delete_provider", { name: deleting?.label ?? "" })} description={t("admin_security.delete_provider_hint")}
        confirmLabel={t("common.delete")} onConfirm={() => deleting && remove.mutate(deleting.id)}
      />
    </Card>
  );
}

function ProviderDialog({ initial, isNew, onClose }: { initial: ProviderForm; isNew: boolean; onClose: () => void }) {
  const { t } = useTranslation();
  const qc = useQueryClient();
  const [form, setForm] = React.useState<ProviderForm>(initial);
  const set = <K extends keyof ProviderForm>(k: K, v: ProviderForm[K]) => setForm((f) => ({ ...f, [k]: v }));
  const groups = useQuery({ queryKey: ["admin", "groups"], queryFn: async ({ signal }) => (await api<GroupList>("/admin/groups", { signal })).groups });
  const save = useMutation({
    mutationFn: () => api(`/admin/sso-providers/${form.id}`, {
      method: "PUT",
      body: {
        label: form.label, issuer: form.issuer, client_id: form.client_id, scopes: form.scopes,
        link_by_email: form.link_by_email, create_users: form.create_users, enabled: form.enabled,
        groups_claim: form.groups_claim.trim() || null,
        group_map: Object.fromEntries(form.group_map.filter(([k, g]) => k.trim() && g)),
        ...(form.client_secret ? { client_secret: form.client_secret } : {}),
      },
    }),
    onSuccess: () => { void qc.invalidateQueries({ queryKey: KEY }); onClose(); },
  });
  return (
    <Dialog open onOpenChange={(o) => !o && onClose()}>
      <DialogContent className="max-h-[90vh] overflow-y-auto">
        <DialogHeader><DialogTitle>{isNew ? t("admin_security.add_provider") : t("admin_security.edit_provider", { name: initial.label })}</DialogTitle></DialogHeader>
        <form id="provider-form" className="grid gap-3" onSubmit={(e) => { e.preventDefault(); save.mutate(); }}>
          <TextField id="sso-id" label={t("admin_security.provider_id")} value={form.id} onChange={(v) => set("id", v)} required disabled={!isNew} pattern="[a-z0-9][a-z0-9\-]{0,39}" />
          <TextField id="sso-label" label={t("admin_security.label")} value={form.label} onChange={(v) => set("label", v)} required />
          <TextField id="sso-issuer" label={t("admin_security.issuer")} value={form.issuer} onChange={(v) => set("issuer", v)} required type="url" />
          <TextField id="sso-client-id" label={t("admin_security.client_id")} value={form.client_id} onChange={(v) => set("client_id", v)} required />
          <TextField id="sso-secret" label={t("admin_security.client_secret")} value={form.client_secret} onChange={(v) => set("client_secret", v)} type="password"
            placeholder={isNew ? "" : t("admin_security.secret_kept")} required={isNew} autoComplete="off" />
          <TextField id="sso-scopes" label={t("admin_security.scopes")} value={form.scopes} onChange={(v) => set("scopes", v)} />
          <Check id="sso-link" label={t("admin_security.link_by_email")} checked={form.link_by_email} onChange={(v) => set("link_by_email", v)} />
          <Check id="sso-jit" label={t("admin_security.create_users")} checked={form.create_users} onChange={(v) => set("create_users", v)} />
          <Check id="sso-enabled" label={t("admin_security.enabled")} checked={form.enabled} onChange={(v) => set("enabled", v)} />
          <TextField id="sso-groups-claim" label={t("admin_security.groups_claim")} value={form.groups_claim} onChange={(v) => set("groups_claim", v)} placeholder="groups" />
          <fieldset className="grid gap-2">
            <legend className="text-sm font-medium">{t("admin_security.group_map")}</legend>
            {form.group_map.map(([value, group], i) => (
              <div key={i} className="flex gap-2">
                <Input aria-label={t("admin_security.claim_value")} value={value} onChange={(e) => set("group_map", form.group_map.map((row, j) => (j === i ? [e.target.value, row[1]] : row)))} />
                <NativeSelect aria-label={t("admin_security.atrium_group")} value={group} onChange={(e) => set("group_map", form.group_map.map((row, j) => (j === i ? [row[0], e.target.value] : row)))}>
                  <option value="">—</option>
                  {(groups.data ?? []).map((g) => <option key={g.id} value={g.id}>{g.name}</option>)}
                </NativeSelect>
                <Button type="button" variant="ghost" aria-label={t("common.delete")} onClick={() => set("group_map", form.group_map.filter((_, j) => j !== i))}><Trash2 /></Button>
              </div>
            ))}
            <div><Button type="button" size="sm" variant="outline" onClick={() => set("group_map", [...form.group_map, ["", ""]])}><Plus /> {t("admin_security.add_mapping")}</Button></div>
          </fieldset>
          <FormError error={save.error} />
        </form>
        <DialogFooter>
          <Button variant="outline" onClick={onClose}>{t("common.cancel")}</Button>
          <Button type="submit" form="provider-form" disabled={save.isPending}>{t("common.save")}</Button>
        </DialogFooter>
      </DialogContent>
    </Dialog>
  );
}

function ExternalCard() {
  const { t } = useTranslation();
  const toast = useToast();
  const qc = useQueryClient();
  const current = useQuery({ queryKey: [...KEY, "external"], queryFn: () => api<ExternalAuthSettings>("/admin/external-auth") });
  const [form, setForm] = React.useState<ExternalAuthSettings & { client_secret: string } | null>(null);
  React.useEffect(() => { if (current.data) setForm({ ...current.data, client_secret: "" }); }, [current.data]);
  const save = useMutation({
    mutationFn: () => {
      const { client_secret, client_secret_set: _set, circuit_open: _open, ...rest } = form!;
      return api("/admin/external-auth", { method: "PUT", body: { ...rest, refresh_buffer_s: rest.refresh_buffer_s || null, ...(client_secret ? { client_secret } : {}) } });
    },
    onSuccess: () => { toast({ title: t("admin_security.external_saved"), variant: "success" }); void qc.invalidateQueries({ queryKey: KEY }); },
  });
  if (!form) return <Spinner />;
  const set = <K extends keyof typeof form>(k: K, v: (typeof form)[K]) => setForm((f) => (f ? { ...f, [k]: v } : f));
  return (
    <Card>
      <CardHeader>
        <CardTitle className="flex items-center gap-2">{t("admin_security.external_title")}
          {current.data?.circuit_open && <Badge variant="destructive">{t("admin_security.circuit_open")}</Badge>}
        </CardTitle>
        <CardDescription>{t("admin_security.external_hint")}</CardDescription>
      </CardHeader>
      <CardContent>
        <form className="grid max-w-xl gap-3" onSubmit={(e) => { e.preventDefault(); save.mutate(); }}>
          <Check id="ext-enabled" label={t("admin_security.external_enabled")} checked={form.enabled} onChange={(v) => set("enabled", v)} />
          <TextField id="ext-url" label={t("admin_security.token_url")} value={form.token_url} onChange={(v) => set("token_url", v)} type="url" />
          <TextField id="ext-client" label={t("admin_security.client_id")} value={form.client_id} onChange={(v) => set("client_id", v)} />
          <TextField id="ext-secret" label={t("admin_security.client_secret")} value={form.client_secret} onChange={(v) => set("client_secret", v)} type="password"
            placeholder={form.client_secret_set ? t("admin_security.secret_kept") : ""} autoComplete="off" />
          <TextField id="ext-scope" label={t("admin_security.scopes")} value={form.scope} onChange={(v) => set("scope", v)} />
          <Check id="ext-jit" label={t("admin_security.create_users")} checked={form.create_users} onChange={(v) => set("create_users", v)} />
          <div className="flex flex-wrap gap-3">
            <TextField id="ext-timeout" label={t("admin_security.timeout_s")} value={String(form.timeout_s)} onChange={(v) => set("timeout_s", Number(v))} type="number" min={0.1} step={0.1} className="w-28" />
            <TextField id="ext-cool-off" label={t("admin_security.cool_off_s")} value={String(form.circuit_cool_off_s)} onChange={(v) => set("circuit_cool_off_s", Number(v))} type="number" min={1} className="w-28" />
            <TextField id="ext-buffer" label={t("admin_security.refresh_buffer_s")} value={form.refresh_buffer_s ? String(form.refresh_buffer_s) : ""} onChange={(v) => set("refresh_buffer_s", v ? Number(v) : null)} type="number" min={5} className="w-28" />
          </div>
          <FormError error={save.error} />
          <div><Button type="submit" disabled={save.isPending}>{t("common.save")}</Button></div>
        </form>
      </CardContent>
    </Card>
  );
}
