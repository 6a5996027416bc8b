import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  AppEvent,
  ClientAuth,
  ClientMessage,
  CreateRoomBody,
  ErrorBody,
  EventEnvelope,
  GuildSyncPayload,
  InternalEvent,
  InternalEventsBody,
  InternalEventsResponse,
  MAX_CLOCK_SKEW_SECONDS,
  Member,
  Room,
  RoomsResponse,
  ServerMessage,
  Snowflake,
  parseJson,
  signHubBody,
  timingSafeEqual,
  verifyHubSignature,
} from "../../../protocol/index.js";

/**
 * Property-based tests of the wire parsers: they never throw, whatever arrives, and accept exactly what the
 * contract allows. fast-check prints the seed and the shrunk counterexample when a property fails.
 */

const RUNS = 300;
const MAX_SNOWFLAKE = (1n << 64n) - 1n;
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f]/;

const schemas = {
  Snowflake,
  Member,
  Room,
  AppEvent,
  InternalEvent,
  InternalEventsBody,
  InternalEventsResponse,
  GuildSyncPayload,
  CreateRoomBody,
  ClientAuth,
  ClientMessage,
  ServerMessage,
  EventEnvelope,
  RoomsResponse,
  ErrorBody,
};

const hostileValue = fc.anything({
  withBigInt: true,
  withBoxedValues: true,
  withDate: true,
  withMap: true,
  withSet: true,
  withNullPrototype: true,
  withObjectString: true,
  withSparseArray: true,
  withTypedArray: true,
  withUnicodeString: true,
});

/** JSON as an attacker would send it: arbitrary values, with the keys the schemas care about mixed in. */
const keyish = fc.constantFrom("type", "token", "since", "rooms", "event", "payload", "id", "events", "guildId", "channelId", "userId", "name", "userLimit", "parentId", "__proto__", "constructor");
const hostileJson = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    fc.jsonValue(),
    fc.dictionary(fc.oneof(keyish, fc.string()), tie("value"), { maxKeys: 6 }),
    fc.array(tie("value"), { maxLength: 4 }),
  ),
})).value;

const snowflake = fc.bigInt({ min: 10n ** 16n, max: MAX_SNOWFLAKE }).map(String);

describe("parsers never throw", () => {
  it.each(Object.entries(schemas))("%s.safeParse on arbitrary values and hostile JSON", (_name, schema) => {
    fc.assert(
      fc.property(fc.oneof(hostileValue, hostileJson), (value) => {
        const result = schema.safeParse(value);
        expect(typeof result.success).toBe("boolean");
      }),
      { numRuns: RUNS },
    );
  });

  it("parseJson returns JSON.parse's value for JSON and undefined for anything else, never throwing", () => {
    fc.assert(
      fc.property(fc.oneof(fc.json(), fc.string({ unit: "binary" }), fc.constant("[".repeat(100_000))), (text) => {
        let expected: unknown;
        try {
          expected = JSON.parse(text);
        } catch {
          expected = undefined;
        }
        expect(parseJson(text)).toEqual(expected);
      }),
      { numRuns: RUNS },
    );
  });

  it("verifyHubSignature never throws on arbitrary headers, bodies and clocks", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.option(fc.string({ unit: "binary" }), { nil: null }),
        fc.option(fc.oneof(fc.string({ unit: "binary" }), fc.stringMatching(/^sha256=[0-9a-f]{0,70}$/)), { nil: null }),
        fc.string({ unit: "binary" }),
        fc.oneof(fc.integer(), fc.double()),
        async (timestamp, signature, body, nowMs) => {
          const result = await verifyHubSignature("secret-0123456789abcdef", timestamp, signature, body, nowMs);
          expect(typeof result.ok).toBe("boolean");
        },
      ),
      { numRuns: RUNS },
    );
  });
});

