import fc from "fast-check";
import { isDeepStrictEqual } from "node:util";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import * as protocol from "../../protocol/index.js";
import * as restSchemas from "../rest-schemas.js";
import * as wireSchemas from "../schemas.js";
import type * as types from "../types.js";
import { invalid, type Output, type Validator } from "../validate.js";

const client = { ...wireSchemas, ...restSchemas };

// client/schemas.ts re-states protocol/'s zod schemas with small hand-written validators for a small browser bundle:
// both must accept and reject the same messages and give the same data (unknown keys dropped alike). Every leaf of
// each valid message is replaced with a set of awkward values (and deleted), and each variant goes through both;
// then fast-check generates valid messages and mutates them (seeded: FC_SEED=<n> replays a run).
const A = "111111111111111111";
const B = "222222222222222222";
const media = { selfMute: true, selfDeaf: false, mute: false, deaf: true, selfVideo: true, selfStream: false };
const member = { userId: B, username: "Alice", avatar: null, media };
const room = { channelId: A, name: "Friday", userLimit: 4, parentId: null, creatorId: B, members: [member, { userId: A }] };
const envelope = { v: 1, type: "event", ts: 1_700_000_000_000, seq: 7 };

const server: unknown[] = [
  { v: 1, type: "ack", event: "auth.ok", guildId: A, seq: 0 },
  { v: 1, type: "snapshot", payload: { rooms: [room, { ...room, channelId: B, parentId: A, members: [] }] }, seq: 3 },
  { v: 1, type: "snapshot", payload: { rooms: [], status: "absent" }, seq: 4 },
  { ...envelope, event: "room.created", payload: { guildId: A, channelId: B, name: "Room", parentId: A, userLimit: 0, creatorId: A } },
  { ...envelope, event: "room.updated", payload: { guildId: A, channelId: B, name: "Room", userLimit: 99 } },
  { ...envelope, event: "room.deleted", payload: { guildId: A, channelId: B } },
  { ...envelope, event: "voice.joined", payload: { guildId: A, channelId: B, userId: B, username: "Bob", avatar: "abc" } },
  { ...envelope, event: "voice.joined", payload: { guildId: A, channelId: B, userId: B, media } },
  { ...envelope, event: "voice.left", payload: { guildId: A, channelId: B, userId: B } },
  { ...envelope, event: "voice.media", payload: { guildId: A, channelId: B, userId: B, media } },
  { ...envelope, event: "guild.status", payload: { guildId: A, status: "unavailable" } },
  { ...envelope, event: "room.renamed", payload: { guildId: A } },
];

const awkward: unknown[] = [
  undefined, null, "", "x", "x".repeat(100), "x".repeat(101), "x".repeat(201), 0, -1, 1, 1.5, 99, 100, 2 ** 53 - 1, 2 ** 53,
  Number.NaN, true, {}, [], "1234567890123456", "12345678901234567", "18446744073709551615", "18446744073709551616",
  "99999999999999999999", "123456789012345678 ", "ack", "event", "snapshot", "voice.left", "unauthorized", "teapot",
  false, "true", "available", "unavailable", "absent", "Available", "guild.status", "voice.media",
];

function* variants(value: unknown): Generator<unknown> {
  yield value;
  if (value === null || typeof value !== "object") return;
  const entries = Array.isArray(value) ? value.map((item, i) => [String(i), item] as const) : Object.entries(value);
  for (const [key, child] of entries) {
    const replaced = (next: unknown) => {
      if (Array.isArray(value)) return value.map((item, i) => (String(i) === key ? next : item));
      const copy: Record<string, unknown> = { ...value, [key]: next };
      if (next === undefined) delete copy[key];
      return copy;
    };
    for (const next of awkward) yield replaced(next);
    for (const nested of variants(child)) if (nested !== child) yield replaced(nested);
  }
  if (!Array.isArray(value)) yield { ...value, extra: "ignored" };
}

