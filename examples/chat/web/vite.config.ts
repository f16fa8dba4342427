// React with esbuild's automatic JSX runtime; `mizan dev ..` serves dist/.
import { defineConfig } from "vite";

export default defineConfig({
  root: __dirname,
  esbuild: { jsx: "automatic" },
  build: { outDir: "dist", emptyOutDir: true },
  server: { proxy: { "/api": "http://127.0.0.1:8080" } }, // vite dev: the API from mizan dev
});
