import type { GatewayIdentity, LeaseGrant, LeaseRefusalReason } from "../../protocol/index.js";
import type { Logger } from "./log.js";

/**
 * Renew when this fraction of the granted time has passed (a third of the hub's 30 s TTL: every 10 s), so two
 * renewals in a row may fail before the lease lapses. The hub grants the time; this process only counts it down.
 */
export const LEASE_RENEW_FRACTION = 1 / 3;

/**
 * One guild's lease, as this process sees it (the hub decides; see worker-edge/src/hub/lease.ts):
 *
 *   claiming (term 0: a heartbeat at start, or the first batch, asks) ── granted ──▶ holding(term): delivers;
 *              every batch renews, or a heartbeat when idle; a new term (409 sync_required, or a grant saying
 *              syncRequired) begins with a sync
 *   any ── 409 lease_held ──▶ standby(until): another process holds the guild; keep the Discord session and queue
 *              (bounded), ask again when the holder's time runs out, or sooner (a holder that stops releases)
 *   holding ── 409 lease_lost ──▶ fenced: another process took the guild; ask again for a new term (term 0)
 *   standby / fenced ── its time comes: a heartbeat asks with term 0 ──▶ holding, or standby again
 *   any ── answered without a lease by an edge that has leases ──▶ unserved(until): the edge does not serve the
 *              guild (its ALLOWED_GUILD_IDS lacks it): deliver nothing, keep the queue, ask again every idleContactMs
 *   holding ── released as the process stops ──▶ claiming
 *
 * Times here are this process's monotonic clock plus durations the hub gave: its wall clock decides nothing.
 */
export type LeaseState =
  | { name: "claiming" }
  /** `term` undefined: an edge of the previous release, which grants no lease (it follows start times). */
  | { name: "holding"; term: number | undefined; renewAt: number; expiresAt: number | undefined }
  | { name: "standby" | "fenced"; retryAt: number; holderExpiresAt: number; reason: LeaseRefusalReason | "superseded" }
  | { name: "unserved"; retryAt: number };

export interface GuildLeaseOptions {
  /** This process's name to the hubs: kept across restarts on one host (SESSION_FILE). */
  instance: string;
  /** When this process started (wall clock): what the previous release's edges compare. */
  epoch: number;
  /** Ask a holder's hub again at least this often while standing by: a holder that stops frees the guild early. */
  standbyPollMs: number;
  /** How often to contact an edge that grants no lease (the previous release, or one that does not serve the guild). */
  idleContactMs: number;
  /** Monotonic milliseconds. */
  clock: () => number;
  random: () => number;
  log: Logger;
}

/** What an operator fixes when the edge does not serve a guild this process serves (the log line and /healthz). */
const UNSERVED = "the edge does not serve this guild: add it to the edge's ALLOWED_GUILD_IDS (or remove it from this process's)";

export class GuildLease {
  private current: LeaseState = { name: "claiming" };
  /** The last term this process held, and how many terms it has held: a new one after each takeover. */
  private lastTerm: number | undefined;
  termsHeld = 0;

  constructor(private readonly options: GuildLeaseOptions) {}

  get state(): LeaseState {
    return this.current;
  }

  /** What every request to the hub names. */
  identity(): GatewayIdentity {
    const term = this.current.name === "holding" ? (this.current.term ?? 0) : 0;
    return { instance: this.options.instance, term, epoch: this.options.epoch };
  }

  /** The term this process holds, if any. */
  get term(): number | undefined {
    return this.current.name === "holding" ? this.current.term : undefined;
  }

  /** How long to wait before asking the hub again (0: ask now). */
  waitMs(): number {
    return "retryAt" in this.current ? Math.max(0, this.current.retryAt - this.options.clock()) : 0;
  }

  /** When to contact the hub while there is nothing to deliver (undefined: not until there is). */
  nextContactAt(): number | undefined {
    switch (this.current.name) {
      case "claiming":
        // At once: a guild with nothing to deliver (a quiet one after a resume) is held too, with its term if nobody
        // took over; a new term's picture is brought as for any takeover.
        return this.options.clock();
      case "holding":
        return this.current.renewAt;
      default:
        return this.current.retryAt;
    }
  }

  /** The hub granted (or renewed) the lease; `undefined`: an edge of the previous release answered without one. */
  granted(grant: LeaseGrant | undefined): void {
    const now = this.options.clock();
    if (grant && grant.term !== this.lastTerm) this.termsHeld++;
    this.lastTerm = grant?.term ?? this.lastTerm;
    this.become({
      name: "holding",
      term: grant?.term,
      renewAt: now + (grant ? grant.expiresInMs * LEASE_RENEW_FRACTION : this.options.idleContactMs),
      expiresAt: grant && now + grant.expiresInMs,
    });
  }

  /**
   * The hub refused this process (409): stand by for the holder's time left, or sooner to catch a release. A term
   * lost with nobody holding the guild is asked for again no sooner than the next second: signatures carry whole
   * seconds, and the hub takes a claim signed in the second of this process's last renewal or release (a restart
   * right after its release) for a replay of that request.
   */
  refused(reason: LeaseRefusalReason | "superseded", retryAfterMs: number): void {
    const now = this.options.clock();
    const soonest = reason === "lease_lost" ? 1_000 : 0;
    const waitMs = Math.max(soonest, Math.min(retryAfterMs, this.options.standbyPollMs)) * (1 + 0.2 * this.options.random());
    this.become({ name: reason === "lease_lost" ? "fenced" : "standby", retryAt: now + waitMs, holderExpiresAt: now + retryAfterMs, reason });
  }

  /** The edge answered without a lease although it has leases: it does not serve the guild. */
  unserved(): void {
    this.become({ name: "unserved", retryAt: this.options.clock() + this.options.idleContactMs });
  }

  /** This process released the lease (it stops): it holds nothing. */
  released(): void {
    this.become({ name: "claiming" });
  }

  /** The lease for /healthz: standing by is healthy and idle, with the holder's time left. */
  report(): Record<string, unknown> {
    const now = this.options.clock();
    const state = this.current;
    switch (state.name) {
      case "claiming":
        return { state: "claiming" };
      case "holding":
        return state.term === undefined
          ? { state: "holding", term: null, note: "the edge grants no lease (previous release)" }
          : { state: "holding", term: state.term, expiresInMs: Math.max(0, Math.round((state.expiresAt ?? now) - now)) };
      case "unserved":
        return { state: "unserved", note: UNSERVED, retryInMs: Math.round(this.waitMs()) };
      default:
        return { state: state.name, reason: state.reason, holderExpiresInMs: Math.max(0, Math.round(state.holderExpiresAt - now)), retryInMs: Math.round(this.waitMs()) };
    }
  }

  private become(next: LeaseState): void {
    const before = this.current;
    this.current = next;
    const term = next.name === "holding" ? next.term : undefined;
    if (before.name === next.name && (before.name !== "holding" || before.term === term)) return;
    if (next.name === "unserved") return this.options.log("error", UNSERVED, { from: before.name });
    const level = next.name === "fenced" ? "warn" : "info";
    const fields = next.name === "holding" ? { term } : "reason" in next ? { reason: next.reason, retryAfterMs: Math.round(next.holderExpiresAt - this.options.clock()) } : {};
    this.options.log(level, "hub lease", { from: before.name, to: next.name, ...fields });
  }
}
