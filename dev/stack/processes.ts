import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";

const COLORS = { worker: 33, gateway: 35, sim: 36, idp: 32, demo: 34, stack: 37 } as const;
export type StackPart = keyof typeof COLORS;

/** Prints one line with a coloured, aligned `[part]` prefix so interleaved logs stay readable. */
export function say(part: StackPart, line: string): void {
  const prefix = process.stdout.isTTY ? `\x1b[${COLORS[part]}m[${part.padEnd(7)}]\x1b[0m` : `[${part.padEnd(7)}]`;
  process.stdout.write(`${prefix} ${line}\n`);
}

const RECENT_LINES = 100;

export interface ManagedProcess {
  child: ChildProcess;
  exited: Promise<number | null>;
  /** Its last output lines once it has exited, to tell why it did. */
  outputAtExit(): Promise<string>;
  /** SIGTERM, then SIGKILL after a grace period. */
  stop(): Promise<void>;
  /** SIGKILL at once: a crash, with no chance to flush. */
  kill(): Promise<void>;
}

/** Starts a child whose output is prefixed; stop() sends SIGTERM, then SIGKILL after a grace period. */
export function startProcess(part: StackPart, command: string, args: string[], env: NodeJS.ProcessEnv, cwd?: string): ManagedProcess {
  const child = spawn(command, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  const recent: string[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    createInterface({ input: stream }).on("line", (line) => {
      say(part, line);
      recent.push(line);
      if (recent.length > RECENT_LINES) recent.shift();
    });
  }
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  // "exit" can come before the last lines are read; "close" waits for the streams (bounded: a grandchild may hold them).
  const closed = new Promise<void>((resolve) => child.once("close", () => resolve()));
  return {
    child,
    exited,
    async outputAtExit() {
      await exited;
      await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 2_000))]);
      return recent.join("\n");
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      signalGroup(child, "SIGKILL");
      await exited;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      signalGroup(child, "SIGTERM");
      const timer = setTimeout(() => signalGroup(child, "SIGKILL"), 8_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

// The child leads its own process group, so npx's grandchildren (workerd, tsx) stop with it.
function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, signal);
  } catch {
    child.kill(signal);
  }
}

export async function waitForHttp(url: string, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1_000) });
      if (response.ok) return;
    } catch {
      // not up yet
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`${what} did not answer at ${url} within ${timeoutMs} ms`);
}
