import * as React from "react";
import { Link, useNavigate, useSearchParams } from "react-router-dom";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Button } from "@/components/ui/button";
import { Checkbox } from "@/components/ui/checkbox";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { FormError } from "@/components/ui/form-error";
import type { PasskeyCeremony, SsoRedirect, TokenPair } from "@/api/types";
import { api, ApiError } from "@/lib/api";
import { clearLostReason, ME_KEY, safeNext } from "@/lib/auth";
import { useTranslation } from "@/lib/i18n";
import { isSecondStep, securityApi, type SecondStepChallenge } from "@/lib/security";
import { passkeysSupported, signWithPasskey } from "@/lib/webauthn";
import { AuthLayout, Field, Notice } from "./AuthLayout";

/** Signed in (by password, passkey, second step or single sign-on): where to go next. */
export function useSignedIn() {
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const qc = useQueryClient();
  return (pair: TokenPair, next = params.get("next")) => {
    clearLostReason();
    qc.clear();
    qc.setQueryData(ME_KEY, pair.user);
    navigate(pair.user.must_enrol_second_factor ? "/security?enrol=1" : safeNext(next), { replace: true });
  };
}

export function SignInPage() {
  const { t } = useTranslation();
  const [params] = useSearchParams();
  const signedIn = useSignedIn();
  const [email, setEmail] = React.useState("");
  const [password, setPassword] = React.useState("");
  const [remember, setRemember] = React.useState(false);
  const [step, setStep] = React.useState<SecondStepChallenge | null>(null);
  const reason = params.get("reason");
  const login = useMutation({
    mutationFn: () => api<TokenPair>("/auth/login", { method: "POST", body: { email, password, remember_me: remember }, noRefresh: true }),
    onSuccess: (pair) => signedIn(pair),
    onError: (e) => {
      if (e instanceof ApiError && isSecondStep(e.details)) setStep(e.details);
    },
  });
  const passkey = useMutation({
    mutationFn: async () => {
      const ceremony = await api<PasskeyCeremony>("/auth/login/passkey/options", { method: "POST", body: { remember_me: remember }, noRefresh: true });
      const credential = await signWithPasskey(ceremony.options);
      return api<TokenPair>("/auth/login/passkey", { method: "POST", body: { ceremony_id: ceremony.ceremony_id, credential }, noRefresh: true });
    },
    onSuccess: (pair) => signedIn(pair),
  });
  const notices: Record<string, string> = {
    revoked: t("auth.reason_revoked"),
    expired: t("auth.reason_expired"),
    signed_out: t("auth.reason_signed_out"),
    registered: t("auth.reason_registered"),
    reset: t("auth.reason_reset"),
    verified: t("auth.reason_verified"),
  };
  if (step) {
    return <SecondStepForm step={step} onDone={(pair) => signedIn(pair)} onRestart={() => { setStep(null); login.reset(); }} />;
  }
  const ssoError = params.get("sso_error");
  return (
    <AuthLayout
      title={t("auth.sign_in_title")}
      description={t("auth.sign_in_description")}
      footer={
        <>
          {t("auth.no_account")} <Link className="font-medium text-primary underline-offset-4 hover:underline" to="/register">{t("auth.register_link")}</Link>
        </>
      }
    >
      {reason && notices[reason] && <Notice tone={reason === "revoked" || reason === "expired" ? "info" : "success"}>{notices[reason]}</Notice>}
      {ssoError && <Notice>{ssoError}</Notice>}
      <form
        className="grid grid-cols-1 gap-4"
        onSubmit={(e) => {
          e.preventDefault();
          login.mutate();
        }}
      >
        <Field id="email" label={t("auth.email_or_username")}>
          <Input id="email" type="text" autoComplete="username webauthn" required value={email} onChange={(e) => setEmail(e.target.value)} />
        </Field>
        <Field id="password" label={t("auth.password")}>
          <Input id="password" type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
        </Field>
        <div className="flex items-center justify-between gap-2">
          <div className="flex items-center gap-2">
            <Checkbox id="remember" checked={remember} onCheckedChange={(v) => setRemember(v === true)} />
            <Label htmlFor="remember" className="font-normal">{t("auth.remember_me")}</Label>
          </div>
          <Link to="/forgot-password" className="text-sm text-primary underline-offset-4 hover:underline">{t("auth.forgot_link")}</Link>
        </div>
        <FormError error={login.error instanceof ApiError && isSecondStep(login.error.details) ? null : login.error} />
        <Button type="submit" disabled={login.isPending}>{login.isPending ? t("auth.signing_in") : t("auth.sign_in")}</Button>
      </form>
      <div className="mt-4 grid gap-2 border-t pt-4">
        {passkeysSupported() && (
          <Button variant="outline" onClick={() => passkey.mutate()} disabled={passkey.isPending}>
            {t("auth.sign_in_passkey")}
          </Button>
        )}
        <FormError error={passkey.error} />
        <SsoButtons remember={remember} />
      </div>
    </AuthLayout>
  );
}

