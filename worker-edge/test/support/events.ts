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
