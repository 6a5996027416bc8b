import { createLocalJWKSet, errors, type FlattenedJWSInput, type JSONWebKeySet, type JWSHeaderParameters } from "jose";
import * as clock from "./clock.js";

/**
 * How long a fetched key set is trusted, and so the bound within which a key the identity provider withdraws
 * stops verifying: tokens signed with it, and tokens already verified with it, are refused at the latest this
 * long after the withdrawal.
 */
export const KEY_SET_MAX_AGE_MS = 10 * 60_000;
/** How soon a token naming an unknown kid may refetch the JWKS again: short for rotations, long enough for floods. */
export const JWKS_REFETCH_COOLDOWN_MS = 5_000;
const JWKS_TIMEOUT_MS = 5_000;

/** One fetch of the key set. */
export interface FetchedKeySet {
  readonly fetchedAt: number;
  readonly kids: ReadonlySet<string>;
  readonly select: ReturnType<typeof createLocalJWKSet>;
}

/**
 * A remote JWKS (JWT_PUBLIC_JWK_URL), cached per isolate by the edge's clock: fetched on first use, again once it
 * is KEY_SET_MAX_AGE_MS old (if that fetch fails, verification fails closed: no key outlives the bound), and again
 * when a token names a kid it lacks (a rotation), at most once per cooldown; tokens naming a kid it lacks while a
 * fetch is under way wait for that fetch. A JWKS that is slow or down fails closed after the timeout.
 */
export class RemoteKeySet {
  private current: FetchedKeySet | undefined;
  private lastFetchAt = -Infinity;
  private fetching: Promise<FetchedKeySet> | undefined;

  constructor(private readonly url: string) {}

  /** The key for a token's header, with the key set it was found in. */
  async keyFor(header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<{ key: CryptoKey; keySet: FetchedKeySet }> {
    let keySet = this.current;
    if (!keySet || clock.now() - keySet.fetchedAt >= KEY_SET_MAX_AGE_MS) keySet = await this.refresh();
    try {
      return { key: (await keySet.select(header, token)) as CryptoKey, keySet };
    } catch (error) {
      if (!(error instanceof errors.JWKSNoMatchingKey)) throw error;
      // A fetch under way (a rotation's first token started it) may bring the key: wait for it, whatever the cooldown.
      if (this.fetching) keySet = await this.fetching;
      else if (clock.now() - this.lastFetchAt >= JWKS_REFETCH_COOLDOWN_MS) keySet = await this.refresh();
      else throw error;
      return { key: (await keySet.select(header, token)) as CryptoKey, keySet };
    }
  }

  /** Whether the newest key set fetched lacks `kid`: the identity provider withdrew it. */
  withdrew(kid: string): boolean {
    return this.current !== undefined && !this.current.kids.has(kid);
  }

  private refresh(): Promise<FetchedKeySet> {
    this.fetching ??= this.fetchKeySet().finally(() => (this.fetching = undefined));
    return this.fetching;
  }

  private async fetchKeySet(): Promise<FetchedKeySet> {
    this.lastFetchAt = clock.now();
    // A timer we clear, not AbortSignal.timeout: a pending timer would keep a guild's object awake for its length.
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), JWKS_TIMEOUT_MS);
    let jwks: JSONWebKeySet;
    try {
      const response = await fetch(this.url, { headers: { Accept: "application/json" }, signal: abort.signal });
      if (!response.ok) throw new errors.JOSEError(`the JWKS answered HTTP ${response.status}`);
      jwks = (await response.json()) as JSONWebKeySet;
    } catch (error) {
      if (error instanceof errors.JOSEError) throw error;
      throw new errors.JOSEError("the JWKS could not be fetched");
    } finally {
      clearTimeout(timer);
    }
    const select = createLocalJWKSet(jwks); // validates the shape
    const kids = new Set(jwks.keys.flatMap((key) => (typeof key.kid === "string" ? [key.kid] : [])));
    this.current = { fetchedAt: clock.now(), kids, select };
    return this.current;
  }
}
