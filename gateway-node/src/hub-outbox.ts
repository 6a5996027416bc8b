import {
  hubRequestHeaders,
  InternalEventsResponse,
  LeaseRefusal,
  LeaseResponse,
  MAX_INTERNAL_BODY_BYTES,
  splitGuildSync,
  type GuildSyncPayload,
  type InternalEvent,
} from "../../protocol/index.js";
import { backoffDelay, type BackoffPolicy } from "../../protocol/backoff.js";
import { GuildLease } from "./guild-lease.js";
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
  guildId: string;
  /** POST /internal/events; the lease endpoint is its sibling, /internal/lease. */
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
  /** This process as the hubs know it (see GuildLease). */
  gateway: { instance: string; epoch: number };
  /** While another process holds the guild, ask again at least this often (it may release early). */
  standbyPollMs: number;
  /** How often to contact an edge that grants no lease while idle. */
  idleContactMs: number;
  /** Wall clock, for request signatures only. */
  now: () => number;
  /** Monotonic clock, for the lease's times. */
  clock: () => number;
  log: Logger;
  /** Where request latencies go: one histogram for the process, shared by every guild's outbox. */
  latency?: Histogram;
}

/** `lease`: the hub refused this process's lease; the lease state says what next (stand by, or sync first). */
type PostOutcome =
  | { kind: "ok"; rejected: Set<string> }
  | { kind: "lease" }
  | { kind: "retry"; retryAfterMs?: number }
  | { kind: "refused"; status: number };

/** How long a release may take as the process stops. */
const RELEASE_TIMEOUT_MS = 3_000;

