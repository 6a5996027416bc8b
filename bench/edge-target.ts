/**
 * Our hub for the benchmark: the Worker and its GuildHub in workerd through Miniflare's API, from the very
 * bundle `wrangler deploy` uploads (built with --dry-run), with nothing between the sockets and workerd.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { convertV4MiniflareOptions, Miniflare, type WorkerdStructuredLog } from "miniflare";

export interface EdgeVars {
  PRIMARY_GUILD_ID: string;
  HUB_SECRET: string;
  JWT_ISSUER: string;
  JWT_AUDIENCE: string;
  JWT_PUBLIC_JWK: string;
}

export const WORKER_NAME = "spell-coven-realtime";

export interface EdgeTarget {
  url: string;
  /** Evicts the guild's hub; its sockets stay connected (hibernated) and it wakes on the next event. */
  hibernate(guildId: string): Promise<void>;
  /** Log lines the Worker wrote at warn or error (the info lines are the per-publish ones; not kept). */
  problems: string[];
  stop(): Promise<void>;
}

/** Builds the deploy bundle once per run. */
export function buildBundle(root: string): { dir: string; script: string } {
  const dir = mkdtempSync(join(tmpdir(), "scr-bench-bundle-"));
  execFileSync("npx", ["wrangler", "deploy", "--dry-run", "--outdir", dir], { cwd: root, env: { ...process.env, WRANGLER_LOG: "error" }, stdio: ["ignore", "ignore", "inherit"] });
  return { dir, script: join(dir, "index.js") };
}

export async function startEdge(script: string, vars: EdgeVars, inspectorPort?: number): Promise<EdgeTarget> {
  const problems: string[] = [];
  const mf = new Miniflare(convertV4MiniflareOptions({
    host: "127.0.0.1",
    port: 0, // the benchmark reaches the Worker through its direct socket below
    ...(inspectorPort ? { inspectorPort } : {}),
    name: WORKER_NAME,
    // A socket straight to the Worker: through Miniflare's entry worker every WebSocket costs workerd two file
    // descriptors (the limit here is 20,000 per process), and production has no such hop.
    unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }],
    // The deploy bundle is one ES module (its only import is the runtime's own cloudflare:workers).
    modules: true,
    script: readFileSync(script, "utf8"),
    compatibilityDate: "2026-10-23",
    durableObjects: { GUILD_HUB: { className: "GuildHub", useSQLite: true } },
    bindings: {
      ...vars,
      DISCORD_BOT_TOKEN: "bench",
      // Nothing listens there: the benchmark never creates a room through Discord.
      DISCORD_API_BASE: "http://127.0.0.1:9/api/v10",
      ROOM_IDLE_TTL_SECONDS: "0",
    },
    handleStructuredLogs: (entry: WorkerdStructuredLog) => {
      if ((entry.level === "warn" || entry.level === "error") && problems.length < 50) problems.push(entry.message);
    },
  }));
  await mf.ready;
  const url = await mf.unsafeGetDirectURL(WORKER_NAME);
  return {
    url: `http://127.0.0.1:${url.port}`,
    hibernate: (guildId) => mf.unsafeEvictDurableObject(WORKER_NAME, "GuildHub", { name: guildId, webSockets: "hibernate" }),
    problems,
    stop: () => mf.dispose(),
  };
}

export function removeBundle(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
