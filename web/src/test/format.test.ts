import { formatAmount } from "@/lib/format";

describe("amounts", () => {
  it("use the UI language's money format with the document's currency", () => {
    expect(formatAmount("304277.24", "EUR", "en")).toBe("€304,277.24");
    expect(formatAmount("304277.24", "EUR", "ru")).toBe("304\u00a0277,24\u00a0€");
    expect(formatAmount("1234.5", "usd", "en")).toBe("$1,234.50");
    expect(formatAmount(12, "RUB", "ru")).toBe("12,00\u00a0₽");
  });

  it("without a currency show two decimals; what is no number stays as it is", () => {
    expect(formatAmount("304277.24", null, "en")).toBe("304,277.24");
    expect(formatAmount("7", "", "ru")).toBe("7,00");
    expect(formatAmount("12.50", "Euro", "en")).toBe("12.50 Euro");
    expect(formatAmount("n/a", "EUR", "en")).toBe("n/a");
    expect(formatAmount(null, "EUR", "en")).toBe("");
  });
});
