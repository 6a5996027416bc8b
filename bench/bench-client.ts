/**
 * A benchmark client process (forked by bench/bench.ts; several of them, since one process may hold at most
 * ~20,000 descriptors): opens browser-like sockets on a hub, records when each event arrives on each socket,
 * and reports latencies, losses and resumes to the driver. Tokens are signed here, in parallel across processes.
 */
import { importJWK, SignJWT, type CryptoKey as JoseKey } from "jose";
import WebSocket from "ws";
import { simulatedAddress } from "./bench-ids.js";
import { Histogram } from "./histogram.js";
import { nowMs, type CollectReport, type FromClient, type OpenReport, type ResumeReport, type SentEvent, type SocketSpec, type TokenSpec, type ToClient } from "./bench-shared.js";

const AUTH_WAIT_MS = 30_000;
const USER_BASE = 200_000_000_000_000_000n;

interface Sock {
  spec: SocketSpec;
  ws?: WebSocket;
  lastSeq: number;
  /** Events received since the last mark, by seq (in order of arrival), with the user of voice events. */
  seqs: number[];
  users: Array<string | undefined>;
  times: number[];
  snapshots: number;
  /** Set while resuming: the seq the resume asked from. */
  since?: number;
}

let tokenSpec: TokenSpec | undefined;
let key: JoseKey | Uint8Array | undefined;
const tokens = new Map<number, string>();
let sockets: Sock[] = [];
/** Why connects failed in the last pool, by reason. */
const failures = new Map<string, number>();
/** Since the last mark: event and batch frames received, and this process's CPU and clock at the mark. */
let frames = 0;
let markedAt = { cpu: process.cpuUsage(), ms: nowMs() };

function send(message: FromClient): void {
  process.send?.(message);
}

async function tokenFor(index: number): Promise<string> {
  const cached = tokens.get(index);
  if (cached) return cached;
  if (!tokenSpec || !key) throw new Error("init first");
  const token = await new SignJWT({})
    .setProtectedHeader({ alg: "RS256" })
    .setSubject(String(USER_BASE + BigInt(index)))
    .setIssuer(tokenSpec.issuer)
    .setAudience(tokenSpec.audience)
    .setExpirationTime("2h")
    .sign(key);
  tokens.set(index, token);
  return token;
}

/** Records what a message carries and returns its type. */
function onMessage(sock: Sock, raw: WebSocket.RawData): string {
  const at = nowMs();
  type Envelope = { seq: number; payload?: { userId?: string } };
  const message = JSON.parse(String(raw)) as Envelope & { type: string; events?: Envelope[] };
  if (message.type === "snapshot") {
    sock.snapshots++;
    sock.lastSeq = message.seq;
  } else if (message.type === "event") {
    frames++;
    record(sock, message, at);
  } else if (message.type === "batch") {
    frames++;
    for (const event of message.events ?? []) record(sock, event, at);
  }
  return message.type;
}

function record(sock: Sock, event: { seq: number; payload?: { userId?: string } }, at: number): void {
  sock.seqs.push(event.seq);
  sock.users.push(event.payload?.userId);
  sock.times.push(at);
  sock.lastSeq = event.seq;
}

/** Connects one socket and authenticates; resolves once its snapshot (or, resuming, its auth.ok) arrived. */
function connect(sock: Sock, url: string, batch: boolean): Promise<void> {
  return tokenFor(sock.spec.index).then(
    (token) =>
      new Promise<void>((resolve, reject) => {
        const ws = new WebSocket(url, { perMessageDeflate: false, headers: simulatedAddress(sock.spec.index) });
        sock.ws = ws;
        const timer = setTimeout(() => {
          ws.terminate();
          reject(new Error("no auth.ok in time"));
        }, AUTH_WAIT_MS);
        ws.on("open", () => {
          const auth: Record<string, unknown> = { type: "auth", token };
          if (sock.spec.rooms) auth.rooms = sock.spec.rooms;
          if (sock.since !== undefined) auth.since = sock.since;
          if (batch) auth.batch = true;
          ws.send(JSON.stringify(auth));
        });
        // A fresh socket is ready at its snapshot, a resuming one at its auth.ok (the replay follows).
        const readyAt = sock.since === undefined ? "snapshot" : "ack";
        ws.on("message", (raw) => {
          if (onMessage(sock, raw) !== readyAt) return;
          clearTimeout(timer);
          resolve();
        });
        ws.on("error", () => undefined); // the close that follows is what counts
        ws.on("close", (code) => {
          clearTimeout(timer);
          reject(new Error(`closed ${code}`));
        });
      }),
  );
}

