import { evictDurableObject } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { edgeFetch, hubStub, newChannelId, newUserId, postInternal, TestSocket } from "../support/edge.js";
import { joined, roomCreated } from "../support/events.js";
import { mintToken } from "../support/tokens.js";
import { CloseCode, SocketLimits } from "../../../protocol/index.js";
import {
  captureConsole,
  expectNoSecretsLeaked,
  GoodClient,
  hmacWithPublicKey,
  noneToken,
  rawToken,
  sleep,
  swappedPayloadToken,
  tamperedSignatureToken,
  trackedSockets,
} from "./support/hostile.js";

/** Hostile clients on GET /ws. Limits are named here so they are easy to adjust as the fixes land. */

/** The close code for "too many" (new, being implemented). */
const TOO_MANY = CloseCode.tooMany;
/** Live sockets one user may hold in one guild; the next one is closed TOO_MANY. */
const MAX_SOCKETS_PER_USER_PER_GUILD = SocketLimits.socketsPerUser;
/** Re-auths on a live socket allowed at once, then one per REAUTH_REFILL_MS; beyond that, TOO_MANY. */
const REAUTH_BURST = SocketLimits.reauthBurst;
const REAUTH_REFILL_MS = SocketLimits.reauthIntervalMs;
/** Unauthenticated sockets one guild keeps; the next one is closed TOO_MANY. */
const MAX_PENDING_SOCKETS_PER_GUILD = SocketLimits.pendingSockets;
const AUTH_TIMEOUT_MS = 5_000;
const MAX_MESSAGE_BYTES = 16 * 1024;
const NBF_TOLERANCE_SECONDS = 30;

const now = () => Math.floor(Date.now() / 1000);

let good: GoodClient;
const { open, track } = trackedSockets();

beforeEach(async () => {
  captureConsole();
  good = await GoodClient.open();
});
afterEach(() => {
  good.close();
  vi.restoreAllMocks();
});

/** The socket closed with `code` and the hub sent nothing before it (no auth.ok, no snapshot). */
async function expectClosedSilently(socket: TestSocket, codes: number | number[], timeoutMs = 3_000) {
  const closed = await socket.waitForClose(timeoutMs);
  expect([codes].flat(), `closed ${closed.code} (${closed.reason})`).toContain(closed.code);
  expect(socket.raw.filter((m) => m !== "pong"), "the hub sent messages before closing").toEqual([]);
}

// The pending-socket flood runs first so that sockets other cases leave pending do not count against it.
describe("pending (unauthenticated) sockets", () => {
  it(`closes the socket after ${MAX_PENDING_SOCKETS_PER_GUILD} pending ones in a guild with ${TOO_MANY}`, async () => {
    // Opened at once: the flood must be in place well within the 5 s auth timeout of its first socket.
    const pending = await Promise.all(Array.from({ length: MAX_PENDING_SOCKETS_PER_GUILD }, () => open()));
    const extra = await open();
    try {
      const closed = await extra.waitForClose(2_000);
      expect(closed.code).toBe(TOO_MANY);
    } finally {
      for (const socket of pending) socket.ws.close(1000, "flood over");
    }
    expect(pending.filter((s) => s.closed && s.closed.code !== 1000).map((s) => s.closed?.code), "earlier pending sockets were closed").toEqual([]);
    await good.expectStillServed();
  });

  it("serves new sockets again once the flood is gone", async () => {
    const socket = await open();
    await socket.auth(await mintToken({ sub: newUserId() }));
    await good.expectStillServed();
  });
});

