/**
 * The benchmark's scenarios, in the order a run takes them. Each one runs every target in turn with the same
 * clients and load and returns one row per step and target: a headline latency the report compares side by side,
 * the window's Usage where it delivered events, and loss counts the run asserts. To add one, write its function
 * and add an entry to SCENARIOS (its id, a name for --scenario, its socket count and whether --quick runs it).
 */
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { startDiscordSimulator } from "../dev/discord-sim/index.js";
import { GUILD, ROOT } from "./bench-ids.js";
import { nowMs, type ResumeReport, type SentEvent, type SocketSpec } from "./bench-shared.js";
import {
  closeSockets,
  collect,
  forgetMembers,
  guildStats,
  histogramOf,
  lobbySpecs,
  mark,
  median,
  memoryGroups,
  note,
  openSockets,
  pendingPerClient,
  profiled,
  publish,
  round,
  roomCreated,
  roomId,
  SECRET,
  sleep,
  spread,
  steadyLoad,
  sum,
  timedEvents,
  USER_BASE,
  voiceEvent,
  wsUrl,
  WORKERD_MAX_SOCKETS,
  type BenchOptions,
  type Harness,
  type Target,
  type TargetName,
} from "./harness.js";
import { Histogram, summarise, type LatencySummary } from "./histogram.js";
import type { StepResult } from "./report-table.js";
import { processTree } from "./soak-memory.js";
import { addUsage, cpuMs, usageFigures, type Usage } from "./usage.js";
import { WORKER_NAME } from "./edge-target.js";
import { objectShares, startProfiler } from "./profile.js";

const BOT_TOKEN = "bench-simulated-bot-token";

/** One row of a scenario's results: a step for one target; the rest of its fields go to the JSON report. */
export type ScenarioRow = StepResult & { target: TargetName; lost?: number; extra?: number; exact?: number; sockets?: number; [detail: string]: unknown };

export interface Scenario {
  id: number;
  /** What --scenario accepts besides the id, and the results' key. */
  name: string;
  /** One line for --help. */
  title: string;
  /** Part of --quick (CI): it must stay short and assert counts, never times. */
  quick: boolean;
  /** The most sockets it holds at once, which sizes the client processes. */
  sockets(o: BenchOptions): number;
  run(h: Harness): Promise<ScenarioRow[]>;
}

export const SCENARIOS: Scenario[] = [
  {
    id: 1, name: "lobby", quick: true,
    title: "one voice.joined at a time to N lobby sockets (--sizes): fan-out and connect + auth",
    sockets: (o) => Math.max(...o.sizes),
    run: lobbyScenario,
  },
  {
    id: 2, name: "rooms", quick: true,
    title: "500 rooms × 16 room-filtered watchers + 1,000 lobby sockets, 500 voice events/s",
    sockets: (o) => roomsShape(o).sockets,
    run: roomsScenario,
  },
  {
    id: 3, name: "bursts", quick: true,
    title: "bursts of 2,000 events/s for 2 s to 1,000 lobby sockets",
    sockets: (o) => burstShape(o).sockets,
    run: burstScenario,
  },
  {
    id: 5, name: "hibernation", quick: true,
    title: "one event to 5,000 sockets warm, then after the object is evicted with its sockets hibernated",
    sockets: (o) => (o.quick ? 100 : 5_000),
    run: hibernationScenario,
  },
  {
    id: 6, name: "reconnect", quick: true,
    title: "5,000 sockets dropped at once, 20 events published, all resumed with since",
    sockets: (o) => reconnectShape(o).sockets,
    run: reconnectScenario,
  },
  {
    id: 7, name: "single-frames", quick: true,
    title: "clients without batch frames: 200 and 500 events/s to 100 lobby sockets",
    sockets: (o) => Math.max(...singleFrameLoads(o).map((l) => l.sockets)),
    run: singleFrameScenario,
  },
  {
    id: 8, name: "rate-sweep", quick: true,
    title: "--rates events/s (default 10,50,100,200,500) to --watchers lobby sockets: server CPU per watcher-second per rate",
    sockets: (o) => sweepShape(o).watchers,
    run: rateSweepScenario,
  },
  {
    id: 9, name: "coalescing", quick: true,
    title: "the rate sweep (scenario 8's rates and watchers) for each flush cadence (--cadences), ours only",
    sockets: (o) => sweepShape(o).watchers,
    run: coalescingScenario,
  },
  {
    id: 10, name: "relays", quick: true,
    title: "--relay-watchers lobby sockets on 0, 1 and 4 relays (--relays), --relay-rate events/s: per-object sends, tokens verified and CPU",
    sockets: (o) => relayShape(o).watchers,
    run: relayScenario,
  },
  // Last: the gateway's guild.sync replaces the hub's rooms with the simulator's, removing the bench's room.
  {
    id: 4, name: "full-path", quick: false,
    title: "Discord simulator → gateway-node → hub → sockets: 200/s × 100, 500/s × 100, 200/s × 1,000, 100/s × 2,000",
    sockets: (o) => Math.max(...fullPathLoads(o).map((l) => l.sockets)),
    run: fullPathScenario,
  },
];

