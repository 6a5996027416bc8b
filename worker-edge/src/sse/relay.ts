import {
  AUTH_TIMEOUT_MS,
  CloseCode,
  SSE_ERROR_EVENT,
  SSE_HEARTBEAT_MS,
  SseHeader,
  statusForCloseCode,
  type AuthOkMessage,
  type ClientAuth,
} from "../../../protocol/index.js";
import { ApiError, type ErrorStatus } from "../errors.js";
import { closeSocket } from "../hub/sockets.js";
import { log } from "../log.js";
import { frameHubMessage, sseComment, sseEvent } from "./frames.js";
import type { StreamRequest } from "./request.js";

/** Bytes queued for a client that does not read: past this it is shed like a socket the hub closes 1013. */
const QUEUE_LIMIT_BYTES = 1024 * 1024;
/** The hub answers auth in milliseconds; this only bounds a hub that never does. */
const ACK_TIMEOUT_MS = AUTH_TIMEOUT_MS + 5_000;

export interface RelayTarget {
  hub: { fetch(request: Request): Promise<Response> };
  guildId: string;
  token: string;
  requestId: string;
}

interface HubClose {
  code: number;
  reason: string;
}

/**
 * Serves a server-sent events stream by relaying a WebSocket this Worker opens to the guild's hub. The hub sees an
 * ordinary client socket (first-message auth, socket caps, expiry close, auto-answered pings), so it stays
 * hibernatable; this invocation stays open for the stream's lifetime instead. A refusal before the hub's ack is
 * the HTTP error the close code stands for; a close after it becomes a last `event: error` frame.
 */
export async function relayHubStream(target: RelayTarget, request: StreamRequest): Promise<Response> {
  const upgrade = await target.hub.fetch(
    new Request(`https://guild-hub/ws?guildId=${encodeURIComponent(target.guildId)}`, { headers: { Upgrade: "websocket" } }),
  );
  const ws = upgrade.webSocket;
  if (!ws) throw new ApiError(503, "internal", "realtime hub unavailable");
  ws.accept();
  const relay = new HubRelay(ws, target);
  const auth = { type: "auth", token: target.token, since: request.since, rooms: request.rooms } satisfies ClientAuth;
  ws.send(JSON.stringify(auth));
  const ack = await relay.acknowledged;
  return new Response(relay.readable, {
    headers: {
      "Content-Type": "text/event-stream; charset=utf-8",
      "Cache-Control": "no-cache, no-transform",
      // Tells nginx-style proxies not to buffer the stream.
      "X-Accel-Buffering": "no",
      [SseHeader.guildId]: ack.guildId,
      [SseHeader.seq]: String(ack.seq),
    },
  });
}

class HubRelay {
  readonly readable: ReadableStream<Uint8Array>;
  readonly acknowledged: Promise<AuthOkMessage>;
  private controller!: ReadableStreamDefaultController<Uint8Array>;
  private onAck!: (ack: AuthOkMessage) => void;
  private onRefused!: (error: ApiError) => void;
  private phase: "waiting" | "streaming" | "ended" = "waiting";
  private heartbeat: ReturnType<typeof setInterval> | null = null;
  private readonly ackTimer: ReturnType<typeof setTimeout>;
  /** Whether the hub said anything (a pong at least) since the last heartbeat's ping. */
  private heard = true;
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
      { highWaterMark: 64 * 1024, size: (chunk) => chunk.byteLength },
    );
    this.acknowledged = new Promise<AuthOkMessage>((resolve, reject) => {
      this.onAck = resolve;
      this.onRefused = reject;
    });
    this.ackTimer = setTimeout(() => this.refuse({ code: CloseCode.serviceRestart, reason: "the hub did not answer" }), ACK_TIMEOUT_MS);
    ws.addEventListener("message", (event) => this.onHubMessage(typeof event.data === "string" ? event.data : ""));
    ws.addEventListener("close", (event) => this.onHubClose({ code: event.code, reason: event.reason }));
    ws.addEventListener("error", () => this.onHubClose({ code: 1011, reason: "hub connection failed" }));
  }

  private onHubMessage(data: string): void {
    this.heard = true;
    if (this.phase === "waiting") {
      const ack = parseAck(data);
      if (!ack) return;
      clearTimeout(this.ackTimer);
      this.phase = "streaming";
      this.heartbeat = setInterval(() => this.beat(), SSE_HEARTBEAT_MS);
      this.onAck(ack);
      log("info", "edge event stream opened", { requestId: this.target.requestId, guildId: this.target.guildId, seq: ack.seq });
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

  private onHubClose(close: HubClose): void {
    if (this.phase === "waiting") return this.refuse(close);
    this.end(close);
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

  private enqueue(chunk: Uint8Array): void {
    if (this.phase !== "streaming") return;
    if ((this.controller.desiredSize ?? 0) < -QUEUE_LIMIT_BYTES) {
      return this.end({ code: CloseCode.overloaded, reason: "overloaded" });
    }
    this.controller.enqueue(chunk);
  }

  private refuse(close: HubClose): void {
    if (this.phase !== "waiting") return;
    this.phase = "ended";
    clearTimeout(this.ackTimer);
    closeSocket(this.ws, 1000);
    this.onRefused(refusal(close));
  }

  /** Ends the stream once: with a last error frame when the hub (or the relay) ended it, silently when the client left. */
  private end(close: HubClose | undefined): void {
    if (this.phase !== "streaming") return;
    if (close) {
      this.controller.enqueue(sseEvent({ event: SSE_ERROR_EVENT, data: JSON.stringify({ code: close.code, reason: close.reason }) }));
      this.controller.close();
    }
    this.phase = "ended";
    if (this.heartbeat !== null) clearInterval(this.heartbeat);
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

const ERROR_BY_STATUS = {
  400: "invalid_input",
  401: "unauthorized",
  403: "forbidden",
  429: "rate_limited",
  503: "internal",
} as const;

/** The JSON error for a hub that closed the relay's socket before its ack, with the hub's reason. */
function refusal(close: HubClose): ApiError {
  const status = statusForCloseCode(close.code) as keyof typeof ERROR_BY_STATUS & ErrorStatus;
  const retry = status === 429 || status === 503 ? { retryAfterSeconds: status === 429 ? 30 : 5 } : {};
  return new ApiError(status, ERROR_BY_STATUS[status] ?? "internal", close.reason || "realtime hub refused the stream", retry);
}
