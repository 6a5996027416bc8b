import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { CloseCode, RestLimits, SocketLimits } from "../../../protocol/index.js";
import { authed, edgeFetch, hubStub, newUserId, TestSocket } from "../support/edge.js";
import { SseReader } from "../support/sse.js";
import { mintToken } from "../support/tokens.js";
import { captureConsole, expectNoSecretsLeaked, GoodClient, sleep, trackedSockets } from "./support/hostile.js";

/**
 * What one client can make the guild's one thread do by connecting: an address without a token fills only its
 * share of the sockets waiting for auth, and a user with a valid token opens sockets and streams, and lists rooms,
 * only at a bounded rate. Each time, the attacker is refused while a good client stays served.
 */

const PER_ADDRESS = SocketLimits.pendingSocketsPerAddress;
const FIRST_AUTH_BURST = SocketLimits.firstAuthBurst;
const ROOM_LIST_BURST = RestLimits.roomListBurst;
const RATE_REASON = "connecting too often for this user";

let good: GoodClient;
const { open } = trackedSockets();
const openFrom = (address: string | undefined) => open("", address === undefined ? {} : { "CF-Connecting-IP": address });

beforeEach(async () => {
  captureConsole();
  good = await GoodClient.open();
});
afterEach(() => {
  good.close();
  vi.restoreAllMocks();
});

/** The socket closed with `code` and `reason`, and the hub sent nothing before it (no auth.ok, no snapshot). */
async function expectRefused(socket: TestSocket, reason: string): Promise<void> {
  const closed = await socket.waitForClose();
  expect(closed).toEqual({ code: CloseCode.tooMany, reason });
  expect(socket.raw.filter((m) => m !== "pong"), "the hub sent messages before closing").toEqual([]);
}

/** How many of `sockets` the hub has not closed. */
function stillWaiting(sockets: TestSocket[]): number {
  return sockets.filter((socket) => socket.closed === undefined).length;
}

function liveSocketsOf(userId: string): Promise<number> {
  return runInDurableObject(hubStub(), (_hub, state) =>
    state.getWebSockets().filter((ws) => ws.readyState === 1 && (ws.deserializeAttachment() as { userId?: string } | null)?.userId === userId).length,
  );
}

/** Spends `count` of a user's first auths, at most socketsPerUser live at a time, and closes them all again. */
async function spendFirstAuths(userId: string, token: string, count: number): Promise<void> {
  for (let done = 0; done < count; ) {
    const batch = Math.min(SocketLimits.socketsPerUser, count - done);
    const sockets = await Promise.all(Array.from({ length: batch }, () => openFrom(undefined)));
    for (const socket of sockets) await socket.auth(token);
    for (const socket of sockets) socket.ws.close(1000, "spent");
    // The next batch must meet the rate, not the per-user socket cap: wait until the hub saw these go.
    await vi.waitFor(async () => expect(await liveSocketsOf(userId)).toBe(0), { timeout: 3_000 });
    done += batch;
  }
}

describe("sockets waiting for auth, per client address", () => {
  it(`closes the socket after ${PER_ADDRESS} waiting from one address with 4429, while other addresses are served`, async () => {
    const flood = await Promise.all(Array.from({ length: PER_ADDRESS }, () => openFrom("203.0.113.7")));
    const extra = await openFrom("203.0.113.7");
    await expectRefused(extra, "too many connections waiting for auth from this address");
    expect(stillWaiting(flood), "the address's earlier sockets stay").toBe(PER_ADDRESS);

    const neighbour = await openFrom("203.0.113.8");
    await neighbour.auth(await mintToken({ sub: newUserId() }));
    const unaddressed = await openFrom(undefined);
    await unaddressed.auth(await mintToken({ sub: newUserId() }));
    await good.expectStillServed();
  });

  it("admits the address again as its sockets authenticate or leave", async () => {
    const flood = await Promise.all(Array.from({ length: PER_ADDRESS }, () => openFrom("203.0.113.9")));
    await flood[0]!.auth(await mintToken({ sub: newUserId() }));
    flood[1]!.ws.close(1000, "left");
    await sleep(100);
    const first = await openFrom("203.0.113.9");
    const second = await openFrom("203.0.113.9");
    await expectRefused(await openFrom("203.0.113.9"), "too many connections waiting for auth from this address");
    await first.auth(await mintToken({ sub: newUserId() }));
    await second.auth(await mintToken({ sub: newUserId() }));
    await good.expectStillServed();
  });

  it("counts an IPv6 client by its /64, however it spells its addresses", async () => {
    const spellings = Array.from({ length: PER_ADDRESS }, (_, i) => (i % 2 === 0 ? `2001:db8:1:2::${(i + 1).toString(16)}` : `2001:0DB8:0001:0002:0:0:ffff:${i}`));
    const flood = await Promise.all(spellings.map((address) => openFrom(address)));
    await expectRefused(await openFrom("2001:db8:1:2:abcd::1"), "too many connections waiting for auth from this address");
    expect(stillWaiting(flood)).toBe(PER_ADDRESS);
    const otherNetwork = await openFrom("2001:db8:1:3::1");
    await otherNetwork.auth(await mintToken({ sub: newUserId() }));
    await good.expectStillServed();
  });

  it("still counts the address's waiting sockets after the hub hibernated", async () => {
    const flood = await Promise.all(Array.from({ length: PER_ADDRESS }, () => openFrom("198.51.100.20")));
    await evictDurableObject(hubStub(), { webSockets: "hibernate" });
    await expectRefused(await openFrom("198.51.100.20"), "too many connections waiting for auth from this address");
    expect(stillWaiting(flood)).toBe(PER_ADDRESS);
    await good.expectStillServed();
  });
});

