import fc from "fast-check";
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
const member = { userId: B, username: "Alice", avatar: null };
const room = { channelId: A, name: "Friday", userLimit: 4, parentId: null, creatorId: B, members: [member] };
const envelope = { v: 1, type: "event", ts: 1_700_000_000_000, seq: 7 };

const server: unknown[] = [
  { v: 1, type: "ack", event: "auth.ok", guildId: A, seq: 0 },
  { v: 1, type: "snapshot", payload: { rooms: [room, { ...room, channelId: B, parentId: A, members: [] }] }, seq: 3 },
  { ...envelope, event: "room.created", payload: { guildId: A, channelId: B, name: "Room", parentId: A, userLimit: 0, creatorId: A } },
  { ...envelope, event: "room.updated", payload: { guildId: A, channelId: B, name: "Room", userLimit: 99 } },
  { ...envelope, event: "room.deleted", payload: { guildId: A, channelId: B } },
  { ...envelope, event: "voice.joined", payload: { guildId: A, channelId: B, userId: B, username: "Bob", avatar: "abc" } },
  { ...envelope, event: "voice.left", payload: { guildId: A, channelId: B, userId: B } },
  { ...envelope, event: "room.renamed", payload: { guildId: A } },
];

const awkward: unknown[] = [
  undefined, null, "", "x", "x".repeat(100), "x".repeat(101), "x".repeat(201), 0, -1, 1, 1.5, 99, 100, 2 ** 53 - 1, 2 ** 53,
  Number.NaN, true, {}, [], "1234567890123456", "12345678901234567", "18446744073709551615", "18446744073709551616",
  "99999999999999999999", "123456789012345678 ", "ack", "event", "snapshot", "voice.left", "unauthorized", "teapot",
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

type ZodSchema = { safeParse(input: unknown): { success: boolean; data?: unknown } };

/** The client's verdict and output on `input` equal the zod schema's (strictly: no extra or missing keys). */
function agreesOn(ours: Validator<unknown>, theirs: ZodSchema, input: unknown): boolean {
  const a = ours(input);
  const b = theirs.safeParse(input);
  expect({ input, accepted: a !== invalid }).toEqual({ input, accepted: b.success });
  if (a !== invalid) expect(a).toStrictEqual(b.data);
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
    const before = z.object({
      v: z.literal(1),
      type: z.literal("event"),
      event: z.string(),
      payload: z.looseObject({}),
      ts: z.number().int(),
      seq: z.number().int().min(1),
    });
    const { checked } = agree(client.AnyEventEnvelope, before, server.slice(2).flatMap((message) => [...variants(message)]));
    expect(checked).toBeGreaterThan(500);
  });

  it("REST responses and error bodies", () => {
    agree(client.CreateRoomResponse, protocol.CreateRoomResponse, variants({ channelId: A, name: "Friday", guildId: B }));
    agree(client.EndRoomResponse, protocol.EndRoomResponse, variants({ ok: true }));
    agree(client.RoomsResponse, protocol.RoomsResponse, variants({ guildId: A, seq: 5, rooms: [room] }));
    agree(client.ErrorBody, protocol.ErrorBody, variants({ error: "rate_limited", message: "slow down", issues: [{ path: "name", message: "too long" }] }));
  });

  it("knows the protocol's event names (close codes come from protocol/codes.ts itself)", () => {
    expect([...client.knownEvents].sort()).toEqual(protocol.AppEvent.options.map((option) => option.shape.event.value).sort());
  });
});

// ---- Generated messages: valid ones, and near-valid ones a step or three away from valid. ----

const seed = Number(process.env.FC_SEED) || Date.now() % 2 ** 31;
console.log(`client/test/schemas.test.ts: fast-check seed ${seed} (FC_SEED=${seed} replays it)`);
const RUNS = 2_000;

const MAX_SNOWFLAKE = (1n << 64n) - 1n;
const snowflake = fc.oneof(fc.bigInt({ min: 10n ** 16n, max: MAX_SNOWFLAKE }).map(String), fc.constant("18446744073709551615"));
const eventNames = protocol.AppEvent.options.map((option) => option.shape.event.value);
const boundedString = (min: number, max: number) => fc.oneof(fc.string({ minLength: min, maxLength: max }), fc.constantFrom("x".repeat(min), "x".repeat(max)));
const memberArb = fc.record(
  { userId: snowflake, username: boundedString(0, 100), avatar: fc.option(boundedString(0, 200), { nil: null }) },
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
};
const seq = (min: number) => fc.oneof(fc.integer({ min, max: 1_000 }), fc.constant(Number.MAX_SAFE_INTEGER));
const envelopeOf = (event: string, payload: fc.Arbitrary<object>) =>
  fc.record({ v: fc.constant(1), type: fc.constant("event"), event: fc.constant(event), payload, ts: fc.maxSafeInteger(), seq: seq(1) });
