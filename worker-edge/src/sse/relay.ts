import {
  AUTH_TIMEOUT_MS,
  CloseCode,
  SSE_HEARTBEAT_MS,
  SseHeader,
  type AuthOkMessage,
  type ClientAuth,
  type ErrorCode,
} from "../../../protocol/index.js";
import { ApiError, type ErrorStatus } from "../errors.js";
import { CLIENT_ADDRESS_HEADER } from "../hub/admission.js";
import { closeSocket } from "../hub/sockets.js";
import { errorFields, log } from "../log.js";
import { frameHubMessage, sseComment, sseEnd, sseRetry } from "./frames.js";
import type { StreamRequest } from "./request.js";
import { refusedStream, retryAdvice, STREAM_HEADERS, type StreamRefusal } from "./response.js";

/** The stream's own buffer before its queue counts as backed up (bytes). */
const HIGH_WATER_MARK = 64 * 1024;
/**
 * Bytes queued in the Worker for a client that does not read (past what the network path buffers): past this it
 * is shed with 1013, like a socket the hub cannot send to. Above a large guild's snapshot, so one is never shed
 * for being sent it.
 */
const QUEUE_LIMIT_BYTES = 1024 * 1024;
/**
 * A stream with bytes queued of which none were taken for this long is shed with 1013: a client that stopped
 * reading, once the network path's buffers are full. A slow reader keeps taking bytes and is not affected.
 */
const STALL_LIMIT_MS = 10_000;
/** The hub answers auth in milliseconds; this only bounds a hub that never does. */
const ACK_TIMEOUT_MS = AUTH_TIMEOUT_MS + 5_000;
/**
 * A stream silent this long gets an empty comment. Where nothing reports that the client left (a clean close on
 * HTTP/1.1, a proxy in front such as wrangler dev's), that write is how the Worker learns it: the peer answers
 * it with a reset, or it fails. So this bounds how long a departed client holds its hub socket, for 4 bytes.
 */
const DEPARTURE_PROBE_MS = 2_000;

/** Hub refusals that no retry can fix, answered as HTTP errors; every other refusal is answered in-stream. */
const FINAL_REFUSALS: ReadonlyMap<number, readonly [ErrorStatus, ErrorCode]> = new Map([
  [CloseCode.guildNotAllowed, [403, "forbidden"]],
  [CloseCode.badMessage, [400, "invalid_input"]],
  [CloseCode.tooLarge, [400, "invalid_input"]],
]);

export interface RelayTarget {
  hub: { fetch(request: Request): Promise<Response> };
  guildId: string;
  token: string;
  /** The client's address as Cloudflare gave it, for the hub's waiting-socket bound (hub/admission.ts). */
  clientAddress: string | undefined;
  requestId: string;
  /** The client's request signal: aborts when the client goes away (compatibility flag enable_request_signal). */
  clientGone: AbortSignal;
}

/**
 * Serves a server-sent events stream by relaying a WebSocket this Worker opens to the guild's hub. The hub sees an
 * ordinary client socket (first-message auth, socket caps, expiry close, auto-answered pings), so it stays
 * hibernatable; this invocation stays open for the stream's lifetime instead. A refusal before the hub's ack is
 * answered in-stream (or as an HTTP error when final); a close after it becomes a last `end` event.
 */
export async function relayHubStream(target: RelayTarget, request: StreamRequest): Promise<Response> {
  let upgrade: Response;
  const headers: Record<string, string> = { Upgrade: "websocket" };
  if (target.clientAddress !== undefined) headers[CLIENT_ADDRESS_HEADER] = target.clientAddress;
  try {
    upgrade = await target.hub.fetch(new Request(`https://guild-hub/ws?guildId=${encodeURIComponent(target.guildId)}`, { headers }));
  } catch (error) {
    log("warn", "edge event stream: hub unreachable", { requestId: target.requestId, guildId: target.guildId, ...errorFields(error) });
    return refusedStream({ code: 1011, reason: "realtime hub unavailable" }, target.requestId);
  }
  const ws = upgrade.webSocket;
  if (!ws) return refusedStream({ code: 1011, reason: "realtime hub unavailable" }, target.requestId);
  ws.accept();
  const relay = new HubRelay(ws, target);
  const auth = { type: "auth", token: target.token, since: request.since, rooms: request.rooms } satisfies ClientAuth;
  ws.send(JSON.stringify(auth));
  const outcome = await relay.outcome;
  if (outcome.type !== "ack") return refusal(outcome, target.requestId);
  return new Response(relay.readable, {
    headers: { ...STREAM_HEADERS, [SseHeader.guildId]: outcome.guildId, [SseHeader.seq]: String(outcome.seq) },
  });
}

type HubClose = StreamRefusal & { type: "close" };

class HubRelay {
  readonly readable: ReadableStream<Uint8Array>;
  /** The hub's ack, or how the hub (or the relay) refused the stream before it. */
  readonly outcome: Promise<AuthOkMessage | HubClose>;
  private controller!: ReadableStreamDefaultController<Uint8Array>;
  private settle!: (outcome: AuthOkMessage | HubClose) => void;
  private phase: "waiting" | "streaming" | "ended" = "waiting";
  private readonly timers: Array<ReturnType<typeof setInterval>> = [];
  private readonly ackTimer: ReturnType<typeof setTimeout>;
  /** Whether the hub said anything (a pong at least) since the last heartbeat's ping. */
  private heard = true;
  private lastWriteAt = Date.now();
  /** Bytes enqueued so far, and what the reader had taken (and when) at the last check: progress, or a stall. */
  private enqueuedBytes = 0;
  private taken = { bytes: 0, at: Date.now() };
  private readonly openedAt = Date.now();

