// Vite builds the dashboard into dist/ (CMake passes --outDir <build>/web/dist).
// Relative asset paths, so the gateway can serve it from any web_root.
import { defineConfig } from "vite";

export default defineConfig({
  base: "./",
  build: { outDir: "dist", assetsDir: "assets", sourcemap: false, chunkSizeWarningLimit: 400 },
  server: { proxy: { "/api": "http://127.0.0.1:8080", "/metrics": "http://127.0.0.1:8080" } },
});
