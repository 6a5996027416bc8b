import { build } from "esbuild";
import { gzipSync } from "node:zlib";
const entry = process.argv[2];
const r = await build({ stdin: { contents: entry, resolveDir: "/work/wt-sdk/client", loader: "ts" }, bundle: true, format: "esm", platform: "browser", minify: true, write: false, logLevel: "warning" });
const c = r.outputFiles[0].contents; console.log(c.length, gzipSync(c).length);
