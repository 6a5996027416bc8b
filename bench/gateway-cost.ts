/**
 * What gateway-node costs per Discord dispatch, before and after, in one run: each gateway bundle (the production
 * build, `node gateway-node/build.mjs`) runs against the Discord simulator and a hub that answers 200 at once, with
 * SESSION_FILE on, under the same load.
 *
 *   npm run bench:gateway -- --bundle /tmp/gw-old/main.mjs   # before (a bundle of another commit) and after (this checkout)
 *   npm run bench:gateway -- --seconds 30 --members 5000
 *
 * Load: `--members` in voice across 25 rooms of three guilds (the third not served by the deployment), `--moves`
 * moves/s and `--toggles` mute toggles/s, spread over the three guilds, for `--seconds`. Measured over the load
 * window, per dispatch the simulator sent: bytes written to the session file (its atomic replacements, counted by
 * inotify, times its size), CPU (the process's utime + stime); and the process's peak RSS and its event-loop lag
 * p99 (its own /metrics). Results: bench/results/gateway-cost-<time>.json.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, watch, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startDiscordSimulator, type DiscordSimulator } from "../dev/discord-sim/index.js";
import { numberOption } from "./options.js";

const ROOT = new URL("..", import.meta.url).pathname;
const { values } = parseArgs({
  options: {
    bundle: { type: "string" },
    seconds: { type: "string" },
    members: { type: "string" },
    moves: { type: "string" },
    toggles: { type: "string" },
  },
});
const SECONDS = numberOption("seconds", values.seconds, 20, { min: 1 });
const MEMBERS = numberOption("members", values.members, 5_000, { min: 3, integer: true });
const MOVES = numberOption("moves", values.moves, 100, { min: 0 });
const TOGGLES = numberOption("toggles", values.toggles, 100, { min: 0 });

const BOT_TOKEN = "gateway-cost-bot-token";
const SECRET = "gateway-cost-hub-secret-0123456789";
// (id >> 22) % 1: one shard carries all three; the third is not in the deployment's list.
const GUILDS = ["1258291200000000000", "1258291200004194304", "1258291200008388608"] as const;
const ROOMS_PER_GUILD = [10, 8, 7]; // 25 rooms
const USER_BASE = 300000000000000000n;

interface Measured {
  variant: string;
  dispatches: number;
  fileWrites: number;
  fileBytes: number;
  bytesPerDispatch: number;
  cpuMsPerDispatch: number;
  /** The load window's CPU per dispatch by kind of thread (see cpuByThread). */
  cpuMsPerDispatchByThread: Record<string, number>;
  peakRssMb: number;
  eventLoopLagP99Ms: number;
  hubPosts: number;
}

