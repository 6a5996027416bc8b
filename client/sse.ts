// The server-sent events transport (the `/sse` entry), as a WebSocketLike so connect() drives it like a socket: the first `auth`
// message starts a `fetch` stream (the token goes in a header, never the URL), a later one (a token refresh)
// restarts it from the last id, a room filter change restarts it for a fresh snapshot, a refusal or the stream's `event: end` becomes the close code a socket gets.
import { closeCodeForStatus, SSE_END_EVENT, SSE_HEARTBEAT_MS, SseHeader } from "../protocol/sse.js";
import { parseJson } from "../protocol/json.js";
import type { WebSocketConstructor, WebSocketLike } from "./connect.js";

export type Transport = "websocket" | "sse" | "auto";

/** A stream silent for longer than this (two heartbeats and some) fails the SDK's ping, which drops it. */
const QUIET_LIMIT_MS = SSE_HEARTBEAT_MS * 2 + 5_000;
const [CONNECTING, OPEN, CLOSED] = [0, 1, 3];

/** wss://edge/ws?guildId=… → https://edge/events?guildId=… (and /api/ws → /api/events). */
export function eventsUrl(socketUrl: string): string {
  const url = new URL(socketUrl);
  url.protocol = url.protocol === "ws:" ? "http:" : url.protocol === "wss:" ? "https:" : url.protocol;
  url.pathname = url.pathname.replace(/\/ws$/, "/events");
  return url.toString();
}

interface StreamAuth {
  type?: unknown;
  token?: unknown;
  since?: unknown;
  rooms?: unknown;
}

export class SseSocket implements WebSocketLike {
  readyState = CONNECTING;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  private readonly url: string;
  private stream: AbortController | undefined;
  private rooms: string[] | undefined;
  /** The last event id seen: where a restarted stream resumes. */
  private lastId: number | undefined;
  /** The token of the current stream: a room filter change restarts the stream with it. */
  private token: string | undefined;
  private lastHeard = Date.now();

  constructor(url: string) {
    this.url = eventsUrl(url);
    // Opens at once: the stream itself starts with the auth message, as a socket's session does.
    setTimeout(() => {
      if (this.readyState !== CONNECTING) return;
      this.readyState = OPEN;
      this.onopen?.({});
    });
  }

  send(data: string): void {
    if (this.readyState !== OPEN) return;
    if (data === "ping") {
      // The stream's heartbeat comments stand for pongs: answer only while the stream is not silent.
      if (Date.now() - this.lastHeard <= QUIET_LIMIT_MS) setTimeout(() => this.deliver("pong"));
      return;
    }
    const auth = parseJson(data) as StreamAuth | undefined;
    if (auth?.type === "rooms" && this.token !== undefined) return this.changeRooms(auth.rooms);
    if (auth?.type !== "auth" || typeof auth.token !== "string") return;
    this.token = auth.token;
    if (Array.isArray(auth.rooms)) this.rooms = auth.rooms.map(String);
    const since = typeof auth.since === "number" ? auth.since : undefined;
    this.lastId ??= since;
    void this.start(auth.token);
  }

  /**
   * A stream cannot carry the socket's `rooms` message: the filter goes into a new request, without Last-Event-ID,
   * so that the edge answers with a snapshot (as the hub does after a filter change) that fills the rooms added.
   */
  private changeRooms(rooms: unknown): void {
    this.rooms = Array.isArray(rooms) ? rooms.map(String) : undefined;
    this.lastId = undefined;
    void this.start(this.token!);
  }

  close(code = 1000, reason = ""): void {
    this.end(code, reason);
  }

  private async start(token: string): Promise<void> {
    this.stream?.abort();
    const stream = new AbortController();
    this.stream = stream;
    const url = new URL(this.url);
    if (this.rooms) url.searchParams.set("rooms", this.rooms.join(","));
    const headers: Record<string, string> = { Authorization: `Bearer ${token}`, Accept: "text/event-stream" };
    if (this.lastId !== undefined) headers["Last-Event-ID"] = String(this.lastId);
    try {
      const response = await fetch(url, { headers, signal: stream.signal });
      if (!response.ok || !response.body) return this.end(closeCodeForStatus(response.status), await errorMessage(response));
      const seq = Number(response.headers.get(SseHeader.seq));
      const guildId = response.headers.get(SseHeader.guildId);
      // The stream has no ack event: its headers say what the socket's auth.ok says.
      this.deliver(JSON.stringify({ v: 1, type: "ack", event: "auth.ok", guildId, seq }));
      await this.read(response.body, stream);
      if (this.stream === stream) this.end(1006, "stream ended");
    } catch (error) {
      if (this.stream === stream) this.end(1006, error instanceof Error ? error.message : String(error));
    }
  }

