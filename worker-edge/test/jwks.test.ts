import { exportJWK, generateKeyPair, SignJWT, type JWK } from "jose";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { AuthError, JWKS_REFETCH_COOLDOWN_MS, verifyAppToken } from "../src/auth.js";
import * as clock from "../src/clock.js";
import { KEY_SET_MAX_AGE_MS } from "../src/jwks.js";
import type { EdgeConfig } from "../src/config.js";
import { TEST_AUDIENCE, TEST_ISSUER } from "./support/bindings.js";

/**
 * The remote key set (JWT_PUBLIC_JWK_URL) behind a fetch this test controls: key rotation, an unknown kid,
 * and an identity provider that is slow or down. Each test uses its own URL, as the key set is cached per isolate.
 */
let urlCounter = 0;
afterEach(() => vi.restoreAllMocks());

async function signingKey(kid: string) {
  const { publicKey, privateKey } = await generateKeyPair("RS256", { extractable: true });
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid, alg: "RS256", use: "sig" };
  // Issued at the edge's clock, which a test may have moved; valid for an hour.
  const sign = (sub = "200000000000000001") => {
    const now = Math.floor(clock.now() / 1000);
    return new SignJWT({})
      .setProtectedHeader({ alg: "RS256", kid })
      .setSubject(sub)
      .setIssuer(TEST_ISSUER)
      .setAudience(TEST_AUDIENCE)
      .setIssuedAt(now)
      .setExpirationTime(now + 3_600)
      .sign(privateKey);
  };
  return { jwk, sign };
}

function remoteConfig(): EdgeConfig {
  return { JWT_ISSUER: TEST_ISSUER, JWT_AUDIENCE: TEST_AUDIENCE, JWT_PUBLIC_JWK_URL: `https://idp.test/jwks/${++urlCounter}` } as EdgeConfig;
}

/** Serves `keys()` at every JWKS URL and counts the fetches; `reply` can replace the answer. Aborts like fetch. */
function serveJwks(keys: () => JWK[], reply?: () => Promise<Response>) {
  const fetches = { count: 0 };
  const original = globalThis.fetch;
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    if (!request.url.startsWith("https://idp.test/jwks/")) return original(input, init);
    fetches.count++;
    const aborted = new Promise<never>((_, reject) => {
      const signal = init?.signal ?? request.signal;
      signal?.addEventListener("abort", () => reject(signal.reason ?? new Error("aborted")));
    });
    return Promise.race([reply ? reply() : Response.json({ keys: keys() }), aborted]);
  });
  return fetches;
}