/** A hub that answers every batch and lease request with 200 at once (what its own cost is, is not measured here). */
async function startHub(): Promise<{ server: Server; url: string; posts: () => number; guilds: Set<string> }> {
  let posts = 0;
  const guilds = new Set<string>();
  const grant = { term: 1, expiresInMs: 30_000 };
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      posts++;
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { events?: Array<{ payload: { guildId: string } }> };
      for (const event of body.events ?? []) guilds.add(event.payload.guildId);
      response.writeHead(200, { "Content-Type": "application/json" });
      response.end(JSON.stringify({ ok: true, accepted: body.events?.length ?? 0, duplicates: 0, lease: grant }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/internal/events`, posts: () => posts, guilds };
}

function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/**
 * CPU ms by kind of thread: `main` (JavaScript, the sockets, the HTTP client), `libuv` (the thread pool: file
 * writes, WebCrypto's jobs), `helpers` (the rest: V8's platform workers, which run concurrent GC and compilation).
 */
function cpuByThread(pid: number): Record<string, number> {
  const kinds: Record<string, number> = { main: 0, libuv: 0, helpers: 0 };
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
    } catch {
      continue; // exited meanwhile
    }
    const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    const fields = stat.slice(stat.lastIndexOf(") ") + 2).split(" ");
    const ms = (Number(fields[11]) + Number(fields[12])) * 10;
    const kind = tid === String(pid) ? "main" : name.startsWith("libuv") ? "libuv" : "helpers";
    kinds[kind]! += ms;
  }
  return kinds;
}

function rssMb(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
  return Math.round(kb / 1024);
}

async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return Number(new RegExp(`^${name} ([\\d.e+-]+)$`, "m").exec(text)?.[1] ?? Number.NaN);
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function measure(variant: string, bundle: string): Promise<Measured> {
  const sim: DiscordSimulator = await startDiscordSimulator({
    botToken: BOT_TOKEN,
    guildId: GUILDS[0],
    identifyIntervalMs: 0,
    channels: Array.from({ length: ROOMS_PER_GUILD[0]! }, (_, i) => ({ name: `A${i}`, type: 2 as const })),
    guilds: GUILDS.slice(1).map((guildId, g) => ({ guildId, channels: Array.from({ length: ROOMS_PER_GUILD[g + 1]! }, (_, i) => ({ name: `R${g}-${i}`, type: 2 as const })) })),
  });
  const rooms = GUILDS.map((guild) => sim.guild(guild).state().channels.map((c) => c.id));
  const members = Array.from({ length: MEMBERS }, (_, i) => ({ id: String(USER_BASE + BigInt(i)), guild: GUILDS[i % 3]! }));
  for (const [i, member] of members.entries()) {
    sim.addUser({ id: member.id, username: `member-${i}` });
    const own = rooms[i % 3]!;
    sim.guild(member.guild).setVoiceState(member.id, own[i % own.length]!);
  }
  const hub = await startHub();
  const dir = mkdtempSync(join(tmpdir(), "gateway-cost-"));
  const sessionFile = join(dir, "session.json");
  const healthPort = await freePort();
  const profile = process.env.GATEWAY_COST_PROFILE ? ["--cpu-prof", `--cpu-prof-dir=${process.env.GATEWAY_COST_PROFILE}`] : [];
  const nodeArgs = (process.env.GATEWAY_COST_NODE_ARGS ?? "").split(" ").filter(Boolean);
  const gateway: ChildProcess = spawn(process.execPath, [...nodeArgs, ...profile, bundle], {
    stdio: ["ignore", "ignore", "inherit"],
    env: {
      PATH: process.env.PATH,
      DISCORD_BOT_TOKEN: BOT_TOKEN,
      PRIMARY_GUILD_ID: GUILDS[0],
      ALLOWED_GUILD_IDS: GUILDS[1],
      HUB_ENDPOINT: hub.url,
      HUB_SECRET: SECRET,
      DISCORD_API_BASE: sim.restBase,
      HEALTH_PORT: String(healthPort),
      LOG_LEVEL: "warn",
      SESSION_FILE: sessionFile,
    },
  });
  let writes = 0;
  const watcher = watch(dir, (event, name) => void (event === "rename" && name === "session.json" && writes++));
  try {
    await sim.waitFor(() => hub.guilds.has(GUILDS[0]) && hub.guilds.has(GUILDS[1]), 60_000, `${variant}: both served guilds' pictures at the hub`);
    await sleep(3_000); // settled: the pictures delivered and written
    const pid = gateway.pid!;
    const seqBefore = sim.state().sessions.reduce((sum, s) => sum + s.seq, 0);
    const cpuBefore = cpuMs(pid);
    const threadsBefore = cpuByThread(pid);
    const writesBefore = writes;
    const postsBefore = hub.posts();
    let peakRss = rssMb(pid);
    let fileSize = statSync(sessionFile).size;
    const tickMs = 10;
    const start = performance.now();
    let moved = 0;
    let toggled = 0;
    for (let tick = 0; tick < (SECONDS * 1000) / tickMs; tick++) {
      const wait = start + tick * tickMs - performance.now();
      if (wait > 0) await sleep(wait);
      const elapsedS = (tick + 1) * (tickMs / 1000);
      for (; moved < MOVES * elapsedS; moved++) {
        const i = (moved * 7919) % members.length;
        const own = rooms[i % 3]!;
        sim.guild(members[i]!.guild).setVoiceState(members[i]!.id, own[(i + moved) % own.length]!);
      }
      for (; toggled < TOGGLES * elapsedS; toggled++) {
        const i = (toggled * 104729 + 13) % members.length;
        const here = sim.guild(members[i]!.guild).state().voiceStates.find((s) => s.userId === members[i]!.id);
        if (here) sim.guild(members[i]!.guild).setVoiceState(members[i]!.id, here.channelId, { selfMute: !here.selfMute });
      }
      if (tick % 50 === 0) {
        peakRss = Math.max(peakRss, rssMb(pid));
        fileSize = Math.max(fileSize, statSync(sessionFile, { throwIfNoEntry: false })?.size ?? 0);
      }
    }
    await sleep(1_500); // the last dispatches read, delivered and written
    const dispatches = sim.state().sessions.reduce((sum, s) => sum + s.seq, 0) - seqBefore;
    const fileWrites = writes - writesBefore;
    const cpu = cpuMs(pid) - cpuBefore;
    const threadsAfter = cpuByThread(pid);
    const perDispatch = (ms: number) => Math.round((ms / dispatches) * 1000) / 1000;
    const lag = await metric(healthPort, "nodejs_eventloop_lag_p99_seconds");
    peakRss = Math.max(peakRss, rssMb(pid));
    const result: Measured = {
      variant,
      dispatches,
      fileWrites,
      fileBytes: fileWrites * fileSize,
      bytesPerDispatch: Math.round((fileWrites * fileSize) / dispatches),
      cpuMsPerDispatch: perDispatch(cpu),
      cpuMsPerDispatchByThread: Object.fromEntries(Object.keys(threadsAfter).map((kind) => [kind, perDispatch(threadsAfter[kind]! - (threadsBefore[kind] ?? 0))])),
      peakRssMb: peakRss,
      eventLoopLagP99Ms: Math.round(lag * 1000 * 10) / 10,
      hubPosts: hub.posts() - postsBefore,
    };
    console.log(`[gateway-cost] ${variant}: ${JSON.stringify(result)}`);
    return result;
  } finally {
    watcher.close();
    gateway.kill("SIGTERM");
    await Promise.race([new Promise((resolve) => gateway.once("exit", resolve)), sleep(5_000)]);
    hub.server.close();
    await sim.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const out = mkdtempSync(join(tmpdir(), "gateway-cost-build-"));
  const build = spawnSync(process.execPath, [join(ROOT, "gateway-node/build.mjs"), out], { encoding: "utf8" });
  if (build.status !== 0) throw new Error(`building this checkout's gateway failed: ${build.stderr}`);
  const results: Measured[] = [];
  try {
    if (values.bundle) results.push(await measure("before", values.bundle));
    results.push(await measure("after", join(out, "main.mjs")));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
  const load = { members: MEMBERS, rooms: 25, guilds: 3, servedGuilds: 2, movesPerS: MOVES, togglesPerS: TOGGLES, seconds: SECONDS };
  console.table(results);
  mkdirSync(join(ROOT, "bench/results"), { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  writeFileSync(join(ROOT, `bench/results/gateway-cost-${stamp}.json`), JSON.stringify({ when: new Date().toISOString(), command: `npm run bench:gateway -- ${process.argv.slice(2).join(" ")}`.trim(), load, results }, null, 2));
}

await main();
