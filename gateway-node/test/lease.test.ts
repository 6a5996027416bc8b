import { afterEach, describe, expect, it } from "vitest";
import { silentLogger } from "../src/log.js";
import { memorySessionStore, type SessionStore } from "../src/session-store.js";
import { startGatewayService, type GatewayService } from "../src/service.js";
import { discordTruth, hubPicture, pictureDiff } from "./support/hub-model.js";
import { FAST, GUILD, ROOM_A, ROOM_B, startHarness, TEST_LEASE_TTL_MS, until, USERS, type Harness } from "./support/harness.js";

let h: Harness | undefined;
const others: GatewayService[] = [];
afterEach(async () => {
  for (const service of others.splice(0)) await service.stop().catch(() => undefined);
  await h?.close();
  h = undefined;
});

interface Process {
  /** The host's clock against the true one (its NTP is off). */
  skewMs?: number;
  shardIds?: number[];
  /** SESSION_FILE: the same store is the same host, so the same instance. */
  store?: SessionStore;
}

/** Another gateway process of the same bot, on another host unless it shares a session store. */
async function startProcess(options: Process = {}): Promise<GatewayService> {
  const config = options.shardIds ? { ...h!.config, SHARD_COUNT: 2, SHARD_IDS: options.shardIds } : h!.config;
  const skew = options.skewMs ?? 0;
  const service = await startGatewayService(config, {
    log: silentLogger,
    settings: FAST,
    sessionStore: options.store ?? memorySessionStore(),
    now: () => Date.now() + skew,
  });
  others.push(service);
  return service;
}

async function healthz(service: GatewayService): Promise<{ status: number; body: { guilds: Record<string, { lease: Record<string, unknown> }> } & Record<string, unknown> }> {
  const response = await fetch(`http://127.0.0.1:${service.healthPort}/healthz`);
  return { status: response.status, body: (await response.json()) as never };
}

const leaseOf = async (service: GatewayService, guildId = GUILD) => (await healthz(service)).body.guilds?.[guildId]?.lease;

/** Waits for a guild's lease state on a process; a timeout says what its /healthz said instead. */
async function leaseState(service: GatewayService, states: string[], what: string, guildId = GUILD, timeoutMs = 5_000): Promise<void> {
  let last: unknown;
  await until(async () => {
    last = (await healthz(service)).body;
    return states.includes(String((await leaseOf(service, guildId))?.state)) || undefined;
  }, what, timeoutMs).catch((error: Error) => {
    throw new Error(`${error.message}; its /healthz: ${JSON.stringify(last)}`);
  });
}
const hubEqualsDiscord = (guildId = GUILD) => pictureDiff(hubPicture(h!.hub.accepted.filter((e) => e.payload.guildId === guildId)), discordTruth(h!.sim.guild(guildId)));

describe("a rolling deploy onto a host whose clock is off", () => {
  it.each([
    ["30 s behind", -30_000],
    ["60 s behind", -60_000],
    ["60 s ahead", 60_000],
  ])("the successor stands by, healthy, while the old process serves, and takes over at once when it stops (%s)", async (_label, skewMs) => {
    h = await startHarness();
    h.hub.leaseTtlMs = 20_000; // a takeover this test sees comes from the release, not from the lease lapsing
    await until(() => h!.hub.accepted.length === 1, "the old process's guild.sync");
    const oldInstance = h.hub.holder(GUILD)!.instance;

    const successor = await startProcess({ skewMs });
    await leaseState(successor, ["standby"], "the successor to stand by");
    const standby = await healthz(successor);
    expect(standby.status, JSON.stringify(standby.body)).toBe(200);
    expect(standby.body.guilds[GUILD]!.lease).toMatchObject({ state: "standby", reason: "lease_held" });
    expect(Number(standby.body.guilds[GUILD]!.lease.holderExpiresInMs)).toBeGreaterThan(10_000);
    expect(JSON.stringify(standby.body)).not.toContain("superseded");
    h.sim.setVoiceState(USERS[0]!, ROOM_A); // the old process delivers it
    await until(() => h!.hub.summary().includes(`voice.joined:${USERS[0]}@${ROOM_A}`), "the join from the old process");

    const stopped = Date.now();
    await h.service.stop(); // SIGTERM: flush, then release
    await until(() => h!.hub.holder(GUILD) && h!.hub.holder(GUILD)!.instance !== oldInstance, "the successor to hold the guild", 3_000);
    expect(Date.now() - stopped, "a release hands over well before the lease would lapse").toBeLessThan(3_000);
    h.sim.setVoiceState(USERS[0]!, ROOM_B);
    await until(() => hubEqualsDiscord().length === 0 && h!.hub.summary().includes(`voice.joined:${USERS[0]}@${ROOM_B}`), "the move, from the successor");
    expect(await leaseOf(successor)).toMatchObject({ state: "holding", term: 2 });
    expect((await healthz(successor)).status).toBe(200);
    expect(h.hub.posts.filter((post) => post.status === 401)).toEqual([]); // its skewed signatures pass
  });

  it("a successor 30 s behind takes over a killed holder's guild within the lease time plus a reconnect, and the hub converges", async () => {
    h = await startHarness();
    await until(() => h!.hub.accepted.length === 1, "the old process's guild.sync");
    const successor = await startProcess({ skewMs: -30_000 });
    await leaseState(successor, ["standby"], "the successor to stand by");

    await h.service.abort(); // SIGKILL: no flush, no release
    const killed = Date.now();
    h.sim.setVoiceState(USERS[1]!, ROOM_B); // nobody delivers this until the lease lapses
    await until(() => hubEqualsDiscord().length === 0, "the successor's sync to carry the join", TEST_LEASE_TTL_MS + 3_000);
    expect(Date.now() - killed).toBeLessThan(TEST_LEASE_TTL_MS + 2_000);
    expect(await leaseOf(successor)).toMatchObject({ state: "holding", term: 2 });
    expect(successor.guilds.get(GUILD)!.outbox.lease.termsHeld).toBe(1);
  });
});

