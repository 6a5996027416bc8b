import { CloseCode, SocketLimits, takeToken } from "../../../protocol/index.js";
import type { SocketAttachment } from "./sockets.js";

const RoomFilterPolicy = { capacity: SocketLimits.roomsBurst, refillPerSecond: 1000 / SocketLimits.roomsIntervalMs };

type LiveAttachment = Extract<SocketAttachment, { phase: "live" }>;

/**
 * A socket's attachment with a new room filter (`undefined`: every room), or the close it earns: it is not live
 * yet, its token expired, or it changes too often (each change costs a snapshot on the object's one thread).
 */
export function withRoomFilter(
  current: SocketAttachment | undefined,
  rooms: string[] | undefined,
  now: number,
): { attachment: LiveAttachment } | { close: { code: number; reason: string } } {
  if (current?.phase !== "live") return { close: { code: CloseCode.badMessage, reason: "authenticate first" } };
  if (current.expiresAt <= now) return { close: { code: CloseCode.unauthorized, reason: "token expired" } };
  const { bucket, waitSeconds } = takeToken(current.roomsBucket, RoomFilterPolicy, now);
  if (waitSeconds > 0) return { close: { code: CloseCode.tooMany, reason: "changing rooms too often" } };
  return { attachment: { ...current, rooms: rooms && [...new Set(rooms)], roomsBucket: bucket } };
}
