import { SSE_RETRY } from "../../../protocol/index.js";
import { log } from "../log.js";
import { sseEnd, sseRetry } from "./frames.js";

/** The headers of every event stream, admitted or refused in-stream. */
export const STREAM_HEADERS = {
  "Content-Type": "text/event-stream; charset=utf-8",
  "Cache-Control": "no-cache, no-transform",
  // Tells nginx-style proxies not to buffer the stream.
  "X-Accel-Buffering": "no",
} as const;

/** A stream refused for a reason that can clear by itself, with the socket close code that says which. */
export interface StreamRefusal {
  code: number;
  reason: string;
}

/** The `retry:` advice (ms) for an admitted stream, or for a refused one: base plus jitter drawn per stream (SSE_RETRY). */
export function retryAdvice(kind: "admitted" | "refused", random: () => number = Math.random): number {
  const [base, jitter] = kind === "admitted" ? [SSE_RETRY.baseMs, SSE_RETRY.jitterMs] : [SSE_RETRY.refusedBaseMs, SSE_RETRY.refusedJitterMs];
  return base + Math.floor(random() * jitter);
}

/**
 * A refusal that waiting can clear, as a whole event stream: the refused retry advice, then the `end` event. An
 * EventSource treats any HTTP error as final; this way it reconnects after the advised time instead, and the
 * SDK reads the same close code the socket would have got.
 */
export function refusedStream(refusal: StreamRefusal, requestId: string): Response {
  log("info", "edge event stream refused", { requestId, code: refusal.code, reason: refusal.reason });
  const retry = sseRetry(retryAdvice("refused"));
  const end = sseEnd(refusal);
  const body = new Uint8Array(retry.byteLength + end.byteLength);
  body.set(retry);
  body.set(end, retry.byteLength);
  return new Response(body, { headers: STREAM_HEADERS });
}
