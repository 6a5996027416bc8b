import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { fileSessionStore, memorySessionStore, type SessionStore } from "../src/session-store.js";
import { silentLogger } from "../src/log.js";
import { FAST, GUILD, startHarness, storedShardSession, until, ROOM_A, ROOM_B, USERS, type Harness } from "./support/harness.js";
import { discordTruth, hubPicture, pictureDiff } from "./support/hub-model.js";

/** What the session file says, and how a crash looks: no close frame, no flush. */
let h: Harness;
let dir: string | undefined;
afterEach(async () => {
  await h?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

function fileStore(): { store: SessionStore; read: () => { sessionId: string; seq: number }; owed: () => boolean } {
  dir = mkdtempSync(join(tmpdir(), "gw-commit-"));
  const file = join(dir, "session.json");
  const owed = () => existsSync(file) && (JSON.parse(readFileSync(file, "utf8")) as { guilds: Record<string, { syncOwed: boolean }> }).guilds[GUILD]?.syncOwed === true;
  return { store: fileSessionStore(file, silentLogger), read: () => storedShardSession(file), owed };
}

function crash(): void {
  h.service.shard.destroy();
  h.service.outbox.stop();
}

/** The hub's picture equals Discord's and nothing is left to deliver. */
function converged(): boolean {
  return h.service.outbox.depth === 0 && pictureDiff(hubPicture(h.hub.accepted), discordTruth(h.sim.guild(GUILD))).length === 0;
}

describe("what the session file commits", () => {
  it("resyncs after a restart that came between a new session's READY and its accepted guild.sync", async () => {
    const { store, owed } = fileStore();
    h = await startHarness({ deps: { sessionStore: store } });
    await until(() => h.hub.syncs() === 1, "the first guild.sync");
    h.sim.setVoiceState(USERS[0]!, ROOM_A);
    await until(() => h.hub.accepted.length === 2, "the join");

    h.hub.failWith = 503; // the new session's sync will not be accepted before the crash
    h.sim.invalidateSession(false); // Discord ends the session: the gateway identifies anew
    await until(() => h.sim.state().identifyCount === 2 && owed(), "the file to say the hub is owed the new session's picture");
    h.sim.setVoiceState(USERS[1]!, ROOM_B); // the hub has not seen these yet
    h.sim.setVoiceState(USERS[0]!, null);
    await until(() => h.service.outbox.depth > 0, "the undelivered sync");
    crash();

    h.hub.failWith = undefined;
    await h.restart();
    // The file says the hub is owed the new session's picture: a RESUME would not carry it, so the shard IDENTIFYs.
    await until(() => h.sim.state().identifyCount === 3, "an IDENTIFY, not a RESUME");
    await until(converged, "the hub to converge");
    expect(h.sim.state().resumeCount).toBe(0);
  });

  it("moves the position past mute toggles queued behind an undelivered join only once the join is delivered", async () => {
    const { store, read } = fileStore();
    h = await startHarness({ deps: { sessionStore: store, settings: { ...FAST, outboxMaxEvents: 20, sessionWriteIntervalMs: 20 } } });
    await until(() => h.hub.syncs() === 1, "the first guild.sync");
    h.sim.setVoiceState(USERS[0]!, ROOM_A);
    await until(() => h.hub.accepted.length === 2 && h.service.outbox.depth === 0, "the join");
    const before = await until(() => read().seq === h.sim.state().sessions[0]!.seq && read().seq, "the join's position stored");

    h.hub.failWith = 503;
    h.sim.setVoiceState(USERS[1]!, ROOM_A); // one queued state ...
    for (let i = 0; i < 30; i++) h.sim.setVoiceState(USERS[0]!, ROOM_A, { selfMute: i % 2 === 0 }); // ... and many toggles behind it
    await until(() => h.service.shard.session!.seq === h.sim.state().sessions[0]!.seq, "the toggles read by the gateway");
    await new Promise((resolve) => setTimeout(resolve, 100)); // several write intervals
    expect(read().seq).toBe(before);
    h.hub.failWith = undefined;
    await until(converged, "the join and the toggles delivered");
    await until(() => read().seq === h.sim.state().sessions[0]!.seq || undefined, "the position stored past them");

    crash();
    await h.restart();
    await until(() => h.sim.state().resumeCount === 1, "a RESUME");
    h.sim.setVoiceState(USERS[1]!, null); // Discord sends only channel_id null: the hub knows where they were
    await until(converged, "USERS[1]'s leave");
  });

  it("keeps running without resume when the session file cannot be written, and says so", async () => {
    const broken: SessionStore = { load: () => undefined, save: () => { throw new Error("EROFS: read-only file system"); } };
    h = await startHarness({ deps: { sessionStore: broken } });
    await until(() => h.hub.accepted.length === 1, "the first guild.sync");
    h.sim.setVoiceState(USERS[0]!, ROOM_A);
    await until(() => h.hub.accepted.length === 2, "the join, delivered despite the failing file");
    const health = await fetch(`http://127.0.0.1:${h.service.healthPort}/healthz`);
    expect(await health.json()).toMatchObject({ sessionFile: "failing" });
    expect(h.service.metricsText()).toMatch(/^gateway_session_file_ok 0$/m);
    expect(h.sim.state().identifyCount).toBe(1);
  });
});

describe("refusals from the hub", () => {
  it("splits a batch the hub answers 413 and delivers every event", async () => {
    h = await startHarness({ deps: { sessionStore: memorySessionStore() } });
    await until(() => h.hub.syncs() === 1, "the first guild.sync");
    await h.hub.stop();
    for (let i = 0; i < 4; i++) h.sim.setVoiceState(USERS[i]!, ROOM_A);
    await until(() => h.service.outbox.depth === 4, "four queued joins");
    h.hub.maxEventsPerPost = 1; // the hub takes one event per request
    await h.hub.start(h.hub.port);
    await until(() => h.service.outbox.depth === 0, "the outbox to drain");
    expect(h.hub.posts.some((post) => post.status === 413)).toBe(true);
    expect(converged()).toBe(true);
  });

  it("drops only the state the hub rejects as invalid (logged); the user's next state corrects the hub", async () => {
    h = await startHarness({ deps: { sessionStore: memorySessionStore() } });
    await until(() => h.hub.syncs() === 1, "the first guild.sync");
    await h.hub.stop();
    for (let i = 0; i < 4; i++) h.sim.setVoiceState(USERS[i]!, ROOM_A);
    await until(() => h.service.outbox.depth === 4, "four queued joins");
    h.hub.rejectIf = (event) => event.event === "voice.state" && event.payload.userId === USERS[2] && event.payload.channelId === ROOM_A;
    await h.hub.start(h.hub.port);
    await until(() => h.service.outbox.depth === 0, "the outbox to drain");
    expect(h.hub.summary().filter((s) => s.startsWith("voice.joined"))).toEqual([0, 1, 3].map((i) => `voice.joined:${USERS[i]}@${ROOM_A}`));
    expect(h.service.outbox.stats.dropped).toBe(1);
    h.sim.setVoiceState(USERS[2]!, ROOM_B);
    await until(converged, "the hub to equal Discord after USERS[2]'s next state");
    expect(h.sim.state().identifyCount).toBe(1);
  });
});
