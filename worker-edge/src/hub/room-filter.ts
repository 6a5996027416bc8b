import { SocketLimits, takeToken } from "../../../protocol/index.js";
import type { SocketAttachment } from "./sockets.js";

const RoomFilterPolicy = { capacity: SocketLimits.roomsBurst, refillPerSecond: 1000 / SocketLimits.roomsIntervalMs };

type LiveAttachment = Extract<SocketAttachment, { phase: "live" }>;

/**
 * A live socket's attachment with a new room filter (`undefined`: every room), or why not: the change rate is
 * bounded because each change costs a snapshot on the guild's one thread.
 */
export function withRoomFilter(
  attachment: LiveAttachment,
  rooms: string[] | undefined,
  now: number,
): { attachment: LiveAttachment } | { retryAfterSeconds: number } {
  const { bucket, waitSeconds } = takeToken(attachment.roomsBucket, RoomFilterPolicy, now);
  if (waitSeconds > 0) return { retryAfterSeconds: Math.ceil(waitSeconds) };
  return { attachment: { ...attachment, rooms: rooms && [...new Set(rooms)], roomsBucket: bucket } };
}
