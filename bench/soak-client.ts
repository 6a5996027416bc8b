/**
 * The soak's client process (forked by bench/soak.ts, so its memory is measured apart from the driver's): holds
 * S browser-like sockets on /ws, applies every snapshot and event to a per-socket presence picture and checks
 * each socket's seq stream (no duplicate, no gap, a resume answered with exactly the missed events or, outside
 * the replay buffer, a snapshot). Driven over IPC; see soak-shared.ts for the messages.
 */
import WebSocket from "ws";
import type { Room, ServerMessage } from "../protocol/index.js";
import { simulatedAddress } from "./bench-ids.js";
import { canonicalPresence, presenceFromRooms, type ClientReport, type FromClient, type Progress, type RoomView, type ToClient } from "./soak-shared.js";

/** The hub replays the last 1000 events; a resume further behind than this may be answered with a snapshot. */
const REPLAY_EVENTS = 1_000;
const AUTH_WAIT_MS = 15_000;
const MAX_SAMPLES = 20;

interface Sock {
  index: number;
  token: string;
  ws?: WebSocket;
  /** Bumped on every (re)connect, so a dead connection's late callbacks are ignored. */
  generation: number;
  phase: "connecting" | "authing" | "catching-up" | "live" | "down" | "given-up";
  lastSeq: number;
  /** The seq the resume asked from (undefined for a fresh connect). */
  since?: number;
  /** The seq auth.ok announced; catch-up is complete once lastSeq reaches it. */
  authSeq: number;
  gotSnapshot: boolean;
  rooms: Map<string, RoomView>;
  cutByUs: boolean;
  openedAt: number;
}

const stats = {
  eventsApplied: 0,
  snapshots: 0,
  resumes: 0,
  resumedByReplay: 0,
  resumedBySnapshot: 0,
  replayedEvents: 0,
  unexpectedCloses: 0,
  /** Sockets that could not (re)connect in 5 attempts and were left out. */
  givenUp: 0,
  violations: 0,
  /** Close codes the hub sent unasked, by code. */
  closeCodes: {} as Record<string, number>,
};
/** Milliseconds from a socket's open to its auth.ok, fresh connects and resumes alike. */
const authLatencies: number[] = [];
/** Delivery lag (receipt minus the envelope's hub `ts`) of live events, since the last progress report. */
let lagMax = 0;
let lagSum = 0;
let lagCount = 0;
const samples: string[] = [];
const sockets: Sock[] = [];
let url = "";
let deflate = true;

function send(message: FromClient): void {
  process.send?.(message);
}

function violation(sock: Sock, what: string): void {
  stats.violations++;
  if (samples.length < MAX_SAMPLES) samples.push(`socket ${sock.index} (lastSeq ${sock.lastSeq}, since ${sock.since ?? "-"}): ${what}`);
}

// Every socket receives the same texts: parse each once.
const parsed = new Map<string, ServerMessage>();
function parse(text: string): ServerMessage {
  let message = parsed.get(text);
  if (!message) {
    message = JSON.parse(text) as ServerMessage;
    if (parsed.size > 5_000) parsed.clear();
    parsed.set(text, message);
  }
  return message;
}

function connect(sock: Sock, since?: number): Promise<void> {
  const generation = ++sock.generation;
  sock.phase = "connecting";
  sock.since = since;
  sock.gotSnapshot = false;
  sock.cutByUs = false;
  // A browser always offers permessage-deflate; --deflate off measures the hub without it.
  const ws = new WebSocket(`${url}/ws`, { perMessageDeflate: deflate, headers: simulatedAddress(sock.index) });
  sock.ws = ws;
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`socket ${sock.index} not caught up within ${AUTH_WAIT_MS} ms (phase ${sock.phase})`)), AUTH_WAIT_MS);
    const settle = (error?: Error) => {
      clearTimeout(timer);
      if (error) reject(error);
      else resolve();
    };
    ws.on("open", () => {
      if (generation !== sock.generation) return;
      sock.phase = "authing";
      sock.openedAt = Date.now();
      ws.send(JSON.stringify(since === undefined ? { type: "auth", token: sock.token } : { type: "auth", token: sock.token, since }));
    });
    ws.on("error", (error) => {
      if (generation !== sock.generation) return;
      if (sock.phase === "connecting" || sock.phase === "authing") settle(error);
    });
    ws.on("close", (code, reason) => {
      if (generation !== sock.generation) return;
      const phase = sock.phase;
      sock.phase = "down";
      if (sock.cutByUs) return;
      stats.unexpectedCloses++;
      stats.closeCodes[code] = (stats.closeCodes[code] ?? 0) + 1;
      const waited = sock.openedAt ? Date.now() - sock.openedAt : 0;
      violation(sock, `closed ${code} "${reason.toString()}" in phase ${phase}, ${waited} ms after open`);
      if (phase === "live") {
        // Like a real client: resume after a moment.
        setTimeout(() => void connectRetrying(sock).catch(() => giveUp(sock)), 1_000);
      } else {
        settle(new Error(`socket ${sock.index} closed ${code} in phase ${phase}`)); // its caller retries
      }
    });
    ws.on("message", (data) => {
      if (generation !== sock.generation) return;
      onMessage(sock, parse(String(data)));
      if (sock.phase === "live") settle();
    });
  });
}

