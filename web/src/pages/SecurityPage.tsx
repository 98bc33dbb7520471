import * as React from "react";
import { Link, useSearchParams } from "react-router-dom";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Fingerprint, KeyRound, Laptop, ShieldAlert, Smartphone } from "lucide-react";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Checkbox } from "@/components/ui/checkbox";
import { ConfirmDialog } from "@/components/ui/alert-dialog";
import { Dialog, DialogContent, DialogDescription, DialogFooter, DialogHeader, DialogTitle } from "@/components/ui/dialog";
import { Input, NativeSelect } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { ErrorState } from "@/components/ui/states";
import { FormError } from "@/components/ui/form-error";
import { Spinner } from "@/components/ui/spinner";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";
import { useToast } from "@/components/ui/toast";
import { PageHeader } from "@/components/layout/PageHeader";
import { api, refreshSession } from "@/lib/api";
import type { PatCreated, PatInfo, PatScope, RecoveryCodes, TotpEnrolment, User, PasskeyCeremony } from "@/api/types";
import { ME_KEY, useMe } from "@/lib/auth";
import { useTranslation } from "@/lib/i18n";
import { recoveryCodesFile, SECURITY_KEY, securityApi } from "@/lib/security";
import { formatDate } from "@/lib/format";
import { downloadBlob, passkeysSupported } from "@/lib/utils";
import { createPasskey } from "@/lib/webauthn";

/** The Security page: username, two-step sign-in (authenticator app, recovery codes, passkeys), personal access tokens, sessions. */
export function SecurityPage() {
  const { t } = useTranslation();
  const [params] = useSearchParams();
  const status = useQuery({ queryKey: [...SECURITY_KEY, "status"], queryFn: securityApi.status });
  const missing = status.data && status.data.required && !status.data.totp && status.data.passkeys === 0;
  return (
    <div className="grid grid-cols-1 gap-4">
      <PageHeader title={t("security.title")} description={t("security.subtitle")} />
      {(missing || params.get("enrol")) && status.data && !status.data.totp && status.data.passkeys === 0 && (
        <div role="alert" className="flex items-start gap-2 rounded-md border border-warning/50 bg-warning/10 px-3 py-2 text-sm">
          <ShieldAlert className="mt-0.5 h-4 w-4 shrink-0" aria-hidden />
          <span>{t("security.enrol_required")}</span>
        </div>
      )}
      <UsernameCard />
      {status.isLoading ? <Spinner /> : status.isError ? <ErrorState error={status.error} onRetry={() => void status.refetch()} /> : (
        <>
          <AuthenticatorCard totp={status.data!.totp} codesLeft={status.data!.recovery_codes_left} />
          <PasskeysCard />
        </>
      )}
      <TokensCard />
      <Card>
        <CardHeader>
          <CardTitle className="flex items-center gap-2"><Laptop className="h-5 w-5" aria-hidden />{t("security.sessions_title")}</CardTitle>
          <CardDescription>{t("security.sessions_hint")}</CardDescription>
        </CardHeader>
        <CardContent>
          <Button asChild variant="outline"><Link to="/sessions">{t("security.manage_sessions")}</Link></Button>
        </CardContent>
      </Card>
    </div>
  );
}

function useRefreshSecurity() {
  const qc = useQueryClient();
  return async () => {
    // A session the policy held to enrolment has an access token saying "no second factor": once one is
    // set up, a new token (a refresh) opens the rest of the app, whose refused queries are asked again.
    if (qc.getQueryData<User | null>(ME_KEY)?.must_enrol_second_factor && (await refreshSession())) {
      void qc.invalidateQueries();
      return;
    }
    void qc.invalidateQueries({ queryKey: SECURITY_KEY });
    void qc.invalidateQueries({ queryKey: ME_KEY });
  };
}