describe("parsers accept exactly what they should", () => {
  it("Snowflake accepts exactly the decimal 64-bit ids of 17–20 digits", () => {
    const candidates = fc.oneof(
      snowflake,
      fc.bigInt({ min: 0n, max: 10n ** 22n }).map(String),
      fc.stringMatching(/^[0-9]{15,22}$/),
      fc.string({ unit: "binary" }),
    );
    fc.assert(
      fc.property(candidates, (text) => {
        const should = /^[0-9]{17,20}$/.test(text) && BigInt(text) <= MAX_SNOWFLAKE;
        expect(Snowflake.safeParse(text).success, JSON.stringify(text)).toBe(should);
      }),
      { numRuns: RUNS },
    );
  });

  it("CreateRoomBody accepts a name exactly when, trimmed, it has 1–100 characters (no control characters)", () => {
    const name = fc.oneof(fc.string({ unit: "grapheme", maxLength: 110 }), fc.string({ unit: "binary", maxLength: 110 }));
    fc.assert(
      fc.property(name.filter((n) => !CONTROL_CHARACTER.test(n.trim())), (candidate) => {
        const trimmed = candidate.trim();
        const result = CreateRoomBody.safeParse({ name: candidate });
        expect(result.success, JSON.stringify(candidate)).toBe(trimmed.length >= 1 && trimmed.length <= 100);
        if (result.success) expect(result.data.name).toBe(trimmed);
      }),
      { numRuns: RUNS },
    );
  });

  it("CreateRoomBody rejects every name with a control character inside", () => {
    const name = fc
      .tuple(fc.string({ maxLength: 40 }), fc.integer({ min: 0, max: 0x9f }).filter((c) => c < 0x20 || c >= 0x7f), fc.string({ maxLength: 40 }))
      .map(([before, code, after]) => `x${before}${String.fromCharCode(code)}${after}x`);
    fc.assert(
      fc.property(name, (candidate) => {
        expect(CreateRoomBody.safeParse({ name: candidate }).success, JSON.stringify(candidate)).toBe(false);
      }),
      { numRuns: RUNS },
    );
  });

  it("CreateRoomBody accepts exactly integer user limits 0–99 and snowflake parents, and no other field", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.integer({ min: -200, max: 200 }), fc.double(), fc.constant(undefined)),
        fc.option(fc.oneof(snowflake, fc.string()), { nil: undefined }),
        fc.option(fc.string({ minLength: 1 }), { nil: undefined }),
        (userLimit, parentId, extraKey) => {
          const body: Record<string, unknown> = { name: "ok" };
          if (userLimit !== undefined) body.userLimit = userLimit;
          if (parentId !== undefined) body.parentId = parentId;
          if (extraKey !== undefined && !["name", "userLimit", "parentId"].includes(extraKey)) body[extraKey] = 1;
          const limitOk = userLimit === undefined || (Number.isInteger(userLimit) && userLimit >= 0 && userLimit <= 99);
          const parentOk = parentId === undefined || Snowflake.safeParse(parentId).success;
          const keysOk = Object.keys(body).every((key) => ["name", "userLimit", "parentId"].includes(key));
          const result = CreateRoomBody.safeParse(body);
          expect(result.success).toBe(limitOk && parentOk && keysOk);
          if (result.success) expect(result.data.userLimit).toBe(userLimit ?? 4);
        },
      ),
      { numRuns: RUNS },
    );
  });

  const validAuth = fc.record(
    {
      type: fc.constant("auth" as const),
      token: fc.string({ minLength: 1, maxLength: 8192 }),
      since: fc.nat(),
      rooms: fc.array(snowflake, { maxLength: 50 }),
    },
    { requiredKeys: ["type", "token"] },
  );

  it("ClientMessage accepts every well-formed auth unchanged", () => {
    fc.assert(
      fc.property(validAuth, (auth) => {
        const result = ClientMessage.safeParse(JSON.parse(JSON.stringify(auth)));
        expect(result.success).toBe(true);
        expect(result.data).toEqual(auth);
      }),
      { numRuns: RUNS },
    );
  });

  it("ClientMessage rejects an auth with any field out of bounds or unknown", () => {
    const broken = fc.oneof(
      validAuth.map((a) => ({ ...a, token: "" })),
      validAuth.map((a) => ({ ...a, token: "t".repeat(8193) })),
      fc.tuple(validAuth, fc.integer({ max: -1 })).map(([a, since]) => ({ ...a, since })),
      fc.tuple(validAuth, fc.double({ noInteger: true })).map(([a, since]) => ({ ...a, since })),
      validAuth.map((a) => ({ ...a, rooms: Array.from({ length: 51 }, (_, i) => String(300000000000000000n + BigInt(i))) })),
      fc.tuple(validAuth, fc.string().filter((s) => !Snowflake.safeParse(s).success)).map(([a, room]) => ({ ...a, rooms: [room] })),
      fc.tuple(validAuth, fc.string().filter((k) => !["type", "token", "since", "rooms"].includes(k))).map(([a, key]) => ({ ...a, [key]: true })),
      fc.tuple(validAuth, fc.string().filter((t) => t !== "auth")).map(([a, type]) => ({ ...a, type })),
    );
    fc.assert(
      fc.property(broken, (message) => {
        expect(ClientMessage.safeParse(JSON.parse(JSON.stringify(message))).success).toBe(false);
      }),
      { numRuns: RUNS },
    );
  });

  const guildId = snowflake;
  const appEvent = fc.oneof(
    fc.record({
      event: fc.constant("room.created"),
      payload: fc.record(
        {
          guildId,
          channelId: snowflake,
          name: fc.string({ minLength: 1, maxLength: 100 }),
          parentId: fc.option(snowflake, { nil: null }),
          userLimit: fc.integer({ min: 0, max: 99 }),
        },
        { requiredKeys: ["guildId", "channelId", "name", "userLimit"] },
      ),
    }),
    fc.record({ event: fc.constant("room.deleted"), payload: fc.record({ guildId, channelId: snowflake }) }),
    fc.record({
      event: fc.constant("voice.joined"),
      payload: fc.record(
        { guildId, channelId: snowflake, userId: snowflake, username: fc.string({ maxLength: 100 }), avatar: fc.option(fc.string({ maxLength: 200 }), { nil: null }) },
        { requiredKeys: ["guildId", "channelId", "userId"] },
      ),
    }),
    fc.record({ event: fc.constant("voice.left"), payload: fc.record({ guildId, channelId: snowflake, userId: snowflake }) }),
  );
  const eventId = fc.string({ minLength: 1, maxLength: 128 });

  it("InternalEventsBody accepts every well-formed batch of 1–500 identified events", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(eventId, appEvent), { minLength: 1, maxLength: 20 }), (pairs) => {
        const body = { events: pairs.map(([id, event]) => ({ id, ...event })) };
        expect(InternalEventsBody.safeParse(JSON.parse(JSON.stringify(body))).success).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });

  it("InternalEventsBody rejects unknown event kinds, id-less batch entries and empty batches", () => {
    const known = ["room.created", "room.deleted", "voice.joined", "voice.left", "guild.sync"];
    const broken = fc.oneof(
      fc.tuple(eventId, appEvent, fc.string().filter((name) => !known.includes(name))).map(([id, event, name]) => ({ events: [{ id, ...event, event: name }] })),
      fc.tuple(eventId, appEvent, fc.string().filter((name) => !known.includes(name))).map(([id, event, name]) => ({ id, ...event, event: name })),
      appEvent.map((event) => ({ events: [event] })),
      fc.constant({ events: [] }),
      fc.tuple(appEvent, fc.oneof(fc.constant(""), fc.string({ minLength: 129, maxLength: 200 }))).map(([event, id]) => ({ events: [{ id, ...event }] })),
    );
    fc.assert(
      fc.property(broken, (body) => {
        expect(InternalEventsBody.safeParse(JSON.parse(JSON.stringify(body))).success).toBe(false);
      }),
      { numRuns: RUNS },
    );
  });
});

