/**
 * Soak test: one GuildHub under `wrangler dev` (fresh state on a free 127.0.0.1 port) holding S sockets for N
 * minutes of steady voice traffic, with periodic faults, while the memory of every process is sampled.
 *
 *   npm run soak -- --minutes 3                 # 2,000 sockets, 20 events/s
 *   npm run soak -- --quick                     # 300 sockets, 1 minute (CI-sized)
 *   npm run soak -- --minutes 10 --sockets 1000 --rate 50
 *
 * - A client process (bench/soak-client.ts, forked so its memory is its own) opens the sockets in batches, each
 *   batch authenticated before the next (the hub admits 1,000 unauthenticated sockets), one user per socket.
 * - A publisher posts signed internal events at --rate: room.created for a few rooms, then voice.joined /
 *   voice.left / moves (both as left+joined and as a bare joined) and a few no-ops (stale left, repeated join)
 *   for a pool of users, each with a unique id.
 * - Every --fault-every seconds: 5% of the sockets are cut (TCP dropped, no close handshake) and resume with
 *   `since` = their last seq after up to 2 s; a batch of already-sent ids is replayed and must be acknowledged
 *   as duplicates only.
 * - Checks: every socket's seq stream has no duplicate and no gap; a resume gets exactly the missed events (a
 *   snapshot only outside the replay buffer); at the end every socket's presence equals GET /rooms, and so does
 *   the publisher's own model of what it sent.
 * - Memory: every 5 s the RSS of workerd (the processes under wrangler named workerd), wrangler's node
 *   processes, the client and this driver. A table at the end; JSON in bench/results/soak-<timestamp>.json.
 * Exits 1 if an invariant broke or a bound below was exceeded.
 */
