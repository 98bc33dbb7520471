import { useTranslation } from "@/lib/i18n";
import { useQuery } from "@tanstack/react-query";
import { Badge } from "@/components/ui/badge";
import { Card } from "@/components/ui/card";
import { ErrorState } from "@/components/ui/states";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";
import { Tabs, TabsContent, TabsList, TabsTrigger } from "@/components/ui/tabs";
import { PageHeader } from "@/components/layout/PageHeader";
import type { AdminAppList } from "@/api/types";
import { api } from "@/lib/api";
import { GroupsPanel } from "./GroupsPanel";
import { UserGrantsPanel } from "./UserGrantsPanel";

export function AdminPermissionsPage() {
  const { t } = useTranslation();
  const apps = useQuery({ queryKey: ["admin", "apps"], queryFn: async ({ signal }) => (await api<AdminAppList>("/admin/apps", { signal })).apps });
  return (
    <div className="grid grid-cols-1 gap-6">
      <PageHeader title={t("admin.permissions_title")} description={t("admin.permissions_subtitle")} />
      {apps.isError && <ErrorState error={apps.error} onRetry={() => void apps.refetch()} />}
      <Tabs defaultValue="users">
        <TabsList>
          <TabsTrigger value="users">{t("admin.per_user")}</TabsTrigger>
          <TabsTrigger value="groups">{t("admin.groups")}</TabsTrigger>
          <TabsTrigger value="apps">{t("admin.apps")}</TabsTrigger>
        </TabsList>
        <TabsContent value="users"><UserGrantsPanel apps={apps.data ?? []} /></TabsContent>
        <TabsContent value="groups"><GroupsPanel apps={apps.data ?? []} /></TabsContent>
        <TabsContent value="apps">
          <Card>
            <Table>
              <TableHeader>
                <TableRow>
                  <TableHead>{t("admin.app")}</TableHead>
                  <TableHead>{t("admin.state")}</TableHead>
                  <TableHead>{t("admin.default_grant")}</TableHead>
                </TableRow>
              </TableHeader>
              <TableBody>
                {(apps.data ?? []).map((a) => (
                  <TableRow key={a.key}>
                    <TableCell>
                      <span className="block font-medium">{a.name}</span>
                      <span className="block text-xs text-muted-foreground">{a.key}{a.version ? ` · ${a.version}` : ""}</span>
                    </TableCell>
                    <TableCell>{a.available === false ? <Badge variant="warning">{t("admin.unavailable")}</Badge> : <Badge variant="success">{t("admin.available")}</Badge>}</TableCell>
                    <TableCell>{a.default_grant ? t("common.yes") : t("common.no")}</TableCell>
                  </TableRow>
                ))}
              </TableBody>
            </Table>
          </Card>
        </TabsContent>
      </Tabs>
    </div>
  );
}
