/**
 * Who has access to a document, on its detail page: the owner, the people and groups it is shared with (and
 * through which category), and its share links. The owner (or an administrator) manages them here: the share
 * dialog adds a person (by email) or a group with a role, a link is created with a mode, an expiry and an
 * optional password (its address is shown once), and shares and links are taken back. The server decides
 * everything; others see their own access only.
 */
import * as React from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Copy, Link2, Trash2, UserPlus, Users } from "lucide-react";
import type { Category, GroupNames, Person, LinkCreate, LinkCreated, LinkList, LinkMode, Share, ShareCreate, ShareLink, ShareList, ShareRole } from "@/api/types";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Dialog, DialogContent, DialogDescription, DialogFooter, DialogHeader, DialogTitle } from "@/components/ui/dialog";
import { FormError } from "@/components/ui/form-error";
import { Input, NativeSelect } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { useToast } from "@/components/ui/toast";
import { api } from "@/lib/api";
import { formatDate } from "@/lib/format";
import { useTranslation } from "@/lib/i18n";

const ROLES: readonly ShareRole[] = ["viewer", "editor"];
const MODES: readonly LinkMode[] = ["download", "preview"];

function useShares(documentId: string) {
  return useQuery({
    queryKey: ["documents", "shares", documentId],
    queryFn: ({ signal }) => api<ShareList>(`/documents/${documentId}/shares`, { signal }),
  });
}

function useLinks(documentId: string, enabled: boolean) {
  return useQuery({
    queryKey: ["documents", "links", documentId],
    queryFn: ({ signal }) => api<LinkList>(`/documents/${documentId}/links`, { signal }),
    enabled,
  });
}

function LoadAgain({ onClick, busy }: { onClick: () => void; busy: boolean }) {
  const { t } = useTranslation();
  return (
    <Button size="sm" variant="outline" className="justify-self-start" onClick={onClick} disabled={busy}>
      {t("sharing.load_again")}
    </Button>
  );
}

function personName(p: Person): string {
  return p.name && p.email ? `${p.name} (${p.email})` : (p.name || p.email || p.id);
}

function shareName(s: Share, t: (k: string) => string): string {
  if (s.user) return personName(s.user);
  return s.group?.name || t("sharing.deleted_group");
}

export function SharePanel({ documentId }: { documentId: string }) {
  const { t, i18n } = useTranslation();
  const qc = useQueryClient();
  const toast = useToast();
  const shares = useShares(documentId);
  const manage = !!shares.data?.can_manage;
  const links = useLinks(documentId, manage);
  const [sharing, setSharing] = React.useState(false);
  const [linking, setLinking] = React.useState(false);
  const refresh = () => void qc.invalidateQueries({ queryKey: ["documents"] });
  const revoke = useRevokeShare(refresh);
  const revokeLink = useMutation({
    mutationFn: (linkId: string) => api(`/links/${linkId}`, { method: "DELETE" }),
    onSuccess: () => {
      refresh();
      toast({ title: t("sharing.link_revoked"), variant: "success" });
    },
    onError: (e) => toast({ title: t("sharing.failed"), description: (e as Error).message, variant: "destructive" }),
  });

  if (shares.isError) {
    // Said, not hidden: the owner must know the access list (and its links) could not be loaded.
    return (
      <Card data-testid="access">
        <CardHeader>
          <CardTitle>{t("sharing.access")}</CardTitle>
        </CardHeader>
        <CardContent className="grid grid-cols-1 gap-2">
          <FormError error={shares.error} />
          <LoadAgain onClick={() => void shares.refetch()} busy={shares.isFetching} />
        </CardContent>
      </Card>
    );
  }
  if (!shares.data) return null;
  const d = shares.data;
  const owner = personName(d.owner);
  return (
    <Card data-testid="access">
      <CardHeader>
        <CardTitle>{t("sharing.access")}</CardTitle>
        <CardDescription>{d.role && d.role !== "owner" ? t("sharing.your_role", { role: t(`sharing.role_${d.role}`) }) : t("sharing.access_hint")}</CardDescription>
      </CardHeader>
      <CardContent className="grid grid-cols-1 gap-3">
        <ul className="grid grid-cols-1 gap-1.5 text-sm" aria-label={t("sharing.access")}>
          <li className="flex items-center justify-between gap-2">
            <span className="min-w-0 truncate">{owner}</span>
            <Badge variant="secondary">{t("sharing.role_owner")}</Badge>
          </li>
          {d.shares.map((s) => (
            <ShareRow key={s.id} share={s} onRevoke={manage && s.via === "document" ? () => revoke.mutate(s.id) : undefined} revoking={revoke.isPending} />
          ))}
        </ul>
        {manage && (
          <div className="flex flex-wrap gap-2">
            <Button size="sm" onClick={() => setSharing(true)}>
              <UserPlus /> {t("sharing.share")}
            </Button>
            <Button size="sm" variant="outline" onClick={() => setLinking(true)}>
              <Link2 /> {t("sharing.new_link")}
            </Button>
          </div>
        )}
        {manage && links.isError && (
          <div className="grid grid-cols-1 gap-1.5" data-testid="links-error">
            <p className="text-xs font-medium text-muted-foreground">{t("sharing.links")}</p>
            <FormError error={links.error} />
            <LoadAgain onClick={() => void links.refetch()} busy={links.isFetching} />
          </div>
        )}
        {manage && (links.data?.items ?? []).length > 0 && (
          <div className="grid grid-cols-1 gap-1.5">
            <p className="text-xs font-medium text-muted-foreground">{t("sharing.links")}</p>
            <ul className="grid grid-cols-1 gap-1.5 text-sm" data-testid="links">
              {(links.data?.items ?? []).map((l) => (
                <li key={l.id} className="flex items-start justify-between gap-2" data-testid="link-row">
                  <span className="min-w-0">
                    <span className="block">
                      {t(`sharing.mode_${l.mode}`)}
                      {l.has_password ? ` · ${t("sharing.with_password")}` : ""}
                    </span>
                    <span className="block text-xs text-muted-foreground">
                      {l.active ? t("sharing.expires", { date: formatDate(l.expires_at, i18n.language) }) : l.revoked_at ? t("sharing.link_revoked") : t("sharing.expired")}
                      {" · "}
                      {t("sharing.uses", { count: l.uses })}
                    </span>
                    <LinkUses link={l} />
                  </span>
                  {l.active && (
                    <Button size="icon" variant="ghost" className="h-7 w-7" aria-label={t("sharing.revoke_link")} disabled={revokeLink.isPending} onClick={() => revokeLink.mutate(l.id)}>
                      <Trash2 />
                    </Button>
                  )}
                </li>
              ))}
            </ul>
          </div>
        )}
      </CardContent>
      {manage && <ShareDialog documentId={documentId} open={sharing} onOpenChange={setSharing} onDone={refresh} />}
      {manage && <LinkDialog documentId={documentId} open={linking} onOpenChange={setLinking} onDone={refresh} />}
    </Card>
  );
}

