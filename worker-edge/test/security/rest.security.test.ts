import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { TEST_BOT_TOKEN } from "../support/bindings.js";
import { DiscordFake } from "../support/discord-fake.js";
import { newUserId } from "../support/edge.js";
import { mintToken } from "../support/tokens.js";
import {
  captureConsole,
  embeddedJwkToken,
  expectNoSecretsLeaked,
  GoodClient,
  hmacWithPublicKey,
  noneToken,
  probe,
  rawToken,
  swappedPayloadToken,
  tamperedSignatureToken,
  type Probe,
} from "./support/hostile.js";

/** Hostile input against the REST routes. Every case also checks that a good socket client is unaffected. */

const MAX_REST_BODY_BYTES = 16 * 1024;
const MAX_TOKEN_BYTES = 8 * 1024;
const NBF_TOLERANCE_SECONDS = 30;

let discord: DiscordFake;
let good: GoodClient;

beforeEach(async () => {
  captureConsole();
  discord = new DiscordFake();
  discord.install();
  good = await GoodClient.open();
});
afterEach(() => {
  good.close();
  vi.restoreAllMocks();
});

const now = () => Math.floor(Date.now() / 1000);

function bearer(token: string | undefined): Record<string, string> {
  return token === undefined ? {} : { Authorization: `Bearer ${token}` };
}

type Route = { name: string; call: (headers: Record<string, string>) => Promise<Probe> };

const END_ROOM_ID = "300000000000000999";
const routes: Route[] = ["", "/api"].flatMap((prefix) => [
  {
    name: `POST ${prefix}/create-room`,
    call: (headers: Record<string, string>) =>
      probe(`${prefix}/create-room`, {
        method: "POST",
        headers: { "Content-Type": "application/json", ...headers },
        body: JSON.stringify({ name: "hostile" }),
      }),
  },
  {
    name: `DELETE ${prefix}/end-room/:id`,
    call: (headers: Record<string, string>) => probe(`${prefix}/end-room/${END_ROOM_ID}`, { method: "DELETE", headers }),
  },
  { name: `GET ${prefix}/rooms`, call: (headers: Record<string, string>) => probe(`${prefix}/rooms`, { headers }) },
]);

const badCredentials: Array<[string, () => Promise<Record<string, string>>]> = [
  ["no Authorization header", async () => ({})],
  ["an empty bearer", async () => ({ Authorization: "Bearer " })],
  ["a Basic scheme carrying a valid token", async () => ({ Authorization: `Basic ${await mintToken()}` })],
  ["a token that is not a JWT", async () => bearer("not-a-jwt")],
  ["two bearer tokens in one header", async () => ({ Authorization: `Bearer ${await mintToken()}, Bearer ${await mintToken()}` })],
  ["a valid token followed by junk", async () => ({ Authorization: `Bearer ${await mintToken()} junk` })],
  ["a token of three empty parts", async () => bearer("..")],
  ["alg none", async () => bearer(noneToken("none"))],
  ["alg None", async () => bearer(noneToken("None"))],
  ["alg NONE", async () => bearer(noneToken("NONE"))],
  ["alg none with a junk signature", async () => bearer(noneToken("none", "c2lnbmF0dXJl"))],
  ["HS256 keyed with the public JWK's JSON", async () => bearer(await hmacWithPublicKey("jwk-json"))],
  ["HS256 keyed with the public key's PEM", async () => bearer(await hmacWithPublicKey("spki-pem"))],
  ["HS256 keyed with the public modulus", async () => bearer(await hmacWithPublicKey("modulus"))],
  ["signed by a foreign key with the trusted kid", async () => bearer(await rawToken({ key: "foreign" }))],
  ["signed by a foreign key with another kid", async () => bearer(await rawToken({ key: "foreign", header: { kid: "evil-key" } }))],
  ["signed by the trusted key under a wrong kid", async () => bearer(await rawToken({ header: { kid: "some-other-key" } }))],
  ["carrying its own key in the jwk header", async () => bearer(await embeddedJwkToken())],
  ["with a tampered signature", async () => bearer(await tamperedSignatureToken())],
  ["with a payload swapped after signing", async () => bearer(await swappedPayloadToken())],
  ["expired 1 s ago", async () => bearer(await rawToken({ claims: { iat: now() - 60, exp: now() - 1 } }))],
  ["expired 20 s ago", async () => bearer(await rawToken({ claims: { iat: now() - 60, exp: now() - 20 } }))],
  ["expired 2 min ago", async () => bearer(await rawToken({ claims: { iat: now() - 600, exp: now() - 120 } }))],
  [
    `not valid before ${NBF_TOLERANCE_SECONDS + 15} s from now`,
    async () => bearer(await rawToken({ claims: { nbf: now() + NBF_TOLERANCE_SECONDS + 15 } })),
  ],
  ["from another issuer", async () => bearer(await rawToken({ claims: { iss: "https://evil.test" } }))],
  ["for another audience", async () => bearer(await rawToken({ claims: { aud: "someone-else" } }))],
  ["for an audience list without ours", async () => bearer(await rawToken({ claims: { aud: ["a", "b"] } }))],
  ["without iss", async () => bearer(await rawToken({ omit: ["iss"] }))],
  ["without aud", async () => bearer(await rawToken({ omit: ["aud"] }))],
  ["without exp", async () => bearer(await rawToken({ omit: ["exp"] }))],
  ["without sub", async () => bearer(await rawToken({ omit: ["sub"] }))],
  ["with an empty sub", async () => bearer(await rawToken({ claims: { sub: "" } }))],
  [
    `over ${MAX_TOKEN_BYTES} bytes (validly signed)`,
    async () => bearer(await rawToken({ claims: { pad: "p".repeat(MAX_TOKEN_BYTES + 512) } })),
  ],
  ["of 64 KiB of junk", async () => bearer("e".repeat(64 * 1024))],
];

