import { describe, expect, it } from "vitest";
import { startDiscordSimulator, type DiscordSimulator } from "../../dev/discord-sim/index.js";
import type { GatewayConfig } from "../src/config.js";
import { silentLogger } from "../src/log.js";
import { memorySessionStore, type SessionStore } from "../src/session-store.js";
import { startGatewayService, type GatewayService } from "../src/service.js";
import { FakeHub, HUB_SECRET } from "./support/fake-hub.js";
import { BOT_TOKEN, FAST, until } from "./support/harness.js";
import { discordTruth, hubPicture, pictureDiff } from "./support/hub-model.js";
import { pick, seededRandom } from "../../test-support/prng.js";

/**
 * An operator's actions against the gateway's lease, checked against a model: rolling deploys onto hosts whose clocks
 * are up to ±60 s off, shards moved between processes, holders killed, standby processes overlapping, the hub
 * unreachable for a while, with players moving throughout. Invariants:
 * - after quiescence every guild's hub equals Discord;
 * - at most one gateway writes a guild at a time: each term has one writer, and no write names a term older than one
 *   already written;
 * - no guild that some live process covers stays behind Discord for longer than the lease time plus a reconnect.
 *
 * Time is scaled: the hub's lease TTL is TTL_MS here (30 s in production) and every wait is in proportion; clock
 * skews are the real ±60 s, on each process's signing clock. GATEWAY_OPERATOR_SEED (first seed),
 * GATEWAY_OPERATOR_SCHEDULES and GATEWAY_OPERATOR_STEPS size the run; a failure names its seed and prints its
 * schedule, and GATEWAY_OPERATOR_SEED=<seed> GATEWAY_OPERATOR_SCHEDULES=1 replays it.
 */
const FIRST_SEED = Number(process.env.GATEWAY_OPERATOR_SEED ?? 1);
const SCHEDULES = Number(process.env.GATEWAY_OPERATOR_SCHEDULES ?? 5);
const STEPS = Number(process.env.GATEWAY_OPERATOR_STEPS ?? 14);

const TTL_MS = 600;
const SETTINGS = { ...FAST, standbyPollMs: 100, flushTimeoutMs: 300, outboxMaxEvents: 50, outboxBatchSize: 10 };
/** A process's start (a Discord session, its guild.sync) or a reconnect after a fault, on a loaded machine. */
const RECONNECT_MS = 2_000;
/** The longest a covered guild may stay behind Discord: the lease lapsing, a standby's next question, a reconnect. */
const UNSERVED_BOUND_MS = TTL_MS + SETTINGS.standbyPollMs * 1.2 + RECONNECT_MS;
const MAX_PROCESSES = 4;

// (id >> 22) % 2: A and C ride shard 0, B rides shard 1.
const GUILDS = ["1258291200000000000", "1258291200004194304", "1258291200008388608"] as const;
const USERS = Array.from({ length: 5 }, (_, i) => String(240000000000000001n + BigInt(i)));
const shardOf = (guild: string) => Number((BigInt(guild) >> 22n) % 2n);

interface Host {
  name: string;
  /** Its SESSION_FILE: the same host restarting is the same gateway instance. */
  store: SessionStore;
  skewMs: number;
}

interface Process {
  name: string;
  host: Host;
  shards: number[];
  service: GatewayService;
  live: boolean;
}

interface Run {
  seed: number;
  log: string[];
  sim: DiscordSimulator;
  hub: FakeHub;
  config: GatewayConfig;
  processes: Process[];
  hubUp: boolean;
  random: () => number;
  hosts: number;
  violations: string[];
  worstUnservedMs: number;
}

