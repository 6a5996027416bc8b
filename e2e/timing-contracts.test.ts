import { performance } from "node:perf_hooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { isolatedWorkerVars } from "../dev/stack/wrangler-dev.js";
import { AUTH_TIMEOUT_MS, CloseCode } from "../protocol/index.js";
import { startTestWorker, TestIssuer, type TestWorker } from "./support/test-worker.js";

/**
 * The socket timing contracts (DESIGN.md "Browser WebSocket"), measured against `wrangler dev` itself: the
 * runtime users run. The Vitest pool's client end of a socket lives inside workerd, so it cannot see what a
 * client across TCP sees. The windows below are tight enough to catch the ~10 s lateness once seen at 15 s.
 * The cases share one wrangler dev (and so one GuildHub and its one multiplexed alarm) and run concurrently.
 *
 * Two moments are measured per close: when the client receives the hub's Close frame (the hub's contract on the
 * wire) and when the connection is torn down (when the `ws` package, like Node clients generally, reports
 * `close`; a browser reports it then or after its own ~2 s wait for the server's TCP close). Under wrangler
 * 4.155.0 / workerd 1.20261023.1 the two differ for a hibernatable socket whose client never sent a message:
 * the Close frame leaves on time, but workerd keeps the TCP connection until the Durable Object hibernates
 * (~10 s after its last event). That is a runtime defect, pinned by the `it.fails` case below.
 */

const GUILD = "100000000000000001";
const SECRET = "timing-contracts-hub-secret-0123456789";

/** How late a deadline's close may reach the client: generous for a loaded CI box, far below the old ~10 s. */
const LATE_MS = 2_500;

let worker: TestWorker;
let issuer: TestIssuer;
const measured: string[] = [];

beforeAll(async () => {
  issuer = await TestIssuer.create({ issuer: "timing-contracts", kid: "timing" });
  worker = await startTestWorker({ name: "timing", logLevel: "warn", vars: isolatedWorkerVars({ guildId: GUILD, hubSecret: SECRET, ...issuer.trust }) });
});

afterAll(async () => {
  await worker?.stop();
  if (measured.length > 0) console.log(`timing contracts under wrangler dev:\n  ${measured.join("\n  ")}`);
});


/** A token whose `exp` is the given unix second (so the test knows exactly when the hub must close). */
function tokenExpiringAt(expSeconds: number, sub = "200000000000000001"): Promise<string> {
  return issuer.token(sub, { name: "Timing" }, expSeconds);
}

/** Rejects with `what` unless `promise` settles within `ms`. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

interface Closed {
  code: number;
  reason: string;
  /** Date.now() when the client received the hub's Close frame. */
  frameAt: number;
  /** Milliseconds from the socket's open to the Close frame's arrival, by the monotonic clock. */
  frameAfterOpenMs: number;
  /** Milliseconds from open to the connection's teardown (the `ws` close event), or undefined when not awaited. */
  teardownAfterOpenMs?: number;
}

interface TimedSocket {
  ws: WebSocket;
  messages: string[];
  /** Resolves when the hub's Close frame arrives (code and reason included). */
  closed: Promise<Closed>;
  isClosing(): boolean;
  /** Resolves with the first message `match` accepts (already received or still to come). */
  next(match: (text: string) => boolean, what: string, ms?: number): Promise<string>;
}

/**
 * Opens /ws and watches it. The Close frame's arrival shows as readyState CLOSING (polled every 5 ms; `ws` emits
 * no event for it). With `waitForTeardown` false the client then drops the TCP connection itself, so `close`
 * reports the frame's code and reason at once; with true it waits, like a polite client, for the server to end it.
 */
