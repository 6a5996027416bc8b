// Bundles gateway-node into one ESM file for the container: `node gateway-node/build.mjs [outdir]`.
import { build } from "esbuild";
import { fileURLToPath } from "node:url";

const outdir = process.argv[2] ?? fileURLToPath(new URL("./dist", import.meta.url));
await build({
  entryPoints: [fileURLToPath(new URL("./src/main.ts", import.meta.url))],
  outfile: `${outdir}/main.mjs`,
  bundle: true,
  platform: "node",
  target: "node22",
  format: "esm",
  sourcemap: true,
  // ws tries these optional native speed-ups with require(); they are not installed.
  external: ["bufferutil", "utf-8-validate"],
  banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" },
  logLevel: "warning",
});