/** What client/connect.ts accepted as an event envelope when it used classic zod. */
const classicAnyEventEnvelope = z.object({
  v: z.literal(1),
  type: z.literal("event"),
  event: z.string(),
  payload: z.looseObject({}),
  ts: z.number().int(),
  seq: z.number().int().min(1),
});

type ZodSchema = { safeParse(input: unknown): { success: boolean; data?: unknown } };

/** The client's verdict and output on `input` equal the zod schema's (strictly: no extra or missing keys). */
function agreesOn(ours: Validator<unknown>, theirs: ZodSchema, input: unknown): boolean {
  const a = ours(input);
  const b = theirs.safeParse(input);
  // expect() only on a difference: it is slow, and this runs on tens of thousands of messages.
  if ((a !== invalid) !== b.success) expect({ input, accepted: a !== invalid }).toEqual({ input, accepted: b.success });
  if (a !== invalid && !isDeepStrictEqual(a, b.data)) expect({ input, output: a }).toStrictEqual({ input, output: b.data });
  return b.success;
}

function agree(ours: Validator<unknown>, theirs: ZodSchema, inputs: Iterable<unknown>) {
  let checked = 0;
  let accepted = 0;
  for (const input of inputs) {
    if (agreesOn(ours, theirs, input)) accepted++;
    checked++;
  }
  return { checked, accepted };
}

describe("client validators against protocol's zod schemas", () => {
  it("ServerMessage: same verdict and data on every variant of each message", () => {
    const { checked, accepted } = agree(client.ServerMessage, protocol.ServerMessage, server.flatMap((message) => [...variants(message)]));
    expect(checked).toBeGreaterThan(1_000);
    expect(accepted).toBeGreaterThan(50);
  });

  it("AnyEventEnvelope: same verdict as the classic-zod envelope client/connect.ts had before", () => {
    const { checked } = agree(client.AnyEventEnvelope, classicAnyEventEnvelope, server.slice(2).flatMap((message) => [...variants(message)]));
    expect(checked).toBeGreaterThan(500);
  });

  it("REST responses and error bodies", () => {
    agree(client.CreateRoomResponse, protocol.CreateRoomResponse, variants({ channelId: A, name: "Friday", guildId: B }));
    agree(client.EndRoomResponse, protocol.EndRoomResponse, variants({ ok: true }));
    agree(client.RoomsResponse, protocol.RoomsResponse, variants({ guildId: A, seq: 5, rooms: [room] }));
    agree(client.RoomsResponse, protocol.RoomsResponse, variants({ guildId: A, seq: 5, rooms: [], status: "unavailable" }));
    agree(client.ErrorBody, protocol.ErrorBody, variants({ error: "rate_limited", message: "slow down", issues: [{ path: "name", message: "too long" }] }));
  });

  it("knows the protocol's event names (close codes come from protocol/codes.ts itself)", () => {
    expect([...client.knownEvents].sort()).toEqual(protocol.AppEvent.options.map((option) => option.shape.event.value).sort());
  });
});

// ---- Generated messages: valid ones, and near-valid ones a step or three away from valid. ----

const seed = Number(process.env.FC_SEED) || Date.now() % 2 ** 31;
console.log(`client/test/schemas.test.ts: fast-check seed ${seed} (FC_SEED=${seed} replays it)`);
const RUNS = 400;

