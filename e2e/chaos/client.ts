import WebSocket from "ws";

export interface RoomView {
  name: string;
  userLimit: number;
  parentId: string | null;
  /** userId → username */
  members: Map<string, string | undefined>;
}

interface Envelope {
  v?: number;
  type?: string;
  event?: string;
  seq?: number;
  payload?: Record<string, unknown>;
}

/**
 * A browser-like subscriber speaking the documented socket protocol with the `ws` package. It applies the
 * snapshot and every event to its own presence, and records every protocol violation it sees: a duplicate or
 * skipped seq, an event before the snapshot, a snapshot whose seq goes backwards, a replay that does not start
 * right after `since`, and events that do not fit its presence (join into an unknown room, ...).
 */
export class ChaosClient {
  ws: WebSocket | undefined;
  lastSeq: number | undefined;
  rooms = new Map<string, RoomView>();
  readonly violations: string[] = [];
  /** Soft findings: events that do not fit the client's picture; the presence check decides whether they matter. */
  readonly anomalies: string[] = [];
  readonly recent: string[] = [];
  /** Everything received, for the run's log directory. */
  readonly history: string[] = [];
  connects = 0;
  snapshots = 0;
  replays = 0;
  private resumedFrom: number | undefined;
  private reauthPending = false;
  private awaitingCatchUp = false;
  private generation = 0;

  constructor(
    readonly name: string,
    readonly userId: string,
    private readonly wsUrl: string,
    private readonly token: () => Promise<string>,
    private readonly note: (line: string) => void,
  ) {}

  get connected(): boolean {
    return this.ws?.readyState === WebSocket.OPEN && !this.awaitingCatchUp;
  }

  /** Connects and auths; with `resume`, sends `since` = the last applied seq. Resolves once auth.ok arrived. */
  async connect(resume: boolean): Promise<void> {
    this.drop();
    const generation = ++this.generation;
    this.connects++;
    const since = resume ? this.lastSeq : undefined;
    this.resumedFrom = since;
    this.awaitingCatchUp = true;
    const ws = new WebSocket(this.wsUrl);
    this.ws = ws;
    let acked!: () => void;
    let failed!: (error: Error) => void;
    const ackedPromise = new Promise<void>((resolve, reject) => {
      acked = resolve;
      failed = reject;
    });
    ws.on("error", (error) => failed(error));
    ws.on("close", (code, reason) => {
      if (generation !== this.generation) return;
      failed(new Error(`closed ${code} ${String(reason)}`));
      this.remember(`closed by peer ${code} ${String(reason)}`);
    });
    ws.on("message", (data, isBinary) => {
      if (generation !== this.generation) return;
      if (isBinary) return void this.violation(`binary message from the hub`);
      const text = String(data);
      if (text === "pong") return;
      let message: Envelope;
      try {
        message = JSON.parse(text) as Envelope;
      } catch {
        return void this.violation(`non-JSON message ${text.slice(0, 80)}`);
      }
      if (message.type === "ack") acked();
      this.receive(message);
    });
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    ws.send(JSON.stringify({ type: "auth", token: await this.token(), ...(since !== undefined ? { since } : {}) }));
    await Promise.race([ackedPromise, new Promise((_, reject) => setTimeout(() => reject(new Error("no auth.ok within 10 s")), 10_000))]);
  }

  /** A token refresh on the live socket: the hub answers auth.ok only. */
  async reauth(): Promise<void> {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    this.reauthPending = true;
    ws.send(JSON.stringify({ type: "auth", token: await this.token() }));
  }

  /** An abrupt cut (no close frame), as a network drop would do. */
  cut(): void {
    this.ws?.terminate();
    this.drop();
  }

  private drop(): void {
    this.generation++;
    this.reauthPending = false;
    const ws = this.ws;
    this.ws = undefined;
    this.awaitingCatchUp = false;
    if (ws && ws.readyState !== WebSocket.CLOSED) ws.terminate();
  }

  presence(): Map<string, RoomView> {
    return this.rooms;
  }

