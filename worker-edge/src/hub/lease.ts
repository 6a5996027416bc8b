import type { GatewayIdentity, IdentifiedInternalEvent, LeaseGrant, LeaseRefusal, LeaseRefusalReason } from "../../../protocol/internal.js";

/**
 * The gateway lease of one guild: which gateway process may write the guild, granted, renewed and fenced by the
 * guild's hub. Pure (no storage, no runtime, no zod), so the Node test hub of gateway-node runs this very module.
 *
 * The hub's clock alone decides expiry; a gateway's clock decides nothing. States and transitions:
 *
 *   free (none yet, expired or released) ── any claim ──▶ held: by the same instance, its term goes on; by another,
 *                                                          term + 1, and the new term must begin with a guild.sync
 *   held by the claimant ── claim with its term (or 0) ──▶ held, renewed for LEASE_TTL_MS
 *   held by another, unexpired ── claim ──▶ refused `lease_held`, retry after the holder's time left
 *   any ── claim naming a term that is not the current one ──▶ refused `lease_lost` (fenced): the writer must ask
 *          for a new term (term 0) and begin it with a sync
 *   held by the claimant ── release with its term ──▶ free at once (a rolling deploy's successor takes over)
 *
 * Replays: a signed request can be sent again byte for byte by whoever captured it, for as long as its timestamp
 * is inside the signature window (minutes, far longer than a TTL). So the holder's claims and releases count only
 * when signed after the request that last renewed its lease: a replayed one renews nothing, takes back nothing
 * and frees nothing (a dead holder's lease still lapses one TTL after its own last renewal). The signing time only
 * orders one instance's own requests, and is kept no later than the hub's clock: a gateway whose clock is corrected
 * backwards goes on renewing (a clock ahead of the hub's by X only shortens the replay protection to X); expiry
 * stays on the hub's clock.
 *
 * A claim without a term comes from a gateway of the previous release: it is fenced by holder and expiry alike, but
 * cannot act on `sync_required`, so its new terms start synced. A write naming no gateway at all (a tool, a test)
 * is served only while no gateway holds the guild.
 */

/** How long a lease lasts after its last renewal: the longest a guild waits for a successor when its holder dies. */
export const LEASE_TTL_MS = 30_000;

export interface Lease {
  /** The gateway instance holding (or, once expired, last holding) the guild. */
  holder: string;
  /** Grows by one whenever the holder changes: a write naming an older term is fenced. */
  term: number;
  /** Hub time (ms) the lease lapses at unless renewed. */
  expiresAt: number;
  /** Whether this term has begun with a guild.sync: until then the hub takes nothing else from the holder. */
  synced: boolean;
  /** When the holder's request that last renewed (or released) the lease was signed, unix s (absent: unknown). */
  signedAt?: number;
}

/** A gateway's claim as the hub receives it: its identity, and when its request was signed (X-Hub-Timestamp, unix s). */
export type LeaseClaim = GatewayIdentity & { signedAt?: number };

export type LeaseRefusalDecision = { kind: "refused"; reason: LeaseRefusalReason; retryAfterMs: number; lease?: Lease };
export type LeaseDecision = { kind: "granted"; lease: Lease } | LeaseRefusalDecision;

/** Whether the lease binds anyone now: a free guild may be claimed by any gateway. */
export function isHeld(lease: Lease | undefined, now: number): lease is Lease {
  return lease !== undefined && lease.expiresAt > now;
}

/** The holder's time left, in whole ms (0 when free). */
export function timeLeft(lease: Lease | undefined, now: number): number {
  return isHeld(lease, now) ? Math.ceil(lease.expiresAt - now) : 0;
}

/** A gateway asks to hold (or keep holding) the guild: the state machine above. */
export function claimLease(current: Lease | undefined, claim: LeaseClaim, now: number, ttlMs = LEASE_TTL_MS): LeaseDecision {
  // A writer naming a term learns it lost that term first: it must start over with a sync, whoever holds the guild.
  if (current && claim.term !== undefined && claim.term !== 0 && claim.term !== current.term) {
    return { kind: "refused", reason: "lease_lost", retryAfterMs: timeLeft(current, now) };
  }
  const sameHolder = current?.holder === claim.instance;
  if (isHeld(current, now) && !sameHolder) return { kind: "refused", reason: "lease_held", retryAfterMs: timeLeft(current, now) };
  if (current && sameHolder && signedBefore(claim, current, { orAt: true })) {
    // A replay, or a request a newer one overtook: it may be served under the lease, but renews and retakes nothing.
    return isHeld(current, now) ? { kind: "granted", lease: current } : { kind: "refused", reason: "lease_lost", retryAfterMs: 0 };
  }
  const expiresAt = now + ttlMs;
  const signed = signedAtOf(claim, now);
  if (current && sameHolder) return { kind: "granted", lease: { ...current, expiresAt, ...signed } };
  const legacy = claim.term === undefined;
  return { kind: "granted", lease: { holder: claim.instance, term: (current?.term ?? 0) + 1, expiresAt, synced: legacy, ...signed } };
}

