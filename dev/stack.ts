/**
 * `npm run dev`: the whole system on 127.0.0.1 with no Discord account and no secrets — the Discord simulator,
 * the local identity provider, the Worker with its Durable Object (wrangler dev), gateway-node and the demo page.
 */
import { fileURLToPath } from "node:url";
import { describeDevVarsUpdate, ensureDevVars } from "./stack/dev-vars.js";
import { startLocalStack, type LocalStack } from "./stack/local-stack.js";
import { assertPortsFree, PortError, stackPorts } from "./stack/ports.js";
import { say } from "./stack/processes.js";
import { redirectUrisFromEnv } from "./idp/redirects.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

async function main(): Promise<void> {
  const ports = stackPorts();
  await assertPortsFree(ports);
  const { created, updated, vars } = ensureDevVars(ROOT, ports);
  say("stack", created ? "wrote .dev.vars from .dev.vars.example (local defaults)" : "using the existing .dev.vars");
  if (updated.length > 0) say("stack", describeDevVarsUpdate(updated));

  const running: { stack?: LocalStack } = {};
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    say("stack", "stopping…");
    await running.stack?.stop();
    process.exit(0);
  };
  process.on("SIGINT", () => void shutdown());
  process.on("SIGTERM", () => void shutdown());

  const stack = await startLocalStack({
    root: ROOT,
    ports,
    devVarsPath: `${ROOT}.dev.vars`,
    vars,
    sessionFile: `${ROOT}.dev-state/gateway-session.json`,
    idpRedirectUris: redirectUrisFromEnv(),
  });
  running.stack = stack;
  say("stack", `Worker ${stack.urls.worker}  ·  simulator ${stack.urls.sim}/_sim/state  ·  gateway ${stack.urls.gatewayHealth}/healthz`);
  say("stack", `ready: open ${stack.urls.demo}  (Ctrl-C stops everything)`);
}

main().catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  say("stack", error instanceof PortError ? message : `failed to start: ${message}`);
  process.exit(1);
});
