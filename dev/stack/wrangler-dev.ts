import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { onFreePorts, PortInUseError } from "./ports.js";
import { startProcess, waitForHttp, type ManagedProcess } from "./processes.js";

export interface WranglerDev {
  url: string;
  process: ManagedProcess;
  stop(): Promise<void>;
}

export interface WranglerDevOptions {
  root: string;
  /** The port to serve on; without one, a free port (picked again if it is taken before wrangler binds it). */
  port?: number;
  envFile?: string;
  vars?: Record<string, string>;
  persistTo?: string;
  logLevel?: "info" | "warn";
}

/**
 * `wrangler dev` for the Worker and its Durable Object on 127.0.0.1, reading `envFile` (or the given vars,
 * written to a private file), optionally with a fresh state directory. Resolves once /health answers.
 */
export async function startWranglerDev(options: WranglerDevOptions): Promise<WranglerDev> {
  if (options.port !== undefined) return startOnPort(options, options.port);
  return onFreePorts(["WORKER_PORT"], (ports) => startOnPort(options, ports.WORKER_PORT));
}

async function startOnPort(options: WranglerDevOptions, port: number): Promise<WranglerDev> {
  let scratch: string | undefined;
  let envFile = options.envFile;
  if (!envFile) {
    scratch = mkdtempSync(join(tmpdir(), "scr-wrangler-"));
    envFile = join(scratch, "vars.env");
    writeFileSync(envFile, Object.entries(options.vars ?? {}).map(([k, v]) => `${k}=${v}`).join("\n"), { mode: 0o600 });
  }
  const args = ["wrangler", "dev", "--ip", "127.0.0.1", "--port", String(port), "--inspector-port", "0", "--show-interactive-dev-session=false", "--env-file", envFile];
  if (options.persistTo) args.push("--persist-to", options.persistTo);
  if (options.logLevel) args.push("--log-level", options.logLevel);
  const env = { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false", NO_COLOR: "1", FORCE_COLOR: "0" };
  const child = startProcess("worker", join(options.root, "node_modules/.bin/wrangler"), args.slice(1), env, options.root);
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    await child.stop();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  };
  try {
    await Promise.race([
      waitForHttp(`${url}/health`, 90_000, "wrangler dev"),
      child.exited.then(async (code) => {
        // wrangler checks its port before it starts workerd, and says so.
        if (/Address already in use/i.test(await child.outputAtExit())) throw new PortInUseError([{ name: "WORKER_PORT", port }]);
        throw new Error(`wrangler dev exited with ${code} before it was ready`);
      }),
    ]);
  } catch (error) {
    await stop();
    throw error;
  }
  return { url, process: child, stop };
}

/**
 * The Worker's variables for a private instance with no Discord and no identity provider: tokens are verified
 * against one inline public key, and Discord REST points nowhere (for load and timing runs that never call it).
 */
export function isolatedWorkerVars(options: { guildId: string; hubSecret: string; issuer: string; audience: string; publicJwk: object }): Record<string, string> {
  return {
    PRIMARY_GUILD_ID: options.guildId,
    DISCORD_BOT_TOKEN: "isolated-worker-bot-token",
    HUB_SECRET: options.hubSecret,
    JWT_ISSUER: options.issuer,
    JWT_AUDIENCE: options.audience,
    JWT_PUBLIC_JWK: JSON.stringify(options.publicJwk),
    JWT_PUBLIC_JWK_URL: "",
    WEB_ORIGIN: "http://127.0.0.1:5173",
    DISCORD_API_BASE: "http://127.0.0.1:9/unused",
    ALLOWED_GUILD_IDS: "",
    ROOM_IDLE_TTL_SECONDS: "0",
    ADMIN_ROLE: "admin",
  };
}
