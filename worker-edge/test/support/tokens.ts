import { env } from "cloudflare:workers";
import { SignJWT, importJWK, type JWK } from "jose";
import * as clock from "../../src/clock.js";
import { TEST_AUDIENCE, TEST_ISSUER } from "./bindings.js";

const testEnv = env as Env & { TEST_SIGNING_JWK: string; TEST_FOREIGN_JWK: string };

export interface TokenOptions {
  sub?: string;
  name?: string;
  roles?: string[];
  guilds?: string[];
  issuer?: string;
  audience?: string;
  /** Seconds from now; negative for an already-expired token. */
  expiresIn?: number;
  key?: "trusted" | "foreign";
}

/** Mints an RS256 app JWT the way the identity provider would, issued at the edge's clock (tests may move it). */
export async function mintToken(options: TokenOptions = {}): Promise<string> {
  const jwk = JSON.parse(options.key === "foreign" ? testEnv.TEST_FOREIGN_JWK : testEnv.TEST_SIGNING_JWK) as JWK;
  const key = await importJWK(jwk, "RS256");
  const now = Math.floor(clock.now() / 1000);
  const claims: Record<string, unknown> = { name: options.name ?? "Alice" };
  if (options.roles) claims.roles = options.roles;
  if (options.guilds) claims.guilds = options.guilds;
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "RS256", kid: "test-key" })
    .setSubject(options.sub ?? "200000000000000001")
    .setIssuer(options.issuer ?? TEST_ISSUER)
    .setAudience(options.audience ?? TEST_AUDIENCE)
    .setIssuedAt(now)
    .setExpirationTime(now + (options.expiresIn ?? 600))
    .sign(key);
}

/** An unsigned token (`alg: none`) carrying otherwise valid claims. */
export function unsignedToken(): string {
  const encode = (value: object) => btoa(JSON.stringify(value)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
  const now = Math.floor(Date.now() / 1000);
  const payload = { sub: "200000000000000001", iss: TEST_ISSUER, aud: TEST_AUDIENCE, iat: now, exp: now + 600 };
  return `${encode({ alg: "none", typ: "JWT" })}.${encode(payload)}.`;
}

/** An HS256 token whose "secret" is the public key: the classic algorithm-confusion attack. */
export async function publicKeyAsHmacToken(): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const secret = new TextEncoder().encode((env as Env).JWT_PUBLIC_JWK);
  return new SignJWT({})
    .setProtectedHeader({ alg: "HS256" })
    .setSubject("200000000000000001")
    .setIssuer(TEST_ISSUER)
    .setAudience(TEST_AUDIENCE)
    .setIssuedAt(now)
    .setExpirationTime(now + 600)
    .sign(secret);
}
