import { afterEach, describe, expect, it } from "vitest";
import { SocketLimits } from "../../protocol/limits.js";
import { takeToken, type Bucket } from "../../protocol/token-bucket.js";
import { connect, type RealtimeConnection } from "../index.js";
import { A, jwt, NodeWebSocket, sleep } from "./support/hub.js";
import { sdkFixture } from "./support/sdk-fixture.js";
import { StreamHub } from "./support/stream-hub.js";

// The hub admits a user's first auths (a new socket or stream) at a budget: a burst, then one per interval; past
// it, 4429. One connection of the SDK must stay within it whatever its options, its transport or its app does.

const sdk = sdkFixture();
const BUDGET = { capacity: SocketLimits.firstAuthBurst, refillPerSecond: 1000 / SocketLimits.firstAuthIntervalMs };
const B = "110000000000000002";

/** Replays the hub's arithmetic over the times first auths arrived: each one must have been admitted. */
function expectWithinBudget(arrivals: number[]): void {
  let bucket: Bucket | undefined;
  for (const [i, at] of arrivals.entries()) {
    const taken = takeToken(bucket, BUDGET, at);
    expect(taken.waitSeconds, `first auth ${i + 1} of ${arrivals.length} went past the hub's budget`).toBe(0);
    bucket = taken.bucket;
  }
}

describe("the SDK paces its first auths to the hub's budget", () => {
  it("over WebSocket: a hub that drops every connection at once, and a backoff of 1 ms", async () => {
    const hub = await sdk.startHub();
    hub.onAuth = (socket) => {
      hub.ack(socket);
      socket.close(1012, "service restart");
    };
    // random 0: every delay is the backoff's minimum.
    sdk.connect({ url: hub.url, WebSocket: NodeWebSocket, getToken: async () => jwt(600), backoff: { minMs: 1, maxMs: 5, factor: 2 }, random: () => 0 });
    await sleep(2_600);
    expect(hub.connectedAt.length, "the burst is used, not throttled away").toBeGreaterThanOrEqual(SocketLimits.firstAuthBurst);
    expect(hub.connectedAt.length, "then about one a second").toBeLessThanOrEqual(SocketLimits.firstAuthBurst + 3);
    expectWithinBudget(hub.connectedAt);
  });

  describe("over SSE, where each filter change restarts the stream", () => {
    let hub: StreamHub;
    let client: RealtimeConnection | undefined;
    afterEach(async () => {
      client?.close();
      await hub?.close();
    });

    it("counts the restarts with the attempts: filter changes every 30 ms and streams that end after 300 ms", async () => {
      hub = await StreamHub.start();
      const arrivals: number[] = [];
      hub.onRequest = (request) => {
        arrivals.push(Date.now());
        hub.accept(request, 1);
        hub.frame("snapshot", { v: 1, type: "snapshot", payload: { rooms: [] }, seq: 1 }, 1, request);
        setTimeout(() => request.response.writableEnded || hub.frame("end", { code: 1012, reason: "service restart" }, undefined, request), 300);
      };
      client = connect({ transport: "sse", url: hub.url, getToken: async () => jwt(600), backoff: { minMs: 1, maxMs: 5, factor: 2 }, random: () => 0, rooms: [A] });
      let toggle = false;
      const changes = setInterval(() => client!.setRooms((toggle = !toggle) ? [A, B] : [A]), 30);
      try {
        await sleep(2_600);
      } finally {
        clearInterval(changes);
      }
      expect(arrivals.length, "the burst is used, not throttled away").toBeGreaterThanOrEqual(SocketLimits.firstAuthBurst);
      expectWithinBudget(arrivals);
    });
  });
});