describe.each(routes)("$name", ({ name, call }) => {
  it.each(badCredentials)("answers 401 unauthorized for %s", async (_label, make) => {
    const response = await call(await make());
    expect(response.status, response.text.slice(0, 300)).toBe(401);
    expect(response.json).toMatchObject({ error: "unauthorized" });
    expect(discord.calls, "Discord was called for an unauthenticated request").toEqual([]);
    await good.expectStillServed();
  });

  it(`accepts a token whose nbf is within the ${NBF_TOLERANCE_SECONDS} s tolerance (control)`, async () => {
    const response = await call(bearer(await rawToken({ claims: { nbf: now() + 10 } })));
    expect(response.status).not.toBe(401);
    expect(response.status).toBeLessThan(500);
    const created = name.startsWith("POST") ? [(response.json as { channelId: string }).channelId] : [];
    await good.expectStillServed(created);
  });
});

describe("POST /create-room input", () => {
  async function create(body: BodyInit, headers: Record<string, string> = {}) {
    return probe("/create-room", {
      method: "POST",
      headers: { Authorization: `Bearer ${await mintToken({ sub: newUserId() })}`, "Content-Type": "application/json", ...headers },
      body,
    });
  }

  async function expectInvalid(response: Probe) {
    expect(response.status, response.text.slice(0, 300)).toBe(400);
    expect(response.json).toMatchObject({ error: "invalid_input" });
    expect(discord.calls, "Discord was called for invalid input").toEqual([]);
    await good.expectStillServed();
  }

  it.each([
    ["not JSON", "{nope"],
    ["empty", ""],
    ["a lone bracket", "["],
    ["JSON null", "null"],
    ["a JSON array", "[]"],
    ["a JSON string", '"name"'],
    ["a JSON number", "42"],
    ["JSON with trailing garbage", '{"name":"a"} x'],
    ["deeply nested arrays", `{"name":${"[".repeat(5_000)}${"]".repeat(5_000)}}`],
    ["a __proto__ key", '{"name":"a","__proto__":{"admin":true}}'],
    ["a constructor.prototype key", '{"name":"a","constructor":{"prototype":{"admin":true}}}'],
    ["an unknown field", '{"name":"a","creatorId":"200000000000000001"}'],
    ["Infinity for userLimit", '{"userLimit":1e999}'],
    ["a string userLimit", '{"userLimit":"4"}'],
    ["a boolean userLimit", '{"userLimit":true}'],
    ["userLimit 1e2", '{"userLimit":1e2}'],
    ["a numeric name", '{"name":123}'],
    ["a null name", '{"name":null}'],
    ["an object name", '{"name":{"toString":"x"}}'],
  ])("rejects a body that is %s with 400", async (_label, body) => {
    await expectInvalid(await create(body));
  });

  it.each([
    ["a NUL byte", "a\u0000b"],
    ["only a NUL byte", "\u0000"],
    ["a bell", "bell\u0007"],
    ["a newline inside", "line\nbreak"],
    ["a carriage return inside", "carriage\rreturn"],
    ["a tab inside", "tab\tinside"],
    ["an ANSI escape", "\u001b[31mred"],
    ["DEL", "del\u007f"],
    ["a C1 control (NEL)", "next\u0085line"],
    ["a C1 control (CSI)", "csi\u009b31m"],
  ])("rejects a name with %s (control characters) with 400", async (_label, name) => {
    await expectInvalid(await create(JSON.stringify({ name })));
  });

  it.each([
    ["101 characters", "x".repeat(101)],
    ["10 000 characters", "x".repeat(10_000)],
    ["only spaces", "     "],
    ["only non-breaking spaces", "\u00a0\u00a0"],
  ])("rejects a name of %s with 400", async (_label, name) => {
    await expectInvalid(await create(JSON.stringify({ name })));
  });

  it.each([
    ["letters", "abc"],
    ["too few digits", "1234"],
    ["too many digits", "12345678901234567890123"],
    ["full-width digits", "３００００００００００００００００１"],
    ["a leading space", " 300000000000000001"],
    ["a trailing newline", "300000000000000001\n"],
    ["a minus sign", "-30000000000000001"],
    ["an exponent", "3e17"],
    ["a value above 2^64 - 1", "99999999999999999999"],
  ])("rejects a parentId with %s (bad snowflake) with 400", async (_label, parentId) => {
    await expectInvalid(await create(JSON.stringify({ name: "x", parentId })));
  });

  it("rejects a parentId sent as a number with 400", async () => {
    await expectInvalid(await create('{"name":"x","parentId":300000000000000001}'));
  });

  it.each([
    ["an empty key", ""],
    ["a key with a space", "key with space"],
    ["a key of 129 characters", "k".repeat(129)],
    ["a key with Latin-1 letters", "cl\u00e9"],
  ])("rejects X-Idempotency-Key with %s with 400", async (_label, key) => {
    await expectInvalid(await create(JSON.stringify({ name: "x" }), { "X-Idempotency-Key": key }));
  });

  it.each([
    ["application/x-www-form-urlencoded", "name=x&userLimit=4"],
    ["multipart/form-data; boundary=b", '--b\r\nContent-Disposition: form-data; name="name"\r\n\r\nx\r\n--b--\r\n'],
  ])("rejects a %s body with 400 invalid_input", async (contentType, body) => {
    await expectInvalid(await create(body, { "Content-Type": contentType }));
  });

  it("answers a JSON body labelled text/plain as documented (JSON is parsed whatever the label), never 500", async () => {
    const response = await create(JSON.stringify({ name: "plain" }), { "Content-Type": "text/plain" });
    expect([201, 400, 415]).toContain(response.status);
    const created = response.status === 201 ? [(response.json as { channelId: string }).channelId] : [];
    await good.expectStillServed(created);
  });

  it("accepts a 100-character name padded with spaces, trimmed (control)", async () => {
    const response = await create(JSON.stringify({ name: `  ${"y".repeat(100)}  ` }));
    expect(response.status).toBe(201);
    const created = response.json as { channelId: string; name: string };
    expect(created.name).toBe("y".repeat(100));
    await good.expectStillServed([created.channelId]);
  });

  it.each([
    ["one byte over 16 KiB", MAX_REST_BODY_BYTES + 1],
    ["1 MiB", 1024 * 1024],
  ])("answers 413 for a body of %s", async (_label, size) => {
    const body = JSON.stringify({ name: "x", pad: "" });
    const padded = body.replace('"pad":""', `"pad":"${"z".repeat(size - body.length)}"`);
    expect(padded.length).toBe(size);
    const response = await create(padded);
    expect(response.status).toBe(413);
    expect(response.json).toMatchObject({ error: "payload_too_large" });
    expect(discord.calls).toEqual([]);
    await good.expectStillServed();
  });

  it("answers 413 for a streamed body over 16 KiB without Content-Length", async () => {
    const chunk = new TextEncoder().encode("z".repeat(4096));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('{"name":"x","pad":"'));
      },
      pull(controller) {
        if (sent >= 64 * 1024) {
          controller.enqueue(new TextEncoder().encode('"}'));
          controller.close();
          return;
        }
        sent += chunk.byteLength;
        controller.enqueue(chunk);
      },
    });
    const response = await create(stream);
    expect(response.status).toBe(413);
    expect(discord.calls).toEqual([]);
    await good.expectStillServed();
  });
});

