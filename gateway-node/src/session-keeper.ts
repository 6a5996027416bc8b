import type { GatewaySession } from "./gateway/shard.js";
import type { GuildState } from "./guild-pipe.js";
import type { Logger } from "./log.js";
import type { SessionPosition } from "./outbox-queue.js";
import { SESSION_FILE_VERSION, type SessionStore, type StoredGateway } from "./session-store.js";

/** What the keeper reads of a guild's pipe. */
export interface PipeRecord {
  readonly guildId: string;
  readonly syncOwed: boolean;
  readonly state: GuildState;
  readonly committedPosition: SessionPosition | undefined;
}

/** What the keeper reads of a shard. */
export interface ShardRecord {
  readonly session: GatewaySession | undefined;
  readonly pipes: readonly PipeRecord[];
}

/**
 * Where a shard can be resumed from: its session at its slowest guild's position, so Discord replays every dispatch
 * some guild's hub has not accepted. None while a guild is owed a picture (a restart must IDENTIFY) or has not
 * accepted anything of this session yet.
 */
export function resumablePosition({ session, pipes }: ShardRecord): GatewaySession | undefined {
  if (!session) return undefined;
  let seq = session.seq;
  for (const pipe of pipes) {
    const position = pipe.committedPosition;
    if (pipe.syncOwed || position?.sessionId !== session.sessionId) return undefined;
    seq = Math.min(seq, position.seq);
  }
  return { sessionId: session.sessionId, seq, resumeGatewayUrl: session.resumeGatewayUrl };
}

export interface SessionKeeperOptions {
  store: SessionStore;
  instance: string;
  shardCount: number;
  shards: ReadonlyMap<number, ShardRecord>;
  /** Each shard's position as last stored (the file read at start): kept until a newer one is resumable. */
  stored: Record<string, GatewaySession>;
  /** At most one write per this interval: the most a crash costs is a replay of this long's dispatches. */
  writeIntervalMs: number;
  log: Logger;
}

/**
 * Keeps SESSION_FILE: written when what it holds changed, at most once per `writeIntervalMs` (positions move with
 * almost every dispatch; writing each would cost a file write per dispatch), and at once on `flush()` (a clean stop).
 * A write that fails does not stop the process: it delivers without resume, says so once, and tries again.
 */
export class SessionKeeper {
  private readonly shards = new Map<string, GatewaySession>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private written = "";
  /** 1 while the last write succeeded (the /metrics gauge), 0 after a failure. */
  ok = 1;
  writes = 0;

  constructor(private readonly options: SessionKeeperOptions) {
    for (const [id, session] of Object.entries(options.stored)) this.shards.set(id, session);
  }

  /** Something the file holds changed: it is written within `writeIntervalMs`. */
  changed(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => this.flush(), this.options.writeIntervalMs);
    this.timer.unref?.();
  }

  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const state = this.state();
    const text = JSON.stringify(state);
    if (text === this.written) return;
    try {
      this.options.store.save(state);
      this.written = text;
      this.writes++;
      if (!this.ok) this.options.log("info", "the session file is writable again");
      this.ok = 1;
    } catch (error) {
      // Delivery goes on; only a restart's RESUME is lost (it will IDENTIFY instead).
      if (this.ok) this.options.log("error", "cannot write the session file; running without resume", { error: error instanceof Error ? error.message : String(error) });
      this.ok = 0;
    }
  }

  /** Stops writing (a killed process writes nothing more). */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private state(): StoredGateway {
    const guilds: StoredGateway["guilds"] = {};
    for (const [id, shard] of this.options.shards) {
      const position = resumablePosition(shard);
      if (position) this.shards.set(String(id), position);
      for (const pipe of shard.pipes) guilds[pipe.guildId] = { syncOwed: pipe.syncOwed, state: pipe.state };
    }
    return { version: SESSION_FILE_VERSION, instance: this.options.instance, shardCount: this.options.shardCount, shards: Object.fromEntries(this.shards), guilds };
  }
}