async function runSchedule(seed: number): Promise<{ processes: number; worstUnservedMs: number; writes: number; terms: number }> {
  const random = seededRandom(seed);
  const sim = await startDiscordSimulator({
    botToken: BOT_TOKEN,
    guildId: GUILDS[0],
    heartbeatIntervalMs: 200,
    identifyIntervalMs: 0,
    channels: [{ name: "A1", type: 2 }, { name: "A2", type: 2 }],
    guilds: GUILDS.slice(1).map((guildId) => ({ guildId, channels: [{ name: "Pod", type: 2 as const }, { name: "Pod 2", type: 2 as const }] })),
    users: USERS.map((id, i) => ({ id, username: `op${i}` })),
    recommendedShards: 2,
  });
  const hub = new FakeHub();
  hub.leaseTtlMs = TTL_MS;
  await hub.start();
  const config: GatewayConfig = {
    DISCORD_BOT_TOKEN: BOT_TOKEN,
    PRIMARY_GUILD_ID: GUILDS[0],
    ALLOWED_GUILD_IDS: [...GUILDS.slice(1)],
    SHARD_COUNT: 2,
    HUB_ENDPOINT: hub.endpoint,
    HUB_SECRET,
    DISCORD_API_BASE: sim.restBase,
    HEALTH_PORT: 0,
    LOG_LEVEL: "error",
  };
  const run: Run = { seed, log: [], sim, hub, config, processes: [], hubUp: true, random, hosts: 0, violations: [], worstUnservedMs: 0 };
  const monitor = watchService(run);
  try {
    await launch(run, newHost(run, 0), [0, 1]);
    for (let step = 0; step < STEPS; step++) {
      await operate(run, step);
      await sleep(Math.floor((random() * TTL_MS) / 2));
    }
    // Quiescence: the hub back, every shard covered by a live process, nobody acting.
    if (!run.hubUp) await healHub(run);
    for (const shard of [0, 1]) if (!covered(run, shard)) await launch(run, newHost(run, 0), [shard]);
    run.log.push("calm");
    const diffs = () => GUILDS.flatMap((guild) => guildDiff(run, guild).map((line) => `${guild}: ${line}`));
    await until(() => diffs().length === 0, "every hub to equal Discord", TTL_MS + 2 * RECONNECT_MS).catch(() => undefined);
    expect(diffs(), explain(run, "a hub's picture differs from Discord's after quiescence")).toEqual([]);
    expect(oneWriterAtATime(hub), explain(run, "two gateways wrote one guild at once")).toEqual([]);
    expect(run.violations, explain(run, `a covered guild stayed behind Discord for longer than ${UNSERVED_BOUND_MS} ms`)).toEqual([]);
    expect(hub.idConflicts, explain(run, "event ids reused for different events")).toEqual([]);
    const terms = GUILDS.reduce((sum, guild) => sum + (hub.leases.get(guild)?.term ?? 0), 0);
    return { processes: run.processes.length, worstUnservedMs: run.worstUnservedMs, writes: hub.writes.length, terms };
  } finally {
    clearInterval(monitor);
    await Promise.all(run.processes.filter((p) => p.live).map((p) => p.service.abort()));
    await hub.stop();
    await sim.close();
  }
}

