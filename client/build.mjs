// Builds the package into client/dist: ESM JavaScript (esbuild; the ../protocol sources the SDK uses are bundled,
// react stays an import of the app's copy) and declarations (tsc, dist/types). `npm run build:client`.
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));
const dist = fileURLToPath(new URL("dist/", import.meta.url));
rmSync(dist, { recursive: true, force: true });

await build({
  absWorkingDir: here,
  entryPoints: { index: "index.ts", rest: "rest.ts", react: "react.ts" },
  outdir: "dist",
  bundle: true,
  // rest.js and react.js share code with index.js through chunks instead of second copies.
  splitting: true,
  format: "esm",
  platform: "neutral",
  target: "es2022",
  external: ["react"],
  sourcemap: true,
  logLevel: "warning",
});

const tsc = fileURLToPath(new URL("../node_modules/typescript/bin/tsc", import.meta.url));
execFileSync(process.execPath, [tsc, "-p", "tsconfig.build.json"], { cwd: here, stdio: "inherit" });
console.log("client/dist built");