  private receive(message: Envelope): void {
    if (message.type === "ack") {
      this.remember(`ack seq=${message.seq}`);
      if (this.reauthPending) {
        this.reauthPending = false;
        return;
      }
      if (this.resumedFrom !== undefined && typeof message.seq === "number" && message.seq === this.resumedFrom) {
        this.awaitingCatchUp = false; // nothing missed: neither events nor a snapshot follow
        this.replays++;
      }
      return;
    }
    if (message.type === "snapshot") {
      const seq = message.seq ?? -1;
      if (this.reauthPending) this.violation(`a token refresh on a live socket was answered with a snapshot (seq ${seq})`);
      this.remember(`snapshot seq=${seq}`);
      if (this.lastSeq !== undefined && seq < this.lastSeq) {
        this.violation(`snapshot seq ${seq} is behind the last applied seq ${this.lastSeq} (the hub went back in time)`);
      }
      this.snapshots++;
      this.rooms = new Map();
      const rooms = (message.payload?.rooms ?? []) as Array<{ channelId: string; name: string; userLimit: number; parentId?: string | null; members: Array<{ userId: string; username?: string }> }>;
      for (const room of rooms) {
        this.rooms.set(room.channelId, {
          name: room.name,
          userLimit: room.userLimit,
          parentId: room.parentId ?? null,
          members: new Map(room.members.map((m) => [m.userId, m.username])),
        });
      }
      this.lastSeq = seq;
      this.awaitingCatchUp = false;
      this.resumedFrom = undefined;
      return;
    }
    if (message.type !== "event") return void this.anomaly(`unknown message type ${String(message.type)}`);
    const seq = message.seq;
    const payload = message.payload ?? {};
    this.remember(`event seq=${seq} ${message.event} ${JSON.stringify(payload)}`);
    if (typeof seq !== "number") return void this.violation(`event without seq: ${JSON.stringify(message)}`);
    if (this.lastSeq === undefined) {
      this.violation(`event seq ${seq} before any snapshot`);
    } else if (seq <= this.lastSeq) {
      return void this.violation(`duplicate/backwards seq ${seq} after ${this.lastSeq} (${message.event})`);
    } else if (seq !== this.lastSeq + 1) {
      this.violation(`gap: seq ${seq} after ${this.lastSeq}${this.resumedFrom !== undefined ? ` (replay after since=${this.resumedFrom})` : ""} (${message.event})`);
    }
    if (this.resumedFrom !== undefined) {
      this.replays++;
      this.resumedFrom = undefined;
    }
    this.awaitingCatchUp = false;
    this.lastSeq = seq;
    this.apply(message.event ?? "", payload);
  }

  private apply(event: string, p: Record<string, unknown>): void {
    const channelId = String(p.channelId);
    switch (event) {
      case "room.created":
      case "room.updated": {
        const existing = this.rooms.get(channelId);
        if (event === "room.created" && existing) this.anomaly(`room.created for a room it already has: ${channelId}`);
        if (event === "room.updated" && !existing) this.anomaly(`room.updated for an unknown room: ${channelId}`);
        this.rooms.set(channelId, {
          name: String(p.name),
          userLimit: Number(p.userLimit),
          parentId: (p.parentId as string | null | undefined) ?? null,
          members: existing?.members ?? new Map(),
        });
        return;
      }
      case "room.deleted":
        if (!this.rooms.delete(channelId)) this.anomaly(`room.deleted for an unknown room ${channelId}`);
        return;
      case "voice.joined": {
        const userId = String(p.userId);
        for (const [id, room] of this.rooms) {
          if (room.members.has(userId)) this.anomaly(`voice.joined ${userId} → ${channelId} while still in ${id} (no voice.left first)`);
          room.members.delete(userId);
        }
        const room = this.rooms.get(channelId);
        if (!room) return void this.anomaly(`voice.joined ${userId} into unknown room ${channelId}`);
        room.members.set(userId, p.username as string | undefined);
        return;
      }
      case "voice.left": {
        const userId = String(p.userId);
        const room = this.rooms.get(channelId);
        if (!room?.members.delete(userId)) this.anomaly(`voice.left ${userId} from ${channelId} where the client did not have them`);
        return;
      }
      default:
        // Unknown event names are applied for their seq only, as the contract says.
        return;
    }
  }

  private violation(text: string): void {
    const line = `${this.name}: ${text}`;
    this.violations.push(line);
    this.note(`VIOLATION ${line}`);
  }

  private anomaly(text: string): void {
    this.anomalies.push(`${this.name}: ${text}`);
  }

  private remember(line: string): void {
    this.history.push(`${new Date().toISOString()} ${line}`);
    this.recent.push(line);
    if (this.recent.length > 60) this.recent.shift();
  }
}
