import { MEDIA_COALESCE_MS, type AppEvent } from "../../../protocol/index.js";
import { mediaOf } from "./media-flags.js";
import type { HubStore } from "./store.js";

/**
 * Members' media flags (microphone, headphones, camera, stream). The hub holds the truth at once (snapshots show
 * it) and tells clients at most once per member per MEDIA_COALESCE_MS, with the flags at the window's end: a change
 * opens a window, and when it ends the member's flags are published if they differ from what clients were last told
 * (a join carries the flags too). A burst that ends where it began publishes nothing.
 */

/** A member in a room changed their flags: the change is told when its window ends (one window at a time). */
export function mediaChanged(store: HubStore, userId: string, now: number): void {
  store.openMediaWindow(userId, now + MEDIA_COALESCE_MS);
}

/** The windows that have ended by `now`: one `voice.media` for each member whose flags differ from what clients know. */
export function publishDueMedia(store: HubStore, guildId: string, now: number): AppEvent[] {
  const events: AppEvent[] = [];
  for (const due of store.dueMediaWindows(now)) {
    store.mediaTold(due.userId);
    if (due.media === due.told || !store.room(due.channelId)) continue;
    events.push({ event: "voice.media", payload: { guildId, channelId: due.channelId, userId: due.userId, media: mediaOf(due.media) } });
  }
  return events;
}
