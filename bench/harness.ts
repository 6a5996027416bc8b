/**
 * The benchmark's machinery, shared by every scenario (bench/scenarios.ts): the targets, the client processes,
 * opening and closing sockets, publishing, steady load, and the measured window: latency and loss from the
 * clients, and what the window cost the server, the clients and the driver (bench/usage.ts).
 */
import { fork, type ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { hubRequestHeaders, type IdentifiedInternalEvent, type StatsResponse } from "../protocol/index.js";
import { GUILD, ROOT } from "./bench-ids.js";
import { nowMs, type CollectReport, type FromClient, type OpenReport, type SentEvent, type SocketSpec, type ToClient } from "./bench-shared.js";
import { WORKER_NAME } from "./edge-target.js";
import { Histogram, summarise } from "./histogram.js";
import { startProfiler, type IsolateProfiler } from "./profile.js";
import { rssBytes } from "./soak-memory.js";
import { cpuMs, machineBusyMs, type Usage } from "./usage.js";

export const SECRET = "bench-hub-secret-0123456789abcdef";
export const ISSUER = "bench";
/** Sockets per client process: well under the 20,000 descriptors a process may hold here. */
export const SOCKETS_PER_CLIENT = 5_000;
/** Sockets waiting for auth at once, over all client processes: under the hub's 1,000 pending limit. */
const PENDING_SOCKETS = 800;
/**
 * The most sockets workerd can hold here: it spends two file descriptors per WebSocket (the accepted one and a
 * dup), and this machine's hard limit is 20,000 per process, which a benchmark cannot raise. Larger N (--sizes)
 * run for the baseline only, which itself stops just short of 20,000 (one descriptor per socket).
 */
export const WORKERD_MAX_SOCKETS = 9_900;
const ROOM_BASE = 300_000_000_000_000_000n;
export const USER_BASE = 500_000_000_000_000_000n;
const MB = 1024 * 1024;

export const TARGET_NAMES = ["ours", "bare", "baseline"] as const;
export type TargetName = (typeof TARGET_NAMES)[number];

export interface Target {
  name: TargetName;
  url: string;
  /** The last seq this target assigned (each event the driver sends yields exactly one). */
  seq: number;
  /** The server's processes: the window's server CPU and the peak RSS are theirs. */
  pids: number[];
  /** The most sockets it can hold here. */
  maxSockets: number;
  /** Whether it keeps a replay buffer, so a socket resuming with `since` gets exactly what it missed. */
  resumes: boolean;
  /** Evicts the object with its sockets hibernated (workerd targets that survive it). */
  hibernate?: () => Promise<void>;
}

/** The run's options, read once in bench/bench.ts. */
export interface BenchOptions {
  quick: boolean;
  /** Scenario 1's socket counts. */
  sizes: number[];
  /** Clients opt into batch frames (scenarios that test single frames open their own sockets without). */
  batchFrames: boolean;
  /** How long the steady-load scenarios publish, unless a scenario's quick shape says otherwise. */
  rateSeconds: number;
  /** The rate sweep's event rates and its watchers. */
  rates: number[];
  sweepWatchers: number;
  profile: boolean;
  /** workerd's inspector, for --profile of our isolate. */
  inspectorPort?: number;
  /** The coalescing scenario's flush cadences (FLUSH_CADENCE_MS values). */
  cadences: string[];
  /** The relay scenario's relay counts (RELAY_SHARDS; 0: every socket on the hub), watchers and rate. */
  relayCounts: number[];
  relayWatchers: number;
  relayRate: number;
}

/** A fresh instance of our Worker with further settings (its own workerd), for scenarios that compare settings. */
export interface OursInstance {
  target: Target;
  /** The bundle it runs (unminified when asked: its profile is attributed by source file). */
  bundle: string;
  inspectorPort?: number;
  stop(): Promise<void>;
}
export type OursFactory = (settings: Record<string, string>, options?: { profiled?: boolean }) => Promise<OursInstance>;

export function note(line: string): void {
  console.log(`[bench] ${line}`);
}

// --- client processes

export class ClientProcess {
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

export class PeakMemory {
  private peaks = new Map<string, number>();
  private timer?: NodeJS.Timeout;

  start(groups: () => Record<string, number[]>): void {
    clearInterval(this.timer);
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

export interface Harness {
  clients: ClientProcess[];
  targets: Target[];
  /** Starts our Worker anew with other settings; undefined when the run does not include ours. */
  ours?: OursFactory;
  memory: PeakMemory;
  nextUser: number;
  options: BenchOptions;
}

export function memoryGroups(h: Harness, target: Target): Record<string, number[]> {
  const groups: Record<string, number[]> = { [target.name === "baseline" ? "baselineHub" : "workerd"]: target.pids, driver: [process.pid] };
  h.clients.forEach((c, i) => (groups[`client${i}`] = [c.child.pid!]));
  return groups;
}

/** Runs `work`, CPU-profiling our isolate meanwhile when --profile is given and the target is ours. */
export async function profiled<T>(h: Harness, target: Target, label: string, work: () => Promise<T>): Promise<T> {
  let profiler: IsolateProfiler | undefined;
  if (h.options.inspectorPort && target.name === "ours") profiler = await startProfiler(h.options.inspectorPort, WORKER_NAME);
  const result = await work();
  if (profiler) {
    mkdirSync(join(ROOT, "bench/results"), { recursive: true });
    const top = await profiler.stop(join(ROOT, `bench/results/${label}-ours.cpuprofile`));
    note(`profile ${label}: ${top.map((t) => `${t.selfPct}% ${t.fn}`).join("; ")}`);
  }
  return result;
}

// --- the measured window

/** Where a measured window started: the clients' marks, and the server's and the driver's CPU so far. */
export interface Window {
  target: Target;
  at: number;
  serverCpuMs: number;
  driverCpu: NodeJS.CpuUsage;
  machineBusyMs: number;
}

export interface Timed {
  /** Per event, POST → last arrival (ms). */
  fanout: number[];
  /** Per event, POST → first arrival (ms). */
  first: number[];
  delivery: Histogram;
  lost: number;
  extra: number;
  expected: number;
  usage: Usage;
}

/** Starts a window: the clients forget what arrived before it and start counting frames and their CPU. */
export async function mark(h: Harness, target: Target): Promise<Window> {
  await Promise.all(h.clients.map((c) => c.ask({ type: "mark" }, "marked")));
  return { target, at: nowMs(), serverCpuMs: cpuMs(target.pids), driverCpu: process.cpuUsage(), machineBusyMs: machineBusyMs() };
}

/**
 * Ends a window once every socket has what `sent` says it should (or `timeoutMs` passed). `loadSeconds` is how
 * long the load ran, for the per-watcher-second figures (default: the window's own length).
 */
export async function collect(h: Harness, window: Window, sent: SentEvent[], timeoutMs: number, loadSeconds?: number): Promise<Timed> {
  const reports: CollectReport[] = await Promise.all(h.clients.map((c) => c.ask({ type: "collect", events: sent, timeoutMs }, "collected").then((m) => m.report)));
  const serverCpuMs = cpuMs(window.target.pids) - window.serverCpuMs;
  const driverCpu = process.cpuUsage(window.driverCpu);
  const machineMs = machineBusyMs() - window.machineBusyMs;
  const wallMs = nowMs() - window.at;
  const delivery = new Histogram();
  for (const report of reports) delivery.merge(report.histogram);
  const fanout = sent.map((event, i) => Math.max(...reports.map((r) => r.lastArrival[i]!)) - event.sentAt);
  const first = sent.map((event, i) => Math.min(...reports.map((r) => r.firstArrival[i] || Infinity)) - event.sentAt);
  const usage: Usage = {
    wallMs,
    serverCpuMs,
    driverCpuMs: (driverCpu.user + driverCpu.system) / 1000,
    clientCpuMs: reports.map((r) => r.cpuMs),
    machineBusyMs: machineMs,
    frames: sum(reports, (r) => r.frames),
    deliveries: delivery.total,
    watcherSeconds: sum(reports, (r) => r.sockets) * (loadSeconds ?? wallMs / 1000),
  };
  return { fanout, first, delivery, lost: sum(reports, (r) => r.lost), extra: sum(reports, (r) => r.extra), expected: sum(reports, (r) => r.expected), usage };
}

/** Publishes `events` in one POST and waits until every socket has what it should. */
export async function timedEvents(h: Harness, target: Target, events: Pending[], timeoutMs: number): Promise<Timed> {
  const window = await mark(h, target);
  const sent = await publishTimed(target, events);
  return collect(h, window, sent, timeoutMs);
}

/**
 * `rate` events/s for `seconds` s, produced every 20 ms and sent as a gateway does: one POST in flight, each
 * carrying everything queued meanwhile (at most 500). An event is timed from when it was produced. Voice joins
 * and leaves alternate, spread over rooms by `roomOf`.
 */
export async function steadyLoad(h: Harness, target: Target, rate: number, seconds: number, roomOf: (k: number) => number) {
  const window = await mark(h, target);
  const tickMs = 20;
  const ticks = Math.round((seconds * 1000) / tickMs);
  // Events due by the end of tick t, so a rate below one event per tick is kept exactly too.
  const dueBy = (t: number) => Math.floor(((t + 1) * rate * tickMs) / 1000);
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
  let produced = 0;
  for (let t = 0; t < ticks; t++) {
    const wait = start + t * tickMs - nowMs();
    if (wait > 0) await sleep(wait);
    const at = nowMs();
    for (; produced < dueBy(t); produced++) {
      queue.push({ event: voiceEvent(h, target, roomOf(produced), produced % 2 === 0 ? "joined" : "left"), at });
    }
  }
  producing = false;
  await sender;
  const sendingMs = nowMs() - start;
  sent.sort((a, b) => a.seq - b.seq);
  const outcome = await collect(h, window, sent, 120_000, seconds);
  return {
    sent: sent.length,
    sentRate: Math.round(sent.length / (sendingMs / 1000)),
    delivery: summarise(outcome.delivery),
    fanout: summarise(histogramOf(outcome.fanout)),
    expected: outcome.expected,
    lost: outcome.lost,
    extra: outcome.extra,
    deliveriesPerSecond: Math.round(outcome.delivery.total / ((Math.max(...outcome.fanout.map((ms, i) => ms + sent[i]!.sentAt)) - start) / 1000)),
    usage: outcome.usage,
  };
}

// --- sockets

export function wsUrl(target: Target): string {
  return `${target.url.replace(/^http/, "ws")}/ws`;
}

export function pendingPerClient(h: Harness): number {
  return Math.floor(PENDING_SOCKETS / h.clients.length);
}

/** N lobby sockets, spread evenly over the client processes. */
export function lobbySpecs(n: number, processes: number): SocketSpec[][] {
  return spread(Array.from({ length: n }, () => ({ index: 0 })), processes);
}

/** Deals specs to processes round-robin and numbers each by its process's token range (one user per socket). */
export function spread(specs: SocketSpec[], processes: number): SocketSpec[][] {
  const dealt: SocketSpec[][] = Array.from({ length: processes }, () => []);
  specs.forEach((spec, i) => {
    const p = i % processes;
    dealt[p]!.push({ ...spec, index: p * SOCKETS_PER_CLIENT + dealt[p]!.length });
  });
  return dealt;
}

/** Opens and authenticates sockets; `batch` (default: the run's --single-frames choice) opts them into batch frames. */
export async function openSockets(h: Harness, target: Target, dealt: SocketSpec[][], batch = h.options.batchFrames): Promise<OpenReport> {
  const start = nowMs();
  const reports = await Promise.all(
    h.clients.map((c, p) => c.ask({ type: "open", url: wsUrl(target), sockets: dealt[p] ?? [], batch, concurrency: pendingPerClient(h) }, "opened").then((m) => m.report)),
  );
  const failed = sum(reports, (r) => r.failed);
  const reasons = reports.flatMap((r) => Object.entries(r.reasons).map(([why, n]) => `${n}x ${why}`));
  if (failed > 0) throw new Error(`${target.name}: ${failed} sockets failed to connect and authenticate: ${reasons.join(", ")}`);
  // Every socket's snapshot names the hub's seq: the driver counts from there (the full path's gateway
  // publishes events the driver does not count, such as its guild.sync).
  target.seq = Math.min(...reports.filter((r) => r.opened > 0).map((r) => r.minSeq));
  return { opened: sum(reports, (r) => r.opened), failed, reasons: {}, ms: nowMs() - start, minSeq: Math.min(...reports.map((r) => r.minSeq)) };
}

export async function closeSockets(h: Harness): Promise<void> {
  await Promise.all(h.clients.map((c) => c.ask({ type: "close" }, "marked")));
  await sleep(h.options.quick ? 200 : 1_000); // let the hub see the closes before the next scenario's sockets arrive
}

// --- events

export type Pending = IdentifiedInternalEvent & { event: "room.created" | "voice.joined" | "voice.left" };

export function roomId(room: number): string {
  return String(ROOM_BASE + BigInt(room));
}

export function roomCreated(room: number): Pending {
  return { id: `bench:room:${room}`, event: "room.created", payload: { guildId: GUILD, channelId: roomId(room), name: `Bench ${room}`, userLimit: 0 } };
}

/** Per target and room, who joined and has not left: a leave is always of someone that target saw join. */
const joinedPerRoom = new Map<string, string[]>();

/** A fresh instance of a target starts with empty rooms: forget who joined the last one's. */
export function forgetMembers(target: Target): void {
  for (const key of [...joinedPerRoom.keys()]) if (key.startsWith(`${target.name}:`)) joinedPerRoom.delete(key);
}

/** A join by a new user (exactly one app event), or the leave of the last user who joined that room (one event). */
export function voiceEvent(h: Harness, target: Target, room: number, kind: "joined" | "left"): Pending {
  const key = `${target.name}:${room}`;
  const members = joinedPerRoom.get(key) ?? [];
  joinedPerRoom.set(key, members);
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

/** The counters of our hub and relays (POST /internal/stats). */
export async function guildStats(target: Target): Promise<StatsResponse> {
  const body = JSON.stringify({ guildId: GUILD });
  const response = await fetch(`${target.url}/internal/stats`, { method: "POST", headers: await hubRequestHeaders(SECRET, body), body });
  if (!response.ok) throw new Error(`${target.name}: POST /internal/stats answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as StatsResponse;
}

/** Sends one signed POST; each event gets the target's next seq (the driver only sends events that yield one). */
export async function publish(target: Target, events: Pending[]): Promise<void> {
  target.seq += events.length;
  const body = JSON.stringify({ events });
  const response = await fetch(`${target.url}/internal/events`, { method: "POST", headers: await hubRequestHeaders(SECRET, body), body });
  if (!response.ok) throw new Error(`${target.name}: POST /internal/events answered ${response.status}: ${await response.text()}`);
  await response.arrayBuffer();
}

// --- small things

export function histogramOf(values: number[]): Histogram {
  const histogram = new Histogram();
  values.forEach((v) => histogram.add(v));
  return histogram;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

export function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

export function sum<T>(items: T[], of: (item: T) => number): number {
  return items.reduce((total, item) => total + of(item), 0);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