/** Runs `work` over `items` with at most `limit` in flight (the hub admits a bounded number of pending sockets). */
async function pool<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<number> {
  let next = 0;
  let failed = 0;
  failures.clear();
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++]!;
      try {
        await work(item);
      } catch (error) {
        failed++;
        const reason = error instanceof Error ? error.message : String(error);
        failures.set(reason, (failures.get(reason) ?? 0) + 1);
      }
    }
  });
  await Promise.all(runners);
  return failed;
}

async function open(url: string, specs: SocketSpec[], batch: boolean, concurrency: number): Promise<OpenReport> {
  for (const spec of specs) await tokenFor(spec.index); // signing is not part of connect+auth
  const fresh: Sock[] = specs.map((spec) => ({ spec, lastSeq: 0, seqs: [], users: [], times: [], snapshots: 0 }));
  const start = nowMs();
  const failed = await pool(fresh, concurrency, (sock) => connect(sock, url, batch));
  const ms = nowMs() - start;
  sockets.push(...fresh.filter((sock) => sock.ws?.readyState === WebSocket.OPEN));
  return { opened: specs.length - failed, failed, reasons: Object.fromEntries(failures), ms, minSeq: Math.min(...fresh.map((s) => s.lastSeq)) };
}

function wants(sock: Sock, event: SentEvent): boolean {
  return !sock.spec.rooms || event.roomEvent || sock.spec.rooms.includes(event.channelId);
}

/**
 * A check of whether every socket has all it expects, polled every 20 ms while the load runs: each poll looks
 * only at what arrived since the last one, so the check's cost does not grow with the run (and steal the clients'
 * CPU).
 */
function completion(expected: Map<Sock, number>, events: SentEvent[]): () => boolean {
  const byUser = events.length > 0 && events[0]!.seq === 0;
  const wanted = byUser ? new Set(events.map((e) => e.userId)) : undefined;
  const progress = new Map(sockets.map((sock) => [sock, { checked: 0, got: 0 }]));
  return () => {
    for (const sock of sockets) {
      const p = progress.get(sock)!;
      if (!wanted) p.got = sock.seqs.length;
      else for (; p.checked < sock.users.length; p.checked++) if (wanted.has(sock.users[p.checked])) p.got++;
      if (p.got < expected.get(sock)!) return false;
    }
    return true;
  };
}

async function collect(events: SentEvent[], timeoutMs: number): Promise<CollectReport> {
  const expected = new Map(sockets.map((sock) => [sock, events.filter((event) => wants(sock, event)).length]));
  await until(completion(expected, events), timeoutMs);
  const cpu = process.cpuUsage(markedAt.cpu);
  const usage = { frames, cpuMs: (cpu.user + cpu.system) / 1000, wallMs: nowMs() - markedAt.ms };
  // Full-path events are matched by their (unique) user, as only the hub knows their seq.
  const byUser = events.length > 0 && events[0]!.seq === 0;
  const index = new Map<number | string, number>(events.map((event, i) => [byUser ? event.userId! : event.seq, i]));
  const histogram = new Histogram();
  const lastArrival = new Array<number>(events.length).fill(0);
  const firstArrival = new Array<number>(events.length).fill(0);
  let received = 0;
  let extra = 0;
  let lost = 0;
  let total = 0;
  for (const sock of sockets) {
    const seen = new Set<number | string>();
    sock.seqs.forEach((seq, k) => {
      const key = byUser ? sock.users[k] : seq;
      const i = key === undefined ? undefined : index.get(key);
      if (i === undefined || seen.has(key!) || !wants(sock, events[i]!)) {
        if (!byUser) extra++; // on the full path the gateway's own events (the initial sync) arrive too
        return;
      }
      seen.add(key!);
      received++;
      const at = sock.times[k]!;
      histogram.add(at - events[i]!.sentAt);
      if (at > lastArrival[i]!) lastArrival[i] = at;
      if (firstArrival[i] === 0 || at < firstArrival[i]!) firstArrival[i] = at;
    });
    const want = expected.get(sock)!;
    total += want;
    lost += Math.max(0, want - seen.size);
    sock.seqs = [];
    sock.users = [];
    sock.times = [];
  }
  return { sockets: sockets.length, expected: total, received, lost, extra, histogram: histogram.toData(), lastArrival, firstArrival, ...usage };
}

