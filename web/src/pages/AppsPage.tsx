import { Link } from "react-router-dom";
import { useTranslation } from "@/lib/i18n";
import { AppWindow, FileText } from "lucide-react";
import { Card, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { EmptyState, ErrorState } from "@/components/ui/states";
import { Spinner } from "@/components/ui/spinner";
import { PageHeader } from "@/components/layout/PageHeader";
import { appRoute, useApps } from "@/lib/apps";

export function AppsPage() {
  const { t } = useTranslation();
  const apps = useApps();
  return (
    <div>
      <PageHeader title={t("apps.title")} description={t("apps.subtitle")} />
      {apps.isLoading ? (
        <Spinner />
      ) : apps.isError ? (
        <ErrorState error={apps.error} onRetry={() => void apps.refetch()} />
      ) : (apps.data ?? []).length === 0 ? (
        <EmptyState icon={<AppWindow className="h-8 w-8" />} title={t("apps.empty")} description={t("apps.empty_hint")} />
      ) : (
        <ul className="grid grid-cols-1 gap-4 sm:grid-cols-2 lg:grid-cols-3" data-testid="apps-list">
          {apps.data!.map((a) => (
            <li key={a.key}>
              <Link to={appRoute(a)} className="block h-full rounded-xl focus-visible:outline-none focus-visible:ring-2 focus-visible:ring-ring">
                <Card className="h-full transition-colors hover:bg-accent/50">
                  <CardHeader>
                    <div className="flex items-center gap-3">
                      <span className="rounded-lg bg-primary/10 p-2 text-primary">{a.key === "documents" ? <FileText className="h-5 w-5" /> : <AppWindow className="h-5 w-5" />}</span>
                      <CardTitle>{a.key === "documents" ? t("nav.documents") : a.name}</CardTitle>
                    </div>
                    <CardDescription>{a.key === "documents" ? t("apps.documents_description") : a.description}</CardDescription>
                  </CardHeader>
                </Card>
              </Link>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
