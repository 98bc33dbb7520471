import * as React from "react";
import { useTranslation, type TFunction } from "@/lib/i18n";
import { Bot, Check, Pencil, User, X } from "lucide-react";
import { Button } from "@/components/ui/button";
import { Input, NativeSelect, Textarea } from "@/components/ui/input";
import { Tooltip } from "@/components/ui/tooltip";
import { DOCUMENT_TYPES, type EditableField, type FieldValue } from "@/api/types";
import { formatAmount } from "@/lib/format";

const DATE_FIELDS = new Set<string>(["document_date", "due_date"] satisfies EditableField[]);
const AMOUNT_FIELDS = new Set<string>(["total_amount", "net_amount", "tax_amount"] satisfies EditableField[]);

export function displayValue(value: unknown): string {
  if (value === null || value === undefined || value === "") return "";
  if (Array.isArray(value)) return value.join(", ");
  return String(value);
}

/** What the input's text means for the API: empty is null, amounts stay strings (decimals), currency upper-case. */
export function parseFieldInput(name: string, text: string): string | null {
  const v = text.trim();
  if (!v) return null;
  if (name === "currency") return v.toUpperCase();
  if (AMOUNT_FIELDS.has(name)) return v.replace(/\s/g, "").replace(",", ".");
  return v;
}

/** How a set value reads: document types translated, amounts as money; everything else as it is. */
function shownValue(name: string, value: string, currency: string | null | undefined, locale: string, t: TFunction): string {
  if (name === "document_type") return t(`doctype.${value}`, { defaultValue: value });
  if (AMOUNT_FIELDS.has(name)) return formatAmount(value, currency, locale);
  return value;
}

interface Props {
  name: string;
  field?: FieldValue;
  /** The document's currency: amounts are shown in the UI language's money format with it. */
  currency?: string | null;
  onSave: (name: string, value: string | null) => Promise<unknown> | void;
  saving?: boolean;
}

/**
 * One AI field: its value, where it came from (model + provider, or the user), and inline edit.
 * A model value can be accepted (it becomes the user's) or rejected (cleared by the user).
 */
export function FieldEditor({ name, field, currency, onSave, saving }: Props) {
  const { t, i18n } = useTranslation();
  const [editing, setEditing] = React.useState(false);
  const [text, setText] = React.useState(displayValue(field?.value));
  const [error, setError] = React.useState<string | null>(null);
  const inputId = `field-${name}`;
  React.useEffect(() => {
    if (!editing) setText(displayValue(field?.value));
  }, [field?.value, editing]);
  const value = displayValue(field?.value);
  const fromModel = field?.source === "model";
  const save = async (next: string | null) => {
    setError(null);
    try {
      await onSave(name, next);
      setEditing(false);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
  };
  const label = t(`fields.${name}`, { defaultValue: name });
  return (
    <div className="grid grid-cols-1 gap-1 border-b py-3 last:border-0 sm:grid-cols-[10rem_1fr] sm:gap-4" data-testid={`field-${name}`} data-source={field?.source ?? "none"}>
      <label htmlFor={inputId} className="pt-1.5 text-sm text-muted-foreground">{label}</label>
      {editing ? (
        <form
          className="grid grid-cols-1 gap-2"
          onSubmit={(e) => {
            e.preventDefault();
            void save(parseFieldInput(name, text));
          }}
          onKeyDown={(e) => {
            if (e.key === "Escape") {
              e.stopPropagation();
              setEditing(false);
            }
          }}
        >
          {name === "document_type" ? (
            <NativeSelect id={inputId} value={text} onChange={(e) => setText(e.target.value)} autoFocus>
              <option value="">{t("fields.empty")}</option>
              {DOCUMENT_TYPES.map((d) => (
                <option key={d} value={d}>{t(`doctype.${d}`)}</option>
              ))}
            </NativeSelect>
          ) : name === "summary" ? (
            <Textarea id={inputId} value={text} onChange={(e) => setText(e.target.value)} autoFocus rows={4} />
          ) : (
            <Input
              id={inputId}
              type={DATE_FIELDS.has(name) ? "date" : "text"}
              inputMode={AMOUNT_FIELDS.has(name) ? "decimal" : undefined}
              value={text}
              onChange={(e) => setText(e.target.value)}
              autoFocus
            />
          )}
          {error && <p role="alert" className="text-sm text-destructive">{error}</p>}
          <div className="flex gap-2">
            <Button type="submit" size="sm" disabled={saving}>{t("common.save")}</Button>
            <Button type="button" size="sm" variant="ghost" onClick={() => setEditing(false)}>{t("common.cancel")}</Button>
          </div>
        </form>
      ) : (
        <div className="flex min-w-0 flex-wrap items-start gap-2">
          <span className={value ? "min-w-0 flex-1 whitespace-pre-wrap break-words pt-1.5 text-sm" : "flex-1 pt-1.5 text-sm italic text-muted-foreground"} data-testid={`field-${name}-value`}>
            {value ? shownValue(name, value, currency, i18n.language, t) : t("fields.empty")}
          </span>
          {field && (
            <Tooltip content={fromModel ? t("fields.from_model_detail", { provider: field.provider ?? "?", model: field.model || "—" }) : t("fields.from_user")}>
              <span
                tabIndex={0}
                className="inline-flex items-center gap-1 rounded-md border px-1.5 py-1 text-xs text-muted-foreground"
                aria-label={fromModel ? t("fields.from_model_detail", { provider: field.provider ?? "?", model: field.model || "—" }) : t("fields.from_user")}
              >
                {fromModel ? <Bot className="h-3.5 w-3.5" aria-hidden /> : <User className="h-3.5 w-3.5" aria-hidden />}
                {fromModel ? t("fields.source_model") : t("fields.source_user")}
              </span>
            </Tooltip>
          )}
          {fromModel && value && (
            <>
              <Button size="icon" variant="ghost" className="h-8 w-8" onClick={() => void save(parseFieldInput(name, value))} aria-label={t("fields.accept", { field: label })} disabled={saving}>
                <Check />
              </Button>
              <Button size="icon" variant="ghost" className="h-8 w-8" onClick={() => void save(null)} aria-label={t("fields.reject", { field: label })} disabled={saving}>
                <X />
              </Button>
            </>
          )}
          <Button size="icon" variant="ghost" className="h-8 w-8" onClick={() => setEditing(true)} aria-label={t("fields.edit", { field: label })}>
            <Pencil />
          </Button>
          {error && <p role="alert" className="w-full text-sm text-destructive">{error}</p>}
        </div>
      )}
    </div>
  );
}
