import { ChannelType, type APIUser, type GatewayVoiceState } from "discord-api-types/v10";
import { snowflake } from "./snowflake.js";

export interface ChannelObject {
  id: string;
  type: ChannelType;
  guild_id: string;
  name: string;
  position: number;
  parent_id: string | null;
  user_limit?: number;
  bitrate?: number;
  rtc_region?: null;
  topic?: null;
  last_message_id?: null;
  rate_limit_per_user?: number;
  nsfw: boolean;
  flags: number;
  permission_overwrites: [];
}

export interface SimUser {
  id: string;
  username: string;
  avatar?: string | null;
}

/** A voice state's flags, as Discord's `self_mute`, `self_deaf`, `mute`, `deaf`, `self_video`, `self_stream`. */
export interface VoiceFlags {
  selfMute: boolean;
  selfDeaf: boolean;
  mute: boolean;
  deaf: boolean;
  selfVideo: boolean;
  selfStream: boolean;
}

export interface VoiceStateRecord extends VoiceFlags {
  userId: string;
  channelId: string;
  sessionId: string;
}

export type DispatchListener = (event: string, data: unknown) => void;

/**
 * The simulated guild: its channels, users and who is in which voice channel. Every change is announced
 * to the gateway as the dispatch Discord would send.
 */
export class SimWorld {
  readonly channels = new Map<string, ChannelObject>();
  readonly users = new Map<string, SimUser>();
  readonly voiceStates = new Map<string, VoiceStateRecord>();
  readonly ownerId = snowflake();
  /** False during a scripted outage: Discord sends nothing for an unavailable guild until its GUILD_CREATE. */
  available = true;
  /** False once the bot is removed: READY no longer lists the guild, until the bot is invited again. */
  botMember = true;
  private readonly listeners = new Set<DispatchListener>();

  constructor(
    readonly guildId: string,
    readonly guildName: string,
  ) {}

