import * as React from "react";
import { Link, useNavigate, useParams, useSearchParams } from "react-router-dom";
import { useTranslation } from "react-i18next";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { CheckCircle2, Fingerprint, Info, LogIn } from "lucide-react";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Checkbox } from "@/components/ui/checkbox";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { FormError } from "@/components/ui/states";
import { PasswordRules, passwordRules } from "@/components/PasswordRules";
import { Brand, LanguageMenu } from "@/components/layout/AppShell";
import { api, ApiError } from "@/lib/api";
import { clearLostReason, ME_KEY, safeNext, type User } from "@/lib/auth";
import { isSecondStep, securityApi, type SecondStepChallenge } from "@/lib/security";
import { passkeysSupported, signWithPasskey } from "@/lib/webauthn";

function AuthLayout({ title, description, children, footer }: { title: string; description?: string; children: React.ReactNode; footer?: React.ReactNode }) {
  return (
    <div className="flex min-h-screen flex-col items-center justify-center gap-6 bg-muted/40 p-4">
      <div className="flex w-full max-w-sm items-center justify-between">
        <Brand />
        <LanguageMenu />
      </div>
      <Card className="w-full max-w-sm">
        <CardHeader>
          <CardTitle className="text-xl">
            <span role="heading" aria-level={1}>{title}</span>
          </CardTitle>
          {description && <CardDescription>{description}</CardDescription>}
        </CardHeader>
        <CardContent>{children}</CardContent>
      </Card>
      {footer && <div className="text-sm text-muted-foreground">{footer}</div>}
    </div>
  );
}

function Notice({ children, tone = "info" }: { children: React.ReactNode; tone?: "info" | "success" }) {
  const Icon = tone === "success" ? CheckCircle2 : Info;
  return (
    <div role="status" className="mb-4 flex items-start gap-2 rounded-md border bg-muted/60 px-3 py-2 text-sm">
      <Icon className={tone === "success" ? "mt-0.5 h-4 w-4 text-success" : "mt-0.5 h-4 w-4 text-primary"} aria-hidden />
      <span>{children}</span>
    </div>
  );
}

function Field({ id, label, children, hint }: { id: string; label: string; children: React.ReactNode; hint?: React.ReactNode }) {
  return (
    <div className="grid grid-cols-1 gap-1.5">
      <Label htmlFor={id}>{label}</Label>
      {children}
      {hint}
    </div>
  );
}

export function SignInPage() {
  const { t } = useTranslation();
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const qc = useQueryClient();
  const [email, setEmail] = React.useState("");
  const [password, setPassword] = React.useState("");
  const [remember, setRemember] = React.useState(false);
  const [step, setStep] = React.useState<SecondStepChallenge | null>(null);
  const reason = params.get("reason");
  const signedIn = (pair: { user: User & { must_enrol_second_factor?: boolean } }) => {
    clearLostReason();
    qc.clear();
    qc.setQueryData(ME_KEY, pair.user);
    navigate(pair.user.must_enrol_second_factor ? "/security?enrol=1" : safeNext(params.get("next")), { replace: true });
  };
  const login = useMutation({
    mutationFn: () => api<{ user: User }>("/auth/login", { method: "POST", body: { email, password, remember_me: remember }, noRefresh: true }),
    onSuccess: signedIn,
    onError: (e) => {
      if (e instanceof ApiError && isSecondStep(e.details)) setStep(e.details);
    },
  });
  const passkey = useMutation({
    mutationFn: async () => {
      const ceremony = await api<{ ceremony_id: string; options: Record<string, unknown> }>("/auth/login/passkey/options", { method: "POST", body: { remember_me: remember }, noRefresh: true });
      const credential = await signWithPasskey(ceremony.options);
      return api<{ user: User }>("/auth/login/passkey", { method: "POST", body: { ceremony_id: ceremony.ceremony_id, credential }, noRefresh: true });
    },
    onSuccess: signedIn,
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
    return <SecondStepForm step={step} onDone={signedIn} onRestart={() => { setStep(null); login.reset(); }} />;
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
            <Fingerprint /> {t("auth.sign_in_passkey")}
          </Button>
        )}
        <FormError error={passkey.error} />
        <SsoButtons remember={remember} />
      </div>
    </AuthLayout>
  );
}

function SsoButtons({ remember }: { remember: boolean }) {
  const { t } = useTranslation();
  const buttons = useQuery({ queryKey: ["auth", "sso-buttons"], queryFn: securityApi.ssoButtons, staleTime: 60_000, retry: false });
  const start = useMutation({
    mutationFn: (provider: string) => api<{ authorization_url: string }>("/auth/sso/start", { method: "POST", body: { provider, remember_me: remember }, noRefresh: true }),
    onSuccess: (r) => window.location.assign(r.authorization_url),
  });
  return (
    <>
      {(buttons.data ?? []).map((b) => (
        <Button key={b.id} variant="outline" onClick={() => start.mutate(b.id)} disabled={start.isPending}>
          <LogIn /> {t("auth.sign_in_with", { name: b.label })}
        </Button>
      ))}
      <FormError error={start.error} />
    </>
  );
}