/** One operator action (or a player's), chosen by the seed. */
async function operate(run: Run, step: number): Promise<void> {
  const { random } = run;
  const live = run.processes.filter((p) => p.live);
  const roll = random();
  if (roll < 0.4 || live.length === 0) {
    for (let i = 0, n = 1 + Math.floor(random() * 3); i < n; i++) movePlayer(run);
  } else if (roll < 0.52 && live.length < MAX_PROCESSES) {
    // A rolling deploy: the new process starts on another host (its clock off by up to a minute), overlaps, then
    // the old one gets SIGTERM (it flushes and releases) or is killed.
    const old = pick(random, live);
    await launch(run, newHost(run), old.shards);
    movePlayer(run);
    await sleep(Math.floor(random() * TTL_MS));
    await retire(run, old, random() < 0.7);
  } else if (roll < 0.6) {
    // A restart in place: the same host, so the same instance and session file.
    const process = pick(random, live);
    await retire(run, process, random() < 0.5);
    movePlayer(run);
    await sleep(Math.floor((random() * TTL_MS) / 2));
    await launch(run, process.host, process.shards);
  } else if (roll < 0.7) {
    await moveShards(run);
  } else if (roll < 0.78) {
    // A holder: a process that has delivered (a standby never has).
    const holder = live.find((p) => p.service.outbox.stats.delivered > 0);
    if (holder) await retire(run, holder, false);
    else run.log.push("no holder to kill");
  } else if (roll < 0.86 && run.hubUp) {
    run.log.push("hub unreachable");
    await run.hub.stop();
    run.hubUp = false;
    movePlayer(run);
    await sleep(TTL_MS / 2 + Math.floor(random() * 2 * TTL_MS));
    await healHub(run);
  } else if (live.length < MAX_PROCESSES) {
    // A standby overlap: another process covering one shard, on another host.
    await launch(run, newHost(run), [Math.floor(random() * 2)]);
  }
  // An operator notices an uncovered shard, sooner or later.
  for (const shard of [0, 1]) if (!covered(run, shard) && random() < 0.5) await launch(run, newHost(run), [shard]);
  if (process.env.GATEWAY_OPERATOR_DEBUG) console.log(`step ${step}: ${run.log.slice(-3).join("; ")}`);
}

/** Splits a two-shard process into two one-shard ones, or merges two one-shard processes into one. */
async function moveShards(run: Run): Promise<void> {
  const live = run.processes.filter((p) => p.live);
  const both = live.find((p) => p.shards.length === 2);
  if (both) {
    const moved = Math.floor(run.random() * 2);
    run.log.push(`move shard ${moved} off ${both.name}`);
    await launch(run, newHost(run), [moved]);
    await retire(run, both, true);
    await launch(run, both.host, [1 - moved]);
    return;
  }
  const singles = [0, 1].map((shard) => live.find((p) => p.shards.length === 1 && p.shards[0] === shard));
  if (singles[0] && singles[1] && live.length < MAX_PROCESSES) {
    run.log.push(`merge ${singles[0].name} and ${singles[1].name}`);
    await launch(run, newHost(run), [0, 1]);
    for (const single of singles) await retire(run, single!, run.random() < 0.7);
  }
}

function movePlayer(run: Run): void {
  const guild = pick(run.random, GUILDS);
  const world = run.sim.guild(guild);
  const rooms = world.state().channels.filter((c) => c.type === 2).map((c) => c.id);
  const user = pick(run.random, USERS);
  const target = pick(run.random, [null, ...rooms]);
  world.setVoiceState(user, target);
  run.log.push(`voice ${user.slice(-1)} → ${target ?? "none"} [${guild.slice(-3)}]`);
}

function newHost(run: Run, skewMs = Math.round((run.random() * 2 - 1) * 60_000)): Host {
  return { name: `host${++run.hosts}`, store: memorySessionStore(), skewMs };
}

async function launch(run: Run, host: Host, shards: number[]): Promise<Process> {
  const config = shards.length === 2 ? run.config : { ...run.config, SHARD_IDS: shards };
  const service = await startGatewayService(config, {
    log: process.env.GATEWAY_OPERATOR_DEBUG ? (level, msg, fields) => console.log(`${host.name} ${level}: ${msg} ${JSON.stringify(fields)}`) : silentLogger,
    settings: SETTINGS,
    sessionStore: host.store,
    now: () => Date.now() + host.skewMs,
    random: seededRandom(run.seed * 1_000 + run.processes.length),
  });
  const started: Process = { name: `p${run.processes.length + 1}@${host.name}`, host, shards, service, live: true };
  run.processes.push(started);
  run.log.push(`start ${started.name} shards ${shards.join(",")} clock ${host.skewMs >= 0 ? "+" : ""}${(host.skewMs / 1000).toFixed(1)} s`);
  return started;
}

