import { describe, expect, it } from "vitest";
import { memorySessionStore } from "../src/session-store.js";
import { discordTruth, hubPicture, pictureDiff } from "./support/hub-model.js";
import { FAST, startHarness, until, type Harness } from "./support/harness.js";
import { pick, seededRandom } from "../../test-support/prng.js";

/**
 * The gateway's promise, checked against a model: whatever Discord does, however the hub fails and however the
 * process dies, once things calm down the hub's rooms, members and members' flags equal Discord's, no event id ever
 * stands for two different events, and the joins the hub publishes for each user follow Discord's order.
 *
 * GATEWAY_MODEL_SEED (first seed), GATEWAY_MODEL_SCHEDULES and GATEWAY_MODEL_STEPS size the run, and
 * GATEWAY_MODEL_CONCURRENCY (8) says how many schedules run at once; a failure names
 * its seed and prints its schedule, and GATEWAY_MODEL_SEED=<seed> GATEWAY_MODEL_SCHEDULES=1 replays that schedule
 * (the operations are the seed's; how they interleave with the network is up to the machine).
 */
const FIRST_SEED = Number(process.env.GATEWAY_MODEL_SEED ?? 1);
const SCHEDULES = Number(process.env.GATEWAY_MODEL_SCHEDULES ?? 120);
const STEPS = Number(process.env.GATEWAY_MODEL_STEPS ?? 40);
const CONCURRENCY = Math.max(1, Number(process.env.GATEWAY_MODEL_CONCURRENCY ?? 8));

const USERS = Array.from({ length: 6 }, (_, i) => String(230000000000000001n + BigInt(i)));
const MULTI_SCHEDULES = Number(process.env.GATEWAY_MODEL_MULTI_SCHEDULES ?? 40);

/** Where the schedule runs: the one-guild deployment, or three guilds on two shards ((id >> 22) % 2 = 0, 1, 0). */
interface Layout {
  name: string;
  guilds: string[];
  shards: number;
}
const ONE_GUILD: Layout = { name: "one guild", guilds: ["100000000000000001"], shards: 1 };
const THREE_GUILDS: Layout = { name: "three guilds on two shards", guilds: ["1258291200000000000", "1258291200004194304", "1258291200008388608"], shards: 2 };
const SETTINGS = {
  ...FAST,
  outboxMaxEvents: 8, // small, so overflows happen
  outboxBatchSize: 3, // small, so a move straddles two batches
  flushTimeoutMs: 150,
  hubProbeIntervalMs: 50,
};

type HubFault = "down" | "5xx" | "401" | "413" | "slow" | "one guild's hub 5xx";

interface Schedule {
  seed: number;
  layout: Layout;
  log: string[];
  /** Each guild's users' channels in Discord's order (joins and moves only), keyed `guild/user`. */
  history: Map<string, string[]>;
}