describe("authentication", () => {
  it(`closes ${4408} when no auth arrives within ${AUTH_TIMEOUT_MS / 1000} s, pings notwithstanding`, async () => {
    const socket = await open();
    socket.send("ping");
    const closed = await socket.waitForClose(AUTH_TIMEOUT_MS + 4_000);
    expect(closed.code).toBe(4408);
    expect(socket.raw.filter((m) => m !== "pong")).toEqual([]);
    await good.expectStillServed();
  });

  const badTokens: Array<[string, () => Promise<string>]> = [
    ["not a JWT", async () => "not-a-jwt"],
    ["alg none", async () => noneToken("none")],
    ["alg NONE", async () => noneToken("NONE")],
    ["HS256 keyed with the public JWK", () => hmacWithPublicKey("jwk-json")],
    ["HS256 keyed with the public PEM", () => hmacWithPublicKey("spki-pem")],
    ["signed by a foreign key", () => rawToken({ key: "foreign" })],
    ["signed by the trusted key under a wrong kid", () => rawToken({ header: { kid: "some-other-key" } })],
    ["tampered", () => tamperedSignatureToken()],
    ["a payload swapped after signing", () => swappedPayloadToken()],
    ["expired 1 s ago", () => rawToken({ claims: { iat: now() - 60, exp: now() - 1 } })],
    ["expired 20 s ago (inside the old 30 s tolerance)", () => rawToken({ claims: { iat: now() - 60, exp: now() - 20 } })],
    ["expired 2 min ago", () => rawToken({ claims: { iat: now() - 600, exp: now() - 120 } })],
    [`not valid before ${NBF_TOLERANCE_SECONDS + 15} s from now`, () => rawToken({ claims: { nbf: now() + NBF_TOLERANCE_SECONDS + 15 } })],
    ["from another issuer", () => rawToken({ claims: { iss: "https://evil.test" } })],
    ["for another audience", () => rawToken({ claims: { aud: "elsewhere" } })],
    ["without sub", () => rawToken({ omit: ["sub"] })],
    ["without exp", () => rawToken({ omit: ["exp"] })],
  ];

  it.each(badTokens)("closes 4401 for a token %s, sending no auth.ok or snapshot first", async (_label, make) => {
    const socket = await open();
    socket.send({ type: "auth", token: await make() });
    await expectClosedSilently(socket, 4401);
    await good.expectStillServed();
  });

  it("closes a validly signed token over 8 KiB with 4401 or 4409, sending nothing first", async () => {
    const socket = await open();
    socket.send({ type: "auth", token: await rawToken({ claims: { pad: "p".repeat(9 * 1024) } }) });
    await expectClosedSilently(socket, [4401, 4409]);
    await good.expectStillServed();
  });

  it("closes 4401 when a live socket re-authenticates with a bad token", async () => {
    const socket = await open();
    await socket.auth(await mintToken({ sub: newUserId() }));
    socket.send({ type: "auth", token: await rawToken({ key: "foreign" }) });
    expect((await socket.waitForClose()).code).toBe(4401);
    await good.expectStillServed();
  });
});