describe("DELETE /end-room path tricks", () => {
  it.each([
    ["letters", "/end-room/abc"],
    ["too few digits", "/end-room/1234"],
    ["a value above 2^64 - 1", "/end-room/99999999999999999999"],
    ["an encoded ../", "/end-room/..%2F"],
    ["an encoded ../ before a snowflake", "/end-room/..%2F300000000000000999"],
    ["an encoded slash inside", "/end-room/300000000000000999%2Fextra"],
    ["a double-encoded slash", "/end-room/300000000000000999%252F.."],
    ["encoded dots", "/end-room/%2e%2e"],
    ["an encoded NUL", "/end-room/300000000000000999%00"],
    ["an encoded newline", "/end-room/300000000000000999%0A"],
    ["an extra segment", "/end-room/300000000000000999/extra"],
    ["an empty id", "/end-room/"],
    ["a double slash", "/end-room//300000000000000999"],
    ["a backslash", "/end-room/..%5C300000000000000999"],
    ["a dot segment after /api", "/api/../end-room/300000000000000999"],
    ["full-width digits", `/end-room/${encodeURIComponent("３００００００００００００００００１")}`],
    ["an overlong UTF-8 slash", "/end-room/%C0%AF300000000000000999"],
    ["invalid percent-encoding", "/end-room/%E0%A4%A"],
    ["a 4 KiB id", `/end-room/${"9".repeat(4096)}`],
  ])("answers %s with 400 or 404, never 500", async (_label, path) => {
    const response = await probe(path, { method: "DELETE", headers: bearer(await mintToken({ sub: newUserId() })) });
    expect([400, 404], `${response.status} ${response.text.slice(0, 300)}`).toContain(response.status);
    expect(response.json).toMatchObject({ error: expect.stringMatching(/^(invalid_input|not_found)$/) });
    expect(discord.calls.filter((c) => c.method === "DELETE"), "Discord DELETE for a path trick").toEqual([]);
    await good.expectStillServed();
  });
});

