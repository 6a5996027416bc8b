// Bundles each browser SDK entry (with the protocol sources it uses; react stays the app's) minified for the
// browser and prints its size, minified and gzipped: `npm run size:client`. The main entry must stay under 10 KB
// gzipped. Pass --metafile to list what dominates each.
import { build } from "esbuild";
import { gzipSync } from "node:zlib";
import { fileURLToPath } from "node:url";

const entries = [
  ["client bundle", "index.ts"],
  ["client/rest entry", "rest.ts"],
  ["client/react entry", "react.ts"],
  ["client/sse entry", "sse-entry.ts"],
];
const kb = (bytes) => (bytes / 1024).toFixed(1);
for (const [label, file] of entries) {
  const result = await build({
    entryPoints: [fileURLToPath(new URL(file, import.meta.url))],
    bundle: true,
    format: "esm",
    platform: "browser",
    minify: true,
    write: false,
    metafile: true,
    external: ["react"],
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
