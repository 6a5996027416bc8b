import { splitGuildSync, type GuildSyncPayload, type InternalEvent, type SyncChannel, type SyncVoiceState } from "../../protocol/index.js";
import type { z } from "zod";
import { withoutUndefined } from "./translate.js";

export type OutboxEvent = InternalEvent & { id: string };

/** A position in one shard's session: every dispatch up to `seq` is accounted for. */
export interface SessionPosition {
  sessionId: string;
  seq: number;
}

/**
 * A whole picture not sent yet: a GUILD_CREATE's, with the states that came after it folded in (the latest state of
 * each user and channel wins), so a picture that waits (the hub down, another process holding the guild) stays
 * the guild as it is, in one entry. Once sent it is fixed: its events (and ids) are what every retry sends.
 */
class PendingPicture {
  private readonly channels: Map<string, z.infer<typeof SyncChannel>>;
  private readonly members: Map<string, z.infer<typeof SyncVoiceState>>;
  private lastSeq: number;
  private built: OutboxEvent[] | undefined;

  constructor(
    private readonly sync: GuildSyncPayload,
    private readonly sessionId: string,
    private readonly firstSeq: number,
  ) {
    this.channels = new Map(sync.channels.map((c) => [c.channelId, c]));
    this.members = new Map(sync.voiceStates.map((s) => [s.userId, s]));
    this.lastSeq = firstSeq;
  }

  get sent(): boolean {
    return this.built !== undefined;
  }

  /** Folds a later state of the same session in; false when it cannot be (sent already, another session, an outage). */
  fold(event: InternalEvent, sessionId: string, seq: number): boolean {
    if (this.built || sessionId !== this.sessionId) return false;
    if (event.event === "voice.state") {
      const { userId, channelId, username, avatar, media } = event.payload;
      const known = this.members.get(userId);
      if (channelId === null) this.members.delete(userId);
      else this.members.set(userId, withoutUndefined({ userId, channelId, username: username ?? known?.username, avatar: avatar ?? known?.avatar, media }));
    } else if (event.event === "channel.state") {
      const { guildId: _guild, deleted, ...channel } = event.payload;
      if (deleted) this.channels.delete(channel.channelId);
      else this.channels.set(channel.channelId, channel);
    } else return false;
    this.lastSeq = seq;
    return true;
  }

  /** The picture's events (one, or its parts), named by the dispatches it covers: the same every time once built. */
  events(): OutboxEvent[] {
    if (this.built) return this.built;
    const id = this.lastSeq === this.firstSeq ? `${this.sessionId}:${this.firstSeq}` : `${this.sessionId}:${this.firstSeq}-${this.lastSeq}`;
    const picture = { guildId: this.sync.guildId, channels: [...this.channels.values()], voiceStates: [...this.members.values()] };
    const parts = splitGuildSync(picture, id);
    this.built = parts.map((payload, index) => ({ id: parts.length === 1 ? id : `${id}:part${index}`, event: "guild.sync" as const, payload }));
    return this.built;
  }
}

interface Entry {
  /** A state, or the bot's absence (a picture); undefined for a pending GUILD_CREATE picture. */
  event?: OutboxEvent;
  picture?: PendingPicture;
  /** States of one user, one channel or the guild share a key: on overflow only the latest of each is kept. */
  key?: string;
  /** A whole picture: it supersedes everything queued before it, and may begin a lease term. */
  whole: boolean;
  /**
   * Grouped by timing, not by the dispatches alone (a picture with states folded in, a state kept by a compaction,
   * a picture no dispatch gave): a replay of its dispatches would not reproduce it under the same ids.
   */
  irregular: boolean;
  sessionId: string;
  /** The last dispatch this entry accounts for (later dispatches that said nothing of the guild are folded in). */
  covers: number;
}

/** A batch taken from the head of the queue: its events, in order, and how many entries they are. */
export interface Batch {
  events: OutboxEvent[];
  entries: number;
  /** It begins with a whole picture. */
  picture: boolean;
  /** It holds an irregular entry (see Entry): until it is accepted and its position stored, a restart must not replay. */
  irregular: boolean;
}

/** What became of a push: queued, or the queue overflowed even after compaction and was dropped. */
export type PushOutcome = { kind: "queued" } | { kind: "dropped"; count: number };

/**
 * One guild's undelivered states and pictures, in Discord's order. The head is taken as a batch and settled once the
 * hub accepts it; settling says how far the guild's session position may move (never past an undelivered dispatch).
 * Bounded: past `maxEntries`, the queued states are compacted to the latest per user and channel (what the hub ends
 * up holding is the same: states are idempotent and each key's order is kept); if that is still too many, the
 * queue is dropped and its owner must get a fresh picture.
 */
export class OutboxQueue {
  private entries: Entry[] = [];
  /** Entries at the head taken into a batch that is not settled yet: never folded into, compacted or superseded. */
  private taken = 0;
  /** A dispatch of a newer session that said nothing of the guild, behind queued entries: its position once they go. */
  private trailing: SessionPosition | undefined;

  constructor(private readonly maxEntries: number) {}

