import type { AppEvent, CreateRoomResponse } from "../../../protocol/index.js";
import * as clock from "../clock.js";
import type { DiscordRest } from "../discord-rest.js";
import { ApiError } from "../errors.js";
import { errorFields, log } from "../log.js";
import { dueIdleRooms, isDue } from "./deadlines.js";
import { roomCreated, roomDeleted } from "./presence.js";
import { takeToken } from "../../../protocol/index.js";
import { CreateRoomPolicy } from "./rate-limit.js";
import { failure, failureOf, type CreateRoomRequest, type EndRoomRequest, type HubResult } from "./rpc.js";
import type { HubStore } from "./store.js";

const DEFAULT_ROOM_NAME = "Spell Coven room";

/** What the rooms desk needs of its hub. */
export interface RoomsHost {
  readonly store: HubStore;
  guildId(): string;
  discord(): DiscordRest;
  publish(events: AppEvent[], now: number): void;
  /** A room was created or its occupancy changed: idle deadlines may have moved. */
  roomsChanged(): Promise<void>;
}

/**
 * Rooms users create and end through REST, and rooms that end for being idle: admission (the create rate and the
 * live-room cap), idempotency keys, the Discord calls, and the record. A create counts against its user's cap from
 * admission, before Discord is awaited: creates sent at the same time cannot all pass a count taken before any
 * of their rooms exists.
 */
export class RoomDesk {
  /** Creates in flight per user+idempotency key, so racing duplicates share one Discord call. */
  private readonly creating = new Map<string, Promise<HubResult<CreateRoomResponse>>>();
  /** Admitted creates awaiting Discord, per user. In memory: a pending fetch keeps the object from being evicted. */
  private readonly reserved = new Map<string, number>();

  constructor(private readonly host: RoomsHost) {}

  async create(request: CreateRoomRequest): Promise<HubResult<CreateRoomResponse>> {
    const { store } = this.host;
    const key = request.idempotencyKey;
    if (key !== undefined) {
      const stored = store.idempotentResult(request.userId, key);
      if (stored) return { ok: true, value: JSON.parse(stored) as CreateRoomResponse };
      const inFlight = this.creating.get(`${request.userId}\n${key}`);
      if (inFlight) return inFlight;
    }
    const refusal = this.admit(request.userId, clock.now());
    if (refusal) return failure(refusal);
    const creation = this.createReserved(request);
    if (key === undefined) return creation;
    this.creating.set(`${request.userId}\n${key}`, creation);
    try {
      const result = await creation;
      if (result.ok) store.saveIdempotentResult(request.userId, key, JSON.stringify(result.value), clock.now());
      return result;
    } finally {
      this.creating.delete(`${request.userId}\n${key}`);
    }
  }

  async end(request: EndRoomRequest): Promise<HubResult<{ ok: true }>> {
    const room = this.host.store.room(request.channelId);
    if (!room || room.creatorId === null) return failure(new ApiError(404, "not_found", "unknown room"));
    if (room.creatorId !== request.userId && !request.isAdmin) {
      return failure(new ApiError(403, "forbidden", "only the room's creator or an admin can end it"));
    }
    try {
      await this.host.discord().deleteChannel(request.channelId, `Spell Coven room ended by user ${request.userId}`);
    } catch (error) {
      return failureOf(error);
    }
    const now = clock.now();
    this.host.publish(roomDeleted(this.host.store, { guildId: request.guildId, channelId: request.channelId }, now), now);
    return { ok: true, value: { ok: true } };
  }

  /** Ends the rooms this service created that stayed empty for `ttlMs`. */
  async endIdle(ttlMs: number): Promise<void> {
    const { store } = this.host;
    const guildId = this.host.guildId();
    for (const channelId of dueIdleRooms(store, ttlMs, clock.now())) {
      // A join may have landed while an earlier delete was awaited.
      if (!isDue(store, channelId, ttlMs, clock.now())) continue;
      try {
        await this.host.discord().deleteChannel(channelId, "Spell Coven room idle");
      } catch (error) {
        log("warn", "GuildHub could not end idle room", { guildId, channelId, ...errorFields(error) });
        store.setRoomEmptySince(channelId, clock.now()); // try again after another TTL
        continue;
      }
      const now = clock.now();
      this.host.publish(roomDeleted(store, { guildId, channelId }, now), now);
    }
  }

  /** Why this user may not create a room now, if they may not: the live-room cap (rooms and creates in flight), then the rate. */
  private admit(userId: string, now: number): ApiError | undefined {
    const { store } = this.host;
    if (store.roomsCreatedBy(userId) + (this.reserved.get(userId) ?? 0) >= CreateRoomPolicy.liveRoomsPerUser) {
      return new ApiError(429, "too_many_rooms", `at most ${CreateRoomPolicy.liveRoomsPerUser} live rooms per user; end one first`);
    }
    const { bucket, waitSeconds } = takeToken(store.createBucket(userId), CreateRoomPolicy, now);
    store.putCreateBucket(userId, bucket);
    if (waitSeconds > 0) {
      return new ApiError(429, "rate_limited", "too many rooms created; slow down", { retryAfterSeconds: Math.ceil(waitSeconds) });
    }
    return undefined;
  }

  /** Creates an admitted room; its place under the cap is held until its room is recorded or Discord refused. */
  private async createReserved(request: CreateRoomRequest): Promise<HubResult<CreateRoomResponse>> {
    this.reserved.set(request.userId, (this.reserved.get(request.userId) ?? 0) + 1);
    try {
      return await this.createInDiscord(request);
    } finally {
      const left = (this.reserved.get(request.userId) ?? 1) - 1;
      if (left > 0) this.reserved.set(request.userId, left);
      else this.reserved.delete(request.userId);
    }
  }

  private async createInDiscord(request: CreateRoomRequest): Promise<HubResult<CreateRoomResponse>> {
    const name = request.body.name ?? DEFAULT_ROOM_NAME;
    let channel;
    try {
      channel = await this.host.discord().createVoiceChannel(
        request.guildId,
        { name, parentId: request.body.parentId, userLimit: request.body.userLimit },
        `Spell Coven room created by user ${request.userId}`,
      );
    } catch (error) {
      return failureOf(error);
    }
    const now = clock.now();
    const created = {
      guildId: request.guildId,
      channelId: channel.id,
      name: channel.name ?? name,
      parentId: channel.parent_id ?? request.body.parentId ?? null,
      userLimit: channel.user_limit ?? request.body.userLimit,
    };
    // The gateway's CHANNEL_CREATE may already have announced it: then this only records the creator.
    this.host.publish(roomCreated(this.host.store, created, request.userId, now), now);
    await this.host.roomsChanged();
    return { ok: true, value: { channelId: channel.id, name: created.name, guildId: request.guildId } };
  }
}
