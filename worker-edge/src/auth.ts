import { errors, importJWK, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from "jose";
import { z } from "zod";
import { MAX_TOKEN_BYTES } from "../../protocol/index.js";
import * as clock from "./clock.js";
import type { EdgeConfig } from "./config.js";
import { KEY_SET_MAX_AGE_MS, RemoteKeySet } from "./jwks.js";

export { JWKS_REFETCH_COOLDOWN_MS } from "./jwks.js";

/** Asymmetric algorithms only: `none` and HS* (which would let a public key act as a shared secret) never verify. */
export const ALLOWED_ALGORITHMS = ["RS256", "PS256", "ES256", "EdDSA"];
const CLOCK_TOLERANCE_SECONDS = 30;

export interface AppUser {
  userId: string;
  name?: string;
  roles: string[];
  guilds: string[];
  /** Token expiry, unix seconds. */
  expiresAt: number;
}

const AppClaims = z.object({
  sub: z.string().min(1).max(64),
  exp: z.number(),
  name: z.string().max(100).optional(),
  roles: z.array(z.string()).optional(),
  guilds: z.array(z.string()).optional(),
});

export class AuthError extends Error {}

// Cached per isolate, so the remote JWKS is fetched once and reused (see RemoteKeySet).
const remoteKeySets = new Map<string, RemoteKeySet>();
const inlineKeys = new Map<string, JWTVerifyGetKey>();

function remoteKeySet(url: string): RemoteKeySet {
  let keySet = remoteKeySets.get(url);
  if (!keySet) remoteKeySets.set(url, (keySet = new RemoteKeySet(url)));
  return keySet;
}

function inlineKey(raw: string): JWTVerifyGetKey {
  let key = inlineKeys.get(raw);
  if (!key) {
    // A public JWK as JSON: the configuration checked it (config.ts).
    const jwk = JSON.parse(raw) as Parameters<typeof importJWK>[0];
    const imported = importJWK(jwk, jwk.alg ?? "RS256");
    // Like a key set: a token naming another key id is not this key's, even if the signature would verify.
    key = async (header) => {
      if (jwk.kid !== undefined && header.kid !== jwk.kid) throw new errors.JWKSNoMatchingKey();
      return imported;
    };
    inlineKeys.set(raw, key);
  }
  return key;
}

/**
 * Tokens this isolate verified, by SHA-256 of the token, per configuration: a reconnect storm or a user's many
 * tabs present the same token again and again, and a signature check is the costliest step of a connect. An
 * entry serves until the token expires and no longer than the key set it was verified against is trusted
 * (KEY_SET_MAX_AGE_MS from its fetch), and not at all once a key set fetched since lacks its key: a withdrawn key
 * stops verifying within the bound, cached tokens included. Failures are never cached. Bounded: the oldest
 * entry goes first.
 */
export const VerifiedTokenCache = { maxEntries: 10_000 } as const;

interface Verified {
  user: AppUser;
  until: number;
  /** The key set and key id it was verified with, for a remote key set. */
  keySet?: RemoteKeySet;
  kid?: string;
}

const verifiedTokens = new WeakMap<EdgeConfig, Map<string, Verified>>();

/** Verifies an app JWT: signature, algorithm allow-list, issuer, audience, expiry and subject. */
export async function verifyAppToken(token: string, config: EdgeConfig): Promise<AppUser> {
  if (new TextEncoder().encode(token).byteLength > MAX_TOKEN_BYTES) throw new AuthError("token too large");
  let cache = verifiedTokens.get(config);
  if (!cache) verifiedTokens.set(config, (cache = new Map()));
  const digest = await tokenDigest(token);
  const hit = cache.get(digest);
  if (hit && hit.until > clock.now() && !(hit.kid !== undefined && hit.keySet?.withdrew(hit.kid))) return hit.user;
  if (hit) cache.delete(digest);
  const verified = await verifyUncached(token, config);
  if (cache.size >= VerifiedTokenCache.maxEntries) cache.delete(cache.keys().next().value!);
  cache.set(digest, verified);
  return verified.user;
}

async function tokenDigest(token: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token));
  return btoa(String.fromCharCode(...new Uint8Array(digest)));
}

async function verifyUncached(token: string, config: EdgeConfig): Promise<Verified> {
  let payload: JWTPayload;
  let kid: string | undefined;
  // When the key came from the remote key set: the fetch it came from bounds how long the result is trusted.
  let trustedUntil = clock.now() + KEY_SET_MAX_AGE_MS;
  const keySet = config.JWT_PUBLIC_JWK_URL ? remoteKeySet(config.JWT_PUBLIC_JWK_URL) : undefined;
  try {
    const key: JWTVerifyGetKey = keySet
      ? async (header, input) => {
          const found = await keySet.keyFor(header, input);
          trustedUntil = found.keySet.fetchedAt + KEY_SET_MAX_AGE_MS;
          return found.key;
        }
      : inlineKey(config.JWT_PUBLIC_JWK ?? "");
    const options = {
      issuer: config.JWT_ISSUER,
      audience: config.JWT_AUDIENCE,
      algorithms: ALLOWED_ALGORITHMS,
      clockTolerance: CLOCK_TOLERANCE_SECONDS,
      requiredClaims: ["exp", "sub", "iss", "aud"],
      currentDate: new Date(clock.now()),
    };
    let header;
    ({ payload, protectedHeader: header } = await jwtVerify(token, key, options));
    kid = header.kid;
  } catch (error) {
    throw new AuthError(describe(error));
  }
  const claims = AppClaims.safeParse(payload);
  if (!claims.success) throw new AuthError("token claims are malformed");
  // The clock tolerance is for nbf/iat skew; expiry is strict, so no token is accepted only to be cut at once.
  if (claims.data.exp * 1000 <= clock.now()) throw new AuthError("token expired");
  const user = {
    userId: claims.data.sub,
    name: claims.data.name,
    roles: claims.data.roles ?? [],
    guilds: claims.data.guilds ?? [],
    expiresAt: claims.data.exp,
  };
  return { user, until: Math.min(user.expiresAt * 1000, trustedUntil), keySet, kid };
}

function describe(error: unknown): string {
  if (error instanceof errors.JWTExpired) return "token expired";
  if (error instanceof errors.JWTClaimValidationFailed) return `token claim rejected: ${error.claim}`;
  if (error instanceof errors.JOSEAlgNotAllowed) return "token algorithm not allowed";
  if (error instanceof errors.JWSSignatureVerificationFailed) return "token signature invalid";
  if (error instanceof errors.JWKSNoMatchingKey) return "token signed by an unknown key";
  if (error instanceof errors.JOSEError) return "token invalid";
  return "token could not be verified";
}

export function bearerToken(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)$/i.exec(header ?? "");
  return match?.[1];
}
