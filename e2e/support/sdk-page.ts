/**
 * The browser side of the SDK's Chromium tests, bundled by esbuild into a page: runs `connect()` with the page's
 * own WebSocket and records what an app would see (statuses, events, the presence store) for the test to read.
 * Tokens come from the test through `window.issueToken`, which Playwright exposes.
 */
import { Prng } from "../../test-support/prng.js";
import { connect, type ConnectionStatus, type ConnectOptions, type RealtimeConnection } from "../../client/index.js";

export interface SdkPageOptions {
  url: string;
  pingIntervalMs: number;
  pongTimeoutMs: number;
  connectTimeoutMs: number;
  backoff: NonNullable<ConnectOptions["backoff"]>;
  /** Seeds the SDK's backoff jitter, so a failing run can be replayed. */
  seed: number;
}

export interface SeenStatus {
  status: ConnectionStatus;
  detail: string | undefined;
  /** Date.now() in the page. */
  at: number;
}

export interface SeenEvent {
  event: string;
  seq: number;
  /** Absent for an event about the whole guild. */
  channelId?: string;
}

export interface SdkPageView {
  status: ConnectionStatus;
  seq: number;
  rooms: Array<{ channelId: string; name: string; members: string[] }>;
}

export interface SdkPage {
  start(options: SdkPageOptions): void;
  statuses: SeenStatus[];
  events: SeenEvent[];
  view(): SdkPageView;
  close(): void;
}

declare global {
  interface Window {
    issueToken(): Promise<string>;
    sdk: SdkPage;
  }
}

let connection: RealtimeConnection | undefined;
const statuses: SeenStatus[] = [];
const events: SeenEvent[] = [];

window.sdk = {
  statuses,
  events,
  start({ seed, ...options }) {
    const jitter = new Prng(seed);
    connection = connect({
      ...options,
      random: () => jitter.next(),
      getToken: () => window.issueToken(),
      onStatus: (status, detail) => statuses.push({ status, detail, at: Date.now() }),
      onEvent: ({ event, seq, payload }) => events.push({ event, seq, ...("channelId" in payload ? { channelId: payload.channelId } : {}) }),
    });
  },
  view() {
    if (!connection) throw new Error("sdk.start() was not called");
    const { rooms } = connection.presence.getSnapshot();
    const seq = connection.presence.seq;
    return {
      status: connection.status,
      seq,
      rooms: rooms.map((room) => ({ channelId: room.channelId, name: room.name, members: room.members.map((m) => m.userId) })),
    };
  },
  close() {
    connection?.close();
  },
};