/** Whether `target` can hold `sockets` here; when not, the step is noted as not measured. */
function fits(target: Target, sockets: number, what: string): boolean {
  if (sockets <= target.maxSockets) return true;
  note(`${what} ${target.name} N=${sockets}: not measured (workerd here holds at most ${target.maxSockets} sockets: 2 descriptors each, limit 20,000)`);
  return false;
}

// --- 1: lobby broadcast

/** One voice.joined at a time to N lobby sockets; the next is sent once every socket has the last. */
async function lobbyScenario(h: Harness): Promise<ScenarioRow[]> {
  const rounds = h.options.quick ? 3 : 10;
  const results: ScenarioRow[] = [];
  for (const n of h.options.sizes) {
    for (const target of h.targets) {
      if (!fits(target, n, "lobby")) continue;
      h.memory.start(() => memoryGroups(h, target));
      const opened = await profiled(h, target, `connect-${n}`, () => openSockets(h, target, lobbySpecs(n, h.clients.length)));
      const fanout = new Histogram();
      const delivery = new Histogram();
      let lost = 0;
      let extra = 0;
      let deliveryMs = 0;
      let usage: Usage | undefined;
      for (let r = 0; r < rounds; r++) {
        const outcome = await profiled(h, target, `lobby-${n}-${r}`, () => timedEvents(h, target, [voiceEvent(h, target, 0, "joined")], 30_000));
        outcome.fanout.forEach((ms) => fanout.add(ms));
        delivery.merge(outcome.delivery.toData());
        deliveryMs += Math.max(...outcome.fanout);
        lost += outcome.lost;
        extra += outcome.extra;
        usage = addUsage(usage, outcome.usage);
      }
      await closeSockets(h);
      const summary = summarise(fanout);
      const result = {
        scenario: "lobby", step: `N=${n}`, target: target.name, headline: { label: "fan-out p50", ms: summary.p50 }, usage,
        sockets: n,
        connectAuthMs: Math.round(opened.ms),
        fanout: summary,
        delivery: summarise(delivery),
        deliveriesPerSecond: Math.round(delivery.total / (deliveryMs / 1000)),
        lost,
        extra,
        peakRssMb: h.memory.stop(),
      };
      note(`lobby ${target.name} N=${n}: connect+auth ${result.connectAuthMs} ms, fan-out p50 ${summary.p50} p99 ${summary.p99} ms, lost ${lost}`);
      results.push(result, { scenario: "lobby", step: `N=${n} connect`, target: target.name, headline: { label: "connect + auth of all", ms: result.connectAuthMs } });
    }
  }
  return results;
}

/** The rows the fan-out chart draws. */
export function chartPoints(rows: ScenarioRow[]): Array<{ target: string; sockets: number; fanout: LatencySummary }> {
  return rows.filter((r) => r.fanout && r.sockets).map((r) => ({ target: r.target, sockets: r.sockets!, fanout: r.fanout as LatencySummary }));
}

// --- 2: room-filtered watchers under steady traffic

