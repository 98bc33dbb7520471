import * as React from "react";
import { AlertTriangle } from "lucide-react";
import { useTranslation } from "@/lib/i18n";
import { Button } from "./button";
import { ApiError } from "@/lib/api";
import { cn } from "@/lib/utils";

export function EmptyState({ icon, title, description, action }: { icon?: React.ReactNode; title: string; description?: string; action?: React.ReactNode }) {
  return (
    <div className="flex flex-col items-center justify-center gap-2 rounded-xl border border-dashed p-8 text-center">
      {icon && <div className="text-muted-foreground">{icon}</div>}
      <p className="font-medium">{title}</p>
      {description && <p className="max-w-md text-sm text-muted-foreground">{description}</p>}
      {action && <div className="mt-2">{action}</div>}
    </div>
  );
}

/** What failed, in the server's words, and what the user can do about it. */
export function ErrorState({ error, onRetry, className }: { error: unknown; onRetry?: () => void; className?: string }) {
  const { t } = useTranslation();
  const api = error instanceof ApiError ? error : null;
  let hint = t("errors.generic_hint");
  if (api?.status === 403) hint = t("errors.forbidden_hint");
  else if (api?.status === 404) hint = t("errors.not_found_hint");
  else if (api && (api.status === 0 || api.status >= 500)) hint = t("errors.server_hint");
  return (
    <div role="alert" className={cn("flex flex-col items-center gap-2 rounded-xl border border-destructive/40 bg-destructive/5 p-6 text-center", className)}>
      <AlertTriangle className="h-5 w-5 text-destructive" aria-hidden />
      <p className="font-medium">{api?.message ?? (error instanceof Error ? error.message : t("errors.generic"))}</p>
      <p className="text-sm text-muted-foreground">{hint}</p>
      {api?.requestId && <p className="text-xs text-muted-foreground">{t("errors.request_id", { id: api.requestId })}</p>}
      {onRetry && (
        <Button variant="outline" size="sm" onClick={onRetry}>
          {t("common.retry")}
        </Button>
      )}
    </div>
  );
}
