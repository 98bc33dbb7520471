import { Check, X } from "lucide-react";
import { useTranslation } from "@/lib/i18n";
import { cn } from "@/lib/utils";

export const MIN_PASSWORD = 12;
export const MAX_PASSWORD = 128;

export interface PasswordRule {
  key: string;
  ok: boolean;
}

/** The rules the browser can check as the user types; the server's common-password check comes on submit. */
export function passwordRules(password: string, email: string): PasswordRule[] {
  const local = email.split("@")[0]?.toLowerCase() ?? "";
  return [
    { key: "min_length", ok: password.length >= MIN_PASSWORD },
    { key: "max_length", ok: password.length <= MAX_PASSWORD },
    { key: "no_email", ok: !(local.length >= 3 && password.toLowerCase().includes(local)) },
  ];
}

export function PasswordRules({ password, email, serverErrors = [] }: { password: string; email: string; serverErrors?: string[] }) {
  const { t } = useTranslation();
  const rules = passwordRules(password, email);
  return (
    <div className="grid grid-cols-1 gap-1.5 text-sm" aria-live="polite">
      <p className="text-xs font-medium text-muted-foreground">{t("password.rules_title")}</p>
      <ul className="grid grid-cols-1 gap-1" data-testid="password-rules">
        {rules.map((r) => (
          <li key={r.key} className={cn("flex items-center gap-2", r.ok ? "text-success" : "text-muted-foreground")} data-ok={r.ok}>
            {r.ok ? <Check className="h-3.5 w-3.5" aria-hidden /> : <X className="h-3.5 w-3.5" aria-hidden />}
            <span>{t(`password.rule_${r.key}`, { min: MIN_PASSWORD, max: MAX_PASSWORD })}</span>
            <span className="sr-only">{r.ok ? t("password.met") : t("password.not_met")}</span>
          </li>
        ))}
        <li className="flex items-center gap-2 text-muted-foreground">
          <span className="h-3.5 w-3.5 text-center" aria-hidden>·</span>
          <span>{t("password.rule_common")}</span>
        </li>
      </ul>
      {serverErrors.length > 0 && (
        <div role="alert" className="mt-1 rounded-md border border-destructive/40 bg-destructive/10 p-2 text-destructive">
          <p className="font-medium">{t("password.server_verdict")}</p>
          <ul className="list-disc pl-5">
            {serverErrors.map((m) => (
              <li key={m}>{m}</li>
            ))}
          </ul>
        </div>
      )}
    </div>
  );
}
