import { AUTH_TIMEOUT_MS, ClientMessage, CloseCode, MAX_CLIENT_MESSAGE_BYTES, parseJson, type ClientAuth, type ClientRooms } from "../../../protocol/index.js";
import * as clock from "../clock.js";
import { refusedSocket } from "../placement.js";
import { clientAddress, pendingRefusal } from "./admission.js";
import type { SocketIndex } from "./socket-index.js";
import { connectionId } from "./sockets.js";

/**
 * A client socket's first steps, the same wherever it lands (the hub, or a relay): admitted to wait for its
 * first-message auth, then each message it sends read and checked.
 */

export type Admission = { refused: string; response: Response } | { refused?: undefined; response: Response; authDeadline: number };

/**
 * Accepts an upgrade to wait for its auth, counted (under its address too) in this same step, or completes it only
 * to say why it cannot wait: a browser cannot read an HTTP error on a WebSocket. The caller schedules the deadline.
 */
export function admitSocket(ctx: DurableObjectState, sockets: SocketIndex, headers: Headers): Admission {
  const address = clientAddress(headers);
  const refusal = pendingRefusal(sockets, address);
  if (refusal) return { refused: refusal, response: refusedSocket(CloseCode.tooMany, refusal) };
  const { 0: client, 1: server } = new WebSocketPair();
  ctx.acceptWebSocket(server);
  const authDeadline = clock.now() + AUTH_TIMEOUT_MS;
  // The address rides in the attachment, so the count survives hibernation.
  sockets.set(server, { phase: "pending", conn: connectionId(), authDeadline, ...(address ? { address } : {}) });
  return { response: new Response(null, { status: 101, webSocket: client }), authDeadline };
}

/** A client's message, or the close it earns. */
export type ClientRead = { message: ClientAuth | ClientRooms } | { close: { code: number; reason: string } };

const encoder = new TextEncoder();

/** Whether a message is over the limit in UTF-8 bytes: encoded only when its length leaves it open (at most 3 bytes a unit). */
function overLimit(raw: string | ArrayBuffer): boolean {
  if (typeof raw !== "string") return raw.byteLength > MAX_CLIENT_MESSAGE_BYTES;
  if (raw.length > MAX_CLIENT_MESSAGE_BYTES) return true;
  if (raw.length * 3 <= MAX_CLIENT_MESSAGE_BYTES) return false;
  return encoder.encode(raw).byteLength > MAX_CLIENT_MESSAGE_BYTES;
}

export function readClientMessage(raw: string | ArrayBuffer): ClientRead {
  if (overLimit(raw)) return { close: { code: CloseCode.tooLarge, reason: "message too large" } };
  if (typeof raw !== "string") return { close: { code: CloseCode.badMessage, reason: "binary messages are not supported" } };
  const message = ClientMessage.safeParse(parseJson(raw));
  if (!message.success) return { close: { code: CloseCode.badMessage, reason: "malformed message" } };
  return { message: message.data };
}
