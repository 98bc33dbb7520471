import { useQuery } from "@tanstack/react-query";
import { api } from "./api";
import type { AppInfo, AppList } from "@/api/types";

export const APPS_KEY = ["apps"] as const;

export function useApps(enabled = true) {
  return useQuery({
    queryKey: APPS_KEY,
    queryFn: async ({ signal }) => (await api<AppList>("/apps", { signal })).apps.filter((a) => a.available !== false),
    enabled,
    staleTime: 15_000,
    refetchInterval: 30_000,
  });
}

export function appRoute(app: AppInfo): string {
  const r = app.route || `/${app.key}`;
  return r.startsWith("/") ? r : `/${r}`;
}
