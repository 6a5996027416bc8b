/**
 * The benchmark's baseline: the simplest realtime hub one could write instead of ours. One Node process with
 * `ws`, the same auth handshake (a JWT verified per socket with jose), the same signed internal POST and the
 * same messages, broadcasting every event to every socket that wants it. Presence lives in memory only: no
 * storage, no hibernation, no dedup. Forked by bench/bench.ts; reports its port over IPC.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { importJWK, jwtVerify, type JWK } from "jose";
import { WebSocket, WebSocketServer } from "ws";
import {
  ClientAuth,
  InternalEventsBody,
  internalEventList,
  parseJson,
  verifyHubSignature,
  channelOf,
  type AppEvent,
  type IdentifiedInternalEvent,
  type Room,
} from "../protocol/index.js";

export interface BaselineConfig {
  guildId: string;
  secret: string;
  issuer: string;
  audience: string;
  publicJwk: JWK;
}

const REPLAY_EVENTS = 1_000;

interface Client {
  rooms?: string[];
}

export async function startBaselineHub(config: BaselineConfig): Promise<{ port: number; close(): Promise<void> }> {
  const key = await importJWK(config.publicJwk, "RS256");
  const live = new Map<WebSocket, Client>();
  const rooms = new Map<string, Room>();
  const buffer: Array<{ seq: number; event: AppEvent; message: string }> = [];
  let seq = 0;

  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  wss.on("connection", (ws) => {
    ws.once("message", (raw) => {
      const message = ClientAuth.safeParse(parseJson(String(raw)));
      if (!message.success) return ws.close(4400, "malformed message");
      void authenticate(ws, message.data);
    });
    ws.on("close", () => live.delete(ws));
    ws.on("error", () => live.delete(ws));
  });

  async function authenticate(ws: WebSocket, auth: ClientAuth): Promise<void> {
    try {
      await jwtVerify(auth.token, key, { issuer: config.issuer, audience: config.audience, algorithms: ["RS256"], requiredClaims: ["exp", "sub"] });
    } catch {
      return ws.close(4401, "unauthorized");
    }
    if (ws.readyState !== WebSocket.OPEN) return;
    ws.send(JSON.stringify({ v: 1, type: "ack", event: "auth.ok", guildId: config.guildId, seq }));
    const client: Client = { rooms: auth.rooms };
    const oldest = buffer[0]?.seq;
    if (auth.since !== undefined && auth.since <= seq && (auth.since === seq || (oldest !== undefined && oldest <= auth.since + 1))) {
      for (const entry of buffer) if (entry.seq > auth.since && wants(client, entry.event)) ws.send(entry.message);
    } else {
      ws.send(JSON.stringify({ v: 1, type: "snapshot", payload: { rooms: [...rooms.values()] }, seq }));
    }
    live.set(ws, client);
  }

  function publish(event: AppEvent): void {
    apply(rooms, event);
    seq++;
    const message = JSON.stringify({ v: 1, type: "event", ...event, ts: Date.now(), seq });
    buffer.push({ seq, event, message });
    if (buffer.length > REPLAY_EVENTS) buffer.shift();
    for (const [ws, client] of live) if (wants(client, event)) ws.send(message);
  }

  async function onPost(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString("utf8");
    const check = await verifyHubSignature(config.secret, header(req, "x-hub-timestamp"), header(req, "x-hub-signature"), body);
    const parsed = InternalEventsBody.safeParse(parseJson(body));
    if (!check.ok || !parsed.success) {
      res.writeHead(check.ok ? 400 : 401).end();
      return;
    }
    const events = internalEventList(parsed.data);
    for (const event of events) {
      const app = asAppEvent(event);
      if (app) publish(app);
    }
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ ok: true, accepted: events.length, duplicates: 0 }));
  }

  const server = createServer((req, res) => {
    if (req.method === "POST" && req.url === "/internal/events") {
      onPost(req, res).catch(() => res.writeHead(500).end());
    } else res.writeHead(404).end();
  });
  server.on("upgrade", (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => wss.emit("connection", ws, req)));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    port,
    close: () =>
      new Promise((resolve) => {
        for (const ws of wss.clients) ws.terminate();
        server.close(() => resolve());
      }),
  };
}

function header(req: IncomingMessage, name: string): string | null {
  const value = req.headers[name];
  return typeof value === "string" ? value : null;
}

function wants(client: Client, event: AppEvent): boolean {
  const channelId = channelOf(event);
  return !client.rooms || channelId === undefined || event.event.startsWith("room.") || client.rooms.includes(channelId);
}

/** What the baseline publishes for an internal event: a delta as it is; a voice state as a join or a leave; nothing else. */
function asAppEvent(event: IdentifiedInternalEvent): AppEvent | undefined {
  if (event.event === "guild.sync" || event.event === "guild.state" || event.event === "channel.state") return undefined;
  if (event.event !== "voice.state") return event;
  const { guildId, userId, channelId, username } = event.payload;
  if (channelId !== null) return { event: "voice.joined", payload: { guildId, channelId, userId, ...(username ? { username } : {}) } };
  const room = memberRooms.get(userId);
  return room ? { event: "voice.left", payload: { guildId, channelId: room.channelId, userId } } : undefined;
}

const memberRooms = new Map<string, Room>();

function leave(rooms: Map<string, Room>, userId: string): void {
  const room = memberRooms.get(userId);
  if (room) room.members = room.members.filter((m) => m.userId !== userId);
  memberRooms.delete(userId);
}

function apply(rooms: Map<string, Room>, event: AppEvent): void {
  const channelId = channelOf(event);
  const room = channelId === undefined ? undefined : rooms.get(channelId);
  switch (event.event) {
    case "room.created":
    case "room.updated":
      rooms.set(event.payload.channelId, { ...event.payload, members: room?.members ?? [] });
      return;
    case "room.deleted":
      rooms.delete(event.payload.channelId);
      return;
    case "voice.joined": {
      leave(rooms, event.payload.userId);
      const { guildId: _guild, channelId: _channel, ...member } = event.payload;
      room?.members.push(member);
      if (room) memberRooms.set(member.userId, room);
      return;
    }
    case "voice.left":
      leave(rooms, event.payload.userId);
      return;
  }
}

// Run as a forked child: the config arrives over IPC, the port goes back.
if (process.send) {
  process.once("message", (config: BaselineConfig) => {
    startBaselineHub(config)
      .then((hub) => process.send?.({ type: "listening", port: hub.port }))
      .catch((error: unknown) => {
        console.error(error);
        process.exit(1);
      });
  });
  process.on("disconnect", () => process.exit(0));
}
