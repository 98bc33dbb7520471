import * as React from "react";
import { Link, useNavigate } from "react-router-dom";
import { useMutation } from "@tanstack/react-query";
import { Button } from "@/components/ui/button";
import { Input } from "@/components/ui/input";
import { FormError } from "@/components/ui/form-error";
import { PasswordRules, passwordRules } from "@/components/PasswordRules";
import type { User } from "@/api/types";
import { api, ApiError } from "@/lib/api";
import { useTranslation } from "@/lib/i18n";
import { AuthLayout, Field } from "./AuthLayout";

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
