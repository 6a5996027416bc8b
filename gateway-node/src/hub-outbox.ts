import {
  InternalEventsResponse,
  LeaseRefusal,
  LeaseResponse,
  MAX_INTERNAL_BODY_BYTES,
  type GuildSyncPayload,
} from "../../protocol/index.js";
import { backoffDelay, type BackoffPolicy } from "../../protocol/backoff.js";
import { GuildLease } from "./guild-lease.js";
import type { HubFetch, HubResponse } from "./hub-http.js";
import { hubRequestHeaders } from "./hub-signature.js";
import type { Logger } from "./log.js";
import { HUB_LATENCY_BUCKETS, Histogram } from "./histogram.js";
import { OutboxQueue, type Batch, type OutboxEvent, type SessionPosition } from "./outbox-queue.js";

export type { OutboxEvent, SessionPosition };

/** Request bodies stay this far under the hub's limit: the signature headers and JSON framing need room too. */
const MAX_BODY_BYTES = MAX_INTERNAL_BODY_BYTES - 64 * 1024;

export interface HubOutboxOptions {
  guildId: string;
  /** POST /internal/events; the lease endpoint is its sibling, /internal/lease. */
  endpoint: string;
  secret: string;
  maxEvents: number;
  batchSize: number;
  /**
   * A batch not full waits this long for more before it goes: a POST (its signature, its request) costs far more
   * than a state, and a few states a request instead of one cut the gateway's CPU per dispatch several times.
   */
  batchLingerMs: number;
  backoff: BackoffPolicy;
  fetch: HubFetch;
  random: () => number;
  sleep: (ms: number) => Promise<void>;
  /** Called with a session's seq once everything of every dispatch up to it has been accepted by the hub. */
  committed: (position: SessionPosition) => void;
  /** The hub accepted a whole picture taken in `sessionId`. */
  pictureDelivered: (sessionId: string) => void;
  /** The hub needs a whole picture (a new lease term) and none is queued: the owner must bring one. */
  pictureNeeded: () => void;
  /** The queue overflowed past compaction and was dropped: the hub lacks states only a fresh picture gives. */
  lost: (dropped: number) => void;
  /**
   * An irregular batch (see OutboxQueue) goes out (`true`): until it is accepted and its position stored, a restart must
   * not RESUME and replay it; accepted (`false`), its position is stored at once.
   */
  irregular: (inFlight: boolean) => void;
  /** This process as the hubs know it (see GuildLease). */
  gateway: { instance: string; epoch: number };
  /** While another process holds the guild, ask again at least this often (it may release early). */
  standbyPollMs: number;
  /** How often to contact an edge that grants no lease (the previous release, or one that does not serve the guild). */
  idleContactMs: number;
  /** Wall clock, for request signatures only. */
  now: () => number;
  /** Monotonic clock, for the lease's times. */
  clock: () => number;
  log: Logger;
  /** Where request latencies go: one histogram for the process, shared by every guild's outbox. */
  latency?: Histogram;
}

/**
 * `lease`: the hub refused this process's lease, or the edge does not serve the guild; the lease state says what
 * next (stand by, sync first, or ask again later).
 */
type PostOutcome =
  | { kind: "ok"; rejected: Set<string> }
  | { kind: "lease" }
  | { kind: "retry"; retryAfterMs?: number }
  | { kind: "refused"; status: number };

/** How long a release may take as the process stops. */
const RELEASE_TIMEOUT_MS = 3_000;

/**
 * Delivers one guild's states and pictures to its hub in order, at least once, signed, in batches, with backoff
 * while the hub is down. Memory is bounded by the queue (see OutboxQueue): compacted per key on overflow, dropped
 * (and the owner told to get a fresh picture) past that. A batch the hub finds too large is split; an event it refuses
 * as invalid is dropped alone and logged (the next state of its user or channel corrects the hub). It writes only
 * under the guild's lease (see GuildLease), claimed at start: standing by (or the edge not serving the guild), it keeps
 * queueing and asks again; a term it did not hold before begins with a whole picture (queued already, or brought by
 * the owner).
 */