async function runSchedule(seed: number, layout: Layout): Promise<{ steps: number; faults: number; events: number }> {
  const random = seededRandom(seed); // the schedule; the gateway's own jitter draws from another stream
  const jitter = seededRandom(seed ^ 0x5bd1e995);
  const store = memorySessionStore(); // survives "process" restarts, like SESSION_FILE
  const [primary, ...others] = layout.guilds as [string, ...string[]];
  const h: Harness = await startHarness({
    sim: {
      users: USERS.map((id, i) => ({ id, username: `model${i}` })),
      guildId: primary,
      guilds: others.map((guildId) => ({ guildId, channels: [{ name: "Pod", type: 2 as const, userLimit: 4 }] })),
      recommendedShards: layout.shards,
    },
    config: { PRIMARY_GUILD_ID: primary, ...(others.length > 0 ? { ALLOWED_GUILD_IDS: others } : {}) },
    deps: { sessionStore: store, settings: SETTINGS, random: jitter, ...(process.env.GATEWAY_MODEL_DEBUG ? { log: debugLog } : {}) },
  });
  const schedule: Schedule = { seed, layout, log: [], history: new Map(layout.guilds.flatMap((g) => USERS.map((u) => [`${g}/${u}`, []]))) };
  let fault: { kind: HubFault; until: number } | undefined;
  let serviceUp = true;
  let faults = 0;

  // One guild draws nothing to choose it, so the one-guild schedules stay what their seeds always were.
  const pickGuild = () => (layout.guilds.length === 1 ? primary : pick(random, layout.guilds));
  const voiceRooms = (guild: string) => h.sim.guild(guild).state().channels.filter((c) => c.type === 2).map((c) => c.id);
  const stages = (guild: string) => h.sim.guild(guild).state().channels.filter((c) => c.type === 13).map((c) => c.id);
  const whereIs = (guild: string, user: string) => h.sim.guild(guild).state().voiceStates.find((s) => s.userId === user)?.channelId ?? null;
  const record = (guild: string, user: string, channel: string | null) => {
    if (channel && voiceRooms(guild).includes(channel)) schedule.history.get(`${guild}/${user}`)!.push(channel);
  };

  const healHub = async () => {
    if (!fault) return;
    if (fault.kind === "down") await h.hub.start(h.hub.port);
    h.hub.failWith = undefined;
    h.hub.failGuild = undefined;
    h.hub.maxEventsPerPost = Infinity;
    h.hub.delayMs = 0;
    schedule.log.push(`heal ${fault.kind}`);
    fault = undefined;
  };
  const restart = async () => {
    await h.restart({ sessionStore: store, settings: SETTINGS, random: jitter, ...(process.env.GATEWAY_MODEL_DEBUG ? { log: debugLog } : {}) });
    serviceUp = true;
  };

  try {
    await until(() => h.hub.accepted.length >= 1, `seed ${seed}: the first guild.sync`);
    for (let step = 0; step < STEPS; step++) {
      if (fault && step >= fault.until) await healHub();
      const roll = random();
      const guild = pickGuild();
      const world = h.sim.guild(guild);
      const tag = layout.guilds.length === 1 ? "" : ` [${guild}]`;
      if (roll < 0.4) {
        const user = pick(random, USERS);
        const target = pick(random, [null, ...voiceRooms(guild), ...stages(guild)]);
        if (target === whereIs(guild, user)) {
          world.setVoiceState(user, target, { selfMute: random() < 0.5 });
          schedule.log.push(`toggle ${user}${tag}`);
        } else {
          world.setVoiceState(user, target);
          record(guild, user, target);
          schedule.log.push(`voice ${user} → ${target ?? "none"}${tag}`);
        }
      } else if (roll < 0.5) {
        const user = pick(random, USERS);
        const here = whereIs(guild, user);
        if (here) world.setVoiceState(user, here, { selfMute: random() < 0.5, selfDeaf: random() < 0.5 });
        schedule.log.push(`mute ${user}${tag}`);
      } else if (roll < 0.57) {
        const stage = random() < 0.2;
        const channel = world.createChannel({ name: `room ${step}`, type: stage ? 13 : 2, userLimit: Math.floor(random() * 10) });
        schedule.log.push(`create ${stage ? "stage" : "room"} ${channel.id}${tag}`);
      } else if (roll < 0.62 && voiceRooms(guild).length > 0) {
        const id = pick(random, voiceRooms(guild));
        world.updateChannel(id, random() < 0.5 ? { name: `renamed ${step}` } : { userLimit: Math.floor(random() * 10) });
        schedule.log.push(`update ${id}${tag}`);
      } else if (roll < 0.66 && voiceRooms(guild).length > 1) {
        const id = pick(random, voiceRooms(guild));
        world.deleteChannel(id);
        schedule.log.push(`delete ${id}${tag}`);
      } else if (roll < 0.76 && !fault) {
        // Several guilds: one guild's hub may fail alone, so the guilds of one shard fall apart in how far they got.
        const kinds: HubFault[] = ["down", "5xx", "401", "413", "slow", ...(layout.guilds.length > 1 ? (["one guild's hub 5xx"] as const) : [])];
        const kind = pick(random, kinds);
        if (kind === "down") await h.hub.stop();
        if (kind === "one guild's hub 5xx") {
          h.hub.failGuild = guild;
          h.hub.failWith = 503;
        }
        if (kind === "5xx") h.hub.failWith = 503;
        if (kind === "401") h.hub.failWith = 401;
        if (kind === "413") h.hub.maxEventsPerPost = 1;
        if (kind === "slow") h.hub.delayMs = 20 + Math.floor(random() * 80);
        fault = { kind, until: step + 1 + Math.floor(random() * 8) };
        faults++;
        schedule.log.push(`hub ${kind}${kind === "one guild's hub 5xx" ? tag : ""}`);
      } else if (roll < 0.82 && serviceUp) {
        const graceful = random() < 0.5;
        schedule.log.push(graceful ? "SIGTERM" : "SIGKILL");
        if (graceful) await h.service.stop();
        else await h.service.abort();
        serviceUp = false;
        faults++;
      } else if (roll < 0.9 && !serviceUp) {
        schedule.log.push("restart");
        await restart();
      } else if (roll < 0.94) {
        // An outage, or the bot removed from the guild; then the guild back, or the bot invited again.
        const available = world.state().available;
        const removal = available && random() < 0.3;
        if (!available) world.restoreGuild();
        else if (removal) world.removeBot();
        else world.guildOutage();
        schedule.log.push(`${!available ? "guild restored" : removal ? "bot removed" : "guild outage"}${tag}`);
      } else if (layout.shards > 1 && serviceUp) {
        // One shard's TCP drops: it resumes alone while the others go on.
        const shard = Math.floor(random() * layout.shards);
        h.sim.dropConnections(shard);
        faults++;
        schedule.log.push(`drop shard ${shard}`);
      }
      if (process.env.GATEWAY_MODEL_DEBUG) console.log(`step ${step}: ${schedule.log.at(-1)} (Discord seq ${h.sim.state().sessions.at(-1)?.seq})`);
      await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 12)));
    }

    await healHub();
    for (const guild of layout.guilds) h.sim.guild(guild).restoreGuild();
    if (!serviceUp) await restart();
    schedule.log.push("calm");
    // Each guild's hub holds only that guild's events: its picture is built from them alone.
    const diffs = () =>
      layout.guilds.flatMap((guild) =>
        pictureDiff(hubPicture(h.hub.accepted.filter((e) => e.payload.guildId === guild)), discordTruth(h.sim.guild(guild))).map((line) => `${guild}: ${line}`),
      );
    await until(() => h.service.outbox.depth === 0 && diffs().length === 0, "the hubs to equal Discord", 10_000).catch(() => undefined);
    expect(diffs(), explain(schedule, "a hub's picture differs from Discord's")).toEqual([]);
    expect(h.hub.idConflicts, explain(schedule, "event ids reused for different events")).toEqual([]);
    for (const [key, moves] of schedule.history) {
      const [guild, user] = key.split("/") as [string, string];
      // At-least-once: a join repeated under a new id after a restart is allowed; one out of order is not.
      const joined = new RegExp(`^voice\\.joined:${user}@(\\d+)$`);
      const delivered = h.hub
        .summary(guild)
        .flatMap((text) => joined.exec(text)?.slice(1) ?? [])
        .filter((channel, i, all) => channel !== all[i - 1]);
      expect(isSubsequence(delivered, moves), explain(schedule, `${key}'s joins out of Discord's order: ${delivered.join(",")} vs ${moves.join(",")}`)).toBe(true);
    }
    return { steps: STEPS, faults, events: h.hub.accepted.length };
  } finally {
    await h.close();
  }
}

