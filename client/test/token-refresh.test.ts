import { afterEach, describe, expect, it, vi } from "vitest";
import { connect, type RealtimeConnection, type WebSocketLike } from "../connect.js";
import { guildId, jwt } from "./support/hub.js";

/**
 * An in-memory hub socket: the one place a fake clock is needed (a month of time), so no real server here.
 * It answers auths and pings as the hub does.
 */
class LoopbackSocket implements WebSocketLike {
  static opened: LoopbackSocket[] = [];
  readyState = 0;
  readonly sent: string[] = [];
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;

  constructor(readonly url: string) {
    LoopbackSocket.opened.push(this);
    queueMicrotask(() => {
      this.readyState = 1;
      this.onopen?.({});
    });
  }

  send(data: string): void {
    this.sent.push(data);
    // Like the hub: a ping is answered with a pong, the first auth with auth.ok and a snapshot, a refresh with auth.ok.
    const ack = JSON.stringify({ v: 1, type: "ack", event: "auth.ok", guildId, seq: 0 });
    const snapshot = JSON.stringify({ v: 1, type: "snapshot", payload: { rooms: [] }, seq: 0 });
    const replies = data === "ping" ? ["pong"] : this.auths().length === 1 ? [ack, snapshot] : [ack];
    for (const reply of replies) queueMicrotask(() => this.onmessage?.({ data: reply }));
  }

  close(): void {
    this.readyState = 3;
  }

  auths(): unknown[] {
    return this.sent.filter((s) => s !== "ping").map((s) => JSON.parse(s) as unknown);
  }
}

let client: RealtimeConnection | undefined;
afterEach(() => {
  client?.close();
  vi.useRealTimers();
  LoopbackSocket.opened = [];
});

const day = 86_400_000;

describe("token refresh", () => {
  it("refreshes a token that expires in 30 days once, near expiry (past setTimeout's 24.8-day limit)", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
    let issued = 0;
    client = connect({
      url: "ws://loopback",
      WebSocket: LoopbackSocket,
      getToken: async () => (issued++, jwt(30 * 24 * 3600)),
      pingIntervalMs: 10 * day,
    });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(issued, "no refresh right after connecting").toBe(1);
    expect(client.status).toBe("live");

    // The refresh is due 60 s (refreshBeforeExpiryMs) before expiry; exp has whole seconds, so ±1 s.
    await vi.advanceTimersByTimeAsync(30 * day - 63_000);
    expect(issued, "no refresh weeks early").toBe(1);
    await vi.advanceTimersByTimeAsync(4_000);
    expect(issued, "one refresh near expiry").toBe(2);
    expect(LoopbackSocket.opened).toHaveLength(1);
    expect(LoopbackSocket.opened[0]!.auths()).toHaveLength(2);
  });
});
