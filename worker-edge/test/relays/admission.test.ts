import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { CloseCode, SocketLimits } from "../../../protocol/index.js";
import { RELAY_NAME_HEADER } from "../../src/placement.js";
import { TEST_RELAY_NAMES } from "../support/bindings.js";
import { BASE, newChannelId, newUserId, postInternal, TestSocket } from "../support/edge.js";
import { roomCreated } from "../support/events.js";
import { mintToken } from "../support/tokens.js";

// A relay admits its clients as the hub does (security/admission.security.test.ts): waiting sockets per client
// address, first auths per user, each counted by the relay that holds the sockets.

const [RELAY, OTHER_RELAY] = TEST_RELAY_NAMES as [string, string];
const relayStub = (name: string) => env.LOBBY_RELAY.get(env.LOBBY_RELAY.idFromName(name));
const opened: TestSocket[] = [];

afterEach(async () => {
  for (const socket of opened.splice(0)) if (!socket.closed) socket.ws.close(1000);
  await new Promise((resolve) => setTimeout(resolve, 50)); // the relays see the closes before the next test counts
});

/** A socket on one relay, as the Worker opens it there (by the relay's name), from `address` when given. */
async function openOn(relay: string, address?: string): Promise<TestSocket> {
  const headers: Record<string, string> = { Upgrade: "websocket", [RELAY_NAME_HEADER]: relay };
  if (address !== undefined) headers["CF-Connecting-IP"] = address;
  const response = await relayStub(relay).fetch(new Request(`${BASE}/ws`, { headers }));
  if (!response.webSocket) throw new Error(`no WebSocket from ${relay} (status ${response.status})`);
  const socket = new TestSocket(response.webSocket);
  opened.push(socket);
  return socket;
}

async function expectRefused(socket: TestSocket, reason: string): Promise<void> {
  expect(await socket.waitForClose()).toEqual({ code: CloseCode.tooMany, reason });
  expect(socket.raw, "the relay sent messages before closing").toEqual([]);
}

function liveSocketsOf(relay: string, userId: string): Promise<number> {
  return runInDurableObject(relayStub(relay), (_relay, state) =>
    state.getWebSockets().filter((ws) => ws.readyState === 1 && (ws.deserializeAttachment() as { userId?: string } | null)?.userId === userId).length,
  );
}

/** A live socket on `relay` that must still get the guild's next event. */
async function expectServed(socket: TestSocket): Promise<void> {
  const channelId = newChannelId();
  expect((await postInternal({ events: [roomCreated(channelId)] })).status).toBe(200);
  await socket.waitFor((m) => m.type === "event" && m.event === "room.created" && m.payload.channelId === channelId, "the next event");
}

describe("a relay's admission", () => {
  it(`closes the socket after ${SocketLimits.pendingSocketsPerAddress} waiting from one address with 4429; other addresses are served`, async () => {
    const flood = await Promise.all(Array.from({ length: SocketLimits.pendingSocketsPerAddress }, () => openOn(RELAY, "203.0.113.50")));
    await expectRefused(await openOn(RELAY, "203.0.113.50"), "too many connections waiting for auth from this address");
    expect(flood.filter((socket) => socket.closed), "the address's earlier sockets stay").toEqual([]);
    const neighbour = await openOn(RELAY, "203.0.113.51");
    await neighbour.auth(await mintToken({ sub: newUserId() }));
    await expectServed(neighbour);
  });

  it(`admits a burst of ${SocketLimits.firstAuthBurst} first auths of one user, then closes 4429; other users are served`, async () => {
    const userId = newUserId();
    const token = await mintToken({ sub: userId });
    const good = await openOn(OTHER_RELAY);
    await good.auth(await mintToken({ sub: newUserId() }));
    for (let spent = 0; spent < SocketLimits.firstAuthBurst; spent += SocketLimits.socketsPerUser) {
      const batch = await Promise.all(Array.from({ length: SocketLimits.socketsPerUser }, () => openOn(RELAY)));
      for (const socket of batch) await socket.auth(token);
      for (const socket of batch) socket.ws.close(1000, "spent");
      await vi.waitFor(async () => expect(await liveSocketsOf(RELAY, userId)).toBe(0), { timeout: 3_000 });
    }
    const extra = await openOn(RELAY);
    extra.send({ type: "auth", token });
    await expectRefused(extra, "connecting too often for this user");
    const other = await openOn(RELAY);
    await other.auth(await mintToken({ sub: newUserId() }));
    await expectServed(other);
    await expectServed(good);
  });
});
