import {
  hubRequestHeaders,
  InternalEventsResponse,
  MAX_INTERNAL_BODY_BYTES,
  splitGuildSync,
  type GatewayLease,
  type GuildSyncPayload,
  type InternalEvent,
} from "../../protocol/index.js";
import { backoffDelay, type BackoffPolicy } from "../../protocol/backoff.js";
import type { Logger } from "./log.js";
import { HUB_LATENCY_BUCKETS, Histogram } from "./histogram.js";

export type OutboxEvent = InternalEvent & { id: string };

/** A guild.sync as the events to send: one, or one per part when the picture is too large for one request. */
export function syncEvents(sync: GuildSyncPayload, id: string): OutboxEvent[] {
  const parts = splitGuildSync(sync, id);
  return parts.map((payload, index) => ({ id: parts.length === 1 ? id : `${id}:part${index}`, event: "guild.sync", payload }));
}

/** Request bodies stay this far under the hub's limit: the signature headers and JSON framing need room too. */
const MAX_BODY_BYTES = MAX_INTERNAL_BODY_BYTES - 64 * 1024;

/** An event the hub accepted, with the dispatch it came from; a sync `settles` when it is a whole fresh picture. */
export interface DeliveredEvent {
  event: OutboxEvent;
  origin?: { sessionId: string; seq: number };
  settles?: boolean;
}

interface Batch {
  events: OutboxEvent[];
  entries: number;
  sync: boolean;
  covers?: { sessionId: string; seq: number };
  settles?: boolean;
}

interface Entry {
  event: OutboxEvent;
  sessionId: string;
  /** The last dispatch this entry accounts for (later zero-event dispatches are folded into it). */
  seq: number;
  /** The dispatch this entry's event came from. */
  origin: number;
  /** The last event of its dispatch: only then may the session's position move past that dispatch. */
  completes: boolean;
}

export interface HubOutboxOptions {
  endpoint: string;
  secret: string;
  maxEvents: number;
  batchSize: number;
  backoff: BackoffPolicy;
  fetch: typeof fetch;
  random: () => number;
  sleep: (ms: number) => Promise<void>;
  /** Builds a guild.sync from the gateway's current picture, to converge after an overflow, with the position it covers. */
  currentSync: () => { payload: GuildSyncPayload; sessionId?: string; seq?: number; settles: boolean };
  /** Events the hub accepted, in order: the gateway keeps its copy of the hub's picture from them. */
  delivered: (events: DeliveredEvent[]) => void;
  /** Called with a session's seq once every event of every dispatch up to it has been accepted by the hub. */
  committed: (sessionId: string, seq: number) => void;
  /** Sent with every batch: the hub follows the newest gateway. */
  lease: GatewayLease;
  /** The hub follows a newer gateway: this one must stop delivering and stand down. */
  superseded: () => void;
  log: Logger;
  /** Where request latencies go: one histogram for the process, shared by every guild's outbox. */
  latency?: Histogram;
}

type PostOutcome =
  | { kind: "ok"; rejected: Set<string> }
  | { kind: "superseded" }
  | { kind: "retry"; retryAfterMs?: number }
  | { kind: "refused"; status: number };

/**
 * Delivers events to the hub in order, at least once, signed, in batches, with backoff while the hub is down.
 * Memory is bounded: on overflow the queue is dropped and a fresh guild.sync is sent when the hub is back.
 * A batch the hub finds too large is split; an event it refuses as invalid is dropped alone, and a guild.sync
 * follows so the hub converges anyway.
 */
export class HubOutbox {
  private queue: Entry[] = [];
  private syncPending = false;
  /** The pending sync's picture has been taken: later events are not in it and must be queued behind it. */
  private syncTaken = false;
  /** A zero-event dispatch of a newer session seen behind queued events: committed once they are delivered. */
  private trailing: { sessionId: string; seq: number } | undefined;
  private pumping = false;
  private stopped = false;
  private idleWaiters: Array<() => void> = [];
  /** `hubReachable`: the hub's last answer (to a delivery or a probe) came; false after a failure to reach it. */
  readonly stats = { delivered: 0, dropped: 0, posts: 0, failures: 0, hubReachable: true, lastSuccessAt: 0 };
  readonly latency: Histogram;
  private syncCounter = 0;

  constructor(private readonly options: HubOutboxOptions) {
    this.latency = options.latency ?? new Histogram(HUB_LATENCY_BUCKETS);
  }

  get depth(): number {
    return this.queue.length + (this.syncPending ? 1 : 0);
  }

