import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { fileSessionStore } from "../src/session-store.js";
import { silentLogger } from "../src/log.js";
import { discordTruth, hubPicture, pictureDiff } from "./support/hub-model.js";
import { GUILD, ROOM_A, ROOM_B, startHarness, storedShardSession, until, USERS, type Harness } from "./support/harness.js";

/** Guilds joining and leaving what the bot serves: added to the list, the bot removed and invited again. */
let h: Harness | undefined;
let dir: string | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

function sessionFile(): { file: string; store: ReturnType<typeof fileSessionStore> } {
  dir = mkdtempSync(join(tmpdir(), "gw-membership-"));
  const file = join(dir, "session.json");
  return { file, store: fileSessionStore(file, silentLogger) };
}

const hubEqualsDiscord = (guildId = GUILD) => pictureDiff(hubPicture(h!.hub.accepted.filter((e) => e.payload.guildId === guildId)), discordTruth(h!.sim.guild(guildId)));

async function healthz(): Promise<{ status: number; body: { guilds: Record<string, { state: string }> } }> {
  const response = await fetch(`http://127.0.0.1:${h!.service.healthPort}/healthz`);
  return { status: response.status, body: (await response.json()) as never };
}

// (id >> 22) % 2: A and C ride shard 0.
const GUILD_A = "1258291200000000000";
const GUILD_C = "1258291200008388608";
const ROOM_OF_A = "120000000000000001";
const ROOM_OF_C = "120000000000000003";

describe("a guild added to ALLOWED_GUILD_IDS", () => {
  it("is synced by the restart that serves it, although the shard's session could be resumed, and its later joins arrive", async () => {
    const { file, store } = sessionFile();
    h = await startHarness({
      sim: { guildId: GUILD_A, channels: [{ id: ROOM_OF_A, name: "A", type: 2 }], guilds: [{ guildId: GUILD_C, channels: [{ id: ROOM_OF_C, name: "C", type: 2 }] }], recommendedShards: 2 },
      config: { PRIMARY_GUILD_ID: GUILD_A, SHARD_COUNT: 2 },
      deps: { sessionStore: store },
    });
    await until(() => h!.hub.syncs(GUILD_A) === 1 && storedShardSession(file, 0).seq > 0, "GUILD_A's sync, and shard 0's session stored");
    h.sim.guild(GUILD_C).setVoiceState(USERS[0]!, ROOM_OF_C); // someone is in C before the gateway serves it
    await h.service.stop();

    h.config.ALLOWED_GUILD_IDS = [GUILD_C]; // the operator adds C, then restarts
    await h.restart();
    await until(() => hubEqualsDiscord(GUILD_C).length === 0 || undefined, "C's room and member at its hub", 8_000).catch(() => {
      throw new Error(`C's hub differs from Discord: ${hubEqualsDiscord(GUILD_C).join("; ")}`);
    });
    h.sim.guild(GUILD_C).setVoiceState(USERS[1]!, ROOM_OF_C);
    await until(() => h!.hub.summary(GUILD_C).includes(`voice.joined:${USERS[1]}@${ROOM_OF_C}`), "C's later join");
    expect(hubEqualsDiscord(GUILD_A)).toEqual([]);
    const health = await healthz();
    expect(health.status).toBe(200);
    expect(health.body.guilds[GUILD_C]).toMatchObject({ state: "available" });
  });
});

describe("the bot removed from a guild", () => {
  it("empties the guild's hub: no rooms, no members, status absent, and /healthz is 503", async () => {
    h = await startHarness();
    await until(() => h!.hub.syncs() === 1, "the first guild.sync");
    h.sim.setVoiceState(USERS[0]!, ROOM_A);
    await until(() => h!.hub.summary().includes(`voice.joined:${USERS[0]}@${ROOM_A}`), "the join");
    h.sim.removeBot();
    await until(() => hubEqualsDiscord().length === 0 || undefined, "the hub to show nothing", 5_000).catch(() => {
      throw new Error(`the hub still shows: ${hubEqualsDiscord().join("; ")}`);
    });
    expect(h.hub.summary().slice(-3)).toEqual(["guild.status:absent", `room.deleted:${ROOM_A}`, `room.deleted:${ROOM_B}`]);
    await until(async () => (await healthz()).status === 503 || undefined, "/healthz 503");
  });

  it("invited again after a restart that resumed: the new GUILD_CREATE gives the hub the guild as it is, with no ghosts", async () => {
    const { file, store } = sessionFile();
    h = await startHarness({ deps: { sessionStore: store } });
    await until(() => h!.hub.syncs() === 1, "the first guild.sync");
    h.sim.setVoiceState(USERS[0]!, ROOM_A);
    h.sim.setVoiceState(USERS[1]!, ROOM_A);
    await until(() => h!.hub.summary().includes(`voice.joined:${USERS[1]}@${ROOM_A}`) && h!.service.outbox.depth === 0, "both joins");
    h.sim.removeBot();
    await until(async () => ["removed", "absent"].includes((await healthz()).body.guilds[GUILD]?.state ?? "") || undefined, "the removal seen");
    await until(() => storedShardSession(file).seq === h!.sim.state().sessions[0]!.seq || undefined, "the removal's seq stored");
    await h.service.stop();

    h.sim.setVoiceState(USERS[1]!, null); // while the bot is out: Discord tells it nothing
    await h.restart();
    await until(() => h!.sim.state().resumeCount === 1, "the session resumed");
    h.sim.restoreGuild(); // invited again: GUILD_CREATE on the live session
    await until(() => hubEqualsDiscord().length === 0 || undefined, "the hub to equal Discord", 5_000).catch(() => {
      throw new Error(`the hub differs from Discord: ${hubEqualsDiscord().join("; ")}`);
    });
    expect(hubPicture(h.hub.accepted).members).toEqual(new Map([[USERS[0]!, ROOM_A]]));
    await until(async () => (await healthz()).status === 200 || undefined, "/healthz 200 again");
  });
});
