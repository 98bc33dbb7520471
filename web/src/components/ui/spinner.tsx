import { useTranslation } from "@/lib/i18n";
import { cn } from "@/lib/utils";

/** Something is loading: a spinning ring (CSS only) and the word for it. */
export function Spinner({ className, label }: { className?: string; label?: string }) {
  const { t } = useTranslation();
  return (
    <div role="status" className={cn("flex items-center justify-center gap-2 p-6 text-sm text-muted-foreground", className)}>
      <span className="h-4 w-4 animate-spin rounded-full border-2 border-current border-t-transparent" aria-hidden />
      <span>{label ?? t("common.loading")}</span>
    </div>
  );
}
