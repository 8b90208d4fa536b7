// Bundles entry.js (the ArcGIS Maps SDK for JavaScript's ES modules, from
// node_modules) into build/: the SDK imports bare module names (tslib,
// luxon, calcite components, ...) that a browser cannot resolve, and loads
// most of itself with dynamic import(), which `splitting` keeps as separate
// chunks. `npm run build`; the test runs it when build/ is missing or older
// than package-lock.json.
import { build } from "esbuild";

await build({
  entryPoints: ["entry.js"],
  bundle: true,
  format: "esm",
  splitting: true,
  minify: true,
  target: "es2022",
  outdir: "build",
  entryNames: "sdk",
  chunkNames: "chunks/[name]-[hash]",
  logLevel: "warning",
});