function ShareDialog({ documentId, open, onOpenChange, onDone }: { documentId: string; open: boolean; onOpenChange: (o: boolean) => void; onDone: () => void }) {
  const { t } = useTranslation();
  return (
    <Dialog open={open} onOpenChange={onOpenChange}>
      <DialogContent>
        <DialogHeader>
          <DialogTitle>{t("sharing.share_title")}</DialogTitle>
          <DialogDescription>{t("sharing.share_hint")}</DialogDescription>
        </DialogHeader>
        {open && (
          <ShareForm
            target={`/documents/${documentId}`}
            onShared={() => {
              onDone();
              onOpenChange(false);
            }}
          />
        )}
      </DialogContent>
    </Dialog>
  );
}

/** Take a share back; `onDone` refreshes what shows it. */
function useRevokeShare(onDone: () => void) {
  const { t } = useTranslation();
  const toast = useToast();
  return useMutation({
    mutationFn: (shareId: string) => api(`/shares/${shareId}`, { method: "DELETE" }),
    onSuccess: () => {
      onDone();
      toast({ title: t("sharing.revoked"), variant: "success" });
    },
    onError: (e) => toast({ title: t("sharing.failed"), description: (e as Error).message, variant: "destructive" }),
  });
}

/** One person or group with access, with its role (and a revoke button when `onRevoke` is given). */
function ShareRow({ share: s, onRevoke, revoking }: { share: Share; onRevoke?: () => void; revoking: boolean }) {
  const { t } = useTranslation();
  return (
    <li className="flex items-center justify-between gap-2" data-testid="share-row">
      <span className="flex min-w-0 items-center gap-1 truncate">
        {s.group ? <Users className="h-3.5 w-3.5 shrink-0" aria-label={t("sharing.group")} /> : null}
        <span className="truncate">{shareName(s, t)}</span>
        {s.via === "category" && <span className="text-xs text-muted-foreground">· {t("sharing.via_category", { name: s.category_name ?? "" })}</span>}
      </span>
      <span className="flex items-center gap-1">
        <Badge variant="outline">{t(`sharing.role_${s.role}`)}</Badge>
        {onRevoke && (
          <Button size="icon" variant="ghost" className="h-7 w-7" aria-label={t("sharing.revoke", { name: shareName(s, t) })} disabled={revoking} onClick={onRevoke}>
            <Trash2 />
          </Button>
        )}
      </span>
    </li>
  );
}