export class HubOutbox {
  private readonly queue: OutboxQueue;
  /** The hub asked for a whole picture (a new lease term): nothing else goes until one does. */
  private pictureOwed = false;
  private pumping = false;
  /** A partial batch waiting for more (batchLingerMs). */
  private lingering: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;
  private idleWaiters: Array<() => void> = [];
  /** `hubReachable`: the hub's last answer (to a delivery or a heartbeat) came; false after a failure to reach it. */
  readonly stats = { delivered: 0, dropped: 0, posts: 0, failures: 0, hubReachable: true, lastSuccessAt: 0 };
  readonly latency: Histogram;
  readonly lease: GuildLease;
  /** The next heartbeat (renewal, or a standby's question) while there is nothing to deliver. */
  private contactTimer: ReturnType<typeof setTimeout> | undefined;
  private contactFailures = 0;
  /** A heartbeat on its way: its answer (a grant, a sync it requires) is applied before a batch goes. */
  private heartbeat: Promise<boolean> | undefined;
  /**
   * The events endpoint last answered a status no hub answers (a route that does not exist, a firewall): a 404 from
   * the lease endpoint then says the same, not "an edge of the previous release".
   */
  private misdirected = false;

  constructor(private readonly options: HubOutboxOptions) {
    this.latency = options.latency ?? new Histogram(HUB_LATENCY_BUCKETS);
    this.queue = new OutboxQueue(options.maxEvents);
    const { gateway, standbyPollMs, idleContactMs, clock, random, log } = options;
    this.lease = new GuildLease({ ...gateway, standbyPollMs, idleContactMs, clock, random, log });
  }

  get depth(): number {
    return this.queue.depth;
  }

  /** One dispatch's state of the guild (`foldable`: see OutboxQueue.pushState). */
  enqueueState(event: OutboxEvent, sessionId: string, seq: number, foldable = true): void {
    const outcome = this.queue.pushState(event, sessionId, seq, foldable);
    if (outcome.kind === "dropped") {
      this.stats.dropped += outcome.count;
      this.options.log("warn", "hub outbox overflowed past compaction; dropped the queue, a fresh picture follows", { dropped: outcome.count });
      this.options.lost(outcome.count);
    }
    this.kick();
  }

  /** A whole picture: a GUILD_CREATE's sync, or the bot's absence (`irregular`: one no dispatch gave). */
  enqueuePicture(picture: { sync: GuildSyncPayload } | { absent: OutboxEvent }, sessionId: string, seq: number, irregular = false): void {
    this.queue.pushPicture(picture, sessionId, seq, irregular);
    this.kick();
  }

  /** A dispatch that said nothing of the guild: the position may move past it once what is queued before it is delivered. */
  passed(sessionId: string, seq: number): void {
    const position = this.queue.passed(sessionId, seq);
    if (position) this.options.committed(position);
  }

