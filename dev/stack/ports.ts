import { createServer } from "node:net";

/** Local ports, each overridable by environment variable. */
export const DEFAULT_PORTS = {
  WORKER_PORT: 8787,
  IDP_PORT: 8788,
  GATEWAY_HEALTH_PORT: 8789,
  SIM_PORT: 8790,
  DEMO_PORT: 5173,
} as const satisfies Record<string, number>;

export type StackPorts = { -readonly [K in keyof typeof DEFAULT_PORTS]: number };

export class PortError extends Error {}

/** Reads the ports from the environment; a bad or clashing value is one clear message, not a stack trace. */
export function stackPorts(env: NodeJS.ProcessEnv = process.env): StackPorts {
  const ports = { ...DEFAULT_PORTS } as StackPorts;
  const problems: string[] = [];
  for (const name of Object.keys(DEFAULT_PORTS) as Array<keyof StackPorts>) {
    const raw = env[name];
    if (raw === undefined || raw === "") continue;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < 1 || value > 65_535) problems.push(`${name}=${raw} is not a port`);
    else ports[name] = value;
  }
  const seen = new Map<number, string>();
  for (const [name, port] of Object.entries(ports)) {
    const other = seen.get(port);
    if (other) problems.push(`${name} and ${other} are both ${port}`);
    seen.set(port, name);
  }
  if (problems.length > 0) throw new PortError(problems.join("; "));
  return ports;
}

/** Fails with the names of every port already taken on 127.0.0.1. */
export async function assertPortsFree(ports: StackPorts): Promise<void> {
  const taken: string[] = [];
  for (const [name, port] of Object.entries(ports)) {
    if (!(await isFree(port))) taken.push(`${name} ${port}`);
  }
  if (taken.length > 0) {
    throw new PortError(`port already in use: ${taken.join(", ")} (stop what uses it, or set ${taken.map((t) => t.split(" ")[0]).join("/")} to another port)`);
  }
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** A port on 127.0.0.1 that was free a moment ago, for a server started next. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error("no free port on 127.0.0.1"))));
    });
  });
}