/**
 * Delivers events to the hub in order, at least once, signed, in batches, with backoff while the hub is down.
 * Memory is bounded: on overflow the queue is dropped and a fresh guild.sync is sent when the hub is back.
 * A batch the hub finds too large is split; an event it refuses as invalid is dropped alone, and a guild.sync
 * follows so the hub converges anyway. It writes only under the guild's lease (see GuildLease): standing by, it
 * keeps queueing and asks again; a term it did not hold before begins with a guild.sync.
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
  /** `hubReachable`: the hub's last answer (to a delivery or a heartbeat) came; false after a failure to reach it. */
  readonly stats = { delivered: 0, dropped: 0, posts: 0, failures: 0, hubReachable: true, lastSuccessAt: 0 };
  readonly latency: Histogram;
  readonly lease: GuildLease;
  private syncCounter = 0;
  /** The next heartbeat (renewal, or a standby's question) while there is nothing to deliver. */
  private contactTimer: ReturnType<typeof setTimeout> | undefined;
  private contactFailures = 0;

  constructor(private readonly options: HubOutboxOptions) {
    this.latency = options.latency ?? new Histogram(HUB_LATENCY_BUCKETS);
    const { gateway, standbyPollMs, idleContactMs, clock, random, log } = options;
    this.lease = new GuildLease({ ...gateway, standbyPollMs, idleContactMs, clock, random, log });
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
      this.resync();
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

  /**
   * Resolves when everything queued is delivered, or after `timeoutMs`; returns whether it drained. Standing by,
   * nothing is this process's to deliver: the holder serves the guild.
   */
  async flush(timeoutMs: number): Promise<boolean> {
    if (this.depth === 0 || this.standingBy) return true;
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
    clearTimeout(this.contactTimer);
  }

  /** Gives the guild back as the process stops (after its flush), so a successor takes over at once. Best effort. */
  async release(): Promise<void> {
    this.stop();
    if (this.lease.term === undefined) return;
    await this.postLease(true, RELEASE_TIMEOUT_MS);
  }

  private get standingBy(): boolean {
    return this.lease.state.name === "standby" || this.lease.state.name === "fenced";
  }

  private kick(): void {
    if (!this.pumping && !this.stopped) void this.pump();
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    let attempt = 0;
    try {
      while (!this.stopped && this.depth > 0) {
        if (this.standingBy) {
          // The holder serves the guild meanwhile: nothing here is owed. Ask with a heartbeat, not the whole queue.
          this.wakeIdleWaiters();
          const wait = this.lease.waitMs();
          if (wait > 0) await this.options.sleep(wait);
          else if (!(await this.postLease(false, 10_000))) await this.options.sleep(backoffDelay(attempt++, this.options.backoff, this.options.random));
          continue;
        }
        const batch = this.nextBatch();
        const outcome = await this.deliver(batch.events);
        if (this.stopped) break; // stopped meanwhile: a stopped outbox commits nothing more
        if (outcome.kind === "ok") {
          this.settle(batch, outcome.rejected);
          attempt = 0;
          continue;
        }
        if (outcome.kind === "lease") continue; // the lease state decides: wait, or sync first
        const delay = outcome.kind === "retry" && outcome.retryAfterMs !== undefined ? outcome.retryAfterMs : backoffDelay(attempt++, this.options.backoff, this.options.random);
        await this.options.sleep(delay);
      }
    } finally {
      this.pumping = false;
    }
    if (this.depth === 0 || this.standingBy) this.wakeIdleWaiters();
    this.scheduleContact();
  }

  private wakeIdleWaiters(): void {
    for (const wake of this.idleWaiters.splice(0)) wake();
  }

  /** The hub needs a whole picture (a new term, an overflow, a refused event): the queued events are in it. */
  private resync(): void {
    this.queue = [];
    this.trailing = undefined;
    this.syncPending = true;
    this.syncTaken = false;
  }

  /** Keeps the lease while there is nothing to deliver, and asks again while standing by. */
  private scheduleContact(): void {
    clearTimeout(this.contactTimer);
    this.contactTimer = undefined;
    if (this.stopped) return;
    const { clock, backoff, random } = this.options;
    const at = this.contactFailures > 0 ? clock() + backoffDelay(this.contactFailures - 1, backoff, random) : this.lease.nextContactAt();
    if (at === undefined) return;
    this.contactTimer = setTimeout(() => void this.contact(), Math.max(0, at - clock()));
    this.contactTimer.unref?.();
  }

  private async contact(): Promise<void> {
    this.contactTimer = undefined;
    if (this.stopped || this.pumping) return; // a delivery renews the lease; the pump schedules the next contact
    if (this.depth > 0) return this.kick();
    const answered = await this.postLease(false, 10_000);
    this.contactFailures = answered ? 0 : this.contactFailures + 1;
    if (!this.pumping) this.scheduleContact();
  }

  /** POST /internal/lease: a heartbeat, or a release. Returns whether the hub answered. */
  private async postLease(release: boolean, timeoutMs: number): Promise<boolean> {
    const body = JSON.stringify({ guildId: this.options.guildId, gateway: this.lease.identity(), ...(release ? { release: true } : {}) });
    let response: Response;
    try {
      response = await this.options.fetch(new URL("lease", this.options.endpoint), {
        method: "POST",
        headers: await hubRequestHeaders(this.options.secret, body, this.options.now()),
        body,
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      this.failed(release ? "could not release the hub lease" : "hub unreachable", { error: error instanceof Error ? error.message : String(error) });
      return false;
    }
    const json: unknown = await response.json().catch(() => undefined);
    if (response.status === 409) {
      this.stats.hubReachable = true;
      this.leaseRefused(json);
      return true;
    }
    if (response.status === 404) {
      // An edge of the previous release has no lease endpoint: it answers, and grants nothing.
      this.stats.hubReachable = true;
      if (!release) this.lease.granted(undefined);
      return true;
    }
    const answer = LeaseResponse.safeParse(json);
    if (!response.ok || !answer.success) {
      this.failed("hub refused the lease request", { status: response.status });
      return false;
    }
    this.stats.hubReachable = true;
    if (release) {
      this.lease.released();
      return true;
    }
    this.lease.granted(answer.data.lease);
    if (answer.data.lease?.syncRequired) {
      // Took over a guild while idle: the previous holder may have died with events it never delivered.
      this.resync();
      this.kick();
    }
    return true;
  }

  /** A 409: stand by, or (a new term) send a whole picture first. An edge of the previous release answers `superseded`. */
  private leaseRefused(json: unknown): PostOutcome {
    const refusal = LeaseRefusal.safeParse(json);
    if (!refusal.success) {
      this.lease.refused("superseded", this.options.standbyPollMs);
    } else if (refusal.data.error === "sync_required") {
      this.lease.granted(refusal.data.lease);
      this.resync();
    } else {
      this.lease.refused(refusal.data.error, refusal.data.retryAfterMs);
    }
    return { kind: "lease" };
  }

  private nextBatch(): Batch {
    if (this.syncPending) {
      const { payload, sessionId, seq, settles } = this.options.currentSync();
      this.syncTaken = true;
      // Named by the instance too: two processes of one bot may build a sync in the same millisecond.
      const events = syncEvents(payload, `sync:${this.options.gateway.instance}:${Date.now()}:${++this.syncCounter}`);
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
      this.resync();
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
    const body = `{"events":[${group.map(({ json }) => json).join(",")}],"gateway":${JSON.stringify(this.lease.identity())}}`;
    this.stats.posts++;
    const started = performance.now();
    let response: Response;
    try {
      response = await this.options.fetch(this.options.endpoint, {
        method: "POST",
        headers: await hubRequestHeaders(this.options.secret, body, this.options.now()),
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
      this.lease.granted(parsed.success ? parsed.data.lease : undefined);
      this.options.log("debug", "delivered events to the hub", { count: group.length, duplicates: parsed.success ? parsed.data.duplicates : undefined });
      return { kind: "ok", rejected: new Set() };
    }
    if (response.status === 409) {
      this.stats.hubReachable = true; // the hub answered
      return this.leaseRefused(await response.json().catch(() => undefined));
    }
    await response.body?.cancel().catch(() => undefined);
    const retryable = response.status >= 500 || response.status === 408 || response.status === 429;
    if (retryable) {
      const retryAfter = Number(response.headers.get("Retry-After"));
      const result = this.failed("hub refused the batch; retrying", { status: response.status });
      return Number.isFinite(retryAfter) && retryAfter > 0 ? { ...result, retryAfterMs: retryAfter * 1000 } : result;
    }
    if (response.status === 401) {
      // Not poison: a wrong HUB_SECRET or a clock minutes off rejects every batch. Keep them and say why, loudly.
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
