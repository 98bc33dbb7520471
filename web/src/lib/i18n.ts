/**
 * Translations (English, Russian): `useTranslation()` gives `t(key, options)` and the current language.
 *
 * Written here rather than taken from i18next: the app needs only nested keys, `{{name}}` interpolation,
 * plural forms by `count` (`_one`, `_few`, `_many`, `_other`, from Intl.PluralRules) and `defaultValue`,
 * and i18next + react-i18next alone were ~50 kB of the sign-in page's first download. Each language comes
 * in two chunks: `public` (the signed-out pages), loaded before the first render
 * (`initI18n`), and `app` (the signed-in pages), loaded with the signed-in shell (`loadMessages`).
 */
import * as React from "react";

export const LANGUAGES = [
  { code: "en", label: "English" },
  { code: "ru", label: "Русский" },
] as const;
export type Language = (typeof LANGUAGES)[number]["code"];

interface Tree {
  [key: string]: string | Tree;
}
export interface TOptions {
  count?: number;
  defaultValue?: string;
  [name: string]: unknown;
}
export type TFunction = (key: string, options?: TOptions) => string;

export type MessagePart = "public" | "app";

const STORAGE_KEY = "atrium.lang";
const LOADERS: Record<Language, Record<MessagePart, () => Promise<{ default: Tree }>>> = {
  en: { public: () => import("@/locales/en/public"), app: () => import("@/locales/en/app") },
  ru: { public: () => import("@/locales/ru/public"), app: () => import("@/locales/ru/app") },
};

const messages: Partial<Record<Language, Tree>> = {};
const loadedParts: Record<Language, Set<MessagePart>> = { en: new Set(), ru: new Set() };
// The parts the app has asked for: a language switch loads the same parts of the new language.
const wantedParts = new Set<MessagePart>(["public"]);
const pluralRules: Partial<Record<Language, Intl.PluralRules>> = {};
const listeners = new Set<() => void>();
let current: Language = initialLanguage();

function asLanguage(code: string | null | undefined): Language | null {
  const base = code?.toLowerCase().split("-")[0];
  return LANGUAGES.find((l) => l.code === base)?.code ?? null;
}

function initialLanguage(): Language {
  try {
    const saved = asLanguage(localStorage.getItem(STORAGE_KEY));
    if (saved) return saved;
  } catch {
    /* storage blocked: use the browser's language */
  }
  return (typeof navigator !== "undefined" && asLanguage(navigator.language)) || "en";
}

function lookup(tree: Tree | undefined, key: string): string | undefined {
  let node: string | Tree | undefined = tree;
  for (const part of key.split(".")) {
    if (node === undefined || typeof node === "string") return undefined;
    node = node[part];
  }
  return typeof node === "string" ? node : undefined;
}

/** `key` in `language`: the plural form for `count` if there is one, `{{name}}` filled from `options`. */
export function translate(language: Language, key: string, options: TOptions = {}): string {
  const tree = messages[language];
  let text: string | undefined;
  if (typeof options.count === "number") {
    const rules = (pluralRules[language] ??= new Intl.PluralRules(language));
    text = lookup(tree, `${key}_${rules.select(options.count)}`) ?? lookup(tree, `${key}_other`);
  }
  text ??= lookup(tree, key) ?? options.defaultValue ?? key;
  return text.replace(/\{\{\s*(\w+)\s*\}\}/g, (whole, name: string) => (name in options ? String(options[name]) : whole));
}

async function load(language: Language, parts: Iterable<MessagePart>): Promise<void> {
  await Promise.all(
    [...parts].map(async (part) => {
      if (loadedParts[language].has(part)) return;
      const tree = (await LOADERS[language][part]()).default;
      messages[language] = { ...messages[language], ...tree };
      loadedParts[language].add(part);
    }),
  );
}

function show(language: Language): void {
  current = language;
  if (typeof document !== "undefined") document.documentElement.lang = language;
  listeners.forEach((fn) => fn());
}

/** The current language and switching it (the chosen one is remembered in this browser). */
export const i18n = {
  get language(): Language {
    return current;
  },
  get resolvedLanguage(): Language {
    return current;
  },
  async changeLanguage(code: string): Promise<void> {
    const language = asLanguage(code) ?? "en";
    await load(language, wantedParts);
    try {
      localStorage.setItem(STORAGE_KEY, language);
    } catch {
      /* storage blocked: the choice lasts until reload */
    }
    show(language);
  },
};

/** Loads the public messages of the language to show (the remembered or the browser's one, or `language`). */
export async function initI18n(language: Language = current): Promise<void> {
  await load(language, wantedParts);
  show(language);
}

/** Loads another part of the current language's messages (and of any language switched to later). */
export async function loadMessages(part: MessagePart): Promise<void> {
  wantedParts.add(part);
  await load(current, [part]);
  show(current);
}

function subscribe(fn: () => void): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function useTranslation(): { t: TFunction; i18n: typeof i18n } {
  const language = React.useSyncExternalStore(subscribe, () => current, () => current);
  const t = React.useCallback<TFunction>((key, options) => translate(language, key, options), [language]);
  return { t, i18n };
}
