import * as React from "react";
import { useTranslation } from "@/lib/i18n";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import type { User } from "@/api/types";
import { useUsers } from "@/lib/admin";

/** A search box that lists matching accounts; picking one calls `onPick`. */
export function UserPicker({ id, label, onPick }: { id: string; label: string; onPick: (u: User) => void }) {
  const { t } = useTranslation();
  const [q, setQ] = React.useState("");
  const users = useUsers({ search: q || undefined, limit: 8 });
  return (
    <div className="grid grid-cols-1 gap-1.5">
      <Label htmlFor={id}>{label}</Label>
      <Input id={id} type="search" value={q} placeholder={t("admin.search_placeholder")} onChange={(e) => setQ(e.target.value)} />
      {q && (
        <ul className="rounded-md border" role="listbox" aria-label={label}>
          {(users.data?.items ?? []).map((u) => (
            <li key={u.id}>
              <button type="button" className="w-full px-3 py-1.5 text-left text-sm hover:bg-accent focus-visible:bg-accent focus-visible:outline-none" onClick={() => { onPick(u); setQ(""); }}>
                {u.email}{u.full_name ? ` — ${u.full_name}` : ""}
              </button>
            </li>
          ))}
          {users.data?.items.length === 0 && <li className="px-3 py-1.5 text-sm text-muted-foreground">{t("admin.no_users")}</li>}
        </ul>
      )}
    </div>
  );
}