  /** Queues one dispatch's events (possibly none: the seq still counts as handled once earlier ones are delivered). */
  enqueue(events: OutboxEvent[], sessionId: string, seq: number): void {
    if (this.syncPending && !this.syncTaken) {
      // The pending sync is built at send time from the live picture, so it will cover these.
      this.kick();
      return;
    }
    if (this.queue.length + events.length > this.options.maxEvents) {
      this.stats.dropped += this.queue.length + events.length;
      this.options.log("warn", "hub outbox overflowed; dropping the queue and resyncing when the hub is back", { dropped: this.queue.length + events.length });
      this.queue = [];
      this.trailing = undefined;
      this.syncPending = true;
      this.syncTaken = false;
      this.kick();
      return;
    }
    if (events.length === 0) {
      // Nothing to send, but the position may only pass this dispatch once everything before it is delivered.
      const last = this.queue[this.queue.length - 1];
      if (!last && !this.syncPending) this.options.committed(sessionId, seq);
      else if (last && last.sessionId === sessionId) last.seq = Math.max(last.seq, seq);
      else this.trailing = { sessionId, seq };
      return;
    }
    events.forEach((event, index) => this.queue.push({ event, sessionId, seq, origin: seq, completes: index === events.length - 1 }));
    this.kick();
  }

