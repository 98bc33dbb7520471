import * as React from "react";
import { Link, NavLink, Outlet, useLocation, useNavigate } from "react-router-dom";
import { useTranslation } from "@/lib/i18n";
import { useQueryClient } from "@tanstack/react-query";
import {
  Activity, AppWindow, FileText, FolderTree, History, Home, KeyRound, LayoutGrid, LogOut, Menu, Monitor, Moon,
  ScrollText, Settings2, Shield, ShieldCheck, Sun, User as UserIcon, Users, X,
} from "lucide-react";
import { Button } from "@/components/ui/button";
import { Spinner } from "@/components/ui/spinner";
import {
  DropdownMenu, DropdownMenuContent, DropdownMenuItem, DropdownMenuLabel, DropdownMenuRadioGroup, DropdownMenuRadioItem,
  DropdownMenuSeparator, DropdownMenuTrigger,
} from "@/components/ui/dropdown-menu";
import { api } from "@/lib/api";
import { endSession, useMe } from "@/lib/auth";
import { appRoute, useApps } from "@/lib/apps";
import { useTheme, type Theme } from "@/lib/theme";
import { cn } from "@/lib/utils";
import { Avatar } from "./Avatar";
import { Brand } from "./Brand";
import { LanguageMenu } from "./LanguageMenu";

interface NavItem {
  to: string;
  label: string;
  icon: React.ComponentType<{ className?: string }>;
  end?: boolean;
}

function NavSection({ title, items, onNavigate }: { title?: string; items: NavItem[]; onNavigate: () => void }) {
  return (
    <div className="flex flex-col gap-0.5">
      {title && <p className="px-3 pb-1 pt-4 text-xs font-semibold uppercase tracking-wide text-muted-foreground">{title}</p>}
      {items.map((item) => (
        <NavLink
          key={item.to}
          to={item.to}
          end={item.end}
          onClick={onNavigate}
          className={({ isActive }) =>
            cn(
              "flex items-center gap-3 rounded-md px-3 py-2 text-sm font-medium transition-colors hover:bg-accent hover:text-accent-foreground",
              isActive ? "bg-accent text-accent-foreground" : "text-muted-foreground",
            )
          }
        >
          <item.icon className="h-4 w-4" />
          <span className="truncate">{item.label}</span>
        </NavLink>
      ))}
    </div>
  );
}

function Sidebar({ onNavigate }: { onNavigate: () => void }) {
  const { t } = useTranslation();
  const me = useMe();
  const apps = useApps();
  const hasDocuments = (apps.data ?? []).some((a) => a.key === "documents");
  const main: NavItem[] = [
    { to: "/", label: t("nav.home"), icon: Home, end: true },
    { to: "/apps", label: t("nav.apps"), icon: LayoutGrid },
  ];
  const myApps: NavItem[] = (apps.data ?? []).map((a) => ({
    to: appRoute(a),
    label: a.key === "documents" ? t("nav.documents") : a.name,
    icon: a.key === "documents" ? FileText : AppWindow,
  }));
  if (hasDocuments) {
    myApps.push({ to: "/categories", label: t("nav.categories"), icon: FolderTree });
    myApps.push({ to: "/tasks", label: t("nav.tasks"), icon: History });
  }
  const admin: NavItem[] = [
    { to: "/admin/users", label: t("nav.admin_users"), icon: Users },
    { to: "/admin/permissions", label: t("nav.admin_permissions"), icon: ShieldCheck },
    { to: "/admin/documents", label: t("nav.admin_documents"), icon: Settings2 },
    { to: "/admin/security", label: t("nav.admin_security"), icon: Shield },
    { to: "/admin/audit", label: t("nav.admin_audit"), icon: ScrollText },
    { to: "/admin/system", label: t("nav.admin_system"), icon: Activity },
  ];
  return (
    <nav aria-label={t("nav.main")} className="flex flex-col gap-1 p-3">
      <NavSection items={main} onNavigate={onNavigate} />
      {myApps.length > 0 && <NavSection title={t("nav.my_apps")} items={myApps} onNavigate={onNavigate} />}
      {me.data?.role === "admin" && <NavSection title={t("nav.admin")} items={admin} onNavigate={onNavigate} />}
    </nav>
  );
}

function ThemeMenu() {
  const { t } = useTranslation();
  const { theme, resolved, setTheme } = useTheme();
  const Icon = theme === "system" ? Monitor : resolved === "dark" ? Moon : Sun;
  return (
    <DropdownMenu>
      <DropdownMenuTrigger asChild>
        <Button variant="ghost" size="icon" aria-label={t("header.theme")}>
          <Icon />
        </Button>
      </DropdownMenuTrigger>
      <DropdownMenuContent align="end">
        <DropdownMenuLabel>{t("header.theme")}</DropdownMenuLabel>
        <DropdownMenuRadioGroup value={theme} onValueChange={(v) => setTheme(v as Theme)}>
          <DropdownMenuRadioItem value="light">{t("theme.light")}</DropdownMenuRadioItem>
          <DropdownMenuRadioItem value="dark">{t("theme.dark")}</DropdownMenuRadioItem>
          <DropdownMenuRadioItem value="system">{t("theme.system")}</DropdownMenuRadioItem>
        </DropdownMenuRadioGroup>
      </DropdownMenuContent>
    </DropdownMenu>
  );
}

