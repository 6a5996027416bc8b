import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { fileSessionStore } from "../src/session-store.js";
import { silentLogger } from "../src/log.js";
import { startHarness, storedShardSession, until, ROOM_A, ROOM_B, USERS, type Harness } from "./support/harness.js";

let h: Harness;
let dir: string;
afterEach(async () => {
  await h?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("restarting with SESSION_FILE", () => {
  it("resumes the stored session and delivers what the hub had not accepted, exactly once", async () => {
    dir = mkdtempSync(join(tmpdir(), "gw-session-"));
    const file = join(dir, "session.json");
    h = await startHarness({ deps: { sessionStore: fileSessionStore(file, silentLogger) } });
    await until(() => h.hub.syncs() === 1, "guild.sync");
    h.sim.setVoiceState(USERS[0]!, ROOM_A);
    await until(() => h.hub.accepted.length === 2, "the first join");
    const read = () => storedShardSession(file);
    // The commit is written just after the hub's answer: wait until it covers everything the session has seen.
    const stored = await until(() => read().seq === h.sim.state().sessions[0]!.seq && read(), "the join's seq to be stored");
    expect(stored.sessionId).toBe(h.sim.state().sessions[0]!.id);

    // The hub goes away, events arrive, and the process dies without flushing.
    await h.hub.stop();
    h.sim.setVoiceState(USERS[1]!, ROOM_A);
    h.sim.setVoiceState(USERS[0]!, ROOM_B); // a move
    h.sim.setVoiceState(USERS[1]!, null); // a leave: Discord sends only channel_id null
    await until(() => h.service.outbox.depth >= 3, "undelivered states");
    h.service.shard.destroy(); // a crash: no close frame, no flush
    h.service.outbox.stop();
    expect(read().seq).toBe(stored.seq);

    await h.hub.start(h.hub.port);
    await h.restart();
    await until(() => h.sim.state().resumeCount === 1, "a RESUME of the stored session");
    await until(() => h.hub.accepted.length === 5, "the replayed states");
    expect(h.sim.state().identifyCount).toBe(1);
    expect(h.hub.summary().slice(4)).toEqual([
      `voice.joined:${USERS[1]}@${ROOM_A}`,
      `voice.left:${USERS[0]}@${ROOM_A}`,
      `voice.joined:${USERS[0]}@${ROOM_B}`,
      `voice.left:${USERS[1]}@${ROOM_A}`,
    ]);
    // The hub's stream above has each state once. A POST the dying process had in flight may still land and be
    // replayed after the resume: delivery is at-least-once, and the hub drops such repeats by id.
    expect(h.hub.duplicates).toBeLessThanOrEqual(1);
  });

  it("advances the stored seq only past events the hub accepted", async () => {
    dir = mkdtempSync(join(tmpdir(), "gw-session-"));
    const file = join(dir, "session.json");
    h = await startHarness({ deps: { sessionStore: fileSessionStore(file, silentLogger) } });
    await until(() => h.hub.syncs() === 1, "guild.sync");
    const storedSeq = () => storedShardSession(file).seq;
    // The commit is written just after the hub's answer: wait until it covers everything the session has seen.
    const seqAfterSync = await until(() => storedSeq() === h.sim.state().sessions[0]!.seq && storedSeq(), "the sync's seq to be stored");
    h.hub.failWith = 503;
    h.sim.setVoiceState(USERS[2]!, ROOM_B);
    await until(() => h.hub.posts.some((p) => p.status === 503), "a refused delivery");
    expect(storedSeq()).toBe(seqAfterSync);
    h.hub.failWith = undefined;
    await until(() => h.hub.accepted.length === 2, "the delivery");
    await until(() => storedSeq() > seqAfterSync, "the stored seq to advance");
  });
});
