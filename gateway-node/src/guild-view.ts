import { ChannelType, type GatewayDispatchPayload } from "discord-api-types/v10";
import type { AppEvent, GuildSyncPayload, InternalEvent } from "../../protocol/index.js";

interface VoiceMember {
  channelId: string;
  username?: string;
  avatar?: string | null;
}

interface VoiceRoom {
  channelId: string;
  name: string;
  parentId: string | null;
  userLimit: number;
}

type UserLike = { id: string; username?: string; global_name?: string | null; avatar?: string | null };

/** What the hub needs per dispatch: app events, or a full guild.sync after a fresh session or an outage. */
export type Translation = { kind: "events"; events: AppEvent[] } | { kind: "sync"; sync: GuildSyncPayload };

/**
 * The gateway's picture of one guild's voice rooms and members, kept from dispatches, so a VOICE_STATE_UPDATE
 * (which carries only the new channel) can be turned into left(old) + joined(new), and a guild.sync can be
 * built at any time. Rooms are voice channels only: stage channels (and text channels, categories) are not
 * rooms, and someone on a stage is, for the hub, in no room.
 */
export class GuildView {
  private readonly rooms = new Map<string, VoiceRoom>();
  private readonly members = new Map<string, VoiceMember>();
  private syncDue = true;
  private syncParts: Array<Pick<GuildSyncPayload, "channels" | "voiceStates">> = [];

  constructor(readonly guildId: string) {}

  /** The picture as plain data, persisted with the session so a restarted process can resume correctly. */
  export(): Omit<GuildViewSnapshot, "syncDue"> {
    return { rooms: [...this.rooms.values()], members: [...this.members.entries()].map(([userId, m]) => ({ userId, ...m })) };
  }

  static from(guildId: string, snapshot: GuildViewSnapshot): GuildView {
    const view = new GuildView(guildId);
    for (const room of snapshot.rooms) view.rooms.set(room.channelId, room);
    for (const { userId, ...member } of snapshot.members) view.members.set(userId, member);
    view.syncDue = snapshot.syncDue ?? false;
    return view;
  }

  /**
   * Applies an event the hub accepted, so this view is the hub's picture: what a restarted process resumes from.
   * A sync (or its last part) replaces the picture. Whether a sync is still owed is the service's to track.
   */
  apply(event: InternalEvent): void {
    switch (event.event) {
      case "room.created":
      case "room.updated": {
        const { guildId: _guild, ...room } = event.payload;
        this.rooms.set(room.channelId, { ...room, parentId: room.parentId ?? null });
        return;
      }
      case "room.deleted":
        this.rooms.delete(event.payload.channelId);
        return;
      case "voice.joined": {
        const { guildId: _guild, userId, ...member } = event.payload;
        this.members.set(userId, member);
        return;
      }
      case "voice.left":
        if (this.members.get(event.payload.userId)?.channelId === event.payload.channelId) this.members.delete(event.payload.userId);
        return;
      case "guild.sync": {
        // Like the hub, take a multi-part picture only once its last part is in.
        const { part, channels, voiceStates } = event.payload;
        const parts = part && part.index > 0 ? [...this.syncParts, { channels, voiceStates }] : [{ channels, voiceStates }];
        if (part && part.index < part.count - 1) {
          this.syncParts = parts;
          return;
        }
        this.syncParts = [];
        this.rooms.clear();
        this.members.clear();
        for (const { channelId, name, parentId, userLimit } of parts.flatMap((p) => p.channels)) {
          this.rooms.set(channelId, { channelId, name, parentId: parentId ?? null, userLimit });
        }
        for (const { userId, ...member } of parts.flatMap((p) => p.voiceStates)) this.members.set(userId, member);
        return;
      }
    }
  }

  /** Whether the view waits for a GUILD_CREATE (a new session, an outage): until then its picture is not the guild's. */
  get awaitingGuild(): boolean {
    return this.syncDue;
  }

  /** A new Discord session starts: its GUILD_CREATE must become a guild.sync. */
  expectSync(): void {
    this.syncDue = true;
  }

