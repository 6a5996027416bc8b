import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseDotEnv, renderDevVars } from "../../dev/stack/dev-vars.js";
import { startLocalStack, type LocalStack } from "../../dev/stack/local-stack.js";
import { assertPortsFree, type StackPorts } from "../../dev/stack/ports.js";
import { ROOT } from "./paths.js";


/** Ports apart from `npm run dev`'s, so the tests run beside a developer's stack. */
export const TEST_PORTS: StackPorts = { WORKER_PORT: 18787, IDP_PORT: 18788, GATEWAY_HEALTH_PORT: 18789, SIM_PORT: 18790, DEMO_PORT: 18173 };

export interface TestStack extends LocalStack {
  vars: Map<string, string>;
  dir: string;
}

/** The whole local stack with a private vars file, fresh Durable Object state and a session file. */
export async function startTestStack(): Promise<TestStack> {
  await assertPortsFree(TEST_PORTS);
  const dir = mkdtempSync(join(tmpdir(), "scr-e2e-"));
  const devVarsPath = join(dir, "dev.vars");
  const text = renderDevVars(ROOT, TEST_PORTS);
  writeFileSync(devVarsPath, text);
  const vars = parseDotEnv(text);
  const stack = await startLocalStack({
    root: ROOT,
    ports: TEST_PORTS,
    devVarsPath,
    vars,
    persistTo: join(dir, "state"),
    sessionFile: join(dir, "gateway-session.json"),
    heartbeatIntervalMs: 1_000,
  });
  return {
    ...stack,
    vars,
    dir,
    stop: async () => {
      await stack.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

