import type { IdentifiedInternalEvent, InternalEvent, VoiceMedia } from "../../../protocol/index.js";
import type { SimGuild } from "../../../dev/discord-sim/index.js";

const NO_MEDIA: VoiceMedia = { selfMute: false, selfDeaf: false, mute: false, deaf: false, selfVideo: false, selfStream: false };
/** Discord's guild voice channel: the only channel type that is a room. */
const VOICE = 2;

export interface Picture {
  rooms: Map<string, { name: string; userLimit: number; parentId: string | null }>;
  /** userId → the room they are in (members of rooms only). */
  members: Map<string, string>;
  /** userId → their flags (members of rooms only). */
  media: Map<string, VoiceMedia>;
}

interface ModelMember {
  channelId: string;
  media: VoiceMedia;
}

/**
 * One guild's hub as the contract describes it (docs/protocol.md), small enough to trust: it applies the states and
 * pictures gateway-node sends (and the previous release's deltas), and says what clients would be published, as
 * `event:user@channel` strings. A room is a voice channel; a member of a channel that is not a room is in none;
 * `absent` empties the guild until a picture arrives. Media changes are published at once here (the real hub
 * coalesces them; only the truth they end in is compared).
 */
export class ModelHub {
  readonly rooms: Picture["rooms"] = new Map();
  private readonly members = new Map<string, ModelMember>();
  status: "available" | "unavailable" | "absent" = "available";
  private parts: Array<Extract<InternalEvent, { event: "guild.sync" }>["payload"]> = [];

  apply(event: InternalEvent): string[] {
    switch (event.event) {
      case "guild.sync": {
        const part = event.payload.part;
        this.parts = part && part.index > 0 ? [...this.parts, event.payload] : [event.payload];
        if (part && part.index < part.count - 1) return [];
        const parts = this.parts;
        this.parts = [];
        return [`guild.sync:${parts.reduce((n, p) => n + p.voiceStates.length, 0)}`, ...this.sync(parts)];
      }
      case "guild.state":
        return this.guildState(event.payload.status);
      case "channel.state": {
        const { channelId, type, name, userLimit, parentId, deleted } = event.payload;
        if (this.status === "absent") return [];
        return deleted || type !== VOICE ? this.deleteRoom(channelId) : this.putRoom(channelId, { name, userLimit, parentId });
      }
      case "voice.state": {
        if (this.status === "absent") return [];
        const { userId, channelId, media } = event.payload;
        return this.voice(userId, channelId, media);
      }
      case "room.created":
      case "room.updated": {
        const { channelId, name, userLimit, parentId } = event.payload;
        return this.putRoom(channelId, { name, userLimit, parentId: parentId ?? null });
      }
      case "room.deleted":
        return this.deleteRoom(event.payload.channelId);
      case "voice.joined":
        return this.voice(event.payload.userId, event.payload.channelId, this.members.get(event.payload.userId)?.media ?? NO_MEDIA);
      case "voice.left":
        return this.members.get(event.payload.userId)?.channelId === event.payload.channelId ? this.voice(event.payload.userId, null, NO_MEDIA) : [];
    }
  }

  picture(): Picture {
    const picture: Picture = { rooms: new Map(this.rooms), members: new Map(), media: new Map() };
    for (const [userId, member] of this.members) {
      if (!this.rooms.has(member.channelId)) continue;
      picture.members.set(userId, member.channelId);
      picture.media.set(userId, member.media);
    }
    return picture;
  }

