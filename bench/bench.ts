/**
 * Side-by-side fan-out benchmark: our Worker + GuildHub (workerd through Miniflare, from the deploy bundle) next
 * to the simplest alternative (bench/baseline-hub.ts: one Node process with `ws`), with the same client
 * processes, the same tokens and the same load in the same run.
 *
 *   npm run bench                       # every scenario, < 10 min
 *   npm run bench -- --scenario 1,3     # some of them
 *   npm run bench -- --quick            # small N, < 1 min: asserts no loss and exact counts, never a time (CI)
 *   npm run bench -- --single-frames    # clients do not opt into batch frames (one frame per event everywhere)
 *   npm run bench -- --scenario 1 --sizes 1000,10000 --target ours
 *   npm run bench -- --bundle /tmp/old/index.js      # a bundle built from another commit, for before/after
 *
 * Scenarios: 1 lobby broadcast to N sockets; 2 room-filtered watchers plus a lobby under steady voice traffic;
 * 3 bursts; 4 the full path from the Discord simulator through gateway-node; 5 first delivery after hibernation;
 * 6 reconnect storm with `since`. Each event is timed from the publisher's POST (scenario 4: the simulator's
 * dispatch) to its arrival on every socket. Results: bench/results/bench-<time>.json and fanout.svg.
 */
