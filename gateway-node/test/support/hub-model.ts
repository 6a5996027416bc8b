import type { IdentifiedInternalEvent } from "../../../protocol/index.js";
import type { SimGuild } from "../../../dev/discord-sim/index.js";

export interface Picture {
  rooms: Map<string, { name: string; userLimit: number; parentId: string | null }>;
  /** userId → the room they are in. */
  members: Map<string, string>;
}

/**
 * The picture the hub holds after applying `accepted` in order, as the GuildHub does: a sync (once its last part
 * is in) replaces everything; a leave counts only from the room the member is in.
 */
export function hubPicture(accepted: IdentifiedInternalEvent[]): Picture {
  const picture: Picture = { rooms: new Map(), members: new Map() };
  let parts: Array<Extract<IdentifiedInternalEvent, { event: "guild.sync" }>["payload"]> = [];
  for (const event of accepted) {
    switch (event.event) {
      case "room.created":
      case "room.updated": {
        const { channelId, name, userLimit, parentId } = event.payload;
        picture.rooms.set(channelId, { name, userLimit, parentId: parentId ?? null });
        break;
      }
      case "room.deleted":
        picture.rooms.delete(event.payload.channelId);
        for (const [user, channel] of picture.members) if (channel === event.payload.channelId) picture.members.delete(user);
        break;
      case "voice.joined":
        picture.members.set(event.payload.userId, event.payload.channelId);
        break;
      case "voice.left":
        if (picture.members.get(event.payload.userId) === event.payload.channelId) picture.members.delete(event.payload.userId);
        break;
      case "guild.sync": {
        const part = event.payload.part;
        parts = part && part.index > 0 ? [...parts, event.payload] : [event.payload];
        if (part && part.index < part.count - 1) break;
        picture.rooms.clear();
        picture.members.clear();
        for (const channel of parts.flatMap((p) => p.channels)) {
          picture.rooms.set(channel.channelId, { name: channel.name, userLimit: channel.userLimit, parentId: channel.parentId ?? null });
        }
        for (const state of parts.flatMap((p) => p.voiceStates)) picture.members.set(state.userId, state.channelId);
        parts = [];
        break;
      }
    }
  }
  return picture;
}

/** One guild's truth as its hub should see it: voice channels (not stage or text) and who is in them. */
export function discordTruth(sim: Pick<SimGuild, "state">): Picture {
  const rooms: Picture["rooms"] = new Map();
  for (const channel of sim.state().channels) {
    if (channel.type !== 2) continue;
    rooms.set(channel.id, { name: channel.name ?? "", userLimit: channel.user_limit ?? 0, parentId: channel.parent_id ?? null });
  }
  const members = new Map<string, string>();
  for (const state of sim.state().voiceStates) if (rooms.has(state.channelId)) members.set(state.userId, state.channelId);
  return { rooms, members };
}

/** Where two pictures differ, as lines; empty when they are equal. */
export function pictureDiff(hub: Picture, truth: Picture): string[] {
  const lines: string[] = [];
  for (const [id, room] of truth.rooms) {
    const seen = hub.rooms.get(id);
    if (!seen) lines.push(`room ${id} missing at the hub`);
    else if (JSON.stringify(seen) !== JSON.stringify(room)) lines.push(`room ${id}: hub ${JSON.stringify(seen)}, Discord ${JSON.stringify(room)}`);
  }
  for (const id of hub.rooms.keys()) if (!truth.rooms.has(id)) lines.push(`room ${id} is a ghost at the hub`);
  for (const [user, channel] of truth.members) if (hub.members.get(user) !== channel) lines.push(`user ${user}: hub ${hub.members.get(user) ?? "nowhere"}, Discord ${channel}`);
  for (const [user, channel] of hub.members) if (!truth.members.has(user)) lines.push(`user ${user} is a ghost at the hub in ${channel}`);
  return lines;
}