function roomsShape(o: BenchOptions): { rooms: number; perRoom: number; lobby: number; rate: number; seconds: number; sockets: number } {
  const shape = o.quick ? { rooms: 20, perRoom: 5, lobby: 50, rate: 100, seconds: 2 } : { rooms: 500, perRoom: 16, lobby: 1_000, rate: 500, seconds: o.rateSeconds };
  return { ...shape, sockets: shape.rooms * shape.perRoom + shape.lobby };
}

/**
 * Rooms × room-filtered watchers plus lobby watchers, voice joins and leaves spread over the rooms. 16 watchers
 * per room rather than 20: 500 × 20 + 1,000 sockets is more than workerd can hold here. 500 events/s to 1,000
 * lobby sockets is 500,000 deliveries/s, beyond these two shared cores, so a long run's backlog takes minutes.
 */
async function roomsScenario(h: Harness): Promise<ScenarioRow[]> {
  const shape = roomsShape(h.options);
  const results: ScenarioRow[] = [];
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
    const step = `${shape.rate}/s, ${shape.sockets} sockets`;
    results.push({
      scenario: "rooms", step, target: target.name, headline: { label: "delivery p99", ms: outcome.delivery.p99 },
      ...shape, connectAuthMs: Math.round(opened.ms), ...outcome, peakRssMb: h.memory.stop(),
    });
    note(`rooms ${target.name}: delivery p99 ${outcome.delivery.p99} ms, lost ${outcome.lost}, sent ${outcome.sentRate}/s`);
  }
  return results;
}

// --- 3: bursts

function burstShape(o: BenchOptions): { sockets: number; rate: number; seconds: number } {
  return o.quick ? { sockets: 100, rate: 400, seconds: 1 } : { sockets: 1_000, rate: 2_000, seconds: 2 };
}

/** A burst of `rate` events/s for `seconds` s to lobby sockets. */
async function burstScenario(h: Harness): Promise<ScenarioRow[]> {
  const shape = burstShape(h.options);
  return steadyLoadSteps(h, "bursts", [shape], h.options.batchFrames);
}

// --- 7: single frames

function singleFrameLoads(o: BenchOptions): Array<{ rate: number; sockets: number; seconds: number }> {
  if (o.quick) return [{ rate: 100, sockets: 50, seconds: 1 }];
  return [{ rate: 200, sockets: 100, seconds: o.rateSeconds }, { rate: 500, sockets: 100, seconds: o.rateSeconds }];
}

/** Clients that did not opt into batch frames (v1 clients): one frame per event per socket. */
async function singleFrameScenario(h: Harness): Promise<ScenarioRow[]> {
  return steadyLoadSteps(h, "single-frames", singleFrameLoads(h.options), false);
}

// --- 8: rate sweep

function sweepShape(o: BenchOptions): { rates: number[]; watchers: number; seconds: number } {
  return o.quick ? { rates: [10, 100], watchers: 50, seconds: 1 } : { rates: o.rates, watchers: o.sweepWatchers, seconds: o.rateSeconds };
}

/**
 * The same watchers under each rate in turn (batch frames unless --single-frames): the instrument for "the hub's
 * CPU per watcher-second stays flat across rates". Each row also carries the spread of that figure over the rates.
 */
async function rateSweepScenario(h: Harness): Promise<ScenarioRow[]> {
  const { rates, watchers, seconds } = sweepShape(h.options);
  return steadyLoadSteps(h, "rate-sweep", rates.map((rate) => ({ rate, sockets: watchers, seconds })), h.options.batchFrames);
}

/**
 * Steady loads to lobby sockets, each target in turn: sockets opened once per socket count and kept across
 * the loads that share it. Rows are per load and target, headline the delivery p99 from production.
 */