describe("first auths per user", () => {
  it(`admits a burst of ${FIRST_AUTH_BURST} first auths of one user, then closes 4429 while other users are served`, async () => {
    const userId = newUserId();
    const token = await mintToken({ sub: userId });
    await spendFirstAuths(userId, token, FIRST_AUTH_BURST);
    const extra = await openFrom(undefined);
    extra.send({ type: "auth", token });
    await expectRefused(extra, RATE_REASON);

    const other = await openFrom(undefined);
    await other.auth(await mintToken({ sub: newUserId() }));
    await good.expectStillServed();
  });

  it("admits exactly what is left of the burst when first auths race each other", async () => {
    const userId = newUserId();
    const token = await mintToken({ sub: userId });
    const left = 5;
    await spendFirstAuths(userId, token, FIRST_AUTH_BURST - left);
    const racing = await Promise.all(Array.from({ length: SocketLimits.socketsPerUser }, () => openFrom(undefined)));
    for (const socket of racing) socket.send({ type: "auth", token }); // all in flight before any is verified
    await vi.waitFor(() => expect(racing.filter((s) => s.closed || s.messages.some((m) => m.type === "ack"))).toHaveLength(racing.length), { timeout: 3_000 });
    expect(racing.filter((s) => s.messages.some((m) => m.type === "ack")), "sockets admitted").toHaveLength(left);
    expect(racing.filter((s) => s.closed).map((s) => s.closed)).toEqual(Array(racing.length - left).fill({ code: CloseCode.tooMany, reason: RATE_REASON }));
    await good.expectStillServed();
  });

  it(`refills one first auth per ${SocketLimits.firstAuthIntervalMs} ms`, async () => {
    const userId = newUserId();
    const token = await mintToken({ sub: userId });
    await spendFirstAuths(userId, token, FIRST_AUTH_BURST);
    await sleep(SocketLimits.firstAuthIntervalMs + 100);
    const refilled = await openFrom(undefined);
    await refilled.auth(token);
    const next = await openFrom(undefined);
    next.send({ type: "auth", token });
    await expectRefused(next, RATE_REASON);
    await good.expectStillServed();
  });

  it("counts an event stream as a first auth: past the burst, the stream ends 4429", async () => {
    const userId = newUserId();
    const token = await mintToken({ sub: userId });
    await spendFirstAuths(userId, token, FIRST_AUTH_BURST);
    const stream = new SseReader(await edgeFetch("/events", authed(token)));
    await stream.waitForEnd();
    expect(stream.frames.map((frame) => [frame.event, JSON.parse(frame.data)])).toEqual([["end", { code: CloseCode.tooMany, reason: RATE_REASON }]]);
    await good.expectStillServed();
  });
});

describe("GET /rooms per user", () => {
  it(`answers a burst of ${ROOM_LIST_BURST}, then 429 rate_limited with Retry-After, while other users are served`, async () => {
    const token = await mintToken({ sub: newUserId() });
    for (let i = 0; i < ROOM_LIST_BURST; i++) expect((await edgeFetch("/rooms", authed(token))).status).toBe(200);
    const refused = await edgeFetch("/rooms", authed(token));
    expect(refused.status).toBe(429);
    expect(refused.headers.get("Retry-After")).toBe(String(RestLimits.roomListIntervalMs / 1000));
    expect(await refused.json()).toMatchObject({ error: "rate_limited" });

    expect((await edgeFetch("/rooms", authed(await mintToken({ sub: newUserId() })))).status).toBe(200);
    await sleep(RestLimits.roomListIntervalMs + 100);
    expect((await edgeFetch("/rooms", authed(token))).status, "a list after the interval").toBe(200);
    await good.expectStillServed();
  });
});

describe("secrets", () => {
  it("appear in no log line", () => {
    expectNoSecretsLeaked();
  });
});
