import { describe, expect, it } from "vitest";
import { BatchFrame, EventEnvelope } from "../../protocol/index.js";
import { newChannelId, newUserId, postInternal, TestSocket } from "./support/edge.js";
import { joined, roomCreated } from "./support/events.js";
import { mintToken } from "./support/tokens.js";

async function liveSocket(extra: Record<string, unknown> = {}): Promise<TestSocket> {
  const socket = await TestSocket.open();
  await socket.auth(await mintToken({ sub: newUserId() }), extra);
  await socket.waitFor((m) => m.type === "snapshot", "snapshot");
  return socket;
}

async function ingest(...events: unknown[]): Promise<void> {
  expect((await postInternal({ events })).status).toBe(200);
}

/** The events a socket received, unpacking batch frames; and how many frames carried them. */
function received(socket: TestSocket): { seqs: number[]; frames: string[] } {
  const seqs: number[] = [];
  const frames: string[] = [];
  for (const raw of socket.raw) {
    const message = JSON.parse(raw) as { type: string };
    if (message.type === "event") {
      seqs.push(EventEnvelope.parse(message).seq);
      frames.push("event");
    } else if (message.type === "batch") {
      seqs.push(...BatchFrame.parse(message).events.map((e) => e.seq));
      frames.push("batch");
    }
  }
  return { seqs, frames };
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let waited = 0; !check(); waited += 20) {
    if (waited > 3_000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("batch frames (opt-in coalescing)", () => {
  it("sends the events of one publish in one frame to a socket that opted in, and one frame each otherwise", async () => {
    const batched = await liveSocket({ batch: true });
    const plain = await liveSocket();
    const room = newChannelId();
    await ingest(roomCreated(room), joined(room, newUserId()), joined(room, newUserId()));
    await until(() => received(plain).seqs.length === 3, "three plain events");
    await until(() => received(batched).seqs.length === 3, "three batched events");
    expect(received(plain).frames).toEqual(["event", "event", "event"]);
    expect(received(batched).frames).toEqual(["batch"]);
    expect(received(batched).seqs).toEqual(received(plain).seqs);
    // Each event inside the frame is byte for byte what a plain socket got.
    const frame = JSON.parse(batched.raw.find((raw) => raw.includes('"batch"'))!) as { events: unknown[] };
    expect(frame.events.map((e) => JSON.stringify(e))).toEqual(plain.raw.filter((raw) => raw.includes('"type":"event"')));
  });

  it("sends a lone event as a plain event frame even to a socket that opted in", async () => {
    const batched = await liveSocket({ batch: true });
    await ingest(roomCreated(newChannelId()));
    await until(() => received(batched).seqs.length === 1, "one event");
    expect(received(batched).frames).toEqual(["event"]);
  });

  it("gives a room-filtered socket that opted in only its rooms' voice events, plus every room event", async () => {
    const [watched, other] = [newChannelId(), newChannelId()];
    await ingest(roomCreated(watched), roomCreated(other));
    const filtered = await liveSocket({ batch: true, rooms: [watched] });
    const lobby = await liveSocket();
    const third = newChannelId();
    await ingest(joined(other, newUserId()), joined(watched, newUserId()), roomCreated(third), joined(other, newUserId()));
    await until(() => received(lobby).seqs.length === 4, "four lobby events");
    const all = received(lobby).seqs;
    await until(() => received(filtered).seqs.length === 2, "two filtered events");
    expect(received(filtered).seqs).toEqual([all[1], all[2]]);
    expect(received(filtered).frames).toEqual(["batch"]);
  });

  it("keeps a socket's choice across a token refresh that does not repeat it", async () => {
    const socket = await TestSocket.open();
    const user = newUserId();
    await socket.auth(await mintToken({ sub: user }), { batch: true });
    await socket.waitFor((m) => m.type === "snapshot", "snapshot");
    socket.send({ type: "auth", token: await mintToken({ sub: user }) });
    await until(() => socket.messages.filter((m) => m.type === "ack").length === 2, "the refresh's ack");
    const room = newChannelId();
    await ingest(roomCreated(room), joined(room, newUserId()));
    await until(() => received(socket).seqs.length === 2, "two events");
    expect(received(socket).frames).toEqual(["batch"]);
  });
});
