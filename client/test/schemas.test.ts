import { describe, expect, it } from "vitest";
import { z } from "zod";
import * as protocol from "../../protocol/index.js";
import * as restSchemas from "../rest-schemas.js";
import * as wireSchemas from "../schemas.js";

const client = { ...wireSchemas, ...restSchemas };

// client/schemas.ts re-states protocol/'s schemas with zod/mini for a small browser bundle: both must accept and
// reject the same messages and give the same data. Every leaf of each valid message is replaced with a set of
// awkward values (and deleted), and each variant goes through both.
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

function agree(ours: { safeParse(v: unknown): { success: boolean; data?: unknown } }, theirs: typeof ours, inputs: Iterable<unknown>) {
  let checked = 0;
  let accepted = 0;
  for (const input of inputs) {
    const a = ours.safeParse(input);
    const b = theirs.safeParse(input);
    expect({ input, success: a.success }).toEqual({ input, success: b.success });
    if (a.success) {
      expect(a.data).toEqual(b.data);
      accepted++;
    }
    checked++;
  }
  return { checked, accepted };
}

describe("client schemas (zod/mini) against protocol's", () => {
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
