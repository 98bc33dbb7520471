import { Link } from "react-router-dom";
import { FileQuestion } from "lucide-react";
import { Button } from "@/components/ui/button";
import { EmptyState } from "@/components/ui/states";
import { useTranslation } from "@/lib/i18n";

export function NotFoundPage() {
  const { t } = useTranslation();
  return (
    <EmptyState
      icon={<FileQuestion className="h-8 w-8" />}
      title={t("errors.page_not_found")}
      description={t("errors.page_not_found_hint")}
      action={<Button asChild variant="outline"><Link to="/">{t("nav.home")}</Link></Button>}
    />
  );
}