const MAX_SNOWFLAKE = (1n << 64n) - 1n;
const snowflake = fc.oneof(fc.bigInt({ min: 10n ** 16n, max: MAX_SNOWFLAKE }).map(String), fc.constant("18446744073709551615"));
const eventNames = protocol.AppEvent.options.map((option) => option.shape.event.value);
const boundedString = (min: number, max: number) => fc.oneof(fc.string({ minLength: min, maxLength: max }), fc.constantFrom("x".repeat(min), "x".repeat(max)));
const mediaArb = fc.record({ selfMute: fc.boolean(), selfDeaf: fc.boolean(), mute: fc.boolean(), deaf: fc.boolean(), selfVideo: fc.boolean(), selfStream: fc.boolean() });
const guildStatusArb = fc.constantFrom(...protocol.GuildStatus.options);
const memberArb = fc.record(
  { userId: snowflake, username: boundedString(0, 100), avatar: fc.option(boundedString(0, 200), { nil: null }), media: mediaArb },
  { requiredKeys: ["userId"] },
);
const roomArb = fc.record(
  {
    channelId: snowflake,
    name: fc.string({ maxLength: 120 }),
    userLimit: fc.oneof(fc.integer({ min: 0, max: 99 }), fc.maxSafeInteger(), fc.constant(Number.MIN_SAFE_INTEGER)),
    parentId: fc.option(snowflake, { nil: null }),
    creatorId: snowflake,
    members: fc.array(memberArb, { maxLength: 3 }),
  },
  { requiredKeys: ["channelId", "name", "userLimit", "members"] },
);
const roomPayload = fc.record(
  { guildId: snowflake, channelId: snowflake, name: boundedString(1, 100), parentId: fc.option(snowflake, { nil: null }), userLimit: fc.integer({ min: 0, max: 99 }), creatorId: snowflake },
  { requiredKeys: ["guildId", "channelId", "name", "userLimit"] },
);
const payloads: Record<string, fc.Arbitrary<object>> = {
  "room.created": roomPayload,
  "room.updated": roomPayload,
  "room.deleted": fc.record({ guildId: snowflake, channelId: snowflake }),
  "voice.joined": fc.tuple(fc.record({ guildId: snowflake, channelId: snowflake }), memberArb).map(([ids, who]) => ({ ...ids, ...who })),
  "voice.left": fc.record({ guildId: snowflake, channelId: snowflake, userId: snowflake }),
  "voice.media": fc.record({ guildId: snowflake, channelId: snowflake, userId: snowflake, media: mediaArb }),
  "guild.status": fc.record({ guildId: snowflake, status: guildStatusArb }),
};
const seq = (min: number) => fc.oneof(fc.integer({ min, max: 1_000 }), fc.constant(Number.MAX_SAFE_INTEGER));
const envelopeOf = (event: string, payload: fc.Arbitrary<object>) =>
  fc.record({ v: fc.constant(1), type: fc.constant("event"), event: fc.constant(event), payload, ts: fc.maxSafeInteger(), seq: seq(1) });
const validServerMessage = fc.oneof(
  fc.record({ v: fc.constant(1), type: fc.constant("ack"), event: fc.constant("auth.ok"), guildId: snowflake, seq: seq(0) }),
  fc.record({
    v: fc.constant(1),
    type: fc.constant("snapshot"),
    payload: fc.record({ rooms: fc.array(roomArb, { maxLength: 3 }), status: guildStatusArb }, { requiredKeys: ["rooms"] }),
    seq: seq(0),
  }),
  ...Object.entries(payloads).map(([event, payload]) => envelopeOf(event, payload)),
  // A newer hub's event: ServerMessage rejects it, AnyEventEnvelope takes it.
  envelopeOf("room.archived", fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 })),
);

/** Values that are nearly right somewhere: bad snowflakes, out-of-range and non-integer numbers, wrong types, other events. */
const nearValue = fc.oneof(
  fc.constantFrom(...awkward),
  fc.constantFrom("1".repeat(16), "1".repeat(21), "18446744073709551616", "0".repeat(17), "١".repeat(18), `${A}\n`, ` ${A}`, "1e17", "-1".repeat(9)),
  fc.constantFrom(-1, 100, 101, -0, 0.5, 2 ** 53, -(2 ** 53), Number.POSITIVE_INFINITY, Number.NaN),
  fc.constantFrom(...eventNames, "auth.ok", "room.archived", "", "Room.Created"),
  fc.constantFrom(true, false, "true", "false", 1, 0, ...protocol.GuildStatus.options, "AVAILABLE", "present"),
  fc.constantFrom(Number(A), BigInt(A), [A], { userId: A }, "1", 1n, Object.create(null) as object),
  snowflake,
  fc.integer(),
  fc.double(),
  fc.string({ maxLength: 110 }),
  fc.anything({ maxDepth: 1 }),
);

