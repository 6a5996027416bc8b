import type { GuildSyncPayload } from "../../../protocol/index.js";
import type { HubStore } from "./store.js";

/**
 * The whole picture of a guild.sync once every part of it has arrived (at once for a sync sent whole), else
 * undefined. Parts wait in storage, so an eviction between two requests loses nothing.
 */
export function completeSync(store: HubStore, sync: GuildSyncPayload, now: number): GuildSyncPayload | undefined {
  const { part, ...picture } = sync;
  if (!part || part.count === 1) return picture;
  store.putSyncPart(part.syncId, part.index, part.count, { channels: sync.channels, voiceStates: sync.voiceStates }, now);
  const parts = store.syncParts(part.syncId);
  if (parts.length < part.count) return undefined;
  store.dropSyncPartsUpTo(part.syncId);
  return {
    guildId: sync.guildId,
    channels: parts.flatMap((received) => received.channels),
    voiceStates: parts.flatMap((received) => received.voiceStates),
  };
}
