import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { build } from "esbuild";
import { EventSource } from "eventsource";
import type { Browser, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { SSE_RETRY } from "../protocol/index.js";
import { until } from "../test-support/until.js";
import { launchChromium } from "./support/browser.js";
import { ROOT } from "./support/paths.js";
import type { SeenItem } from "./support/sse-clients-page.js";
import { newUserId, startSseWorker, type SseWorker } from "./support/sse-worker.js";
import { TcpProxy } from "./support/tcp-proxy.js";

/**
 * GET /events with clients nobody here wrote, against `wrangler dev` over real TCP: the browser's own EventSource
 * (with the stream cookie, from a page served same-site), the `eventsource` package in Node and
 * `@microsoft/fetch-event-source` in the browser (both with a bearer token). Each connects, resumes exactly after
 * a cut (Last-Event-ID), and renews: the stream ends with `end` 4401 at its token's expiry and the client comes
 * back with a fresh credential, missing nothing. A TCP proxy in front cuts connections and holds reconnections
 * until the missed events exist.
 */

const NAMES = ["snapshot", "room.created", "end"];
/** The token lifetime of a renewal test: enough to connect, short enough to wait out. */
const SHORT_TTL_S = 8;

let worker: SseWorker;
let proxy: TcpProxy;
let pages: Server;
let pageOrigin: string;
let browser: Browser;
let page: Page | undefined;
let channelCounter = 740000000000000000n;
const newChannelId = () => String(channelCounter++);

beforeAll(async () => {
  const bundled = await build({
    entryPoints: [join(ROOT, "e2e/support/sse-clients-page.ts")],
    bundle: true,
    format: "iife",
    platform: "browser",
    target: "es2022",
    write: false,
    logLevel: "warning",
  });
  const html = `<!doctype html><html><body><script>${bundled.outputFiles[0]!.text}</script></body></html>`;
  pages = createServer((_request, response) => response.writeHead(200, { "Content-Type": "text/html" }).end(html));
  await new Promise<void>((resolve) => pages.listen(0, "127.0.0.1", () => resolve()));
  // Same site as the Worker (127.0.0.1; schemeful same-site ignores ports), another origin: what a custom domain
  // under the app's own domain gives in production.
  pageOrigin = `http://127.0.0.1:${(pages.address() as AddressInfo).port}`;
  [worker, browser] = await Promise.all([startSseWorker({ webOrigins: [pageOrigin] }), launchChromium()]);
  proxy = await TcpProxy.start({ upstreamPort: worker.port });
});

afterEach(async () => {
  await page?.evaluate(() => window.clients.close()).catch(() => undefined);
  await page?.close();
  page = undefined;
  proxy.release();
  proxy.cut();
});

afterAll(async () => {
  await proxy?.stop();
  await browser?.close();
  await worker?.stop();
  pages?.close();
});

const edge = () => `http://127.0.0.1:${proxy.port}`;

/** Tokens for one user: `ttl` seconds each, changeable while a client runs (what the app's token cache hands out). */
function tokenSource(ttl: number) {
  const sub = newUserId();
  const source = { ttl, issued: 0, next: () => (source.issued++, worker.token({ sub, expiresInSeconds: source.ttl })) };
  return source;
}

async function openPage(tokens: ReturnType<typeof tokenSource>): Promise<Page> {
  page = await browser.newPage();
  await page.exposeFunction("issueToken", () => tokens.next());
  await page.goto(pageOrigin);
  return page;
}

interface Received {
  event: string;
  id: string;
  data: string;
}

/** The events a client received, in order, and the channel a room.created names. */
const channelOf = (item: Received) => (JSON.parse(item.data) as { payload: { channelId?: string } }).payload.channelId;
const endOf = (item: Received) => JSON.parse(item.data) as { code: number; reason: string };

async function seenInPage(): Promise<Received[]> {
  const seen = await page!.evaluate(() => window.clients.seen);
  return seen.filter((item: SeenItem) => item.kind === "event").map((item) => ({ event: item.event!, id: item.id ?? "", data: item.data ?? "" }));
}

/** Waits until `received()` holds an event that `match` accepts, and returns every event received so far. */
async function waitForEvent(received: () => Promise<Received[]> | Received[], match: (item: Received) => boolean, what: string, timeoutMs = 10_000): Promise<Received[]> {
  return until(async () => {
    const items = await received();
    return items.some(match) ? [...items] : undefined; // a copy: a Node client appends to the same array
  }, what, timeoutMs);
}

const isRoom = (channelId: string) => (item: Received) => item.event === "room.created" && channelOf(item) === channelId;

/**
 * The shared script: connected (snapshot), then one live event; then a cut while two events are published, held
 * until they exist: the client must come back with Last-Event-ID and receive exactly those two, no snapshot.
 */
async function connectsAndResumes(received: () => Promise<Received[]> | Received[]): Promise<void> {
  const [snapshot] = await waitForEvent(received, (item) => item.event === "snapshot", "the snapshot");
  const live = newChannelId();
  await worker.feed.post(worker.feed.roomCreated(live, "Live"));
  const beforeCut = await waitForEvent(received, isRoom(live), "a live event");
  expect(beforeCut.map((item) => item.event)).toEqual(["snapshot", "room.created"]);
  expect(Number(beforeCut[1]!.id)).toBe(Number(snapshot!.id) + 1);

  proxy.hold();
  proxy.cut();
  const missed = [newChannelId(), newChannelId()];
  await worker.feed.post(...missed.map((id) => worker.feed.roomCreated(id, "Missed")));
  proxy.release();
  const after = await waitForEvent(received, isRoom(missed[1]!), "the two missed events after the cut", SSE_RETRY.baseMs + SSE_RETRY.jitterMs + 10_000);
  const resumed = after.slice(beforeCut.length);
  expect(resumed.map((item) => [item.event, channelOf(item)])).toEqual(missed.map((id) => ["room.created", id]));
  expect(resumed.map((item) => Number(item.id))).toEqual([Number(beforeCut[1]!.id) + 1, Number(beforeCut[1]!.id) + 2]);
}

/**
 * The renewal script: the stream's token expires, so the stream ends with `end` 4401; the client has a fresh
 * credential by then and comes back from Last-Event-ID: an event published after the end arrives, with no
 * snapshot and no second `end` (the expired credential would have got one).
 */
async function renewsAtExpiry(received: () => Promise<Received[]> | Received[]): Promise<void> {
  const [snapshot] = await waitForEvent(received, (item) => item.event === "snapshot", "the snapshot");
  const ended = await waitForEvent(received, (item) => item.event === "end", "the end event at the token's expiry", (SHORT_TTL_S + 5) * 1000);
  expect(endOf(ended.at(-1)!)).toEqual({ code: 4401, reason: "token expired" });
  const later = newChannelId();
  await worker.feed.post(worker.feed.roomCreated(later, "After renewal"));
  const after = await waitForEvent(received, isRoom(later), "an event on the renewed stream", SSE_RETRY.baseMs + SSE_RETRY.jitterMs + 10_000);
  expect(after.map((item) => item.event)).toEqual(["snapshot", "end", "room.created"]);
  expect(Number(after[2]!.id)).toBe(Number(snapshot!.id) + 1);
}

describe("the browser's own EventSource, with the stream cookie", () => {
  it("connects with the cookie set from a bearer token, and resumes after a cut with exactly the missed events", async () => {
    const p = await openPage(tokenSource(600));
    expect(await p.evaluate((base) => window.clients.renewCookie(base), edge())).toBe(204);
    await p.evaluate(([url, names]) => window.clients.nativeEventSource(url, names), [`${edge()}/events`, NAMES] as const);
    await connectsAndResumes(seenInPage);
    const errors = (await p.evaluate(() => window.clients.seen)).filter((item) => item.kind === "error");
    expect(errors.map((item) => item.readyState)).toEqual([0]); // one cut, reconnecting: never given up
  });

  it("renews: the app sets a fresh cookie before expiry, the stream ends 4401 at the old token's expiry and comes back with it", async () => {
    const tokens = tokenSource(SHORT_TTL_S);
    const p = await openPage(tokens);
    expect(await p.evaluate((base) => window.clients.renewCookie(base), edge())).toBe(204);
    await p.evaluate(([url, names]) => window.clients.nativeEventSource(url, names), [`${edge()}/events`, NAMES] as const);
    await waitForEvent(seenInPage, (item) => item.event === "snapshot", "the snapshot");
    tokens.ttl = 600;
    expect(await p.evaluate((base) => window.clients.renewCookie(base), edge())).toBe(204);
    await renewsAtExpiry(seenInPage);
  });

  it("keeps waiting, not given up, while its cookie has lapsed, and comes back once the app renews it", async () => {
    const tokens = tokenSource(SHORT_TTL_S);
    const p = await openPage(tokens);
    expect(await p.evaluate((base) => window.clients.renewCookie(base), edge())).toBe(204);
    await p.evaluate(([url, names]) => window.clients.nativeEventSource(url, names), [`${edge()}/events`, NAMES] as const);
    await waitForEvent(seenInPage, (item) => item.event === "end", "the end event at the token's expiry", (SHORT_TTL_S + 5) * 1000);
    // The browser dropped the cookie with the token (Max-Age): the next attempt has no credential.
    const refused = await waitForEvent(seenInPage, (item) => item.event === "end" && endOf(item).reason === "missing credentials", "an in-stream refusal", SSE_RETRY.baseMs + SSE_RETRY.jitterMs + 5_000);
    const errors = (await p.evaluate(() => window.clients.seen)).filter((item) => item.kind === "error");
    expect(errors.every((item) => item.readyState === 0)).toBe(true);
    tokens.ttl = 600;
    expect(await p.evaluate((base) => window.clients.renewCookie(base), edge())).toBe(204);
    const later = newChannelId();
    await worker.feed.post(worker.feed.roomCreated(later, "After the lapse"));
    const after = await waitForEvent(seenInPage, isRoom(later), "the event, once the renewed cookie is presented", SSE_RETRY.refusedBaseMs + SSE_RETRY.refusedJitterMs + 10_000);
    expect(after.slice(refused.length).map((item) => item.event)).toEqual(["room.created"]); // resumed: no snapshot
  }, 90_000);

  it("gives up for good on a malformed request (an HTTP 400), as it should: retrying cannot fix it", async () => {
    const p = await openPage(tokenSource(600));
    await p.evaluate(([url, names]) => window.clients.nativeEventSource(url, names), [`${edge()}/events?access_token=x`, NAMES] as const);
    const seen = await until(async () => {
      const items = await p.evaluate(() => window.clients.seen);
      return items.some((item) => item.kind === "error") ? items : undefined;
    }, "the EventSource's error");
    expect(seen).toEqual([{ kind: "error", readyState: 2 }]);
  });
});

describe("the eventsource package (Node), with a bearer token from its fetch option", () => {
  let source: EventSource | undefined;
  afterEach(() => source?.close());

  function open(tokens: ReturnType<typeof tokenSource>, path = "/events"): Received[] {
    const received: Received[] = [];
    source = new EventSource(`${edge()}${path}`, {
      // The package's documented way to add headers: a fetch of one's own, called for every connection.
      fetch: async (input, init) => fetch(input, { ...init, headers: { ...init.headers, Authorization: `Bearer ${await tokens.next()}` } }),
    });
    for (const name of NAMES) source.addEventListener(name, (event) => received.push({ event: name, id: event.lastEventId, data: event.data }));
    return received;
  }

  it("connects and resumes after a cut with exactly the missed events", async () => {
    const received = open(tokenSource(600));
    await connectsAndResumes(() => received);
    expect(source!.readyState).toBe(source!.OPEN);
  });

  it("renews: the stream ends 4401 at the token's expiry and the next connection's fetch brings a fresh token", async () => {
    const tokens = tokenSource(SHORT_TTL_S);
    const received = open(tokens);
    await waitForEvent(() => received, (item) => item.event === "snapshot", "the snapshot");
    tokens.ttl = 600;
    await renewsAtExpiry(() => received);
    expect(tokens.issued).toBe(2);
  });

  it("waits to reconnect after an in-stream refusal, and gives up for good on an HTTP 400", async () => {
    const received = open(tokenSource(-60));
    const errors: Array<{ code?: number }> = [];
    source!.addEventListener("error", (event) => errors.push({ code: event.code }));
    const [refused] = await waitForEvent(() => received, (item) => item.event === "end", "the in-stream refusal");
    expect(endOf(refused!)).toEqual({ code: 4401, reason: "token expired" });
    await until(() => errors.length > 0, "the error event of the ended stream");
    expect(source!.readyState).toBe(source!.CONNECTING);
    source!.close();

    const malformed = open(tokenSource(600), "/events?access_token=x");
    const finalErrors: Array<{ code?: number }> = [];
    source!.addEventListener("error", (event) => finalErrors.push({ code: event.code }));
    await until(() => finalErrors.length > 0, "the error event of the refused request");
    expect(finalErrors).toEqual([{ code: 400 }]);
    expect(source!.readyState).toBe(source!.CLOSED);
    expect(malformed).toEqual([]);
  });
});

describe("fetch-event-source (in the browser), with a bearer token", () => {
  it("connects and resumes after a cut with exactly the missed events", async () => {
    const p = await openPage(tokenSource(600));
    await p.evaluate((url) => window.clients.fetchEventSource(url), `${edge()}/events`);
    await connectsAndResumes(seenInPage);
  });

  it("renews: the stream ends 4401 at the token's expiry and the retry brings a fresh token", async () => {
    const tokens = tokenSource(SHORT_TTL_S);
    const p = await openPage(tokens);
    await p.evaluate((url) => window.clients.fetchEventSource(url), `${edge()}/events`);
    await waitForEvent(seenInPage, (item) => item.event === "snapshot", "the snapshot");
    tokens.ttl = 600;
    await renewsAtExpiry(seenInPage);
    expect(tokens.issued).toBe(2);
  });

  it("waits to reconnect after an in-stream refusal, and stops on an HTTP 400 when onopen throws as shown", async () => {
    const p = await openPage(tokenSource(-60));
    await p.evaluate((url) => window.clients.fetchEventSource(url), `${edge()}/events`);
    const [refused] = await waitForEvent(seenInPage, (item) => item.event === "end", "the in-stream refusal");
    expect(endOf(refused!)).toEqual({ code: 4401, reason: "token expired" });
    await until(async () => (await p.evaluate(() => window.clients.seen)).some((item) => item.kind === "error"), "onerror for the closed stream");
    expect((await p.evaluate(() => window.clients.seen)).filter((item) => item.kind === "error")).toEqual([{ kind: "error" }]); // retrying, not given up
    await p.evaluate(() => window.clients.close());
    await p.close();

    const again = await openPage(tokenSource(600));
    await again.evaluate((url) => window.clients.fetchEventSource(url), `${edge()}/events?access_token=x`);
    const seen = await until(async () => {
      const items = await again.evaluate(() => window.clients.seen);
      return items.some((item) => item.readyState === 2) ? items : undefined;
    }, "fetch-event-source to give up");
    expect(seen).toEqual([{ kind: "open", status: 400 }, { kind: "error" }, { kind: "error", readyState: 2 }]);
  });
});