function onMessage(sock: Sock, message: ServerMessage): void {
  if (message.type === "ack") {
    if (sock.phase !== "authing") {
      violation(sock, `auth.ok in phase ${sock.phase}`);
      return;
    }
    sock.authSeq = message.seq;
    authLatencies.push(Date.now() - sock.openedAt);
    if (sock.since === undefined) {
      sock.phase = "catching-up"; // a snapshot must follow
    } else {
      stats.resumes++;
      if (message.seq < sock.since) violation(sock, `auth.ok seq ${message.seq} is behind since ${sock.since}`);
      if (message.seq <= sock.since) {
        stats.resumedByReplay++;
        sock.phase = "live";
      } else {
        sock.phase = "catching-up";
      }
    }
    return;
  }
  if (sock.phase === "authing" || sock.phase === "connecting") {
    violation(sock, `${message.type} seq ${message.seq} before auth.ok`);
  }
  if (message.type === "snapshot") {
    stats.snapshots++;
    if (sock.phase !== "catching-up" || sock.gotSnapshot) violation(sock, `unexpected snapshot seq ${message.seq} in phase ${sock.phase}`);
    if (sock.since !== undefined) {
      stats.resumedBySnapshot++;
      if (sock.authSeq - sock.since < REPLAY_EVENTS) violation(sock, `snapshot on resume although only ${sock.authSeq - sock.since} events were missed`);
      if (sock.lastSeq > 0 && sock.lastSeq < sock.since) violation(sock, "snapshot older than our stream");
    }
    if (message.seq !== sock.authSeq) violation(sock, `snapshot seq ${message.seq} differs from auth.ok seq ${sock.authSeq}`);
    sock.gotSnapshot = true;
    sock.lastSeq = message.seq;
    sock.rooms = presenceFromRooms(message.payload.rooms as Room[]);
    sock.phase = "live";
    return;
  }
  // An event.
  if (sock.phase === "catching-up" && sock.since === undefined && !sock.gotSnapshot) {
    violation(sock, `event seq ${message.seq} before the snapshot`);
  }
  if (message.seq !== sock.lastSeq + 1) {
    violation(sock, message.seq <= sock.lastSeq ? `duplicate event seq ${message.seq}` : `gap: event seq ${message.seq} after ${sock.lastSeq}`);
  }
  if (message.seq > sock.lastSeq) sock.lastSeq = message.seq;
  stats.eventsApplied++;
  if (sock.phase === "live") {
    const lag = Date.now() - message.ts;
    lagMax = Math.max(lagMax, lag);
    lagSum += lag;
    lagCount++;
  }
  if (sock.phase === "catching-up") {
    stats.replayedEvents++;
    if (sock.lastSeq >= sock.authSeq) {
      stats.resumedByReplay++;
      sock.phase = "live";
    }
  }
  apply(sock, message);
}

function apply(sock: Sock, message: Extract<ServerMessage, { type: "event" }>): void {
  const rooms = sock.rooms;
  switch (message.event) {
    case "room.created":
    case "room.updated": {
      const p = message.payload;
      const known = rooms.get(p.channelId);
      if (message.event === "room.created" && known) violation(sock, `room.created for known room ${p.channelId} (seq ${message.seq})`);
      if (message.event === "room.updated" && !known) violation(sock, `room.updated for unknown room ${p.channelId} (seq ${message.seq})`);
      rooms.set(p.channelId, { name: p.name, userLimit: p.userLimit, parentId: p.parentId ?? null, members: known?.members ?? new Map() });
      return;
    }
    case "room.deleted":
      if (!rooms.delete(message.payload.channelId)) violation(sock, `room.deleted for unknown room (seq ${message.seq})`);
      return;
    case "voice.joined": {
      const p = message.payload;
      const room = rooms.get(p.channelId);
      if (!room) {
        violation(sock, `voice.joined for unknown room ${p.channelId} (seq ${message.seq})`);
        return;
      }
      for (const [channelId, other] of rooms) {
        if (channelId !== p.channelId && other.members.has(p.userId)) violation(sock, `voice.joined of ${p.userId} still in ${channelId} (seq ${message.seq})`);
      }
      room.members.set(p.userId, { username: p.username, avatar: p.avatar });
      return;
    }
    case "voice.left": {
      const p = message.payload;
      const room = rooms.get(p.channelId);
      if (!room || !room.members.delete(p.userId)) violation(sock, `voice.left of ${p.userId} not in ${p.channelId} (seq ${message.seq})`);
      return;
    }
  }
}