  /** Resolves when everything queued is delivered, or after `timeoutMs`; returns whether it drained. */
  async flush(timeoutMs: number): Promise<boolean> {
    if (this.depth === 0) return true;
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  stop(): void {
    this.stopped = true;
  }

  /** Checks the hub answers while nothing is being delivered, so health is true when the queue is empty too. */
  async probe(): Promise<void> {
    if (this.pumping || this.stopped) return;
    try {
      const response = await this.options.fetch(new URL("/health", this.options.endpoint), { signal: AbortSignal.timeout(5_000) });
      await response.body?.cancel().catch(() => undefined);
      if (!this.pumping) this.stats.hubReachable = response.ok;
    } catch {
      if (!this.pumping) this.stats.hubReachable = false;
    }
  }

  private kick(): void {
    if (!this.pumping && !this.stopped) void this.pump();
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    let attempt = 0;
    try {
      while (!this.stopped && this.depth > 0) {
        const batch = this.nextBatch();
        const outcome = await this.deliver(batch.events);
        if (this.stopped) break; // stopped meanwhile: a stopped outbox commits nothing more
        if (outcome.kind === "superseded") {
          this.stopped = true;
          this.options.superseded();
          break;
        }
        if (outcome.kind === "ok") {
          this.settle(batch, outcome.rejected);
          attempt = 0;
          continue;
        }
        const delay = outcome.kind === "retry" && outcome.retryAfterMs !== undefined ? outcome.retryAfterMs : backoffDelay(attempt++, this.options.backoff, this.options.random);
        await this.options.sleep(delay);
      }
    } finally {
      this.pumping = false;
    }
    if (this.depth === 0) for (const wake of this.idleWaiters.splice(0)) wake();
  }

  private nextBatch(): Batch {
    if (this.syncPending) {
      const { payload, sessionId, seq, settles } = this.options.currentSync();
      this.syncTaken = true;
      const events = syncEvents(payload, `sync:${Date.now()}:${++this.syncCounter}`);
      const covers = sessionId !== undefined && seq !== undefined ? { sessionId, seq } : undefined;
      return { events, entries: 0, sync: true, covers, settles };
    }
    const entries = this.queue.slice(0, this.options.batchSize);
    return { events: entries.map((entry) => entry.event), entries: entries.length, sync: false };
  }

  /** Records what the hub accepted and moves the session's position past every dispatch delivered whole. */
  private settle(batch: Batch, rejected: Set<string>): void {
    const entries = batch.sync ? [] : this.queue.slice(0, batch.entries);
    const accepted: DeliveredEvent[] = batch.sync
      ? batch.events.map((event) => ({ event, origin: batch.covers, settles: batch.settles }))
      : entries.map((entry) => ({ event: entry.event, origin: { sessionId: entry.sessionId, seq: entry.origin }, settles: true }));
    const delivered = accepted.filter(({ event }) => !rejected.has(event.id));
    this.options.delivered(delivered);
    this.stats.delivered += delivered.length;
    if (batch.sync) {
      this.syncPending = false;
      this.syncTaken = false;
      if (batch.covers) this.options.committed(batch.covers.sessionId, batch.covers.seq);
    } else {
      const done = this.queue.splice(0, batch.entries);
      const lastWhole = done.findLast((entry) => entry.completes);
      if (lastWhole) this.options.committed(lastWhole.sessionId, lastWhole.seq);
    }
    if (this.queue.length === 0 && this.trailing) {
      this.options.committed(this.trailing.sessionId, this.trailing.seq);
      this.trailing = undefined;
    }
    if (rejected.size > 0 && !batch.sync) {
      // The hub lacks what it refused: a fresh picture makes it converge (queued events are in that picture).
      this.stats.dropped += rejected.size;
      this.syncPending = true;
      this.syncTaken = false;
      this.queue = [];
      this.trailing = undefined;
    }
  }

  /** Posts a batch in as many requests as its size needs, in order; the first failure stops it. */
  private async deliver(events: OutboxEvent[]): Promise<PostOutcome> {
    const rejected = new Set<string>();
    for (const group of requestGroups(events)) {
      const outcome = await this.deliverGroup(group, rejected);
      if (outcome.kind !== "ok") return outcome;
    }
    return { kind: "ok", rejected };
  }

  /** A group the hub refuses as too large or invalid is halved until the one event at fault is found and dropped. */
  private async deliverGroup(group: SerializedEvent[], rejected: Set<string>): Promise<PostOutcome> {
    const outcome = await this.post(group);
    if (outcome.kind !== "refused") return outcome;
    if (group.length === 1) {
      const { event } = group[0]!;
      this.options.log("error", "hub refused an event; dropping it and resyncing", { status: outcome.status, id: event.id, event: event.event });
      rejected.add(event.id);
      return { kind: "ok", rejected };
    }
    const middle = Math.ceil(group.length / 2);
    for (const half of [group.slice(0, middle), group.slice(middle)]) {
      const result = await this.deliverGroup(half, rejected);
      if (result.kind !== "ok") return result;
    }
    return { kind: "ok", rejected };
  }

  private async post(group: SerializedEvent[]): Promise<PostOutcome> {
    const body = `{"events":[${group.map(({ json }) => json).join(",")}],"gateway":${JSON.stringify(this.options.lease)}}`;
    this.stats.posts++;
    const started = performance.now();
    let response: Response;
    try {
      response = await this.options.fetch(this.options.endpoint, {
        method: "POST",
        headers: await hubRequestHeaders(this.options.secret, body),
        body,
        signal: AbortSignal.timeout(10_000),
      });
    } catch (error) {
      return this.failed("hub unreachable", { error: error instanceof Error ? error.message : String(error) });
    }
    this.latency.observe((performance.now() - started) / 1000);
    if (response.ok) {
      this.stats.lastSuccessAt = Date.now();
      const parsed = InternalEventsResponse.safeParse(await response.json().catch(() => undefined));
      this.stats.hubReachable = true;
      this.options.log("debug", "delivered events to the hub", { count: group.length, duplicates: parsed.success ? parsed.data.duplicates : undefined });
      return { kind: "ok", rejected: new Set() };
    }
    await response.body?.cancel().catch(() => undefined);
    const retryable = response.status >= 500 || response.status === 408 || response.status === 429;
    if (retryable) {
      const retryAfter = Number(response.headers.get("Retry-After"));
      const result = this.failed("hub refused the batch; retrying", { status: response.status });
      return Number.isFinite(retryAfter) && retryAfter > 0 ? { ...result, retryAfterMs: retryAfter * 1000 } : result;
    }
    if (response.status === 409) {
      this.options.log("error", "the hub follows a newer gateway process; this one stands down", { status: 409 });
      return { kind: "superseded" };
    }
    if (response.status === 401) {
      // Not poison: a wrong HUB_SECRET or a skewed clock rejects every batch. Keep them and say why, loudly.
      return this.failed("hub rejected the signature: check HUB_SECRET and this machine's clock", { status: 401 });
    }
    this.stats.hubReachable = true; // the hub answered
    return { kind: "refused", status: response.status };
  }

  private failed(msg: string, fields: Record<string, unknown>): { kind: "retry" } {
    this.stats.failures++;
    this.stats.hubReachable = false;
    this.options.log("warn", msg, fields);
    return { kind: "retry" };
  }
}

/** An event with its JSON, made once: it sizes the requests and then goes into their bodies. */
interface SerializedEvent {
  event: OutboxEvent;
  json: string;
}

/** Groups events for requests under MAX_BODY_BYTES; an event is never split. */
function requestGroups(events: OutboxEvent[]): SerializedEvent[][] {
  const groups: SerializedEvent[][] = [];
  let group: SerializedEvent[] = [];
  let size = 0;
  for (const event of events) {
    const json = JSON.stringify(event);
    const bytes = Buffer.byteLength(json) + 1;
    if (group.length > 0 && size + bytes > MAX_BODY_BYTES) {
      groups.push(group);
      group = [];
      size = 0;
    }
    group.push({ event, json });
    size += bytes;
  }
  if (group.length > 0) groups.push(group);
  return groups;
}
