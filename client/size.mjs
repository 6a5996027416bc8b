// Bundles the browser SDK's entries (client/index.ts, and client/sse-entry.ts for `/sse`, each with zod and the
// protocol sources it uses) minified for the browser and prints their sizes, minified and gzipped:
// `npm run size:client`. The main entry's budget is 10 KB gzipped. Pass --metafile to list what dominates.
import { build } from "esbuild";
import { gzipSync } from "node:zlib";
import { fileURLToPath } from "node:url";

const kb = (bytes) => (bytes / 1024).toFixed(1);
for (const [label, file] of [["client bundle", "index.ts"], ["client/sse bundle", "sse-entry.ts"]]) {
  const result = await build({
    entryPoints: [fileURLToPath(new URL(file, import.meta.url))],
    bundle: true,
    format: "esm",
    platform: "browser",
    minify: true,
    write: false,
    metafile: true,
    logLevel: "warning",
  });
  const code = result.outputFiles[0].contents;
  console.log(`${label}: ${kb(code.length)} KB minified, ${kb(gzipSync(code).length)} KB gzipped`);
  if (process.argv.includes("--metafile")) {
    const inputs = Object.values(result.metafile.outputs)[0].inputs;
    const byPackage = new Map();
    for (const [path, { bytesInOutput }] of Object.entries(inputs)) {
      const key = path.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/)?.[1] ?? path.split("/").slice(0, -1).join("/");
      byPackage.set(key, (byPackage.get(key) ?? 0) + bytesInOutput);
    }
    for (const [key, bytes] of [...byPackage].sort((a, b) => b[1] - a[1])) console.log(`  ${kb(bytes).padStart(7)} KB  ${key}`);
  }
}