/** Values near `original`: one past a bound, a digit more or less, the wrong type for the same meaning. */
function nearOf(original: unknown): unknown[] {
  if (typeof original === "boolean") return [!original, String(original), Number(original), null, undefined, "unavailable"];
  if (typeof original === "number") return [original - 1, original + 1, -original, original + 0.5, -1, 0, 99, 100, 2 ** 53, -(2 ** 53), Number.NaN, Number.POSITIVE_INFINITY, String(original)];
  if (typeof original === "string") {
    return [`${original}1`, original.slice(1), `${original} `, `9${original}`, original.replace(/\d/, "a"), "", "x".repeat(100), "x".repeat(101), "x".repeat(200), "x".repeat(201), "18446744073709551616", Number(original)];
  }
  if (original !== null && typeof original === "object") return [[], [original], Object.values(original), {}, null];
  return [undefined, null, 0, "1", {}];
}

/** replace: a value near the field's own (see nearOf); other: any of nearValue; extra: a field no schema declares. */
type Mutation = { kind: "delete" | "replace" | "other" | "extra"; at: number; pick: number; value: unknown };
const mutation: fc.Arbitrary<Mutation> = fc.record({ kind: fc.constantFrom("delete", "replace", "replace", "other", "extra"), at: fc.nat(), pick: fc.nat(), value: nearValue });

/** Every object and array inside `value` (itself included). */
function containers(value: unknown): object[] {
  if (value === null || typeof value !== "object") return [];
  return [value, ...Object.values(value).flatMap(containers)];
}

/** A copy of `value` with one mutation applied to one of its fields (chosen by `at`). */
function mutate(value: unknown, { kind, at, pick, value: other }: Mutation): unknown {
  const copy = structuredClone(value);
  const targets = containers(copy);
  if (targets.length === 0) return other;
  const node = targets[at % targets.length] as Record<string, unknown>;
  const keys = Object.keys(node);
  if (kind === "extra" || keys.length === 0) {
    node[Array.isArray(node) ? String(node.length) : "extra"] = other;
    return copy;
  }
  const key = keys[Math.floor(at / targets.length) % keys.length]!;
  if (kind === "delete" && !Array.isArray(node)) delete node[key];
  else if (kind === "replace") {
    const near = nearOf(node[key]);
    node[key] = near[pick % near.length];
  } else node[key] = other;
  return copy;
}

/** Each single-step neighbour of `value`: every field replaced by each of its near values, deleted, and an extra field in each object. */
function* neighbours(value: unknown): Generator<unknown> {
  const targets = containers(value);
  for (const [at, node] of targets.entries()) {
    for (const [k, original] of Object.values(node).entries()) {
      const field = at + k * targets.length;
      for (let pick = 0; pick < nearOf(original).length; pick++) yield mutate(value, { kind: "replace", at: field, pick, value: undefined });
      yield mutate(value, { kind: "delete", at: field, pick: 0, value: undefined });
    }
    yield mutate(value, { kind: "extra", at, pick: 0, value: "extra" });
  }
}

/** Valid values, their neighbours, and values one to four random mutations away. */
const around = <T>(valid: fc.Arbitrary<T>): fc.Arbitrary<unknown[]> =>
  fc.oneof(
    valid.map((value) => [value, ...neighbours(value)]),
    fc.tuple(valid, fc.array(mutation, { minLength: 1, maxLength: 4 })).map(([value, mutations]) => [mutations.reduce(mutate, value)]),
  );

