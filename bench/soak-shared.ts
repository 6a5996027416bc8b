/**
 * What the soak driver (bench/soak.ts) and its client process (bench/soak-client.ts) share: the IPC messages
 * and the canonical form of a presence picture, so "this socket's view equals GET /rooms" is a string compare.
 */
import type { Room } from "../protocol/index.js";

/** driver → client */
export type ToClient =
  | { type: "open"; url: string; tokens: string[]; batch: number; deflate: boolean }
  | { type: "cut"; fraction: number; maxDelayMs: number }
  | { type: "verify"; seq: number; canonical: string; timeoutMs: number }
  | { type: "close" };

/** client → driver */
export type FromClient =
  | { type: "opened"; sockets: number; ms: number; progress: Progress }
  | { type: "cut"; cut: number; progress: Progress }
  | { type: "verified"; report: ClientReport }
  | { type: "fatal"; message: string };

export interface Progress {
  /** Delivery lag of live events (client receipt minus the hub's `ts`) since the previous report. */
  lagAvgMs: number;
  lagMaxMs: number;
  /** Open → auth.ok, over every connect so far. */
  authP50Ms: number;
  authP99Ms: number;
  authMaxMs: number;
  unexpectedCloses: number;
  violations: number;
}

export interface ClientReport {
  sockets: number;
  /** Sockets whose lastSeq reached the expected seq in time. */
  caughtUp: number;
  /** Sockets whose applied picture equals GET /rooms. */
  matching: number;
  eventsApplied: number;
  snapshots: number;
  resumes: number;
  /** Resumes answered with exactly the missed events (or nothing when nothing was missed). */
  resumedByReplay: number;
  /** Resumes answered with a snapshot (only allowed when the gap left the replay buffer). */
  resumedBySnapshot: number;
  replayedEvents: number;
  unexpectedCloses: number;
  givenUp: number;
  closeCodes: Record<string, number>;
  violations: number;
  final: Progress;
  /** The first few violations, for evidence. */
  samples: string[];
  /** A few sockets whose picture differs: their canonical form next to the expected one. */
  mismatches: Array<{ socket: number; lastSeq: number; got: string }>;
}

export interface MemberView {
  username?: string;
  avatar?: string | null;
}

export interface RoomView {
  name: string;
  userLimit: number;
  parentId: string | null;
  members: Map<string, MemberView>;
}

/** One line per room, sorted; members sorted by user id. Missing optional fields and null compare equal. */
export function canonicalPresence(rooms: Map<string, RoomView>): string {
  return [...rooms.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([channelId, room]) => {
      const members = [...room.members.entries()]
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([userId, m]) => `${userId}/${m.username ?? ""}/${m.avatar ?? ""}`)
        .join(",");
      return `${channelId}|${room.name}|${room.userLimit}|${room.parentId ?? ""}:${members}`;
    })
    .join("\n");
}

export function presenceFromRooms(rooms: Room[]): Map<string, RoomView> {
  const view = new Map<string, RoomView>();
  for (const room of rooms) {
    view.set(room.channelId, {
      name: room.name,
      userLimit: room.userLimit,
      parentId: room.parentId ?? null,
      members: new Map(room.members.map((m) => [m.userId, { username: m.username, avatar: m.avatar }])),
    });
  }
  return view;
}
