import type { GatewayDispatchPayload } from "discord-api-types/v10";
import type { GatewaySession } from "./gateway/shard.js";
import { HubOutbox, type HubOutboxOptions, type SessionPosition } from "./hub-outbox.js";
import type { Logger } from "./log.js";
import type { StoredGuild } from "./session-store.js";
import { readyLists, translate } from "./translate.js";

/**
 * Whether the bot is in the guild, as Discord last said: `unknown` before READY or GUILD_CREATE says (or after a
 * session file of an earlier release, which did not keep it); `unavailable`
 * in an outage (or listed in READY, its GUILD_CREATE still to come); `absent` when READY does not list it or a
 * GUILD_DELETE without `unavailable` removed it.
 */
export type GuildState = "unknown" | "available" | "unavailable" | "absent";

export interface GuildPipeOptions {
  guildId: string;
  shardId: number;
  /** How the operator named it: PRIMARY_GUILD_ID or one of ALLOWED_GUILD_IDS (for the log line that says what to fix). */
  configuredAs: "PRIMARY_GUILD_ID" | "ALLOWED_GUILD_IDS";
  /** What the session file kept of the guild (a resumed session tells nothing READY or GUILD_CREATE would). */
  stored: StoredGuild | undefined;
  /** Its shard's current session. */
  session: () => GatewaySession | undefined;
  /** Whether its shard is resuming: the dispatches before RESUMED are a replay of ones the hub may have had. */
  replaying: () => boolean;
  /** Asks the shard for a fresh Discord session, whose READY and GUILD_CREATE give a whole picture. */
  freshSession: (reason: string) => void;
  /** Something the session file keeps changed (the position, what is owed, the guild's state): written soon. */
  changed: () => void;
  /** Something the session file keeps changed that must be written before anything more is sent. */
  changedNow: () => void;
  outbox: Omit<HubOutboxOptions, "committed" | "pictureDelivered" | "pictureNeeded" | "lost" | "irregular">;
  log: Logger;
}

/**
 * One guild's pipe to its hub: each dispatch of its shard becomes the state it says (or a whole picture), queued in
 * Discord's order in the guild's own outbox, so one guild's slow or failing hub never holds up another's. It keeps
 * no picture of its own: the hub holds the truth. What it keeps is what resuming needs: how far its hub has
 * accepted the session, and whether the hub is owed a picture only a fresh session gives.
 */
export class GuildPipe {
  readonly guildId: string;
  readonly shardId: number;
  readonly outbox: HubOutbox;
  state: GuildState;
  eventsQueued = 0;
  /**
   * The hub is owed a whole picture of the current session that it has not accepted: from READY until its
   * GUILD_CREATE's sync (or the absence READY says) is delivered, and after the queue was lost; or a replay of the
   * session could not be trusted (an irregular batch is out). Kept in the session file: a restart that owes one
   * IDENTIFYs, since a resumed session carries no READY and no GUILD_CREATE.
   */
  get syncOwed(): boolean {
    return this.owed || this.replayUnsafe;
  }

  private owed: boolean;
  /** An irregular batch is out (see OutboxQueue): a replay of its dispatches cannot be trusted to reproduce it. */
  private replayUnsafe = false;
  private position: SessionPosition | undefined;

  constructor(private readonly options: GuildPipeOptions) {
    this.guildId = options.guildId;
    this.shardId = options.shardId;
    this.state = options.stored?.state ?? "unknown";
    // A guild the file does not know (newly served) is owed its first picture.
    this.owed = options.stored?.syncOwed ?? true;
    this.outbox = new HubOutbox({
      ...options.outbox,
      committed: (position) => this.commit(position),
      pictureDelivered: (sessionId) => this.pictureDelivered(sessionId),
      pictureNeeded: () => this.pictureNeeded(),
      lost: () => this.lost(),
      irregular: (inFlight) => {
        this.replayUnsafe = inFlight;
        options.changedNow();
      },
    });
  }

  /** How far the hub has accepted this guild's dispatches of its shard's session. */
  get committedPosition(): SessionPosition | undefined {
    return this.position;
  }

  /** Its shard resumes a stored session: every dispatch up to its position is delivered for this guild. */
  resumeFrom(position: SessionPosition): void {
    this.position = position;
  }

