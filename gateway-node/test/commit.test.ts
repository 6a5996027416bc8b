import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { fileSessionStore, memorySessionStore, type SessionStore } from "../src/session-store.js";
import { startHarness, storedShardSession, until, ROOM_A, ROOM_B, USERS, type Harness } from "./support/harness.js";

/** What the session file says, and how a crash looks: no close frame, no flush. */
let h: Harness;
let dir: string | undefined;
afterEach(async () => {
  await h?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

function fileStore(): { store: SessionStore; read: () => { sessionId: string; seq: number } } {
  dir = mkdtempSync(join(tmpdir(), "gw-commit-"));
  const file = join(dir, "session.json");
  return { store: fileSessionStore(file), read: () => storedShardSession(file) };
}

function crash(): void {
  h.service.shard.destroy();
  h.service.outbox.stop();
}

/** Who the hub believes is where, from the events it accepted (a sync replaces the picture). */
function hubPicture(): Map<string, string> {
  const where = new Map<string, string>();
  for (const event of h.hub.accepted) {
    if (event.event === "guild.sync") {
      if (!event.payload.part || event.payload.part.index === 0) where.clear();
      for (const state of event.payload.voiceStates) where.set(state.userId, state.channelId);
    } else if (event.event === "voice.joined") where.set(event.payload.userId, event.payload.channelId);
    else if (event.event === "voice.left" && where.get(event.payload.userId) === event.payload.channelId) where.delete(event.payload.userId);
  }
  return where;
}

function truth(): Map<string, string> {
  return new Map(h.sim.state().voiceStates.map((state) => [state.userId, state.channelId]));
}

/** The hub's picture equals Discord's and nothing is left to deliver. */
function converged(): boolean {
  const hub = hubPicture();
  const real = truth();
  return h.service.outbox.depth === 0 && hub.size === real.size && [...real].every(([user, channel]) => hub.get(user) === channel);
}

describe("what the session file commits", () => {
  it("resyncs after a restart that came between a new session's READY and its accepted guild.sync", async () => {
    const { store, read } = fileStore();
    h = await startHarness({ deps: { sessionStore: store } });
    await until(() => h.hub.accepted.length === 1, "the first guild.sync");
    h.sim.setVoiceState(USERS[0]!, ROOM_A);
    await until(() => h.hub.accepted.length === 2, "the join");
    const firstSession = read().sessionId;

    h.hub.failWith = 503; // the new session's sync will not be accepted before the crash
    h.sim.invalidateSession(false); // Discord ends the session: the gateway identifies anew
    await until(() => h.sim.state().identifyCount === 2 && read().sessionId !== firstSession && read(), "the new session to be stored");
    h.sim.setVoiceState(USERS[1]!, ROOM_B); // the hub has not seen these yet
    h.sim.setVoiceState(USERS[0]!, null); // a leave: only a picture that knows USERS[0] was in ROOM_A turns it into an event
    await until(() => h.service.outbox.depth > 0, "the undelivered sync");
    crash();

    h.hub.failWith = undefined;
    await h.restart();
    await until(() => h.sim.state().resumeCount === 1, "a RESUME of the new session");
    await until(converged, "the hub to converge");
    expect(hubPicture()).toEqual(truth());
  });

  it("does not commit a dispatch whose events straddle two batches", async () => {
    const { store, read } = fileStore();
    h = await startHarness({ deps: { sessionStore: store, settings: { outboxBatchSize: 1 } } });
    await until(() => h.hub.accepted.length === 1, "the first guild.sync");
    h.sim.setVoiceState(USERS[0]!, ROOM_A);
    await until(() => h.hub.accepted.length === 2 && h.service.outbox.depth === 0, "the join");
    const before = read().seq;

    // A move is two events from one dispatch; the hub accepts the first and then goes away.
    let answered = 0;
    const original = h.hub.failWith;
    h.hub.onPost = () => (++answered > 1 ? 503 : original);
    h.sim.setVoiceState(USERS[0]!, ROOM_B);
    await until(() => h.hub.posts.some((post) => post.status === 503), "the second half refused");
    expect(read().seq).toBe(before); // the move's dispatch is not committed: half of it is not delivered
    crash();

    h.hub.onPost = undefined;
    await h.restart();
    await until(() => h.service.outbox.depth === 0 && hubPicture().get(USERS[0]!) === ROOM_B, "the move's second half");
    expect(hubPicture()).toEqual(truth());
  });

  it("keeps the committed picture complete however many dispatches wait behind an undelivered event", async () => {
    const { store } = fileStore();
    h = await startHarness({ deps: { sessionStore: store, settings: { outboxMaxEvents: 20 } } });
    await until(() => h.hub.accepted.length === 1, "the first guild.sync");
    h.sim.setVoiceState(USERS[0]!, ROOM_A);
    await until(() => h.hub.accepted.length === 2 && h.service.outbox.depth === 0, "the join");

    h.hub.failWith = 503;
    h.sim.setVoiceState(USERS[1]!, ROOM_A); // one queued event ...
    for (let i = 0; i < 30; i++) h.sim.setVoiceState(USERS[0]!, ROOM_A, { selfMute: i % 2 === 0 }); // ... behind many mute toggles
    await until(() => h.sim.state().sessions[0]!.seq >= 33, "the toggles to be dispatched");
    h.hub.failWith = undefined;
    await until(() => h.service.outbox.depth === 0 && hubPicture().get(USERS[1]!) === ROOM_A, "the join to be delivered");

    crash();
    await h.restart();
    await until(() => h.sim.state().resumeCount === 1, "a RESUME");
    h.sim.setVoiceState(USERS[1]!, null); // Discord sends only channel_id null: the view must know where they were
    await until(() => h.service.outbox.depth === 0 && !hubPicture().has(USERS[1]!), "USERS[1]'s leave");
    expect(hubPicture()).toEqual(truth());
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
    await until(() => h.hub.accepted.length === 1, "the first guild.sync");
    await h.hub.stop();
    for (let i = 0; i < 4; i++) h.sim.setVoiceState(USERS[i]!, ROOM_A);
    await until(() => h.service.outbox.depth === 4, "four queued joins");
    h.hub.maxEventsPerPost = 1; // the hub takes one event per request
    await h.hub.start(h.hub.port);
    await until(() => h.service.outbox.depth === 0, "the outbox to drain");
    expect(h.hub.posts.some((post) => post.status === 413)).toBe(true);
    expect(hubPicture()).toEqual(truth());
  });

  it("drops only the event the hub rejects as invalid, and resyncs", async () => {
    h = await startHarness({ deps: { sessionStore: memorySessionStore() } });
    await until(() => h.hub.accepted.length === 1, "the first guild.sync");
    await h.hub.stop();
    for (let i = 0; i < 4; i++) h.sim.setVoiceState(USERS[i]!, ROOM_A);
    await until(() => h.service.outbox.depth === 4, "four queued joins");
    h.hub.rejectIf = (event) => event.event === "voice.joined" && event.payload.userId === USERS[2];
    await h.hub.start(h.hub.port);
    await until(() => h.service.outbox.depth === 0 && h.hub.accepted.filter((e) => e.event === "guild.sync").length === 2, "the resync");
    h.hub.rejectIf = undefined;
    expect(h.hub.summary().filter((s) => s.startsWith("voice.joined"))).toEqual(
      [0, 1, 3].map((i) => `voice.joined:${USERS[i]}@${ROOM_A}`),
    );
    expect(hubPicture()).toEqual(truth());
  });
});
