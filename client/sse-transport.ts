// Server-sent events over fetch streaming: GET /events with the token in the Authorization header (never in the
// URL). A token refresh restarts the stream from the last event id; a room filter change restarts it without one,
// so the edge answers with a snapshot for the new filter. Each restart is a first auth for the hub, so it waits for
// the connection's first-auth budget, the current stream serving meanwhile. A refusal (HTTP status) or the
// stream's last `end` event becomes the close code a socket would have had.
import { closeCodeForStatus, SSE_END_EVENT, SSE_HEARTBEAT_MS, SseHeader } from "../protocol/sse.js";
import { parseJson } from "../protocol/json.js";
import { corsBlockedOrigin, corsMessage } from "./cors.js";
import type { AuthRequest, HubTransport, TransportHandlers } from "./transport.js";

/** A stream silent for longer than this (two heartbeats and some) fails the connection's ping, which drops it. */
const QUIET_LIMIT_MS = SSE_HEARTBEAT_MS * 2 + 5_000;
/** The name of a stream's last event, data {code, reason}; "error" is its name before the rename, accepted for one release. */
const END_EVENTS = new Set([SSE_END_EVENT, "error"]);

/** wss://edge/ws?guildId=… → https://edge/events?guildId=… (and /api/ws → /api/events). */
export function eventsUrl(socketUrl: string): string {
  const url = new URL(socketUrl);
  url.protocol = url.protocol === "ws:" ? "http:" : url.protocol === "wss:" ? "https:" : url.protocol;
  url.pathname = url.pathname.replace(/\/ws$/, "/events");
  return url.toString();
}

interface StreamEvent {
  name: string;
  data: string | undefined;
  id: string | undefined;
}

export class SseTransport implements HubTransport {
  private readonly url: string;
  private stream: AbortController | undefined;
  private rooms: string[] | undefined;
  /** The last event id seen: where a restarted stream resumes. */
  private lastId: number | undefined;
  private token: string | undefined;
  /** A filter changed since the current stream started: the next one asks for a snapshot, not a resume. */
  private snapshotWanted = false;
  /** A restart waiting for the first-auth budget; changes meanwhile ride on it. */
  private restartTimer: ReturnType<typeof setTimeout> | undefined;
  private lastHeard = Date.now();
  private ended = false;

  constructor(
    url: string,
    private readonly handlers: TransportHandlers,
  ) {
    this.url = eventsUrl(url);
    // Ready at once: the stream itself starts with the auth, as a socket's session does.
    setTimeout(() => this.ended || handlers.onOpen());
  }

  authenticate(auth: AuthRequest): void {
    const first = this.token === undefined;
    this.token = auth.token;
    if (!first) return this.restart();
    // The connection's attempt already spent this stream's first auth.
    this.rooms = auth.rooms;
    this.lastId = auth.since;
    void this.start();
  }

  setRooms(rooms: string[] | undefined): void {
    if (this.token === undefined) return;
    this.rooms = rooms;
    this.snapshotWanted = true;
    this.restart();
  }

  ping(): void {
    // The stream's heartbeat comments stand for pongs: answer only while the stream is not silent.
    if (Date.now() - this.lastHeard <= QUIET_LIMIT_MS) setTimeout(() => this.ended || this.handlers.onAlive());
  }

  close(): void {
    this.ended = true;
    if (this.restartTimer !== undefined) clearTimeout(this.restartTimer);
    this.stream?.abort();
  }

  /** Starts a new stream with the newest token and filter once the first-auth budget allows. */
  private restart(): void {
    if (this.restartTimer !== undefined || this.ended) return;
    const waitMs = this.handlers.takeFirstAuth();
    if (waitMs === 0) return void this.start();
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      this.restart();
    }, waitMs);
  }

  private async start(): Promise<void> {
    this.stream?.abort();
    const stream = (this.stream = new AbortController());
    const url = new URL(this.url);
    if (this.rooms) url.searchParams.set("rooms", this.rooms.join(","));
    const headers: Record<string, string> = { Authorization: `Bearer ${this.token!}`, Accept: "text/event-stream" };
    if (this.snapshotWanted) this.lastId = undefined; // the new filter's stream starts from a snapshot
    this.snapshotWanted = false;
    if (this.lastId !== undefined) headers["Last-Event-ID"] = String(this.lastId);
    try {
      let response: Response;
      try {
        response = await fetch(url, { headers, signal: stream.signal });
      } catch (error) {
        const blockedFor = await corsBlockedOrigin(url.href, fetch);
        if (this.stream === stream) this.end(1006, blockedFor ? corsMessage(url.href, blockedFor) : String((error as Error)?.message ?? error));
        return;
      }
      if (this.stream !== stream) return;
      if (!response.ok || !response.body) return this.end(closeCodeForStatus(response.status), await errorMessage(response));
      // The stream has no ack event: its headers say what the socket's auth.ok says. A stream that only carries its
      // `end` (a refusal sent as an event stream) has none.
      const guildId = response.headers.get(SseHeader.guildId);
      const seq = response.headers.get(SseHeader.seq);
      if (guildId !== null && seq !== null) this.deliver({ v: 1, type: "ack", event: "auth.ok", guildId, seq: Number(seq) });
      await this.read(response.body, stream);
      if (this.stream === stream) this.end(1006, "stream ended");
    } catch (error) {
      if (this.stream === stream) this.end(1006, error instanceof Error ? error.message : String(error));
    }
  }

  /** Parses the event stream (WHATWG HTML "Server-sent events"): `event`, `data` and `id` fields; `retry` and comments are read and ignored. */
  private async read(body: ReadableStream<Uint8Array>, stream: AbortController): Promise<void> {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let event: StreamEvent = { name: "message", data: undefined, id: undefined };
    for (;;) {
      const { done, value } = await reader.read();
      if (done || this.stream !== stream) return;
      this.lastHeard = Date.now();
      buffer += decoder.decode(value, { stream: true });
      const lines = buffer.split(/\r\n|\r|\n/);
      buffer = lines.pop()!;
      for (const line of lines) {
        if (line === "") {
          if (event.data !== undefined && !this.dispatch(event)) return;
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
  private dispatch({ name, data, id }: StreamEvent): boolean {
    const json = parseJson(data!);
    if (END_EVENTS.has(name)) {
      const close = (typeof json === "object" && json !== null ? json : {}) as { code?: unknown; reason?: unknown };
      this.end(typeof close.code === "number" ? close.code : 1011, typeof close.reason === "string" ? close.reason : "stream ended");
      return false;
    }
    if (id !== undefined && /^\d+$/.test(id)) this.lastId = Number(id);
    this.deliver(json);
    return true;
  }

  private deliver(message: unknown): void {
    if (!this.ended) this.handlers.onMessage(message);
  }

  private end(code: number, reason: string): void {
    if (this.ended) return;
    this.close();
    this.handlers.onClose(code, reason);
  }
}

/** Its error body's message, or the status: what the socket's close reason would have said. */
async function errorMessage(response: Response): Promise<string> {
  const body = (await response.json().catch(() => undefined)) as { message?: unknown } | undefined;
  return typeof body?.message === "string" ? body.message : `HTTP ${response.status}`;
}
