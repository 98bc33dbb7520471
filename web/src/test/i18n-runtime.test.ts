import { i18n, initI18n, loadMessages, translate } from "@/lib/i18n";

describe("translate", () => {
  afterAll(async () => {
    await i18n.changeLanguage("en");
  });

  it("fills {{names}}, picks the plural form for count and falls back to defaultValue, then the key", () => {
    expect(translate("en", "errors.request_id", { id: "abc" })).toBe("Request id: abc");
    expect(translate("en", "documents.total", { count: 1 })).toBe("1 document");
    expect(translate("en", "documents.total", { count: 3 })).toBe("3 documents");
    expect(translate("en", "no.such_key", { defaultValue: "Fallback" })).toBe("Fallback");
    expect(translate("en", "no.such_key")).toBe("no.such_key");
  });

  it("Russian uses its own plural forms, loaded with the part of the messages asked for", async () => {
    await initI18n("en");
    await loadMessages("app");
    await i18n.changeLanguage("ru");
    expect(i18n.language).toBe("ru");
    expect(document.documentElement.lang).toBe("ru");
    expect(translate("ru", "documents.total", { count: 1 })).toBe("1 документ");
    expect(translate("ru", "documents.total", { count: 3 })).toBe("3 документа");
    expect(translate("ru", "documents.total", { count: 5 })).toBe("5 документов");
    expect(translate("ru", "auth.sign_in")).toBe("Войти");
  });
});