function UsernameCard() {
  const { t } = useTranslation();
  const me = useMe();
  const qc = useQueryClient();
  const toast = useToast();
  const current = me.data?.username ?? "";
  const [name, setName] = React.useState(current);
  React.useEffect(() => setName(current), [current]);
  const save = useMutation({
    mutationFn: () => api<User>("/auth/username", { method: "PUT", body: { username: name.trim() || null } }),
    onSuccess: (user) => {
      qc.setQueryData(ME_KEY, user);
      toast({ title: t("security.username_saved"), variant: "success" });
    },
  });
  return (
    <Card>
      <CardHeader>
        <CardTitle>{t("security.username_title")}</CardTitle>
        <CardDescription>{t("security.username_hint")}</CardDescription>
      </CardHeader>
      <CardContent>
        <form className="flex flex-wrap items-end gap-2" onSubmit={(e) => { e.preventDefault(); save.mutate(); }}>
          <div className="grid gap-1.5">
            <Label htmlFor="username">{t("security.username")}</Label>
            <Input id="username" value={name} onChange={(e) => setName(e.target.value)} autoComplete="username" maxLength={50} className="w-64" />
          </div>
          <Button type="submit" disabled={save.isPending || name.trim() === current}>{t("common.save")}</Button>
        </form>
        <div className="mt-2"><FormError error={save.error} /></div>
      </CardContent>
    </Card>
  );
}

function RecoveryCodesDialog({ codes, onClose }: { codes: string[] | null; onClose: () => void }) {
  const { t } = useTranslation();
  const me = useMe();
  return (
    <Dialog open={!!codes} onOpenChange={(open) => !open && onClose()}>
      <DialogContent>
        <DialogHeader>
          <DialogTitle>{t("security.codes_title")}</DialogTitle>
          <DialogDescription>{t("security.codes_hint")}</DialogDescription>
        </DialogHeader>
        <ul aria-label={t("security.codes_title")} className="grid grid-cols-2 gap-1 rounded-md border bg-muted/40 p-3 font-mono text-sm">
          {(codes ?? []).map((c) => <li key={c}>{c}</li>)}
        </ul>
        <DialogFooter>
          <Button variant="outline" onClick={() => downloadBlob(recoveryCodesFile(codes ?? [], me.data?.email ?? ""), "atrium-recovery-codes.txt")}>
            {t("security.codes_download")}
          </Button>
          <Button onClick={onClose}>{t("security.codes_saved")}</Button>
        </DialogFooter>
      </DialogContent>
    </Dialog>
  );
}

/** Password and a code: what turning the app off and new recovery codes ask for. */
function ConfirmWithCode({ open, title, description, confirmLabel, pending, error, onCancel, onConfirm }: {
  open: boolean; title: string; description: string; confirmLabel: string; pending: boolean; error: unknown;
  onCancel: () => void; onConfirm: (password: string, code: string) => void;
}) {
  const { t } = useTranslation();
  const [password, setPassword] = React.useState("");
  const [code, setCode] = React.useState("");
  React.useEffect(() => { if (!open) { setPassword(""); setCode(""); } }, [open]);
  return (
    <Dialog open={open} onOpenChange={(o) => !o && onCancel()}>
      <DialogContent>
        <DialogHeader>
          <DialogTitle>{title}</DialogTitle>
          <DialogDescription>{description}</DialogDescription>
        </DialogHeader>
        <form id="confirm-with-code" className="grid gap-3" onSubmit={(e) => { e.preventDefault(); onConfirm(password, code); }}>
          <div className="grid gap-1.5">
            <Label htmlFor="confirm-password">{t("auth.password")}</Label>
            <Input id="confirm-password" type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
          </div>
          <div className="grid gap-1.5">
            <Label htmlFor="confirm-code">{t("security.code_or_recovery")}</Label>
            <Input id="confirm-code" autoComplete="one-time-code" required value={code} onChange={(e) => setCode(e.target.value)} />
          </div>
          <FormError error={error} />
        </form>
        <DialogFooter>
          <Button variant="outline" onClick={onCancel}>{t("common.cancel")}</Button>
          <Button type="submit" form="confirm-with-code" variant="destructive" disabled={pending}>{confirmLabel}</Button>
        </DialogFooter>
      </DialogContent>
    </Dialog>
  );
}

