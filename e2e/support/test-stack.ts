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

export interface TestStackOptions {
  /** Worker variables that replace the generated local ones (e.g. WEB_ORIGIN for an app on its own port). */
  vars?: Record<string, string>;
}

/**
 * The whole local stack on free ports (so it runs beside a developer's stack and other test runs), with a
 * private vars file, fresh Durable Object state and a session file.
 */
export function startTestStack(options: TestStackOptions = {}): Promise<TestStack> {
  return onFreePorts(STACK_PORT_NAMES, (ports) => startOnPorts(ports, options));
}

async function startOnPorts(ports: StackPorts, options: TestStackOptions): Promise<TestStack> {
  const dir = mkdtempSync(join(tmpdir(), "scr-e2e-"));
  try {
    const devVarsPath = join(dir, "dev.vars");
    let text = renderDevVars(ROOT, ports);
    for (const [name, value] of Object.entries(options.vars ?? {})) text = text.replace(new RegExp(`^${name}=.*$`, "m"), `${name}=${value}`);
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
