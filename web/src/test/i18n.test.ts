import * as fs from "node:fs";
import * as path from "node:path";
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
    const root = path.resolve(__dirname, "..");
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (/\.tsx?$/.test(e.name) && !e.name.includes(".test.")) files.push(p);
      }
    };
    walk(root);
    const missing: string[] = [];
    for (const f of files) {
      for (const m of fs.readFileSync(f, "utf8").matchAll(/\bt\(\s*"([a-z_0-9]+\.[a-z_0-9.]+)"/g)) {
        if (!enKeys.has(m[1])) missing.push(`${path.relative(root, f)}: ${m[1]}`);
      }
    }
    expect(missing).toEqual([]);
  });
});