async function openSocket(label: string, waitForTeardown = false): Promise<TimedSocket> {
  const ws = new WebSocket(`${worker.url.replace("http", "ws")}/ws`);
  const messages: string[] = [];
  const waiters: Array<() => void> = [];
  const wake = () => {
    for (const resolve of waiters.splice(0)) resolve();
  };
  let openMark = 0;
  let frame: { at: number; afterOpenMs: number } | undefined;
  ws.on("message", (data) => {
    messages.push(String(data));
    wake();
  });
  const closed = new Promise<Closed>((resolve) => {
    ws.once("close", (code, reason) => {
      const teardownAfterOpenMs = performance.now() - openMark;
      frame ??= { at: Date.now(), afterOpenMs: teardownAfterOpenMs };
      resolve({
        code, reason: reason.toString(), frameAt: frame.at, frameAfterOpenMs: frame.afterOpenMs,
        teardownAfterOpenMs: waitForTeardown ? teardownAfterOpenMs : undefined,
      });
      wake();
    });
  });
  await within(new Promise<void>((resolve, reject) => {
    ws.once("open", () => {
      openMark = performance.now();
      resolve();
    });
    ws.once("error", reject);
  }), 10_000, `${label}: the /ws upgrade`);
  const poll = setInterval(() => {
    if (ws.readyState === WebSocket.OPEN) return;
    clearInterval(poll);
    frame ??= { at: Date.now(), afterOpenMs: performance.now() - openMark };
    wake();
    if (!waitForTeardown) ws.terminate();
  }, 5);
  const next = async (match: (text: string) => boolean, what: string, ms = 5_000): Promise<string> => {
    const deadline = performance.now() + ms;
    for (;;) {
      const found = messages.find(match);
      if (found !== undefined) return found;
      if (frame) {
        const { code, reason } = await within(closed, 30_000, `${label}: the close after its Close frame`);
        throw new Error(`${label}: socket closed ${code} "${reason}" before ${what} arrived`);
      }
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`${label}: timed out after ${ms} ms waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  };
  return { ws, messages, closed, isClosing: () => frame !== undefined, next };
}

const isAuthOk = (text: string) => text.includes('"auth.ok"');

async function authenticate(socket: TimedSocket, token: string, label: string): Promise<void> {
  const seen = socket.messages.filter(isAuthOk).length;
  socket.ws.send(JSON.stringify({ type: "auth", token }));
  await socket.next(() => socket.messages.filter(isAuthOk).length > seen, `${label}: auth.ok`);
}

const ms = (value: number | undefined) => (value === undefined ? "-" : `${value.toFixed(0)} ms`);

describe("socket timing contracts under wrangler dev", () => {
  it.concurrent("sends 4408 about 5 s after open to a socket that never authenticates", async () => {
    const socket = await openSocket("unauthenticated");
    const closed = await within(socket.closed, AUTH_TIMEOUT_MS + 10_000, "unauthenticated: the 4408 Close frame");
    measured.push(`4408 no auth: ${closed.code} "${closed.reason}", Close frame ${ms(closed.frameAfterOpenMs)} after open`);
    expect(closed.code).toBe(CloseCode.authTimeout);
    expect(closed.frameAfterOpenMs).toBeGreaterThanOrEqual(AUTH_TIMEOUT_MS - 500);
    expect(closed.frameAfterOpenMs).toBeLessThanOrEqual(AUTH_TIMEOUT_MS + LATE_MS);
  });

  it.concurrent("sends 4408 on a socket's own 5 s when an earlier socket's deadline armed the one alarm", async () => {
    // Opened 2 s after the first case's socket: the alarm fires for that one, then is re-armed from inside the
    // alarm handler for this one.
    await sleep(2_000);
    const socket = await openSocket("staggered");
    const closed = await within(socket.closed, AUTH_TIMEOUT_MS + 10_000, "staggered: the 4408 Close frame");
    measured.push(`4408 staggered: ${closed.code} "${closed.reason}", Close frame ${ms(closed.frameAfterOpenMs)} after open`);
    expect(closed.code).toBe(CloseCode.authTimeout);
    expect(closed.frameAfterOpenMs).toBeGreaterThanOrEqual(AUTH_TIMEOUT_MS - 500);
    expect(closed.frameAfterOpenMs).toBeLessThanOrEqual(AUTH_TIMEOUT_MS + LATE_MS);
  });

  // Known runtime defect (workerd 1.20261023.1, also the old ~15 s report): the Close frame above arrives at 5 s, but
  // workerd ends the TCP connection of a hibernatable socket whose client never sent anything only when the Durable
  // Object hibernates, ~10 s after its last event, so a Node `ws` client sees `close` at ~15 s (Chromium: ~2 s late,
  // after its own wait). A client that sent any message first is torn down at once (the cases below). `it.fails`
  // keeps the suite green while it lasts; when this starts "failing", the runtime is fixed: make it a plain `it`.
  it.concurrent.fails("tears the unauthenticated socket's connection down with its 4408 (workerd defect: ~10 s late)", async () => {
    const socket = await openSocket("teardown", true);
    try {
      const closed = await within(socket.closed, AUTH_TIMEOUT_MS + LATE_MS, "teardown: the connection's close after 4408");
      measured.push(`4408 teardown: ${closed.code}, Close frame ${ms(closed.frameAfterOpenMs)}, teardown ${ms(closed.teardownAfterOpenMs)} after open`);
      expect(closed.code).toBe(CloseCode.authTimeout);
      expect(closed.teardownAfterOpenMs).toBeLessThanOrEqual(AUTH_TIMEOUT_MS + LATE_MS);
    } catch (error) {
      measured.push(`4408 teardown: not torn down within ${AUTH_TIMEOUT_MS + LATE_MS} ms of open (Close frame ${socket.isClosing() ? "received" : "not received"})`);
      throw error;
    } finally {
      socket.ws.terminate();
    }
  });

  it.concurrent("closes 4401 \"token expired\" at the token's expiry, not before, and tears the connection down", async () => {
    const socket = await openSocket("expiring", true);
    const exp = Math.ceil(Date.now() / 1000) + 7;
    await authenticate(socket, await tokenExpiringAt(exp), "expiring");
    const closed = await within(socket.closed, exp * 1000 - Date.now() + 10_000, "expiring: the 4401 close at token expiry");
    const frameAfterExpMs = closed.frameAt - exp * 1000;
    const teardownAfterExpMs = frameAfterExpMs + (closed.teardownAfterOpenMs ?? 0) - closed.frameAfterOpenMs;
    measured.push(`4401 expiry: ${closed.code} "${closed.reason}", Close frame ${ms(frameAfterExpMs)}, teardown ${ms(teardownAfterExpMs)} after exp`);
    expect(closed.code).toBe(CloseCode.unauthorized);
    expect(closed.reason).toBe("token expired");
    expect(frameAfterExpMs).toBeGreaterThanOrEqual(0);
    expect(frameAfterExpMs).toBeLessThanOrEqual(LATE_MS);
    expect(teardownAfterExpMs).toBeLessThanOrEqual(LATE_MS);
  });

  it.concurrent("keeps a socket open past its first token's expiry when it re-authenticated with a fresh token", async () => {
    const socket = await openSocket("refreshed", true);
    const exp = Math.ceil(Date.now() / 1000) + 6;
    await authenticate(socket, await tokenExpiringAt(exp), "refreshed: first auth");
    await sleep(exp * 1000 - Date.now() - 2_000);
    expect(socket.isClosing(), "refreshed: closed before its first token even expired").toBe(false);
    await authenticate(socket, await tokenExpiringAt(Math.floor(Date.now() / 1000) + 600), "refreshed: second auth");
    await sleep(exp * 1000 + LATE_MS + 500 - Date.now());
    const early = socket.isClosing() ? await within(socket.closed, 30_000, "refreshed: the unexpected close") : undefined;
    expect(early, `refreshed: closed ${early?.code} "${early?.reason}" ${early ? early.frameAt - exp * 1000 : 0} ms after the first token's exp`).toBeUndefined();
    // Still served, not just not yet reaped: the runtime's auto-response answers.
    socket.ws.send("ping");
    await socket.next((text) => text === "pong", "refreshed: pong after the first token's expiry");
    measured.push(`refresh: still open and answering ${Date.now() - exp * 1000} ms after the first token's exp`);
    socket.ws.close(1000, "done");
    const closed = await within(socket.closed, 5_000, "refreshed: the closing handshake");
    expect(closed.code).toBe(1000);
  });
});
