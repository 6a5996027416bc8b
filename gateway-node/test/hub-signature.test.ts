import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { hubRequestHeaders as webCryptoHeaders, SIGNATURE_HEADER, TIMESTAMP_HEADER, verifyHubSignature } from "../../protocol/hmac.js";
import { hubRequestHeaders } from "../src/hub-signature.js";

describe("the gateway's request signature (node:crypto)", () => {
  it("writes the same headers as the shared WebCrypto signer, and the hub's check accepts them", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ minLength: 16, maxLength: 64 }),
        // Any body, non-ASCII and lone surrogates included (both encode them to UTF-8 the same way).
        fc.string({ unit: "binary", maxLength: 2_000 }),
        fc.integer({ min: 0, max: 4_102_444_800_000 }),
        async (secret, body, nowMs) => {
          const headers = hubRequestHeaders(secret, body, nowMs);
          expect(headers).toEqual(await webCryptoHeaders(secret, body, nowMs));
          const check = await verifyHubSignature(secret, headers[TIMESTAMP_HEADER]!, headers[SIGNATURE_HEADER]!, body, nowMs);
          expect(check).toEqual({ ok: true });
        },
      ),
      { numRuns: 200 },
    );
  });

  it("signs the body it is given: another body or secret does not verify", async () => {
    const nowMs = 1_800_000_000_000;
    const headers = hubRequestHeaders("gateway-secret-0123456789", '{"events":[]}', nowMs);
    const verify = (secret: string, body: string) => verifyHubSignature(secret, headers[TIMESTAMP_HEADER]!, headers[SIGNATURE_HEADER]!, body, nowMs);
    expect(await verify("gateway-secret-0123456789", '{"events":[] }')).toEqual({ ok: false, reason: "bad_signature" });
    expect(await verify("gateway-secret-9876543210", '{"events":[]}')).toEqual({ ok: false, reason: "bad_signature" });
  });
});