  get depth(): number {
    return this.entries.length;
  }

  /** Whether the next entry to send is a whole picture (what a new lease term must begin with). */
  get pictureAhead(): boolean {
    return this.entries[0]?.whole ?? false;
  }

  /**
   * One dispatch's state. `foldable` false while a resumed session replays dispatches the hub may have had: folded
   * into a picture, they would reach it under an id it has not seen, and the picture would undo what came after.
   */
  pushState(event: OutboxEvent, sessionId: string, seq: number, foldable = true): PushOutcome {
    const last = this.entries[this.entries.length - 1];
    if (foldable && last?.picture && this.entries.length > this.taken && last.picture.fold(event, sessionId, seq)) {
      last.covers = seq;
      last.irregular = true;
      return { kind: "queued" };
    }
    this.entries.push({ event, key: keyOf(event), whole: false, irregular: false, sessionId, covers: seq });
    return this.entries.length > this.maxEntries ? this.compact() : { kind: "queued" };
  }

  /**
   * A whole picture (a GUILD_CREATE's sync, or the bot's absence): what was queued and not taken is superseded.
   * `irregular`: no dispatch gave it (a replay would not reproduce it).
   */
  pushPicture(picture: { sync: GuildSyncPayload } | { absent: OutboxEvent }, sessionId: string, seq: number, irregular = false): void {
    this.entries.splice(this.taken);
    this.trailing = undefined;
    if ("sync" in picture) this.entries.push({ picture: new PendingPicture(picture.sync, sessionId, seq), whole: true, irregular, sessionId, covers: seq });
    else this.entries.push({ event: picture.absent, whole: true, irregular, sessionId, covers: seq });
  }

  /**
   * A dispatch that said nothing of the guild: the position may pass it at once when nothing is queued, else once
   * what is queued before it is delivered. Returns the position to commit now, if any.
   */
  passed(sessionId: string, seq: number): SessionPosition | undefined {
    const last = this.entries[this.entries.length - 1];
    if (!last) return { sessionId, seq };
    if (last.sessionId === sessionId) last.covers = Math.max(last.covers, seq);
    else this.trailing = { sessionId, seq };
    return undefined;
  }

  /** The head as a batch: a picture alone (it may be cut into parts), else up to `size` states before the next picture. */
  take(size: number): Batch | undefined {
    const head = this.entries[0];
    if (!head) return undefined;
    if (head.whole) {
      this.taken = 1;
      return { events: head.picture ? head.picture.events() : [head.event!], entries: 1, picture: true, irregular: head.irregular };
    }
    let count = 0;
    while (count < size && count < this.entries.length && !this.entries[count]!.whole) count++;
    this.taken = count;
    const entries = this.entries.slice(0, count);
    return { events: entries.map((entry) => entry.event!), entries: count, picture: false, irregular: entries.some((entry) => entry.irregular) };
  }

  /**
   * The hub accepted the batch: its entries go, and the position moves past every dispatch they account for.
   * `pictureOf`: the session a whole picture at its head was taken in.
   */
  settle(batch: Batch): { position?: SessionPosition; pictureOf?: string } {
    const done = this.entries.splice(0, batch.entries);
    this.taken = 0;
    const last = done[done.length - 1];
    let position = last && { sessionId: last.sessionId, seq: last.covers };
    if (this.entries.length === 0 && this.trailing) {
      position = this.trailing;
      this.trailing = undefined;
    }
    return { position, ...(done[0]?.whole ? { pictureOf: done[0].sessionId } : {}) };
  }

  /**
   * The batch was not accepted: it stays at the head, to be taken again as it was, unless a whole picture was queued
   * behind it meanwhile, which supersedes it too.
   */
  release(): void {
    this.taken = 0;
    const picture = this.entries.findLastIndex((entry) => entry.whole);
    if (picture > 0) this.entries.splice(0, picture);
  }

  /** Keeps the latest state of each key among the entries not taken, in their order; drops them all if still too many. */
  private compact(): PushOutcome {
    const head = this.entries.slice(0, this.taken);
    const rest = this.entries.slice(this.taken);
    const latest = new Map<string, Entry>();
    for (const entry of rest) if (entry.key) latest.set(entry.key, entry);
    const kept = rest.filter((entry) => !entry.key || latest.get(entry.key) === entry);
    // A dropped entry's dispatches are covered by the next kept one: a later state of its key supersedes it. A replay
    // from before the drop would send the dropped state again, under an id the hub has not seen: irregular.
    for (const entry of kept) entry.irregular = true;
    this.entries = [...head, ...kept];
    if (this.entries.length <= this.maxEntries) return { kind: "queued" };
    const count = this.entries.length - this.taken;
    this.entries.splice(this.taken);
    this.trailing = undefined;
    return { kind: "dropped", count };
  }
}

function keyOf(event: InternalEvent): string | undefined {
  switch (event.event) {
    case "voice.state":
      return `user:${event.payload.userId}`;
    case "channel.state":
      return `channel:${event.payload.channelId}`;
    case "guild.state":
      return "guild";
    default:
      return undefined;
  }
}