describe("malformed messages", () => {
  const validToken = () => mintToken({ sub: newUserId() });
  const malformed: Array<[string, () => Promise<string>]> = [
    ["not JSON", async () => "{nope"],
    ["an empty string", async () => ""],
    ["JSON null", async () => "null"],
    ["a JSON array", async () => "[]"],
    ["a JSON string", async () => '"auth"'],
    ["a JSON number", async () => "42"],
    ["auth without a token", async () => '{"type":"auth"}'],
    ["a numeric token", async () => '{"type":"auth","token":5}'],
    ["an empty token", async () => '{"type":"auth","token":""}'],
    ["an upper-case type", async () => JSON.stringify({ type: "AUTH", token: await validToken() })],
    ["an unknown type", async () => '{"type":"subscribe","rooms":[]}'],
    ["an unknown field", async () => JSON.stringify({ type: "auth", token: await validToken(), admin: true })],
    ["a __proto__ field", async () => `{"type":"auth","token":"${await validToken()}","__proto__":{"admin":true}}`],
    ["a negative since", async () => JSON.stringify({ type: "auth", token: await validToken(), since: -1 })],
    ["a fractional since", async () => JSON.stringify({ type: "auth", token: await validToken(), since: 1.5 })],
    ["a string since", async () => JSON.stringify({ type: "auth", token: await validToken(), since: "3" })],
    ["51 rooms", async () => JSON.stringify({ type: "auth", token: await validToken(), rooms: Array.from({ length: 51 }, (_, i) => String(300000000000000000n + BigInt(i))) })],
    ["a room that is not a snowflake", async () => JSON.stringify({ type: "auth", token: await validToken(), rooms: ["abc"] })],
    ["deeply nested arrays", async () => `${"[".repeat(7_000)}${"]".repeat(7_000)}`],
  ];

  it.each(malformed)("closes 4409 for %s, sending nothing first", async (_label, make) => {
    const socket = await open();
    socket.send(await make());
    await expectClosedSilently(socket, 4409);
    await good.expectStillServed();
  });

  it("closes 4409 for a binary message, before and after auth", async () => {
    const before = await open();
    before.ws.send(new Uint8Array([123, 34, 116, 121, 112, 101, 34, 125]));
    await expectClosedSilently(before, 4409);
    const after = await open();
    await after.auth(await mintToken({ sub: newUserId() }));
    after.ws.send(new Uint8Array([1, 2, 3]).buffer);
    expect((await after.waitForClose()).code).toBe(4409);
    await good.expectStillServed();
  });

  it("closes 4409 for garbage from a live socket, and only that socket", async () => {
    const socket = await open();
    await socket.auth(await mintToken({ sub: newUserId() }));
    socket.send("{garbage");
    expect((await socket.waitForClose()).code).toBe(4409);
    await good.expectStillServed();
  });

  it.each([
    ["one byte over 16 KiB", MAX_MESSAGE_BYTES + 1],
    ["512 KiB", 512 * 1024],
  ])("closes 1009 for a text message of %s", async (_label, size) => {
    const socket = await open();
    socket.send("x".repeat(size));
    await expectClosedSilently(socket, 1009);
    await good.expectStillServed();
  });

  it("closes 1009 for 16 KiB + 1 of multi-byte text (the limit is in bytes)", async () => {
    const socket = await open();
    socket.send("é".repeat(MAX_MESSAGE_BYTES / 2 + 1));
    await expectClosedSilently(socket, 1009);
    await good.expectStillServed();
  });

  it("does not close 1009 for exactly 16 KiB (boundary control)", async () => {
    const socket = await open();
    socket.send("x".repeat(MAX_MESSAGE_BYTES));
    await expectClosedSilently(socket, 4409);
    await good.expectStillServed();
  });

  it("closes 1009 or 4409 for a binary message over 16 KiB", async () => {
    const socket = await open();
    socket.ws.send(new Uint8Array(MAX_MESSAGE_BYTES + 1));
    await expectClosedSilently(socket, [1009, 4409]);
    await good.expectStillServed();
  });
});

describe("too many: sockets per user", () => {
  it(`closes the socket after ${MAX_SOCKETS_PER_USER_PER_GUILD} live ones of one user with ${TOO_MANY}`, async () => {
    const userId = newUserId();
    const token = await mintToken({ sub: userId });
    const live: TestSocket[] = [];
    for (let i = 0; i < MAX_SOCKETS_PER_USER_PER_GUILD; i++) {
      const socket = await open();
      await socket.auth(token);
      live.push(socket);
    }
    const extra = await open();
    extra.send({ type: "auth", token });
    await expectClosedSilently(extra, TOO_MANY);
    expect(live.map((s) => s.closed?.code), "the first sockets must stay").toEqual(Array(MAX_SOCKETS_PER_USER_PER_GUILD).fill(undefined));
    // Another user is not limited by this one.
    const other = await open();
    await other.auth(await mintToken({ sub: newUserId() }));
    await good.expectStillServed();
  });

  it("lets the user connect again once one of their sockets closed", async () => {
    const token = await mintToken({ sub: newUserId() });
    const live: TestSocket[] = [];
    for (let i = 0; i < MAX_SOCKETS_PER_USER_PER_GUILD; i++) {
      const socket = await open();
      await socket.auth(token);
      live.push(socket);
    }
    live[0]!.ws.close(1000, "bye");
    await sleep(300);
    const next = await open();
    await next.auth(token);
    expect(next.closed).toBeUndefined();
    await good.expectStillServed();
  });
});

