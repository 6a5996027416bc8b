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
export const STACK_PORT_NAMES = Object.keys(DEFAULT_PORTS) as Array<keyof StackPorts>;

export class PortError extends Error {}

/** One or more named ports that something else holds: the message names each, as a user would set it. */
export class PortInUseError extends PortError {
  constructor(readonly taken: Array<{ name: string; port: number }>) {
    const names = taken.map((t) => t.name);
    super(`port already in use: ${taken.map((t) => `${t.name} ${t.port}`).join(", ")} (stop what uses it, or set ${names.join("/")} to another port)`);
  }
}

/** Reads the ports from the environment; a bad or clashing value is one clear message, not a stack trace. */
export function stackPorts(env: NodeJS.ProcessEnv = process.env): StackPorts {
  const ports = { ...DEFAULT_PORTS } as StackPorts;
  const problems: string[] = [];
  for (const name of STACK_PORT_NAMES) {
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
  const taken: Array<{ name: string; port: number }> = [];
  for (const [name, port] of Object.entries(ports)) {
    if (!(await isFree(port))) taken.push({ name, port });
  }
  if (taken.length > 0) throw new PortInUseError(taken);
}

/** Runs `listen`; a failure because the port is taken becomes a PortInUseError naming `name`. */
export async function listenAs<T>(name: string, port: number, listen: () => Promise<T>): Promise<T> {
  try {
    return await listen();
  } catch (error) {
    if ((error as NodeJS.ErrnoException | undefined)?.code === "EADDRINUSE") throw new PortInUseError([{ name, port }]);
    throw error;
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

export interface FreePortsOptions {
  /** Starts before giving up; each after the first uses newly picked ports. */
  attempts?: number;
  /** Where the ports come from (tests inject a picker). */
  pickPort?: () => Promise<number>;
}

/**
 * Starts something that must be told its ports (a child process, a stack whose parts know each other's
 * addresses) on ports that were free a moment ago. A port picked free can be taken before the start binds it
 * (another stack, another test run): a start that fails with a PortInUseError is retried on new ports.
 */
export async function onFreePorts<Name extends string, T>(
  names: readonly Name[],
  start: (ports: Record<Name, number>) => Promise<T>,
  options: FreePortsOptions = {},
): Promise<T> {
  const attempts = options.attempts ?? 5;
  const pickPort = options.pickPort ?? freePort;
  for (let attempt = 1; ; attempt++) {
    const ports = await freePorts(names, pickPort);
    try {
      return await start(ports);
    } catch (error) {
      if (!(error instanceof PortInUseError) || attempt >= attempts) throw error;
    }
  }
}

/** A distinct free port for each name. */
export async function freePorts<Name extends string>(names: readonly Name[], pickPort: () => Promise<number> = freePort): Promise<Record<Name, number>> {
  const picked = new Set<number>();
  const ports = {} as Record<Name, number>;
  for (const name of names) {
    let port = await pickPort();
    for (let tries = 0; picked.has(port); tries++) {
      if (tries >= 20) throw new Error(`no distinct free port for ${name}`);
      port = await pickPort();
    }
    picked.add(port);
    ports[name] = port;
  }
  return ports;
}