  constructor(
    private readonly ws: WebSocket,
    private readonly target: RelayTarget,
  ) {
    this.readable = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.controller = controller;
        },
        cancel: () => this.end(undefined),
      },
      { highWaterMark: HIGH_WATER_MARK, size: (chunk) => chunk.byteLength },
    );
    this.outcome = new Promise((resolve) => (this.settle = resolve));
    this.ackTimer = setTimeout(() => this.refuse({ code: CloseCode.serviceRestart, reason: "the hub did not answer" }), ACK_TIMEOUT_MS);
    ws.addEventListener("message", (event) => this.onHubMessage(typeof event.data === "string" ? event.data : ""));
    ws.addEventListener("close", (event) => this.onHubClose({ code: event.code, reason: event.reason }));
    ws.addEventListener("error", () => this.onHubClose({ code: 1011, reason: "hub connection failed" }));
    const { clientGone } = target;
    if (clientGone.aborted) this.onClientGone();
    else clientGone.addEventListener("abort", () => this.onClientGone());
  }

  private onHubMessage(data: string): void {
    this.heard = true;
    if (this.phase === "waiting") {
      const ack = parseAck(data);
      if (ack) this.start(ack);
      return;
    }
    if (this.phase !== "streaming") return;
    let frame: Uint8Array | undefined;
    try {
      frame = frameHubMessage(data);
    } catch {
      frame = undefined; // a field that cannot be framed safely is dropped; the seq gap makes the client resume
    }
    if (frame) this.enqueue(frame);
  }

  private start(ack: AuthOkMessage): void {
    clearTimeout(this.ackTimer);
    this.phase = "streaming";
    this.enqueue(sseRetry(retryAdvice("admitted")));
    this.timers.push(setInterval(() => this.beat(), SSE_HEARTBEAT_MS), setInterval(() => this.tick(), DEPARTURE_PROBE_MS));
    this.settle(ack);
    log("info", "edge event stream opened", { requestId: this.target.requestId, guildId: this.target.guildId, seq: ack.seq });
  }

  private onHubClose(close: StreamRefusal): void {
    if (this.phase === "waiting") return this.refuse(close);
    this.end(close);
  }

  private onClientGone(): void {
    if (this.phase === "waiting") return this.refuse({ code: 1001, reason: "client left" });
    this.end(undefined);
  }

  /** A comment for the proxies on the way, and a ping the hub's runtime answers without waking the hub. */
  private beat(): void {
    if (!this.heard) return this.end({ code: 1011, reason: "hub not answering" });
    this.heard = false;
    this.enqueue(sseComment("ping"));
    try {
      this.ws.send("ping");
    } catch {
      this.end({ code: 1011, reason: "hub connection lost" });
    }
  }

  /** Sheds a reader that took nothing for too long; probes a stream that was silent for too long. */
  private tick(): void {
    const now = Date.now();
    if (this.stalled(now)) return this.end({ code: CloseCode.overloaded, reason: "client not reading" });
    if (now - this.lastWriteAt >= DEPARTURE_PROBE_MS) this.enqueue(sseComment(""));
  }

  /** Whether bytes wait in the queue and the reader has taken none for STALL_LIMIT_MS. */
  private stalled(now: number): boolean {
    const queued = HIGH_WATER_MARK - (this.controller.desiredSize ?? HIGH_WATER_MARK);
    const taken = this.enqueuedBytes - queued;
    if (queued > 0 && taken <= this.taken.bytes) return now - this.taken.at >= STALL_LIMIT_MS;
    this.taken = { bytes: taken, at: now };
    return false;
  }

  private enqueue(chunk: Uint8Array): void {
    if (this.phase !== "streaming") return;
    if ((this.controller.desiredSize ?? 0) < -QUEUE_LIMIT_BYTES) {
      return this.end({ code: CloseCode.overloaded, reason: "overloaded" });
    }
    this.controller.enqueue(chunk);
    this.enqueuedBytes += chunk.byteLength;
    this.lastWriteAt = Date.now();
  }

  private refuse(close: StreamRefusal): void {
    if (this.phase !== "waiting") return;
    this.phase = "ended";
    clearTimeout(this.ackTimer);
    closeSocket(this.ws, 1000);
    this.settle({ type: "close", ...close });
  }

  /** Ends the stream once: with a last `end` event when the hub (or the relay) ended it, silently when the client left. */
  private end(close: StreamRefusal | undefined): void {
    if (this.phase !== "streaming") return;
    if (close) {
      this.controller.enqueue(sseEnd(close));
      this.controller.close();
    }
    this.phase = "ended";
    for (const timer of this.timers) clearInterval(timer);
    closeSocket(this.ws, 1000, close ? "" : "stream closed by the client");
    log("info", "edge event stream ended", {
      requestId: this.target.requestId,
      guildId: this.target.guildId,
      code: close?.code,
      reason: close?.reason ?? "client left",
      ms: Date.now() - this.openedAt,
    });
  }
}

function parseAck(data: string): AuthOkMessage | undefined {
  try {
    const message = JSON.parse(data) as Partial<AuthOkMessage>;
    if (message.type === "ack" && typeof message.guildId === "string" && typeof message.seq === "number") return message as AuthOkMessage;
  } catch {
    // not JSON: not the ack
  }
  return undefined;
}

/** A hub refusal before the ack: in-stream unless no retry can fix it. */
function refusal(close: StreamRefusal, requestId: string): Response {
  const final = FINAL_REFUSALS.get(close.code);
  if (!final) return refusedStream(close, requestId);
  throw new ApiError(final[0], final[1], close.reason || "realtime hub refused the stream");
}