async function retire(run: Run, target: Process, graceful: boolean): Promise<void> {
  target.live = false;
  run.log.push(`${graceful ? "SIGTERM" : "SIGKILL"} ${target.name}`);
  if (graceful) await target.service.stop();
  else await target.service.abort();
  movePlayer(run); // players go on: a killed holder's guild waits for its lease to lapse
}

async function healHub(run: Run): Promise<void> {
  await run.hub.start(run.hub.port);
  run.hubUp = true;
  run.log.push("hub back");
}

function covered(run: Run, shard: number): boolean {
  return run.processes.some((p) => p.live && p.shards.includes(shard));
}

function guildDiff(run: Run, guild: string): string[] {
  return pictureDiff(hubPicture(run.hub.accepted.filter((e) => e.payload.guildId === guild)), discordTruth(run.sim.guild(guild)));
}

/**
 * Watches, every 50 ms, how long each guild has been behind Discord while the hub answers and some live process
 * covers its shard; past UNSERVED_BOUND_MS that is a violation.
 */
function watchService(run: Run): ReturnType<typeof setInterval> {
  const behindSince = new Map<string, number>();
  return setInterval(() => {
    const now = Date.now();
    for (const guild of GUILDS) {
      const coverable = run.hubUp && covered(run, shardOf(guild));
      if (!coverable || guildDiff(run, guild).length === 0) {
        behindSince.delete(guild);
        continue;
      }
      const since = behindSince.get(guild) ?? now;
      behindSince.set(guild, since);
      run.worstUnservedMs = Math.max(run.worstUnservedMs, now - since);
      if (now - since > UNSERVED_BOUND_MS) {
        run.violations.push(`${guild} behind for ${now - since} ms (after: ${run.log.at(-1)})`);
        behindSince.set(guild, now); // one violation per episode
      }
    }
  }, 50);
}

/** Each guild's writes in the order the hub applied them: one writer per term, terms never going back. */
function oneWriterAtATime(hub: FakeHub): string[] {
  const problems: string[] = [];
  for (const guild of GUILDS) {
    const writers = new Map<number, string>();
    let newest = 0;
    for (const write of hub.writes.filter((w) => w.guildId === guild)) {
      if (write.term === undefined || write.instance === undefined) {
        problems.push(`${guild}: a write without a lease`);
        continue;
      }
      if (write.term < newest) problems.push(`${guild}: term ${write.term} written after term ${newest}`);
      if ((writers.get(write.term) ?? write.instance) !== write.instance) problems.push(`${guild}: term ${write.term} written by two instances`);
      writers.set(write.term, write.instance);
      newest = Math.max(newest, write.term);
    }
  }
  return problems;
}

function explain(run: Run, what: string): string {
  return `seed ${run.seed}: ${what} (replay: GATEWAY_OPERATOR_SEED=${run.seed} GATEWAY_OPERATOR_SCHEDULES=1)\n  ${run.log.join("\n  ")}`;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("gateway-node under an operator's deploys, moves and failures", () => {
  it(`keeps one writer per guild and every guild served through ${SCHEDULES} seeded schedules of ${STEPS} actions`, async () => {
    const started = Date.now();
    const totals = { schedules: 0, processes: 0, writes: 0, terms: 0, worstUnservedMs: 0 };
    for (let seed = FIRST_SEED; seed < FIRST_SEED + SCHEDULES; seed++) {
      const result = await runSchedule(seed);
      totals.schedules++;
      totals.processes += result.processes;
      totals.writes += result.writes;
      totals.terms += result.terms;
      totals.worstUnservedMs = Math.max(totals.worstUnservedMs, result.worstUnservedMs);
    }
    console.log(`gateway operator model: seeds ${FIRST_SEED}..${FIRST_SEED + SCHEDULES - 1}, ${JSON.stringify(totals)}, bound ${UNSERVED_BOUND_MS} ms, ${Date.now() - started} ms`);
  }, 900_000);
});
