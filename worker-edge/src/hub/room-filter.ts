import { SocketLimits } from "../../../protocol/index.js";
import { takeToken } from "./rate-limit.js";
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
  const { bucket, retryAfterSeconds } = takeToken(attachment.roomsBucket, RoomFilterPolicy, now);
  if (retryAfterSeconds > 0) return { retryAfterSeconds };
  return { attachment: { ...attachment, rooms: rooms && [...new Set(rooms)], roomsBucket: bucket } };
}