import { fork, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { exportJWK, generateKeyPair } from "jose";
import { hubRequestHeaders, type IdentifiedInternalEvent } from "../protocol/index.js";
import { fanoutChart } from "./chart.js";
import { buildBundle, removeBundle, startEdge, WORKER_NAME, type EdgeTarget } from "./edge-target.js";
import { startProfiler, type IsolateProfiler } from "./profile.js";
import { Histogram, summarise, type LatencySummary } from "./histogram.js";
import { nowMs, type CollectReport, type FromClient, type OpenReport, type ResumeReport, type SentEvent, type SocketSpec, type ToClient } from "./bench-shared.js";
import { commandName, processTree, rssBytes } from "./soak-memory.js";
import { freePort } from "../dev/stack/ports.js";
import { choiceListOption, numberListOption, numberOption } from "./options.js";
import { startDiscordSimulator } from "../dev/discord-sim/index.js";
import { AUDIENCE, GUILD, ROOT } from "./bench-ids.js";

const SECRET = "bench-hub-secret-0123456789abcdef";
const BOT_TOKEN = "bench-simulated-bot-token";
const ISSUER = "bench";
/** Sockets per client process: well under the 20,000 descriptors a process may hold here. */
const SOCKETS_PER_CLIENT = 5_000;
/** Sockets waiting for auth at once, over all client processes: under the hub's 1,000 pending limit. */
const PENDING_SOCKETS = 800;
/**
 * The most sockets workerd can hold here: it spends two file descriptors per WebSocket (the accepted one and a
 * dup), and this machine's hard limit is 20,000 per process, which a benchmark cannot raise. Larger N (--sizes)
 * run for the baseline only, which itself stops just short of 20,000 (one descriptor per socket).
 */
const WORKERD_MAX_SOCKETS = 9_900;
const ROOM_BASE = 300_000_000_000_000_000n;
const USER_BASE = 500_000_000_000_000_000n;
const MB = 1024 * 1024;

const { values } = parseArgs({
  options: {
    /** Default: 1 to 6; with --quick 1,2,3,5,6 (the full path starts gateway-node, too slow for a 1-minute CI check). */
    scenario: { type: "string" },
    quick: { type: "boolean", default: false },
    sizes: { type: "string" },
    target: { type: "string", default: "ours,baseline" },
    /** Clients send `batch: true` (our hub then coalesces each publish per socket; the baseline ignores it). */
    "single-frames": { type: "boolean", default: false },
    "rate-seconds": { type: "string" },
    /** A prebuilt Worker bundle (e.g. of an earlier commit, for before/after figures) instead of building one. */
    bundle: { type: "string" },
    /** CPU-profile our Worker's isolate per step (bench/results/<step>-ours.cpuprofile, top list printed) and gateway-node in scenario 4. */
    profile: { type: "boolean", default: false },
  },
});
const quick = values.quick ?? false;
const scenarios = new Set(numberListOption("scenario", values.scenario, quick ? "1,2,3,5,6" : "1,2,3,4,5,6", { min: 1, max: 6, integer: true }));
const TARGET_NAMES = ["ours", "baseline"] as const;
type TargetName = (typeof TARGET_NAMES)[number];
const targetNames = choiceListOption("target", values.target, TARGET_NAMES);
const sizes = numberListOption("sizes", values.sizes, quick ? "100,300" : "100,1000,5000,9500", { min: 1, max: 40_000, integer: true });
const batchFrames = !(values["single-frames"] ?? false);
let inspectorPort: number | undefined;

/** Runs `work`, CPU-profiling our isolate meanwhile when --profile is given and the target is ours. */
async function profiled<T>(target: Target, label: string, work: () => Promise<T>): Promise<T> {
  let profiler: IsolateProfiler | undefined;
  if (inspectorPort && target.name === "ours") profiler = await startProfiler(inspectorPort, WORKER_NAME);
  const result = await work();
  if (profiler) {
    mkdirSync(join(ROOT, "bench/results"), { recursive: true });
    const top = await profiler.stop(join(ROOT, `bench/results/${label}-ours.cpuprofile`));
    note(`profile ${label}: ${top.map((t) => `${t.selfPct}% ${t.fn}`).join("; ")}`);
  }
  return result;
}

interface Target {
  name: TargetName;
  url: string;
  /** The last seq this target assigned (each event the driver sends yields exactly one). */
  seq: number;
  pids: () => number[];
  hibernate?: () => Promise<void>;
}

function note(line: string): void {
  console.log(`[bench] ${line}`);
}

// --- client processes

class ClientProcess {
  private readonly waiters: Array<{ type: FromClient["type"]; resolve: (m: FromClient) => void; reject: (e: Error) => void }> = [];
  readonly child: ChildProcess;

  constructor() {
    this.child = fork(join(ROOT, "bench/bench-client.ts"), [], {
      cwd: ROOT,
      execArgv: ["--import", "tsx", "--max-old-space-size=4096"],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    this.child.on("message", (message: FromClient) => {
      if (message.type === "fatal") {
        for (const waiter of this.waiters.splice(0)) waiter.reject(new Error(`client: ${message.message}`));
        return;
      }
      const i = this.waiters.findIndex((w) => w.type === message.type);
      if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(message);
    });
    this.child.on("exit", (code) => {
      for (const waiter of this.waiters.splice(0)) waiter.reject(new Error(`client exited ${code}`));
    });
  }

  ask<T extends FromClient["type"]>(message: ToClient, reply: T): Promise<Extract<FromClient, { type: T }>> {
    return new Promise((resolve, reject) => {
      this.waiters.push({ type: reply, resolve: resolve as (m: FromClient) => void, reject });
      this.child.send(message);
    });
  }
}

// --- memory

class PeakMemory {
  private peaks = new Map<string, number>();
  private timer?: NodeJS.Timeout;

  start(groups: () => Record<string, number[]>): void {
    this.peaks = new Map();
    const sample = () => {
      for (const [name, pids] of Object.entries(groups())) {
        const rss = pids.reduce((sum, pid) => sum + (rssBytes(pid) ?? 0), 0);
        this.peaks.set(name, Math.max(this.peaks.get(name) ?? 0, rss));
      }
    };
    sample();
    this.timer = setInterval(sample, 250);
  }

  stop(): Record<string, number> {
    clearInterval(this.timer);
    return Object.fromEntries([...this.peaks].map(([name, bytes]) => [name, Math.round(bytes / MB)]));
  }
}

// --- the run

interface Harness {
  clients: ClientProcess[];
  targets: Target[];
  memory: PeakMemory;
  nextUser: number;
}

async function main(): Promise<void> {
  const started = nowMs();
  const { publicKey, privateKey } = await generateKeyPair("RS256", { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), alg: "RS256" };
  const maxSockets = Math.max(
    scenarios.has(1) ? Math.max(...sizes) : 0,
    scenarios.has(2) ? scenarioTwo().sockets : 0,
    scenarios.has(3) ? scenarioThree().sockets : 0,
    scenarios.has(4) ? Math.max(...scenarioFour().map((l) => l.sockets)) : 0,
    scenarios.has(5) ? scenarioFive().sockets : 0,
    scenarios.has(6) ? scenarioSix().sockets : 0,
  );
  const processes = Math.max(2, Math.ceil(maxSockets / SOCKETS_PER_CLIENT));
  note(`${processes} client processes, up to ${maxSockets} sockets; targets: ${targetNames.join(", ")}`);

  const cleanups: Array<() => Promise<void> | void> = [];
  const targets: Target[] = [];
  try {
    if (targetNames.includes("ours")) {
      const bundle = values.bundle ? { dir: "", script: values.bundle } : buildBundle(ROOT);
      if (bundle.dir) cleanups.push(() => removeBundle(bundle.dir));
      inspectorPort = values.profile ? await freePort() : undefined;
      const edge: EdgeTarget = await startEdge(
        bundle.script,
        { PRIMARY_GUILD_ID: GUILD, HUB_SECRET: SECRET, JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE, JWT_PUBLIC_JWK: JSON.stringify(publicJwk) },
        inspectorPort,
      );
      cleanups.push(() => edge.stop());
      targets.push({
        name: "ours",
        url: edge.url,
        seq: 0,
        pids: () => processTree(process.pid).filter((pid) => commandName(pid).startsWith("workerd")),
        hibernate: () => edge.hibernate(GUILD),
      });
      cleanups.push(() => {
        if (edge.problems.length > 0) note(`our Worker logged warnings/errors: ${edge.problems.slice(0, 5).join(" | ")}`);
      });
    }
    if (targetNames.includes("baseline")) {
      const child = fork(join(ROOT, "bench/baseline-hub.ts"), [], { cwd: ROOT, execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
      cleanups.push(() => void child.kill());
      const port = await new Promise<number>((resolve, reject) => {
        child.once("message", (m: { port: number }) => resolve(m.port));
        child.once("exit", (code) => reject(new Error(`baseline hub exited ${code}`)));
        child.send({ guildId: GUILD, secret: SECRET, issuer: ISSUER, audience: AUDIENCE, publicJwk });
      });
      targets.push({ name: "baseline", url: `http://127.0.0.1:${port}`, seq: 0, pids: () => [child.pid!] });
    }

    const clients = Array.from({ length: processes }, () => new ClientProcess());
    cleanups.push(() => clients.forEach((c) => c.child.kill()));
    const privateJwk = await exportJWK(privateKey);
    const perClient = Math.ceil(maxSockets / processes);
    await Promise.all(
      clients.map((c, p) =>
        c.ask({ type: "init", tokens: { privateJwk: { ...privateJwk }, issuer: ISSUER, audience: AUDIENCE }, firstIndex: p * SOCKETS_PER_CLIENT, count: perClient }, "ready"),
      ),
    );
    note(`tokens signed (${Math.round(nowMs() - started)} ms)`);
    const harness: Harness = { clients, targets, memory: new PeakMemory(), nextUser: 0 };
    for (const target of targets) {
      // One room every lobby scenario's voice events go to.
      await publish(target, [roomCreated(0)]);
    }

    const results: Record<string, unknown> = {};
    if (scenarios.has(1)) results.lobby = await lobbyScenario(harness);
    if (scenarios.has(2)) results.rooms = await roomsScenario(harness);
    if (scenarios.has(3)) results.bursts = await burstScenario(harness);
    if (scenarios.has(5)) results.hibernation = await hibernationScenario(harness);
    if (scenarios.has(6)) results.reconnect = await reconnectScenario(harness);
    // Last: the gateway's guild.sync replaces the hub's rooms with the simulator's, removing the bench's room.
    if (scenarios.has(4)) results.fullPath = await fullPathScenario(harness);

    const report = {
      when: new Date().toISOString(),
      command: `npm run bench -- ${process.argv.slice(2).join(" ")}`.trim(),
      machine: machine(),
      quick,
      batchFrames,
      durationS: Math.round((nowMs() - started) / 1000),
      results,
    };
    const failures = correctness(results);
    mkdirSync(join(ROOT, "bench/results"), { recursive: true });
    const stamp = report.when.replace(/[:.]/g, "-");
    writeFileSync(join(ROOT, `bench/results/bench-${stamp}.json`), JSON.stringify(report, null, 2));
    if (results.lobby) writeFileSync(join(ROOT, "bench/results/fanout.svg"), fanoutChart(results.lobby as LobbyResult[]));
    console.log(JSON.stringify(summaryOf(results), null, 2));
    note(`results in bench/results/bench-${stamp}.json (${report.durationS} s)`);
    if (failures.length > 0) {
      for (const failure of failures) console.error(`[bench] FAIL ${failure}`);
      process.exitCode = 1;
    }
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup();
  }
}

// --- scenarios

interface LobbyResult {
  target: TargetName;
  sockets: number;
  connectAuthMs: number;
  /** Per event: POST → arrival on the last socket. */
  fanout: LatencySummary;
  /** Every delivery: POST → arrival on that socket. */
  delivery: LatencySummary;
  deliveriesPerSecond: number;
  lost: number;
  extra: number;
  peakRssMb: Record<string, number>;
}

/** Scenario 1: one voice.joined at a time to N lobby sockets; the next is sent once every socket has the last. */
async function lobbyScenario(h: Harness): Promise<LobbyResult[]> {
  const rounds = quick ? 3 : 10;
  const results: LobbyResult[] = [];
  for (const n of sizes) {
    for (const target of h.targets) {
      if (target.name === "ours" && n > WORKERD_MAX_SOCKETS) {
        note(`lobby ours N=${n}: not measured (workerd here holds at most ${WORKERD_MAX_SOCKETS} sockets: 2 descriptors each, limit 20,000)`);
        continue;
      }
      h.memory.start(() => memoryGroups(h, target));
      const opened = await profiled(target, `connect-${n}`, () => openSockets(h, target, lobbySpecs(n, h.clients.length)));
      const fanout = new Histogram();
      const delivery = new Histogram();
      let lost = 0;
      let extra = 0;
      let deliveryMs = 0;
      for (let r = 0; r < rounds; r++) {
        const outcome = await profiled(target, `lobby-${n}-${r}`, () => timedEvents(h, target, [voiceEvent(h, 0, "joined")], 30_000));
        outcome.fanout.forEach((ms) => fanout.add(ms));
        delivery.merge(outcome.delivery.toData());
        deliveryMs += Math.max(...outcome.fanout);
        lost += outcome.lost;
        extra += outcome.extra;
      }
      await closeSockets(h);
      const result: LobbyResult = {
        target: target.name,
        sockets: n,
        connectAuthMs: Math.round(opened.ms),
        fanout: summarise(fanout),
        delivery: summarise(delivery),
        deliveriesPerSecond: Math.round(delivery.total / (deliveryMs / 1000)),
        lost,
        extra,
        peakRssMb: h.memory.stop(),
      };
      note(`lobby ${target.name} N=${n}: connect+auth ${result.connectAuthMs} ms, fan-out p50 ${result.fanout.p50} p99 ${result.fanout.p99} ms, lost ${lost}`);
      results.push(result);
    }
  }
  return results;
}

function scenarioTwo(): { rooms: number; perRoom: number; lobby: number; rate: number; seconds: number; sockets: number } {
  const shape = quick ? { rooms: 20, perRoom: 5, lobby: 50, rate: 100, seconds: 2 } : { rooms: 500, perRoom: 16, lobby: 1_000, rate: 500, seconds: rateSeconds(5) };
  return { ...shape, sockets: shape.rooms * shape.perRoom + shape.lobby };
}

function scenarioThree(): { sockets: number; rate: number; seconds: number } {
  return quick ? { sockets: 100, rate: 400, seconds: 1 } : { sockets: 1_000, rate: 2_000, seconds: 2 };
}

function scenarioFour(): Array<{ rate: number; sockets: number; seconds: number }> {
  if (quick) return [{ rate: 50, sockets: 50, seconds: 2 }];
  const seconds = rateSeconds(5);
  return [{ rate: 200, sockets: 100, seconds }, { rate: 500, sockets: 100, seconds }, { rate: 200, sockets: 1_000, seconds }];
}

function scenarioFive(): { sockets: number } {
  return { sockets: quick ? 100 : 5_000 };
}

function scenarioSix(): { sockets: number; missed: number } {
  return quick ? { sockets: 200, missed: 10 } : { sockets: 5_000, missed: 20 };
}

function rateSeconds(fallback: number): number {
  return numberOption("rate-seconds", values["rate-seconds"], fallback, { min: 1 });
}

/**
 * Scenario 2: rooms × room-filtered watchers plus lobby watchers, voice joins and leaves spread over the rooms.
 * 16 watchers per room rather than 20: 500 × 20 + 1,000 sockets is more than workerd can hold here. 5 s of
 * load by default (--rate-seconds): 500 events/s to 1,000 lobby sockets is 500,000 deliveries/s, beyond these
 * two shared cores, so the backlog of a 30 s run takes minutes to drain.
 */
async function roomsScenario(h: Harness): Promise<unknown[]> {
  const shape = scenarioTwo();
  const results = [];
  for (const target of h.targets) {
    // Rooms 1..rooms (room 0 is the lobby scenarios' room), created in batches of at most 500 events per POST.
    for (let first = 1; first <= shape.rooms; first += 500) {
      await publish(target, Array.from({ length: Math.min(500, shape.rooms - first + 1) }, (_, k) => roomCreated(first + k)));
    }
    const specs: SocketSpec[] = [];
    for (let room = 1; room <= shape.rooms; room++) {
      for (let w = 0; w < shape.perRoom; w++) specs.push({ index: 0, rooms: [roomId(room)] });
    }
    for (let l = 0; l < shape.lobby; l++) specs.push({ index: 0 });
    h.memory.start(() => memoryGroups(h, target));
    const opened = await openSockets(h, target, spread(specs, h.clients.length));
    const outcome = await steadyLoad(h, target, shape.rate, shape.seconds, (k) => 1 + (k % shape.rooms));
    await closeSockets(h);
    const result = { target: target.name, ...shape, connectAuthMs: Math.round(opened.ms), ...outcome, peakRssMb: h.memory.stop() };
    note(`rooms ${target.name}: delivery p99 ${outcome.delivery.p99} ms, lost ${outcome.lost}, sent ${outcome.sentRate}/s`);
    results.push(result);
  }
  return results;
}

/** Scenario 3: a burst of `rate` events/s for `seconds` s to lobby sockets. */
async function burstScenario(h: Harness): Promise<unknown[]> {
  const shape = scenarioThree();
  const results = [];
  for (const target of h.targets) {
    h.memory.start(() => memoryGroups(h, target));
    const opened = await openSockets(h, target, lobbySpecs(shape.sockets, h.clients.length));
    const outcome = await steadyLoad(h, target, shape.rate, shape.seconds, () => 0);
    await closeSockets(h);
    const result = { target: target.name, ...shape, connectAuthMs: Math.round(opened.ms), ...outcome, peakRssMb: h.memory.stop() };
    note(`bursts ${target.name}: delivery p99 ${outcome.delivery.p99} ms, lost ${outcome.lost}`);
    results.push(result);
  }
  return results;
}

/**
 * Scenario 4: the full path. The Discord simulator dispatches VOICE_STATE_UPDATEs (a new user joining each time),
 * gateway-node (its source, through tsx) turns them into signed POSTs, and the hub fans them out. Each event is
 * timed from the simulator's dispatch and matched on the sockets by its user (only the hub knows its seq).
 */
async function fullPathScenario(h: Harness): Promise<unknown[]> {
  const results = [];
  for (const target of h.targets) {
    const sim = await startDiscordSimulator({ botToken: BOT_TOKEN, guildId: GUILD, channels: [{ name: "Bench voice" }] });
    const channelId = sim.state().channels.find((c) => c.type === 2)!.id;
    const cpuProfile = values.profile ? ["--cpu-prof", `--cpu-prof-dir=${join(ROOT, "bench/results")}`] : [];
    const gateway = spawn(process.execPath, [...cpuProfile, "--import", "tsx", "gateway-node/src/main.ts"], {
      cwd: ROOT,
      stdio: ["ignore", "ignore", "inherit"],
      env: {
        ...process.env, DISCORD_BOT_TOKEN: BOT_TOKEN, PRIMARY_GUILD_ID: GUILD, HUB_ENDPOINT: `${target.url}/internal/events`,
        HUB_SECRET: SECRET, DISCORD_API_BASE: sim.restBase, HEALTH_PORT: "0", LOG_LEVEL: "warn",
      },
    });
    try {
      await sim.waitFor(() => sim.state().sessions.some((session) => session.connected), 30_000, "the gateway's session");
      await sleep(3_000); // its guild.sync reaches the hub, which then knows the room
      for (const load of scenarioFour()) {
        h.memory.start(() => ({ ...memoryGroups(h, target), gateway: gatewayPids(gateway.pid!) }));
        await openSockets(h, target, lobbySpecs(load.sockets, h.clients.length));
        await mark(h);
        const cpuBefore = cpuMs(gatewayPids(gateway.pid!));
        const sent: SentEvent[] = [];
        const tickMs = 20;
        const perTick = Math.max(1, Math.round((load.rate * tickMs) / 1000));
        const start = nowMs();
        for (let t = 0; t < (load.seconds * 1000) / tickMs; t++) {
          const wait = start + t * tickMs - nowMs();
          if (wait > 0) await sleep(wait);
          for (let j = 0; j < perTick; j++) {
            const userId = String(USER_BASE + BigInt(h.nextUser++));
            sim.addUser({ id: userId, username: `u${userId.slice(-6)}` });
            sent.push({ seq: 0, userId, sentAt: nowMs(), channelId, roomEvent: false });
            sim.setVoiceState(userId, channelId);
          }
        }
        const outcome = await collect(h, sent, 120_000);
        const gatewayCpuMs = cpuMs(gatewayPids(gateway.pid!)) - cpuBefore;
        await closeSockets(h);
        const result = {
          target: target.name, ...load, sent: sent.length,
          delivery: summarise(outcome.delivery), fanout: summarise(histogramOf(outcome.fanout)),
          expected: outcome.expected, lost: outcome.lost,
          gatewayCpuMsPerEvent: Math.round((gatewayCpuMs / sent.length) * 1000) / 1000,
          peakRssMb: h.memory.stop(),
        };
        note(`full path ${target.name} ${load.rate}/s × ${load.sockets}: delivery p99 ${result.delivery.p99} ms, lost ${result.lost}, gateway ${result.gatewayCpuMsPerEvent} ms CPU/event, RSS ${result.peakRssMb.gateway} MB`);
        results.push(result);
      }
    } finally {
      const exited = new Promise((resolve) => gateway.once("exit", resolve));
      gateway.kill("SIGTERM"); // a clean exit, so --profile's .cpuprofile gets written
      await Promise.race([exited, sleep(5_000)]);
      await sim.close();
    }
  }
  return results;
}

/** The gateway service's process (with whatever it starts). */
function gatewayPids(root: number): number[] {
  return processTree(root);
}

/** CPU time (user + system) of processes, from /proc/<pid>/stat, in ms. */
function cpuMs(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone meanwhile
    }
  }
  return ticks * 10; // USER_HZ is 100 on Linux
}

/** Scenario 5: N lobby sockets; one event warm, then the hub hibernated (evicted, sockets kept) and one event. */
async function hibernationScenario(h: Harness): Promise<unknown[]> {
  const { sockets } = scenarioFive();
  const results = [];
  for (const target of h.targets) {
    h.memory.start(() => memoryGroups(h, target));
    await openSockets(h, target, lobbySpecs(sockets, h.clients.length));
    const warm = [];
    for (let r = 0; r < 3; r++) warm.push(await timedEvents(h, target, [voiceEvent(h, 0, "joined")], 30_000));
    let woken;
    if (target.hibernate) {
      await target.hibernate().catch((error: unknown) => {
        // Already hibernated on its own (idle for ~10 s): the next event wakes it just the same.
        if (!String(error).includes("not currently running")) throw error;
      });
      woken = await timedEvents(h, target, [voiceEvent(h, 0, "joined")], 30_000);
    }
    await closeSockets(h);
    const firstWarm = median(warm.map((w) => w.first[0]!));
    const lastWarm = median(warm.map((w) => w.fanout[0]!));
    const result = {
      target: target.name,
      sockets,
      warm: { firstMs: round(firstWarm), lastMs: round(lastWarm) },
      afterWake: woken ? { firstMs: round(woken.first[0]!), lastMs: round(woken.fanout[0]!) } : "no hibernation (a plain process)",
      firstOverWarmMs: woken ? round(woken.first[0]! - firstWarm) : undefined,
      lost: warm.reduce((sum, w) => sum + w.lost, woken?.lost ?? 0),
      extra: warm.reduce((sum, w) => sum + w.extra, woken?.extra ?? 0),
      peakRssMb: h.memory.stop(),
    };
    note(`hibernation ${target.name}: ${JSON.stringify(result.afterWake)} vs warm ${JSON.stringify(result.warm)}`);
    results.push(result);
  }
  return results;
}

/** Scenario 6: N sockets drop at once, `missed` events are published, and all resume with `since` at once. */
async function reconnectScenario(h: Harness): Promise<unknown[]> {
  const { sockets, missed } = scenarioSix();
  const results = [];
  for (const target of h.targets) {
    h.memory.start(() => memoryGroups(h, target));
    await openSockets(h, target, lobbySpecs(sockets, h.clients.length));
    await Promise.all(h.clients.map((c) => c.ask({ type: "drop" }, "dropped")));
    await publish(target, Array.from({ length: missed }, () => voiceEvent(h, 0, "joined")));
    const reports: ResumeReport[] = await Promise.all(
      h.clients.map((c) =>
        c.ask({ type: "resume", url: wsUrl(target), concurrency: pendingPerClient(h), timeoutMs: 60_000, expectSeq: target.seq }, "resumed").then((m) => m.report),
      ),
    );
    await closeSockets(h);
    const result = {
      target: target.name,
      sockets,
      missed,
      allResumedMs: Math.round(Math.max(...reports.map((r) => r.ms))),
      exact: sum(reports, (r) => r.exact),
      wrong: sum(reports, (r) => r.wrong),
      snapshots: sum(reports, (r) => r.snapshots),
      failed: sum(reports, (r) => r.failed),
      peakRssMb: h.memory.stop(),
    };
    note(`reconnect ${target.name}: ${result.exact}/${sockets} exact in ${result.allResumedMs} ms`);
    results.push(result);
  }
  return results;
}

// --- load and timing

interface Timed {
  /** Per event, POST → last arrival (ms). */
  fanout: number[];
  /** Per event, POST → first arrival (ms). */
  first: number[];
  delivery: Histogram;
  lost: number;
  extra: number;
  expected: number;
}

/** Publishes `events` in one POST and waits until every socket has what it should. */
async function timedEvents(h: Harness, target: Target, events: Pending[], timeoutMs: number): Promise<Timed> {
  await mark(h);
  const sent = await publishTimed(target, events);
  return collect(h, sent, timeoutMs);
}

/**
 * `rate` events/s for `seconds` s, produced every 20 ms and sent as a gateway does: one POST in flight, each
 * carrying everything queued meanwhile (at most 500). An event is timed from when it was produced.
 */
async function steadyLoad(h: Harness, target: Target, rate: number, seconds: number, roomOf: (k: number) => number) {
  await mark(h);
  const tickMs = 20;
  const perTick = Math.max(1, Math.round((rate * tickMs) / 1000));
  const ticks = Math.round((seconds * 1000) / tickMs);
  const sent: SentEvent[] = [];
  const queue: Array<{ event: Pending; at: number }> = [];
  let producing = true;
  const sender = (async () => {
    while (producing || queue.length > 0) {
      if (queue.length === 0) {
        await sleep(1);
        continue;
      }
      const chunk = queue.splice(0, 500);
      const firstSeq = target.seq + 1;
      await publish(target, chunk.map((q) => q.event));
      chunk.forEach((q, k) => sent.push(sentEvent(firstSeq + k, q.at, q.event)));
    }
  })();
  const start = nowMs();
  for (let t = 0; t < ticks; t++) {
    const wait = start + t * tickMs - nowMs();
    if (wait > 0) await sleep(wait);
    const at = nowMs();
    for (let j = 0; j < perTick; j++) {
      const k = t * perTick + j;
      queue.push({ event: voiceEvent(h, roomOf(k), k % 2 === 0 ? "joined" : "left"), at });
    }
  }
  producing = false;
  await sender;
  const sendingMs = nowMs() - start;
  sent.sort((a, b) => a.seq - b.seq);
  const outcome = await collect(h, sent, 120_000);
  return {
    sent: sent.length,
    sentRate: Math.round(sent.length / (sendingMs / 1000)),
    delivery: summarise(outcome.delivery),
    fanout: summarise(histogramOf(outcome.fanout)),
    expected: outcome.expected,
    lost: outcome.lost,
    extra: outcome.extra,
    deliveriesPerSecond: Math.round(outcome.delivery.total / ((Math.max(...outcome.fanout.map((ms, i) => ms + sent[i]!.sentAt)) - start) / 1000)),
  };
}

async function collect(h: Harness, sent: SentEvent[], timeoutMs: number): Promise<Timed> {
  const reports: CollectReport[] = await Promise.all(h.clients.map((c) => c.ask({ type: "collect", events: sent, timeoutMs }, "collected").then((m) => m.report)));
  const delivery = new Histogram();
  for (const report of reports) delivery.merge(report.histogram);
  const fanout = sent.map((event, i) => Math.max(...reports.map((r) => r.lastArrival[i]!)) - event.sentAt);
  const first = sent.map((event, i) => Math.min(...reports.map((r) => r.firstArrival[i] || Infinity)) - event.sentAt);
  return { fanout, first, delivery, lost: sum(reports, (r) => r.lost), extra: sum(reports, (r) => r.extra), expected: sum(reports, (r) => r.expected) };
}

async function mark(h: Harness): Promise<void> {
  await Promise.all(h.clients.map((c) => c.ask({ type: "mark" }, "marked")));
}

// --- sockets

function wsUrl(target: Target): string {
  return `${target.url.replace(/^http/, "ws")}/ws`;
}

function pendingPerClient(h: Harness): number {
  return Math.floor(PENDING_SOCKETS / h.clients.length);
}

/** N lobby sockets, spread evenly over the client processes. */
function lobbySpecs(n: number, processes: number): SocketSpec[][] {
  return spread(Array.from({ length: n }, () => ({ index: 0 })), processes);
}

/** Deals specs to processes round-robin and numbers each by its process's token range (one user per socket). */
function spread(specs: SocketSpec[], processes: number): SocketSpec[][] {
  const dealt: SocketSpec[][] = Array.from({ length: processes }, () => []);
  specs.forEach((spec, i) => {
    const p = i % processes;
    dealt[p]!.push({ ...spec, index: p * SOCKETS_PER_CLIENT + dealt[p]!.length });
  });
  return dealt;
}

async function openSockets(h: Harness, target: Target, dealt: SocketSpec[][]): Promise<OpenReport> {
  const start = nowMs();
  const reports = await Promise.all(
    h.clients.map((c, p) => c.ask({ type: "open", url: wsUrl(target), sockets: dealt[p] ?? [], batch: batchFrames, concurrency: pendingPerClient(h) }, "opened").then((m) => m.report)),
  );
  const failed = sum(reports, (r) => r.failed);
  const reasons = reports.flatMap((r) => Object.entries(r.reasons).map(([why, n]) => `${n}x ${why}`));
  if (failed > 0) throw new Error(`${target.name}: ${failed} sockets failed to connect and authenticate: ${reasons.join(", ")}`);
  // Every socket's snapshot names the hub's seq: the driver counts from there (the full path's gateway
  // publishes events the driver does not count, such as its guild.sync).
  target.seq = Math.min(...reports.filter((r) => r.opened > 0).map((r) => r.minSeq));
  return { opened: sum(reports, (r) => r.opened), failed, reasons: {}, ms: nowMs() - start, minSeq: Math.min(...reports.map((r) => r.minSeq)) };
}

async function closeSockets(h: Harness): Promise<void> {
  await Promise.all(h.clients.map((c) => c.ask({ type: "close" }, "marked")));
  await sleep(quick ? 200 : 1_000); // let the hub see the closes before the next scenario's sockets arrive
}

// --- events

type Pending = IdentifiedInternalEvent & { event: "room.created" | "voice.joined" | "voice.left" };

function roomId(room: number): string {
  return String(ROOM_BASE + BigInt(room));
}

function roomCreated(room: number): Pending {
  return { id: `bench:room:${room}`, event: "room.created", payload: { guildId: GUILD, channelId: roomId(room), name: `Bench ${room}`, userLimit: 0 } };
}

/** A join by a new user (exactly one app event), or the leave of the last user who joined that room (one event). */
const joinedPerRoom = new Map<number, string[]>();
function voiceEvent(h: Harness, room: number, kind: "joined" | "left"): Pending {
  const members = joinedPerRoom.get(room) ?? [];
  joinedPerRoom.set(room, members);
  const n = h.nextUser++;
  if (kind === "left" && members.length > 0) {
    const userId = members.pop()!;
    return { id: `bench:e:${n}`, event: "voice.left", payload: { guildId: GUILD, channelId: roomId(room), userId } };
  }
  const userId = String(USER_BASE + BigInt(n));
  members.push(userId);
  return { id: `bench:e:${n}`, event: "voice.joined", payload: { guildId: GUILD, channelId: roomId(room), userId, username: `user${n}` } };
}

/** Publishes and notes each event's seq and send time. */
async function publishTimed(target: Target, events: Pending[]): Promise<SentEvent[]> {
  const firstSeq = target.seq + 1;
  const sentAt = nowMs();
  await publish(target, events);
  return events.map((event, k) => sentEvent(firstSeq + k, sentAt, event));
}

function sentEvent(seq: number, sentAt: number, event: Pending): SentEvent {
  return { seq, sentAt, channelId: event.payload.channelId, roomEvent: event.event.startsWith("room.") };
}

/** Sends one signed POST; each event gets the target's next seq (the driver only sends events that yield one). */
async function publish(target: Target, events: Pending[]): Promise<void> {
  target.seq += events.length;
  const body = JSON.stringify({ events });
  const response = await fetch(`${target.url}/internal/events`, { method: "POST", headers: await hubRequestHeaders(SECRET, body), body });
  if (!response.ok) throw new Error(`${target.name}: POST /internal/events answered ${response.status}: ${await response.text()}`);
  await response.arrayBuffer();
}

// --- reporting

function memoryGroups(h: Harness, target: Target): Record<string, number[]> {
  const groups: Record<string, number[]> = { [target.name === "ours" ? "workerd" : "baselineHub"]: target.pids(), driver: [process.pid] };
  h.clients.forEach((c, i) => (groups[`client${i}`] = [c.child.pid!]));
  return groups;
}

/** Loss and exact counts: the only things --quick asserts (times are noise on a shared CI box). */
function correctness(results: Record<string, unknown>): string[] {
  const failures: string[] = [];
  for (const [name, list] of Object.entries(results)) {
    for (const r of list as Array<Record<string, unknown>>) {
      const label = `${name} ${String(r.target)}${r.sockets ? ` N=${String(r.sockets)}` : ""}`;
      if (typeof r.lost === "number" && r.lost > 0) failures.push(`${label}: ${r.lost} deliveries lost`);
      if (typeof r.extra === "number" && r.extra > 0) failures.push(`${label}: ${r.extra} unexpected or duplicate deliveries`);
      if (typeof r.exact === "number" && r.exact !== r.sockets) failures.push(`${label}: ${r.exact}/${String(r.sockets)} resumed with exactly the missed events`);
    }
  }
  return failures;
}

function summaryOf(results: Record<string, unknown>): unknown {
  const lobby = (results.lobby as LobbyResult[] | undefined) ?? [];
  const ratios = [...new Set(lobby.map((r) => r.sockets))].map((n) => {
    const ours = lobby.find((r) => r.sockets === n && r.target === "ours");
    const base = lobby.find((r) => r.sockets === n && r.target === "baseline");
    return {
      sockets: n,
      fanoutP50: ours && base ? `${ours.fanout.p50} vs ${base.fanout.p50} ms (${(ours.fanout.p50 / base.fanout.p50).toFixed(2)}x)` : undefined,
      connectAuth: ours && base ? `${ours.connectAuthMs} vs ${base.connectAuthMs} ms (${(ours.connectAuthMs / base.connectAuthMs).toFixed(2)}x)` : undefined,
    };
  });
  return { lobby: ratios, ...Object.fromEntries(Object.entries(results).filter(([k]) => k !== "lobby")) };
}

function machine(): Record<string, unknown> {
  return { cpus: cpus().length, cpu: cpus()[0]?.model, memGb: Math.round(totalmem() / 1024 ** 3), node: process.version, platform: process.platform };
}

function histogramOf(values: number[]): Histogram {
  const histogram = new Histogram();
  values.forEach((v) => histogram.add(v));
  return histogram;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

function sum<T>(items: T[], of: (item: T) => number): number {
  return items.reduce((total, item) => total + of(item), 0);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

main().catch((error: unknown) => {
  console.error(`[bench] ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exit(1);
});
