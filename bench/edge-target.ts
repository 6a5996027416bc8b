/**
 * The benchmark's workerd targets, each in its own workerd process through Miniflare's API, from the bundle
 * `wrangler deploy --dry-run` builds, with nothing between the sockets and workerd: ours (the Worker and its
 * GuildHub) and the bare object (bench/bare-object/: the runtime's floor for the same fan-out).
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { convertV4MiniflareOptions, Miniflare, type WorkerdStructuredLog } from "miniflare";
import { commandName, processTree } from "./soak-memory.js";

export interface EdgeVars {
  PRIMARY_GUILD_ID: string;
  HUB_SECRET: string;
  JWT_ISSUER: string;
  JWT_AUDIENCE: string;
  JWT_PUBLIC_JWK: string;
}

export const WORKER_NAME = "spell-coven-realtime";
const BARE_WORKER_NAME = "bench-bare-object";
const COMPATIBILITY_DATE = "2026-10-23";

export interface EdgeTarget {
  url: string;
  /** The workerd process(es) this Miniflare started: what the report counts the target's CPU and memory from. */
  pids: number[];
  /** Evicts the guild's object; its sockets stay connected (hibernated) and it wakes on the next event. */
  hibernate(guildId: string): Promise<void>;
  /** Log lines the Worker wrote at warn or error (the info lines are the per-publish ones; not kept). */
  problems: string[];
  stop(): Promise<void>;
}

/**
 * Builds a deploy bundle once per run: ours from the repository's wrangler.toml, or another config's. Unminified
 * for a profile attributed by source file (bench/profile.ts): its modules keep their paths as comments.
 */
export function buildBundle(root: string, config?: string, minify = true): { dir: string; script: string } {
  const dir = mkdtempSync(join(tmpdir(), "scr-bench-bundle-"));
  execFileSync("npx", ["wrangler", "deploy", "--dry-run", "--outdir", dir, ...(config ? ["--config", config] : []), ...(minify ? [] : ["--minify=false"])], {
    cwd: root,
    env: { ...process.env, WRANGLER_LOG: "error" },
    stdio: ["ignore", "ignore", "inherit"],
  });
  return { dir, script: join(dir, "index.js") };
}

export function removeBundle(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/**
 * Our Worker, its GuildHub and its relays (LobbyRelay). `settings` are further variables: FLUSH_CADENCE_MS,
 * RELAY_SHARDS, RELAY_MAX_SOCKETS.
 */
export function startEdge(script: string, vars: EdgeVars, inspectorPort?: number, settings: Record<string, string> = {}): Promise<EdgeTarget> {
  return startWorkerd({
    name: WORKER_NAME,
    script,
    objects: { GUILD_HUB: "GuildHub", LOBBY_RELAY: "LobbyRelay" },
    evictable: "GuildHub",
    bindings: {
      ...vars,
      ...settings,
      DISCORD_BOT_TOKEN: "bench",
      // Nothing listens there: the benchmark never creates a room through Discord.
      DISCORD_API_BASE: "http://127.0.0.1:9/api/v10",
      ROOM_IDLE_TTL_SECONDS: "0",
    },
    inspectorPort,
  });
}

/** The bare object (bench/bare-object/index.ts), bundled from its own wrangler.toml. */
export function startBareObject(script: string, vars: Pick<EdgeVars, "PRIMARY_GUILD_ID" | "HUB_SECRET">): Promise<EdgeTarget> {
  return startWorkerd({ name: BARE_WORKER_NAME, script, objects: { BARE_HUB: "BareHub" }, evictable: "BareHub", bindings: { ...vars } });
}

interface WorkerdSpec {
  name: string;
  script: string;
  /** Durable Object classes by binding name. */
  objects: Record<string, string>;
  /** The class whose object `hibernate` evicts. */
  evictable: string;
  bindings: Record<string, string>;
  inspectorPort?: number;
}

async function startWorkerd(spec: WorkerdSpec): Promise<EdgeTarget> {
  const problems: string[] = [];
  const before = new Set(workerdProcesses());
  const mf = new Miniflare(convertV4MiniflareOptions({
    host: "127.0.0.1",
    port: 0, // the benchmark reaches the Worker through its direct socket below
    ...(spec.inspectorPort ? { inspectorPort: spec.inspectorPort } : {}),
    name: spec.name,
    // A socket straight to the Worker: through Miniflare's entry worker every WebSocket costs workerd two file
    // descriptors (the limit here is 20,000 per process), and production has no such hop.
    unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }],
    // A deploy bundle is one ES module (its only import is the runtime's own cloudflare:workers).
    modules: true,
    script: readFileSync(spec.script, "utf8"),
    compatibilityDate: COMPATIBILITY_DATE,
    durableObjects: Object.fromEntries(Object.entries(spec.objects).map(([binding, className]) => [binding, { className, useSQLite: true }])),
    bindings: spec.bindings,
    handleStructuredLogs: (entry: WorkerdStructuredLog) => {
      if ((entry.level === "warn" || entry.level === "error") && problems.length < 50) problems.push(entry.message);
    },
  }));
  await mf.ready;
  const url = await mf.unsafeGetDirectURL(spec.name);
  // Each Miniflare runs its own workerd: the ones that appeared meanwhile are this target's.
  const pids = workerdProcesses().filter((pid) => !before.has(pid));
  if (pids.length === 0) throw new Error(`${spec.name}: no workerd process found under the benchmark (Linux /proc only)`);
  return {
    url: `http://127.0.0.1:${url.port}`,
    pids,
    hibernate: (guildId) => mf.unsafeEvictDurableObject(spec.name, spec.evictable, { name: guildId, webSockets: "hibernate" }),
    problems,
    stop: () => mf.dispose(),
  };
}

function workerdProcesses(): number[] {
  return processTree(process.pid).filter((pid) => commandName(pid).startsWith("workerd"));
}