/** "Sign in with …" for each single sign-on provider an admin set up. */
function SsoButtons({ remember }: { remember: boolean }) {
  const { t } = useTranslation();
  const buttons = useQuery({ queryKey: ["auth", "sso-buttons"], queryFn: securityApi.ssoButtons, staleTime: 60_000, retry: false });
  const start = useMutation({
    mutationFn: (provider: string) => api<SsoRedirect>("/auth/sso/start", { method: "POST", body: { provider, remember_me: remember }, noRefresh: true }),
    onSuccess: (r) => window.location.assign(r.authorization_url),
  });
  return (
    <>
      {(buttons.data ?? []).map((b) => (
        <Button key={b.id} variant="outline" onClick={() => start.mutate(b.id)} disabled={start.isPending}>
          {t("auth.sign_in_with", { name: b.label })}
        </Button>
      ))}
      <FormError error={start.error} />
    </>
  );
}

/** After a right password: a code from the authenticator app, a recovery code, or a passkey. */
function SecondStepForm({ step, onDone, onRestart }: { step: SecondStepChallenge; onDone: (pair: TokenPair) => void; onRestart: () => void }) {
  const { t } = useTranslation();
  const [code, setCode] = React.useState("");
  const hasCodes = step.methods.includes("totp") || step.methods.includes("recovery");
  const finish = useMutation({
    mutationFn: async (method: "code" | "passkey") => {
      if (method === "passkey") {
        const credential = await signWithPasskey(step.passkey_options ?? {});
        return api<TokenPair>("/auth/login/second-step", { method: "POST", body: { step_token: step.step_token, method: "passkey", credential }, noRefresh: true });
      }
      const typed = code.trim();
      const kind = /^\d{6}$/.test(typed.replace(/\s/g, "")) ? "totp" : "recovery";
      return api<TokenPair>("/auth/login/second-step", { method: "POST", body: { step_token: step.step_token, method: kind, code: typed }, noRefresh: true });
    },
    onSuccess: onDone,
  });
  const expired = finish.error instanceof ApiError && (finish.error.details as { reason?: string } | null)?.reason === "step_expired";
  return (
    <AuthLayout title={t("auth.second_step_title")} description={t("auth.second_step_description")}>
      {hasCodes && (
        <form className="grid gap-4" onSubmit={(e) => { e.preventDefault(); finish.mutate("code"); }}>
          <Field id="second-code" label={t("auth.second_step_code")} hint={<p className="text-xs text-muted-foreground">{t("auth.second_step_code_hint")}</p>}>
            <Input id="second-code" autoComplete="one-time-code" autoFocus required value={code} onChange={(e) => setCode(e.target.value)} />
          </Field>
          <Button type="submit" disabled={finish.isPending}>{t("auth.verify")}</Button>
        </form>
      )}
      {step.methods.includes("passkey") && passkeysSupported() && (
        <Button className="mt-3 w-full" variant={hasCodes ? "outline" : "default"} onClick={() => finish.mutate("passkey")} disabled={finish.isPending}>
          {t("auth.use_passkey")}
        </Button>
      )}
      <div className="mt-3"><FormError error={finish.error} /></div>
      {expired && <Button className="mt-2 w-full" variant="ghost" onClick={onRestart}>{t("auth.back_to_sign_in")}</Button>}
    </AuthLayout>
  );
}
