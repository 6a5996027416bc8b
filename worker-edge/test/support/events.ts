import { TEST_GUILD_ID } from "./bindings.js";

const guildId = TEST_GUILD_ID;
let eventCounter = 0;
const nextId = () => `test-session:${++eventCounter}`;

export const roomCreated = (channelId: string, name = "Room") => ({
  id: nextId(),
  event: "room.created" as const,
  payload: { guildId, channelId, name, userLimit: 4 },
});
export const roomDeleted = (channelId: string) => ({ id: nextId(), event: "room.deleted" as const, payload: { guildId, channelId } });
export const joined = (channelId: string, userId: string, username?: string) => ({
  id: nextId(),
  event: "voice.joined" as const,
  payload: { guildId, channelId, userId, ...(username ? { username } : {}) },
});
export const left = (channelId: string, userId: string) => ({ id: nextId(), event: "voice.left" as const, payload: { guildId, channelId, userId } });
export const sync = (channels: string[], voiceStates: Array<{ userId: string; channelId: string }>) => ({
  id: nextId(),
  event: "guild.sync" as const,
  payload: { guildId, channels: channels.map((channelId) => ({ channelId, name: `Room ${channelId.slice(-3)}`, userLimit: 4 })), voiceStates },
});

// --- what gateway-node sends: states

export const NO_MEDIA = { selfMute: false, selfDeaf: false, mute: false, deaf: false, selfVideo: false, selfStream: false };
export type Media = typeof NO_MEDIA;

export const voiceState = (userId: string, channelId: string | null, media: Partial<Media> = {}, profile: { username?: string; avatar?: string | null } = {}) => ({
  id: nextId(),
  event: "voice.state" as const,
  payload: { guildId, userId, channelId, media: { ...NO_MEDIA, ...media }, ...profile },
});
export const channelState = (channelId: string, options: { type?: number; name?: string; userLimit?: number; parentId?: string | null; deleted?: true } = {}) => ({
  id: nextId(),
  event: "channel.state" as const,
  payload: { guildId, channelId, type: options.type ?? 2, name: options.name ?? "Room", userLimit: options.userLimit ?? 4, parentId: options.parentId ?? null, ...(options.deleted ? { deleted: true as const } : {}) },
});
export const guildState = (status: "unavailable" | "absent") => ({ id: nextId(), event: "guild.state" as const, payload: { guildId, status } });
