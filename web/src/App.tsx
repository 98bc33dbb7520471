import * as React from "react";
import { BrowserRouter, Navigate, Outlet, Route, Routes } from "react-router-dom";
import { Spinner } from "@/components/ui/spinner";
import { RedirectIfAuthed, RequireAuth, SessionWatcher } from "@/lib/auth";
import { loadMessages } from "@/lib/i18n";

/**
 * Every page is its own chunk, loaded when its route is first shown: the sign-in page does not download
 * the signed-in app, and a user who never opens the admin pages never downloads them.
 */
function lazyPage<K extends string, P = object>(load: () => Promise<Record<K, React.ComponentType<NoInfer<P>>>>, name: K) {
  return React.lazy(async () => ({ default: (await load())[name] }));
}

const SignInPage = lazyPage(() => import("@/pages/auth/SignInPage"), "SignInPage");
const RegisterPage = lazyPage(() => import("@/pages/auth/RegisterPage"), "RegisterPage");
const ForgotPasswordPage = lazyPage(() => import("@/pages/auth/PasswordResetPages"), "ForgotPasswordPage");
const ResetPasswordPage = lazyPage(() => import("@/pages/auth/PasswordResetPages"), "ResetPasswordPage");
const VerifyEmailPage = lazyPage(() => import("@/pages/auth/VerifyEmailPage"), "VerifyEmailPage");
// Its messages come with the signed-in pages' (which follow it).
const SsoCallbackPage = lazyPage(
  async () => (await Promise.all([import("@/pages/auth/SsoCallbackPage"), loadMessages("app")]))[0],
  "SsoCallbackPage",
);
// The shell comes with the signed-in pages' messages (both fetched at once).
const SignedInShell = lazyPage(
  async () => (await Promise.all([import("@/components/layout/SignedInShell"), loadMessages("app")]))[0],
  "SignedInShell",
);
const DashboardPage = lazyPage(() => import("@/pages/DashboardPage"), "DashboardPage");
const AppsPage = lazyPage(() => import("@/pages/AppsPage"), "AppsPage");
const SessionsPage = lazyPage(() => import("@/pages/SessionsPage"), "SessionsPage");
const ProfilePage = lazyPage(() => import("@/pages/ProfilePage"), "ProfilePage");
const SecurityPage = lazyPage(() => import("@/pages/SecurityPage"), "SecurityPage");
const DocumentsPage = lazyPage(() => import("@/pages/documents/DocumentsPage"), "DocumentsPage");
const DocumentDetailPage = lazyPage(() => import("@/pages/documents/DocumentDetailPage"), "DocumentDetailPage");
const CategoriesPage = lazyPage(() => import("@/pages/documents/CategoriesPage"), "CategoriesPage");
const TasksPage = lazyPage(() => import("@/pages/documents/TasksPage"), "TasksPage");
const DocumentsSettingsPage = lazyPage(() => import("@/pages/documents/SettingsPage"), "DocumentsSettingsPage");
const AdminUsersPage = lazyPage(() => import("@/pages/admin/UsersPage"), "AdminUsersPage");
const AdminPermissionsPage = lazyPage(() => import("@/pages/admin/PermissionsPage"), "AdminPermissionsPage");
const AdminAuditPage = lazyPage(() => import("@/pages/admin/AuditPage"), "AdminAuditPage");
const SharedLinkPage = lazyPage(
  async () => (await Promise.all([import("@/pages/SharedLinkPage"), import("@/lib/class-merge")]))[0],
  "SharedLinkPage",
);
const AdminSecurityPage = lazyPage(() => import("@/pages/admin/SecurityAdminPage"), "AdminSecurityPage");
const AdminSystemPage = lazyPage(() => import("@/pages/admin/SystemPage"), "AdminSystemPage");
const NotFoundPage = lazyPage(() => import("@/pages/NotFoundPage"), "NotFoundPage");
const RequireApp = lazyPage<"RequireApp", { app: string; children: React.ReactNode }>(() => import("@/components/layout/RequireApp"), "RequireApp");

/** A page's chunk is loading: the whole screen outside the shell, the content area inside it. */
function PageLoading({ fullScreen = false }: { fullScreen?: boolean }) {
  return <Spinner className={fullScreen ? "min-h-screen" : undefined} />;
}

/** Signed-out pages: each waits for its chunk on a blank screen with a spinner. */
function SignedOut() {
  return (
    <RedirectIfAuthed>
      <React.Suspense fallback={<PageLoading fullScreen />}>
        <Outlet />
      </React.Suspense>
    </RedirectIfAuthed>
  );
}

function documents(page: React.ReactNode) {
  return <RequireApp app="documents">{page}</RequireApp>;
}

function admin(page: React.ReactNode) {
  return <RequireAuth admin>{page}</RequireAuth>;
}

export function App() {
  return (
    <BrowserRouter>
      <SessionWatcher />
      <Routes>
        <Route element={<SignedOut />}>
          <Route path="/sign-in" element={<SignInPage />} />
          <Route path="/register" element={<RegisterPage />} />
          <Route path="/forgot-password" element={<ForgotPasswordPage />} />
          <Route path="/reset-password" element={<ResetPasswordPage />} />
        </Route>
        <Route path="/verify-email" element={<React.Suspense fallback={<PageLoading fullScreen />}><VerifyEmailPage /></React.Suspense>} />
        <Route path="/s/:token" element={<React.Suspense fallback={<PageLoading fullScreen />}><SharedLinkPage /></React.Suspense>} />
        <Route path="/sso/:provider/callback" element={<React.Suspense fallback={<PageLoading fullScreen />}><SsoCallbackPage /></React.Suspense>} />
        <Route path="/login" element={<Navigate to="/sign-in" replace />} />
        <Route element={<RequireAuth><React.Suspense fallback={<PageLoading fullScreen />}><SignedInShell /></React.Suspense></RequireAuth>}>
          <Route index element={<DashboardPage />} />
          <Route path="apps" element={<AppsPage />} />
          <Route path="profile" element={<ProfilePage />} />
          <Route path="sessions" element={<SessionsPage />} />
          <Route path="security" element={<SecurityPage />} />
          <Route path="documents" element={documents(<DocumentsPage />)} />
          <Route path="documents/:id" element={documents(<DocumentDetailPage />)} />
          <Route path="categories" element={documents(<CategoriesPage />)} />
          <Route path="tasks" element={documents(<TasksPage />)} />
          <Route path="admin/users" element={admin(<AdminUsersPage />)} />
          <Route path="admin/permissions" element={admin(<AdminPermissionsPage />)} />
          <Route path="admin/documents" element={admin(<DocumentsSettingsPage />)} />
          <Route path="admin/security" element={admin(<AdminSecurityPage />)} />
          <Route path="admin/audit" element={admin(<AdminAuditPage />)} />
          <Route path="admin/system" element={admin(<AdminSystemPage />)} />
          <Route path="*" element={<NotFoundPage />} />
        </Route>
      </Routes>
    </BrowserRouter>
  );
}
