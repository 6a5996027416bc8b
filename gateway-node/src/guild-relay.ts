import type { GatewayDispatchPayload } from "discord-api-types/v10";
import type { GatewaySession } from "./gateway/shard.js";
import { GuildView } from "./guild-view.js";
import { HubOutbox, syncEvents, type DeliveredEvent, type HubOutboxOptions, type OutboxEvent } from "./hub-outbox.js";
import type { Logger } from "./log.js";
import type { StoredGuild } from "./session-store.js";

/** Whether the bot is in the guild, as Discord last said: READY's guild list, GUILD_CREATE and GUILD_DELETE. */
export type GuildState = "unknown" | "available" | "unavailable" | "not a member" | "removed";

/** A position in one shard's session: every dispatch up to `seq` is accounted for. */
export interface SessionPosition {
  sessionId: string;
  seq: number;
}

export interface GuildRelayOptions {
  guildId: string;
  shardId: number;
  /** How the operator named it: PRIMARY_GUILD_ID or one of ALLOWED_GUILD_IDS (for the log line that says what to fix). */
  configuredAs: "PRIMARY_GUILD_ID" | "ALLOWED_GUILD_IDS";
  stored: StoredGuild | undefined;
  /** The session its shard resumes: a guild that had delivered past the shard's stored seq skips what it delivered. */
  resumingSessionId: string | undefined;
  /** Its shard's current session. */
  session: () => GatewaySession | undefined;
  /** The guild's committed position moved: the session file should be written. */
  committed: () => void;
  outbox: Omit<HubOutboxOptions, "currentSync" | "delivered" | "committed">;
  log: Logger;
}

/**
 * One guild's way to its hub: the picture kept from its shard's dispatches, the outbox that delivers its events (in
 * order, at least once, in its own batches, so one guild's slow or failing hub never holds up another's) and the
 * picture the hub has accepted, which a restarted process resumes from.
 */
export class GuildRelay {
  readonly guildId: string;
  readonly shardId: number;
  readonly outbox: HubOutbox;
  state: GuildState = "unknown";
  eventsQueued = 0;
  private view: GuildView;
  /** The picture as the hub has accepted it, kept from the events it accepted. */
  private readonly committedView: GuildView;
  /**
   * Since when the hub is owed a fresh picture: a new session's READY or an outage's GUILD_DELETE arms it, and only a
   * whole picture taken after that settles it (an older sync still in flight does not). Saved with the guild, so a
   * restart in between syncs again.
   */
  private syncOwedSince: SessionPosition | undefined;
  private position: SessionPosition | undefined;
  /** Dispatches this guild delivered before a restart, replayed because another guild of the shard had not. */
  private readonly deliveredBefore: SessionPosition | undefined;

  constructor(private readonly options: GuildRelayOptions) {
    const { guildId, stored } = options;
    this.guildId = guildId;
    this.shardId = options.shardId;
    this.view = stored ? GuildView.from(guildId, stored.view) : new GuildView(guildId);
    this.committedView = stored ? GuildView.from(guildId, stored.view) : new GuildView(guildId);
    this.syncOwedSince = stored?.view.syncDue ? { sessionId: stored.sessionId, seq: stored.seq } : undefined;
    this.position = stored && { sessionId: stored.sessionId, seq: stored.seq };
    this.deliveredBefore = stored && stored.sessionId === options.resumingSessionId ? this.position : undefined;
    this.outbox = new HubOutbox({
      ...options.outbox,
      // A picture taken while the view still waits for a GUILD_CREATE is not the guild's: it settles nothing.
      currentSync: () => {
        const session = options.session();
        return { payload: this.view.sync(), sessionId: session?.sessionId, seq: session?.seq, settles: !this.view.awaitingGuild };
      },
      delivered: (events) => events.forEach((event) => this.applyDelivered(event)),
      committed: (sessionId, seq) => this.commit(sessionId, seq),
    });
  }

