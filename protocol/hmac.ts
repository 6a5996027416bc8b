/**
 * HMAC-SHA256 over "<unix seconds>.<raw body>", the signature the gateway puts on every internal POST.
 * WebCrypto only, so it runs unchanged in Workers, Node and browsers. The format's pieces (what is signed, how the
 * MAC is written, the headers) are exported so that a Node-only signer (gateway-node's, with node:crypto) writes
 * the same bytes.
 */
export const SIGNATURE_HEADER = "X-Hub-Signature";
export const TIMESTAMP_HEADER = "X-Hub-Timestamp";
/**
 * How far a request's timestamp may be from the hub's clock. Wide enough for a gateway host whose clock is a minute
 * off, plus latency: replays inside it are harmless, as the hub applies each event id once, fences writes by lease,
 * and renews a lease only for a request signed after the one that last renewed it (worker-edge/src/hub/lease.ts).
 */
export const MAX_CLOCK_SKEW_SECONDS = 300;

const encoder = new TextEncoder();

async function hmacKey(secret: string): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
}

/** The text the MAC covers (encoded as UTF-8). */
export function hubSignedText(timestamp: number, body: string): string {
  return `${timestamp}.${body}`;
}

const HEX_BYTES = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0"));

/** The signature header's value for a MAC: `sha256=` and its lowercase hex. */
export function hubSignatureValue(mac: ArrayBuffer | Uint8Array): string {
  let hex = "";
  for (const byte of mac instanceof Uint8Array ? mac : new Uint8Array(mac)) hex += HEX_BYTES[byte];
  return `sha256=${hex}`;
}

/** A request's timestamp: whole unix seconds. */
export function hubTimestamp(nowMs: number): number {
  return Math.floor(nowMs / 1000);
}

/** The headers of one signed internal POST, given its timestamp and signature. */
export function signedHubHeaders(timestamp: number, signature: string): Record<string, string> {
  return { "content-type": "application/json", [TIMESTAMP_HEADER]: String(timestamp), [SIGNATURE_HEADER]: signature };
}

export async function signHubBody(secret: string, timestamp: number, body: string): Promise<string> {
  return hubSignatureValue(await crypto.subtle.sign("HMAC", await hmacKey(secret), encoder.encode(hubSignedText(timestamp, body))));
}

/** Headers for one signed internal POST. */
export async function hubRequestHeaders(secret: string, body: string, nowMs = Date.now()): Promise<Record<string, string>> {
  const timestamp = hubTimestamp(nowMs);
  return signedHubHeaders(timestamp, await signHubBody(secret, timestamp, body));
}

/**
 * Compares two strings without an early exit, so timing reveals nothing about where they differ. It compares
 * UTF-16 code units, not an encoding of them, which would make distinct lone surrogates equal.
 */
export function timingSafeEqual(a: string, b: string): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    diff |= (a.charCodeAt(i) || 0) ^ (b.charCodeAt(i) || 0);
  }
  return diff === 0;
}

export type HubSignatureCheck = { ok: true } | { ok: false; reason: "missing" | "stale" | "bad_signature" };

/** The headers' shape and the timestamp window: checked before the body is read, so a stale request costs nothing. */
export function checkHubHeaders(
  timestampHeader: string | null,
  signatureHeader: string | null,
  nowMs = Date.now(),
): HubSignatureCheck {
  if (!timestampHeader || !signatureHeader || !/^\d{1,12}$/.test(timestampHeader)) return { ok: false, reason: "missing" };
  if (Math.abs(nowMs / 1000 - Number(timestampHeader)) > MAX_CLOCK_SKEW_SECONDS) return { ok: false, reason: "stale" };
  return { ok: true };
}

/**
 * Verifies a signed internal request. Several secrets may be given (the current one and, while rotating, the
 * previous one); each is checked in full, so timing does not tell which matched.
 */
export async function verifyHubSignature(
  secrets: string | readonly string[],
  timestampHeader: string | null,
  signatureHeader: string | null,
  body: string,
  nowMs = Date.now(),
): Promise<HubSignatureCheck> {
  const headers = checkHubHeaders(timestampHeader, signatureHeader, nowMs);
  if (!headers.ok) return headers;
  let matched = false;
  for (const secret of typeof secrets === "string" ? [secrets] : secrets) {
    const expected = await signHubBody(secret, Number(timestampHeader), body);
    matched = timingSafeEqual(expected, signatureHeader ?? "") || matched;
  }
  return matched ? { ok: true } : { ok: false, reason: "bad_signature" };
}
