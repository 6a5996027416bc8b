/**
 * What a server-sent events client costs next to a WebSocket client, under wrangler dev on 127.0.0.1: the same N
 * clients (distinct users) on one guild, first over /ws, then over /events, each through three phases:
 *   connect: N clients authenticate and receive their snapshot;
 *   events:  E signed events, one POST each, reach every client;
 *   idle:    nothing happens for a little longer than one SSE heartbeat.
 * Measured: CPU time (utime + stime from /proc) and resident memory of the workerd processes (wrangler dev runs
 * two: the Worker's and its own proxy's; every connection crosses both), and the wall time of each phase.
 * Linux only. Local workerd is not Cloudflare's edge: compare the two transports, not absolute numbers.
 *
 *   npx tsx bench/sse-cost.ts --clients 200 --events 100
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import WebSocket from "ws";
import { isolatedWorkerVars, startWranglerDev, type WranglerDev } from "../dev/stack/wrangler-dev.js";
import { hubRequestHeaders, SSE_HEARTBEAT_MS } from "../protocol/index.js";
import { SseReader } from "../test-support/sse-reader.js";
import { until } from "../test-support/until.js";
import { numberOption } from "./options.js";
import { sampleWranglerTree } from "./soak-memory.js";
import { AUDIENCE, GUILD, ROOT } from "./bench-ids.js";

const SECRET = "bench-sse-hub-secret-0123456789abcdef";
const ISSUER = "bench-sse";
const ROOM = "720000000000000001";

const { values } = parseArgs({
  options: {
    clients: { type: "string" },
    events: { type: "string" },
    idle: { type: "string" },
  },
});
const clients = numberOption("clients", values.clients, 200, { min: 1, max: 1_000, integer: true });
const events = numberOption("events", values.events, 100, { min: 1, max: 1_000, integer: true });
const idleMs = numberOption("idle", values.idle, SSE_HEARTBEAT_MS + 5_000, { min: 0, max: 120_000 });
if (![clients, events, idleMs].every((n) => Number.isInteger(n) && n > 0)) throw new Error("--clients, --events and --idle must be positive integers");

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** CPU ms used so far by the workerd processes under wrangler, and their resident memory. */
function sample(worker: WranglerDev): { cpuMs: number; rssMb: number } {
  const { workerd } = sampleWranglerTree(worker.process.child.pid!);
  let ticks = 0;
  for (const pid of workerd.pids) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
      ticks += Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat)
    } catch {
      // the process ended
    }
  }
  return { cpuMs: (ticks * 1000) / TICKS_PER_SECOND, rssMb: workerd.rssBytes / 2 ** 20 };
}

interface Client {
  received(): number;
  close(): void;
}

async function openSocket(url: string, token: string): Promise<Client> {
  const ws = new WebSocket(`${url.replace("http", "ws")}/ws`);
  let events = 0;
  let snapshot = false;
  ws.on("message", (data) => {
    const text = String(data);
    if (text.includes('"type":"event"')) events++;
    else if (text.includes('"type":"snapshot"')) snapshot = true;
  });
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  ws.send(JSON.stringify({ type: "auth", token }));
  await until(() => snapshot, "a socket's snapshot", 30_000);
  return { received: () => events, close: () => ws.close() };
}

async function openStream(url: string, token: string): Promise<Client> {
  const stream = await SseReader.open(fetch, `${url}/events`, token);
  await stream.waitForFrames(1, "a stream's snapshot", 30_000);
  return { received: () => stream.frames.length - 1, close: () => void stream.cancel() };
}

/** One transport on a fresh wrangler dev, so its memory is not the other's leftovers. */
async function measure(transport: "websocket" | "sse"): Promise<string> {
  const open = transport === "websocket" ? openSocket : openStream;
  const state = mkdtempSync(join(tmpdir(), "scr-bench-sse-"));
  const { publicKey, privateKey } = await generateKeyPair("RS256", { extractable: true });
  const worker = await startWranglerDev({
    root: ROOT,
    persistTo: join(state, "do"),
    logLevel: "warn",
    vars: isolatedWorkerVars({ guildId: GUILD, hubSecret: SECRET, issuer: ISSUER, audience: AUDIENCE, publicJwk: { ...(await exportJWK(publicKey)), kid: "bench", alg: "RS256" } }),
  });
  let sequence = 0;
  let userCounter = 730000000000000000n;
  const token = () => new SignJWT({}).setProtectedHeader({ alg: "RS256", kid: "bench" }).setSubject(String(userCounter++))
    .setIssuer(ISSUER).setAudience(AUDIENCE).setIssuedAt().setExpirationTime("1h").sign(privateKey);
  const post = async (event: string, payload: Record<string, unknown>) => {
    const body = JSON.stringify({ events: [{ id: `bench-sse:${++sequence}`, event, payload: { guildId: GUILD, ...payload } }] });
    const response = await fetch(`${worker.url}/internal/events`, { method: "POST", headers: await hubRequestHeaders(SECRET, body), body });
    if (response.status !== 200) throw new Error(`internal events answered ${response.status}`);
  };
  try {
    await post("room.created", { channelId: ROOM, name: "Bench", userLimit: 0 });
    const tokens = await Promise.all(Array.from({ length: clients }, token));
    const before = sample(worker);
    let started = performance.now();
    const opened: Client[] = [];
    for (let i = 0; i < clients; i += 20) opened.push(...(await Promise.all(tokens.slice(i, i + 20).map((t) => open(worker.url, t)))));
    const connected = sample(worker);
    const connectWall = performance.now() - started;

    started = performance.now();
    for (let i = 0; i < events; i++) await post(i % 2 === 0 ? "voice.joined" : "voice.left", { channelId: ROOM, userId: "740000000000000001" });
    await until(() => opened.every((c) => c.received() >= events), `${events} events on every ${transport} client`, 120_000);
    const delivered = sample(worker);
    const eventsWall = performance.now() - started;

    await new Promise((resolve) => setTimeout(resolve, idleMs));
    const idle = sample(worker);
    for (const client of opened) client.close();

    const perClient = (ms: number) => ((ms / clients) * 1000).toFixed(0);
    return (
      `${transport.padEnd(9)} | connect ${perClient(connected.cpuMs - before.cpuMs).padStart(6)} µs CPU/client (${connectWall.toFixed(0)} ms wall) ` +
      `| events ${(((delivered.cpuMs - connected.cpuMs) / (clients * events)) * 1000).toFixed(1).padStart(6)} µs CPU/delivery (${eventsWall.toFixed(0)} ms wall) ` +
      `| idle ${perClient(idle.cpuMs - delivered.cpuMs).padStart(5)} µs CPU/client over ${idleMs} ms ` +
      `| RSS +${(((connected.rssMb - before.rssMb) / clients) * 1024).toFixed(0)} KB/client (${before.rssMb.toFixed(0)} → ${connected.rssMb.toFixed(0)} MB)`
    );
  } finally {
    await worker.stop();
    rmSync(state, { recursive: true, force: true });
  }
}

const rows = [await measure("websocket"), await measure("sse")];
console.log(`sse-cost: ${clients} clients, ${events} events, workerd (wrangler dev, both processes)`);
for (const row of rows) console.log(row);
