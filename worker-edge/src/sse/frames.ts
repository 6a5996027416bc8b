/** Server-sent events framing (WHATWG HTML "Server-sent events"): fields, one per line, a blank line ends an event. */

import { SSE_END_EVENT } from "../../../protocol/index.js";

const encoder = new TextEncoder();

export interface SseEvent {
  id?: string;
  event: string;
  data: string;
}

/** Event names and ids are the hub's own, but a line break in one would forge fields: refuse rather than frame. */
const SAFE_FIELD = /^[\x21-\x7e]{1,64}$/;

export function sseEvent({ id, event, data }: SseEvent): Uint8Array {
  if (!SAFE_FIELD.test(event) || (id !== undefined && !SAFE_FIELD.test(id))) throw new Error("unsafe SSE field");
  // Every line of data gets its own `data:` field; a reader joins them back with "\n".
  const lines = data.split(/\r\n|\r|\n/).map((line) => `data: ${line}\n`).join("");
  return encoder.encode(`${id === undefined ? "" : `id: ${id}\n`}event: ${event}\n${lines}\n`);
}

/** The reconnection time a reader waits after the stream ends, in ms: a field of its own, outside any event. */
export function sseRetry(ms: number): Uint8Array {
  return encoder.encode(`retry: ${Math.max(0, Math.round(ms))}\n\n`);
}

/** A stream's last event: the socket close code it ended with, and why (JSON keeps the reason on one line). */
export function sseEnd(close: { code: number; reason: string }): Uint8Array {
  return sseEvent({ event: SSE_END_EVENT, data: JSON.stringify({ code: close.code, reason: close.reason }) });
}

/** A comment: ignored by readers, it only keeps the connection busy. */
export function sseComment(text: string): Uint8Array {
  return encoder.encode(`: ${text.replace(/[\r\n]/g, " ")}\n\n`);
}

/**
 * The frame for one hub message: snapshots and events carry their seq as the id (what Last-Event-ID resumes
 * from); anything else (a pong, a later ack) is not part of the stream.
 */
export function frameHubMessage(raw: string): Uint8Array | undefined {
  let message: unknown;
  try {
    message = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (typeof message !== "object" || message === null) return undefined;
  const { type, event, seq } = message as { type?: unknown; event?: unknown; seq?: unknown };
  if (typeof seq !== "number" || !Number.isSafeInteger(seq)) return undefined;
  if (type === "snapshot") return sseEvent({ id: String(seq), event: "snapshot", data: raw });
  if (type === "event" && typeof event === "string") return sseEvent({ id: String(seq), event, data: raw });
  return undefined;
}