describe("too many: re-auth on a live socket", () => {
  it(`allows a burst of ${REAUTH_BURST} re-auths, then closes ${TOO_MANY}`, async () => {
    const userId = newUserId();
    const socket = await open();
    await socket.auth(await mintToken({ sub: userId }));
    for (let i = 0; i < REAUTH_BURST; i++) {
      socket.send({ type: "auth", token: await mintToken({ sub: userId }) });
      await vi.waitFor(() => expect(socket.messages.filter((m) => m.type === "ack")).toHaveLength(2 + i), { timeout: 3_000 });
    }
    socket.send({ type: "auth", token: await mintToken({ sub: userId }) });
    expect((await socket.waitForClose()).code).toBe(TOO_MANY);
    expect(socket.messages.filter((m) => m.type === "ack")).toHaveLength(1 + REAUTH_BURST);
    await good.expectStillServed();
  });

  it(
    `refills one re-auth per ${REAUTH_REFILL_MS / 1000} s`,
    async () => {
      const userId = newUserId();
      const socket = await open();
      await socket.auth(await mintToken({ sub: userId }));
      for (let i = 0; i < REAUTH_BURST; i++) socket.send({ type: "auth", token: await mintToken({ sub: userId }) });
      await vi.waitFor(() => expect(socket.messages.filter((m) => m.type === "ack")).toHaveLength(1 + REAUTH_BURST), { timeout: 3_000 });
      await sleep(REAUTH_REFILL_MS + 500);
      socket.send({ type: "auth", token: await mintToken({ sub: userId }) });
      await vi.waitFor(() => expect(socket.messages.filter((m) => m.type === "ack")).toHaveLength(2 + REAUTH_BURST), { timeout: 3_000 });
      socket.send({ type: "auth", token: await mintToken({ sub: userId }) });
      expect((await socket.waitForClose()).code).toBe(TOO_MANY);
      await good.expectStillServed();
    },
    REAUTH_REFILL_MS + 20_000,
  );
});

describe("races, filters and hibernation", () => {
  it("closes 4401 when two auths for different users race on one socket", async () => {
    const socket = await open();
    const [alice, mallory] = await Promise.all([mintToken({ sub: newUserId() }), mintToken({ sub: newUserId() })]);
    socket.send({ type: "auth", token: alice });
    socket.send({ type: "auth", token: mallory });
    const closed = await socket.waitForClose();
    expect(closed.code, "a socket must not change user, also when the second auth arrives before the first is verified").toBe(4401);
    await good.expectStillServed();
  });

  it("sends a room-filtered socket no voice events of other rooms", async () => {
    const mine = newChannelId();
    const other = newChannelId();
    await postInternal({ events: [roomCreated(mine), roomCreated(other)] });
    const socket = await open();
    await socket.auth(await mintToken({ sub: newUserId() }), { rooms: [mine] });
    const member = newUserId();
    await postInternal({ events: [joined(other, newUserId()), joined(mine, member)] });
    await socket.waitFor((m) => m.type === "event" && m.event === "voice.joined" && m.payload.channelId === mine, "the subscribed room's join");
    expect(socket.events().filter((e) => e.event === "voice.joined" && e.payload.channelId === other)).toEqual([]);
    await good.expectStillServed([mine, other]);
  });

  it("still closes 4409 for garbage after the hub hibernated, and keeps serving the good client", async () => {
    const socket = await open();
    await socket.auth(await mintToken({ sub: newUserId() }));
    await evictDurableObject(hubStub(), { webSockets: "hibernate" });
    socket.send("{garbage");
    expect((await socket.waitForClose()).code).toBe(4409);
    await good.expectStillServed();
  });

  it.each([
    ["no Upgrade header", "/ws", {}],
    ["a non-websocket Upgrade", "/ws", { Upgrade: "h2c" }],
    ["a huge guildId", `/ws?guildId=${"9".repeat(4096)}`, { Upgrade: "websocket" }],
    ["a path-trick guildId", "/ws?guildId=..%2F..%2Finternal", { Upgrade: "websocket" }],
    ["a repeated guildId", "/ws?guildId=1&guildId=2", { Upgrade: "websocket" }],
  ])("answers an upgrade with %s without a 500", async (_label, path, headers) => {
    const response = await edgeFetch(path, { headers });
    expect(response.status).toBeLessThan(500);
    if (response.webSocket) {
      const socket = track(new TestSocket(response.webSocket));
      socket.send({ type: "auth", token: await mintToken({ sub: newUserId() }) });
      await socket.waitFor((m) => m.type === "ack", "auth.ok on the primary guild");
    }
    await good.expectStillServed();
  });
});

describe("secrets", () => {
  it("appear in no log line", () => {
    expectNoSecretsLeaked();
  });
});
