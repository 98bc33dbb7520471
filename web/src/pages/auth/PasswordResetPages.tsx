import * as React from "react";
import { Link, useNavigate } from "react-router-dom";
import { useMutation } from "@tanstack/react-query";
import { Button } from "@/components/ui/button";
import { Input } from "@/components/ui/input";
import { FormError } from "@/components/ui/form-error";
import { PasswordRules, passwordRules } from "@/components/PasswordRules";
import { api, ApiError } from "@/lib/api";
import { useLinkToken } from "@/lib/auth";
import { useTranslation } from "@/lib/i18n";
import { AuthLayout, Field, Notice } from "./AuthLayout";

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
  const navigate = useNavigate();
  const token = useLinkToken();
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