  /**
   * In the guild, as far as Discord said: an outage is still membership, and so is `unknown` (a session resumed from
   * a file of an earlier release, which did not keep what Discord last said).
   */
  get member(): boolean {
    return this.state !== "absent";
  }

  /** Every dispatch of the shard passes here, in order: one of another guild still moves this guild's position. */
  onDispatch(payload: GatewayDispatchPayload, session: GatewaySession): void {
    const { sessionId } = session;
    const seq = payload.s;
    if (payload.t === "READY") {
      // A fresh session: its GUILD_CREATE (or READY's silence about the guild) is the picture the hub is owed.
      this.owe(true);
      const listed = readyLists(payload, this.guildId);
      this.become(listed ? "unavailable" : "absent");
      if (listed) return this.outbox.passed(sessionId, seq);
      return this.queuePicture({ absent: this.absence(`${sessionId}:${seq}`) }, sessionId, seq);
    }
    const translation = translate(payload, this.guildId);
    switch (translation.kind) {
      case "none":
        return this.outbox.passed(sessionId, seq);
      case "sync":
        this.become("available");
        return this.queuePicture({ sync: translation.sync }, sessionId, seq);
      case "absent":
        this.become("absent");
        return this.queuePicture({ absent: this.absence(`${sessionId}:${seq}`) }, sessionId, seq);
      case "state":
        if (translation.event.event === "guild.state") this.become("unavailable");
        this.eventsQueued++;
        return this.outbox.enqueueState({ ...translation.event, id: `${sessionId}:${seq}` }, sessionId, seq, !this.options.replaying());
    }
  }

  private queuePicture(picture: Parameters<HubOutbox["enqueuePicture"]>[0], sessionId: string, seq: number, irregular = false): void {
    this.eventsQueued++;
    this.outbox.enqueuePicture(picture, sessionId, seq, irregular);
  }

  private absence(id: string) {
    return { id, event: "guild.state" as const, payload: { guildId: this.guildId, status: "absent" as const } };
  }

  /**
   * The hub needs a whole picture (a new lease term) and none is queued. No session yet (the start's claim came
   * first): the one being identified brings it. The bot's absence is one at once; a guild in an outage gets its
   * picture when the GUILD_CREATE that ends it comes; any other guild's picture takes a fresh session (an IDENTIFY
   * from the daily budget: rare, see docs/operations.md).
   */
  private pictureNeeded(): void {
    const session = this.options.session();
    if (this.state === "absent" && session) {
      return this.queuePicture({ absent: this.absence(`${session.sessionId}:${session.seq}:absent`) }, session.sessionId, session.seq, true);
    }
    this.owe(true);
    if (session && this.state !== "unavailable") this.options.freshSession(`the hub of guild ${this.guildId} needs a whole picture for a new lease term`);
  }

  /** The queue was dropped past compaction: only a fresh session's picture makes the hub whole again. */
  private lost(): void {
    this.owe(true);
    if (this.state !== "unavailable" && this.state !== "absent") this.options.freshSession(`guild ${this.guildId}'s outbox overflowed`);
  }

  private pictureDelivered(sessionId: string): void {
    if (this.options.session()?.sessionId === sessionId) this.owe(false);
  }

  private owe(owed: boolean): void {
    if (this.owed === owed) return;
    this.owed = owed;
    this.options.changed();
  }

  private commit(position: SessionPosition): void {
    if (this.options.session()?.sessionId !== position.sessionId) return; // an older session's tail
    if (this.position?.sessionId === position.sessionId && position.seq <= this.position.seq) return; // never move back
    this.position = position;
    this.options.changed();
  }

  private become(state: GuildState): void {
    const before = this.state;
    this.state = state;
    if (state === before) return;
    this.options.changed();
    const guildId = this.guildId;
    if (this.member) return this.options.log("info", "guild state", { guildId, shard: this.shardId, state });
    const where = this.options.configuredAs === "PRIMARY_GUILD_ID" ? "PRIMARY_GUILD_ID" : "a guild of ALLOWED_GUILD_IDS";
    this.options.log("error", `the bot is not in ${where}: invite it to the guild (or fix the id); its hub shows no rooms meanwhile`, { guildId, shard: this.shardId, state });
  }
}
