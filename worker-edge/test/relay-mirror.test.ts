import { describe, expect, it } from "vitest";
import { RELAY_RING_EVENTS, RelayMirror } from "../src/relay/mirror.js";
import { relayRegion } from "../src/relay/region.js";

const GUILD = "100000000000000001";
const ROOM = "400000000000000001";

/** The envelope of event `seq` as the hub serialises it. */
function envelope(seq: number, event = "voice.joined", payload: Record<string, unknown> = { guildId: GUILD, channelId: ROOM, userId: String(500000000000000000n + BigInt(seq)) }) {
  return JSON.stringify({ v: 1, type: "event", event, payload, ts: 1_763_900_000_000, seq });
}
const events = (...seqs: number[]) => JSON.parse(`{"type":"events","events":[${seqs.map((s) => envelope(s)).join(",")}]}`) as unknown;
const hello = (seq: number, from: number) => ({ type: "hello", seq, from });
const snapshot = (seq: number) => ({ v: 1, type: "snapshot", payload: { rooms: [] }, seq });
const seqsOf = (step: ReturnType<RelayMirror["receive"]>) => ("fresh" in step ? step.fresh.map((o) => JSON.parse(o.message).seq as number) : []);

describe("a relay's copy of its hub: order, gaps and fresh starts", () => {
  it("takes a fresh link's history for resumes without forwarding it, then forwards what follows", () => {
    const mirror = new RelayMirror();
    expect(mirror.ready).toBe(false);
    mirror.receive(hello(12, 10));
    expect(seqsOf(mirror.receive(events(10, 11, 12)))).toEqual([10, 11, 12]);
    expect(mirror.ready).toBe(true);
    expect(mirror.seq).toBe(12);
    expect(mirror.oldestBufferedSeq()).toBe(10);
    expect(mirror.eventsAfter(10).map((e) => e.seq)).toEqual([11, 12]);
    expect(seqsOf(mirror.receive(events(13)))).toEqual([13]);
  });

  it("asks to link again from its seq at a gap, keeping what came before it, and takes the fill without duplicates", () => {
    const mirror = new RelayMirror();
    mirror.receive(hello(5, 6));
    const step = mirror.receive(events(6, 7, 9, 10));
    expect(step).toMatchObject({ kind: "gap", since: 7 });
    expect(seqsOf(step)).toEqual([6, 7]);
    // Linked again with since 7: the hub replays 8.. and the overlap is dropped.
    mirror.receive(hello(10, 8));
    expect(seqsOf(mirror.receive(events(8, 9, 10)))).toEqual([8, 9, 10]);
    expect(seqsOf(mirror.receive(events(9, 10, 11)))).toEqual([11]);
    expect(mirror.eventsAfter(5).map((e) => e.seq)).toEqual([6, 7, 8, 9, 10, 11]);
  });

  it("starts over at the hub's snapshot when its gap is beyond the hub's buffer", () => {
    const mirror = new RelayMirror();
    mirror.receive(hello(3, 4));
    mirror.receive(events(4));
    mirror.receive(hello(2_000, 2_001)); // linked again with since 4; the hub no longer holds 5..
    expect(mirror.ready).toBe(false);
    expect(seqsOf(mirror.receive(events(2_001)))).toEqual([]); // nothing before the snapshot
    expect(mirror.receive(snapshot(2_000))).toEqual({ kind: "reset" });
    expect(mirror.ready).toBe(true);
    expect(mirror.seq).toBe(2_000);
    expect(mirror.hasCurrentSnapshot).toBe(true);
    expect(mirror.oldestBufferedSeq()).toBeUndefined();
  });

  it("holds a snapshot only for its seq: a later event makes it stale", () => {
    const mirror = new RelayMirror();
    mirror.receive(hello(7, 8));
    expect(mirror.receive(snapshot(7))).toEqual({ kind: "snapshot" });
    expect(mirror.hasCurrentSnapshot).toBe(true);
    mirror.receive(events(8));
    expect(mirror.hasCurrentSnapshot).toBe(false);
  });

  it("keeps the last RELAY_RING_EVENTS events", () => {
    const mirror = new RelayMirror();
    mirror.receive(hello(0, 1));
    const all = Array.from({ length: RELAY_RING_EVENTS + 10 }, (_, i) => i + 1);
    mirror.receive(events(...all));
    expect(mirror.oldestBufferedSeq()).toBe(11);
    expect(mirror.seq).toBe(RELAY_RING_EVENTS + 10);
  });

  it("passes events it does not know through byte for byte, filtered by their room like any voice event", () => {
    const mirror = new RelayMirror();
    mirror.receive(hello(0, 1));
    const unknown = envelope(1, "voice.media", { guildId: GUILD, channelId: ROOM, userId: "500000000000000009", camera: true, extra: { nested: [1, "two"] } });
    const step = mirror.receive(JSON.parse(`{"type":"events","events":[${unknown}]}`));
    expect(step.kind).toBe("events");
    expect("fresh" in step && step.fresh[0]!.message).toBe(unknown);
    expect(mirror.eventsAfter(0)[0]).toMatchObject({ event: "voice.media", channelId: ROOM, message: unknown });
  });
});

describe("relay regions", () => {
  it("picks the configured region nearest the client, or the first one", () => {
    expect(relayRegion({ continent: "EU", longitude: "2.35" }, ["enam", "weur"])).toBe("weur");
    expect(relayRegion({ continent: "NA", longitude: "-122.4" }, ["enam", "wnam"])).toBe("wnam");
    expect(relayRegion({ continent: "NA", longitude: "-74.0" }, ["enam", "wnam"])).toBe("enam");
    expect(relayRegion({ continent: "AS", longitude: "139.7" }, ["weur", "apac"])).toBe("apac");
    expect(relayRegion({ continent: "OC" }, ["enam", "weur"])).toBe("enam");
    expect(relayRegion(undefined, ["weur"])).toBe("weur");
    expect(relayRegion({ continent: "EU" }, [])).toBe("any");
  });
});
