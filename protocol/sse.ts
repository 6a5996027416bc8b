/** The server-sent events transport's contract, zod-free so the browser SDK shares it at no size cost. */
import { CloseCode } from "./codes.js";

/** Response headers that carry what the socket's auth.ok ack carries: the stream has no ack event. */
export const SseHeader = {
  guildId: "X-Guild-Id",
  seq: "X-Seq",
} as const;

/** A comment line this often keeps proxies from closing an idle stream (most cut at 30–100 s of silence). */
export const SSE_HEARTBEAT_MS = 20_000;

/** The event name of the last frame of a stream the hub ended; data `{code, reason}` with a socket close code. */
export const SSE_ERROR_EVENT = "error";

/** Query parameters that would put a token in a URL (and so in logs and histories): refused with 400. */
export const URL_TOKEN_PARAMS = ["token", "access_token", "accesstoken", "auth", "authorization", "jwt", "bearer"] as const;

/**
 * A refusal before the stream starts is an HTTP error; the socket would have been closed with the matching code.
 * The SDK maps a status back to its code, so both transports take the same path (retry, unauthorized, forbidden).
 */
const STATUS_BY_CLOSE_CODE: ReadonlyMap<number, number> = new Map([
  [CloseCode.unauthorized, 401],
  [CloseCode.guildNotAllowed, 403],
  [CloseCode.tooMany, 429],
  [CloseCode.badMessage, 400],
  [CloseCode.tooLarge, 400],
  [CloseCode.overloaded, 503],
  [CloseCode.serviceRestart, 503],
]);

export function statusForCloseCode(code: number): number {
  return STATUS_BY_CLOSE_CODE.get(code) ?? 503;
}

/** The close code a refused stream request stands for; 1011 (server error) for anything unexpected. */
export function closeCodeForStatus(status: number): number {
  if (status === 401) return CloseCode.unauthorized;
  if (status === 403) return CloseCode.guildNotAllowed;
  if (status === 429) return CloseCode.tooMany;
  if (status === 400 || status === 413) return CloseCode.badMessage;
  return 1011;
}