describe("a remote JWKS", () => {
  it("fetches the key set once, then again when a token names a new kid after the cooldown (rotation)", { timeout: 15_000 }, async () => {
    const first = await signingKey("key-1");
    const second = await signingKey("key-2");
    let published = [first.jwk];
    const fetches = serveJwks(() => published);
    const config = remoteConfig();

    await verifyAppToken(await first.sign(), config);
    await verifyAppToken(await first.sign(), config);
    expect(fetches.count).toBe(1);

    published = [first.jwk, second.jwk]; // the IdP publishes its new key, then signs with it
    const token = await second.sign();
    // Inside the cooldown after the last fetch the new kid is not fetched yet; after it, it is, once.
    await expect(verifyAppToken(token, config)).rejects.toThrow("token signed by an unknown key");
    await new Promise((resolve) => setTimeout(resolve, JWKS_REFETCH_COOLDOWN_MS + 100));
    await expect(verifyAppToken(token, config)).resolves.toMatchObject({ userId: "200000000000000001" });
    expect(fetches.count).toBe(2);
    await verifyAppToken(await first.sign(), config); // the old key still verifies until it is withdrawn
    expect(fetches.count).toBe(2);
  });

  it("verifies every token of a newly published key that arrives while the key set is being refetched for it", { timeout: 15_000 }, async () => {
    const first = await signingKey("key-1");
    const second = await signingKey("key-2");
    let published = [first.jwk];
    let held: Promise<void> = Promise.resolve();
    let answer = () => {};
    const fetches = serveJwks(
      () => published,
      async () => {
        await held;
        return Response.json({ keys: published });
      },
    );
    const config = remoteConfig();
    await verifyAppToken(await first.sign(), config);
    await new Promise((resolve) => setTimeout(resolve, JWKS_REFETCH_COOLDOWN_MS + 100));

    published = [first.jwk, second.jwk]; // a rotation: many clients come with tokens of the new key at once
    held = new Promise((resolve) => (answer = resolve));
    const tokens = await Promise.all(["200000000000000011", "200000000000000012", "200000000000000013"].map((sub) => second.sign(sub)));
    const checks = tokens.map((token) => verifyAppToken(token, config).then((user) => user.userId, (error: Error) => error.message));
    await vi.waitFor(() => expect(fetches.count).toBe(2));
    await new Promise((resolve) => setTimeout(resolve, 50)); // every check has asked for its key by now
    answer(); // the identity provider answers the refetch after they have all arrived
    expect(await Promise.all(checks)).toEqual(["200000000000000011", "200000000000000012", "200000000000000013"]);
    expect(fetches.count).toBe(2);
  });

  it("refuses a token for a kid the key set does not have, without refetching inside the cooldown", async () => {
    const known = await signingKey("known");
    const stranger = await signingKey("stranger");
    const fetches = serveJwks(() => [known.jwk]);
    const config = remoteConfig();
    await verifyAppToken(await known.sign(), config);
    await expect(verifyAppToken(await stranger.sign(), config)).rejects.toThrow(AuthError);
    const afterFirstMiss = fetches.count;
    for (let i = 0; i < 5; i++) await expect(verifyAppToken(await stranger.sign(), config)).rejects.toThrow(AuthError);
    expect(fetches.count).toBe(afterFirstMiss); // a flood of unknown kids does not hammer the IdP
  });

  it("fails closed when the key set is down", async () => {
    const key = await signingKey("key");
    serveJwks(() => [], async () => new Response("unavailable", { status: 503 }));
    await expect(verifyAppToken(await key.sign(), remoteConfig())).rejects.toThrow(AuthError);
  });

  it("fails closed within its timeout when the key set never answers", async () => {
    const key = await signingKey("key");
    serveJwks(() => [], () => new Promise<Response>(() => undefined));
    const started = Date.now();
    await expect(verifyAppToken(await key.sign(), remoteConfig())).rejects.toThrow(AuthError);
    expect(Date.now() - started).toBeLessThan(8_000);
  }, 12_000);
});


describe("withdrawing a signing key", () => {
  afterAll(() => clock.resetClock());
  const MINUTE = 60_000;
  it("documents a bound of 10 minutes", () => expect(KEY_SET_MAX_AGE_MS).toBe(10 * MINUTE));

  it("stops accepting every token signed with it within 10 minutes, tokens already verified included", async () => {
    const old = await signingKey("old");
    const next = await signingKey("next");
    let published = [old.jwk, next.jwk];
    serveJwks(() => published);
    const config = remoteConfig();
    const withdrawnAt = clock.now();
    await verifyAppToken(await next.sign(), config); // the key set is fetched now
    published = [next.jwk]; // and the identity provider withdraws "old" at once

    // Until the fetched key set is 10 minutes old, "old" still verifies: that is the documented bound.
    clock.advanceClock(KEY_SET_MAX_AGE_MS - 6_000);
    const verifiedLate = await old.sign("200000000000000002");
    await expect(verifyAppToken(verifiedLate, config)).resolves.toMatchObject({ userId: "200000000000000002" });

    // Past it, neither a new token nor the one verified a moment before the bound is accepted.
    clock.advanceClockTo(withdrawnAt + KEY_SET_MAX_AGE_MS + 1_000);
    await expect(verifyAppToken(await old.sign(), config)).rejects.toThrow("token signed by an unknown key");
    await expect(verifyAppToken(verifiedLate, config)).rejects.toThrow(AuthError);
    clock.advanceClockTo(withdrawnAt + KEY_SET_MAX_AGE_MS + 9.5 * MINUTE);
    await expect(verifyAppToken(verifiedLate, config)).rejects.toThrow(AuthError);
    await expect(verifyAppToken(await next.sign(), config)).resolves.toMatchObject({ userId: "200000000000000001" });
  });

  it("drops tokens verified with a key as soon as a refetched key set lacks it", async () => {
    const old = await signingKey("rotated-out");
    const next = await signingKey("rotated-in");
    let published = [old.jwk];
    const fetches = serveJwks(() => published);
    const config = remoteConfig();
    const cached = await old.sign();
    await verifyAppToken(cached, config);
    published = [next.jwk]; // withdrawn, and a new key that a token names: the key set is fetched again
    clock.advanceClock(JWKS_REFETCH_COOLDOWN_MS + 1);
    await verifyAppToken(await next.sign(), config);
    expect(fetches.count).toBe(2);
    await expect(verifyAppToken(cached, config)).rejects.toThrow(AuthError);
  });
});
