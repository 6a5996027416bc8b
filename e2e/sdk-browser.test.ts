import { join } from "node:path";
import { build } from "esbuild";
import type { Browser, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { isolatedWorkerVars } from "../dev/stack/wrangler-dev.js";
import { until } from "../test-support/until.js";
import { launchChromium } from "./support/browser.js";
import { HubFeed } from "./support/hub-feed.js";
import { ROOT } from "./support/paths.js";
import type { SdkPageOptions, SdkPageView, SeenEvent, SeenStatus } from "./support/sdk-page.js";
import { TcpProxy } from "./support/tcp-proxy.js";
import { startTestWorker, TestIssuer, type TestWorker } from "./support/test-worker.js";

/**
 * The browser SDK in Chromium, with the browser's own WebSocket, against the Worker under `wrangler dev`, through
 * a TCP proxy that freezes, cuts or holds connections on command. What is asserted is what an app sees through
 * `connect()`: its statuses, its events and its presence store, compared with the hub's own seq.
 */

const GUILD = "100000000000000001";
const SECRET = "sdk-browser-hub-secret-0123456789abcdef";
const SEED = Number(process.env.SEED ?? Math.floor(Math.random() * 2 ** 31));

/** Small liveness and connect deadlines so failures show within seconds, with room for a loaded machine. */
const TIMINGS = {
  pingIntervalMs: 1_000,
  pongTimeoutMs: 2_500,
  connectTimeoutMs: 3_000,
  backoff: { minMs: 100, maxMs: 1_000, factor: 2 },
} as const;
/** How long any one expected change may take to show in the page. */
const SHOWS_WITHIN_MS = 15_000;

const room = (n: number) => `1100000000000001${String(n).padStart(2, "0")}`;
const user = (n: number) => `2100000000000001${String(n).padStart(2, "0")}`;

let worker: TestWorker;
let browser: Browser;
let pageScript: string;
let hub: HubFeed;
let issuer: TestIssuer;
/** Signs like the trusted issuer, with a key the Worker does not know. */
let foreignIssuer: TestIssuer;
let proxy: TcpProxy | undefined;
let page: Page | undefined;

beforeAll(async () => {
  console.log(`sdk-browser: SEED=${SEED} (the SDK's backoff jitter; set SEED to replay)`);
  issuer = await TestIssuer.create({ issuer: "sdk-browser", kid: "sdk" });
  foreignIssuer = await TestIssuer.create({ issuer: "sdk-browser", kid: "sdk" });
  const bundled = await build({
    entryPoints: [join(ROOT, "e2e/support/sdk-page.ts")],
    bundle: true,
    format: "iife",
    platform: "browser",
    target: "es2022",
    write: false,
    logLevel: "warning",
  });
  pageScript = bundled.outputFiles[0]!.text;
  [worker, browser] = await Promise.all([
    startTestWorker({ name: "sdk-browser", logLevel: "warn", vars: isolatedWorkerVars({ guildId: GUILD, hubSecret: SECRET, ...issuer.trust }) }),
    launchChromium(),
  ]);
  hub = new HubFeed(worker.url, SECRET, GUILD, "sdk-browser");
});

afterEach(async () => {
  await page?.close();
  await proxy?.stop();
  page = undefined;
  proxy = undefined;
});

afterAll(async () => {
  await browser?.close();
  await worker?.stop();
});

function token(from: TestIssuer = issuer): Promise<string> {
  return from.token(user(99), { name: "Browser" });
}

/** The hub's current seq, as GET /rooms reports it. */
async function hubSeq(): Promise<number> {
  const response = await fetch(`${worker.url}/rooms`, { headers: { Authorization: `Bearer ${await token()}` } });
  if (!response.ok) throw new Error(`GET /rooms answered ${response.status}`);
  return ((await response.json()) as { seq: number }).seq;
}

interface SdkPageHandle {
  view(): Promise<SdkPageView>;
  statuses(): Promise<SeenStatus[]>;
  events(): Promise<SeenEvent[]>;
  /** Tokens handed to the SDK so far. */
  issued: number;
}

/** A fresh page running `connect()` through `through`, with tokens from `issue`. */
async function openSdkPage(through: TcpProxy, issue: () => Promise<string> = () => token()): Promise<SdkPageHandle> {
  const opened = await browser.newPage();
  page = opened;
  const errors: string[] = [];
  opened.on("pageerror", (error) => errors.push(error.message));
  const handle: SdkPageHandle = {
    issued: 0,
    view: async () => {
      if (errors.length > 0) throw new Error(`the page threw: ${errors.join("; ")}`);
      return opened.evaluate(() => window.sdk.view());
    },
    statuses: () => opened.evaluate(() => window.sdk.statuses),
    events: () => opened.evaluate(() => window.sdk.events),
  };
  await opened.exposeFunction("issueToken", () => {
    handle.issued++;
    return issue();
  });
  await opened.addScriptTag({ content: pageScript });
  const options: SdkPageOptions = { url: `ws://127.0.0.1:${through.port}/ws`, ...TIMINGS, seed: SEED };
  await opened.evaluate((start) => window.sdk.start(start), options);
  return handle;
}

function live(sdk: SdkPageHandle, what: string): Promise<SdkPageView> {
  return until(async () => {
    const view = await sdk.view();
    return view.status === "live" && view.seq === (await hubSeq()) && view;
  }, what, SHOWS_WITHIN_MS);
}

/** The seqs are consecutive: no event is missing and none arrived twice. */
function expectConsecutive(events: SeenEvent[]): void {
  const seqs = events.map((e) => e.seq);
  expect(seqs, `seqs ${seqs.join(",")}`).toEqual(seqs.map((_, i) => seqs[0]! + i));
}

const statusesSince = (statuses: SeenStatus[], since: number) => statuses.filter((s) => s.at >= since);

describe("the browser SDK in Chromium against wrangler dev", () => {
  it("shows the snapshot's rooms first, then applies live events in order", async () => {
    proxy = await TcpProxy.start({ upstreamPort: Number(new URL(worker.url).port) });
    await hub.post(hub.roomCreated(room(1), "Snapshot pod"), hub.joined(room(1), user(1)));
    const sdk = await openSdkPage(proxy);
    const first = await live(sdk, "live with the snapshot");
    expect(first.rooms.find((r) => r.channelId === room(1))).toEqual({ channelId: room(1), name: "Snapshot pod", members: [user(1)] });
    expect(await sdk.events(), "the snapshot is state, not a replay of events").toEqual([]);

    await hub.post(hub.roomCreated(room(2), "Live pod"), hub.joined(room(2), user(2)), hub.left(room(1), user(1)));
    const view = await live(sdk, "the three live events");
    const events = await sdk.events();
    expect(events.map((e) => `${e.event}@${e.channelId}`)).toEqual([`room.created@${room(2)}`, `voice.joined@${room(2)}`, `voice.left@${room(1)}`]);
    expectConsecutive(events);
    expect(events.at(-1)!.seq).toBe(view.seq);
    expect(view.rooms.filter((r) => [room(1), room(2)].includes(r.channelId)).map((r) => [r.name, r.members])).toEqual([
      ["Live pod", [user(2)]],
      ["Snapshot pod", []],
    ]);
    expect((await sdk.statuses()).map((s) => s.status)).toEqual(["connecting", "live"]);
    expect(proxy.connections).toHaveLength(1);
  });

  it("after a CUT, resumes and receives exactly the events it missed, going resuming → live", async () => {
    proxy = await TcpProxy.start({ upstreamPort: Number(new URL(worker.url).port) });
    await hub.post(hub.roomCreated(room(3), "Cut pod"));
    const sdk = await openSdkPage(proxy);
    await live(sdk, "live before the cut");
    await hub.post(hub.joined(room(3), user(3)));
    await live(sdk, "the event before the cut");

    proxy.hold(); // the reconnect waits, so the next events are surely missed
    const cutAt = Date.now();
    expect(proxy.cut()).toBe(1);
    await until(() => proxy!.connections.length === 2, "the SDK's reconnect attempt", SHOWS_WITHIN_MS);
    expect((await sdk.view()).status).toBe("resuming");
    await hub.post(hub.left(room(3), user(3)), hub.roomCreated(room(4), "Made while cut"), hub.joined(room(4), user(3)));
    proxy.release();

    const view = await live(sdk, "live again with the missed events");
    const events = await sdk.events();
    expectConsecutive(events);
    expect(events.slice(-3).map((e) => `${e.event}@${e.channelId}`)).toEqual([`voice.left@${room(3)}`, `room.created@${room(4)}`, `voice.joined@${room(4)}`]);
    expect(events.at(-1)!.seq).toBe(view.seq);
    expect(view.rooms.find((r) => r.channelId === room(4))?.members).toEqual([user(3)]);
    const after = statusesSince(await sdk.statuses(), cutAt);
    expect(after.map((s) => s.status)).toEqual(["resuming", "live"]);
    expect(after[0]!.detail).toMatch(/^closed 1006/);
    expect(proxy.connections.map((c) => c.closedBy)).toEqual(["proxy", undefined]);
  });

  it("after a FREEZE, notices the dead connection by ping/pong and resumes on a fresh one without waiting for it to close", async () => {
    proxy = await TcpProxy.start({ upstreamPort: Number(new URL(worker.url).port) });
    await hub.post(hub.roomCreated(room(5), "Frozen pod"));
    const sdk = await openSdkPage(proxy);
    await live(sdk, "live before the freeze");
    const before = (await sdk.events()).length;

    const frozenAt = Date.now();
    expect(proxy.freeze()).toBe(1);
    await hub.post(hub.joined(room(5), user(5)), hub.joined(room(5), user(6)));
    const view = await live(sdk, "live again after the freeze");

    const after = statusesSince(await sdk.statuses(), frozenAt);
    expect(after.map((s) => `${s.status}:${s.detail ?? ""}`)).toEqual(["resuming:no pong", "live:"]);
    // The frozen connection is still open: the SDK left it behind instead of waiting for the browser's close.
    expect(proxy.connections.map((c) => c.state)).toEqual(["frozen", "forwarding"]);
    const events = await sdk.events();
    expectConsecutive(events);
    expect(events.slice(before).map((e) => `${e.event}@${e.channelId}`)).toEqual([`voice.joined@${room(5)}`, `voice.joined@${room(5)}`]);
    expect(view.rooms.find((r) => r.channelId === room(5))?.members.sort()).toEqual([user(5), user(6)]);
  });

  it("gives up on a socket that never opens after the connect timeout, and retries", async () => {
    proxy = await TcpProxy.start({ upstreamPort: Number(new URL(worker.url).port) });
    proxy.hold(); // TCP is accepted, the upgrade is never answered
    const sdk = await openSdkPage(proxy);
    await until(() => proxy!.connections.length >= 2, "a second attempt after the first one's connect timeout", SHOWS_WITHIN_MS);
    expect(proxy.connections[0]!.closedBy, "the SDK abandoned the first socket").toBe("client");
    const waiting = await sdk.statuses();
    expect(waiting.map((s) => s.status)).not.toContain("live");
    expect(waiting.some((s) => s.status === "connecting" && s.detail === "connect timeout")).toBe(true);

    proxy.release();
    const view = await live(sdk, "live once connections are answered");
    expect(view.rooms.length).toBeGreaterThan(0);
  });

  it("reports unauthorized when the hub refuses its tokens, instead of connecting forever", async () => {
    proxy = await TcpProxy.start({ upstreamPort: Number(new URL(worker.url).port) });
    const sdk = await openSdkPage(proxy, () => token(foreignIssuer));
    await until(async () => (await sdk.view()).status === "unauthorized", "status unauthorized", SHOWS_WITHIN_MS);
    const statuses = await sdk.statuses();
    expect(statuses.map((s) => s.status)).not.toContain("live");
    expect(statuses.at(-1)!.status).toBe("unauthorized");
    expect(sdk.issued, "a fresh token was tried once before giving up").toBe(2);
    const attempts = proxy.connections.length;
    // Two liveness periods later, still no retry.
    await new Promise((resolve) => setTimeout(resolve, 2 * TIMINGS.pingIntervalMs + TIMINGS.pongTimeoutMs));
    expect(proxy.connections).toHaveLength(attempts);
    expect((await sdk.view()).status).toBe("unauthorized");
  });

  it("steps over an event kind it does not know without reconnecting", async () => {
    // The hub has no unknown kinds to send, so the proxy renames one real event on the wire: the room.updated for
    // room(6) becomes "room.archived" (a kind from a future hub), seq and payload unchanged.
    const future = (text: string) =>
      text.includes('"event":"room.updated"') && text.includes(room(6)) ? text.replace('"event":"room.updated"', '"event":"room.archived"') : text;
    proxy = await TcpProxy.start({ upstreamPort: Number(new URL(worker.url).port), rewriteFromUpstream: future });
    await hub.post(hub.roomCreated(room(6), "Before"));
    const sdk = await openSdkPage(proxy);
    await live(sdk, "live before the unknown event");
    const before = (await sdk.events()).length;

    await hub.post(hub.roomCreated(room(6), "After")); // a rename: the hub sends room.updated
    await hub.post(hub.joined(room(6), user(7)));
    const view = await until(async () => {
      const current = await sdk.view();
      return current.rooms.find((r) => r.channelId === room(6))?.members.includes(user(7)) && current;
    }, "the voice.joined after the unknown event", SHOWS_WITHIN_MS);

    expect(proxy.rewritten, "the proxy renamed exactly one event").toBe(1);
    expect(view.seq).toBe(await hubSeq());
    expect(view.rooms.find((r) => r.channelId === room(6))?.name, "the unknown event changed nothing").toBe("Before");
    const events = (await sdk.events()).slice(before);
    expect(events.map((e) => e.event)).toEqual(["voice.joined"]);
    expect((await sdk.statuses()).map((s) => s.status)).toEqual(["connecting", "live"]);
    expect(proxy.connections).toHaveLength(1);
  });
});
