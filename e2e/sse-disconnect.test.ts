import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SocketLimits } from "../protocol/index.js";
import { RawStream } from "./support/raw-stream.js";
import { newUserId, startSseWorker, type SseWorker } from "./support/sse-worker.js";

/**
 * A client that leaves an event stream gives its hub socket back within seconds, over real TCP against `wrangler
 * dev`: the per-user socket cap (10, shared with WebSockets) is the observable. An app that reopens its stream on
 * each token refresh or room change must not lock its user out, and neither must a client that stops reading.
 * Both on the Worker's own port (what Cloudflare's edge talks to) and through wrangler dev's dev proxy, which
 * passes a disconnect on only when a write to the departed client fails (see SseWorker.innerPort).
 */

const CAP = SocketLimits.socketsPerUser;
/**
 * How soon a departed client's hub socket must be gone, by port. On the Worker's own: a reset is seen at once, a
 * clean close at the relay's next write (its departure probe after 2 s of silence). Through the dev proxy: at
 * the proxy's second write after a clean close. The rest is slack for a loaded machine. (Before: 19 s after a
 * reset and 39 s after a clean close, at the next failed heartbeats.)
 */
const PORTS = [
  { via: "the Worker's own port", port: () => worker.innerPort, releaseBoundMs: 5_000 },
  { via: "wrangler dev's port, through its dev proxy", port: () => worker.port, releaseBoundMs: 8_000 },
];
const RELEASE_BOUND_MS = PORTS[0]!.releaseBoundMs;

let worker: SseWorker;
let channelCounter = 730000000000000000n;

beforeAll(async () => {
  worker = await startSseWorker();
});

afterAll(async () => {
  await worker?.stop();
});

/** The hub's refusal of a first auth past the user's budget (a burst, then one a second): not a held socket. */
const PACED_REASON = "connecting too often for this user";

/**
 * Opens a stream and waits for what it starts with: the snapshot when admitted, anything else when refused (`paced`
 * when the user's first-auth budget refused it).
 */
async function tryStream(token: string, port = worker.innerPort): Promise<{ stream: RawStream; admitted: boolean; paced: boolean }> {
  const stream = await RawStream.open(port, "/events", { Authorization: `Bearer ${token}`, Accept: "text/event-stream" });
  if (stream.status !== 200) return { stream, admitted: false, paced: false };
  await stream.waitForText("\n\n", "the first event");
  return { stream, admitted: stream.text.includes("event: snapshot"), paced: stream.text.includes(PACED_REASON) };
}

/**
 * Opens `count` streams for the token's user, retrying refused ones, and returns how long admitting them all took.
 * A retry that waits for the first-auth budget is not counted: the bound is on how long departed streams hold
 * their hub sockets.
 */
async function admit(token: string, count: number, timeoutMs: number, port = worker.innerPort): Promise<{ streams: RawStream[]; ms: number }> {
  let started = Date.now();
  const streams: RawStream[] = [];
  while (streams.length < count) {
    if (Date.now() - started > timeoutMs) {
      for (const stream of streams) stream.reset();
      throw new Error(`only ${streams.length} of ${count} streams admitted within ${timeoutMs} ms: the departed clients still hold hub sockets`);
    }
    const { stream, admitted, paced } = await tryStream(token, port);
    if (admitted) streams.push(stream);
    else {
      stream.reset();
      const waitMs = paced ? 1_000 : 100;
      await new Promise((resolve) => setTimeout(resolve, waitMs));
      if (paced) started += waitMs;
    }
  }
  return { streams, ms: Date.now() - started };
}

describe("a client that leaves an event stream", () => {
  for (const { via, port, releaseBoundMs } of PORTS) {
    for (const [how, leave] of [
      ["resets the connection", (stream: RawStream) => stream.reset()],
      ["closes the connection cleanly", (stream: RawStream) => stream.close()],
    ] as const) {
      it(`${how} (${via}): its hub socket is released within seconds, so ten open-and-close cycles do not lock the user out`, async () => {
        const token = await worker.token({ sub: newUserId() });
        for (let cycle = 0; cycle < CAP; cycle++) {
          const { streams } = await admit(token, 1, releaseBoundMs, port());
          leave(streams[0]!);
        }
        const { streams: full } = await admit(token, CAP, releaseBoundMs, port());
        for (const stream of full) leave(stream);
        const { streams: again } = await admit(token, CAP, releaseBoundMs, port());
        for (const stream of again) stream.reset();
      });
    }
  }

  it("stops reading: once the bytes waiting for it back up into the Worker, its stream is shed (1013) and its hub socket released", async () => {
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
    stalled!.resumeReading();
    await stalled!.waitForText('event: end\ndata: {"code":1013', "the end event of the shed stream", 30_000);
    stalled!.reset();
  });
});
