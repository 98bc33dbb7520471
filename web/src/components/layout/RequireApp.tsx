import type * as React from "react";
import { Link } from "react-router-dom";
import { Button } from "@/components/ui/button";
import { EmptyState } from "@/components/ui/states";
import { useApps } from "@/lib/apps";
import { useTranslation } from "@/lib/i18n";

/** Documents pages only for users who hold the grant; a revoked grant shows why instead of a broken page. */
export function RequireApp({ app, children }: { app: string; children: React.ReactNode }) {
  const { t } = useTranslation();
  const apps = useApps();
  if (apps.isLoading) return null;
  if (!(apps.data ?? []).some((a) => a.key === app)) {
    return <EmptyState title={t("errors.no_app_access")} description={t("errors.no_app_access_hint")} action={<Button asChild variant="outline"><Link to="/apps">{t("nav.apps")}</Link></Button>} />;
  }
  return <>{children}</>;
}