import { fork, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { hubRequestHeaders, InternalEventsResponse, RoomsResponse, type IdentifiedInternalEvent } from "../protocol/index.js";
import { numberOption } from "./options.js";
import { isolatedWorkerVars, startWranglerDev, type WranglerDev } from "../dev/stack/wrangler-dev.js";
import { rssBytes, sampleWranglerTree } from "./soak-memory.js";
import { canonicalPresence, presenceFromRooms, type ClientReport, type FromClient, type Progress, type RoomView, type ToClient } from "./soak-shared.js";
import { AUDIENCE, GUILD, ROOT } from "./bench-ids.js";

// --- bounds, calibrated on this project's 2-core dev box with other work running (wrangler 4.155.0 / workerd
// 1.20261023.1). An RSS bound is base + per-1,000-sockets, so --quick is held to proportionally tighter ones.
const MB = 1024 * 1024;
/**
 * Peak RSS per process, in MB. Measured (see bench/results/*.json of the runs named in the commit message):
 * - workerd (both processes: wrangler dev runs the Worker's and its own proxy's, and every socket crosses both):
 *   ~205 MB idle; 2,000 sockets without deflate peaked at 1,432-1,435 MB (flat ~1,370 MB once open: ~0.58 MB
 *   per socket); 300 sockets with permessage-deflate 560-574 MB (~1.2 MB per socket: the per-socket zlib state).
 *   2,000 sockets with deflate at --rate 5 peaked at 1,614 MB (the Worker's workerd ~1,110, the proxy's ~495).
 *   Bound: 300 + 900 per 1,000 sockets without deflate, 300 + 1,500 with it: ~1.3-1.5x the measurements at
 *   300 and 2,000 plain sockets, ~2x at 2,000 deflate sockets (per-socket cost is not linear: generous there).
 * - wrangler's node processes: 320-355 MB whatever the load. Bound 500.
 * - client: 220 MB for 300 deflate sockets, ~300 MB for 2,000 plain ones, ~850 MB for 2,000 deflate ones.
 *   Bound 250 + 250 per 1,000 sockets (+ 400 per 1,000 with deflate: Node's zlib contexts).
 * - driver: 85-115 MB. Bound 200.
 */
const RSS_BOUNDS_MB: Record<ProcessName, { base: number; perThousandSockets: number; perThousandDeflate: number }> = {
  workerd: { base: 300, perThousandSockets: 900, perThousandDeflate: 600 },
  workerdAnon: { base: 200, perThousandSockets: 900, perThousandDeflate: 600 },
  wrangler: { base: 500, perThousandSockets: 0, perThousandDeflate: 0 },
  client: { base: 250, perThousandSockets: 250, perThousandDeflate: 400 },
  driver: { base: 200, perThousandSockets: 0, perThousandDeflate: 0 },
};
/**
 * Growth of RSS from the warm-up mark (1 minute after every socket is open, or half the run if shorter) to the
 * end, for the processes whose growth would mean a leak on the hub side. Measured: workerd -0.7% (2,000 plain
 * sockets, 1 min), +7.2% (2,000 plain sockets, 3 min, box saturated: 4-6 s delivery lag, so frames queue in
 * workerd), +3.2% (--quick); wrangler -3.7% to +1.9%. Bound 20%: above that noise, and far below a leak of
 * anything per delivery (20 events/s x 2,000 sockets is 2.4 M deliveries a minute).
 */
const GROWTH_BOUNDS_PCT = { workerd: 20, workerdAnon: 20, wrangler: 20 } as const;
/** The publisher must reach this share of --rate over the run (else the soak did not test what it says). */
const MIN_RATE_SHARE = 0.9;

const SECRET = "soak-hub-secret-0123456789abcdef";
const ISSUER = "soak";
const ROOMS = 5;
const VOICE_USERS = 300;
const SAMPLE_EVERY_MS = 5_000;
const CUT_FRACTION = 0.05;
const CUT_MAX_DELAY_MS = 2_000;
const DUPLICATE_BATCH = 20;

const { values } = parseArgs({
  options: {
    minutes: { type: "string" },
    sockets: { type: "string" },
    rate: { type: "string" },
    batch: { type: "string" },
    "fault-every": { type: "string" },
    quick: { type: "boolean", default: false },
    /** "on" (default): sockets offer permessage-deflate like every browser, and workerd accepts it. */
    deflate: { type: "string", default: "on" },
  },
});
const quick = values.quick ?? false;
const minutes = numberOption("minutes", values.minutes, quick ? 1 : 3);
const socketCount = numberOption("sockets", values.sockets, quick ? 300 : 2_000, { min: 1, integer: true });
const rate = numberOption("rate", values.rate, 20);
const batch = numberOption("batch", values.batch, 100, { min: 1, max: 500, integer: true });
const faultEveryMs = numberOption("fault-every", values["fault-every"], 30) * 1000;
const durationMs = minutes * 60_000;
const deflate = values.deflate !== "off";

const failures: string[] = [];
function fail(what: string): void {
  failures.push(what);
  console.error(`[soak   ] FAIL ${what}`);
}
function note(line: string): void {
  console.log(`[soak   ] ${line}`);
}
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// --- memory sampling

/** workerdAnon is the anonymous part of workerd's RSS (its heaps), where a leak shows without the mapped binary. */
type ProcessName = "workerd" | "workerdAnon" | "wrangler" | "client" | "driver";
const PROCESSES: ProcessName[] = ["workerd", "workerdAnon", "wrangler", "client", "driver"];
interface Sample {
  t: number;
  phase: string;
  rssMb: Record<ProcessName, number>;
  pids: { workerd: number[]; wrangler: number[] };
  /** RSS of each workerd process: wrangler dev runs one for the Worker and one for its own proxy. */
  workerdByPidMb: Record<string, number>;
}
const samples: Sample[] = [];
let phase = "starting";
const progressLog: Array<Progress & { t: number; phase: string }> = [];
function logProgress(progress: Progress): string {
  progressLog.push({ t: Math.round((Date.now() - startedAt) / 1000), phase, ...progress });
  const last = samples.at(-1)?.rssMb;
  return `lag avg ${progress.lagAvgMs} ms max ${progress.lagMaxMs} ms; auth p50 ${progress.authP50Ms} p99 ${progress.authP99Ms} max ${progress.authMaxMs} ms; ` +
    `${progress.unexpectedCloses} unexpected closes, ${progress.violations} violations; RSS workerd ${last?.workerd ?? "-"} MB, client ${last?.client ?? "-"} MB`;
}
const startedAt = Date.now();

function takeSample(worker: WranglerDev, client: ChildProcess | undefined): void {
  const tree = sampleWranglerTree(worker.process.child.pid!);
  const mb = (bytes: number | undefined) => Math.round(((bytes ?? 0) / MB) * 10) / 10;
  samples.push({
    t: Math.round((Date.now() - startedAt) / 100) / 10,
    phase,
    rssMb: {
      workerd: mb(tree.workerd.rssBytes),
      workerdAnon: mb(tree.workerd.anonBytes),
      wrangler: mb(tree.wrangler.rssBytes),
      client: mb(client?.pid ? rssBytes(client.pid) : 0),
      driver: mb(rssBytes(process.pid)),
    },
    pids: { workerd: tree.workerd.pids, wrangler: tree.wrangler.pids },
    workerdByPidMb: Object.fromEntries(tree.workerd.pids.map((pid) => [pid, mb(rssBytes(pid))])),
  });
}

// --- the publisher and its model of the guild

const roomIds = Array.from({ length: ROOMS }, (_, i) => String(300000000000000001n + BigInt(i)));
const voiceUsers = Array.from({ length: VOICE_USERS }, (_, i) => String(400000000000000001n + BigInt(i)));
const model = new Map<string, RoomView>();
const whereIs = new Map<string, string>();
const sent: IdentifiedInternalEvent[] = [];
let nextId = 0;
const hubErrors = { count: 0, samples: [] as string[] };
let accepted = 0;
let duplicatesAcked = 0;

function pick<T>(list: readonly T[]): T {
  return list[Math.floor(Math.random() * list.length)]!;
}

function event(body: Omit<IdentifiedInternalEvent, "id">): IdentifiedInternalEvent {
  return { id: `soak:${startedAt}:${nextId++}`, ...body } as IdentifiedInternalEvent;
}

function joined(userId: string, channelId: string): IdentifiedInternalEvent {
  const from = whereIs.get(userId);
  if (from) model.get(from)!.members.delete(userId);
  const username = `soak-${userId.slice(-4)}`;
  model.get(channelId)!.members.set(userId, { username });
  whereIs.set(userId, channelId);
  return event({ event: "voice.joined", payload: { guildId: GUILD, channelId, userId, username } });
}

function left(userId: string, channelId: string): IdentifiedInternalEvent {
  if (whereIs.get(userId) === channelId) {
    model.get(channelId)!.members.delete(userId);
    whereIs.delete(userId);
  }
  return event({ event: "voice.left", payload: { guildId: GUILD, channelId, userId } });
}

/** One step of voice traffic: one or two events, mostly changes, a few no-ops the hub must swallow. */
function trafficStep(): IdentifiedInternalEvent[] {
  const userId = pick(voiceUsers);
  const current = whereIs.get(userId);
  const other = () => pick(roomIds.filter((id) => id !== current));
  const r = Math.random();
  if (!current) return r < 0.05 ? [left(userId, pick(roomIds))] : [joined(userId, pick(roomIds))];
  if (r < 0.35) return [left(userId, current)];
  if (r < 0.6) {
    const to = other();
    return [left(userId, current), joined(userId, to)];
  }
  if (r < 0.9) return [joined(userId, other())]; // a move as a bare join: the hub emits left then joined
  if (r < 0.95) return [joined(userId, current)]; // a mute toggle: no event
  return [left(userId, other())]; // stale: the user is elsewhere, no event
}

async function post(base: string, events: IdentifiedInternalEvent[]): Promise<InternalEventsResponse> {
  const body = JSON.stringify({ events });
  const response = await fetch(`${base}/internal/events`, { method: "POST", headers: await hubRequestHeaders(SECRET, body), body });
  const text = await response.text();
  if (!response.ok) throw new Error(`POST /internal/events answered ${response.status}: ${text}`);
  return InternalEventsResponse.parse(JSON.parse(text));
}

async function postNew(base: string, events: IdentifiedInternalEvent[]): Promise<void> {
  const result = await post(base, events);
  accepted += result.accepted;
  if (result.accepted !== events.length || result.duplicates !== 0) {
    fail(`new events acknowledged as ${JSON.stringify(result)} for ${events.length} fresh ids`);
  }
  sent.push(...events);
  if (sent.length > 5_000) sent.splice(0, sent.length - 5_000);
}

/** Posts at `rate` events/s until stopped; returns how many it posted. */
function startPublisher(base: string): { stop(): Promise<number> } {
  let running = true;
  let posted = 0;
  const loop = (async () => {
    const start = Date.now();
    while (running) {
      const due = Math.floor(((Date.now() - start) / 1000) * rate) - posted;
      if (due <= 0) {
        await sleep(Math.max(5, Math.min(50, 1000 / rate)));
        continue;
      }
      const events: IdentifiedInternalEvent[] = [];
      while (events.length < Math.min(due, 100)) events.push(...trafficStep());
      try {
        await postNew(base, events);
      } catch (error) {
        fail(`publisher: ${error instanceof Error ? error.message : String(error)}`);
        await sleep(1_000);
      }
      posted += events.length;
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return posted;
    },
  };
}

async function replayDuplicates(base: string): Promise<void> {
  const replay = Array.from({ length: Math.min(DUPLICATE_BATCH, sent.length) }, () => pick(sent));
  const unique = [...new Map(replay.map((e) => [e.id, e])).values()];
  if (unique.length === 0) return;
  const result = await post(base, unique);
  duplicatesAcked += result.duplicates;
  if (result.accepted !== 0 || result.duplicates !== unique.length) {
    fail(`a replay of ${unique.length} sent ids was acknowledged as ${JSON.stringify(result)}`);
  }
}

// --- the client process

function startClient(): { child: ChildProcess; next<T extends FromClient["type"]>(type: T, ms: number): Promise<Extract<FromClient, { type: T }>>; send(m: ToClient): void } {
  const child = fork(join(ROOT, "bench/soak-client.ts"), [], {
    cwd: ROOT,
    execArgv: ["--import", "tsx", "--max-old-space-size=2048"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const waiters: Array<{ type: string; resolve: (m: FromClient) => void; reject: (e: Error) => void }> = [];
  child.on("message", (raw) => {
    const message = raw as FromClient;
    if (message.type === "fatal") {
      fail(`client: ${message.message}`);
      for (const w of waiters.splice(0)) w.reject(new Error(message.message));
      return;
    }
    const index = waiters.findIndex((w) => w.type === message.type);
    if (index >= 0) waiters.splice(index, 1)[0]!.resolve(message);
  });
  child.on("exit", (code) => {
    for (const w of waiters.splice(0)) w.reject(new Error(`client exited with ${code}`));
  });
  return {
    child,
    send: (m) => child.send(m),
    next: (type, ms) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`client: no ${type} within ${ms} ms`)), ms);
        waiters.push({
          type,
          resolve: (m) => {
            clearTimeout(timer);
            resolve(m as never);
          },
          reject: (e) => {
            clearTimeout(timer);
            reject(e);
          },
        });
      }),
  };
}

