import { join } from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { isolatedWorkerVars } from "../dev/stack/wrangler-dev.js";
import { hubRequestHeaders, SSE_HEARTBEAT_MS } from "../protocol/index.js";
import { SseReader } from "../test-support/sse-reader.js";
import { until } from "../test-support/until.js";
import { launchChromium, SCREENSHOTS } from "./support/browser.js";
import { startNoWebSocketProxy, type NoWebSocketProxy } from "./support/no-websocket-proxy.js";
import { startTestWorker, TestIssuer, type TestWorker } from "./support/test-worker.js";

/**
 * The server-sent events transport end to end, against `wrangler dev` (the runtime users run, across real TCP):
 * a browser whose WebSockets are refused falls back to SSE, and a stream carries exactly what a socket beside it
 * carries, and exactly the missed events after a cut.
 */

const GUILD = "100000000000000001";
const SECRET = "sse-e2e-hub-secret-0123456789abcdef";

let worker: TestWorker;
let issuer: TestIssuer;
let channelCounter = 700000000000000000n;
let userCounter = 710000000000000000n;
let eventCounter = 0;
const newChannelId = () => String(channelCounter++);
const newUserId = () => String(userCounter++);

beforeAll(async () => {
  issuer = await TestIssuer.create({ issuer: "sse-e2e", kid: "sse" });
  worker = await startTestWorker({ name: "sse", logLevel: "warn", vars: isolatedWorkerVars({ guildId: GUILD, hubSecret: SECRET, ...issuer.trust }) });
});

afterAll(async () => {
  await worker?.stop();
});

function token(sub = newUserId()): Promise<string> {
  return issuer.token(sub, { name: "Stream" });
}

type Event = { event: string; payload: Record<string, unknown> };
const roomCreated = (channelId: string): Event => ({ event: "room.created", payload: { guildId: GUILD, channelId, name: `Room ${channelId.slice(-3)}`, userLimit: 4 } });
const joined = (channelId: string, userId: string, username?: string): Event => ({ event: "voice.joined", payload: { guildId: GUILD, channelId, userId, ...(username ? { username } : {}) } });
const left = (channelId: string, userId: string): Event => ({ event: "voice.left", payload: { guildId: GUILD, channelId, userId } });

/** Posts events as gateway-node would, signed. */
async function ingest(...events: Event[]): Promise<void> {
  const body = JSON.stringify({ events: events.map((e) => ({ id: `sse-e2e:${++eventCounter}`, ...e })) });
  const response = await fetch(`${worker.url}/internal/events`, { method: "POST", headers: await hubRequestHeaders(SECRET, body), body });
  expect(response.status).toBe(200);
}

describe("a browser whose WebSockets are refused", () => {
  let proxy: NoWebSocketProxy;
  let browser: Browser;

  beforeAll(async () => {
    proxy = await startNoWebSocketProxy(worker.url);
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await proxy?.close();
  });

  it('falls back to server-sent events with transport "auto" and shows live presence', async () => {
    const room = newChannelId();
    const [mira, tamsin] = [newUserId(), newUserId()];
    await ingest(roomCreated(room), joined(room, mira, "Mira"));
    const page = await browser.newPage();
    await page.goto(proxy.url);
    await page.evaluate((t) => window.startPresence(t), await token());
    await until(async () => (await page.textContent("#status")) === "live", "the page to go live", 15_000);
    expect(proxy.upgradesRefused).toBe(1);
    expect(proxy.forwarded.filter((path) => path.startsWith("/events"))).toHaveLength(1);
    await page.locator(`[data-channel-id="${room}"] [data-user-id="${mira}"]`).waitFor({ timeout: 5_000 });

    await ingest(joined(room, tamsin, "Tamsin"));
    await page.locator(`[data-channel-id="${room}"] [data-user-id="${tamsin}"]`).waitFor({ timeout: 5_000 });
    await ingest(left(room, mira));
    await page.locator(`[data-channel-id="${room}"] [data-user-id="${mira}"]`).waitFor({ state: "detached", timeout: 5_000 });
    await page.screenshot({ path: join(SCREENSHOTS, "sse-fallback.png") });
    expect(proxy.upgradesRefused).toBe(1); // it stayed on SSE
    await page.close();
  });
});

describe("an event stream beside a socket", () => {
  it("delivers the same events, in order, byte for byte, and after a cut exactly the missed ones", async () => {
    const ws = new WebSocket(`${worker.url.replace("http", "ws")}/ws`);
    const socketMessages: string[] = [];
    ws.on("message", (data) => socketMessages.push(String(data)));
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    ws.send(JSON.stringify({ type: "auth", token: await token() }));
    await until(() => socketMessages.some((m) => m.includes('"snapshot"')), "the socket's snapshot");

    const streamToken = await token();
    const stream = await SseReader.open(fetch, `${worker.url}/events`, streamToken);
    await stream.waitForFrames(1, "the stream's snapshot", 5_000);
    const room = newChannelId();
    const users = [newUserId(), newUserId(), newUserId()];
    await ingest(roomCreated(room), ...users.map((u) => joined(room, u)));
    await ingest(left(room, users[0]!), joined(room, users[0]!));
    const socketEvents = () => socketMessages.filter((m) => m.includes('"type":"event"'));
    await until(() => socketEvents().length === 6, "six events on the socket");
    await stream.waitForFrames(7, "six events on the stream", 5_000);
    expect(stream.frames.slice(1).map((f) => f.data)).toEqual(socketEvents());
    const ids = stream.frames.map((f) => Number(f.id));
    expect(ids.slice(1)).toEqual(ids.slice(1).map((_, i) => ids[0]! + 1 + i));

    await stream.cancel();
    const lastId = stream.frames.at(-1)!.id!;
    await ingest(left(room, users[1]!), left(room, users[2]!), roomCreated(newChannelId()));
    await until(() => socketEvents().length === 9, "three more events on the socket");
    const resumed = await SseReader.open(fetch, `${worker.url}/events`, streamToken, { "Last-Event-ID": lastId });
    await resumed.waitForFrames(3, "the three missed events", 5_000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(resumed.frames.map((f) => f.data)).toEqual(socketEvents().slice(6));
    expect(resumed.frames.map((f) => f.event)).toEqual(["voice.left", "voice.left", "room.created"]);
    await resumed.cancel();
    ws.close();
  });
});

describe("an idle event stream", () => {
  it("gets a comment heartbeat about every 20 s and still delivers once the hub has had time to hibernate", async () => {
    const stream = await SseReader.open(fetch, `${worker.url}/events`, await token());
    await stream.waitForFrames(1, "the snapshot", 5_000);
    const openedAt = Date.now();
    await until(() => stream.comments.includes("ping"), "a `: ping` heartbeat", SSE_HEARTBEAT_MS + 10_000);
    expect(Date.now() - openedAt).toBeGreaterThanOrEqual(SSE_HEARTBEAT_MS - 1_000);
    const room = newChannelId();
    await ingest(roomCreated(room));
    const frames = await stream.waitForFrames(2, "an event after the idle time", 5_000);
    expect(JSON.parse(frames[1]!.data)).toMatchObject({ event: "room.created", payload: { channelId: room } });
    await stream.cancel();
  });
});
