/**
 * Fan-out benchmark: N browser-like sockets on one guild hub (wrangler dev on 127.0.0.1), M signed events
 * POSTed by a gateway-like sender; measures the time from POST to receipt on every socket.
 *
 *   npm run bench -- --sockets 200 --events 200 --batch 1
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import WebSocket from "ws";
import { hubRequestHeaders, type ServerMessage } from "../protocol/index.js";
import { startWranglerDev } from "../dev/stack/wrangler-dev.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const GUILD = "100000000000000001";
const SECRET = "bench-hub-secret-0123456789abcdef";

const { values } = parseArgs({
  options: {
    sockets: { type: "string", default: "200" },
    events: { type: "string", default: "200" },
    batch: { type: "string", default: "1" },
    port: { type: "string", default: "8797" },
  },
});
const sockets = Math.min(Number(values.sockets), 2_000);
const events = Math.min(Number(values.events), 5_000);
const batch = Math.max(1, Math.min(Number(values.batch), 100));
const port = Number(values.port);
const base = `http://127.0.0.1:${port}`;

async function main(): Promise<void> {
  const { publicKey, privateKey } = await generateKeyPair("RS256", { extractable: true });
  const state = mkdtempSync(join(tmpdir(), "scr-bench-"));
  const worker = await startWranglerDev({
    root: ROOT,
    port,
    persistTo: state,
    logLevel: "warn",
    vars: {
      PRIMARY_GUILD_ID: GUILD, DISCORD_BOT_TOKEN: "bench", HUB_SECRET: SECRET, JWT_ISSUER: "bench", JWT_AUDIENCE: "bench",
      JWT_PUBLIC_JWK: JSON.stringify({ ...(await exportJWK(publicKey)), alg: "RS256" }),
      DISCORD_API_BASE: "http://127.0.0.1:9/api/v10",
    },
  });
  try {
    const token = await new SignJWT({}).setProtectedHeader({ alg: "RS256" }).setSubject("200000000000000001")
      .setIssuer("bench").setAudience("bench").setExpirationTime("1h").sign(privateKey);
    await run(token);
  } finally {
    await worker.stop();
    rmSync(state, { recursive: true, force: true });
  }
}

async function run(token: string): Promise<void> {
  const connectStart = performance.now();
  const clients = await Promise.all(Array.from({ length: sockets }, () => connect(token)));
  const connectMs = performance.now() - connectStart;

  const room = "300000000000000001";
  await post([{ id: "bench:room", event: "room.created", payload: { guildId: GUILD, channelId: room, name: "Bench", userLimit: 0 } }]);
  await Promise.all(clients.map((c) => c.until(1)));

  const sentAt = new Map<number, number>();
  const latencies: number[] = [];
  for (const client of clients) {
    client.onEvent = (seq) => {
      const sent = sentAt.get(seq);
      if (sent !== undefined) latencies.push(performance.now() - sent);
    };
  }
  const firstSeq = clients[0]!.lastSeq + 1;
  const start = performance.now();
  for (let i = 0; i < events; i += batch) {
    const chunk = [];
    for (let j = i; j < Math.min(events, i + batch); j++) {
      const userId = String(400000000000000000n + BigInt(j));
      chunk.push({ id: `bench:${j}`, event: "voice.joined", payload: { guildId: GUILD, channelId: room, userId } });
    }
    const postedAt = performance.now();
    chunk.forEach((_, k) => sentAt.set(firstSeq + i + k, postedAt));
    await post(chunk);
  }
  await Promise.all(clients.map((c) => c.until(firstSeq + events - 1)));
  const totalMs = performance.now() - start;
  for (const client of clients) client.ws.close(1000);

  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]!.toFixed(1);
  const report = {
    sockets, events, batch,
    connectAndAuthMs: Math.round(connectMs),
    deliveries: latencies.length,
    deliveriesPerSecond: Math.round(latencies.length / (totalMs / 1000)),
    latencyMs: { p50: pct(50), p95: pct(95), p99: pct(99), max: latencies.at(-1)!.toFixed(1) },
  };
  console.log(JSON.stringify(report, null, 2));
  if (latencies.length !== sockets * events) throw new Error(`expected ${sockets * events} deliveries, got ${latencies.length}`);
}

async function post(events: unknown[]): Promise<void> {
  const body = JSON.stringify({ events });
  const response = await fetch(`${base}/internal/events`, { method: "POST", headers: await hubRequestHeaders(SECRET, body), body });
  if (!response.ok) throw new Error(`POST /internal/events answered ${response.status}: ${await response.text()}`);
}

interface BenchClient {
  ws: WebSocket;
  lastSeq: number;
  onEvent?: (seq: number) => void;
  until(seq: number): Promise<void>;
}

function connect(token: string): Promise<BenchClient> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    const waiters: Array<{ seq: number; resolve: () => void }> = [];
    const client: BenchClient = {
      ws,
      lastSeq: 0,
      until: (seq) => (client.lastSeq >= seq ? Promise.resolve() : new Promise((r) => waiters.push({ seq, resolve: r }))),
    };
    const timer = setTimeout(() => reject(new Error("socket did not authenticate within 10 s")), 10_000);
    ws.on("open", () => ws.send(JSON.stringify({ type: "auth", token })));
    ws.on("error", reject);
    ws.on("message", (data) => {
      const message = JSON.parse(String(data)) as ServerMessage;
      if (message.type === "snapshot") {
        client.lastSeq = message.seq;
        clearTimeout(timer);
        resolve(client);
      } else if (message.type === "event") {
        client.lastSeq = message.seq;
        client.onEvent?.(message.seq);
        for (const waiter of waiters.filter((w) => w.seq <= message.seq)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve();
        }
      }
    });
  });
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
