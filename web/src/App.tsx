import { BrowserRouter, Navigate, Route, Routes } from "react-router-dom";
import { useTranslation } from "react-i18next";
import { FileQuestion } from "lucide-react";
import { AppShell } from "@/components/layout/AppShell";
import { EmptyState } from "@/components/ui/states";
import { Button } from "@/components/ui/button";
import { RedirectIfAuthed, RequireAuth, SessionWatcher, useMe } from "@/lib/auth";
import { useApps } from "@/lib/apps";
import { LiveEventsProvider } from "@/lib/documents";
import { UploadsProvider } from "@/lib/uploads";
import { ForgotPasswordPage, RegisterPage, ResetPasswordPage, SignInPage, SsoCallbackPage, VerifyEmailPage } from "@/pages/auth/AuthPages";
import { SecurityPage } from "@/pages/SecurityPage";
import { AdminSecurityPage } from "@/pages/admin/SecurityAdminPage";
import { AppsPage, DashboardPage, SessionsPage } from "@/pages/HomePages";
import { ProfilePage } from "@/pages/ProfilePage";
import { DocumentsPage } from "@/pages/documents/DocumentsPage";
import { DocumentDetailPage } from "@/pages/documents/DocumentDetailPage";
import { CategoriesPage } from "@/pages/documents/CategoriesPage";
import { TasksPage } from "@/pages/documents/TasksPage";
import { AdminAuditPage, AdminDocumentsSettingsPage, AdminPermissionsPage, AdminUsersPage } from "@/pages/admin/AdminPages";
import { Link } from "react-router-dom";

function NotFound() {
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

/** Documents pages only for users who hold the grant; a revoked grant shows why instead of a broken page. */
function RequireApp({ app, children }: { app: string; children: React.ReactNode }) {
  const { t } = useTranslation();
  const apps = useApps();
  if (apps.isLoading) return null;
  if (!(apps.data ?? []).some((a) => a.key === app)) {
    return <EmptyState title={t("errors.no_app_access")} description={t("errors.no_app_access_hint")} action={<Button asChild variant="outline"><Link to="/apps">{t("nav.apps")}</Link></Button>} />;
  }
  return <>{children}</>;
}

function SignedIn() {
  const me = useMe();
  const apps = useApps(!!me.data);
  const hasDocs = (apps.data ?? []).some((a) => a.key === "documents");
  return (
    <LiveEventsProvider enabled={!!me.data && hasDocs}>
      <UploadsProvider>
        <AppShell />
      </UploadsProvider>
    </LiveEventsProvider>
  );
}

export function App() {
  return (
    <BrowserRouter>
      <SessionWatcher />
      <Routes>
        <Route path="/sign-in" element={<RedirectIfAuthed><SignInPage /></RedirectIfAuthed>} />
        <Route path="/register" element={<RedirectIfAuthed><RegisterPage /></RedirectIfAuthed>} />
        <Route path="/forgot-password" element={<RedirectIfAuthed><ForgotPasswordPage /></RedirectIfAuthed>} />
        <Route path="/reset-password" element={<RedirectIfAuthed><ResetPasswordPage /></RedirectIfAuthed>} />
        <Route path="/verify-email" element={<VerifyEmailPage />} />
        <Route path="/sso/:provider/callback" element={<SsoCallbackPage />} />
        <Route path="/login" element={<Navigate to="/sign-in" replace />} />
        <Route element={<RequireAuth><SignedIn /></RequireAuth>}>
          <Route index element={<DashboardPage />} />
          <Route path="apps" element={<AppsPage />} />
          <Route path="profile" element={<ProfilePage />} />
          <Route path="sessions" element={<SessionsPage />} />
          <Route path="security" element={<SecurityPage />} />
          <Route path="documents" element={<RequireApp app="documents"><DocumentsPage /></RequireApp>} />
          <Route path="documents/:id" element={<RequireApp app="documents"><DocumentDetailPage /></RequireApp>} />
          <Route path="categories" element={<RequireApp app="documents"><CategoriesPage /></RequireApp>} />
          <Route path="tasks" element={<RequireApp app="documents"><TasksPage /></RequireApp>} />
          <Route path="admin/users" element={<RequireAuth admin><AdminUsersPage /></RequireAuth>} />
          <Route path="admin/permissions" element={<RequireAuth admin><AdminPermissionsPage /></RequireAuth>} />
          <Route path="admin/documents" element={<RequireAuth admin><AdminDocumentsSettingsPage /></RequireAuth>} />
          <Route path="admin/audit" element={<RequireAuth admin><AdminAuditPage /></RequireAuth>} />
          <Route path="admin/security" element={<RequireAuth admin><AdminSecurityPage /></RequireAuth>} />
          <Route path="*" element={<NotFound />} />
        </Route>
      </Routes>
    </BrowserRouter>
  );
}