async function steadyLoadSteps(h: Harness, scenario: string, loads: Array<{ rate: number; sockets: number; seconds: number }>, batch: boolean): Promise<ScenarioRow[]> {
  const results: ScenarioRow[] = [];
  for (const target of h.targets) {
    // Rows measured on the sockets open now, which get the peak memory of those sockets' lifetime.
    let open: { sockets: number; rows: ScenarioRow[] } | undefined;
    const closeOpen = async () => {
      if (!open) return;
      await closeSockets(h);
      const peakRssMb = h.memory.stop();
      for (const row of open.rows) row.peakRssMb = peakRssMb;
      open = undefined;
    };
    for (const load of loads) {
      if (!fits(target, load.sockets, scenario)) continue;
      if (open?.sockets !== load.sockets) {
        await closeOpen();
        h.memory.start(() => memoryGroups(h, target));
        await openSockets(h, target, lobbySpecs(load.sockets, h.clients.length), batch);
        open = { sockets: load.sockets, rows: [] };
      }
      const outcome = await profiled(h, target, `${scenario}-${load.rate}-${load.sockets}`, () => steadyLoad(h, target, load.rate, load.seconds, () => 0));
      const step = `${load.rate}/s × ${load.sockets}`;
      const row: ScenarioRow = { scenario, step, target: target.name, headline: { label: "delivery p99", ms: outcome.delivery.p99 }, ...load, batchFrames: batch, ...outcome };
      results.push(row);
      open.rows.push(row);
      note(`${scenario} ${target.name} ${step}: delivery p99 ${outcome.delivery.p99} ms, lost ${outcome.lost}, sent ${outcome.sentRate}/s`);
    }
    await closeOpen();
  }
  return results;
}

// --- 9: coalescing

/**
 * The rate sweep on fresh instances of ours, one per flush cadence: how the cadence trades latency for frames per
 * socket and CPU per watcher-second. Prints, per cadence, that figure's spread over the rates.
 */
async function coalescingScenario(h: Harness): Promise<ScenarioRow[]> {
  if (!h.ours) {
    note("coalescing: not measured (only ours has a flush cadence; add ours to --target)");
    return [];
  }
  const { rates, watchers, seconds } = sweepShape(h.options);
  const cadences = h.options.quick ? ["0", "adaptive"] : h.options.cadences;
  const results: ScenarioRow[] = [];
  for (const cadence of cadences) {
    const instance = await h.ours({ FLUSH_CADENCE_MS: cadence });
    const target = instance.target;
    forgetMembers(target);
    const rows: ScenarioRow[] = [];
    try {
      h.memory.start(() => memoryGroups(h, target));
      await openSockets(h, target, lobbySpecs(watchers, h.clients.length), true);
      for (const rate of rates) {
        const outcome = await steadyLoad(h, target, rate, seconds, () => 0);
        const step = `${cadence === "adaptive" ? "adaptive" : `${cadence} ms`}: ${rate}/s × ${watchers}`;
        rows.push({ scenario: "coalescing", step, target: "ours", headline: { label: "delivery p99", ms: outcome.delivery.p99 }, cadence, rate, sockets: watchers, seconds, ...outcome });
        const figures = usageFigures(outcome.usage);
        note(`coalescing ${step}: p99 ${outcome.delivery.p99} ms, ${figures.framesPerSocketSecond} frames/socket/s, ${figures.serverUsPerWatcherSecond} µs/watcher-s, lost ${outcome.lost}`);
      }
      await closeSockets(h);
      const peakRssMb = h.memory.stop();
      for (const row of rows) row.peakRssMb = peakRssMb;
    } finally {
      await instance.stop();
    }
    const perWatcherSecond = rows.map((row) => usageFigures(row.usage as Usage).serverUsPerWatcherSecond);
    const mid = (Math.max(...perWatcherSecond) + Math.min(...perWatcherSecond)) / 2;
    const spreadPct = Math.round(((Math.max(...perWatcherSecond) - mid) / mid) * 100);
    note(`coalescing ${cadence}: server µs per watcher-second over ${rates.join(", ")}/s = ${perWatcherSecond.join(", ")} (±${spreadPct} % around the middle)`);
    for (const row of rows) row.cpuPerWatcherSecondSpreadPct = spreadPct;
    results.push(...rows);
  }
  return results;
}

// --- 10: relays

function relayShape(o: BenchOptions): { counts: number[]; watchers: number; rate: number; seconds: number } {
  return o.quick ? { counts: [0, 2], watchers: 60, rate: 50, seconds: 1 } : { counts: o.relayCounts, watchers: o.relayWatchers, rate: o.relayRate, seconds: o.rateSeconds };
}