  translate(payload: GatewayDispatchPayload): Translation {
    const none: Translation = { kind: "events", events: [] };
    switch (payload.t) {
      case "GUILD_CREATE": {
        if (payload.d.id !== this.guildId || !this.syncDue) return none;
        this.syncDue = false;
        this.loadGuild(payload.d as unknown as GuildCreateLike);
        return { kind: "sync", sync: this.sync() };
      }
      case "GUILD_DELETE":
        // unavailable: true is an outage, not a removal; the GUILD_CREATE that ends it resyncs.
        if (payload.d.id === this.guildId) this.syncDue = true;
        return none;
      case "CHANNEL_CREATE": {
        const room = voiceRoom(payload.d, this.guildId);
        if (!room || this.rooms.has(room.channelId)) return none;
        this.rooms.set(room.channelId, room);
        return { kind: "events", events: [{ event: "room.created", payload: { guildId: this.guildId, ...room } }] };
      }
      case "CHANNEL_UPDATE": {
        // Discord sends the whole channel on any change (topic, permissions, position...): only a new name,
        // limit or parent of a room the hub knows is news.
        const room = voiceRoom(payload.d, this.guildId);
        const known = room && this.rooms.get(room.channelId);
        if (!room || !known) return none;
        this.rooms.set(room.channelId, room);
        if (known.name === room.name && known.userLimit === room.userLimit && known.parentId === room.parentId) return none;
        return { kind: "events", events: [{ event: "room.updated", payload: { guildId: this.guildId, ...room } }] };
      }
      case "CHANNEL_DELETE": {
        const room = voiceRoom(payload.d, this.guildId);
        if (!room || !this.rooms.delete(room.channelId)) return none;
        return { kind: "events", events: [{ event: "room.deleted", payload: { guildId: this.guildId, channelId: room.channelId } }] };
      }
      case "VOICE_STATE_UPDATE": {
        if (payload.d.guild_id !== this.guildId) return none;
        const user = payload.d.member?.user as UserLike | undefined;
        return { kind: "events", events: this.voiceState(payload.d.user_id, payload.d.channel_id, user) };
      }
      default:
        return none;
    }
  }

  private voiceState(userId: string, channelId: string | null, user: UserLike | undefined): AppEvent[] {
    const guildId = this.guildId;
    const previous = this.members.get(userId);
    const profile = profileOf(user) ?? (previous ? { username: previous.username, avatar: previous.avatar } : {});
    // Disconnected, or on a stage channel (not a room): either way out of every room.
    if (channelId === null || !this.rooms.has(channelId)) {
      if (!previous) return [];
      this.members.delete(userId);
      return [{ event: "voice.left", payload: { guildId, channelId: previous.channelId, userId } }];
    }
    this.members.set(userId, { channelId, ...profile });
    if (previous?.channelId === channelId) return []; // mute, deafen, stream: not events
    const events: AppEvent[] = [];
    if (previous) events.push({ event: "voice.left", payload: { guildId, channelId: previous.channelId, userId } });
    events.push({ event: "voice.joined", payload: withoutUndefined({ guildId, channelId, userId, ...profile }) });
    return events;
  }

  private loadGuild(guild: GuildCreateLike): void {
    this.rooms.clear();
    this.members.clear();
    for (const channel of guild.channels ?? []) {
      const room = voiceRoom(channel, this.guildId);
      if (room) this.rooms.set(room.channelId, room);
    }
    const users = new Map((guild.members ?? []).filter((m) => m.user).map((m) => [m.user!.id, m.user!]));
    for (const state of guild.voice_states ?? []) {
      if (state.channel_id && this.rooms.has(state.channel_id)) this.members.set(state.user_id, { channelId: state.channel_id, ...profileOf(users.get(state.user_id)) });
    }
  }

  /** The whole picture, for the hub to diff against. */
  sync(): GuildSyncPayload {
    return {
      guildId: this.guildId,
      channels: [...this.rooms.values()],
      voiceStates: [...this.members.entries()].map(([userId, member]) => withoutUndefined({ userId, ...member })),
    };
  }
}

export interface GuildViewSnapshot {
  rooms: VoiceRoom[];
  members: Array<VoiceMember & { userId: string }>;
  /** A new session began whose guild.sync the hub has not accepted yet: its replayed GUILD_CREATE must sync. */
  syncDue?: boolean;
}

interface GuildCreateLike {
  channels?: Array<{ id: string; type: number; name?: string | null; parent_id?: string | null; user_limit?: number }>;
  members?: Array<{ user?: UserLike }>;
  voice_states?: Array<{ user_id: string; channel_id: string | null }>;
}

/** A guild voice channel as a room; anything else (stage type 13, text, category) is not one. */
function voiceRoom(channel: unknown, guildId: string): VoiceRoom | undefined {
  const c = channel as { id: string; type: number; guild_id?: string; name?: string | null; parent_id?: string | null; user_limit?: number };
  if (c.type !== ChannelType.GuildVoice || (c.guild_id !== undefined && c.guild_id !== guildId)) return undefined;
  return { channelId: c.id, name: c.name ?? "voice", parentId: c.parent_id ?? null, userLimit: c.user_limit ?? 0 };
}

function profileOf(user: UserLike | undefined): { username?: string; avatar?: string | null } | undefined {
  if (!user) return undefined;
  return withoutUndefined({ username: user.global_name ?? user.username, avatar: user.avatar ?? undefined });
}

function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
