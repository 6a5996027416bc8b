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

export type OutboxEvent = InternalEvent & { id: string };

/** A guild.sync as the events to send: one, or one per part when the picture is too large for one request. */
export function syncEvents(sync: GuildSyncPayload, id: string): OutboxEvent[] {
  const parts = splitGuildSync(sync, id);
  return parts.map((payload, index) => ({ id: parts.length === 1 ? id : `${id}:part${index}`, event: "guild.sync", payload }));
}

/** Request bodies stay this far under the hub's limit: the signature headers and JSON framing need room too. */
const MAX_BODY_BYTES = MAX_INTERNAL_BODY_BYTES - 64 * 1024;

interface Batch {
  events: OutboxEvent[];
  entries: number;
  sync: boolean;
  covers?: { sessionId: string; seq: number };
}

interface Entry {
  event: OutboxEvent;
  /** The gateway session and sequence this entry completes: once delivered, the session may persist it. */
  sessionId: string;
  seq: number;
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
  currentSync: () => { payload: GuildSyncPayload; sessionId?: string; seq?: number };
  /** Called with a session's seq once every event up to it has been accepted by the hub. */
  committed: (sessionId: string, seq: number) => void;
  /** Sent with every batch: the hub follows the newest gateway. */
  lease: GatewayLease;
  /** The hub follows a newer gateway: this one must stop delivering and stand down. */
  superseded: () => void;
  log: Logger;
}

/**
 * Delivers events to the hub in order, at least once, signed, in batches, with backoff while the hub is down.
 * Memory is bounded: on overflow the queue is dropped and a fresh guild.sync is sent when the hub is back.
 */
export class HubOutbox {
  private queue: Entry[] = [];
  private syncPending = false;
  private pumping = false;
  private stopped = false;
  private idleWaiters: Array<() => void> = [];
  readonly stats = { delivered: 0, dropped: 0, posts: 0, failures: 0, lastDeliveryOk: true };
  private syncCounter = 0;

  constructor(private readonly options: HubOutboxOptions) {}

  get depth(): number {
    return this.queue.length + (this.syncPending ? 1 : 0);
  }

  /** Queues one dispatch's events (possibly none: the seq still counts as handled once earlier ones are delivered). */
  enqueue(events: OutboxEvent[], sessionId: string, seq: number): void {
    if (this.syncPending) {
      // The pending sync is built at send time from the live picture, so it already covers these.
      this.kick();
      return;
    }
    if (this.queue.length + events.length > this.options.maxEvents) {
      this.stats.dropped += this.queue.length + events.length;
      this.options.log("warn", "hub outbox overflowed; dropping the queue and resyncing when the hub is back", { dropped: this.queue.length + events.length });
      this.queue = [];
      this.syncPending = true;
      this.kick();
      return;
    }
    if (events.length === 0) {
      if (this.queue.length === 0) this.options.committed(sessionId, seq);
      else this.queue[this.queue.length - 1]!.seq = Math.max(this.queue[this.queue.length - 1]!.seq, seq);
      return;
    }
    for (const event of events) this.queue.push({ event, sessionId, seq });
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

  private kick(): void {
    if (!this.pumping && !this.stopped) void this.pump();
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    let attempt = 0;
    try {
      while (!this.stopped && this.depth > 0) {
        const batch = this.nextBatch();
        const outcome = await this.post(batch.events);
        if (outcome.kind === "superseded") {
          this.stopped = true;
          this.options.superseded();
          break;
        }
        if (outcome.kind === "ok" || outcome.kind === "poison") {
          this.settle(batch, outcome.kind === "ok");
          attempt = 0;
          continue;
        }
        const delay = outcome.retryAfterMs ?? backoffDelay(attempt++, this.options.backoff, this.options.random);
        await this.options.sleep(delay);
      }
    } finally {
      this.pumping = false;
    }
    if (this.depth === 0) for (const wake of this.idleWaiters.splice(0)) wake();
  }

  private nextBatch(): Batch {
    if (this.syncPending) {
      const { payload, sessionId, seq } = this.options.currentSync();
      const events = syncEvents(payload, `sync:${Date.now()}:${++this.syncCounter}`);
      return { events, entries: 0, sync: true, covers: sessionId !== undefined && seq !== undefined ? { sessionId, seq } : undefined };
    }
    const entries = this.queue.slice(0, this.options.batchSize);
    return { events: entries.map((entry) => entry.event), entries: entries.length, sync: false };
  }

  private settle(batch: Batch, delivered: boolean): void {
    if (batch.sync) {
      this.syncPending = false;
      if (delivered && batch.covers) this.options.committed(batch.covers.sessionId, batch.covers.seq);
    } else {
      const done = this.queue.splice(0, batch.entries);
      const last = done[done.length - 1];
      if (delivered && last) this.options.committed(last.sessionId, last.seq);
    }
    if (delivered) this.stats.delivered += batch.events.length;
  }

  /** Posts a batch in as many requests as its size needs, in order; the first failure stops it. */
  private async post(events: OutboxEvent[]): Promise<PostOutcome> {
    for (const body of requestBodies(events, this.options.lease)) {
      const outcome = await this.postBody(body, events);
      if (outcome.kind !== "ok") return outcome;
    }
    return { kind: "ok" };
  }

  private async postBody(body: string, events: OutboxEvent[]): Promise<PostOutcome> {
    this.stats.posts++;
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
    if (response.ok) {
      const parsed = InternalEventsResponse.safeParse(await response.json().catch(() => undefined));
      this.stats.lastDeliveryOk = true;
      this.options.log("debug", "delivered events to the hub", { count: events.length, duplicates: parsed.success ? parsed.data.duplicates : undefined });
      return { kind: "ok" };
    }
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
    this.options.log("error", "hub rejected a batch as invalid; dropping it", { status: response.status, ids: events.map((e) => e.id).slice(0, 5) });
    this.stats.dropped += events.length;
    return { kind: "poison" };
  }

  private failed(msg: string, fields: Record<string, unknown>): { kind: "retry" } {
    this.stats.failures++;
    this.stats.lastDeliveryOk = false;
    this.options.log("warn", msg, fields);
    return { kind: "retry" };
  }
}

type PostOutcome = { kind: "ok" } | { kind: "poison" } | { kind: "superseded" } | { kind: "retry"; retryAfterMs?: number };

/** Groups events into request bodies under MAX_BODY_BYTES; an event is never split. */
function requestBodies(events: OutboxEvent[], lease: GatewayLease): string[] {
  const gateway = JSON.stringify(lease);
  const bodies: string[] = [];
  let group: string[] = [];
  let size = 0;
  for (const event of events) {
    const json = JSON.stringify(event);
    const bytes = Buffer.byteLength(json);
    if (group.length > 0 && size + bytes + 1 > MAX_BODY_BYTES) {
      bodies.push(`{"events":[${group.join(",")}],"gateway":${gateway}}`);
      group = [];
      size = 0;
    }
    group.push(json);
    size += bytes + 1;
  }
  if (group.length > 0) bodies.push(`{"events":[${group.join(",")}],"gateway":${gateway}}`);
  return bodies;
}
