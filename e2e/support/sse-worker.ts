import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { freePort } from "../../dev/stack/ports.js";
import { isolatedWorkerVars, startWranglerDev } from "../../dev/stack/wrangler-dev.js";
import { HubFeed } from "./hub-feed.js";
import { ROOT } from "./paths.js";

export const SSE_GUILD = "100000000000000001";
const ISSUER = "sse-clients-e2e";
const AUDIENCE = "spell-coven-realtime";
const SECRET = "sse-clients-e2e-hub-secret-0123456789";

/** A private `wrangler dev` for event stream tests: its own state, one signing key, a feed to make the hub publish. */
export interface SseWorker {
  url: string;
  /** The port wrangler dev listens on (127.0.0.1). */
  port: number;
  /**
   * The port of the workerd that runs the Worker, behind wrangler dev's own dev-only proxy. That proxy (a Worker
   * of wrangler's) learns that a client left only when a write to it fails, and does not pass the disconnect on;
   * Cloudflare's edge does, so tests of what happens when a client leaves connect here.
   */
  innerPort: number;
  feed: HubFeed;
  /** A token for `sub` (a fresh user by default) that expires in `expiresInSeconds` (600). */
  token(options?: { sub?: string; expiresInSeconds?: number }): Promise<string>;
  stop(): Promise<void>;
}

let userCounter = 720000000000000000n;
export const newUserId = (): string => String(userCounter++);

export async function startSseWorker(options: { webOrigins?: string[] } = {}): Promise<SseWorker> {
  const state = mkdtempSync(join(tmpdir(), "scr-sse-worker-"));
  const { publicKey, privateKey } = await generateKeyPair("RS256", { extractable: true });
  const port = await freePort();
  const vars = isolatedWorkerVars({
    guildId: SSE_GUILD,
    hubSecret: SECRET,
    issuer: ISSUER,
    audience: AUDIENCE,
    publicJwk: { ...(await exportJWK(publicKey)), kid: "sse", alg: "RS256" },
  });
  if (options.webOrigins) vars.WEB_ORIGIN = options.webOrigins.join(",");
  let worker;
  try {
    worker = await startWranglerDev({ root: ROOT, port, persistTo: join(state, "do"), logLevel: "warn", vars });
  } catch (error) {
    rmSync(state, { recursive: true, force: true });
    throw error;
  }
  let innerPort;
  try {
    innerPort = await workerPortBehindProxy(worker.process.child.pid!, port);
  } catch (error) {
    await worker.stop();
    rmSync(state, { recursive: true, force: true });
    throw error;
  }
  return {
    url: worker.url,
    port,
    innerPort,
    feed: new HubFeed(worker.url, SECRET, SSE_GUILD, `sse-worker-${port}`),
    token: ({ sub = newUserId(), expiresInSeconds = 600 } = {}) =>
      new SignJWT({ name: "Stream" })
        .setProtectedHeader({ alg: "RS256", kid: "sse" })
        .setSubject(sub)
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setIssuedAt()
        .setExpirationTime(Math.floor(Date.now() / 1000) + expiresInSeconds)
        .sign(privateKey),
    async stop() {
      await worker.stop();
      rmSync(state, { recursive: true, force: true });
    },
  };
}

/** Every process below `root`, from /proc (Linux). */
function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // "pid (comm) state ppid ...": comm may hold spaces, so read after its closing parenthesis.
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // the process ended meanwhile
    }
  }
  const found: number[] = [];
  const walk = (pid: number) => (children.get(pid) ?? []).forEach((child) => (found.push(child), walk(child)));
  walk(root);
  return found;
}

/** Ports on 127.0.0.1 that the processes below `root` listen on. */
function listeningPorts(root: number): number[] {
  const inodes = new Set<string>();
  for (const pid of descendants(root)) {
    try {
      for (const fd of readdirSync(`/proc/${pid}/fd`)) {
        const target = readlinkSync(`/proc/${pid}/fd/${fd}`, { encoding: "utf8" });
        const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
        if (inode) inodes.add(inode);
      }
    } catch {
      // the process ended meanwhile
    }
  }
  const ports: number[] = [];
  for (const line of readFileSync("/proc/net/tcp", "utf8").split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    const [address, port] = (fields[1] ?? "").split(":");
    if (address === "0100007F" && fields[3] === "0A" && inodes.has(fields[9] ?? "")) ports.push(parseInt(port!, 16));
  }
  return ports;
}

/** The port, other than wrangler dev's own, where this Worker itself answers /health. */
async function workerPortBehindProxy(wranglerPid: number, publicPort: number): Promise<number> {
  for (const port of listeningPorts(wranglerPid)) {
    if (port === publicPort) continue;
    try {
      const response = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(2_000) });
      const body = (await response.json()) as { service?: unknown };
      if (body.service === "spell-coven-realtime") return port;
    } catch {
      // another of workerd's sockets
    }
  }
  throw new Error("found no port behind wrangler dev's proxy where the Worker answers /health");
}