  private sync(parts: Array<Extract<InternalEvent, { event: "guild.sync" }>["payload"]>): string[] {
    const out: string[] = [];
    if (this.status !== "available") out.push("guild.status:available");
    this.status = "available";
    const channels = parts.flatMap((p) => p.channels).filter((c) => (c.type ?? VOICE) === VOICE);
    const states = new Map(parts.flatMap((p) => p.voiceStates).map((s) => [s.userId, s]));
    for (const c of channels) out.push(...this.putRoom(c.channelId, { name: c.name, userLimit: c.userLimit, parentId: c.parentId ?? null }));
    for (const userId of [...this.members.keys()]) if (!states.has(userId)) out.push(...this.voice(userId, null, NO_MEDIA));
    for (const s of states.values()) out.push(...this.voice(s.userId, s.channelId, s.media ?? NO_MEDIA));
    const wanted = new Set(channels.map((c) => c.channelId));
    for (const id of [...this.rooms.keys()]) if (!wanted.has(id)) out.push(...this.deleteRoom(id));
    return out;
  }

  private guildState(status: "unavailable" | "absent"): string[] {
    if (this.status === status) return [];
    this.status = status;
    const out = [`guild.status:${status}`];
    if (status === "absent") {
      for (const id of [...this.rooms.keys()]) out.push(...this.deleteRoom(id));
      this.members.clear();
    }
    return out;
  }

  private putRoom(channelId: string, room: { name: string; userLimit: number; parentId: string | null }): string[] {
    const known = this.rooms.get(channelId);
    this.rooms.set(channelId, room);
    if (!known) return [`room.created:${channelId}`, ...this.membersIn(channelId).map((userId) => `voice.joined:${userId}@${channelId}`)];
    return JSON.stringify(known) === JSON.stringify(room) ? [] : [`room.updated:${channelId}`];
  }

  private deleteRoom(channelId: string): string[] {
    if (!this.rooms.delete(channelId)) return [];
    for (const userId of this.membersIn(channelId)) this.members.delete(userId);
    return [`room.deleted:${channelId}`];
  }

  private voice(userId: string, channelId: string | null, media: VoiceMedia): string[] {
    const before = this.members.get(userId);
    const out: string[] = [];
    if (before && before.channelId !== channelId && this.rooms.has(before.channelId)) out.push(`voice.left:${userId}@${before.channelId}`);
    if (channelId === null) {
      this.members.delete(userId);
      return out;
    }
    this.members.set(userId, { channelId, media });
    if (!this.rooms.has(channelId)) return out;
    if (before?.channelId !== channelId) out.push(`voice.joined:${userId}@${channelId}`);
    else if (JSON.stringify(before.media) !== JSON.stringify(media)) out.push(`voice.media:${userId}@${channelId}`);
    return out;
  }

  private membersIn(channelId: string): string[] {
    return [...this.members].filter(([, m]) => m.channelId === channelId).map(([userId]) => userId);
  }
}

/** The picture the hub holds after applying `accepted` in order. */
export function hubPicture(accepted: IdentifiedInternalEvent[]): Picture {
  const hub = new ModelHub();
  for (const event of accepted) hub.apply(event);
  return hub.picture();
}

/**
 * One guild's truth as its hub should see it: voice channels (not stage or text) and who is in them with their
 * flags; nothing while the bot is not in the guild.
 */
export function discordTruth(sim: Pick<SimGuild, "state">): Picture {
  const state = sim.state();
  const picture: Picture = { rooms: new Map(), members: new Map(), media: new Map() };
  if (!state.botMember) return picture;
  for (const channel of state.channels) {
    if (channel.type !== VOICE) continue;
    picture.rooms.set(channel.id, { name: channel.name ?? "", userLimit: channel.user_limit ?? 0, parentId: channel.parent_id ?? null });
  }
  for (const { userId, channelId, ...media } of state.voiceStates) {
    if (!picture.rooms.has(channelId)) continue;
    picture.members.set(userId, channelId);
    picture.media.set(userId, media);
  }
  return picture;
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
  for (const [user, media] of truth.media) {
    const seen = hub.media.get(user);
    if (seen && JSON.stringify(seen) !== JSON.stringify(media)) lines.push(`user ${user}'s media: hub ${JSON.stringify(seen)}, Discord ${JSON.stringify(media)}`);
  }
  return lines;
}
