import { describe, expect, it } from "vitest";
import { until } from "../../test-support/until.js";
import { jwt, NodeWebSocket, ScriptedHub, sleep } from "./support/hub.js";
import { sdkFixture } from "./support/sdk-fixture.js";

/** An EventTarget that counts its listeners, standing in for `window` or `document`. */
class FakeTarget extends EventTarget {
  listeners = 0;
  visibilityState = "visible";
  override addEventListener(...args: Parameters<EventTarget["addEventListener"]>): void {
    this.listeners++;
    super.addEventListener(...args);
  }
  override removeEventListener(...args: Parameters<EventTarget["removeEventListener"]>): void {
    this.listeners--;
    super.removeEventListener(...args);
  }
  fire(type: string): void {
    this.dispatchEvent(new Event(type));
  }
}

const sdk = sdkFixture();

/** Retries wait a minute after the first: whatever reconnects within a test did so without waiting. */
const slow = { WebSocket: NodeWebSocket, backoff: { minMs: 60_000, maxMs: 60_000, factor: 2 } };

/** A hub that drops every connection: the client ends up waiting a minute for its third attempt. */
async function droppingHub(): Promise<ScriptedHub> {
  const h = await sdk.startHub();
  h.onAuth = (socket) => socket.close(1011, "broken");
  return h;
}

describe("browser signals", () => {
  it("retries at once when the window comes back online, and waits while it is offline", async () => {
    const h = await droppingHub();
    const window = new FakeTarget();
    const client = sdk.connect({ ...slow, url: h.url, getToken: async () => jwt(600), browser: { window } });
    await until(() => h.sockets.length === 2 && client.state.retryAt, "a retry scheduled a minute out");
    window.fire("offline");
    expect(client.state).toMatchObject({ status: "offline", detail: "the browser is offline" });
    h.onAuth = (socket) => h.ack(socket);
    window.fire("online");
    await until(() => client.state.status === "live", "live right after online");
    expect(h.sockets).toHaveLength(3);
  });

  it("keeps a live socket when the window says offline, and does not retry once it drops until online", async () => {
    const h = await sdk.startHub();
    h.onAuth = (socket) => h.ack(socket);
    const window = new FakeTarget();
    const client = sdk.connect({ ...slow, url: h.url, getToken: async () => jwt(600), browser: { window } });
    await until(() => client.state.status === "live", "live");
    window.fire("offline");
    expect(client.state.status).toBe("live");
    h.last().close(1001, "gone");
    await until(() => client.state.status === "offline", "offline after the drop");
    await sleep(100);
    expect(h.sockets).toHaveLength(1);
    window.fire("online");
    await until(() => client.state.status === "live" && h.sockets.length === 2, "live again after online");
  });

  it("retries at once when the tab becomes visible after being hidden for a ping interval (a sleeping laptop)", async () => {
    const h = await droppingHub();
    const document = new FakeTarget();
    const client = sdk.connect({ ...slow, url: h.url, getToken: async () => jwt(600), pingIntervalMs: 50, browser: { document } });
    await until(() => h.sockets.length === 2 && client.state.retryAt, "a retry scheduled a minute out");
    document.visibilityState = "hidden";
    document.fire("visibilitychange");
    await sleep(60);
    h.onAuth = (socket) => h.ack(socket);
    document.visibilityState = "visible";
    document.fire("visibilitychange");
    await until(() => client.state.status === "live", "live right after becoming visible");
    expect(h.sockets).toHaveLength(3);
  });

  it("does not retry early after a short hidden period", async () => {
    const h = await droppingHub();
    const document = new FakeTarget();
    const client = sdk.connect({ ...slow, url: h.url, getToken: async () => jwt(600), pingIntervalMs: 60_000, browser: { document } });
    await until(() => h.sockets.length === 2 && client.state.retryAt, "a retry scheduled a minute out");
    document.visibilityState = "hidden";
    document.fire("visibilitychange");
    document.visibilityState = "visible";
    document.fire("visibilitychange");
    await sleep(100);
    expect(h.sockets).toHaveLength(2);
  });

  it("removes its listeners on close() and adds them again on reconnect()", async () => {
    const h = await sdk.startHub();
    const [window, document] = [new FakeTarget(), new FakeTarget()];
    const client = sdk.connect({ ...slow, url: h.url, getToken: async () => jwt(600), browser: { window, document } });
    expect(window.listeners + document.listeners).toBe(3);
    client.close();
    expect(window.listeners + document.listeners).toBe(0);
    client.reconnect();
    expect(window.listeners + document.listeners).toBe(3);
    window.fire("online"); // a socket in progress is left alone
    await until(() => h.sockets.length === 1, "one connection");
    await sleep(50);
    expect(h.sockets).toHaveLength(1);
  });
});
