import "@testing-library/jest-dom/vitest";
import { initI18n, loadMessages } from "@/lib/i18n";

await initI18n("en");
await loadMessages("app");
