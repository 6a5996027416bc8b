// An app's getToken often returns a cached token until it expires. With a token that has less than
// refreshBeforeExpiryMs (60 s by default) left, the SDK's refresh came back every second with that same token and
// sent it again; the hub allows 3 re-auths, then one per 10 s, and closes the socket 4429, after which the SDK
// waits 15–30 s: a live app went dark for half a minute just because its token cache was doing its job.
import { afterEach, describe, expect, it } from "vitest";
import { connect, type RealtimeConnection } from "../../client/connect.js";
import { newUserId } from "./support/edge.js";
import { EdgeSocket } from "./support/sdk-socket.js";
import { mintToken } from "./support/tokens.js";

let client: RealtimeConnection | undefined;
afterEach(() => {
  client?.close();
  client = undefined;
});

describe("token refresh with a getToken that caches", () => {
  it("does not resend the same token: one auth on the socket, which stays live", { timeout: 15_000 }, async () => {
    const cached = await mintToken({ sub: newUserId(), expiresIn: 10 });
    let calls = 0;
    const closes: string[] = [];
    client = connect({
      url: "https://edge.test/ws",
      getToken: async () => (calls++, cached),
      WebSocket: EdgeSocket,
      browser: false,
      onStatus: (_status, detail) => detail?.startsWith("closed") && closes.push(detail),
    });
    await expect.poll(() => client!.status).toBe("live");
    const opened = EdgeSocket.opened;
    const [socket] = [...EdgeSocket.live];
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    expect(closes).toEqual([]);
    expect(client.status).toBe("live");
    expect(EdgeSocket.opened).toBe(opened);
    expect(calls, "the refresh asked for a token").toBeGreaterThan(1);
    expect(socket!.sent.filter((data) => data.includes('"auth"')), "the same token sent once").toHaveLength(1);
  });
});

describe("token refresh with short-lived tokens", () => {
  it("refreshes a token shorter-lived than refreshBeforeExpiryMs within the hub's re-auth rate", { timeout: 15_000 }, async () => {
    const sub = newUserId();
    const closes: string[] = [];
    let calls = 0;
    client = connect({
      url: "https://edge.test/ws",
      getToken: async () => (calls++, mintToken({ sub, expiresIn: 8 })),
      WebSocket: EdgeSocket,
      browser: false,
      onStatus: (_status, detail) => detail?.startsWith("closed") && closes.push(detail),
    });
    await expect.poll(() => client!.status).toBe("live");
    const opened = EdgeSocket.opened;
    await new Promise((resolve) => setTimeout(resolve, 9_000));
    expect(closes).toEqual([]);
    expect(client.status).toBe("live");
    expect(EdgeSocket.opened).toBe(opened);
    expect(calls, "refreshed at all: the first token has expired by now").toBeGreaterThan(1);
  });
});