/** Share `target` (`/documents/{id}` or `/categories/{id}`) with a person (by email) or a group, with a role;
 * sharing again with the same one changes the role. */
function ShareForm({ target, onShared }: { target: string; onShared: () => void }) {
  const { t } = useTranslation();
  const toast = useToast();
  const [kind, setKind] = React.useState<"person" | "group">("person");
  const [email, setEmail] = React.useState("");
  const [groupId, setGroupId] = React.useState("");
  const [role, setRole] = React.useState<ShareRole>("viewer");
  const groups = useQuery({
    queryKey: ["sharing", "groups"],
    queryFn: ({ signal }) => api<GroupNames>("/sharing/groups", { signal }),
    enabled: kind === "group",
  });
  const share = useMutation({
    mutationFn: (body: ShareCreate) => api<Share>(`${target}/shares`, { method: "POST", body }),
    onSuccess: () => {
      toast({ title: t("sharing.shared"), variant: "success" });
      setEmail("");
      setGroupId("");
      onShared();
    },
  });
  return (
    <form
      className="grid grid-cols-1 gap-3"
      onSubmit={(e) => {
        e.preventDefault();
        share.mutate(kind === "person" ? { email: email.trim(), role } : { group_id: groupId, role });
      }}
    >
      <div className="grid grid-cols-1 gap-1">
        <Label htmlFor="share-kind">{t("sharing.with")}</Label>
        <NativeSelect id="share-kind" value={kind} onChange={(e) => setKind(e.target.value as "person" | "group")}>
          <option value="person">{t("sharing.person")}</option>
          <option value="group">{t("sharing.group")}</option>
        </NativeSelect>
      </div>
      {kind === "person" ? (
        <div className="grid grid-cols-1 gap-1">
          <Label htmlFor="share-email">{t("sharing.email")}</Label>
          <Input id="share-email" type="email" required value={email} onChange={(e) => setEmail(e.target.value)} autoComplete="off" />
        </div>
      ) : (
        <div className="grid grid-cols-1 gap-1">
          <Label htmlFor="share-group">{t("sharing.group")}</Label>
          <NativeSelect id="share-group" required value={groupId} onChange={(e) => setGroupId(e.target.value)}>
            <option value="">{t("sharing.choose_group")}</option>
            {(groups.data?.groups ?? []).map((g) => (
              <option key={g.id} value={g.id}>{g.name}</option>
            ))}
          </NativeSelect>
        </div>
      )}
      <div className="grid grid-cols-1 gap-1">
        <Label htmlFor="share-role">{t("sharing.role")}</Label>
        <NativeSelect id="share-role" value={role} onChange={(e) => setRole(e.target.value as ShareRole)}>
          {ROLES.map((r) => (
            <option key={r} value={r}>{t(`sharing.role_${r}`)} — {t(`sharing.role_${r}_hint`)}</option>
          ))}
        </NativeSelect>
      </div>
      <FormError error={share.error} />
      <DialogFooter>
        <Button type="submit" disabled={share.isPending}>{t("sharing.share")}</Button>
      </DialogFooter>
    </form>
  );
}

/** Who the owner's category (every document they file under it, now and later) is shared with, from the
 * categories page: add a person or group with a role, take a share back. */
export function CategoryShareDialog({ category, onOpenChange }: { category: Category | null; onOpenChange: (o: boolean) => void }) {
  const { t } = useTranslation();
  const qc = useQueryClient();
  const id = category?.id;
  const shares = useQuery({
    queryKey: ["categories", "shares", id],
    queryFn: ({ signal }) => api<ShareList>(`/categories/${id}/shares`, { signal }),
    enabled: !!id,
  });
  const refresh = () => {
    void qc.invalidateQueries({ queryKey: ["categories", "shares", id] });
    void qc.invalidateQueries({ queryKey: ["documents"] });
  };
  const revoke = useRevokeShare(refresh);
  return (
    <Dialog open={!!category} onOpenChange={onOpenChange}>
      <DialogContent>
        <DialogHeader>
          <DialogTitle>{t("sharing.category_title", { name: category?.name ?? "" })}</DialogTitle>
          <DialogDescription>{t("sharing.category_hint")}</DialogDescription>
        </DialogHeader>
        {shares.isError ? (
          <FormError error={shares.error} />
        ) : (shares.data?.shares ?? []).length === 0 ? (
          <p className="text-sm text-muted-foreground" data-testid="category-not-shared">{shares.data ? t("sharing.category_not_shared") : ""}</p>
        ) : (
          <ul className="grid grid-cols-1 gap-1.5 text-sm" aria-label={t("sharing.access")} data-testid="category-shares">
            {shares.data!.shares.map((s) => (
              <ShareRow key={s.id} share={s} onRevoke={shares.data!.can_manage ? () => revoke.mutate(s.id) : undefined} revoking={revoke.isPending} />
            ))}
          </ul>
        )}
        {category && <ShareForm key={category.id} target={`/categories/${category.id}`} onShared={refresh} />}
      </DialogContent>
    </Dialog>
  );
}

