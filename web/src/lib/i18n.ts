import i18n from "i18next";
import { initReactI18next } from "react-i18next";
import en from "@/locales/en";
import ru from "@/locales/ru";

export const LANGUAGES = [
  { code: "en", label: "English" },
  { code: "ru", label: "Русский" },
] as const;
export type Language = (typeof LANGUAGES)[number]["code"];

const KEY = "atrium.lang";

function initialLanguage(): Language {
  try {
    const saved = localStorage.getItem(KEY);
    if (saved === "en" || saved === "ru") return saved;
  } catch {
    /* ignore */
  }
  return typeof navigator !== "undefined" && navigator.language?.toLowerCase().startsWith("ru") ? "ru" : "en";
}

void i18n.use(initReactI18next).init({
  resources: { en: { translation: en }, ru: { translation: ru } },
  lng: initialLanguage(),
  fallbackLng: "en",
  interpolation: { escapeValue: false },
  returnNull: false,
});

i18n.on("languageChanged", (lng) => {
  document.documentElement.lang = lng;
  try {
    localStorage.setItem(KEY, lng);
  } catch {
    /* ignore */
  }
});
if (typeof document !== "undefined") document.documentElement.lang = i18n.language;

export default i18n;
