import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { silentLogger } from "../src/log.js";
import { fileSessionStore, memorySessionStore } from "../src/session-store.js";
import { startGatewayService, type GatewayService } from "../src/service.js";
import { FAST, startHarness, storedShardSession, until, USERS, type Harness } from "./support/harness.js";
import { discordTruth, hubPicture, pictureDiff } from "./support/hub-model.js";

// (id >> 22) % 2: A and C ride shard 0, B rides shard 1.
const GUILD_A = "1258291200000000000";
const GUILD_B = "1258291200004194304";
const GUILD_C = "1258291200008388608";
const ROOM = { [GUILD_A]: "120000000000000001", [GUILD_B]: "120000000000000002", [GUILD_C]: "120000000000000003" } as const;
const GUILDS = [GUILD_A, GUILD_B, GUILD_C] as const;

let h: Harness | undefined;
const others: GatewayService[] = [];
let dir: string | undefined;
afterEach(async () => {
  for (const service of others.splice(0)) await service.stop().catch(() => undefined);
  await h?.close();
  h = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

/** Three guilds, Discord recommending two shards; the gateway configured with the edge's guild list. */
function threeGuilds(options: Parameters<typeof startHarness>[0] = {}): Promise<Harness> {
  return startHarness({
    ...options,
    sim: {
      guildId: GUILD_A,
      channels: [{ id: ROOM[GUILD_A], name: "A", type: 2 }],
      guilds: [
        { guildId: GUILD_B, channels: [{ id: ROOM[GUILD_B], name: "B", type: 2 }] },
        { guildId: GUILD_C, channels: [{ id: ROOM[GUILD_C], name: "C", type: 2 }] },
      ],
      recommendedShards: 2,
      ...options.sim,
    },
    config: { PRIMARY_GUILD_ID: GUILD_A, ALLOWED_GUILD_IDS: [GUILD_B, GUILD_C], ...options.config },
  });
}

const syncsOf = (hub: Harness["hub"], guild: string) => hub.syncs(guild);
const allSynced = (hub: Harness["hub"]) => GUILDS.every((guild) => syncsOf(hub, guild) === 1);

describe("several guilds on several shards", () => {
  it("identifies each shard with [id, count] from GET /gateway/bot and sends each guild's events, in their own batches, to that guild's hub", async () => {
    h = await threeGuilds();
    await until(() => allSynced(h!.hub), "one guild.sync per guild");
    const identifies = h.sim.received.filter((r) => r.op === 2).map((r) => (r.d as { shard: [number, number] }).shard);
    expect(identifies.sort()).toEqual([[0, 2], [1, 2]]);

    for (const guild of GUILDS) h.sim.guild(guild).setVoiceState(USERS[0]!, ROOM[guild]);
    await until(() => GUILDS.every((guild) => h!.hub.summary(guild).includes(`voice.joined:${USERS[0]}@${ROOM[guild]}`)), "each guild's join");
    for (const guild of GUILDS) {
      expect(h.hub.summary(guild)).toEqual([`guild.sync:0`, `room.created:${ROOM[guild]}`, `voice.joined:${USERS[0]}@${ROOM[guild]}`]);
    }
    // Every request carries one guild's events: the edge hands the batch to that guild's hub alone.
    expect(h.hub.posts.filter((post) => post.status === 200).every((post) => post.guilds.length === 1)).toBe(true);
    expect(h.hub.idConflicts).toEqual([]);
  });

  it("resumes a dropped shard on its own while the other shard goes on delivering", async () => {
    h = await threeGuilds();
    await until(() => allSynced(h!.hub), "one guild.sync per guild");
    const shardZeroSession = h.sim.state().sessions.find((s) => s.shard[0] === 0)!.id;
    h.sim.dropConnections(1);
    h.sim.guild(GUILD_A).setVoiceState(USERS[0]!, ROOM[GUILD_A]); // shard 0, unaffected
    h.sim.guild(GUILD_B).setVoiceState(USERS[1]!, ROOM[GUILD_B]); // shard 1, sent while it reconnects
    await until(() => h!.hub.summary(GUILD_B).includes(`voice.joined:${USERS[1]}@${ROOM[GUILD_B]}`), "shard 1's join after its RESUME");
    await until(() => h!.hub.summary(GUILD_A).includes(`voice.joined:${USERS[0]}@${ROOM[GUILD_A]}`), "shard 0's join");
    expect(h.sim.state().resumeCount).toBe(1);
    expect(h.sim.state().identifyCount).toBe(2);
    expect(h.service.shards.get(0)!.reconnects).toBe(0);
    expect(h.service.shards.get(1)!.resumes).toBe(1);
    expect(h.service.shards.get(0)!.session?.sessionId).toBe(shardZeroSession);
    // A RESUME replays what was missed: no guild resyncs, nothing arrives twice.
    expect(GUILDS.map((guild) => syncsOf(h!.hub, guild))).toEqual([1, 1, 1]);
    expect(h.hub.summary(GUILD_B).filter((s) => s.startsWith("voice.joined"))).toHaveLength(1);
  });

  it("resyncs a guild after its outage (GUILD_DELETE unavailable, then GUILD_CREATE) without touching the others", async () => {
    h = await threeGuilds();
    await until(() => allSynced(h!.hub), "one guild.sync per guild");
    const outage = h.sim.guild(GUILD_C);
    outage.guildOutage();
    await until(() => h!.hub.summary(GUILD_C).includes("guild.status:unavailable") || undefined, "the outage at GUILD_C's hub");
    outage.setVoiceState(USERS[2]!, ROOM[GUILD_C]); // missed: Discord sends nothing for an unavailable guild
    h.sim.guild(GUILD_A).setVoiceState(USERS[0]!, ROOM[GUILD_A]); // same shard, still delivered
    outage.restoreGuild();
    await until(() => syncsOf(h!.hub, GUILD_C) === 2, "GUILD_C's second guild.sync");
    await until(() => h!.hub.summary(GUILD_A).includes(`voice.joined:${USERS[0]}@${ROOM[GUILD_A]}`), "GUILD_A's join");
    // The missed join, in the picture.
    expect(h.hub.summary(GUILD_C).slice(-4)).toEqual(["guild.status:unavailable", "guild.sync:1", "guild.status:available", `voice.joined:${USERS[2]}@${ROOM[GUILD_C]}`]);
    expect(syncsOf(h.hub, GUILD_A)).toBe(1);
    expect(syncsOf(h.hub, GUILD_B)).toBe(1);
    expect(h.sim.state().identifyCount).toBe(2);
  });

  it("paces IDENTIFYs: one per max_concurrency bucket per window, buckets side by side", async () => {
    // The simulator enforces a window a little shorter than the gateway keeps, so a frame read late on a loaded
    // machine cannot make a paced pair look too close; without pacing they would be milliseconds apart.
    const windowMs = 300;
    const settings = { ...FAST, shard: { ...FAST.shard, identifySpacingMs: 400 } };
    h = await threeGuilds({
      sim: { recommendedShards: 4, identifyIntervalMs: windowMs, sessionStartLimit: { total: 1000, remaining: 1000, resetAfterMs: 60_000, maxConcurrency: 2 } },
      deps: { settings },
    });
    await until(() => h!.sim.state().identifies.length === 4 && allSynced(h!.hub), "four shards identified", 5_000);
    const identifies = h.sim.state().identifies;
    expect(identifies.every((i) => i.outcome === "ready"), JSON.stringify(identifies)).toBe(true);
    for (const bucket of [0, 1]) {
      const times = identifies.filter((i) => i.bucket === bucket).map((i) => i.at);
      expect(times).toHaveLength(2);
      expect(Math.abs(times[1]! - times[0]!)).toBeGreaterThanOrEqual(windowMs);
    }
  });

  it("runs only SHARD_IDS, so two processes split one bot's shards and each serves its own guilds", async () => {
    h = await threeGuilds({ config: { SHARD_COUNT: 2, SHARD_IDS: [0] } });
    const second = await startGatewayService({ ...h.config, SHARD_IDS: [1] }, { log: silentLogger, settings: FAST, sessionStore: memorySessionStore() });
    others.push(second);
    await until(() => allSynced(h!.hub), "one guild.sync per guild, from two processes");
    expect([...h.service.guilds.keys()].sort()).toEqual([GUILD_A, GUILD_C]);
    expect([...second.guilds.keys()]).toEqual([GUILD_B]);
    h.sim.guild(GUILD_B).setVoiceState(USERS[0]!, ROOM[GUILD_B]);
    await until(() => h!.hub.summary(GUILD_B).includes(`voice.joined:${USERS[0]}@${ROOM[GUILD_B]}`), "GUILD_B's join from the second process");
    expect(h.hub.posts.some((post) => post.status === 409)).toBe(false); // neither stands the other down
    expect(second.guilds.get(GUILD_B)!.outbox.stats.delivered).toBe(2);
    expect(h.service.guilds.get(GUILD_A)!.outbox.stats.delivered).toBe(1);
  });

  it("keeps every shard's session in SESSION_FILE, and a restart resumes each one", async () => {
    dir = mkdtempSync(join(tmpdir(), "gw-shards-"));
    const file = join(dir, "session.json");
    h = await threeGuilds({ deps: { sessionStore: fileSessionStore(file, silentLogger) } });
    await until(() => allSynced(h!.hub) && storedShardSession(file, 0).seq > 0 && storedShardSession(file, 1).seq > 0, "both shards stored");
    await h.service.stop();
    h.sim.guild(GUILD_B).setVoiceState(USERS[0]!, ROOM[GUILD_B]); // while the process is down
    await h.restart();
    await until(() => h!.sim.state().resumeCount === 2, "both shards resumed");
    await until(() => h!.hub.summary(GUILD_B).includes(`voice.joined:${USERS[0]}@${ROOM[GUILD_B]}`), "the join replayed on resume");
    expect(h.sim.state().identifyCount).toBe(2);
    expect(GUILDS.map((guild) => syncsOf(h!.hub, guild))).toEqual([1, 1, 1]);
  });

  it("after a restart, replays from its slowest guild: what another guild of the shard had delivered arrives again under the same ids and publishes nothing twice", async () => {
    dir = mkdtempSync(join(tmpdir(), "gw-shards-"));
    const file = join(dir, "session.json");
    h = await threeGuilds({ deps: { sessionStore: fileSessionStore(file, silentLogger), settings: { ...FAST, sessionWriteIntervalMs: 20 } } });
    await until(() => allSynced(h!.hub), "one guild.sync per guild");
    const second = h.sim.guild(GUILD_A).createChannel({ name: "A2", type: 2 });
    await until(() => h!.hub.summary(GUILD_A).includes(`room.created:${second.id}`), "GUILD_A's second room");
    // GUILD_C's hub fails: its join waits, and shard 0 can only be resumed from before it.
    h.hub.failGuild = GUILD_C;
    h.hub.failWith = 503;
    h.sim.guild(GUILD_C).setVoiceState(USERS[1]!, ROOM[GUILD_C]);
    // Meanwhile GUILD_A, on the same shard, delivers a join and a move.
    h.sim.guild(GUILD_A).setVoiceState(USERS[0]!, ROOM[GUILD_A]);
    h.sim.guild(GUILD_A).setVoiceState(USERS[0]!, second.id);
    await until(() => h!.hub.summary(GUILD_A).includes(`voice.joined:${USERS[0]}@${second.id}`), "GUILD_A's move");
    await new Promise((resolve) => setTimeout(resolve, 100)); // written, with shard 0 at GUILD_C's position
    await h.service.abort(); // killed: shard 0 resumes from GUILD_C's position
    h.hub.failWith = undefined;
    h.hub.failGuild = undefined;
    const duplicatesBefore = h.hub.duplicates;
    await h.restart();
    await until(() => h!.sim.state().resumeCount === 2, "both shards resumed");
    await until(() => h!.hub.summary(GUILD_C).includes(`voice.joined:${USERS[1]}@${ROOM[GUILD_C]}`), "GUILD_C's join after the restart");
    await until(() => h!.service.outbox.depth === 0, "every outbox drained");
    expect(h.hub.duplicates - duplicatesBefore, "GUILD_A's join and move, replayed").toBeGreaterThanOrEqual(2);
    expect(h.hub.summary(GUILD_A).filter((s) => s.startsWith("voice."))).toEqual([
      `voice.joined:${USERS[0]}@${ROOM[GUILD_A]}`,
      `voice.left:${USERS[0]}@${ROOM[GUILD_A]}`,
      `voice.joined:${USERS[0]}@${second.id}`,
    ]);
    expect(h.hub.idConflicts).toEqual([]);
  });

  it("reports /healthz and /metrics per shard and per guild", async () => {
    h = await threeGuilds();
    await until(() => allSynced(h!.hub) && h!.service.outbox.depth === 0, "one guild.sync per guild");
    const health = await fetch(`http://127.0.0.1:${h.service.healthPort}/healthz`);
    const body = (await health.json()) as Record<string, unknown>;
    expect(health.status).toBe(200);
    expect(body).toMatchObject({
      shards: { "0": { state: "ready", guilds: 2 }, "1": { state: "ready", guilds: 1 } },
      guilds: { [GUILD_A]: { shard: 0, state: "available" }, [GUILD_B]: { shard: 1, state: "available" }, [GUILD_C]: { shard: 0, state: "available" } },
    });
    h.sim.guild(GUILD_B).removeBot();
    await until(async () => (await fetch(`http://127.0.0.1:${h!.service.healthPort}/healthz`)).status === 503 || undefined, "unhealthy once a guild is lost");
    const text = h.service.metricsText();
    expect(text).toContain('gateway_shard_connection_state{shard="1",state="ready"} 1');
    expect(text).toContain(`gateway_guild_events_delivered_total{guild="${GUILD_B}",shard="1"} 1`);
    expect(text).toContain(`gateway_guild_available{guild="${GUILD_B}",shard="1"} 0`);
    expect(text).toContain(`gateway_guild_available{guild="${GUILD_A}",shard="0"} 1`);
    expect(text).toMatch(/^gateway_connection_state\{state="ready"\} 2$/m);
  });
});

describe("a one-guild deployment from before sharding", () => {
  it("resumes from a session file in the single-session format", async () => {
    dir = mkdtempSync(join(tmpdir(), "gw-legacy-"));
    const file = join(dir, "session.json");
    h = await startHarness({ deps: { sessionStore: fileSessionStore(file, silentLogger) } });
    await until(() => h!.hub.accepted.length === 1 && storedShardSession(file).seq > 0, "the first guild.sync, stored");
    await h.service.stop();
    const session = storedShardSession(file);
    // The file as the unsharded gateway wrote it: one session, one picture, no guild named.
    const view = { rooms: [{ channelId: "110000000000000001", name: "Pod A", parentId: null, userLimit: 4 }], members: [], syncDue: false };
    writeFileSync(file, JSON.stringify({ ...session, view }));
    await h.restart();
    await until(() => h!.sim.state().resumeCount === 1, "the legacy session resumed");
    // A legacy file names no instance: this process is a new one to the hub, whose new lease term (claimed at start)
    // begins with a whole picture, which a resumed session does not carry: the shard starts one fresh session for it.
    h.sim.setVoiceState(USERS[0]!, "110000000000000001");
    await until(() => pictureDiff(hubPicture(h!.hub.accepted), discordTruth(h!.sim.guild(h!.config.PRIMARY_GUILD_ID))).length === 0 || undefined, "the hub to equal Discord");
    expect(h.sim.state().identifyCount).toBe(2);
    const rewritten = JSON.parse(readFileSync(file, "utf8")) as { version: number; instance: string; guilds: Record<string, unknown> };
    expect(rewritten).toMatchObject({ version: 3, guilds: { [h.config.PRIMARY_GUILD_ID]: { syncOwed: false } } });
    expect(rewritten.instance).toBe(h.service.guilds.get(h.config.PRIMARY_GUILD_ID)!.outbox.lease.identity().instance);
  });
});
