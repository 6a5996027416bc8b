/** The server-sent events transport's contract, zod-free so the browser SDK shares it at no size cost. */
import { CloseCode } from "./codes.js";

/** Response headers that carry what the socket's auth.ok ack carries: the stream has no ack event. */
export const SseHeader = {
  guildId: "X-Guild-Id",
  seq: "X-Seq",
} as const;

/** A comment line this often keeps proxies from closing an idle stream (most cut at 30–100 s of silence). */
export const SSE_HEARTBEAT_MS = 20_000;

/**
 * The event name of a stream's last frame, data `{code, reason}` with a socket close code. Not `error`: an
 * EventSource fires `error` for its own connection errors, and a listener could not tell the two apart.
 */
export const SSE_END_EVENT = "end";

/**
 * The `retry:` (reconnection time, ms) a stream starts with: the base plus a random jitter drawn per stream, so
 * the clients of a restarted Worker come back spread over the jitter window, not in step. A stream refused for
 * a reason that takes time to clear (the user's socket cap, an expired or missing credential, a hub that is not
 * answering) is answered as an event stream with the refused advice and an `end` event instead of an HTTP error,
 * which an EventSource would treat as final.
 */
export const SSE_RETRY = {
  baseMs: 1_000,
  jitterMs: 4_000,
  refusedBaseMs: 10_000,
  refusedJitterMs: 20_000,
} as const;

/** The only query parameters of GET /events: any other is a 400 naming it, so no token can ride in a URL. */
export const SSE_QUERY_PARAMS = ["since", "rooms", "guildId"] as const;

/**
 * The close code an HTTP refusal of a stream request stands for, so the SDK takes the socket's path (retry,
 * unauthorized, forbidden); 1011 (server error) for anything unexpected.
 */
export function closeCodeForStatus(status: number): number {
  if (status === 401) return CloseCode.unauthorized;
  if (status === 403) return CloseCode.guildNotAllowed;
  if (status === 429) return CloseCode.tooMany;
  if (status === 400 || status === 413) return CloseCode.badMessage;
  return 1011;
}
