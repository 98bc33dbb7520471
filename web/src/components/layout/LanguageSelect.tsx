import { LANGUAGES, useTranslation } from "@/lib/i18n";

/** The signed-out pages' language switch: a native select, so no menu library is in their first download
 * (the signed-in header has the menu, `LanguageMenu`). NativeSelect's classes, smaller, spelt out: the signed-out
 * pages do without class merging (`lib/utils.cn`). */
export function LanguageSelect() {
  const { t, i18n } = useTranslation();
  return (
    <select
      aria-label={t("header.language")}
      className="flex rounded-md border border-input bg-background px-2 py-1 text-sm shadow-sm focus-visible:outline-none focus-visible:ring-2 focus-visible:ring-ring disabled:opacity-50 h-8 w-auto"
      value={i18n.language} onChange={(e) => void i18n.changeLanguage(e.target.value)}>
      {LANGUAGES.map((l) => (
        <option key={l.code} value={l.code} lang={l.code}>
          {l.label}
        </option>
      ))}
    </select>
  );
}
