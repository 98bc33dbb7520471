/// <reference types="vitest/config" />
import { fileURLToPath, URL } from "node:url";
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";
import tailwindcss from "@tailwindcss/vite";

const gatewayPort = process.env.ATRIUM_GATEWAY_PORT ?? "8080";

/** Libraries by how often they change: the framework every page needs in one long-cached file, the Radix
 * primitives (signed-in pages only) in another; the app's own code is split per route (React.lazy). */
function vendorChunk(id: string): string | undefined {
  if (!id.includes("/node_modules/")) return undefined;
  if (/\/node_modules\/(react|react-dom|scheduler|react-router|react-router-dom|@remix-run\/router|@tanstack\/[^/]+)\//.test(id)) return "framework";
  if (/\/node_modules\/(@radix-ui|@floating-ui|aria-hidden|react-remove-scroll[^/]*|react-style-singleton|use-callback-ref|use-sidecar|detect-node-es|get-nonce|tslib)\//.test(id)) return "radix";
  return undefined;
}

export default defineConfig({
  plugins: [react(), tailwindcss()],
  resolve: { alias: { "@": fileURLToPath(new URL("./src", import.meta.url)) } },
  server: {
    proxy: { "/api": { target: `http://127.0.0.1:${gatewayPort}`, changeOrigin: false } },
  },
  build: {
    outDir: "dist",
    sourcemap: false,
    // Every browser the app supports knows <link rel="modulepreload">: no polyfill in the first download.
    modulePreload: false,
    rollupOptions: { output: { manualChunks: vendorChunk } },
  },
  test: {
    environment: "jsdom",
    globals: true,
    setupFiles: ["./src/test/setup.ts"],
    // A timeout, not a timing check: a typed-out form takes seconds on a loaded shared machine (5 s timed out).
    testTimeout: 30_000,
    css: false,
  },
});
