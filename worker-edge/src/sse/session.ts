import { ApiError } from "../errors.js";

/**
 * The stream cookie: what a browser's native EventSource, which cannot send an Authorization header, presents
 * instead. It holds the app's own token, so GET /events verifies it like a bearer token and it lapses with it.
 * `__Secure-`: only a secure origin can set or overwrite it. HttpOnly: page scripts never read it. SameSite=Strict:
 * no cross-site request carries it, and the app's own requests are same-site. Host-only (no Domain) and a Path
 * per mount of the stream: no other route receives it.
 */
export const STREAM_COOKIE = "__Secure-scr-events";
const STREAM_PATHS = ["/events", "/api/events"] as const;
/** Browsers keep a cookie's name and value up to 4096 bytes together and drop a larger one without a word. */
const MAX_COOKIE_BYTES = 4096;

function cookies(value: string, maxAgeSeconds: number): string[] {
  return STREAM_PATHS.map((path) => `${STREAM_COOKIE}=${value}; Path=${path}; Max-Age=${maxAgeSeconds}; HttpOnly; Secure; SameSite=Strict`);
}

/** The Set-Cookie values that hold `token` until it expires (`expiresAt`, unix seconds). */
export function sessionCookies(token: string, expiresAt: number): string[] {
  if (new TextEncoder().encode(`${STREAM_COOKIE}=${token}`).byteLength > MAX_COOKIE_BYTES) {
    throw new ApiError(400, "invalid_input", `token too large for the stream cookie (over ${MAX_COOKIE_BYTES} bytes); send it as Authorization: Bearer`);
  }
  return cookies(token, Math.max(0, expiresAt - Math.floor(Date.now() / 1000)));
}

/** The Set-Cookie values that remove the cookie. */
export function clearedCookies(): string[] {
  return cookies("", 0);
}

/** The token in the stream cookie of a Cookie header, if any (the first one: the most specific path comes first). */
export function streamCookieToken(header: string | null): string | undefined {
  for (const pair of (header ?? "").split(";")) {
    const separator = pair.indexOf("=");
    if (separator < 0 || pair.slice(0, separator).trim() !== STREAM_COOKIE) continue;
    const value = pair.slice(separator + 1).trim();
    return value === "" ? undefined : value;
  }
  return undefined;
}
