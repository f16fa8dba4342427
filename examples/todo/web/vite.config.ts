// React with esbuild's automatic JSX runtime; `mizan dev ..` serves dist/.
import { defineConfig } from "vite";

export default defineConfig({
  root: __dirname,
  esbuild: { jsx: "automatic" },
  build: { outDir: "dist", emptyOutDir: true },
  // vite dev (port 5173): the API and its WebSocket (push, channels) from `mizan dev`
  // on 8080 (MIZAN_API_PORT to point it elsewhere)
  server: { proxy: { "/api": { target: `http://127.0.0.1:${process.env.MIZAN_API_PORT ?? 8080}`, ws: true } } },
});