describe("HMAC", () => {
  const secret = "test-hub-secret-0123456789abcdef";

  it(`verifyHubSignature accepts exactly a correct signature within ${MAX_CLOCK_SKEW_SECONDS} s`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ unit: "binary", maxLength: 200 }),
        fc.integer({ min: 1_000_000_000, max: 4_000_000_000 }),
        fc.integer({ min: -2 * MAX_CLOCK_SKEW_SECONDS, max: 2 * MAX_CLOCK_SKEW_SECONDS }),
        async (body, timestamp, skewSeconds) => {
          const signature = await signHubBody(secret, timestamp, body);
          const nowMs = (timestamp + skewSeconds) * 1000;
          const result = await verifyHubSignature(secret, String(timestamp), signature, body, nowMs);
          expect(result.ok).toBe(Math.abs(skewSeconds) <= MAX_CLOCK_SKEW_SECONDS);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("verifyHubSignature rejects every altered signature, body or secret", async () => {
    const alteration = fc.oneof(
      fc.nat({ max: 63 }).map((i) => ({ kind: "flip" as const, i })),
      fc.nat({ max: 70 }).map((n) => ({ kind: "truncate" as const, n })),
      fc.string({ minLength: 1, maxLength: 4 }).map((tail) => ({ kind: "append" as const, tail })),
      fc.string({ minLength: 1, maxLength: 4 }).map((tail) => ({ kind: "body" as const, tail })),
      fc.string({ minLength: 1, maxLength: 4 }).map((tail) => ({ kind: "secret" as const, tail })),
    );
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: "binary", maxLength: 200 }), alteration, async (body, change) => {
        const timestamp = 1_700_000_000;
        const good = await signHubBody(secret, timestamp, body);
        let signature = good;
        let sentBody = body;
        let usedSecret = secret;
        if (change.kind === "flip") {
          const at = 7 + change.i;
          const replacement = good[at] === "0" ? "1" : "0";
          signature = good.slice(0, at) + replacement + good.slice(at + 1);
        } else if (change.kind === "truncate") signature = good.slice(0, change.n);
        else if (change.kind === "append") signature = good + change.tail;
        else if (change.kind === "body") sentBody = body + change.tail;
        else usedSecret = secret + change.tail;
        const result = await verifyHubSignature(usedSecret, String(timestamp), signature, sentBody, timestamp * 1000);
        expect(result.ok).toBe(false);
      }),
      { numRuns: RUNS },
    );
  });

  it("verifyHubSignature accepts only timestamps of 1–12 plain digits", async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: "binary", maxLength: 16 }), async (timestamp) => {
        const result = await verifyHubSignature(secret, timestamp, `sha256=${"0".repeat(64)}`, "{}", Date.now());
        if (!/^\d{1,12}$/.test(timestamp)) expect(result).toEqual({ ok: false, reason: "missing" });
        else expect(result.ok).toBe(false);
      }),
      { numRuns: RUNS },
    );
  });

  it("timingSafeEqual(a, b) is exactly a === b", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.tuple(fc.string({ unit: "binary" }), fc.string({ unit: "binary" })),
          fc.string({ unit: "binary" }).map((s) => [s, s] as [string, string]),
          fc.tuple(fc.integer({ min: 0xd800, max: 0xdfff }), fc.integer({ min: 0xd800, max: 0xdfff })).map(
            ([a, b]) => [String.fromCharCode(a), String.fromCharCode(b)] as [string, string],
          ),
        ),
        ([a, b]) => {
          expect(timingSafeEqual(a, b), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`).toBe(a === b);
        },
      ),
      { numRuns: RUNS },
    );
  });
});
