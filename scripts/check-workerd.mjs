// Fails when the Vitest plugin would run a different workerd than `wrangler dev` and `wrangler deploy`:
// the tests must exercise the runtime users run.
import { createRequire } from "node:module";

/** The miniflare and workerd that `pkg` loads, resolved from inside it as Node does at run time. */
function runtimeOf(pkg) {
  const fromPkg = createRequire(import.meta.resolve(pkg));
  const fromMiniflare = createRequire(fromPkg.resolve("miniflare"));
  return {
    miniflare: fromPkg("miniflare/package.json").version,
    workerd: fromMiniflare("workerd/package.json").version,
  };
}

const wrangler = runtimeOf("wrangler");
const plugin = runtimeOf("@cloudflare/vitest-plugin");
const describe = (name, v) => `${name}: miniflare ${v.miniflare}, workerd ${v.workerd}`;
if (wrangler.workerd !== plugin.workerd || wrangler.miniflare !== plugin.miniflare) {
  console.error(`The tests and wrangler run different runtimes\n  ${describe("wrangler", wrangler)}\n  ${describe("vitest plugin", plugin)}`);
  process.exit(1);
}
console.log(describe("one runtime for tests, dev and deploy", wrangler));
