import * as React from "react";
import { useTranslation } from "@/lib/i18n";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Badge } from "@/components/ui/badge";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Checkbox } from "@/components/ui/checkbox";
import { Label } from "@/components/ui/label";
import { ErrorState } from "@/components/ui/states";
import { Spinner } from "@/components/ui/spinner";
import { useToast } from "@/components/ui/toast";
import type { AdminApp, User, UserGrants } from "@/api/types";
import { api } from "@/lib/api";
import { UserPicker } from "./UserPicker";

/** One user's app grants: direct ones to tick, and those the user gets through groups. */
export function UserGrantsPanel({ apps }: { apps: AdminApp[] }) {
  const { t } = useTranslation();
  const qc = useQueryClient();
  const toast = useToast();
  const [user, setUser] = React.useState<User | null>(null);
  const grants = useQuery({ queryKey: ["admin", "grants", user?.id], queryFn: () => api<UserGrants>(`/admin/users/${user!.id}/grants`), enabled: !!user });
  const change = useMutation({
    mutationFn: (v: { app: string; grant: boolean }) => api(`/admin/users/${user!.id}/grants/${v.app}`, { method: v.grant ? "PUT" : "DELETE", body: v.grant ? {} : undefined }),
    onSuccess: (_d, v) => {
      toast({ title: v.grant ? t("admin.granted") : t("admin.revoked"), variant: "success" });
      void qc.invalidateQueries({ queryKey: ["admin", "grants"] });
    },
    onError: (e) => toast({ title: t("admin.action_failed"), description: (e as Error).message, variant: "destructive" }),
  });
  return (
    <div className="grid grid-cols-1 gap-4">
      <UserPicker id="grant-user" label={t("admin.pick_user")} onPick={setUser} />
      {user && (
        <Card>
          <CardHeader>
            <CardTitle>{user.email}</CardTitle>
            <CardDescription>{user.role === "admin" ? t("admin.admin_sees_all") : t("admin.grants_hint")}</CardDescription>
          </CardHeader>
          <CardContent>
            {grants.isLoading ? <Spinner /> : grants.isError ? <ErrorState error={grants.error} /> : (
              <ul className="grid grid-cols-1 gap-2" data-testid="user-grants">
                {apps.map((a) => {
                  const direct = grants.data!.direct.some((g) => g.app_key === a.key);
                  const groups = grants.data!.via_groups.filter((g) => g.app_key === a.key).map((g) => g.group_name);
                  return (
                    <li key={a.key} className="flex flex-wrap items-center gap-3">
                      <Checkbox id={`grant-${a.key}`} checked={direct} onCheckedChange={(v) => change.mutate({ app: a.key, grant: v === true })} disabled={change.isPending} />
                      <Label htmlFor={`grant-${a.key}`} className="font-normal">{t("admin.direct_grant", { app: a.name })}</Label>
                      {groups.length > 0 && <Badge variant="info">{t("admin.via_groups", { groups: groups.join(", ") })}</Badge>}
                    </li>
                  );
                })}
              </ul>
            )}
          </CardContent>
        </Card>
      )}
    </div>
  );
}