  onDispatch(listener: DispatchListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private dispatch(event: string, data: unknown): void {
    if (!this.available && event !== "GUILD_DELETE") return;
    for (const listener of this.listeners) listener(event, data);
  }

  addUser(user: SimUser): void {
    this.users.set(user.id, { avatar: null, ...user });
  }

  createChannel(input: { id?: string; name: string; type?: ChannelType; parentId?: string | null; userLimit?: number }): ChannelObject {
    const type = input.type ?? ChannelType.GuildVoice;
    const channel: ChannelObject = {
      id: input.id ?? snowflake(),
      type,
      guild_id: this.guildId,
      name: input.name,
      position: this.channels.size,
      parent_id: input.parentId ?? null,
      nsfw: false,
      flags: 0,
      permission_overwrites: [],
      ...(type === ChannelType.GuildText ? { topic: null, last_message_id: null, rate_limit_per_user: 0 } : {}),
      ...(type === ChannelType.GuildVoice || type === ChannelType.GuildStageVoice
        ? { user_limit: input.userLimit ?? 0, bitrate: 64_000, rtc_region: null, last_message_id: null, rate_limit_per_user: 0 }
        : {}),
      ...(type === ChannelType.GuildStageVoice ? { topic: null } : {}),
    };
    this.channels.set(channel.id, channel);
    this.dispatch("CHANNEL_CREATE", channel);
    return channel;
  }

  /** Renames, re-limits or moves a channel; Discord's CHANNEL_UPDATE carries the whole updated channel object. */
  updateChannel(channelId: string, change: { name?: string; userLimit?: number; parentId?: string | null }): ChannelObject | undefined {
    const channel = this.channels.get(channelId);
    if (!channel) return undefined;
    if (change.userLimit !== undefined && channel.user_limit === undefined) throw new Error(`channel ${channelId} has no user limit`);
    const updated: ChannelObject = {
      ...channel,
      ...(change.name !== undefined ? { name: change.name } : {}),
      ...(change.userLimit !== undefined ? { user_limit: change.userLimit } : {}),
      ...(change.parentId !== undefined ? { parent_id: change.parentId } : {}),
    };
    this.channels.set(channelId, updated);
    this.dispatch("CHANNEL_UPDATE", updated);
    return updated;
  }

  /** Removes a channel; Discord then disconnects everyone in it, one null-channel voice update each. */
  deleteChannel(channelId: string): ChannelObject | undefined {
    const channel = this.channels.get(channelId);
    if (!channel) return undefined;
    this.channels.delete(channelId);
    this.dispatch("CHANNEL_DELETE", channel);
    for (const state of [...this.voiceStates.values()].filter((s) => s.channelId === channelId)) {
      this.setVoiceState(state.userId, null);
    }
    return channel;
  }

  /** Join, move, leave or toggle a flag (mute, deafen, camera, stream): one VOICE_STATE_UPDATE carrying only the new state. */
  setVoiceState(userId: string, channelId: string | null, flags: Partial<VoiceFlags> = {}): void {
    const user = this.users.get(userId);
    if (!user) throw new Error(`unknown user ${userId}`);
    const current = this.voiceStates.get(userId);
    if (channelId === null) {
      if (!current) return;
      this.voiceStates.delete(userId);
      this.dispatch("VOICE_STATE_UPDATE", this.voiceStatePayload({ ...current, channelId: null }, true));
      return;
    }
    const channel = this.channels.get(channelId);
    if (!channel || (channel.type !== ChannelType.GuildVoice && channel.type !== ChannelType.GuildStageVoice)) {
      throw new Error(`unknown voice channel ${channelId}`);
    }
    const next: VoiceStateRecord = {
      userId,
      channelId,
      selfMute: flags.selfMute ?? current?.selfMute ?? false,
      selfDeaf: flags.selfDeaf ?? current?.selfDeaf ?? false,
      mute: flags.mute ?? current?.mute ?? false,
      deaf: flags.deaf ?? current?.deaf ?? false,
      selfVideo: flags.selfVideo ?? current?.selfVideo ?? false,
      selfStream: flags.selfStream ?? current?.selfStream ?? false,
      sessionId: current?.sessionId ?? snowflake().slice(-16),
    };
    this.voiceStates.set(userId, next);
    this.dispatch("VOICE_STATE_UPDATE", this.voiceStatePayload(next, true));
  }

  /** GUILD_DELETE unavailable:true; the world keeps changing, silently, until restoreGuild(). */
  guildOutage(): void {
    if (!this.available) return;
    this.dispatch("GUILD_DELETE", { id: this.guildId, unavailable: true });
    this.available = false;
  }

  /** The bot is removed from the guild: GUILD_DELETE without `unavailable`, and nothing more from it. */
  removeBot(): void {
    if (!this.botMember) return;
    if (this.available) this.dispatch("GUILD_DELETE", { id: this.guildId });
    this.available = false;
    this.botMember = false;
  }

  /**
   * The guild is back (an outage ends, or the bot is invited again): one GUILD_CREATE with the full current state,
   * which is how clients learn what they missed.
   */
  restoreGuild(): void {
    if (this.available) return;
    this.available = true;
    this.botMember = true;
    this.dispatch("GUILD_CREATE", this.guildCreatePayload());
  }

  member(userId: string): { user: APIUser } & Record<string, unknown> {
    const user = this.users.get(userId);
    const apiUser: APIUser = {
      id: userId,
      username: user?.username.toLowerCase() ?? "unknown",
      global_name: user?.username ?? null,
      avatar: user?.avatar ?? null,
      discriminator: "0",
    };
    // The guild member's server mute and deafen are the ones its voice state carries.
    const voice = this.voiceStates.get(userId);
    return { user: apiUser, roles: [], joined_at: new Date(0).toISOString(), deaf: voice?.deaf ?? false, mute: voice?.mute ?? false, flags: 0, nick: null };
  }

  /** A voice state as Discord sends it: in VOICE_STATE_UPDATE with guild_id and member, in GUILD_CREATE without. */
  voiceStatePayload(state: Omit<VoiceStateRecord, "channelId"> & { channelId: string | null }, asDispatch: boolean): GatewayVoiceState {
    return {
      ...(asDispatch ? { guild_id: this.guildId, member: this.member(state.userId) } : {}),
      channel_id: state.channelId,
      user_id: state.userId,
      session_id: state.sessionId,
      deaf: state.deaf,
      mute: state.mute,
      self_deaf: state.selfDeaf,
      self_mute: state.selfMute,
      self_video: state.selfVideo,
      ...(state.selfStream ? { self_stream: true } : {}),
      suppress: false,
      request_to_speak_timestamp: null,
    } as GatewayVoiceState;
  }

  guildCreatePayload(): Record<string, unknown> {
    const states = [...this.voiceStates.values()];
    return {
      id: this.guildId,
      name: this.guildName,
      icon: null,
      owner_id: this.ownerId,
      unavailable: false,
      large: false,
      member_count: this.users.size,
      joined_at: new Date(0).toISOString(),
      roles: [],
      emojis: [],
      stickers: [],
      features: [],
      channels: [...this.channels.values()],
      threads: [],
      voice_states: states.map((state) => this.voiceStatePayload(state, false)),
      members: states.map((state) => this.member(state.userId)),
      presences: [],
      stage_instances: [],
      guild_scheduled_events: [],
    };
  }
}