/** Drops every socket at once, with no close handshake, as a network cut would. */
function drop(): number {
  for (const sock of sockets) {
    sock.ws?.removeAllListeners();
    sock.ws?.on("error", () => undefined);
    sock.ws?.terminate();
  }
  return sockets.length;
}

/**
 * Resumes every dropped socket at once with `since` = its last seq; each must get exactly the events after it
 * up to `expectSeq` (the driver published those while the sockets were down), in order, and no snapshot.
 */
async function resume(url: string, concurrency: number, timeoutMs: number, expectSeq: number): Promise<ResumeReport> {
  const resuming = sockets;
  for (const sock of resuming) {
    sock.since = sock.lastSeq;
    sock.seqs = [];
    sock.users = [];
    sock.times = [];
    sock.snapshots = 0;
  }
  const start = nowMs();
  const failed = await pool(resuming, concurrency, (sock) => connect(sock, url, false));
  await until(() => resuming.every((sock) => sock.lastSeq >= expectSeq || sock.ws?.readyState !== WebSocket.OPEN), timeoutMs);
  const ms = nowMs() - start;
  let exact = 0;
  let snapshots = 0;
  let wrong = 0;
  for (const sock of resuming) {
    snapshots += sock.snapshots;
    const missed = Array.from({ length: expectSeq - sock.since! }, (_, k) => sock.since! + 1 + k);
    if (sock.snapshots === 0 && sock.seqs.length === missed.length && sock.seqs.every((seq, k) => seq === missed[k])) exact++;
    else wrong++;
    sock.since = undefined;
    sock.seqs = [];
    sock.users = [];
    sock.times = [];
  }
  return { sockets: resuming.length, exact, snapshots, wrong, failed, ms };
}

function until(done: () => boolean, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const deadline = setTimeout(finish, timeoutMs);
    const poll = setInterval(check, 20);
    function check(): void {
      if (done()) finish();
    }
    function finish(): void {
      clearTimeout(deadline);
      clearInterval(poll);
      resolve();
    }
    check();
  });
}

async function handle(message: ToClient): Promise<void> {
  switch (message.type) {
    case "init": {
      tokenSpec = message.tokens;
      key = await importJWK(message.tokens.privateJwk, "RS256");
      for (let i = 0; i < message.count; i++) await tokenFor(message.firstIndex + i);
      return send({ type: "ready" });
    }
    case "open":
      return send({ type: "opened", report: await open(message.url, message.sockets, message.batch, message.concurrency) });
    case "mark":
      for (const sock of sockets) {
        sock.seqs = [];
        sock.users = [];
        sock.times = [];
      }
      frames = 0;
      markedAt = { cpu: process.cpuUsage(), ms: nowMs() };
      return send({ type: "marked" });
    case "collect":
      return send({ type: "collected", report: await collect(message.events, message.timeoutMs) });
    case "drop":
      return send({ type: "dropped", sockets: drop() });
    case "resume":
      return send({ type: "resumed", report: await resume(message.url, message.concurrency, message.timeoutMs, message.expectSeq) });
    case "close":
      for (const sock of sockets) sock.ws?.close(1000);
      sockets = [];
      return send({ type: "marked" });
  }
}

process.on("message", (message: ToClient) => {
  handle(message).catch((error: unknown) => send({ type: "fatal", message: error instanceof Error ? error.message : String(error) }));
});
process.on("disconnect", () => process.exit(0));
