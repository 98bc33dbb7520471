/** Numbers, sizes, dates and amounts in the UI language's conventions (Intl). */

export function formatBytes(bytes: number | null | undefined, locale = "en"): string {
  if (bytes == null || Number.isNaN(bytes)) return "—";
  const units = ["B", "KB", "MB", "GB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${new Intl.NumberFormat(locale, { maximumFractionDigits: unit ? 1 : 0 }).format(value)} ${units[unit]}`;
}

export function formatDate(value: string | null | undefined, locale = "en", withTime = true): string {
  if (!value) return "—";
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return value;
  return new Intl.DateTimeFormat(locale, withTime ? { dateStyle: "medium", timeStyle: "short" } : { dateStyle: "medium" }).format(d);
}

/**
 * An amount in the UI language's money format with its currency (`€304,277.24`, `304 277,24 €`); without a
 * currency, the number with two decimals. Amounts come from the API as decimal strings. A value that is no
 * number is shown as it is.
 */
export function formatAmount(value: unknown, currency: string | null | undefined, locale = "en"): string {
  if (value === null || value === undefined || value === "") return "";
  const amount = typeof value === "number" ? value : Number(String(value).replace(/\s/g, ""));
  if (!Number.isFinite(amount)) return String(value);
  const plain = { minimumFractionDigits: 2, maximumFractionDigits: 2 };
  const code = currency?.trim().toUpperCase();
  if (!code) return new Intl.NumberFormat(locale, plain).format(amount);
  try {
    return new Intl.NumberFormat(locale, { style: "currency", currency: code }).format(amount);
  } catch {
    // Not a well-formed ISO 4217 code (the model may have read "Euro" or "$"): the number and what it said.
    return `${new Intl.NumberFormat(locale, plain).format(amount)} ${currency}`;
  }
}
