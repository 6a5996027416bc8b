import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { WebSocketServer, WebSocket, type WebSocket as ServerSocket } from "ws";
import { NO_VOICE_MEDIA } from "../../../protocol/limits.js";
import type { WebSocketConstructor } from "../../connect.js";
import type { GuildStatus, VoiceMedia } from "../../types.js";

export const guildId = "100000000000000001";
export const A = "110000000000000001";
export const U = "210000000000000001";

/** A voice.media event as the hub sends it: the member's flags, every flag not given off. */
export const voiceMedia = (seq: number, channelId: string, userId: string, flags: Partial<VoiceMedia>) => ({
  v: 1,
  type: "event",
  event: "voice.media",
  payload: { guildId, channelId, userId, media: { ...NO_VOICE_MEDIA, ...flags } },
  ts: 1,
  seq,
});

/** A guild.status event as the hub sends it. */
export const guildStatus = (seq: number, status: GuildStatus) => ({ v: 1, type: "event", event: "guild.status", payload: { guildId, status }, ts: 1, seq });

/** The `ws` package's client, typed as the SDK's socket constructor. */
export const NodeWebSocket = WebSocket as unknown as WebSocketConstructor;

export type Auth = Record<string, unknown>;

/** A scripted hub speaking the hub's protocol: records what clients send and lets the test answer. */
export class ScriptedHub {
  readonly wss = new WebSocketServer({ port: 0, host: "127.0.0.1" });
  readonly sockets: ServerSocket[] = [];
  /** When each socket connected (ms), in order. */
  readonly connectedAt: number[] = [];
  readonly received: Array<Auth | string> = [];
  private readonly tcp = new Map<ServerSocket, Socket>();
  answerPing = true;
  /** Called for every auth message, e.g. to acknowledge it or to refuse the token. */
  onAuth: ((socket: ServerSocket, auth: Auth) => void) | undefined;

  constructor() {
    this.wss.on("connection", (ws, request) => {
      this.sockets.push(ws);
      this.connectedAt.push(Date.now());
      this.tcp.set(ws, request.socket);
      ws.on("message", (data) => {
        const text = String(data);
        if (text === "ping") {
          this.received.push(text);
          if (this.answerPing) ws.send("pong");
          return;
        }
        const message = JSON.parse(text) as Auth;
        this.received.push(message);
        if (message.type === "auth") this.onAuth?.(ws, message);
      });
    });
  }

  static async start(): Promise<ScriptedHub> {
    const hub = new ScriptedHub();
    await new Promise<void>((resolve) => hub.wss.once("listening", () => resolve()));
    return hub;
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.wss.address() as AddressInfo).port}`;
  }

  auths(): Auth[] {
    return this.received.filter((r): r is Auth => typeof r === "object" && r.type === "auth");
  }

  last(): ServerSocket {
    return this.sockets.at(-1)!;
  }

  send(message: unknown, socket = this.last()): void {
    socket.send(JSON.stringify(message));
  }

  /** Answers an auth like the hub: auth.ok, then a snapshot with room A. */
  ack(socket = this.last(), seq = 1): void {
    this.send({ v: 1, type: "ack", event: "auth.ok", guildId, seq }, socket);
    this.send({ v: 1, type: "snapshot", payload: { rooms: [{ channelId: A, name: "A", userLimit: 4, members: [] }] }, seq }, socket);
  }

  /** This socket's hub side stops reading, so it answers nothing (pings, close frames); its TCP stays open. */
  freeze(socket = this.last()): void {
    this.tcp.get(socket)?.pause();
  }

  close(): Promise<void> {
    for (const socket of this.sockets) socket.terminate();
    return new Promise((resolve) => this.wss.close(() => resolve()));
  }
}

/** Accepts TCP connections and never answers, so a WebSocket handshake never completes. */
export class StallServer {
  readonly connections: Socket[] = [];
  private constructor(private readonly server: Server) {
    server.on("connection", (socket) => this.connections.push(socket));
  }

  static async start(): Promise<StallServer> {
    const server = createServer();
    const stall = new StallServer(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    return stall;
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    for (const socket of this.connections) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** An unsigned JWT with `exp`; the SDK only reads it to know when to refresh. */
export function jwt(expiresInSeconds: number, sub = "u"): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
  return `${part({ alg: "none" })}.${part({ sub, exp: Math.floor(Date.now() / 1000) + expiresInSeconds })}.sig`;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
