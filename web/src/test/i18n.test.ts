import en from "@/locales/en";
import ru from "@/locales/ru";

const PLURAL = /_(zero|one|two|few|many|other)$/;

function keys(obj: Record<string, unknown>, prefix = ""): string[] {
  return Object.entries(obj).flatMap(([k, v]) => (v && typeof v === "object" ? keys(v as Record<string, unknown>, `${prefix}${k}.`) : [`${prefix}${k}`]));
}
const base = (list: string[]) => new Set(list.map((k) => k.replace(PLURAL, "")));

describe("translations", () => {
  it("English and Russian have the same keys (plural forms aside)", () => {
    const enKeys = base(keys(en));
    const ruKeys = base(keys(ru));
    expect([...enKeys].filter((k) => !ruKeys.has(k))).toEqual([]);
    expect([...ruKeys].filter((k) => !enKeys.has(k))).toEqual([]);
  });

  it("Russian plurals have one, few, many and other", () => {
    const all = keys(ru);
    const plurals = new Set(all.filter((k) => PLURAL.test(k)).map((k) => k.replace(PLURAL, "")));
    for (const k of plurals) for (const form of ["one", "few", "many", "other"]) expect(all).toContain(`${k}_${form}`);
  });

  it("every literal key used in the code exists", () => {
    const enKeys = base(keys(en));
    // Vite reads every source file as text: no Node APIs needed in the test.
    const sources = import.meta.glob(["../**/*.ts", "../**/*.tsx", "!../**/*.test.*"], { query: "?raw", import: "default", eager: true }) as Record<string, string>;
    const missing: string[] = [];
    for (const [file, text] of Object.entries(sources)) {
      for (const m of text.matchAll(/\bt\(\s*"([a-z_0-9]+\.[a-z_0-9.]+)"/g)) {
        if (!enKeys.has(m[1])) missing.push(`${file}: ${m[1]}`);
      }
    }
    expect(Object.keys(sources).length).toBeGreaterThan(20);
    expect(missing).toEqual([]);
  });
});