function AuthenticatorCard({ totp, codesLeft }: { totp: boolean; codesLeft: number }) {
  const { t } = useTranslation();
  const toast = useToast();
  const refresh = useRefreshSecurity();
  const [enrolment, setEnrolment] = React.useState<TotpEnrolment | null>(null);
  const [code, setCode] = React.useState("");
  const [codes, setCodes] = React.useState<string[] | null>(null);
  const [dialog, setDialog] = React.useState<"off" | "codes" | null>(null);
  const start = useMutation({ mutationFn: () => api<TotpEnrolment>("/auth/totp/start", { method: "POST" }), onSuccess: setEnrolment });
  const confirm = useMutation({
    mutationFn: () => api<RecoveryCodes>("/auth/totp/confirm", { method: "POST", body: { code: code.replace(/\s/g, "") } }),
    // The codes show once the session is renewed (a policy held it to enrolment): leaving the page then keeps it.
    onSuccess: async (r) => { await refresh(); setEnrolment(null); setCode(""); setCodes(r.codes); },
  });
  const off = useMutation({
    mutationFn: (v: { password: string; code: string }) => api("/auth/totp/disable", { method: "POST", body: v, noRefresh: true }),
    onSuccess: () => { setDialog(null); toast({ title: t("security.totp_off_done"), variant: "success" }); refresh(); },
  });
  const regenerate = useMutation({
    mutationFn: (v: { password: string; code: string }) => api<RecoveryCodes>("/auth/recovery-codes", { method: "POST", body: v, noRefresh: true }),
    onSuccess: (r) => { setDialog(null); setCodes(r.codes); refresh(); },
  });
  return (
    <Card>
      <CardHeader>
        <CardTitle className="flex items-center gap-2">
          <Smartphone className="h-5 w-5" aria-hidden />{t("security.totp_title")}
          {totp ? <Badge variant="success">{t("security.on")}</Badge> : <Badge variant="secondary">{t("security.off")}</Badge>}
        </CardTitle>
        <CardDescription>{t("security.totp_hint")}</CardDescription>
      </CardHeader>
      <CardContent className="grid gap-3">
        {totp ? (
          <>
            <p className="text-sm">{t("security.codes_left", { count: codesLeft })}</p>
            <div className="flex flex-wrap gap-2">
              <Button variant="outline" onClick={() => setDialog("codes")}>{t("security.new_codes")}</Button>
              <Button variant="destructive" onClick={() => setDialog("off")}>{t("security.totp_off")}</Button>
            </div>
          </>
        ) : enrolment ? (
          <form className="grid gap-3" onSubmit={(e) => { e.preventDefault(); confirm.mutate(); }}>
            <p className="text-sm">{t("security.totp_scan")}</p>
            <img src={enrolment.qr_svg} alt={t("security.qr_alt")} className="h-48 w-48 rounded-md border bg-white p-1" />
            <p className="text-sm">{t("security.totp_secret")} <code data-testid="totp-secret" className="break-all rounded bg-muted px-1 font-mono">{enrolment.secret}</code></p>
            <div className="grid gap-1.5">
              <Label htmlFor="totp-code">{t("security.totp_code")}</Label>
              <Input id="totp-code" inputMode="numeric" autoComplete="one-time-code" required value={code} onChange={(e) => setCode(e.target.value)} className="w-40" />
            </div>
            <FormError error={confirm.error} />
            <div className="flex gap-2">
              <Button type="submit" disabled={confirm.isPending}>{t("security.totp_confirm")}</Button>
              <Button type="button" variant="outline" onClick={() => setEnrolment(null)}>{t("common.cancel")}</Button>
            </div>
          </form>
        ) : (
          <div>
            <Button onClick={() => start.mutate()} disabled={start.isPending}>{t("security.totp_set_up")}</Button>
            <FormError error={start.error} />
          </div>
        )}
      </CardContent>
      <RecoveryCodesDialog codes={codes} onClose={() => setCodes(null)} />
      <ConfirmWithCode
        open={dialog === "off"} title={t("security.totp_off_title")} description={t("security.totp_off_hint")}
        confirmLabel={t("security.totp_off")} pending={off.isPending} error={off.error}
        onCancel={() => { setDialog(null); off.reset(); }} onConfirm={(password, c) => off.mutate({ password, code: c })}
      />
      <ConfirmWithCode
        open={dialog === "codes"} title={t("security.new_codes_title")} description={t("security.new_codes_hint")}
        confirmLabel={t("security.new_codes")} pending={regenerate.isPending} error={regenerate.error}
        onCancel={() => { setDialog(null); regenerate.reset(); }} onConfirm={(password, c) => regenerate.mutate({ password, code: c })}
      />
    </Card>
  );
}