  /** Parses the event stream (WHATWG HTML "Server-sent events") and hands each event to onmessage. */
  private async read(body: ReadableStream<Uint8Array>, stream: AbortController): Promise<void> {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let event = { name: "message", data: undefined as string | undefined, id: undefined as string | undefined };
    for (;;) {
      const { done, value } = await reader.read();
      if (done || this.stream !== stream) return;
      this.lastHeard = Date.now();
      buffer += decoder.decode(value, { stream: true });
      const lines = buffer.split(/\r\n|\r|\n/);
      buffer = lines.pop()!;
      for (const line of lines) {
        if (line === "") {
          if (event.data !== undefined && !this.dispatch(event.name, event.data, event.id)) return;
          event = { name: "message", data: undefined, id: undefined };
          continue;
        }
        const colon = line.indexOf(":");
        if (colon === 0) continue; // a comment: the heartbeat
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") event.name = value;
        else if (field === "data") event.data = event.data === undefined ? value : `${event.data}\n${value}`;
        else if (field === "id") event.id = value;
      }
    }
  }

  /** Returns false when the event ended the stream. */
  private dispatch(name: string, data: string, id: string | undefined): boolean {
    if (name === SSE_END_EVENT) {
      let close: { code?: unknown; reason?: unknown } = {};
      try {
        close = JSON.parse(data) as typeof close;
      } catch {
        // a malformed end event still ends the stream
      }
      this.end(typeof close.code === "number" ? close.code : 1011, typeof close.reason === "string" ? close.reason : "stream error");
      return false;
    }
    if (id !== undefined && /^\d+$/.test(id)) this.lastId = Number(id);
    this.deliver(data);
    return true;
  }

  private deliver(data: string): void {
    if (this.readyState === OPEN) this.onmessage?.({ data });
  }

  private end(code: number, reason: string): void {
    if (this.readyState === CLOSED) return;
    this.readyState = CLOSED;
    this.stream?.abort();
    this.stream = undefined;
    setTimeout(() => this.onclose?.({ code, reason }));
  }
}

/** Its error body's message, or the status text: what the socket's close reason would have said. */
async function errorMessage(response: Response): Promise<string> {
  try {
    const body = (await response.json()) as { message?: unknown };
    if (typeof body.message === "string") return body.message;
  } catch {
    // not a JSON error body
  }
  return `HTTP ${response.status}`;
}

/**
 * The socket constructor for a transport. "auto" uses WebSockets until one fails without ever opening (a network
 * that blocks them, a proxy that refuses upgrades), then server-sent events for the rest of the connection's life.
 */
export function socketFactory(transport: Transport, WebSocket: WebSocketConstructor | undefined): WebSocketConstructor {
  if (transport === "sse" || (transport === "auto" && !WebSocket)) return SseSocket;
  if (transport === "websocket" || !WebSocket) return WebSocket!;
  const Native = WebSocket;
  let blocked = false;
  return class {
    constructor(url: string) {
      if (blocked) return new SseSocket(url);
      return new WatchedSocket(new Native(url), () => (blocked = true));
    }
  } as unknown as WebSocketConstructor;
}

/** A socket that reports a close that came before any open; otherwise a plain pass-through. */
class WatchedSocket implements WebSocketLike {
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;

  constructor(
    private readonly inner: WebSocketLike,
    neverOpened: () => void,
  ) {
    let opened = false;
    inner.onopen = (event) => {
      opened = true;
      this.onopen?.(event);
    };
    inner.onmessage = (event) => this.onmessage?.(event);
    inner.onclose = (event) => {
      if (!opened) neverOpened();
      this.onclose?.(event);
    };
    inner.onerror = (event) => this.onerror?.(event);
  }

  get readyState(): number {
    return this.inner.readyState;
  }

  send(data: string): void {
    this.inner.send(data);
  }

  close(code?: number, reason?: string): void {
    this.inner.close(code, reason);
  }
}