function giveUp(sock: Sock): void {
  stats.givenUp++;
  sock.cutByUs = true;
  sock.ws?.terminate();
  sock.phase = "given-up";
}

/** Connects (fresh, or resuming once a snapshot was applied), retrying a refused or closed attempt up to 5 times. */
async function connectRetrying(sock: Sock): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await connect(sock, sock.gotSnapshot || sock.lastSeq > 0 ? sock.lastSeq : undefined);
      return;
    } catch (error) {
      if (attempt >= 5) {
        violation(sock, `gave up after 5 attempts: ${error instanceof Error ? error.message : String(error)}`);
        throw error;
      }
      sock.cutByUs = true;
      sock.ws?.terminate();
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
  }
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Lag since the last call, and auth latency so far. */
function progress(): Progress {
  const result = {
    lagAvgMs: lagCount ? Math.round(lagSum / lagCount) : 0,
    lagMaxMs: lagMax,
    authP50Ms: percentile(authLatencies, 50),
    authP99Ms: percentile(authLatencies, 99),
    authMaxMs: authLatencies.length ? Math.max(...authLatencies) : 0,
    unexpectedCloses: stats.unexpectedCloses,
    violations: stats.violations,
  };
  lagMax = 0;
  lagSum = 0;
  lagCount = 0;
  return result;
}

async function open(tokens: string[], batch: number): Promise<void> {
  const started = performance.now();
  for (let i = 0; i < tokens.length; i++) {
    sockets.push({ index: i, token: tokens[i]!, generation: 0, phase: "down", lastSeq: 0, authSeq: 0, gotSnapshot: false, rooms: new Map(), cutByUs: false, openedAt: 0 });
  }
  // The hub admits at most 1,000 unauthenticated sockets: each batch is authenticated before the next opens.
  for (let i = 0; i < sockets.length; i += batch) {
    // A socket that cannot connect in 5 attempts is given up (a violation), so the run goes on and still measures.
    await Promise.all(sockets.slice(i, i + batch).map((sock) => connectRetrying(sock).catch(() => giveUp(sock))));
  }
  send({ type: "opened", sockets: sockets.length, ms: Math.round(performance.now() - started), progress: progress() });
}

function cut(fraction: number, maxDelayMs: number): void {
  const live = sockets.filter((s) => s.phase === "live");
  const count = Math.max(1, Math.round(sockets.length * fraction));
  for (let k = 0; k < count && live.length > 0; k++) {
    const [sock] = live.splice(Math.floor(Math.random() * live.length), 1);
    if (!sock) break;
    sock.cutByUs = true;
    sock.phase = "down";
    sock.ws?.terminate(); // a cut connection: no close handshake
    setTimeout(() => void connectRetrying(sock).catch(() => giveUp(sock)), Math.floor(Math.random() * maxDelayMs));
  }
  send({ type: "cut", cut: count, progress: progress() });
}

async function verify(seq: number, canonical: string, timeoutMs: number): Promise<ClientReport> {
  const deadline = Date.now() + timeoutMs;
  const held = sockets.filter((s) => s.phase !== "given-up");
  while (Date.now() < deadline && held.some((s) => s.phase !== "live" || s.lastSeq < seq)) {
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  let caughtUp = 0;
  let matching = 0;
  const mismatches: ClientReport["mismatches"] = [];
  for (const sock of held) {
    if (sock.phase === "live" && sock.lastSeq === seq) caughtUp++;
    else violation(sock, `not caught up at the end: phase ${sock.phase}, lastSeq ${sock.lastSeq}, expected ${seq}`);
    const got = canonicalPresence(sock.rooms);
    if (got === canonical) matching++;
    else if (mismatches.length < 3) mismatches.push({ socket: sock.index, lastSeq: sock.lastSeq, got });
  }
  return { sockets: sockets.length, caughtUp, matching, ...stats, samples, mismatches, final: progress() };
}

process.on("message", (raw) => {
  const message = raw as ToClient;
  const fail = (error: unknown) =>
    send({ type: "fatal", message: `${error instanceof Error ? error.message : String(error)}; first violations:\n  ${samples.slice(0, 5).join("\n  ")}` });
  switch (message.type) {
    case "open":
      url = message.url.replace(/^http/, "ws");
      deflate = message.deflate;
      open(message.tokens, message.batch).catch(fail);
      return;
    case "cut":
      cut(message.fraction, message.maxDelayMs);
      return;
    case "verify":
      verify(message.seq, message.canonical, message.timeoutMs).then((report) => send({ type: "verified", report }), fail);
      return;
    case "close":
      for (const sock of sockets) {
        sock.cutByUs = true;
        sock.ws?.terminate();
      }
      process.disconnect?.();
      setTimeout(() => process.exit(0), 100);
      return;
  }
});
process.on("disconnect", () => process.exit(0));
