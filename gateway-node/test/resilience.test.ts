import { afterEach, describe, expect, it } from "vitest";
import { startHarness, until, ROOM_A, ROOM_B, USERS, type Harness } from "./support/harness.js";

let h: Harness;
afterEach(() => h?.close());

async function ready(): Promise<Harness> {
  h = await startHarness();
  await until(() => h.hub.syncs() === 1, "guild.sync");
  return h;
}

describe("staying connected to Discord", () => {
  it("resumes after a TCP drop and delivers the events sent meanwhile exactly once", async () => {
    await ready();
    h.sim.setVoiceState(USERS[0]!, ROOM_A);
    await until(() => h.hub.accepted.length === 2, "the first join");
    h.sim.dropConnections();
    h.sim.setVoiceState(USERS[1]!, ROOM_A);
    h.sim.setVoiceState(USERS[2]!, ROOM_B);
    await until(() => h.sim.state().resumeCount === 1, "a RESUME");
    await until(() => h.hub.accepted.length === 4, "the missed joins");
    expect(h.hub.summary().filter((e) => e.startsWith("voice."))).toEqual([`voice.joined:${USERS[0]}@${ROOM_A}`, `voice.joined:${USERS[1]}@${ROOM_A}`, `voice.joined:${USERS[2]}@${ROOM_B}`]);
    expect(h.sim.state().identifyCount).toBe(1);
    expect(h.hub.duplicates).toBe(0);
  });

  it("detects a zombie connection (no ACK between two heartbeats) and resumes", async () => {
    await ready();
    h.sim.withholdAcks(true);
    await until(() => h.sim.state().resumeCount >= 1, "a RESUME after missing ACKs", 5_000);
    h.sim.withholdAcks(false);
    h.sim.setVoiceState(USERS[0]!, ROOM_A);
    await until(() => h.hub.accepted.length === 2, "an event after the resume");
    expect(h.sim.state().identifyCount).toBe(1);
  });

  it("answers a heartbeat request (op 1) at once, not at its next scheduled beat", async () => {
    // A 10 s interval with the first beat jittered to its end: any beat within the next second is the answer.
    h = await startHarness({ sim: { heartbeatIntervalMs: 10_000 }, deps: { random: () => 0.99 } });
    await until(() => h.hub.accepted.length === 1, "guild.sync");
    expect(h.sim.received.filter((r) => r.op === 1)).toHaveLength(0);
    const asked = Date.now();
    h.sim.requestHeartbeat();
    const beat = await until(() => h.sim.received.find((r) => r.op === 1), "a heartbeat in reply");
    expect(beat.at - asked).toBeLessThan(1_000);
  });

  it("resumes on op 7 Reconnect and on op 9 with d: true", async () => {
    await ready();
    h.sim.requestReconnect();
    await until(() => h.sim.state().resumeCount === 1, "a RESUME after op 7");
    h.sim.invalidateSession(true);
    await until(() => h.sim.state().resumeCount === 2, "a RESUME after op 9 true");
    expect(h.sim.state().identifyCount).toBe(1);
  });

  it("identifies anew after op 9 with d: false, and sends a new guild.sync", async () => {
    await ready();
    h.sim.setVoiceState(USERS[3]!, ROOM_B);
    h.sim.invalidateSession(false);
    await until(() => h.sim.state().identifyCount === 2, "a second IDENTIFY");
    await until(() => h.hub.accepted.filter((e) => e.event === "guild.sync").length === 2, "a second guild.sync");
    const last = h.hub.accepted.filter((e) => e.event === "guild.sync").at(-1)!;
    expect(last.payload).toMatchObject({ voiceStates: [{ userId: USERS[3], channelId: ROOM_B }] });
  });

  it.each([4007, 4009])("starts a new session after close %i, followed by a guild.sync", async (code) => {
    await ready();
    h.sim.closeConnections(code);
    await until(() => h.sim.state().identifyCount === 2, "a second IDENTIFY");
    await until(() => h.hub.accepted.filter((e) => e.event === "guild.sync").length === 2, "a second guild.sync");
    expect(h.sim.state().resumeCount).toBe(0);
  });

  it("falls back to the base URL when the resume URL fails its handshake", async () => {
    await ready();
    h.sim.breakResumeUrl(true);
    h.sim.dropConnections();
    h.sim.setVoiceState(USERS[0]!, ROOM_A);
    await until(() => h.sim.state().resumeCount === 1, "a RESUME over the base URL", 5_000);
    await until(() => h.hub.accepted.length === 2, "the event sent while away");
    expect(h.sim.state().identifyCount).toBe(1);
  });

  it("tries the resume URL first on every resume, also after an earlier resume fell back to the base URL", async () => {
    await ready();
    h.sim.breakResumeUrl(true);
    h.sim.dropConnections();
    await until(() => h.sim.state().resumeCount === 1, "a RESUME over the base URL", 5_000);
    h.sim.breakResumeUrl(false);
    const before = h.sim.handshakes.length;
    h.sim.dropConnections();
    await until(() => h.sim.state().resumeCount === 2, "a second RESUME", 5_000);
    expect(h.sim.handshakes.slice(before).map((handshake) => handshake.path)).toEqual(["/gateway-resume"]);
  });

  it("starts a fresh session when asked (once, however often asked meanwhile): a new READY and GUILD_CREATE, a new guild.sync", async () => {
    await ready();
    h.sim.setVoiceState(USERS[0]!, ROOM_A);
    await until(() => h.hub.accepted.length === 2, "the join");
    const before = h.service.shard.session!.sessionId;
    h.service.shard.freshSession("a test asks");
    h.service.shard.freshSession("a test asks again"); // while the first is identifying: nothing more
    await until(() => h.hub.syncs() === 2, "the fresh session's guild.sync");
    expect(h.sim.state().identifyCount).toBe(2);
    expect(h.service.shard.session!.sessionId).not.toBe(before);
    expect(h.hub.summary().filter((e) => e.startsWith("voice."))).toEqual([`voice.joined:${USERS[0]}@${ROOM_A}`]); // the picture changed nothing
  });

  it("reconnects after a handshake that stalls", async () => {
    await ready();
    h.sim.stallHandshakes(true);
    h.sim.dropConnections();
    await new Promise((resolve) => setTimeout(resolve, 1_300)); // past the 1 s connect timeout
    h.sim.stallHandshakes(false);
    await until(() => h.sim.state().resumeCount === 1, "a RESUME once handshakes complete again", 5_000);
  });
});