/** After a right password: a code from the authenticator app, a recovery code, or a passkey. */
function SecondStepForm({ step, onDone, onRestart }: { step: SecondStepChallenge; onDone: (pair: { user: User }) => void; onRestart: () => void }) {
  const { t } = useTranslation();
  const [code, setCode] = React.useState("");
  const hasCodes = step.methods.includes("totp") || step.methods.includes("recovery");
  const finish = useMutation({
    mutationFn: async (method: "code" | "passkey") => {
      if (method === "passkey") {
        const credential = await signWithPasskey(step.passkey_options ?? {});
        return api<{ user: User }>("/auth/login/second-step", { method: "POST", body: { step_token: step.step_token, method: "passkey", credential }, noRefresh: true });
      }
      const typed = code.trim();
      const kind = /^\d{6}$/.test(typed.replace(/\s/g, "")) ? "totp" : "recovery";
      return api<{ user: User }>("/auth/login/second-step", { method: "POST", body: { step_token: step.step_token, method: kind, code: typed }, noRefresh: true });
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
          <Fingerprint /> {t("auth.use_passkey")}
        </Button>
      )}
      <div className="mt-3"><FormError error={finish.error} /></div>
      {expired && <Button className="mt-2 w-full" variant="ghost" onClick={onRestart}>{t("auth.back_to_sign_in")}</Button>}
    </AuthLayout>
  );
}

/** Where an identity provider sends the browser back after a single sign-on. */
export function SsoCallbackPage() {
  const { t } = useTranslation();
  const { provider = "" } = useParams();
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const qc = useQueryClient();
  const started = React.useRef(false);
  const code = params.get("code");
  const state = params.get("state");
  const refused = params.get("error_description") || params.get("error");
  const finish = useMutation({
    mutationFn: () => api<{ user: User & { must_enrol_second_factor?: boolean } }>("/auth/sso/finish", { method: "POST", body: { provider, state, code }, noRefresh: true }),
    onSuccess: (pair) => {
      clearLostReason();
      qc.clear();
      qc.setQueryData(ME_KEY, pair.user);
      navigate(pair.user.must_enrol_second_factor ? "/security?enrol=1" : "/", { replace: true });
    },
  });
  React.useEffect(() => {
    if (!started.current && code && state && !refused) {
      started.current = true;
      finish.mutate();
    }
  }, [code, state, refused, finish]);
  return (
    <AuthLayout title={t("auth.sso_title")}>
      {refused ? <Notice>{t("auth.sso_refused", { reason: refused })}</Notice> : !code || !state ? <Notice>{t("auth.sso_incomplete")}</Notice> : finish.isError ? null : <p className="text-sm">{t("auth.sso_finishing")}</p>}
      <FormError error={finish.error} />
      {(refused || finish.isError || !code || !state) && (
        <Button asChild variant="outline" className="mt-3 w-full"><Link to="/sign-in">{t("auth.back_to_sign_in")}</Link></Button>
      )}
    </AuthLayout>
  );
}

export function RegisterPage() {
  const { t } = useTranslation();
  const navigate = useNavigate();
  const [email, setEmail] = React.useState("");
  const [fullName, setFullName] = React.useState("");
  const [username, setUsername] = React.useState("");
  const [password, setPassword] = React.useState("");
  const [confirm, setConfirm] = React.useState("");
  const register = useMutation({
    mutationFn: () => api<User>("/auth/register", { method: "POST", body: { email, password, full_name: fullName || null, username: username.trim() || null }, noRefresh: true }),
    onSuccess: () => navigate("/sign-in?reason=registered", { replace: true }),
  });
  const err = register.error instanceof ApiError ? register.error : null;
  const passwordErrors = err ? err.fieldErrors.filter((d) => !d.field || d.field.endsWith("password")).map((d) => d.message ?? "") : [];
  const otherError = err && passwordErrors.length === 0 ? err : null;
  const clientOk = passwordRules(password, email).every((r) => r.ok);
  const mismatch = confirm.length > 0 && confirm !== password;
  return (
    <AuthLayout
      title={t("auth.register_title")}
      description={t("auth.register_description")}
      footer={
        <>
          {t("auth.have_account")} <Link className="font-medium text-primary underline-offset-4 hover:underline" to="/sign-in">{t("auth.sign_in")}</Link>
        </>
      }
    >
      <form
        className="grid grid-cols-1 gap-4"
        onSubmit={(e) => {
          e.preventDefault();
          if (clientOk && !mismatch) register.mutate();
        }}
      >
        <Field id="full_name" label={t("auth.full_name")}>
          <Input id="full_name" autoComplete="name" value={fullName} onChange={(e) => setFullName(e.target.value)} />
        </Field>
        <Field id="username" label={t("auth.username_optional")} hint={<p className="text-xs text-muted-foreground">{t("auth.username_hint")}</p>}>
          <Input id="username" autoComplete="username" maxLength={50} value={username} onChange={(e) => setUsername(e.target.value)} />
        </Field>
        <Field id="email" label={t("auth.email")}>
          <Input id="email" type="email" autoComplete="email" required value={email} onChange={(e) => setEmail(e.target.value)} />
        </Field>
        <Field id="password" label={t("auth.password")}>
          <Input
            id="password"
            type="password"
            autoComplete="new-password"
            required
            aria-describedby="password-rules"
            aria-invalid={passwordErrors.length > 0}
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
        </Field>
        <div id="password-rules">
          <PasswordRules password={password} email={email} serverErrors={passwordErrors} />
        </div>
        <Field id="confirm" label={t("auth.confirm_password")} hint={mismatch ? <p className="text-sm text-destructive">{t("auth.mismatch")}</p> : null}>
          <Input id="confirm" type="password" autoComplete="new-password" required aria-invalid={mismatch} value={confirm} onChange={(e) => setConfirm(e.target.value)} />
        </Field>
        <FormError error={otherError} />
        <Button type="submit" disabled={register.isPending || !clientOk || mismatch || !confirm}>
          {register.isPending ? t("auth.creating") : t("auth.create_account")}
        </Button>
      </form>
    </AuthLayout>
  );
}

