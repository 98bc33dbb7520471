import * as React from "react";
import { useQuery, useQueryClient, type QueryClient } from "@tanstack/react-query";
import { Navigate, useLocation } from "react-router-dom";
import { api, ApiError, csrfToken, onSessionLost } from "./api";
import { Spinner } from "@/components/ui/spinner";
import type { User } from "@/api/types";

export const ME_KEY = ["auth", "me"] as const;

/** The signed-in user, or null when signed out (a 401 is an answer here, not an error). */
export function useMe() {
  return useQuery<User | null>({
    queryKey: ME_KEY,
    queryFn: async () => {
      // No csrf cookie means no session at all: skip a request that could only answer 401.
      if (!csrfToken()) return null;
      try {
        return await api<User>("/auth/me");
      } catch (e) {
        if (e instanceof ApiError && e.status === 401) return null;
        throw e;
      }
    },
    staleTime: 60_000,
    retry: false,
  });
}

export function RequireAuth({ children, admin = false }: { children: React.ReactNode; admin?: boolean }) {
  const me = useMe();
  const location = useLocation();
  if (me.isLoading) return <Spinner className="min-h-screen" />;
  if (!me.data) {
    const next = location.pathname + location.search;
    const reason = lostReason ? `reason=${lostReason}&` : "";
    return <Navigate to={`/sign-in?${reason}next=${encodeURIComponent(next)}`} replace />;
  }
  if (admin && me.data.role !== "admin") return <Navigate to="/" replace />;
  return <>{children}</>;
}

/** The sign-in family of pages is for signed-out people only. */
export function RedirectIfAuthed({ children }: { children: React.ReactNode }) {
  const me = useMe();
  const location = useLocation();
  if (me.isLoading) return <Spinner className="min-h-screen" />;
  if (me.data) {
    const next = new URLSearchParams(location.search).get("next");
    return <Navigate to={safeNext(next)} replace />;
  }
  return <>{children}</>;
}

/** Only same-app paths: never bounce a user to another origin after sign-in. */
export function safeNext(next: string | null): string {
  return next && next.startsWith("/") && !next.startsWith("//") ? next : "/";
}

// Why the session ended, for the sign-in page's message; read once by the redirect.
let lostReason: "revoked" | "expired" | "signed_out" | null = null;

/** Forget the signed-in user; the guard of the current page then sends them to sign in with `reason`. */
export function endSession(qc: QueryClient, reason: "revoked" | "expired" | "signed_out"): void {
  lostReason = reason;
  qc.setQueryData(ME_KEY, null);
  // Drop cached data only after the signed-in pages unmounted, so none refetches without a session.
  setTimeout(() => qc.removeQueries({ predicate: (q) => q.queryKey[0] !== "auth" }), 0);
}

export function clearLostReason(): void {
  lostReason = null;
}

/** Signs the app out when the API says the session is gone; RequireAuth then redirects with the reason. */
export function SessionWatcher() {
  const qc = useQueryClient();
  React.useEffect(
    () =>
      onSessionLost((reason) => {
        if (qc.getQueryData(ME_KEY)) endSession(qc, reason);
      }),
    [qc],
  );
  return null;
}

/** The token of a mailed link (`/reset-password#token=…`): read from the fragment, which never reaches a
 * server log, then dropped from the address bar and history. A `?token=` link of an older mail still works. */
export function useLinkToken(): string {
  const [token] = React.useState(() => {
    const fromFragment = new URLSearchParams(window.location.hash.slice(1)).get("token");
    const token = fromFragment ?? new URLSearchParams(window.location.search).get("token") ?? "";
    if (token) window.history.replaceState(window.history.state, "", window.location.pathname);
    return token;
  });
  return token;
}
