// Bundles each browser SDK entry, and all of them together (what an app importing every entry ships), minified for
// the browser with the protocol code they use (react stays the app's), and prints their sizes minified and
// gzipped: `npm run size:client`. Fails (exit 1) over budget: the main entry and the whole SDK must each stay
// within 10 KB gzipped. Pass --metafile to list what dominates each.
import { build } from "esbuild";
import { gzipSync } from "node:zlib";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));
const KB = 1024;
/** [label, entry source, gzipped budget in bytes or undefined]. */
const bundles = [
  ["client bundle", { path: "index.ts" }, 10 * KB],
  ["client/rest entry", { path: "rest.ts" }],
  ["client/react entry", { path: "react.ts" }],
  ["whole SDK (all entries)", { contents: ['export * from "./index.ts";', 'export * from "./rest.ts";', 'export * from "./react.ts";'].join("\n") }, 10 * KB],
];
const kb = (bytes) => (bytes / KB).toFixed(1);
const overBudget = [];
for (const [label, source, budget] of bundles) {
  const result = await build({
    ...(source.path ? { entryPoints: [fileURLToPath(new URL(source.path, import.meta.url))] } : { stdin: { contents: source.contents, resolveDir: here, sourcefile: "whole-sdk.ts", loader: "ts" } }),
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
  const gzipped = gzipSync(code).length;
  const limit = budget === undefined ? "" : ` (budget ${kb(budget)} KB)`;
  console.log(`${label}: ${kb(code.length)} KB minified, ${kb(gzipped)} KB gzipped${limit}`);
  if (budget !== undefined && gzipped > budget) overBudget.push(`${label}: ${gzipped} bytes gzipped, budget ${budget}`);
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
if (overBudget.length > 0) {
  console.error(`over the size budget:\n  ${overBudget.join("\n  ")}`);
  process.exit(1);
}