export function ForgotPasswordPage() {
  const { t } = useTranslation();
  const [email, setEmail] = React.useState("");
  const forgot = useMutation({ mutationFn: () => api("/auth/password/forgot", { method: "POST", body: { email }, noRefresh: true }) });
  return (
    <AuthLayout title={t("auth.forgot_title")} description={t("auth.forgot_description")} footer={<Link className="text-primary hover:underline" to="/sign-in">{t("auth.back_to_sign_in")}</Link>}>
      {forgot.isSuccess ? (
        <Notice tone="success">{t("auth.forgot_sent", { email })}</Notice>
      ) : (
        <form
          className="grid grid-cols-1 gap-4"
          onSubmit={(e) => {
            e.preventDefault();
            forgot.mutate();
          }}
        >
          <Field id="email" label={t("auth.email")}>
            <Input id="email" type="email" autoComplete="email" required value={email} onChange={(e) => setEmail(e.target.value)} />
          </Field>
          <FormError error={forgot.error} />
          <Button type="submit" disabled={forgot.isPending}>{t("auth.send_link")}</Button>
        </form>
      )}
    </AuthLayout>
  );
}

export function ResetPasswordPage() {
  const { t } = useTranslation();
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const token = params.get("token") ?? "";
  const [password, setPassword] = React.useState("");
  const reset = useMutation({
    mutationFn: () => api("/auth/password/reset", { method: "POST", body: { token, new_password: password }, noRefresh: true }),
    onSuccess: () => navigate("/sign-in?reason=reset", { replace: true }),
  });
  const err = reset.error instanceof ApiError ? reset.error : null;
  const serverErrors = err ? err.fieldErrors.map((d) => d.message ?? "").filter(Boolean) : [];
  const ok = passwordRules(password, "").every((r) => r.ok);
  return (
    <AuthLayout title={t("auth.reset_title")} description={t("auth.reset_description")} footer={<Link className="text-primary hover:underline" to="/sign-in">{t("auth.back_to_sign_in")}</Link>}>
      {!token ? (
        <FormError error={new Error(t("auth.missing_token"))} />
      ) : (
        <form
          className="grid grid-cols-1 gap-4"
          onSubmit={(e) => {
            e.preventDefault();
            if (ok) reset.mutate();
          }}
        >
          <Field id="password" label={t("auth.new_password")}>
            <Input id="password" type="password" autoComplete="new-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
          </Field>
          <PasswordRules password={password} email="" serverErrors={serverErrors} />
          {serverErrors.length === 0 && <FormError error={reset.error} />}
          <Button type="submit" disabled={reset.isPending || !ok}>{t("auth.set_password")}</Button>
        </form>
      )}
    </AuthLayout>
  );
}

export function VerifyEmailPage() {
  const { t } = useTranslation();
  const [params] = useSearchParams();
  const token = params.get("token") ?? "";
  const verify = useMutation({ mutationFn: () => api("/auth/email/verify", { method: "POST", body: { token }, noRefresh: true }) });
  const started = React.useRef(false);
  React.useEffect(() => {
    // Verify once on arrival: the token is single-use, so StrictMode's double effect must not spend it twice.
    if (token && !started.current) {
      started.current = true;
      verify.mutate();
    }
  }, [token, verify]);
  return (
    <AuthLayout title={t("auth.verify_title")} footer={<Link className="text-primary hover:underline" to="/">{t("auth.continue")}</Link>}>
      {!token && <FormError error={new Error(t("auth.missing_token"))} />}
      {verify.isPending && <p role="status">{t("auth.verifying")}</p>}
      {verify.isSuccess && <Notice tone="success">{t("auth.verified")}</Notice>}
      <FormError error={verify.error} />
    </AuthLayout>
  );
}
