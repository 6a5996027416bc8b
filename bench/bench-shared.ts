/** The IPC messages between the benchmark driver (bench/bench.ts) and its client processes (bench/bench-client.ts). */
import type { HistogramData } from "./histogram.js";

export interface TokenSpec {
  /** The private RS256 JWK the clients sign their tokens with (a throwaway key generated per run). */
  privateJwk: Record<string, unknown>;
  issuer: string;
  audience: string;
}

/** One socket to open: its global index names its user, `rooms` its room filter (absent: the lobby). */
export interface SocketSpec {
  index: number;
  rooms?: string[];
}

/** An event the driver published, for the clients to match their arrivals against. */
export interface SentEvent {
  /** The seq the hub gives it; 0 when the publisher cannot know it (full path), which then matches by `userId`. */
  seq: number;
  userId?: string;
  /** Wall-clock ms (performance.timeOrigin + performance.now()) when the publisher sent it. */
  sentAt: number;
  channelId: string;
  roomEvent: boolean;
}

/** driver → client */
export type ToClient =
  | { type: "init"; tokens: TokenSpec; firstIndex: number; count: number }
  | { type: "open"; url: string; sockets: SocketSpec[]; batch: boolean; concurrency: number }
  | { type: "mark" }
  | { type: "collect"; events: SentEvent[]; timeoutMs: number }
  | { type: "drop" }
  | { type: "resume"; url: string; concurrency: number; timeoutMs: number; expectSeq: number }
  | { type: "close" };

export interface OpenReport {
  opened: number;
  failed: number;
  /** Why sockets failed, by reason (e.g. "closed 4408"). */
  reasons: Record<string, number>;
  /** First connect → last auth.ok + snapshot in this process. */
  ms: number;
  /** The lowest seq any socket's snapshot announced. */
  minSeq: number;
}

export interface CollectReport {
  sockets: number;
  expected: number;
  received: number;
  lost: number;
  /** Deliveries of a seq the socket should not get, or got twice. */
  extra: number;
  histogram: HistogramData;
  /** Per seq (same order as the request), the latest arrival on any socket of this process (0: none). */
  lastArrival: number[];
  firstArrival: number[];
  /** Event and batch frames received since the mark (a batch frame counts once). */
  frames: number;
  /** This process's CPU (user + system) and the wall time since the mark, up to when every event arrived. */
  cpuMs: number;
  wallMs: number;
}

export interface ResumeReport {
  sockets: number;
  /** Resumed with exactly the missed events, in order, and no snapshot. */
  exact: number;
  snapshots: number;
  wrong: number;
  failed: number;
  /** Reconnect of the first → the last socket caught up. */
  ms: number;
}

/** client → driver */
export type FromClient =
  | { type: "ready" }
  | { type: "opened"; report: OpenReport }
  | { type: "marked" }
  | { type: "dropped"; sockets: number }
  | { type: "collected"; report: CollectReport }
  | { type: "resumed"; report: ResumeReport }
  | { type: "fatal"; message: string };

/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes on one machine. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}
