import * as React from "react";
import { Link, useParams, useSearchParams } from "react-router-dom";
import { useMutation } from "@tanstack/react-query";
import { Button } from "@/components/ui/button";
import { FormError } from "@/components/ui/form-error";
import type { BrowserSession } from "@/api/types";
import { api } from "@/lib/api";
import { useTranslation } from "@/lib/i18n";
import { AuthLayout, Notice } from "./AuthLayout";
import { useSignedIn } from "./SignInPage";

/** Where an identity provider sends the browser back after a single sign-on: the API finishes it. */
export function SsoCallbackPage() {
  const { t } = useTranslation();
  const { provider = "" } = useParams();
  const [params] = useSearchParams();
  const signedIn = useSignedIn();
  const started = React.useRef(false);
  const code = params.get("code");
  const state = params.get("state");
  const refused = params.get("error_description") || params.get("error");
  const finish = useMutation({
    mutationFn: () => api<BrowserSession>("/auth/sso/finish", { method: "POST", body: { provider, state, code }, noRefresh: true }),
    onSuccess: (session) => signedIn(session, "/"),
  });
  const { mutate } = finish;
  React.useEffect(() => {
    if (!started.current && code && state && !refused) {
      started.current = true;
      mutate();
    }
  }, [code, state, refused, mutate]);
  const incomplete = !code || !state;
  return (
    <AuthLayout title={t("sign_in_steps.sso_title")}>
      {refused ? <Notice>{t("sign_in_steps.sso_refused", { reason: refused })}</Notice> : incomplete ? <Notice>{t("sign_in_steps.sso_incomplete")}</Notice> : finish.isError ? null : <p className="text-sm">{t("sign_in_steps.sso_finishing")}</p>}
      <FormError error={finish.error} />
      {(refused || finish.isError || incomplete) && (
        <Button asChild variant="outline" className="mt-3 w-full"><Link to="/sign-in">{t("auth.back_to_sign_in")}</Link></Button>
      )}
    </AuthLayout>
  );
}
