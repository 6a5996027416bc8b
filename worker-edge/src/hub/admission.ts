import { RestLimits, SocketLimits, takeToken, type Bucket, type BucketPolicy } from "../../../protocol/index.js";
import type { SocketIndex } from "./socket-index.js";

/**
 * What an object (the hub, or a relay) admits from one client before doing work for it: waiting sockets per
 * guild and per client address, and (with `UserRates`) first auths and reads per user.
 */

/** The header Cloudflare sets to the client's address; a client cannot set it through Cloudflare. */
export const CLIENT_ADDRESS_HEADER = "CF-Connecting-IP";

const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const HEXTET = /^[0-9a-f]{1,4}$/;

/**
 * The address one client's sockets are counted under: an IPv4 address as is, an IPv6 address by its /64 (one
 * subscriber gets a whole /64, and could take a new address for every socket). Undefined without the header, or
 * for a value that is no address (Cloudflare always sets one; a local run may not).
 */
export function clientAddress(headers: Headers): string | undefined {
  const value = headers.get(CLIENT_ADDRESS_HEADER)?.trim().toLowerCase();
  if (!value || value.length > 45) return undefined;
  if (IPV4.test(value)) return value;
  const hextets = ipv6Hextets(value);
  return hextets && `${hextets.slice(0, 4).join(":")}::/64`;
}

/** An IPv6 address's eight groups (leading zeros dropped), or undefined. An IPv4-mapped tail counts as two groups. */
function ipv6Hextets(value: string): string[] | undefined {
  const halves = value.split("::");
  if (halves.length > 2) return undefined;
  const groups = (half: string | undefined) => (half ? half.split(":") : []);
  const head = groups(halves[0]);
  const tail = groups(halves[1]);
  const last = (halves.length === 2 ? tail : head).at(-1);
  // ::ffff:192.0.2.1: the dotted quad stands for the last two groups.
  if (last !== undefined && IPV4.test(last)) (halves.length === 2 ? tail : head).splice(-1, 1, "0", "0");
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const all = [...head, ...Array<string>(missing).fill("0"), ...tail];
  if (!all.every((group) => HEXTET.test(group))) return undefined;
  return all.map((group) => group.replace(/^0+(?=.)/, ""));
}

/** Why a new socket cannot wait for its auth here, if it cannot: the guild's cap, then its address's. */
export function pendingRefusal(sockets: SocketIndex, address: string | undefined): string | undefined {
  if (sockets.pendingCount() >= SocketLimits.pendingSockets) return "too many connections waiting for auth";
  if (address !== undefined && sockets.pendingCountFrom(address) >= SocketLimits.pendingSocketsPerAddress) {
    return "too many connections waiting for auth from this address";
  }
  return undefined;
}

/** A token bucket per user, in the object's memory. */
export class UserRates {
  private readonly buckets = new Map<string, Bucket>();
  /** The map's size at which buckets that have filled up again are dropped (then twice what is left). */
  private sweepAt = SWEEP_FLOOR;

  constructor(private readonly policy: BucketPolicy) {}

  /** Takes one of `userId`'s tokens: returns 0 when allowed, else the seconds until a token is available. */
  take(userId: string, now: number): number {
    const { bucket, waitSeconds } = takeToken(this.buckets.get(userId), this.policy, now);
    this.buckets.set(userId, bucket);
    if (this.buckets.size >= this.sweepAt) this.sweep(now);
    return waitSeconds;
  }

  /** A full bucket is what an absent one means: forgetting it keeps the map to the users active lately. */
  private sweep(now: number): void {
    const { capacity, refillPerSecond } = this.policy;
    for (const [userId, bucket] of this.buckets) {
      if (bucket.tokens + ((now - bucket.at) / 1000) * refillPerSecond >= capacity) this.buckets.delete(userId);
    }
    this.sweepAt = Math.max(SWEEP_FLOOR, this.buckets.size * 2);
  }
}

const SWEEP_FLOOR = 1_024;

/** A first auth of a user (a new socket or stream): SocketLimits' burst, then one per interval. */
export const FirstAuthPolicy = {
  capacity: SocketLimits.firstAuthBurst,
  refillPerSecond: 1000 / SocketLimits.firstAuthIntervalMs,
} as const satisfies BucketPolicy;

/** GET /rooms of a user: RestLimits' burst, then one per interval. */
export const RoomListPolicy = {
  capacity: RestLimits.roomListBurst,
  refillPerSecond: 1000 / RestLimits.roomListIntervalMs,
} as const satisfies BucketPolicy;