// --- the run


async function main(): Promise<number> {
  note(`${socketCount} sockets (permessage-deflate ${deflate ? "offered" : "off"}), ${rate} events/s, ${minutes} min, a fault every ${faultEveryMs / 1000} s`);
  const { publicKey, privateKey } = await generateKeyPair("RS256", { extractable: true });
  const state = mkdtempSync(join(tmpdir(), "scr-soak-"));
  let worker: WranglerDev | undefined;
  let client: ReturnType<typeof startClient> | undefined;
  let sampler: NodeJS.Timeout | undefined;
  let report: ClientReport | undefined;
  let steadyAt = 0;
  let postedTotal = 0;
  let opened: { sockets: number; ms: number; progress: Progress } | undefined;
  try {
    worker = await startWranglerDev({
      root: ROOT,
      persistTo: join(state, "do"),
      logLevel: "warn",
      vars: isolatedWorkerVars({ guildId: GUILD, hubSecret: SECRET, issuer: ISSUER, audience: AUDIENCE, publicJwk: { ...(await exportJWK(publicKey)), kid: "soak", alg: "RS256" } }),
    });
    const base = worker.url;
    // The hub's error-level logs (it logs JSON lines) are evidence of a defect: counted, and a few kept.
    for (const stream of [worker.process.child.stdout, worker.process.child.stderr]) {
      stream?.on("data", (chunk: Buffer) => {
        for (const line of String(chunk).split("\n")) {
          const match = /\{"level":"error".*\}/.exec(line);
          if (!match) continue;
          hubErrors.count++;
          if (hubErrors.samples.length < 10) hubErrors.samples.push(match[0]);
        }
      });
    }
    note(`wrangler dev at ${base}, state in ${state}`);
    const w = worker;
    takeSample(w, undefined);
    sampler = setInterval(() => takeSample(w, client?.child), SAMPLE_EVERY_MS);

    // Tokens valid for the whole run and then some; one user per socket.
    const exp = Math.floor(Date.now() / 1000) + Math.ceil(durationMs / 1000) + 30 * 60;
    const mint = (sub: string) =>
      new SignJWT({ name: "Soak" }).setProtectedHeader({ alg: "RS256", kid: "soak" }).setSubject(sub)
        .setIssuer(ISSUER).setAudience(AUDIENCE).setIssuedAt().setExpirationTime(exp).sign(privateKey);
    const tokens: string[] = [];
    for (let i = 0; i < socketCount; i++) tokens.push(await mint(String(500000000000000001n + BigInt(i))));
    const restToken = await mint("600000000000000001");

    for (const channelId of roomIds) model.set(channelId, { name: `Soak ${channelId.slice(-1)}`, userLimit: 0, parentId: null, members: new Map() });
    await postNew(base, roomIds.map((channelId) => event({ event: "room.created", payload: { guildId: GUILD, channelId, name: model.get(channelId)!.name, userLimit: 0 } })));

    // Traffic starts while the sockets open, so snapshots race with events from the first second.
    phase = "opening";
    const publisher = startPublisher(base);
    const publishStart = Date.now();
    client = startClient();
    const openTimeoutMs = 60_000 + socketCount * 100;
    client.send({ type: "open", url: base, tokens, batch, deflate });
    opened = await client.next("opened", openTimeoutMs);
    note(`${opened.sockets} sockets open and authenticated in ${opened.ms} ms; ${logProgress(opened.progress)}`);

    phase = "steady";
    steadyAt = Date.now();
    let faults = 0;
    while (Date.now() - steadyAt < durationMs) {
      const nextFault = steadyAt + (faults + 1) * faultEveryMs;
      const end = steadyAt + durationMs;
      await sleep(Math.max(0, Math.min(nextFault, end) - Date.now()));
      if (Date.now() >= end || Date.now() < nextFault) continue;
      faults++;
      client.send({ type: "cut", fraction: CUT_FRACTION, maxDelayMs: CUT_MAX_DELAY_MS });
      const { cut, progress } = await client.next("cut", 10_000);
      await replayDuplicates(base).catch((error: unknown) => fail(`duplicate replay: ${error instanceof Error ? error.message : String(error)}`));
      note(`fault ${faults} at ${Math.round((Date.now() - steadyAt) / 1000)} s: ${cut} sockets cut and resuming; ${DUPLICATE_BATCH} sent ids replayed; ${logProgress(progress)}`);
    }

    phase = "verifying";
    postedTotal = await publisher.stop();
    const publishSeconds = (Date.now() - publishStart) / 1000;
    const achieved = postedTotal / publishSeconds;
    note(`published ${postedTotal} events in ${publishSeconds.toFixed(0)} s (${achieved.toFixed(1)}/s); ${duplicatesAcked} duplicates acknowledged`);
    if (achieved < rate * MIN_RATE_SHARE) fail(`publisher reached ${achieved.toFixed(1)} events/s, below ${MIN_RATE_SHARE * 100}% of ${rate}`);

    const response = await fetch(`${base}/rooms`, { headers: { Authorization: `Bearer ${restToken}` } });
    if (!response.ok) throw new Error(`GET /rooms answered ${response.status}: ${await response.text()}`);
    const rooms = RoomsResponse.parse(await response.json());
    const canonical = canonicalPresence(presenceFromRooms(rooms.rooms));
    if (canonical !== canonicalPresence(model)) {
      fail(`GET /rooms differs from what the publisher sent:\n  hub:       ${canonical.replace(/\n/g, "\n             ")}\n  publisher: ${canonicalPresence(model).replace(/\n/g, "\n             ")}`);
    }
    client.send({ type: "verify", seq: rooms.seq, canonical, timeoutMs: 30_000 });
    report = (await client.next("verified", 60_000)).report;
    note(`hub seq ${rooms.seq}; ${report.caughtUp}/${report.sockets - report.givenUp} held sockets caught up (${report.givenUp} given up), ${report.matching} match GET /rooms; ${logProgress(report.final)}`);
    if (report.violations > 0) fail(`${report.violations} stream violations, e.g.\n  ${report.samples.join("\n  ")}`);
    if (report.givenUp > 0) fail(`${report.givenUp} of ${report.sockets} sockets could not be held (5 failed attempts each)`);
    if (report.matching !== report.sockets - report.givenUp) {
      fail(`${report.sockets - report.givenUp - report.matching} held sockets' presence differs from GET /rooms, e.g. ${JSON.stringify(report.mismatches.slice(0, 1))}`);
    }
    if (report.resumes === 0 && faults > 0) fail("no socket resumed although sockets were cut");
    takeSample(w, client.child);
    if (hubErrors.count > 0) fail(`the hub logged ${hubErrors.count} errors, e.g.\n  ${[...new Set(hubErrors.samples)].join("\n  ")}`);
  } catch (error) {
    fail(error instanceof Error ? error.message : String(error));
  } finally {
    if (sampler) clearInterval(sampler);
    phase = "stopping";
    if (client) {
      client.send({ type: "close" });
      await Promise.race([new Promise((resolve) => client!.child.once("exit", resolve)), sleep(5_000)]);
      client.child.kill("SIGKILL");
    }
    await worker?.stop();
    rmSync(state, { recursive: true, force: true });
  }

  const memory = summarise(steadyAt, durationMs);
  printTable(memory);
  checkBounds(memory);
  const out = join(ROOT, "bench/results");
  mkdirSync(out, { recursive: true });
  const file = join(out, `soak-${new Date(startedAt).toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(file, JSON.stringify({
    config: { sockets: socketCount, minutes, rate, batch, faultEverySeconds: faultEveryMs / 1000, quick, deflate },
    bounds: { rssMb: Object.fromEntries(PROCESSES.map((p) => [p, rssBound(p)])), growthPct: GROWTH_BOUNDS_PCT, minRateShare: MIN_RATE_SHARE },
    opened, hubErrors, postedEvents: postedTotal, acceptedEvents: accepted, duplicatesAcked,
    client: report, progress: progressLog, memory, samples, failures,
  }, null, 2));
  note(`results in ${file}`);
  note(failures.length === 0 ? "soak: passed" : `soak: FAILED (${failures.length} failure${failures.length === 1 ? "" : "s"})`);
  return failures.length === 0 ? 0 : 1;
}

// --- memory summary and bounds

interface MemorySummary {
  process: ProcessName;
  minMb: number;
  maxMb: number;
  lastMb: number;
  warmMb: number | undefined;
  warmAt: number | undefined;
  growthPct: number | undefined;
}

function summarise(steadyAt: number, duration: number): MemorySummary[] {
  const running = samples.filter((s) => s.rssMb.workerd > 0);
  const warmT = steadyAt > 0 ? (steadyAt - startedAt + Math.min(60_000, duration / 2)) / 1000 : undefined;
  const warm = warmT === undefined ? undefined : running.find((s) => s.t >= warmT);
  return PROCESSES.map((name) => {
    const values = running.map((s) => s.rssMb[name]).filter((v) => v > 0);
    const last = values.at(-1) ?? 0;
    const warmMb = warm?.rssMb[name];
    return {
      process: name,
      minMb: values.length ? Math.min(...values) : 0,
      maxMb: values.length ? Math.max(...values) : 0,
      lastMb: last,
      warmMb,
      warmAt: warm?.t,
      growthPct: warmMb ? Math.round(((last - warmMb) / warmMb) * 1000) / 10 : undefined,
    };
  });
}

function rssBound(name: ProcessName): number {
  const bound = RSS_BOUNDS_MB[name];
  return Math.round(bound.base + ((bound.perThousandSockets + (deflate ? bound.perThousandDeflate : 0)) * socketCount) / 1000);
}

function printTable(memory: MemorySummary[]): void {
  const pad = (s: string | number, n: number) => String(s).padStart(n);
  console.log(`\nRSS (MB), ${samples.length} samples every ${SAMPLE_EVERY_MS / 1000} s; warm-up mark at ${memory[0]?.warmAt ?? "-"} s`);
  console.log(`${"process".padEnd(9)}${pad("min", 9)}${pad("max", 9)}${pad("last", 9)}${pad("warm", 9)}${pad("growth", 9)}${pad("bound", 9)}`);
  for (const m of memory) {
    const growth = m.growthPct === undefined ? "-" : `${m.growthPct}%`;
    console.log(`${m.process.padEnd(9)}${pad(m.minMb, 9)}${pad(m.maxMb, 9)}${pad(m.lastMb, 9)}${pad(m.warmMb ?? "-", 9)}${pad(growth, 9)}${pad(rssBound(m.process), 9)}`);
  }
  console.log("");
}

function checkBounds(memory: MemorySummary[]): void {
  for (const m of memory) {
    if (m.maxMb > rssBound(m.process)) fail(`${m.process} RSS peaked at ${m.maxMb} MB, above its bound of ${rssBound(m.process)} MB`);
    const growthBound = (GROWTH_BOUNDS_PCT as Partial<Record<ProcessName, number>>)[m.process];
    if (growthBound !== undefined && m.growthPct !== undefined && m.growthPct > growthBound) {
      fail(`${m.process} RSS grew ${m.growthPct}% after warm-up (${m.warmMb} → ${m.lastMb} MB), above ${growthBound}%`);
    }
  }
  if (!memory.some((m) => m.process === "workerd" && m.maxMb > 0)) fail("no workerd process was found under wrangler dev");
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