/**
 * The same watchers and load with every socket on the hub (0) and on K relays, each on a fresh instance of ours
 * built unminified and profiled: the hub's sends per flush and tokens verified, each relay's, and where the
 * isolate's CPU went (hub, relays, the Worker), from the profile's samples (bench/profile.ts). One workerd runs
 * every object on one thread here, so what this shows is the split of the work, not a wall-clock gain.
 */
async function relayScenario(h: Harness): Promise<ScenarioRow[]> {
  if (!h.ours) {
    note("relays: not measured (add ours to --target)");
    return [];
  }
  const shape = relayShape(h.options);
  const results: ScenarioRow[] = [];
  mkdirSync(join(ROOT, "bench/results"), { recursive: true });
  for (const relays of shape.counts) {
    const instance = await h.ours({ RELAY_SHARDS: String(relays), RELAY_MAX_SOCKETS: String(WORKERD_MAX_SOCKETS) }, { profiled: true });
    const target = instance.target;
    forgetMembers(target);
    const bundle = readFileSync(instance.bundle, "utf8");
    try {
      h.memory.start(() => memoryGroups(h, target));
      const connectProfile = await startProfiler(instance.inspectorPort!, WORKER_NAME);
      const connectCpu = cpuMs(target.pids);
      const opened = await openSockets(h, target, lobbySpecs(shape.watchers, h.clients.length), true);
      const connectCpuMs = cpuMs(target.pids) - connectCpu;
      await connectProfile.stop(join(ROOT, `bench/results/relays-${relays}-connect.cpuprofile`));
      const connectShares = objectShares(connectProfile.last!, bundle);
      const before = await guildStats(target);
      const loadProfile = await startProfiler(instance.inspectorPort!, WORKER_NAME);
      const outcome = await steadyLoad(h, target, shape.rate, shape.seconds, () => 0);
      await loadProfile.stop(join(ROOT, `bench/results/relays-${relays}-load.cpuprofile`));
      const loadShares = objectShares(loadProfile.last!, bundle);
      const after = await guildStats(target);
      await closeSockets(h);
      const flushes = after.hub.flushes - before.hub.flushes;
      const hubFrames = after.hub.sends - before.hub.sends + (after.hub.relaySends - before.hub.relaySends);
      const relayRows = after.relays.map((relay) => {
        const earlier = before.relays.find((r) => r.name === relay.name);
        return { name: relay.name, sockets: relay.sockets, tokensVerified: relay.tokensVerified, sends: relay.sends - (earlier?.sends ?? 0), flushes: relay.flushes - (earlier?.flushes ?? 0) };
      });
      const serverCpuMs = outcome.usage.serverCpuMs;
      const detail = {
        relays, sockets: shape.watchers, rate: shape.rate, seconds: shape.seconds, connectAuthMs: Math.round(opened.ms),
        hub: { flushes, sendsPerFlush: flushes === 0 ? 0 : Math.round((hubFrames / flushes) * 100) / 100, tokensVerified: after.hub.tokensVerified, sends: hubFrames },
        relayObjects: relayRows,
        connect: { cpuMs: Math.round(connectCpuMs), hubCpuMs: Math.round(connectShares.hub * connectCpuMs), relaysCpuMs: Math.round(connectShares.relays * connectCpuMs), workerCpuMs: Math.round(connectShares.worker * connectCpuMs), shares: connectShares },
        load: { cpuMs: Math.round(serverCpuMs), hubCpuMs: Math.round(loadShares.hub * serverCpuMs), relaysCpuMs: Math.round(loadShares.relays * serverCpuMs), workerCpuMs: Math.round(loadShares.worker * serverCpuMs), shares: loadShares },
      };
      results.push({ scenario: "relays", step: `${relays} relays: ${shape.rate}/s × ${shape.watchers}`, target: "ours", headline: { label: "delivery p99", ms: outcome.delivery.p99 }, ...outcome, ...detail, peakRssMb: h.memory.stop() });
      note(
        `relays ${relays}: p99 ${outcome.delivery.p99} ms, lost ${outcome.lost}; hub ${detail.hub.sendsPerFlush} sends/flush over ${flushes} flushes, ${detail.hub.tokensVerified} tokens verified; ` +
          `relays ${relayRows.map((r) => `${r.sockets} sockets/${r.tokensVerified} tokens/${r.sends} sends`).join(", ") || "none"}; ` +
          `load CPU ${detail.load.cpuMs} ms: hub ${detail.load.hubCpuMs}, relays ${detail.load.relaysCpuMs}, worker ${detail.load.workerCpuMs}; ` +
          `connect CPU ${detail.connect.cpuMs} ms: hub ${detail.connect.hubCpuMs}, relays ${detail.connect.relaysCpuMs}, worker ${detail.connect.workerCpuMs}`,
      );
    } finally {
      await instance.stop();
    }
  }
  return results;
}

