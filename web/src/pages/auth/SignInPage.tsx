import * as React from "react";
import { Link, useNavigate, useSearchParams } from "react-router-dom";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Button } from "@/components/ui/button";
import { Checkbox } from "@/components/ui/checkbox";
import { Input } from "@/components/ui/input";
import { FormError } from "@/components/ui/form-error";
import type { BrowserSession, SecondFactorMethod, SsoButtons as SsoButtonList, SsoRedirect } from "@/api/types";
import { api, ApiError } from "@/lib/api";
import { clearLostReason, ME_KEY, safeNext } from "@/lib/auth";
import { loadMessages, useTranslation } from "@/lib/i18n";
import { passkeysSupported } from "@/lib/utils";
import { AuthLayout, Field, Notice } from "./AuthLayout";

// Only after a right password, or on a click: not part of the sign-in page's first download. The second
// step's messages come with the signed-in pages' (which follow it).
const SecondStepForm = React.lazy(async () => ({
  default: (await Promise.all([import("./SecondStepForm"), loadMessages("app")]))[0].SecondStepForm,
}));

/** What login's 401 carries when the password was right and a second factor is needed. */
export interface SecondStepChallenge {
  reason: "second_factor_required";
  step_token: string;
  methods: SecondFactorMethod[];
  expires_in: number;
  passkey_options?: Record<string, unknown>;
}

function isSecondStep(details: unknown): details is SecondStepChallenge {
  return !!details && typeof details === "object" && (details as { reason?: string }).reason === "second_factor_required";
}

/** Signed in (by password, passkey, second step or single sign-on): where to go next. */
export function useSignedIn() {
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const qc = useQueryClient();
  return (session: BrowserSession, next = params.get("next")) => {
    clearLostReason();
    qc.clear();
    qc.setQueryData(ME_KEY, session.user);
    navigate(session.user.must_enrol_second_factor ? "/security?enrol=1" : safeNext(next), { replace: true });
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
    mutationFn: () => api<BrowserSession>("/auth/session", { method: "POST", body: { email, password, remember_me: remember }, noRefresh: true }),
    onSuccess: (session) => signedIn(session),
    onError: (e) => {
      if (e instanceof ApiError && isSecondStep(e.details)) setStep(e.details);
    },
  });
  const passkey = useMutation({
    mutationFn: async () => (await import("@/lib/webauthn")).signInWithPasskey(remember),
    onSuccess: (session) => signedIn(session),
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
    return (
      <React.Suspense fallback={null}>
        <SecondStepForm step={step} onDone={(session) => signedIn(session)} onRestart={() => { setStep(null); login.reset(); }} />
      </React.Suspense>
    );
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
            <label htmlFor="remember" className="text-sm leading-none">{t("auth.remember_me")}</label>
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
  const buttons = useQuery({ queryKey: ["auth", "sso-buttons"], queryFn: async () => (await api<SsoButtonList>("/auth/sso/buttons", { noRefresh: true })).items, staleTime: 60_000, retry: false });
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