  /**
   * Resolves when everything queued is delivered, or after `timeoutMs`; returns whether it drained. Standing by,
   * nothing is this process's to deliver: the holder serves the guild. Unserved, nothing can be delivered: it says so.
   */
  async flush(timeoutMs: number): Promise<boolean> {
    if (!this.deliverable || this.heldBack) return this.depth === 0 || this.standingBy;
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve(this.depth === 0 || this.standingBy);
      });
    });
  }

  /** Claims the guild at start with a heartbeat, so a guild with nothing to deliver is held too (see GuildLease). */
  claim(): void {
    this.scheduleContact();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.contactTimer);
    clearTimeout(this.lingering);
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

  /** The hub takes nothing from this process now: another holds the guild, or the edge does not serve it. */
  private get heldBack(): boolean {
    return this.standingBy || this.lease.state.name === "unserved";
  }

  /** Something is queued that may go now: not while the hub waits for a picture none is queued for. */
  private get deliverable(): boolean {
    return this.queue.depth > 0 && (!this.pictureOwed || this.queue.pictureAhead);
  }

  private kick(): void {
    if (this.pumping || this.stopped || !this.deliverable || this.lingering) return;
    if (this.queue.depth >= this.options.batchSize || this.options.batchLingerMs === 0) return void this.pump();
    this.lingering = setTimeout(() => {
      this.lingering = undefined;
      if (!this.pumping && !this.stopped && this.deliverable) void this.pump();
    }, this.options.batchLingerMs);
    this.lingering.unref?.();
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    let attempt = 0;
    try {
      while (!this.stopped && this.deliverable) {
        if (this.heartbeat) {
          await this.heartbeat;
          continue;
        }
        if (this.heldBack) {
          // The holder serves the guild meanwhile (or the edge does not serve it): nothing goes now. Ask with a
          // heartbeat, not the whole queue.
          this.wakeIdleWaiters();
          const wait = this.lease.waitMs();
          if (wait > 0) await this.options.sleep(wait);
          else if (!(await this.postLease(false, 10_000))) await this.options.sleep(backoffDelay(attempt++, this.options.backoff, this.options.random));
          continue;
        }
        const batch = this.queue.take(this.options.batchSize)!;
        if (batch.irregular) this.options.irregular(true);
        const outcome = await this.deliver(batch.events);
        if (this.stopped) break; // stopped meanwhile: a stopped outbox commits nothing more
        if (outcome.kind === "ok") {
          this.settle(batch, outcome.rejected);
          attempt = 0;
          continue;
        }
        this.queue.release();
        if (outcome.kind === "lease") continue; // the lease state decides: wait, or a picture first
        const delay = outcome.kind === "retry" && outcome.retryAfterMs !== undefined ? outcome.retryAfterMs : backoffDelay(attempt++, this.options.backoff, this.options.random);
        await this.options.sleep(delay);
      }
    } finally {
      this.pumping = false;
    }
    if (!this.deliverable || this.heldBack) this.wakeIdleWaiters();
    this.scheduleContact();
  }

  private wakeIdleWaiters(): void {
    for (const wake of this.idleWaiters.splice(0)) wake();
  }

  /** A new term must begin with a whole picture: the queued one, or one the owner brings. */
  private owePicture(): void {
    this.pictureOwed = true;
    if (!this.queue.pictureAhead) this.options.pictureNeeded();
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
    if (this.deliverable) return this.kick();
    this.heartbeat = this.postLease(false, 10_000);
    const answered = await this.heartbeat;
    this.heartbeat = undefined;
    this.contactFailures = answered ? 0 : this.contactFailures + 1;
    if (!this.pumping) this.scheduleContact();
  }

  /** POST /internal/lease: a heartbeat, or a release. Returns whether the hub answered. */
  private async postLease(release: boolean, timeoutMs: number): Promise<boolean> {
    const body = JSON.stringify({ guildId: this.options.guildId, gateway: this.lease.identity(), ...(release ? { release: true } : {}) });
    let response: HubResponse;
    try {
      response = await this.options.fetch(new URL("lease", this.options.endpoint), {
        method: "POST",
        headers: hubRequestHeaders(this.options.secret, body, this.options.now()),
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
    if (response.status === 404 && !this.misdirected) {
      // An edge of the previous release has no lease endpoint: it answers, and grants nothing.
      this.stats.hubReachable = true;
      if (!release) this.lease.granted(undefined);
      return true;
    }
    const answer = LeaseResponse.safeParse(json);
    if (!response.ok || !answer.success) {
      const { msg, fields } = failure(response.status, "lease request", this.options.endpoint);
      this.failed(msg, fields);
      return false;
    }
    this.stats.hubReachable = true;
    if (release) {
      this.lease.released();
      return true;
    }
    // A served guild's hub grants a heartbeat its lease or refuses it (409): an answer without one is an edge that
    // does not serve the guild (it says `served: false`).
    if (!answer.data.lease) {
      this.lease.unserved();
      return true;
    }
    this.lease.granted(answer.data.lease);
    if (answer.data.lease.syncRequired) {
      // Took over a guild while idle: the previous holder may have died with events it never delivered.
      this.owePicture();
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
      this.owePicture();
    } else {
      this.lease.refused(refusal.data.error, refusal.data.retryAfterMs);
    }
    return { kind: "lease" };
  }

  /** Records what the hub accepted and moves the session's position past every dispatch delivered whole. */
  private settle(batch: Batch, rejected: Set<string>): void {
    const { position, pictureOf } = this.queue.settle(batch);
    this.stats.delivered += batch.events.length - rejected.size;
    this.stats.dropped += rejected.size;
    if (pictureOf !== undefined && rejected.size === 0) {
      this.pictureOwed = false;
      this.options.pictureDelivered(pictureOf);
    } else if (pictureOf !== undefined && this.pictureOwed) {
      this.options.pictureNeeded(); // the hub refused the picture a new term begins with: another is needed
    }
    if (position) this.options.committed(position);
    if (batch.irregular) this.options.irregular(false);
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
      // The hub's schema and this gateway's disagree (a deploy out of order?): resending would fail again.
      this.options.log("error", "hub refused an event as invalid; dropping it", { status: outcome.status, id: event.id, event: event.event });
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
    let response: HubResponse;
    try {
      response = await this.options.fetch(this.options.endpoint, {
        method: "POST",
        headers: hubRequestHeaders(this.options.secret, body, this.options.now()),
        body,
        signal: AbortSignal.timeout(10_000),
      });
    } catch (error) {
      return this.failed("hub unreachable", { error: error instanceof Error ? error.message : String(error) });
    }
    this.latency.observe((performance.now() - started) / 1000);
    if (response.ok) {
      const parsed = InternalEventsResponse.safeParse(await response.json().catch(() => undefined));
      this.stats.hubReachable = true;
      this.misdirected = false;
      if (parsed.success && parsed.data.served === false) {
        // Acknowledged and dropped by an edge that does not serve the guild: kept here until one does.
        this.lease.unserved();
        return { kind: "lease" };
      }
      this.stats.lastSuccessAt = Date.now();
      this.lease.granted(parsed.success ? parsed.data.lease : undefined);
      this.options.log("debug", "delivered events to the hub", { count: group.length, duplicates: parsed.success ? parsed.data.duplicates : undefined });
      return { kind: "ok", rejected: new Set() };
    }
    if (response.status === 409) {
      this.stats.hubReachable = true; // the hub answered
      this.misdirected = false;
      return this.leaseRefused(await response.json().catch(() => undefined));
    }
    await response.body?.cancel().catch(() => undefined);
    if (response.status === 400 || response.status === 413) {
      this.stats.hubReachable = true; // the hub answered: it refuses an event (or the batch's size)
      this.misdirected = false;
      return { kind: "refused", status: response.status };
    }
    const { msg, fields, notTheHub } = failure(response.status, "batch", this.options.endpoint);
    this.misdirected = notTheHub;
    const result = this.failed(msg, fields);
    const retryAfter = Number(response.headers.get("Retry-After"));
    return Number.isFinite(retryAfter) && retryAfter > 0 ? { ...result, retryAfterMs: retryAfter * 1000 } : result;
  }

  private failed(msg: string, fields: Record<string, unknown>): { kind: "retry" } {
    this.stats.failures++;
    this.stats.hubReachable = false;
    this.options.log("warn", msg, fields);
    return { kind: "retry" };
  }
}

/**
 * Why an answer the outbox keeps its events through (and retries, with backoff) is no delivery, as the log line that
 * says what to fix. Not poison: a hub down or busy, a wrong HUB_SECRET or a clock minutes off, and an endpoint that
 * answers but is not the hub (a route that does not exist, a firewall: a wrong HUB_ENDPOINT) fail every request alike.
 */
function failure(status: number, what: "batch" | "lease request", endpoint: string): { msg: string; fields: Record<string, unknown>; notTheHub: boolean } {
  if (status === 401) return { msg: "hub rejected the signature: check HUB_SECRET and this machine's clock", fields: { status }, notTheHub: false };
  if (status >= 500 || status === 408 || status === 429 || status === 400 || status === 413) {
    return { msg: `hub refused the ${what}; retrying`, fields: { status }, notTheHub: false };
  }
  return { msg: "the hub endpoint answers, but not as the hub: check HUB_ENDPOINT", fields: { status, endpoint }, notTheHub: true };
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
