import type { AppEvent, GuildStatus, Room } from "../../../protocol/index.js";
import type { Outgoing, ReplaySource } from "../hub/fanout.js";
import { Retention, type BufferedEvent } from "../hub/store.js";
import type { LinkHello } from "./link.js";

/** Events a relay keeps for resumes of its own: as many as the hub's replay buffer holds. */
export const RELAY_RING_EVENTS = Retention.replayEvents;

/** What a frame from the hub means for the relay. */
export type MirrorStep =
  /** New events, in seq order, for the relay's sockets (none: nothing new). */
  | { kind: "events"; fresh: Outgoing[] }
  /** A seq went missing after `fresh`: link again from `since` (the hub fills the gap from its buffer). */
  | { kind: "gap"; fresh: Outgoing[]; since: number }
  /** The mirror starts over at a snapshot (its gap was outside the hub's buffer): every socket needs that snapshot. */
  | { kind: "reset" }
  /** A snapshot at the mirror's own seq: for the sockets waiting for one. */
  | { kind: "snapshot" }
  /** Not a frame the mirror knows: ignored. */
  | { kind: "ignored" };

interface Snapshot {
  seq: number;
  rooms: Room[];
  status: GuildStatus;
}

/**
 * A relay's copy of what its hub published: the seq it has reached, the last RELAY_RING_EVENTS events (to serve
 * resumes itself) and the newest snapshot the hub sent it. Fed the link's frames in order (relay/link.ts), it
 * says what each one means: new events, a gap to fill, or a fresh start. Pure: no sockets, no clock.
 */
export class RelayMirror implements ReplaySource {
  private ring: BufferedEvent[] = [];
  private current: number | undefined;
  /** A hello said a snapshot follows (the hub could not fill the gap): until it does, events wait. */
  private snapshotDue = false;
  private latest: Snapshot | undefined;

  /** The seq the relay has reached; undefined until its first link said where the hub is. */
  get seqOrUndefined(): number | undefined {
    return this.current;
  }

  get seq(): number {
    return this.current ?? 0;
  }

  /** Whether the relay can serve a client: it knows where the hub is, and no snapshot is due. */
  get ready(): boolean {
    return this.current !== undefined && !this.snapshotDue;
  }

  /** Whether the snapshot it holds is at its own seq (else a snapshot must be asked for). */
  get hasCurrentSnapshot(): boolean {
    return this.ready && this.latest?.seq === this.current;
  }

  oldestBufferedSeq(): number | undefined {
    return this.ring[0]?.seq;
  }

  eventsAfter(seq: number): BufferedEvent[] {
    const first = this.ring[0]?.seq ?? 0;
    return this.ring.slice(Math.max(0, seq + 1 - first));
  }

  snapshotRooms(): Room[] {
    if (!this.latest) throw new Error("no snapshot yet");
    return this.latest.rooms;
  }

  /** The status the hub's snapshot at `seq` carried (served only with that snapshot). */
  get guildStatus(): GuildStatus {
    return this.latest?.status ?? "available";
  }

  /** Applies one frame from the hub (parsed JSON). */
  receive(frame: unknown): MirrorStep {
    if (!isObject(frame)) return { kind: "ignored" };
    if (frame.type === "hello") return this.hello(frame as unknown as LinkHello);
    if (frame.type === "events" && Array.isArray(frame.events)) return this.events(frame.events);
    if (frame.type === "snapshot" && isSnapshot(frame)) {
      return this.snapshot({ seq: frame.seq, rooms: frame.payload.rooms, status: frame.payload.status ?? "available" });
    }
    return { kind: "ignored" };
  }

  private hello(hello: LinkHello): MirrorStep {
    if (!Number.isSafeInteger(hello.seq) || !Number.isSafeInteger(hello.from)) return { kind: "ignored" };
    if (this.current === undefined) {
      // Linked fresh: the hub's buffer follows, from `from`.
      this.current = hello.from - 1;
      this.ring = [];
    }
    // A relay that linked with its seq gets the events after it (from = seq + 1) or, when the hub no longer holds
    // them all, a snapshot to start over from.
    this.snapshotDue = hello.from === hello.seq + 1 && hello.seq !== this.current;
    return { kind: "events", fresh: [] };
  }

  private events(events: unknown[]): MirrorStep {
    const fresh: Outgoing[] = [];
    if (this.current === undefined || this.snapshotDue) return { kind: "events", fresh };
    for (const raw of events) {
      const event = readEnvelope(raw);
      if (!event) continue; // not an envelope: nothing a client could apply
      if (event.seq <= this.current) continue; // already here (a gap fill overlapping what arrived)
      if (event.seq !== this.current + 1) return { kind: "gap", fresh, since: this.current };
      this.current = event.seq;
      this.ring.push(event.buffered);
      fresh.push(event.outgoing);
    }
    if (this.ring.length > RELAY_RING_EVENTS) this.ring.splice(0, this.ring.length - RELAY_RING_EVENTS);
    return { kind: "events", fresh };
  }

  private snapshot(snapshot: Snapshot): MirrorStep {
    this.latest = snapshot;
    if (!this.snapshotDue && snapshot.seq === this.current) return { kind: "snapshot" };
    // The hub's picture wins, also one behind the mirror (a hub restored from older storage).
    this.current = snapshot.seq;
    this.ring = [];
    this.snapshotDue = false;
    return { kind: "reset" };
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isSnapshot(frame: Record<string, unknown>): frame is { seq: number; payload: { rooms: Room[]; status?: GuildStatus } } {
  return Number.isSafeInteger(frame.seq) && isObject(frame.payload) && Array.isArray(frame.payload.rooms);
}

/**
 * An event envelope as the relay forwards it: serialised again exactly (JSON.stringify keeps the key order it
 * was parsed in), filtered by its name and room. Names the relay does not know pass through untouched.
 */
function readEnvelope(raw: unknown): { seq: number; buffered: BufferedEvent; outgoing: Outgoing } | undefined {
  if (!isObject(raw) || !Number.isSafeInteger(raw.seq) || typeof raw.event !== "string" || !isObject(raw.payload)) return undefined;
  const seq = raw.seq as number;
  const name = raw.event as AppEvent["event"];
  const channelId = typeof raw.payload.channelId === "string" ? raw.payload.channelId : "";
  const message = JSON.stringify(raw);
  const event = { event: name, payload: raw.payload } as AppEvent;
  return { seq, buffered: { seq, event: name, channelId, message }, outgoing: { event, message } };
}
