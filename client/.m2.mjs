import { build } from "esbuild";
const r = await build({ entryPoints: ["/work/wt-sdk/client/index.ts"], bundle: true, format: "esm", platform: "browser", minify: true, write: false, logLevel: "warning", external: ["zod/mini"] });
console.log(r.outputFiles[0].text);