function PasskeysCard() {
  const { t, i18n } = useTranslation();
  const toast = useToast();
  const refresh = useRefreshSecurity();
  const passkeys = useQuery({ queryKey: [...SECURITY_KEY, "passkeys"], queryFn: securityApi.passkeys });
  const [name, setName] = React.useState("");
  const [removing, setRemoving] = React.useState<string | null>(null);
  const [password, setPassword] = React.useState("");
  const add = useMutation({
    mutationFn: async () => {
      const ceremony = await api<PasskeyCeremony>("/auth/passkeys/options", { method: "POST" });
      const credential = await createPasskey(ceremony.options);
      return api("/auth/passkeys", { method: "POST", body: { ceremony_id: ceremony.ceremony_id, name: name.trim() || t("security.passkey_default_name"), credential } });
    },
    onSuccess: async () => { await refresh(); setName(""); toast({ title: t("security.passkey_added"), variant: "success" }); },
  });
  const rename = useMutation({
    mutationFn: (v: { id: string; name: string }) => api(`/auth/passkeys/${v.id}`, { method: "PATCH", body: { name: v.name } }),
    onSuccess: refresh,
  });
  const remove = useMutation({
    mutationFn: (id: string) => api(`/auth/passkeys/${id}/remove`, { method: "POST", body: { password }, noRefresh: true }),
    onSuccess: () => { setRemoving(null); setPassword(""); toast({ title: t("security.passkey_removed"), variant: "success" }); refresh(); },
  });
  return (
    <Card>
      <CardHeader>
        <CardTitle className="flex items-center gap-2"><Fingerprint className="h-5 w-5" aria-hidden />{t("security.passkeys_title")}</CardTitle>
        <CardDescription>{t("security.passkeys_hint")}</CardDescription>
      </CardHeader>
      <CardContent className="grid gap-3">
        {passkeys.isLoading ? <Spinner /> : (passkeys.data ?? []).length === 0 ? (
          <p className="text-sm text-muted-foreground">{t("security.no_passkeys")}</p>
        ) : (
          <Table aria-label={t("security.passkeys_title")}>
            <TableHeader><TableRow>
              <TableHead>{t("security.name")}</TableHead><TableHead>{t("security.added")}</TableHead>
              <TableHead>{t("security.last_used")}</TableHead><TableHead><span className="sr-only">{t("common.actions")}</span></TableHead>
            </TableRow></TableHeader>
            <TableBody>
              {passkeys.data!.map((p) => (
                <TableRow key={p.id}>
                  <TableCell>
                    <Input aria-label={t("security.passkey_name_of", { name: p.name })} defaultValue={p.name} maxLength={100} className="h-8 w-48"
                      onBlur={(e) => { const v = e.target.value.trim(); if (v && v !== p.name) rename.mutate({ id: p.id, name: v }); }} />
                  </TableCell>
                  <TableCell>{formatDate(p.created_at, i18n.language)}</TableCell>
                  <TableCell>{p.last_used_at ? formatDate(p.last_used_at, i18n.language) : "—"}</TableCell>
                  <TableCell className="text-right"><Button size="sm" variant="outline" onClick={() => setRemoving(p.id)}>{t("security.remove")}</Button></TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
        )}
        {passkeysSupported() ? (
          <form className="flex flex-wrap items-end gap-2" onSubmit={(e) => { e.preventDefault(); add.mutate(); }}>
            <div className="grid gap-1.5">
              <Label htmlFor="passkey-name">{t("security.passkey_name")}</Label>
              <Input id="passkey-name" value={name} onChange={(e) => setName(e.target.value)} maxLength={100} placeholder={t("security.passkey_default_name")} className="w-56" />
            </div>
            <Button type="submit" disabled={add.isPending}>{t("security.passkey_add")}</Button>
          </form>
        ) : <p className="text-sm text-muted-foreground">{t("security.passkeys_unsupported")}</p>}
        <FormError error={add.error} />
      </CardContent>
      <Dialog open={!!removing} onOpenChange={(o) => { if (!o) { setRemoving(null); remove.reset(); } }}>
        <DialogContent>
          <DialogHeader><DialogTitle>{t("security.passkey_remove_title")}</DialogTitle><DialogDescription>{t("security.passkey_remove_hint")}</DialogDescription></DialogHeader>
          <form id="remove-passkey" className="grid gap-1.5" onSubmit={(e) => { e.preventDefault(); if (removing) remove.mutate(removing); }}>
            <Label htmlFor="remove-password">{t("auth.password")}</Label>
            <Input id="remove-password" type="password" required value={password} onChange={(e) => setPassword(e.target.value)} />
            <FormError error={remove.error} />
          </form>
          <DialogFooter>
            <Button variant="outline" onClick={() => setRemoving(null)}>{t("common.cancel")}</Button>
            <Button type="submit" form="remove-passkey" variant="destructive" disabled={remove.isPending}>{t("security.remove")}</Button>
          </DialogFooter>
        </DialogContent>
      </Dialog>
    </Card>
  );
}

const EXPIRIES = [7, 30, 90, 365];

function TokensCard() {
  const { t, i18n } = useTranslation();
  const me = useMe();
  const toast = useToast();
  const refresh = useRefreshSecurity();
  const tokens = useQuery({ queryKey: [...SECURITY_KEY, "tokens"], queryFn: securityApi.tokens });
  const [name, setName] = React.useState("");
  const [scopes, setScopes] = React.useState<PatScope[]>(["read"]);
  const [documentsOnly, setDocumentsOnly] = React.useState(false);
  const [days, setDays] = React.useState(90);
  const [shown, setShown] = React.useState<string | null>(null);
  const [revoking, setRevoking] = React.useState<PatInfo | null>(null);
  const create = useMutation({
    mutationFn: () => api<PatCreated>("/auth/tokens", {
      method: "POST",
      body: { name: name.trim(), scopes, apps: documentsOnly ? ["documents"] : null, expires_in_days: days },
    }),
    onSuccess: (r) => { setShown(r.token); setName(""); refresh(); },
  });
  const revoke = useMutation({
    mutationFn: (id: string) => api(`/auth/tokens/${id}`, { method: "DELETE" }),
    onSuccess: () => { setRevoking(null); toast({ title: t("security.token_revoked"), variant: "success" }); refresh(); },
  });
  const scopeChoices: PatScope[] = me.data?.role === "admin" ? ["read", "write", "admin"] : ["read", "write"];
  const toggle = (s: PatScope, on: boolean) => setScopes((old) => (on ? [...new Set([...old, s])] : old.filter((x) => x !== s)));
  return (
    <Card>
      <CardHeader>
        <CardTitle className="flex items-center gap-2"><KeyRound className="h-5 w-5" aria-hidden />{t("security.tokens_title")}</CardTitle>
        <CardDescription>{t("security.tokens_hint")}</CardDescription>
      </CardHeader>
      <CardContent className="grid gap-4">
        {shown && (
          <div role="status" className="grid gap-1 rounded-md border border-success/50 bg-success/10 p-3 text-sm">
            <span className="font-medium">{t("security.token_shown_once")}</span>
            <code data-testid="new-token" className="break-all font-mono">{shown}</code>
            <div><Button size="sm" variant="outline" onClick={() => { void navigator.clipboard?.writeText(shown); }}>{t("security.copy")}</Button>
              <Button size="sm" variant="ghost" onClick={() => setShown(null)}>{t("security.done")}</Button></div>
          </div>
        )}
        {tokens.isLoading ? <Spinner /> : (tokens.data ?? []).length === 0 ? (
          <p className="text-sm text-muted-foreground">{t("security.no_tokens")}</p>
        ) : (
          <Table aria-label={t("security.tokens_title")}>
            <TableHeader><TableRow>
              <TableHead>{t("security.name")}</TableHead><TableHead>{t("security.scopes")}</TableHead>
              <TableHead>{t("security.expires")}</TableHead><TableHead>{t("security.last_used")}</TableHead>
              <TableHead><span className="sr-only">{t("common.actions")}</span></TableHead>
            </TableRow></TableHeader>
            <TableBody>
              {tokens.data!.map((tok) => (
                <TableRow key={tok.id}>
                  <TableCell><span className="font-medium">{tok.name}</span> <code className="text-xs text-muted-foreground">{tok.prefix}…</code></TableCell>
                  <TableCell>{tok.scopes.map((s) => t(`security.scope_${s}`)).join(", ")}{tok.apps ? ` · ${tok.apps.join(", ")}` : ""}</TableCell>
                  <TableCell>{tok.revoked_at ? <Badge variant="destructive">{t("security.revoked")}</Badge> : formatDate(tok.expires_at, i18n.language, false)}</TableCell>
                  <TableCell>{tok.last_used_at ? `${formatDate(tok.last_used_at, i18n.language)}${tok.last_used_ip ? ` · ${tok.last_used_ip}` : ""}` : "—"}</TableCell>
                  <TableCell className="text-right">{!tok.revoked_at && <Button size="sm" variant="outline" onClick={() => setRevoking(tok)}>{t("security.revoke")}</Button>}</TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
        )}
        <form className="grid gap-3 rounded-md border p-3" onSubmit={(e) => { e.preventDefault(); create.mutate(); }}>
          <div className="font-medium text-sm">{t("security.token_new")}</div>
          <div className="flex flex-wrap items-end gap-3">
            <div className="grid gap-1.5">
              <Label htmlFor="token-name">{t("security.name")}</Label>
              <Input id="token-name" required maxLength={100} value={name} onChange={(e) => setName(e.target.value)} className="w-56" />
            </div>
            <div className="grid gap-1.5">
              <Label htmlFor="token-expiry">{t("security.expires_in")}</Label>
              <NativeSelect id="token-expiry" value={days} onChange={(e) => setDays(Number(e.target.value))}>
                {EXPIRIES.map((d) => <option key={d} value={d}>{t("security.days", { count: d })}</option>)}
              </NativeSelect>
            </div>
          </div>
          <fieldset className="flex flex-wrap gap-4">
            <legend className="sr-only">{t("security.scopes")}</legend>
            {scopeChoices.map((s) => (
              <div key={s} className="flex items-center gap-2">
                <Checkbox id={`scope-${s}`} checked={scopes.includes(s)} onCheckedChange={(v) => toggle(s, v === true)} />
                <Label htmlFor={`scope-${s}`} className="font-normal">{t(`security.scope_${s}`)}</Label>
              </div>
            ))}
            <div className="flex items-center gap-2">
              <Checkbox id="token-documents-only" checked={documentsOnly} onCheckedChange={(v) => setDocumentsOnly(v === true)} />
              <Label htmlFor="token-documents-only" className="font-normal">{t("security.documents_only")}</Label>
            </div>
          </fieldset>
          <FormError error={create.error} />
          <div><Button type="submit" disabled={create.isPending || scopes.length === 0}>{t("security.token_create")}</Button></div>
        </form>
      </CardContent>
      <ConfirmDialog
        open={!!revoking} onOpenChange={(o) => !o && setRevoking(null)}
        title={t("security.revoke_title", { name: revoking?.name ?? "" })} description={t("security.revoke_hint")}
        confirmLabel={t("security.revoke")} onConfirm={() => revoking && revoke.mutate(revoking.id)}
      />
    </Card>
  );
}
