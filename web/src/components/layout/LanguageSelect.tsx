import { NativeSelect } from "@/components/ui/input";
import { LANGUAGES, useTranslation } from "@/lib/i18n";

/** The signed-out pages' language switch: a native select, so no menu library is in their first download
 * (the signed-in header has the menu, `LanguageMenu`). */
export function LanguageSelect() {
  const { t, i18n } = useTranslation();
  return (
    <NativeSelect aria-label={t("header.language")} className="h-8 w-auto" value={i18n.language} onChange={(e) => void i18n.changeLanguage(e.target.value)}>
      {LANGUAGES.map((l) => (
        <option key={l.code} value={l.code} lang={l.code}>
          {l.label}
        </option>
      ))}
    </NativeSelect>
  );
}