/**
 * A batch of events arrives: who sent it decides whether it is applied. Granted, the lease returned is the one to
 * store (renewed, and synced once the batch starts with a guild.sync that completes a picture).
 */
export function admitBatch(
  current: Lease | undefined,
  sender: LeaseClaim | undefined,
  events: readonly IdentifiedInternalEvent[],
  now: number,
  ttlMs = LEASE_TTL_MS,
): LeaseDecision | { kind: "unleased" } {
  if (sender === undefined) {
    return isHeld(current, now) ? { kind: "refused", reason: "lease_held", retryAfterMs: timeLeft(current, now) } : { kind: "unleased" };
  }
  const decision = claimLease(current, sender, now, ttlMs);
  if (decision.kind === "refused" || decision.lease.synced) return decision;
  // A new holder may have missed what the previous one never delivered: its term starts from a whole picture.
  if (!events[0] || !isPicture(events[0])) return { kind: "refused", reason: "sync_required", retryAfterMs: 0, lease: decision.lease };
  return { kind: "granted", lease: { ...decision.lease, synced: events.some(completesPicture) } };
}

/** The holder stops (after delivering everything): the guild is free at once. Anyone else's release changes nothing. */
export function releaseLease(current: Lease | undefined, claim: LeaseClaim, now: number): LeaseDecision | { kind: "released"; lease: Lease } {
  // Signed in the same second as the last renewal is the holder's own flush-then-release; earlier is a replay.
  if (current?.holder === claim.instance && claim.term === current.term && !signedBefore(claim, current, { orAt: false })) {
    return { kind: "released", lease: { ...current, expiresAt: Math.min(current.expiresAt, now), ...signedAtOf(claim, now) } };
  }
  const reason = isHeld(current, now) && current.holder !== claim.instance ? "lease_held" : "lease_lost";
  return { kind: "refused", reason, retryAfterMs: timeLeft(current, now) };
}

/** The claim's signing time as the lease keeps it: never later than the hub's own clock (unix s). */
function signedAtOf(claim: LeaseClaim, now: number): { signedAt?: number } {
  return claim.signedAt === undefined ? {} : { signedAt: Math.min(claim.signedAt, Math.floor(now / 1000)) };
}

/** Whether the claim was signed before (or, `orAt`, no later than) the request that last renewed the lease. */
function signedBefore(claim: LeaseClaim, lease: Lease, { orAt }: { orAt: boolean }): boolean {
  if (claim.signedAt === undefined || lease.signedAt === undefined) return false;
  return orAt ? claim.signedAt <= lease.signedAt : claim.signedAt < lease.signedAt;
}

/** The lease as its holder is told it: the term and the time left by the hub's clock. */
export function grantOf(lease: Lease, now: number): LeaseGrant {
  return { term: lease.term, expiresInMs: timeLeft(lease, now), ...(lease.synced ? {} : { syncRequired: true as const }) };
}

const REFUSAL_MESSAGES: Record<LeaseRefusalReason, string> = {
  lease_held: "another gateway holds this guild's lease; stand by and retry after retryAfterMs",
  lease_lost: "this gateway's lease term has ended; claim a new term (term 0) and begin it with a guild.sync",
  sync_required: "a new lease term begins with a whole picture (a guild.sync, or guild.state absent); send it first",
};

/** The 409 body a refusal becomes. */
export function refusalOf(decision: LeaseRefusalDecision, now: number): LeaseRefusal {
  return {
    error: decision.reason,
    message: REFUSAL_MESSAGES[decision.reason],
    retryAfterMs: decision.retryAfterMs,
    ...(decision.lease ? { lease: grantOf(decision.lease, now) } : {}),
  };
}

/**
 * A whole picture of the guild, or a part of one: a guild.sync, or the bot's absence from the guild (which says
 * everything: nothing is there).
 */
function isPicture(event: IdentifiedInternalEvent): boolean {
  return event.event === "guild.sync" || (event.event === "guild.state" && event.payload.status === "absent");
}

/** A picture that is whole once applied: a sync not cut into parts, the last part of one, or the bot's absence. */
function completesPicture(event: IdentifiedInternalEvent): boolean {
  if (event.event === "guild.state") return event.payload.status === "absent";
  if (event.event !== "guild.sync") return false;
  const part = event.payload.part;
  return !part || part.index === part.count - 1;
}
