// Bundles the browser SDK's entry (client/index.ts, with zod and the protocol sources it uses) minified for the
// browser and prints its size, minified and gzipped: `npm run size:client`. Pass --metafile to list what dominates.
import { build } from "esbuild";
import { gzipSync } from "node:zlib";
import { fileURLToPath } from "node:url";

const entry = fileURLToPath(new URL("index.ts", import.meta.url));
const result = await build({
  entryPoints: [entry],
  bundle: true,
  format: "esm",
  platform: "browser",
  minify: true,
  write: false,
  metafile: true,
  logLevel: "warning",
});
const code = result.outputFiles[0].contents;
const kb = (bytes) => (bytes / 1024).toFixed(1);
console.log(`client bundle: ${kb(code.length)} KB minified, ${kb(gzipSync(code).length)} KB gzipped`);
if (process.argv.includes("--metafile")) {
  const inputs = Object.values(result.metafile.outputs)[0].inputs;
  const byPackage = new Map();
  for (const [path, { bytesInOutput }] of Object.entries(inputs)) {
    const key = path.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/)?.[1] ?? path.split("/").slice(0, -1).join("/");
    byPackage.set(key, (byPackage.get(key) ?? 0) + bytesInOutput);
  }
  for (const [key, bytes] of [...byPackage].sort((a, b) => b[1] - a[1])) console.log(`  ${kb(bytes).padStart(7)} KB  ${key}`);
}