const validServerMessage = fc.oneof(
  fc.record({ v: fc.constant(1), type: fc.constant("ack"), event: fc.constant("auth.ok"), guildId: snowflake, seq: seq(0) }),
  fc.record({ v: fc.constant(1), type: fc.constant("snapshot"), payload: fc.record({ rooms: fc.array(roomArb, { maxLength: 3 }) }), seq: seq(0) }),
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
  fc.constantFrom(Number(A), BigInt(A), [A], { userId: A }, "1", 1n, Object.create(null) as object),
  snowflake,
  fc.integer(),
  fc.double(),
  fc.string({ maxLength: 110 }),
  fc.anything({ maxDepth: 1 }),
);

type Mutation = { kind: "delete" | "replace" | "extra"; at: number; value: unknown };
const mutation: fc.Arbitrary<Mutation> = fc.record({ kind: fc.constantFrom("delete", "replace", "extra"), at: fc.nat(), value: nearValue });

/** Every object and array inside `value` (itself included), with the path to reach it. */
function containers(value: unknown, path: string[] = []): { path: string[]; node: object }[] {
  if (value === null || typeof value !== "object") return [];
  return [{ path, node: value }, ...Object.entries(value).flatMap(([key, child]) => containers(child, [...path, key]))];
}

/** A copy of `value` with one mutation applied to one of its fields (chosen by `at`). */
function mutate(value: unknown, { kind, at, value: next }: Mutation): unknown {
  const copy = structuredClone(value);
  const targets = containers(copy);
  if (targets.length === 0) return next;
  const { node } = targets[at % targets.length]!;
  const keys = Object.keys(node);
  const key = keys.length === 0 || kind === "extra" ? (Array.isArray(node) ? String(node.length) : "extra") : keys[at % keys.length]!;
  const record = node as Record<string, unknown>;
  if (kind === "delete" && !Array.isArray(node)) delete record[key];
  else record[key] = next;
  return copy;
}

const nearServerMessage = fc.tuple(validServerMessage, fc.array(mutation, { minLength: 1, maxLength: 3 })).map(([message, mutations]) => mutations.reduce(mutate, message));
const serverMessages = fc.oneof(validServerMessage, nearServerMessage);

const classicAnyEventEnvelope = z.object({
  v: z.literal(1),
  type: z.literal("event"),
  event: z.string(),
  payload: z.looseObject({}),
  ts: z.number().int(),
  seq: z.number().int().min(1),
});

describe("client validators against protocol's zod schemas on generated messages", () => {
  /** Runs `property` and checks that both verdicts occurred, so a generator that went all-valid or all-invalid fails. */
  const both = (ours: Validator<unknown>, theirs: ZodSchema, inputs: fc.Arbitrary<unknown>) => {
    const verdicts = { accepted: 0, rejected: 0 };
    fc.assert(
      fc.property(inputs, (input) => {
        verdicts[agreesOn(ours, theirs, input) ? "accepted" : "rejected"]++;
      }),
      { seed, numRuns: RUNS },
    );
    expect(verdicts.accepted).toBeGreaterThan(RUNS / 20);
    expect(verdicts.rejected).toBeGreaterThan(RUNS / 20);
  };

  it("ServerMessage: valid, mutated and unknown-event messages", () => both(client.ServerMessage, protocol.ServerMessage, serverMessages));

  it("AnyEventEnvelope: the same messages", () => both(client.AnyEventEnvelope, classicAnyEventEnvelope, serverMessages));

  it("REST responses and error bodies, valid and mutated", () => {
    const near = <T>(valid: fc.Arbitrary<T>) => fc.oneof(valid, fc.tuple(valid, fc.array(mutation, { minLength: 1, maxLength: 2 })).map(([value, mutations]) => mutations.reduce(mutate, value)));
    both(client.CreateRoomResponse, protocol.CreateRoomResponse, near(fc.record({ channelId: snowflake, name: fc.string(), guildId: snowflake })));
    both(client.EndRoomResponse, protocol.EndRoomResponse, near(fc.constant({ ok: true })));
    both(client.RoomsResponse, protocol.RoomsResponse, near(fc.record({ guildId: snowflake, seq: seq(0), rooms: fc.array(roomArb, { maxLength: 2 }) })));
    const issue = fc.record({ path: fc.string(), message: fc.string() });
    const errorBody = fc.record(
      { error: fc.constantFrom(...protocol.ErrorCode.options), message: fc.string(), issues: fc.array(issue, { maxLength: 2 }) },
      { requiredKeys: ["error", "message"] },
    );
    both(client.ErrorBody, protocol.ErrorBody, near(errorBody));
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
  Same<types.CreateRoomResponse, protocol.CreateRoomResponse>,
  Same<Output<typeof client.EndRoomResponse>, z.output<typeof protocol.EndRoomResponse>>,
  Same<types.RoomsResponse, protocol.RoomsResponse>,
  Same<types.ErrorBody, protocol.ErrorBody>,
  Same<types.CreateRoomBody, protocol.CreateRoomBody>,
  // Each event name's payload, not only the union of them all.
  Same<Extract<types.EventEnvelope, { event: "voice.joined" }>["payload"], protocol.PayloadOf<"voice.joined">>,
  Same<Extract<types.EventEnvelope, { event: "room.updated" }>["payload"], protocol.PayloadOf<"room.updated">>,
]>;
