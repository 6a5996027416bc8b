import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SocketLimits } from "../protocol/index.js";
import { RawStream } from "./support/raw-stream.js";
import { newUserId, startSseWorker, type SseWorker } from "./support/sse-worker.js";

/**
 * A client that leaves an event stream gives its hub socket back at once, over real TCP against the Worker in
 * `wrangler dev`'s workerd (behind its dev proxy, see SseWorker.innerPort): the per-user socket cap (10, shared
 * with WebSockets) is the observable. An app that reopens its stream on each
 * token refresh or room change must not lock its user out, and neither must a client that stops reading.
 */

const CAP = SocketLimits.socketsPerUser;
/** How soon a departed client's hub socket must be gone. */
const RELEASE_BOUND_MS = 3_000;

let worker: SseWorker;
let channelCounter = 730000000000000000n;

beforeAll(async () => {
  worker = await startSseWorker();
});

afterAll(async () => {
  await worker?.stop();
});

async function openStream(token: string): Promise<RawStream> {
  return RawStream.open(worker.innerPort, "/events", { Authorization: `Bearer ${token}`, Accept: "text/event-stream" });
}

/** Opens a stream and waits for what it starts with: the snapshot when admitted, anything else when refused. */
async function tryStream(token: string): Promise<{ stream: RawStream; admitted: boolean }> {
  const stream = await openStream(token);
  if (stream.status !== 200) return { stream, admitted: false };
  await stream.waitForText("\n\n", "the first event");
  return { stream, admitted: stream.text.includes("event: snapshot") };
}

/** Opens `count` streams for the token's user, retrying refused ones, and returns how long admitting them all took. */
async function admit(token: string, count: number, timeoutMs: number): Promise<{ streams: RawStream[]; ms: number }> {
  const started = Date.now();
  const streams: RawStream[] = [];
  while (streams.length < count) {
    if (Date.now() - started > timeoutMs) {
      for (const stream of streams) stream.reset();
      throw new Error(`only ${streams.length} of ${count} streams admitted within ${timeoutMs} ms: the departed clients still hold hub sockets`);
    }
    const { stream, admitted } = await tryStream(token);
    if (admitted) streams.push(stream);
    else {
      stream.reset();
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  return { streams, ms: Date.now() - started };
}

describe("a client that leaves an event stream", () => {
  for (const [how, leave] of [
    ["resets the connection", (stream: RawStream) => stream.reset()],
    ["closes the connection cleanly", (stream: RawStream) => stream.close()],
  ] as const) {
    it(`${how}: its hub socket is released at once, so ten open-and-close cycles do not lock the user out`, async () => {
      const token = await worker.token({ sub: newUserId() });
      for (let cycle = 0; cycle < CAP; cycle++) {
        const { streams } = await admit(token, 1, RELEASE_BOUND_MS);
        leave(streams[0]!);
      }
      const { streams: full, ms } = await admit(token, CAP, RELEASE_BOUND_MS);
      expect(ms).toBeLessThan(RELEASE_BOUND_MS);
      for (const stream of full) leave(stream);
      const { streams: again } = await admit(token, CAP, RELEASE_BOUND_MS);
      for (const stream of again) stream.reset();
    });
  }

  it("stops reading: once the queue for it passes the bound, its stream is shed and its hub socket released", async () => {
    const sub = newUserId();
    const token = await worker.token({ sub });
    const { streams: [stalled] } = await admit(token, 1, RELEASE_BOUND_MS);
    stalled!.stopReading();
    // The user is at the cap: the stalled stream and nine that read.
    const full = await admit(token, CAP - 1, RELEASE_BOUND_MS);
    const refused = await tryStream(token);
    refused.stream.reset();
    expect(refused.admitted).toBe(false);
    // Joins and leaves of one room: every stream gets each one, and the hub's state stays small.
    const room = String(channelCounter++);
    await worker.feed.post(worker.feed.roomCreated(room, "Flood"));
    const members = Array.from({ length: 200 }, () => newUserId());
    const eventBytes = JSON.stringify(worker.feed.joined(room, members[0]!)).length + 80; // the envelope's seq, ts and the frame's fields
    let published = 0;
    for (;;) {
      await worker.feed.post(...members.map((user) => worker.feed.joined(room, user)), ...members.map((user) => worker.feed.left(room, user)));
      published += 2 * members.length * eventBytes;
      const probe = await tryStream(token);
      probe.stream.reset();
      if (probe.admitted) break;
      if (published > 64 * 1024 * 1024) throw new Error(`still held after about ${published >> 20} MiB published to a client that stopped reading`);
    }
    console.info(`sse-disconnect: a stalled client was shed after about ${Math.round(published / 1024)} KiB published`);
    for (const stream of full.streams) stream.reset();
    stalled!.reset();
  });
});
