import * as React from "react";
import { useTranslation } from "@/lib/i18n";
import { Filter, Search, X } from "lucide-react";
import { Button } from "@/components/ui/button";
import { Input, NativeSelect } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { DOCUMENT_SORT_KEYS, DOCUMENT_STATUSES, DOCUMENT_TYPES, type Category } from "@/api/types";
import type { DocumentQuery } from "@/lib/documents/queries";
import { cn } from "@/lib/utils";

function Chips<T extends string>({ legend, options, selected, onChange }: { legend: string; options: { value: T; label: string }[]; selected: readonly T[]; onChange: (v: T[]) => void }) {
  return (
    <fieldset className="grid grid-cols-1 gap-1.5">
      <legend className="mb-1.5 text-xs font-medium text-muted-foreground">{legend}</legend>
      <div className="flex flex-wrap gap-1.5">
        {options.map((o) => {
          const on = selected.includes(o.value);
          return (
            <button
              key={o.value}
              type="button"
              aria-pressed={on}
              onClick={() => onChange(on ? selected.filter((v) => v !== o.value) : [...selected, o.value])}
              className={cn(
                "rounded-full border px-2.5 py-1 text-xs font-medium transition-colors focus-visible:outline-none focus-visible:ring-2 focus-visible:ring-ring",
                on ? "border-primary bg-primary text-primary-foreground" : "bg-background hover:bg-accent",
              )}
            >
              {o.label}
            </button>
          );
        })}
      </div>
    </fieldset>
  );
}

function DateRange({ id, legend, from, to, onChange }: { id: string; legend: string; from?: string | null; to?: string | null; onChange: (from?: string, to?: string) => void }) {
  const { t } = useTranslation();
  return (
    <fieldset className="grid grid-cols-1 gap-1.5">
      <legend className="mb-1.5 text-xs font-medium text-muted-foreground">{legend}</legend>
      <div className="grid grid-cols-2 gap-2">
        <div className="grid grid-cols-1 gap-1">
          <Label htmlFor={`${id}-from`} className="text-xs font-normal">{t("filters.from")}</Label>
          <Input id={`${id}-from`} type="date" value={from ?? ""} max={to ?? undefined} onChange={(e) => onChange(e.target.value || undefined, to ?? undefined)} />
        </div>
        <div className="grid grid-cols-1 gap-1">
          <Label htmlFor={`${id}-to`} className="text-xs font-normal">{t("filters.to")}</Label>
          <Input id={`${id}-to`} type="date" value={to ?? ""} min={from ?? undefined} onChange={(e) => onChange(from ?? undefined, e.target.value || undefined)} />
        </div>
      </div>
    </fieldset>
  );
}

export function activeFilterCount(q: DocumentQuery): number {
  return (
    (q.status?.length ?? 0) +
    (q.document_type?.length ?? 0) +
    (q.category_any?.length ?? 0) +
    (q.date_from || q.date_to ? 1 : 0) +
    (q.uploaded_from || q.uploaded_to ? 1 : 0)
  );
}

/** Search, filters and sort of the documents list; `value` is the whole query, `onChange` gets the next one. */
export function DocumentFilters({ value, onChange, categories }: { value: DocumentQuery; onChange: (q: DocumentQuery) => void; categories: Category[] }) {
  const { t } = useTranslation();
  const [text, setText] = React.useState(value.q ?? "");
  const [open, setOpen] = React.useState(activeFilterCount(value) > 0);
  const latest = React.useRef(value);
  latest.current = value;
  React.useEffect(() => setText(value.q ?? ""), [value.q]);
  React.useEffect(() => {
    if ((latest.current.q ?? "") === text) return;
    // Wait for a pause in typing so every keystroke is not a request.
    const timer = setTimeout(() => onChange({ ...latest.current, q: text || undefined, cursor: undefined }), 300);
    return () => clearTimeout(timer);
  }, [text, onChange]);
  const set = (patch: Partial<DocumentQuery>) => onChange({ ...value, ...patch, cursor: undefined });
  const count = activeFilterCount(value);
  return (
    <div className="grid grid-cols-1 gap-3">
      <div className="flex flex-col gap-2 sm:flex-row sm:items-center">
        <div className="relative flex-1">
          <Search className="pointer-events-none absolute left-2.5 top-2.5 h-4 w-4 text-muted-foreground" aria-hidden />
          <Input
            type="search"
            aria-label={t("filters.search")}
            placeholder={t("filters.search_placeholder")}
            className="pl-8"
            value={text}
            onChange={(e) => setText(e.target.value)}
          />
        </div>
        <div className="flex flex-wrap gap-2">
          <Button variant="outline" aria-expanded={open} aria-controls="document-filters" onClick={() => setOpen(!open)}>
            <Filter /> {t("filters.filters")}
            {count > 0 && <span className="rounded-full bg-primary px-1.5 text-xs text-primary-foreground">{count}</span>}
          </Button>
          <div className="flex min-w-0 flex-wrap items-center gap-1">
            <Label htmlFor="sort" className="sr-only">{t("filters.sort")}</Label>
            <NativeSelect id="sort" className="w-auto" value={value.sort ?? "uploaded_at"} onChange={(e) => set({ sort: e.target.value as DocumentQuery["sort"] })}>
              {DOCUMENT_SORT_KEYS.filter((k) => k !== "relevance" || value.q).map((k) => (
                <option key={k} value={k}>{t(`sort.${k}`)}</option>
              ))}
            </NativeSelect>
            <Label htmlFor="order" className="sr-only">{t("filters.order")}</Label>
            <NativeSelect id="order" className="w-auto" value={value.order ?? "desc"} onChange={(e) => set({ order: e.target.value as "asc" | "desc" })}>
              <option value="desc">{t("filters.desc")}</option>
              <option value="asc">{t("filters.asc")}</option>
            </NativeSelect>
          </div>
        </div>
      </div>
      {open && (
        <div id="document-filters" className="grid grid-cols-1 gap-4 rounded-xl border bg-card p-4 md:grid-cols-2">
          <Chips legend={t("filters.status")} options={DOCUMENT_STATUSES.map((s) => ({ value: s, label: t(`status.${s}`) }))} selected={value.status ?? []} onChange={(status) => set({ status })} />
          <Chips
            legend={t("filters.type")}
            options={DOCUMENT_TYPES.map((d) => ({ value: d, label: t(`doctype.${d}`) }))}
            selected={value.document_type ?? []}
            onChange={(document_type) => set({ document_type })}
          />
          {categories.length > 0 && (
            <Chips legend={t("filters.categories")} options={categories.map((c) => ({ value: c.id, label: c.name }))} selected={value.category_any ?? []} onChange={(category_any) => set({ category_any })} />
          )}
          <DateRange id="uploaded" legend={t("filters.uploaded")} from={value.uploaded_from} to={value.uploaded_to} onChange={(uploaded_from, uploaded_to) => set({ uploaded_from, uploaded_to })} />
          <DateRange id="docdate" legend={t("filters.document_date")} from={value.date_from} to={value.date_to} onChange={(date_from, date_to) => set({ date_from, date_to })} />
          {count > 0 && (
            <div className="flex items-end md:col-span-2">
              <Button
                variant="ghost"
                size="sm"
                onClick={() => set({ status: [], document_type: [], category_any: [], date_from: undefined, date_to: undefined, uploaded_from: undefined, uploaded_to: undefined })}
              >
                <X /> {t("filters.clear")}
              </Button>
            </div>
          )}
        </div>
      )}
    </div>
  );
}