/** The link's latest audited uses (when, what, from which address), newest first; the backend keeps them all. */
function LinkUses({ link }: { link: ShareLink }) {
  const { t, i18n } = useTranslation();
  const recent = link.recent ?? [];
  if (recent.length === 0) return null;
  return (
    <details className="mt-1 text-xs" data-testid="link-uses">
      <summary className="cursor-pointer text-muted-foreground">{t("sharing.uses_show")}</summary>
      <ul className="mt-1 grid grid-cols-1 gap-0.5" aria-label={t("sharing.uses_title")}>
        {recent.map((u, i) => (
          <li key={i} data-testid="link-use" className="tabular-nums">
            {formatDate(u.at, i18n.language)} · {t(`sharing.action_${u.action}`)}
            {u.ip ? ` · ${u.ip}` : ""}
          </li>
        ))}
      </ul>
      {link.uses > recent.length && <p className="text-muted-foreground">{t("sharing.uses_more", { count: link.uses - recent.length })}</p>}
    </details>
  );
}

function LinkDialog({ documentId, open, onOpenChange, onDone }: { documentId: string; open: boolean; onOpenChange: (o: boolean) => void; onDone: () => void }) {
  const { t } = useTranslation();
  const toast = useToast();
  const [mode, setMode] = React.useState<LinkMode>("download");
  const [days, setDays] = React.useState("7");
  const [password, setPassword] = React.useState("");
  const [address, setAddress] = React.useState<string | null>(null);
  const create = useMutation({
    mutationFn: (body: LinkCreate) => api<LinkCreated>(`/documents/${documentId}/links`, { method: "POST", body }),
    onSuccess: (r) => {
      onDone();
      setPassword("");
      // The token is shown this once: only its hash is kept.
      setAddress(`${window.location.origin}/s/${r.token}`);
    },
  });
  const close = (o: boolean) => {
    if (!o) {
      setAddress(null);
      create.reset();
    }
    onOpenChange(o);
  };
  return (
    <Dialog open={open} onOpenChange={close}>
      <DialogContent>
        <DialogHeader>
          <DialogTitle>{t("sharing.link_title")}</DialogTitle>
          <DialogDescription>{t("sharing.link_hint")}</DialogDescription>
        </DialogHeader>
        {address ? (
          <div className="grid grid-cols-1 gap-2">
            <Label htmlFor="link-address">{t("sharing.link_address")}</Label>
            <div className="flex gap-2">
              <Input id="link-address" readOnly value={address} onFocus={(e) => e.target.select()} />
              <Button
                type="button"
                variant="outline"
                aria-label={t("sharing.copy")}
                onClick={() => void navigator.clipboard?.writeText(address).then(() => toast({ title: t("sharing.copied"), variant: "success" }))}
              >
                <Copy />
              </Button>
            </div>
            <p className="text-xs text-muted-foreground">{t("sharing.link_once")}</p>
          </div>
        ) : (
          <form
            className="grid grid-cols-1 gap-3"
            onSubmit={(e) => {
              e.preventDefault();
              create.mutate({ mode, expires_in_days: Number(days), ...(password ? { password } : {}) });
            }}
          >
            <div className="grid grid-cols-1 gap-1">
              <Label htmlFor="link-mode">{t("sharing.mode")}</Label>
              <NativeSelect id="link-mode" value={mode} onChange={(e) => setMode(e.target.value as LinkMode)}>
                {MODES.map((m) => (
                  <option key={m} value={m}>{t(`sharing.mode_${m}`)}</option>
                ))}
              </NativeSelect>
            </div>
            <div className="grid grid-cols-1 gap-1">
              <Label htmlFor="link-days">{t("sharing.expires_in")}</Label>
              <Input id="link-days" type="number" min={1} max={365} required value={days} onChange={(e) => setDays(e.target.value)} />
            </div>
            <div className="grid grid-cols-1 gap-1">
              <Label htmlFor="link-password">{t("sharing.password")}</Label>
              <Input id="link-password" type="password" minLength={6} value={password} onChange={(e) => setPassword(e.target.value)} autoComplete="new-password" />
            </div>
            <FormError error={create.error} />
            <DialogFooter>
              <Button type="submit" disabled={create.isPending}>{t("sharing.create_link")}</Button>
            </DialogFooter>
          </form>
        )}
      </DialogContent>
    </Dialog>
  );
}