/** GATEWAY_MODEL_DEBUG=1 prints the gateway's own log lines beside the schedule. */
function debugLog(level: string, msg: string, fields: Record<string, unknown> = {}): void {
  if (level !== "debug") console.log(`gateway ${level}: ${msg} ${JSON.stringify(fields)}`);
}

function explain(schedule: Schedule, what: string): string {
  const count = schedule.layout === ONE_GUILD ? "GATEWAY_MODEL_SCHEDULES" : "GATEWAY_MODEL_MULTI_SCHEDULES";
  return `${schedule.layout.name}, seed ${schedule.seed}: ${what} (replay: GATEWAY_MODEL_SEED=${schedule.seed} ${count}=1)\n  ${schedule.log.join("\n  ")}`;
}

/** Whether `part` appears in `whole` in order (not necessarily adjacent): a sync may skip states, never reorder them. */
function isSubsequence(part: string[], whole: string[]): boolean {
  let i = 0;
  for (const item of whole) if (i < part.length && part[i] === item) i++;
  return i === part.length;
}

/**
 * Runs the seeds `CONCURRENCY` at a time, each with its own simulator, hub and process: a schedule mostly waits (on
 * backoffs, lease answers, a restart's next second), so running them side by side costs little CPU. The first
 * failure stops the rest and names its seed.
 */
async function runSchedules(layout: Layout, count: number): Promise<void> {
  const totals = { schedules: 0, steps: 0, faults: 0, events: 0 };
  const started = Date.now();
  let next = FIRST_SEED;
  let failed = false;
  const worker = async () => {
    while (!failed && next < FIRST_SEED + count) {
      const seed = next++;
      try {
        const result = await runSchedule(seed, layout);
        totals.schedules++;
        totals.steps += result.steps;
        totals.faults += result.faults;
        totals.events += result.events;
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  const outcomes = await Promise.allSettled(Array.from({ length: Math.min(CONCURRENCY, count) }, worker));
  const failure = outcomes.find((outcome): outcome is PromiseRejectedResult => outcome.status === "rejected");
  if (failure) throw failure.reason;
  console.log(`gateway model (${layout.name}): seeds ${FIRST_SEED}..${FIRST_SEED + count - 1}, ${JSON.stringify(totals)}, ${CONCURRENCY} at a time, ${Date.now() - started} ms`);
}

describe("gateway-node against a model of Discord and the hub", () => {
  it(`keeps the hub equal to Discord through ${SCHEDULES} seeded schedules of ${STEPS} steps`, () => runSchedules(ONE_GUILD, SCHEDULES), 900_000);

  it(`keeps every guild's hub equal to Discord, three guilds on two shards, through ${MULTI_SCHEDULES} seeded schedules`, () => runSchedules(THREE_GUILDS, MULTI_SCHEDULES), 900_000);
});