function UserMenu() {
  const { t } = useTranslation();
  const me = useMe();
  const navigate = useNavigate();
  const qc = useQueryClient();
  const signOut = async () => {
    try {
      await api("/auth/logout", { method: "POST", body: {}, noRefresh: true });
    } catch {
      /* the session may already be gone; the cookies are cleared either way below */
    }
    endSession(qc, "signed_out");
  };
  const name = me.data?.full_name || me.data?.email || "";
  return (
    <DropdownMenu>
      <DropdownMenuTrigger asChild>
        <Button variant="ghost" className="h-9 gap-2 px-2" aria-label={t("header.user_menu")}>
          <Avatar name={name} size={28} />
          <span className="hidden max-w-40 truncate text-sm md:inline">{name}</span>
        </Button>
      </DropdownMenuTrigger>
      <DropdownMenuContent align="end" className="w-56">
        <DropdownMenuLabel className="font-normal">
          <p className="truncate text-sm font-medium">{me.data?.full_name || t("profile.no_name")}</p>
          <p className="truncate text-xs text-muted-foreground">{me.data?.email}</p>
        </DropdownMenuLabel>
        <DropdownMenuSeparator />
        <DropdownMenuItem onSelect={() => navigate("/profile")}>
          <UserIcon /> {t("nav.profile")}
        </DropdownMenuItem>
        <DropdownMenuItem onSelect={() => navigate("/security")}>
          <Shield /> {t("nav.security")}
        </DropdownMenuItem>
        <DropdownMenuItem onSelect={() => navigate("/sessions")}>
          <KeyRound /> {t("nav.sessions")}
        </DropdownMenuItem>
        <DropdownMenuSeparator />
        <DropdownMenuItem onSelect={() => void signOut()}>
          <LogOut /> {t("header.sign_out")}
        </DropdownMenuItem>
      </DropdownMenuContent>
    </DropdownMenu>
  );
}

export function AppShell() {
  const { t } = useTranslation();
  const [open, setOpen] = React.useState(false);
  const location = useLocation();
  React.useEffect(() => setOpen(false), [location.pathname]);
  return (
    <div className="flex min-h-screen">
      <a href="#main" className="sr-only focus:not-sr-only focus:fixed focus:left-2 focus:top-2 focus:z-[60] focus:rounded-md focus:bg-background focus:px-3 focus:py-2">
        {t("nav.skip")}
      </a>
      {/* The aside stretches to the page's full height (its background and border go all the way down);
          the navigation inside it stays in view while the page scrolls. */}
      <aside className="hidden w-60 shrink-0 border-r bg-card lg:block" data-testid="sidebar">
        <div className="sticky top-0 max-h-screen overflow-y-auto">
          <div className="flex h-14 items-center border-b px-5">
            <Brand />
          </div>
          <Sidebar onNavigate={() => undefined} />
        </div>
      </aside>
      {open && (
        <div className="fixed inset-0 z-40 lg:hidden" role="dialog" aria-modal="true" aria-label={t("nav.main")}>
          <div className="absolute inset-0 bg-black/40" onClick={() => setOpen(false)} />
          <div className="absolute inset-y-0 left-0 w-64 overflow-y-auto border-r bg-card shadow-xl">
            <div className="flex h-14 items-center justify-between border-b px-4">
              <Brand />
              <Button variant="ghost" size="icon" onClick={() => setOpen(false)} aria-label={t("common.close")}>
                <X />
              </Button>
            </div>
            <Sidebar onNavigate={() => setOpen(false)} />
          </div>
        </div>
      )}
      <div className="flex min-w-0 flex-1 flex-col">
        <header className="sticky top-0 z-30 flex h-14 items-center gap-2 border-b bg-background/90 px-3 backdrop-blur sm:px-5">
          <Button variant="ghost" size="icon" className="lg:hidden" onClick={() => setOpen(true)} aria-label={t("nav.open_menu")}>
            <Menu />
          </Button>
          <div className="lg:hidden">
            <Brand />
          </div>
          <div className="ml-auto flex items-center gap-1">
            <ThemeMenu />
            <LanguageMenu />
            <UserMenu />
          </div>
        </header>
        <main id="main" className="mx-auto w-full max-w-7xl flex-1 p-4 sm:p-6">
          <EnrolBanner />
          <React.Suspense fallback={<Spinner />}>
            <Outlet />
          </React.Suspense>
        </main>
      </div>
    </div>
  );
}

/** The security policy asks this account for a second factor it lacks: lead it to the Security page. */
function EnrolBanner() {
  const { t } = useTranslation();
  const me = useMe();
  const location = useLocation();
  if (!me.data?.must_enrol_second_factor || location.pathname === "/security") return null;
  return (
    <div role="alert" className="mb-4 flex flex-wrap items-center gap-2 rounded-md border border-warning/50 bg-warning/10 px-3 py-2 text-sm">
      <Shield className="h-4 w-4" aria-hidden />
      <span>{t("security.enrol_required")}</span>
      <Link to="/security" className="font-medium text-primary underline-offset-4 hover:underline">{t("security.enrol_now")}</Link>
    </div>
  );
}
