/**
 * The benchmark's bare-object target: the least a Worker and one Durable Object can do to serve the bench
 * clients, run in the same workerd as ours, so a figure of ours reads against the runtime's own floor. It keeps
 * hibernatable sockets, a Set of live sockets (and one per room filter), and per published event one
 * JSON.stringify and one send loop; a publish of several events goes to a lobby socket that asked for batch
 * frames as one frame. It speaks just enough of the protocol: an auth message is answered with auth.ok and an
 * empty snapshot at the current seq (the token is not checked); events arrive by the same signed POST as ours
 * (guild.sync and anything but app events are ignored). No storage, no replay, no dedup: the seq lives in memory
 * only (the benchmark reads it from each snapshot), so it serves no resume and forgets its seq when evicted.
 */
import { DurableObject } from "cloudflare:workers";
import { verifyHubSignature } from "../../protocol/hmac.js";

/** Bench-only bindings, set by bench/targets.ts (no wrangler config, so not generated). */
interface Env {
  BARE_HUB: DurableObjectNamespace<BareHub>;
  HUB_SECRET: string;
  PRIMARY_GUILD_ID: string;
}

/** What a live socket asked for at auth, kept in its hibernation attachment. */
interface Watcher {
  rooms?: string[];
  batch?: boolean;
}

interface PublishedEvent {
  event: string;
  payload: { channelId: string };
}

export class BareHub extends DurableObject<Env> {
  private seq = 0;
  private index?: SocketIndex;

  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") return new Response("expected a WebSocket upgrade", { status: 426 });
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server);
    return new Response(null, { status: 101, webSocket: client });
  }

  override async webSocketMessage(ws: WebSocket, raw: string | ArrayBuffer): Promise<void> {
    let auth: { type?: string; rooms?: string[]; batch?: boolean };
    try {
      auth = JSON.parse(String(raw)) as typeof auth;
    } catch {
      return ws.close(4400, "malformed message");
    }
    if (auth.type !== "auth") return;
    const watcher: Watcher = { ...(auth.rooms ? { rooms: auth.rooms } : {}), ...(auth.batch ? { batch: true } : {}) };
    ws.serializeAttachment(watcher);
    this.sockets().add(ws, watcher);
    ws.send(JSON.stringify({ v: 1, type: "ack", event: "auth.ok", guildId: this.env.PRIMARY_GUILD_ID, seq: this.seq }));
    ws.send(JSON.stringify({ v: 1, type: "snapshot", payload: { rooms: [] }, seq: this.seq }));
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    this.sockets().remove(ws);
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, reason);
    } catch {
      // already closed
    }
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    this.sockets().remove(ws);
  }

  /** RPC from the Worker: each event gets the next seq and goes to every live socket that wants it. */
  publish(events: PublishedEvent[]): void {
    const ts = Date.now();
    const index = this.sockets();
    const messages: string[] = [];
    for (const { event, payload } of events) {
      const message = JSON.stringify({ v: 1, type: "event", event, payload, ts, seq: ++this.seq });
      messages.push(message);
      const single = events.length === 1;
      for (const ws of index.lobby) if (single || !index.batch.has(ws)) send(ws, message);
      const filtered = event.startsWith("room.") ? index.filtered : index.byRoom.get(payload.channelId);
      for (const ws of filtered ?? []) send(ws, message);
    }
    if (events.length > 1) {
      const frame = `{"v":1,"type":"batch","events":[${messages.join(",")}]}`;
      for (const ws of index.batch) send(ws, frame);
    }
  }

  /** Rebuilt from the runtime's list after a wake-up (memory does not survive hibernation). */
  private sockets(): SocketIndex {
    if (!this.index) {
      this.index = new SocketIndex();
      for (const ws of this.ctx.getWebSockets()) {
        const watcher = ws.deserializeAttachment() as Watcher | null;
        if (watcher) this.index.add(ws, watcher);
      }
    }
    return this.index;
  }
}

/** Live sockets: the lobby (no room filter; `batch` is the lobby sockets taking batch frames) and by room. */
class SocketIndex {
  readonly lobby = new Set<WebSocket>();
  readonly batch = new Set<WebSocket>();
  readonly filtered = new Set<WebSocket>();
  readonly byRoom = new Map<string, Set<WebSocket>>();
  private readonly roomsOf = new Map<WebSocket, string[]>();

  add(ws: WebSocket, watcher: Watcher): void {
    this.remove(ws);
    if (!watcher.rooms) {
      this.lobby.add(ws);
      if (watcher.batch) this.batch.add(ws);
      return;
    }
    this.filtered.add(ws);
    this.roomsOf.set(ws, watcher.rooms);
    for (const room of watcher.rooms) {
      const members = this.byRoom.get(room) ?? new Set<WebSocket>();
      members.add(ws);
      this.byRoom.set(room, members);
    }
  }

  remove(ws: WebSocket): void {
    this.lobby.delete(ws);
    this.batch.delete(ws);
    this.filtered.delete(ws);
    for (const room of this.roomsOf.get(ws) ?? []) this.byRoom.get(room)?.delete(ws);
    this.roomsOf.delete(ws);
  }
}

function send(ws: WebSocket, message: string): void {
  try {
    ws.send(message);
  } catch {
    // a socket closing meanwhile: its close event removes it
  }
}

export default {
  async fetch(request, env): Promise<Response> {
    const url = new URL(request.url);
    const hub = env.BARE_HUB.get(env.BARE_HUB.idFromName(env.PRIMARY_GUILD_ID));
    if (url.pathname === "/ws") return hub.fetch(request);
    if (url.pathname !== "/internal/events" || request.method !== "POST") return new Response("not found", { status: 404 });
    const body = await request.text();
    const check = await verifyHubSignature(env.HUB_SECRET, request.headers.get("X-Hub-Timestamp"), request.headers.get("X-Hub-Signature"), body);
    if (!check.ok) return new Response("signature rejected", { status: 401 });
    const parsed = JSON.parse(body) as { events?: PublishedEvent[] } & PublishedEvent;
    const all = parsed.events ?? [parsed];
    const events = all.filter((e) => e.event.startsWith("room.") || e.event.startsWith("voice."));
    if (events.length > 0) await hub.publish(events);
    return Response.json({ ok: true, accepted: all.length, duplicates: 0 });
  },
} satisfies ExportedHandler<Env>;
