import type { GatewayDispatchPayload } from "discord-api-types/v10";
import {
  MAX_CHANNEL_USER_LIMIT,
  type ChannelStatePayload,
  type GuildSyncPayload,
  type InternalEvent,
  type VoiceMedia,
  type VoiceStatePayload,
} from "../../protocol/index.js";

/**
 * What one dispatch says about one guild, as the hub takes it: a state (a user's voice state, a channel's state, an
 * outage), a whole picture (a GUILD_CREATE; the bot removed), or nothing. No memory of earlier dispatches: the hub
 * holds the truth and derives joins, moves and leaves from the states.
 */
export type Translation =
  | { kind: "state"; event: InternalEvent }
  | { kind: "sync"; sync: GuildSyncPayload }
  | { kind: "absent" }
  | { kind: "none" };

const NONE: Translation = { kind: "none" };

type UserLike = { id: string; username?: string; global_name?: string | null; avatar?: string | null };
type VoiceStateLike = {
  user_id: string;
  channel_id: string | null;
  self_mute?: boolean;
  self_deaf?: boolean;
  mute?: boolean;
  deaf?: boolean;
  self_video?: boolean;
  self_stream?: boolean;
};
type ChannelLike = { id: string; type: number; guild_id?: string; name?: string | null; parent_id?: string | null; user_limit?: number };

export function translate(payload: GatewayDispatchPayload, guildId: string): Translation {
  switch (payload.t) {
    case "GUILD_CREATE": {
      const guild = payload.d as unknown as GuildCreateLike;
      if (guild.id !== guildId) return NONE;
      if (guild.unavailable) return { kind: "state", event: { event: "guild.state", payload: { guildId, status: "unavailable" } } };
      return { kind: "sync", sync: guildPicture(guild) };
    }
    case "GUILD_DELETE":
      if (payload.d.id !== guildId) return NONE;
      // unavailable: an outage (the GUILD_CREATE that ends it is a picture); without it the bot was removed.
      if (payload.d.unavailable) return { kind: "state", event: { event: "guild.state", payload: { guildId, status: "unavailable" } } };
      return { kind: "absent" };
    case "CHANNEL_CREATE":
    case "CHANNEL_UPDATE":
    case "CHANNEL_DELETE": {
      const channel = payload.d as unknown as ChannelLike;
      if (channel.guild_id !== guildId) return NONE;
      const state = channelState(guildId, channel);
      return { kind: "state", event: { event: "channel.state", payload: payload.t === "CHANNEL_DELETE" ? { ...state, deleted: true } : state } };
    }
    case "VOICE_STATE_UPDATE": {
      if (payload.d.guild_id !== guildId) return NONE;
      const user = payload.d.member?.user as UserLike | undefined;
      return { kind: "state", event: { event: "voice.state", payload: voiceState(guildId, payload.d, user) } };
    }
    default:
      return NONE;
  }
}

/** READY's guild list: whether the bot is in the guild (listed, unavailable until its GUILD_CREATE) or not. */
export function readyLists(payload: GatewayDispatchPayload, guildId: string): boolean {
  return payload.t === "READY" && payload.d.guilds.some((guild) => guild.id === guildId);
}

export function voiceState(guildId: string, state: VoiceStateLike, user: UserLike | undefined): VoiceStatePayload {
  return withoutUndefined({ guildId, userId: state.user_id, channelId: state.channel_id, ...profileOf(user), media: mediaOf(state) });
}

export function channelState(guildId: string, channel: ChannelLike): ChannelStatePayload {
  return {
    guildId,
    channelId: channel.id,
    type: channel.type,
    name: channel.name || `channel ${channel.id}`,
    parentId: channel.parent_id ?? null,
    userLimit: Math.min(channel.user_limit ?? 0, MAX_CHANNEL_USER_LIMIT),
  };
}

/** A GUILD_CREATE as the whole picture: every channel with its type, and every member in a channel with their flags. */
function guildPicture(guild: GuildCreateLike): GuildSyncPayload {
  const users = new Map((guild.members ?? []).flatMap((m) => (m.user ? [[m.user.id, m.user] as const] : [])));
  return {
    guildId: guild.id,
    channels: (guild.channels ?? []).map((channel) => {
      const { guildId: _guild, ...state } = channelState(guild.id, channel);
      return state;
    }),
    voiceStates: (guild.voice_states ?? []).flatMap((state) => {
      if (state.channel_id === null) return [];
      const { guildId: _guild, ...member } = voiceState(guild.id, state, users.get(state.user_id));
      return [{ ...member, channelId: state.channel_id }];
    }),
  };
}

function mediaOf(state: VoiceStateLike): VoiceMedia {
  return {
    selfMute: state.self_mute ?? false,
    selfDeaf: state.self_deaf ?? false,
    mute: state.mute ?? false,
    deaf: state.deaf ?? false,
    selfVideo: state.self_video ?? false,
    selfStream: state.self_stream ?? false,
  };
}

function profileOf(user: UserLike | undefined): { username?: string; avatar?: string | null } {
  if (!user) return {};
  return withoutUndefined({ username: user.global_name ?? user.username, avatar: user.avatar ?? undefined });
}

interface GuildCreateLike {
  id: string;
  unavailable?: boolean;
  channels?: ChannelLike[];
  members?: Array<{ user?: UserLike }>;
  voice_states?: VoiceStateLike[];
}

/** The object without its undefined fields (optional wire fields are absent, never undefined). */
export function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
