import { useTranslation } from "@/lib/i18n";
import { Badge } from "@/components/ui/badge";

const STATUS_VARIANT: Record<string, "success" | "warning" | "destructive" | "info" | "secondary" | "outline"> = {
  ready: "success",
  succeeded: "success",
  needs_ocr: "warning",
  failed: "destructive",
  queued: "secondary",
  extracting: "info",
  ocr: "info",
  analyzing: "info",
  running: "info",
  superseded: "outline",
};

/** A document's or a task's status, translated and coloured. */
export function StatusBadge({ status }: { status: string }) {
  const { t } = useTranslation();
  return (
    <Badge variant={STATUS_VARIANT[status] ?? "outline"} data-status={status}>
      {t(`status.${status}`, { defaultValue: status })}
    </Badge>
  );
}