  /** Where this guild's delivery stands in its shard's session; the shard resumes from its slowest guild. */
  get committedPosition(): SessionPosition | undefined {
    return this.position;
  }

  /** What the session file keeps for this guild: its accepted picture, at its committed position. */
  stored(): StoredGuild | undefined {
    if (!this.position) return undefined;
    return { ...this.position, view: { ...this.committedView.export(), syncDue: this.syncOwedSince !== undefined } };
  }

  /** Every dispatch of the shard passes here, in order: one of another guild still moves this guild's position. */
  onDispatch(payload: GatewayDispatchPayload, session: GatewaySession): void {
    const skip = this.deliveredBefore;
    if (skip && session.sessionId === skip.sessionId && payload.s <= skip.seq) {
      // Already in the accepted picture: translating it again could reuse an id for a different event.
      this.outbox.enqueue([], session.sessionId, payload.s);
      return;
    }
    this.track(payload);
    if (payload.t === "READY") {
      // A fresh session: its GUILD_CREATE becomes one guild.sync. Until the hub accepts that sync, a restart must
      // sync again, so the committed picture (still the hub's) carries the promise.
      this.view = new GuildView(this.guildId);
      this.view.expectSync();
      this.syncOwedSince = { sessionId: session.sessionId, seq: payload.s };
    }
    if (payload.t === "GUILD_DELETE" && payload.d.id === this.guildId && payload.d.unavailable) {
      // An outage: the GUILD_CREATE that ends it must sync, also after a restart in between.
      this.syncOwedSince = { sessionId: session.sessionId, seq: payload.s };
    }
    const translation = this.view.translate(payload);
    const events: OutboxEvent[] =
      translation.kind === "sync"
        ? syncEvents(translation.sync, `${session.sessionId}:${payload.s}`)
        : translation.events.map((event, index, all) => ({ ...event, id: all.length === 1 ? `${session.sessionId}:${payload.s}` : `${session.sessionId}:${payload.s}:${index}` }));
    this.eventsQueued += events.length;
    this.outbox.enqueue(events, session.sessionId, payload.s);
  }

  /** In the guild, as far as Discord said: an outage is still membership, a removal or a missing invite is not. */
  get member(): boolean {
    return this.state !== "not a member" && this.state !== "removed";
  }

  private applyDelivered({ event, origin, settles }: DeliveredEvent): void {
    this.committedView.apply(event);
    const owed = this.syncOwedSince;
    if (event.event !== "guild.sync" || !settles || !origin || !owed) return;
    const part = event.payload.part;
    const whole = !part || part.index === part.count - 1;
    if (whole && origin.sessionId === owed.sessionId && origin.seq > owed.seq) this.syncOwedSince = undefined;
  }

  private commit(sessionId: string, seq: number): void {
    if (this.options.session()?.sessionId !== sessionId) return; // an older session's tail
    if (this.position?.sessionId === sessionId && seq <= this.position.seq) return; // never move back
    this.position = { sessionId, seq };
    this.options.committed();
  }

  private track(payload: GatewayDispatchPayload): void {
    const before = this.state;
    const guildId = this.guildId;
    if (payload.t === "READY") this.state = payload.d.guilds.some((g) => g.id === guildId) ? "unavailable" : "not a member";
    else if (payload.t === "GUILD_CREATE" && payload.d.id === guildId) this.state = "available";
    else if (payload.t === "GUILD_DELETE" && payload.d.id === guildId) this.state = payload.d.unavailable ? "unavailable" : "removed";
    if (this.state === before) return;
    if (this.member) this.options.log("info", "guild state", { guildId, shard: this.shardId, state: this.state });
    else {
      const where = this.options.configuredAs === "PRIMARY_GUILD_ID" ? "PRIMARY_GUILD_ID" : "a guild of ALLOWED_GUILD_IDS";
      this.options.log("error", `the bot is not in ${where}: invite it to the guild (or fix the id)`, { guildId, shard: this.shardId, state: this.state });
    }
  }
}