describe("methods", () => {
  it.each([
    ["PUT", "/create-room"],
    ["PATCH", "/create-room"],
    ["GET", "/create-room"],
    ["POST", "/rooms"],
    ["DELETE", "/rooms"],
    ["PUT", "/rooms"],
    ["GET", `/end-room/${END_ROOM_ID}`],
    ["POST", `/end-room/${END_ROOM_ID}`],
    ["PUT", `/end-room/${END_ROOM_ID}`],
    ["PROPFIND", "/rooms"],
    ["GET", "/internal/events"],
    ["PUT", "/internal/events"],
    ["DELETE", "/health"],
    ["PATCH", "/api/rooms"],
  ])("answers %s %s with 404 or 405, never 500", async (method, path) => {
    const response = await probe(path, { method, headers: bearer(await mintToken({ sub: newUserId() })) });
    expect([404, 405], `${response.status} ${response.text.slice(0, 300)}`).toContain(response.status);
    expect(discord.calls).toEqual([]);
    await good.expectStillServed();
  });
});

describe("CORS", () => {
  const foreignOrigins = ["https://evil.test", "null", "https://app.test.evil.test", "https://evil.test/https://app.test", "http://app.test"];

  it.each(foreignOrigins)("gives the foreign origin %s no Access-Control-Allow-Origin", async (origin) => {
    const token = await mintToken({ sub: newUserId() });
    const answers = [
      await probe("/rooms", { headers: { Origin: origin, ...bearer(token) } }),
      await probe("/rooms", { headers: { Origin: origin } }),
      await probe("/rooms", { method: "OPTIONS", headers: { Origin: origin, "Access-Control-Request-Method": "GET" } }),
      await probe("/create-room", {
        method: "OPTIONS",
        headers: { Origin: origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization" },
      }),
      await probe("/api/rooms", { headers: { Origin: origin, ...bearer(token) } }),
      await probe("/end-room/abc", { method: "DELETE", headers: { Origin: origin, ...bearer(token) } }),
    ];
    for (const answer of answers) {
      expect(answer.headers.get("Access-Control-Allow-Origin")).toBeNull();
      expect(answer.status).toBeLessThan(500);
    }
    await good.expectStillServed();
  });

  it("echoes an allowed origin, never a wildcard with credentials (control)", async () => {
    const response = await probe("/rooms", { headers: { Origin: "https://app.test", ...bearer(await mintToken()) } });
    expect(response.headers.get("Access-Control-Allow-Origin")).toBe("https://app.test");
    await good.expectStillServed();
  });
});

describe("idempotency keys are per user", () => {
  async function createAs(userId: string, key: string, name: string) {
    return probe("/create-room", {
      method: "POST",
      headers: { Authorization: `Bearer ${await mintToken({ sub: userId })}`, "Content-Type": "application/json", "X-Idempotency-Key": key },
      body: JSON.stringify({ name }),
    });
  }

  it("does not return one user's result to another user with the same key", async () => {
    const key = `shared-${crypto.randomUUID()}`;
    const alice = await createAs(newUserId(), key, "alice's room");
    const mallory = await createAs(newUserId(), key, "mallory's room");
    expect(alice.status).toBe(201);
    expect(mallory.status).toBe(201);
    const a = alice.json as { channelId: string; name: string };
    const m = mallory.json as { channelId: string; name: string };
    expect(m.channelId).not.toBe(a.channelId);
    expect(m.name).toBe("mallory's room");
    expect(discord.calls.filter((c) => c.method === "POST")).toHaveLength(2);
    await good.expectStillServed([a.channelId, m.channelId]);
  });

  it("does not share an in-flight create between users racing with the same key", async () => {
    const key = `race-${crypto.randomUUID()}`;
    let release!: () => void;
    discord.hold = new Promise((resolve) => (release = resolve));
    const aliceCall = createAs(newUserId(), key, "alice's room");
    await vi.waitFor(() => expect(discord.calls.length).toBeGreaterThan(0), { timeout: 2_000 });
    const malloryCall = createAs(newUserId(), key, "mallory's room");
    await vi.waitFor(() => expect(discord.calls.length).toBe(2), { timeout: 2_000 });
    release();
    const [alice, mallory] = await Promise.all([aliceCall, malloryCall]);
    const a = alice.json as { channelId: string };
    const m = mallory.json as { channelId: string; name: string };
    expect(m.channelId).not.toBe(a.channelId);
    expect(m.name).toBe("mallory's room");
    await good.expectStillServed([a.channelId, m.channelId]);
  });
});

describe("secrets", () => {
  it("leave the Worker in no response body, header or log line", async () => {
    // Provoke the paths most likely to echo configuration: Discord failures with the token in their body.
    discord.script({ status: 500, body: { message: `upstream saw Bot ${TEST_BOT_TOKEN}` } });
    const failed = await probe("/create-room", {
      method: "POST",
      headers: { Authorization: `Bearer ${await mintToken({ sub: newUserId() })}`, "Content-Type": "application/json" },
      body: JSON.stringify({ name: "leak?" }),
    });
    expect(failed.status).toBe(502);
    discord.script({ status: 401, body: { message: "401: Unauthorized", code: 0 } });
    await probe("/create-room", {
      method: "POST",
      headers: { Authorization: `Bearer ${await mintToken({ sub: newUserId() })}`, "Content-Type": "application/json" },
      body: JSON.stringify({ name: "leak?" }),
    });
    expectNoSecretsLeaked();
    await good.expectStillServed();
  });
});
