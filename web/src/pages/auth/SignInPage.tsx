import * as React from "react";
import { Link, useNavigate, useSearchParams } from "react-router-dom";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { Button } from "@/components/ui/button";
import { Checkbox } from "@/components/ui/checkbox";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { FormError } from "@/components/ui/form-error";
import type { BrowserSession } from "@/api/types";
import { api } from "@/lib/api";
import { clearLostReason, ME_KEY, safeNext } from "@/lib/auth";
import { useTranslation } from "@/lib/i18n";
import { AuthLayout, Field, Notice } from "./AuthLayout";

export function SignInPage() {
  const { t } = useTranslation();
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const qc = useQueryClient();
  const [email, setEmail] = React.useState("");
  const [password, setPassword] = React.useState("");
  const [remember, setRemember] = React.useState(false);
  const reason = params.get("reason");
  const login = useMutation({
    mutationFn: () => api<BrowserSession>("/auth/session", { method: "POST", body: { email, password, remember_me: remember }, noRefresh: true }),
    onSuccess: (pair) => {
      clearLostReason();
      qc.clear();
      qc.setQueryData(ME_KEY, pair.user);
      navigate(safeNext(params.get("next")), { replace: true });
    },
  });
  const notices: Record<string, string> = {
    revoked: t("auth.reason_revoked"),
    expired: t("auth.reason_expired"),
    signed_out: t("auth.reason_signed_out"),
    registered: t("auth.reason_registered"),
    reset: t("auth.reason_reset"),
    verified: t("auth.reason_verified"),
  };
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
      <form
        className="grid grid-cols-1 gap-4"
        onSubmit={(e) => {
          e.preventDefault();
          login.mutate();
        }}
      >
        <Field id="email" label={t("auth.email")}>
          <Input id="email" type="email" autoComplete="email" required value={email} onChange={(e) => setEmail(e.target.value)} />
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
        <FormError error={login.error} />
        <Button type="submit" disabled={login.isPending}>{login.isPending ? t("auth.signing_in") : t("auth.sign_in")}</Button>
      </form>
    </AuthLayout>
  );
}