describe("client validators against protocol's zod schemas on generated messages", () => {
  /** Checks every generated input, then that both verdicts occurred often, so a generator gone all-valid or all-invalid fails. */
  const both = (ours: Validator<unknown>, theirs: ZodSchema, inputs: fc.Arbitrary<unknown[]>, numRuns = RUNS) => {
    const verdicts = { accepted: 0, rejected: 0 };
    fc.assert(
      fc.property(inputs, (batch) => {
        for (const input of batch) verdicts[agreesOn(ours, theirs, input) ? "accepted" : "rejected"]++;
      }),
      { seed, numRuns },
    );
    expect(verdicts.accepted).toBeGreaterThan(numRuns / 10);
    expect(verdicts.rejected).toBeGreaterThan(numRuns / 10);
  };

  it("ServerMessage: valid, near-valid and unknown-event messages", () => both(client.ServerMessage, protocol.ServerMessage, around(validServerMessage)));

  it("AnyEventEnvelope: the same messages", () => both(client.AnyEventEnvelope, classicAnyEventEnvelope, around(validServerMessage)));

  it("REST responses and error bodies, valid and near-valid", () => {
    const runs = RUNS / 4;
    both(client.CreateRoomResponse, protocol.CreateRoomResponse, around(fc.record({ channelId: snowflake, name: fc.string(), guildId: snowflake })), runs);
    both(client.EndRoomResponse, protocol.EndRoomResponse, around(fc.constant({ ok: true })), runs);
    const roomsResponse = fc.record({ guildId: snowflake, seq: seq(0), rooms: fc.array(roomArb, { maxLength: 2 }), status: guildStatusArb }, { requiredKeys: ["guildId", "seq", "rooms"] });
    both(client.RoomsResponse, protocol.RoomsResponse, around(roomsResponse), runs);
    const issue = fc.record({ path: fc.string(), message: fc.string() });
    const errorBody = fc.record(
      { error: fc.constantFrom(...protocol.ErrorCode.options), message: fc.string(), issues: fc.array(issue, { maxLength: 2 }) },
      { requiredKeys: ["error", "message"] },
    );
    both(client.ErrorBody, protocol.ErrorBody, around(errorBody), runs);
  });
});

// Compile-time: each client type is exactly the protocol's, so the SDK's API names the wire's types.
type AllTrue<T extends true[]> = T;
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
export type SameTypes = AllTrue<[
  Same<Output<typeof client.ServerMessage>, protocol.ServerMessage>,
  Same<types.ServerMessage, protocol.ServerMessage>,
  Same<types.EventEnvelope, protocol.EventEnvelope>,
  Same<types.AppEventName, protocol.AppEventName>,
  Same<types.SnapshotMessage, protocol.SnapshotMessage>,
  Same<types.AuthOkMessage, protocol.AuthOkMessage>,
  Same<types.Room, protocol.Room>,
  Same<types.Member, protocol.Member>,
  Same<types.VoiceMedia, protocol.VoiceMedia>,
  Same<types.GuildStatus, protocol.GuildStatus>,
  Same<types.CreateRoomResponse, protocol.CreateRoomResponse>,
  Same<Output<typeof client.EndRoomResponse>, z.output<typeof protocol.EndRoomResponse>>,
  Same<types.RoomsResponse, protocol.RoomsResponse>,
  Same<types.ErrorBody, protocol.ErrorBody>,
  Same<types.CreateRoomBody, protocol.CreateRoomBody>,
  // Each event name's payload, not only the union of them all.
  Same<Extract<types.EventEnvelope, { event: "voice.joined" }>["payload"], protocol.PayloadOf<"voice.joined">>,
  Same<Extract<types.EventEnvelope, { event: "room.updated" }>["payload"], protocol.PayloadOf<"room.updated">>,
  Same<Extract<types.EventEnvelope, { event: "voice.media" }>["payload"], protocol.PayloadOf<"voice.media">>,
  Same<Extract<types.EventEnvelope, { event: "guild.status" }>["payload"], protocol.PayloadOf<"guild.status">>,
]>;
