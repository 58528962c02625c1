/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// The bundle is Python package data: the gateway serves it at "/".
// `npm run dev` proxies the API to a gateway on :8080 (`spendgate serve`).
const gateway = process.env.SPENDGATE_URL ?? "http://127.0.0.1:8080";

export default defineConfig({
  plugins: [react()],
  base: "/",
  build: {
    outDir: "../src/spendgate/static",
    emptyOutDir: true,
    // No inline scripts anywhere: the gateway's CSP forbids them.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 1200,
  },
  server: {
    proxy: { "/api": gateway, "/health": gateway },
  },
  test: {
    environment: "jsdom",
    globals: true,
    include: ["src/**/*.test.{ts,tsx}"],
    setupFiles: ["src/test-setup.ts"],
  },
});
