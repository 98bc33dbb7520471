import * as React from "react";
import { Link } from "react-router-dom";
import { useMutation } from "@tanstack/react-query";
import { FormError } from "@/components/ui/form-error";
import { api } from "@/lib/api";
import { useLinkToken } from "@/lib/auth";
import { useTranslation } from "@/lib/i18n";
import { AuthLayout, Notice } from "./AuthLayout";

export function VerifyEmailPage() {
  const { t } = useTranslation();
  const token = useLinkToken();
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