describe("a lease per guild", () => {
  // (id >> 22) % 2: A rides shard 0, B shard 1.
  const GUILD_A = "1258291200000000000";
  const GUILD_B = "1258291200004194304";
  const ROOM = { [GUILD_A]: "120000000000000001", [GUILD_B]: "120000000000000002" } as const;

  async function twoGuilds(): Promise<Harness> {
    return startHarness({
      sim: { guildId: GUILD_A, channels: [{ id: ROOM[GUILD_A], name: "A", type: 2 }], guilds: [{ guildId: GUILD_B, channels: [{ id: ROOM[GUILD_B], name: "B", type: 2 }] }], recommendedShards: 2 },
      config: { PRIMARY_GUILD_ID: GUILD_A, ALLOWED_GUILD_IDS: [GUILD_B], SHARD_COUNT: 2 },
    });
  }

  it("moves guild A to a new shard-0 process while guild B goes on being served by the old one, without a gap", async () => {
    h = await twoGuilds();
    await until(() => h!.hub.holder(GUILD_A) && h!.hub.holder(GUILD_B), "the old process to hold both guilds");
    const old = h.hub.holder(GUILD_B)!;
    const shardZero = await startProcess({ shardIds: [0] });
    await leaseState(shardZero, ["standby"], "the new shard-0 process to stand by for A", GUILD_A);

    // The old process loses its way to A's hub (only A's): its lease of A lapses and the standby takes A.
    h.hub.onPost = ({ instance, guildId }) => (instance === old.instance && guildId === GUILD_A ? 503 : undefined);
    await until(() => (h!.hub.holder(GUILD_A) && h!.hub.holder(GUILD_A)!.instance !== old.instance) || undefined, "the new process to take A", TEST_LEASE_TTL_MS + 3_000);
    h.sim.guild(GUILD_A).setVoiceState(USERS[0]!, ROOM[GUILD_A]);
    h.sim.guild(GUILD_B).setVoiceState(USERS[1]!, ROOM[GUILD_B]);
    await until(() => hubEqualsDiscord(GUILD_A).length === 0 && hubEqualsDiscord(GUILD_B).length === 0, "both guilds' joins");
    h.hub.onPost = undefined;
    await leaseState(h!.service, ["standby"], "the old process to stand by for A", GUILD_A);

    // B never changed hands and was never refused; the old process stayed healthy and kept its Discord sessions.
    expect(h.hub.holder(GUILD_B)).toEqual(old);
    expect(h.hub.posts.filter((post) => post.guilds.includes(GUILD_B) && post.status !== 200)).toEqual([]);
    expect(h.hub.leaseRequests.filter((request) => request.guildId === GUILD_B && request.status !== 200)).toEqual([]);
    expect(h.hub.writes.filter((write) => write.guildId === GUILD_B).every((write) => write.instance === old.instance)).toBe(true);
    expect((await healthz(h.service)).status).toBe(200);
    expect(await leaseOf(h.service, GUILD_B)).toMatchObject({ state: "holding", term: old.term });
    expect(h.service.metricsText()).toContain(`gateway_guild_lease_state{guild="${GUILD_B}",shard="1",state="holding"} 1`);
    expect(h.service.shards.get(0)!.state).toBe("ready");
  });

  it("refuses a fenced holder's late batch, applies none of it, and the hub equals Discord", async () => {
    h = await startHarness();
    await until(() => h!.hub.accepted.length === 1, "the first holder's guild.sync");
    const first = h.hub.holder(GUILD)!.instance;
    const successor = await startProcess();
    await leaseState(successor, ["standby"], "the successor to stand by");

    // The holder loses its way to the hub: its join waits in its queue while its lease lapses.
    h.hub.onPost = ({ instance }) => (instance === first ? 503 : undefined);
    h.sim.setVoiceState(USERS[0]!, ROOM_A);
    await until(() => h!.hub.holder(GUILD)?.instance === successor.guilds.get(GUILD)!.outbox.lease.identity().instance || undefined, "the successor to take over", TEST_LEASE_TTL_MS + 3_000);
    h.sim.setVoiceState(USERS[0]!, ROOM_B);
    await until(() => h!.hub.summary().includes(`voice.joined:${USERS[0]}@${ROOM_B}`), "the move, from the successor");

    const acceptedBefore = h.hub.accepted.length;
    h.hub.onPost = undefined; // the old holder's queued batch (the join to A, its old term) arrives late
    await until(() => h!.hub.posts.some((post) => post.instance === first && post.error === "lease_lost"), "the late batch refused as lease_lost");
    await leaseState(h!.service, ["standby", "fenced"], "the old holder to stand by");
    expect(h.hub.accepted.slice(acceptedBefore)).toEqual([]);
    expect(hubEqualsDiscord()).toEqual([]);
    const terms = h.hub.writes.map((write) => write.term!);
    expect(terms, "no write of an older term after a newer one").toEqual([...terms].sort((a, b) => a - b));
    expect((await healthz(h.service)).status, "standing by for a live holder is healthy").toBe(200);
  });

  it("keeps an idle holder's lease with heartbeats: a standby process never takes over a live holder", async () => {
    h = await startHarness();
    await until(() => h!.hub.accepted.length === 1, "the guild.sync");
    const holder = h.hub.holder(GUILD)!;
    const standby = await startProcess();
    await new Promise((resolve) => setTimeout(resolve, 3 * TEST_LEASE_TTL_MS)); // idle: nothing happens in Discord
    expect(h.hub.holder(GUILD)).toEqual(holder);
    expect(h.hub.leaseRequests.filter((r) => r.instance === holder.instance && r.status === 200).length).toBeGreaterThanOrEqual(4);
    expect(await leaseOf(standby)).toMatchObject({ state: "standby" });
    expect(standby.guilds.get(GUILD)!.outbox.lease.termsHeld).toBe(0);
  });

  it("keeps its instance and term across a restart on the same host: no new term, no sync owed", async () => {
    const store = memorySessionStore();
    h = await startHarness({ deps: { sessionStore: store } });
    await until(() => h!.hub.accepted.length === 1 && h!.service.outbox.depth === 0, "the guild.sync");
    const before = h.hub.holder(GUILD)!;
    await h.service.abort(); // killed: the restart finds its lease still held by itself
    await h.restart({ sessionStore: store });
    h.sim.setVoiceState(USERS[2]!, ROOM_A);
    await until(() => h!.hub.summary().includes(`voice.joined:${USERS[2]}@${ROOM_A}`), "the join after the restart");
    expect(h.hub.holder(GUILD)).toEqual(before);
    expect(h.hub.posts.filter((post) => post.status === 409)).toEqual([]);
  });
});

describe("an edge of the previous release", () => {
  it("answering 409 superseded: the gateway stands by and retries, and delivers once the edge grants it", async () => {
    h = await startHarness();
    h.hub.previousRelease = true;
    await until(() => h!.hub.accepted.length === 1, "the first process's guild.sync");
    const behind = await startProcess({ skewMs: -30_000 }); // an older start time: the previous release refuses it
    await until(() => h!.hub.posts.some((post) => post.error === "superseded"), "a 409 superseded");
    expect(await leaseOf(behind)).toMatchObject({ state: "standby", reason: "superseded" });
    expect((await healthz(behind)).status).toBe(200);

    await h.service.stop();
    h.hub.previousRelease = false; // the edge is upgraded
    h.sim.setVoiceState(USERS[0]!, ROOM_A);
    await until(() => hubEqualsDiscord().length === 0 && h!.hub.holder(GUILD) !== undefined, "the standby to deliver once granted");
    expect(await leaseOf(behind)).toMatchObject({ state: "holding" });
  });
});
