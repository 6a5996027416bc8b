import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseDotEnv, renderDevVars } from "../../dev/stack/dev-vars.js";
import { startLocalStack, type LocalStack } from "../../dev/stack/local-stack.js";
import { onFreePorts, STACK_PORT_NAMES, type StackPorts } from "../../dev/stack/ports.js";
import { ROOT } from "./paths.js";

export interface TestStack extends LocalStack {
  vars: Map<string, string>;
  dir: string;
}

/**
 * The whole local stack on free ports (so it runs beside a developer's stack and other test runs), with a
 * private vars file, fresh Durable Object state and a session file.
 */
export function startTestStack(): Promise<TestStack> {
  return onFreePorts(STACK_PORT_NAMES, startOnPorts);
}

async function startOnPorts(ports: StackPorts): Promise<TestStack> {
  const dir = mkdtempSync(join(tmpdir(), "scr-e2e-"));
  try {
    const devVarsPath = join(dir, "dev.vars");
    const text = renderDevVars(ROOT, ports);
    writeFileSync(devVarsPath, text);
    const vars = parseDotEnv(text);
    const stack = await startLocalStack({
      root: ROOT,
      ports,
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
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}
