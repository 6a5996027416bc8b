import type { GuildSyncPayload } from "../../../protocol/index.js";
import type { HubStore } from "./store.js";

/**
 * The whole picture of a guild.sync once every part of it has arrived (at once for a sync sent whole), else
 * undefined. Parts wait in storage, so an eviction between two requests loses nothing. A picture that began
 * before the last one applied is older than it and is dropped.
 */
export function completeSync(store: HubStore, sync: GuildSyncPayload, now: number): GuildSyncPayload | undefined {
  const arrival = store.nextSyncArrival();
  const { part, ...picture } = sync;
  if (!part || part.count === 1) {
    store.syncAppliedFrom = arrival;
    return picture;
  }
  store.putSyncPart(part.syncId, part.index, part.count, { channels: sync.channels, voiceStates: sync.voiceStates }, now, arrival);
  const parts = store.syncParts(part.syncId);
  if (parts.length < part.count) return undefined;
  const started = store.syncStartedAt(part.syncId);
  store.dropSyncPartsUpTo(part.syncId, started);
  if (started < store.syncAppliedFrom) return undefined;
  store.syncAppliedFrom = started;
  return {
    guildId: sync.guildId,
    channels: parts.flatMap((received) => received.channels),
    voiceStates: parts.flatMap((received) => received.voiceStates),
  };
}
