import { join } from "node:path";
import { onFreePorts, PortInUseError } from "./ports.js";
import { startProcess, type ManagedProcess } from "./processes.js";

export interface GatewayNode {
  /** The running process; restart() replaces it. */
  process(): ManagedProcess;
  healthUrl: string;
  /** Starts gateway-node again with the same settings and health port, e.g. after a kill. */
  restart(): ManagedProcess;
  stop(): Promise<void>;
}

export interface GatewayNodeOptions {
  root: string;
  /** gateway-node's environment (its config), without HEALTH_PORT. */
  env: NodeJS.ProcessEnv;
  /** The health server's port; without one, a free port (picked again if it is taken before gateway-node binds it). */
  healthPort?: number;
}

/** gateway-node from its source, as a child process; resolves once its health server listens. */
export async function startGatewayNode(options: GatewayNodeOptions): Promise<GatewayNode> {
  if (options.healthPort !== undefined) return startOnPort(options, options.healthPort);
  return onFreePorts(["GATEWAY_HEALTH_PORT"], (ports) => startOnPort(options, ports.GATEWAY_HEALTH_PORT));
}

async function startOnPort(options: GatewayNodeOptions, healthPort: number): Promise<GatewayNode> {
  const spawnGateway = () =>
    startProcess("gateway", join(options.root, "node_modules/.bin/tsx"), ["gateway-node/src/main.ts"], { ...options.env, HEALTH_PORT: String(healthPort) }, options.root);
  let current = spawnGateway();
  const healthUrl = `http://127.0.0.1:${healthPort}`;
  try {
    await Promise.race([
      waitForListening(`${healthUrl}/healthz`, 60_000),
      current.exited.then(async (code) => {
        if (/EADDRINUSE/.test(await current.outputAtExit())) throw new PortInUseError([{ name: "GATEWAY_HEALTH_PORT", port: healthPort }]);
        throw new Error(`gateway-node exited with ${code} before its health server listened`);
      }),
    ]);
  } catch (error) {
    await current.stop();
    throw error;
  }
  return {
    process: () => current,
    healthUrl,
    restart: () => (current = spawnGateway()),
    stop: () => current.stop(),
  };
}

/** Resolves once `url` answers at all: /healthz says 503 until the gateway has its Discord session. */
async function waitForListening(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      await fetch(url, { signal: AbortSignal.timeout(1_000) });
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  throw new Error(`gateway-node's health server did not answer at ${url} within ${timeoutMs} ms`);
}
