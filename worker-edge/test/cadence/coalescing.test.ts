import { describe, expect, it } from "vitest";
import { BatchFrame, EventEnvelope } from "../../../protocol/index.js";
import { guildStats, newChannelId, newUserId, postInternal, TestSocket } from "../support/edge.js";
import { joined, roomCreated } from "../support/events.js";
import { mintToken } from "../support/tokens.js";

async function liveSocket(extra: Record<string, unknown> = {}): Promise<TestSocket> {
  const socket = await TestSocket.open();
  await socket.auth(await mintToken({ sub: newUserId() }), extra);
  await socket.waitFor((m) => m.type === "snapshot" || m.type === "event", "snapshot");
  return socket;
}

/** The seqs a socket received after its snapshot (batch frames unpacked) and how many frames carried them. */
function received(socket: TestSocket): { snapshotSeq: number; seqs: number[]; frames: number } {
  let snapshotSeq = -1;
  const seqs: number[] = [];
  let frames = 0;
  for (const raw of socket.raw) {
    if (raw === "pong") continue;
    const message = JSON.parse(raw) as { type: string; seq?: number };
    if (message.type === "snapshot") snapshotSeq = message.seq!;
    else if (message.type === "event") {
      frames++;
      seqs.push(EventEnvelope.parse(message).seq);
    } else if (message.type === "batch") {
      frames++;
      seqs.push(...BatchFrame.parse(message).events.map((e) => e.seq));
    }
  }
  return { snapshotSeq, seqs, frames };
}

const consecutive = (from: number, count: number) => Array.from({ length: count }, (_, i) => from + i);

describe("coalescing: one frame per flush for batch sockets, every event in order for single-frame sockets", () => {
  it("under concurrent publishes, a batch socket gets at most one frame per flush and both kinds get every event once, in order", async () => {
    const batched = await liveSocket({ batch: true });
    const single = await liveSocket();
    const before = (await guildStats()).hub;
    const room = newChannelId();
    await postInternal({ events: [roomCreated(room)] });
    // 40 publishes of one event each, 8 at a time: they land within a cadence of each other.
    for (let wave = 0; wave < 5; wave++) {
      await Promise.all(Array.from({ length: 8 }, () => postInternal({ events: [joined(room, newUserId())] })));
    }
    const after = (await guildStats()).hub;
    const published = after.events - before.events;
    expect(published).toBe(41);
    const first = received(batched).snapshotSeq + 1;
    await expect.poll(() => received(batched).seqs.length, { timeout: 3_000 }).toBe(published);
    await expect.poll(() => received(single).seqs.length, { timeout: 3_000 }).toBe(published);
    expect(received(batched).seqs).toEqual(consecutive(first, published));
    expect(received(single).seqs).toEqual(consecutive(first, published));
    expect(received(single).frames).toBe(published);
    const flushes = (await guildStats()).hub.flushes - before.flushes;
    expect(received(batched).frames).toBeLessThanOrEqual(flushes);
    expect(flushes).toBeLessThan(published); // publishes within a cadence shared a flush
    batched.ws.close(1000);
    single.ws.close(1000);
  });

  it("a socket that authenticates while events wait for a flush gets each of them exactly once", async () => {
    const room = newChannelId();
    await postInternal({ events: [roomCreated(room)] });
    for (let round = 0; round < 6; round++) {
      const token = await mintToken({ sub: newUserId() });
      const socket = await TestSocket.open();
      // The auth lands amid publishes: some before its snapshot, some after, some waiting for a flush.
      const publishing = Promise.all(Array.from({ length: 6 }, () => postInternal({ events: [joined(room, newUserId())] })));
      socket.send({ type: "auth", token, batch: round % 2 === 0 });
      await publishing;
      await socket.waitFor((m) => m.type === "snapshot", "snapshot");
      await new Promise((resolve) => setTimeout(resolve, 400)); // a flush or two later
      const { snapshotSeq, seqs } = received(socket);
      // After its snapshot at S, exactly S+1.. in order: nothing twice, nothing missing.
      expect(seqs).toEqual(seqs.length === 0 ? [] : consecutive(snapshotSeq + 1, seqs.length));
      expect(seqs.every((seq) => seq > snapshotSeq)).toBe(true);
      socket.ws.close(1000);
    }
  });
});
