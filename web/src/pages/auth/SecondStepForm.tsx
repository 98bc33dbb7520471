import * as React from "react";
import { useMutation } from "@tanstack/react-query";
import { Button } from "@/components/ui/button";
import { Input } from "@/components/ui/input";
import { FormError } from "@/components/ui/form-error";
import type { BrowserSession } from "@/api/types";
import { api, ApiError } from "@/lib/api";
import { useTranslation } from "@/lib/i18n";
import { passkeysSupported } from "@/lib/utils";
import { signWithPasskey } from "@/lib/webauthn";
import { AuthLayout, Field } from "./AuthLayout";
import type { SecondStepChallenge } from "./SignInPage";

/** After a right password: a code from the authenticator app, a recovery code, or a passkey. */
export function SecondStepForm({ step, onDone, onRestart }: { step: SecondStepChallenge; onDone: (session: BrowserSession) => void; onRestart: () => void }) {
  const { t } = useTranslation();
  const [code, setCode] = React.useState("");
  const hasCodes = step.methods.includes("totp") || step.methods.includes("recovery");
  const finish = useMutation({
    mutationFn: async (method: "code" | "passkey") => {
      if (method === "passkey") {
        const credential = await signWithPasskey(step.passkey_options ?? {});
        return api<BrowserSession>("/auth/login/second-step", { method: "POST", body: { step_token: step.step_token, method: "passkey", credential }, noRefresh: true });
      }
      const typed = code.trim();
      const kind = /^\d{6}$/.test(typed.replace(/\s/g, "")) ? "totp" : "recovery";
      return api<BrowserSession>("/auth/login/second-step", { method: "POST", body: { step_token: step.step_token, method: kind, code: typed }, noRefresh: true });
    },
    onSuccess: onDone,
  });
  const expired = finish.error instanceof ApiError && (finish.error.details as { reason?: string } | null)?.reason === "step_expired";
  return (
    <AuthLayout title={t("sign_in_steps.second_step_title")} description={t("sign_in_steps.second_step_description")}>
      {hasCodes && (
        <form className="grid gap-4" onSubmit={(e) => { e.preventDefault(); finish.mutate("code"); }}>
          <Field id="second-code" label={t("sign_in_steps.second_step_code")} hint={<p className="text-xs text-muted-foreground">{t("sign_in_steps.second_step_code_hint")}</p>}>
            <Input id="second-code" autoComplete="one-time-code" autoFocus required value={code} onChange={(e) => setCode(e.target.value)} />
          </Field>
          <Button type="submit" disabled={finish.isPending}>{t("sign_in_steps.verify")}</Button>
        </form>
      )}
      {step.methods.includes("passkey") && passkeysSupported() && (
        <Button className="mt-3 w-full" variant={hasCodes ? "outline" : "default"} onClick={() => finish.mutate("passkey")} disabled={finish.isPending}>
          {t("sign_in_steps.use_passkey")}
        </Button>
      )}
      <div className="mt-3"><FormError error={finish.error} /></div>
      {expired && <Button className="mt-2 w-full" variant="ghost" onClick={onRestart}>{t("auth.back_to_sign_in")}</Button>}
    </AuthLayout>
  );
}