// --- 4: the full path

function fullPathLoads(o: BenchOptions): Array<{ rate: number; sockets: number; seconds: number }> {
  if (o.quick) return [{ rate: 50, sockets: 50, seconds: 2 }];
  const seconds = o.rateSeconds;
  return [
    { rate: 200, sockets: 100, seconds },
    { rate: 500, sockets: 100, seconds },
    { rate: 200, sockets: 1_000, seconds },
    { rate: 100, sockets: 2_000, seconds },
  ];
}

/**
 * The Discord simulator dispatches VOICE_STATE_UPDATEs (a new user joining each time), gateway-node (its source,
 * through tsx) turns them into signed POSTs, and the hub fans them out. Each event is timed from the simulator's
 * dispatch and matched on the sockets by its user (only the hub knows its seq).
 */
async function fullPathScenario(h: Harness): Promise<ScenarioRow[]> {
  const results: ScenarioRow[] = [];
  for (const target of h.targets) {
    const sim = await startDiscordSimulator({ botToken: BOT_TOKEN, guildId: GUILD, channels: [{ name: "Bench voice" }] });
    const channelId = sim.state().channels.find((c) => c.type === 2)!.id;
    const cpuProfile = h.options.profile ? ["--cpu-prof", `--cpu-prof-dir=${join(ROOT, "bench/results")}`] : [];
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
      for (const load of fullPathLoads(h.options)) {
        if (!fits(target, load.sockets, "full path")) continue;
        h.memory.start(() => ({ ...memoryGroups(h, target), gateway: processTree(gateway.pid!) }));
        await openSockets(h, target, lobbySpecs(load.sockets, h.clients.length));
        const window = await mark(h, target);
        const cpuBefore = cpuMs(processTree(gateway.pid!));
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
        const outcome = await collect(h, window, sent, 120_000, load.seconds);
        const gatewayCpuMs = cpuMs(processTree(gateway.pid!)) - cpuBefore;
        await closeSockets(h);
        const delivery = summarise(outcome.delivery);
        const result = {
          scenario: "full-path", step: `${load.rate}/s × ${load.sockets}`, target: target.name, headline: { label: "delivery p99 from the dispatch", ms: delivery.p99 },
          usage: outcome.usage, ...load, sent: sent.length,
          delivery, fanout: summarise(histogramOf(outcome.fanout)),
          expected: outcome.expected, lost: outcome.lost,
          gatewayCpuMsPerEvent: Math.round((gatewayCpuMs / sent.length) * 1000) / 1000,
          peakRssMb: h.memory.stop(),
        };
        note(`full path ${target.name} ${load.rate}/s × ${load.sockets}: delivery p99 ${delivery.p99} ms, lost ${result.lost}, gateway ${result.gatewayCpuMsPerEvent} ms CPU/event, RSS ${result.peakRssMb.gateway} MB`);
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

// --- 5: hibernation

/** N lobby sockets; one event warm, then the object hibernated (evicted, sockets kept) and one event. */
async function hibernationScenario(h: Harness): Promise<ScenarioRow[]> {
  const sockets = h.options.quick ? 100 : 5_000;
  const results: ScenarioRow[] = [];
  for (const target of h.targets) {
    if (!fits(target, sockets, "hibernation")) continue;
    h.memory.start(() => memoryGroups(h, target));
    await openSockets(h, target, lobbySpecs(sockets, h.clients.length));
    const warm = [];
    for (let r = 0; r < 3; r++) warm.push(await timedEvents(h, target, [voiceEvent(h, target, 0, "joined")], 30_000));
    let woken;
    if (target.hibernate) {
      await target.hibernate().catch((error: unknown) => {
        // Already hibernated on its own (idle for ~10 s): the next event wakes it just the same.
        if (!String(error).includes("not currently running")) throw error;
      });
      woken = await timedEvents(h, target, [voiceEvent(h, target, 0, "joined")], 30_000);
    }
    await closeSockets(h);
    const firstWarm = median(warm.map((w) => w.first[0]!));
    const lastWarm = median(warm.map((w) => w.fanout[0]!));
    const detail = {
      sockets,
      warm: { firstMs: round(firstWarm), lastMs: round(lastWarm) },
      afterWake: woken ? { firstMs: round(woken.first[0]!), lastMs: round(woken.fanout[0]!) } : "not measured (no hibernation, or no state kept across it)",
      firstOverWarmMs: woken ? round(woken.first[0]! - firstWarm) : undefined,
      lost: warm.reduce((total, w) => total + w.lost, woken?.lost ?? 0),
      extra: warm.reduce((total, w) => total + w.extra, woken?.extra ?? 0),
      peakRssMb: h.memory.stop(),
    };
    note(`hibernation ${target.name}: ${JSON.stringify(detail.afterWake)} vs warm ${JSON.stringify(detail.warm)}`);
    results.push({ scenario: "hibernation", step: `N=${sockets} warm`, target: target.name, headline: { label: "last delivery", ms: round(lastWarm) }, ...detail });
    if (woken) results.push({ scenario: "hibernation", step: `N=${sockets} after wake`, target: target.name, headline: { label: "last delivery", ms: round(woken.fanout[0]!) } });
  }
  return results;
}

// --- 6: reconnect storm

function reconnectShape(o: BenchOptions): { sockets: number; missed: number } {
  return o.quick ? { sockets: 200, missed: 10 } : { sockets: 5_000, missed: 20 };
}

/** N sockets drop at once, `missed` events are published, and all resume with `since` at once. */
async function reconnectScenario(h: Harness): Promise<ScenarioRow[]> {
  const { sockets, missed } = reconnectShape(h.options);
  const results: ScenarioRow[] = [];
  for (const target of h.targets) {
    if (!target.resumes) {
      note(`reconnect ${target.name}: not measured (it keeps no replay buffer)`);
      continue;
    }
    if (!fits(target, sockets, "reconnect")) continue;
    h.memory.start(() => memoryGroups(h, target));
    await openSockets(h, target, lobbySpecs(sockets, h.clients.length));
    await Promise.all(h.clients.map((c) => c.ask({ type: "drop" }, "dropped")));
    await publish(target, Array.from({ length: missed }, () => voiceEvent(h, target, 0, "joined")));
    const reports: ResumeReport[] = await Promise.all(
      h.clients.map((c) =>
        c.ask({ type: "resume", url: wsUrl(target), concurrency: pendingPerClient(h), timeoutMs: 60_000, expectSeq: target.seq }, "resumed").then((m) => m.report),
      ),
    );
    await closeSockets(h);
    const allResumedMs = Math.round(Math.max(...reports.map((r) => r.ms)));
    results.push({
      scenario: "reconnect", step: `N=${sockets}, ${missed} missed`, target: target.name, headline: { label: "all resumed exactly", ms: allResumedMs },
      sockets,
      missed,
      allResumedMs,
      exact: sum(reports, (r) => r.exact),
      wrong: sum(reports, (r) => r.wrong),
      snapshots: sum(reports, (r) => r.snapshots),
      failed: sum(reports, (r) => r.failed),
      peakRssMb: h.memory.stop(),
    });
    note(`reconnect ${target.name}: ${sum(reports, (r) => r.exact)}/${sockets} exact in ${allResumedMs} ms`);
  }
  return results;
}
