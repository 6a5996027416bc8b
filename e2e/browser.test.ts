import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEMO_USERS, SEED_CHANNELS } from "../dev/stack/seed.js";
import { launchChromium, SCREENSHOTS } from "./support/browser.js";
import { startTestStack, type TestStack } from "./support/test-stack.js";

const SHOWS_WITHIN_MS = 5_000;
const [MIRA, TAMSIN] = DEMO_USERS;
const POD_A = SEED_CHANNELS[0]!;
const DRAFT = SEED_CHANNELS[1]!;

let stack: TestStack;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  stack = await startTestStack();
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
});

afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

const room = (channelId: string) => page.locator(`[data-testid=room][data-channel-id="${channelId}"]`);
const memberIn = (channelId: string, userId: string) => room(channelId).locator(`[data-user-id="${userId}"]`);
const shot = (name: string) => page.screenshot({ path: join(SCREENSHOTS, `${name}.png`) });
const roomNames = () => page.locator("[data-testid=room] .room-name").allTextContents();
const endButtons = () => page.locator("[data-testid=room]").evaluateAll((rooms) =>
  rooms.filter((r) => r.querySelector("[data-testid^=end-]")).map((r) => r.querySelector(".room-name")!.textContent),
);
/** The page fits a phone held upright: nothing wider than the viewport, so no sideways scrolling. */
async function fitsWidth(width: number): Promise<number> {
  await page.setViewportSize({ width, height: 844 });
  return page.evaluate(() => document.documentElement.scrollWidth);
}

async function createRoom(name: string, limit = "2"): Promise<string> {
  await page.fill("[data-testid=create-name]", name);
  await page.fill("[data-testid=create-limit]", limit);
  await page.click("[data-testid=create-submit]");
  const item = page.locator("[data-testid=room]", { has: page.locator(".room-name", { hasText: new RegExp(`^${name}$`) }) });
  await item.waitFor({ timeout: SHOWS_WITHIN_MS });
  return (await item.getAttribute("data-channel-id"))!;
}

/** Signs out (of the page and of the identity provider), then in as someone else, choosing on the IdP's page. */
async function switchUser(login: "alice" | "bob" | "admin", name: string): Promise<void> {
  await page.click("#sign-out");
  await page.locator("[data-testid=sign-in]").waitFor({ timeout: SHOWS_WITHIN_MS });
  expect(await page.textContent("[data-testid=status]")).toBe("signed out");
  await page.click("[data-testid=sign-in]");
  await page.locator(`[data-testid=login-${login}]`).click({ timeout: SHOWS_WITHIN_MS });
  await page.waitForURL(stack.urls.demo);
  await expect.poll(() => page.textContent("[data-testid=status]"), { timeout: 10_000 }).toBe("live");
  expect(await page.textContent("[data-testid=user]")).toBe(name);
}

async function simulate(userId: string, channelId: string | null): Promise<void> {
  await page.selectOption("[data-testid=sim-user]", userId);
  if (channelId) {
    await page.selectOption("[data-testid=sim-room]", channelId);
    await page.click("[data-testid=sim-join]");
  } else {
    await page.click("[data-testid=sim-leave]");
  }
}

describe("the demo page in Chromium", () => {
  it("says \"signed out\" in a neutral colour before sign-in, and fits a 390 px wide screen", async () => {
    await page.goto(stack.urls.demo);
    const status = page.locator("[data-testid=status]");
    expect(await status.textContent()).toBe("signed out");
    const colour = (selector: string) => page.$eval(selector, (node) => getComputedStyle(node).color);
    await page.$eval("[data-testid=error]", (node) => node.classList.add("probe")); // the page's red
    expect(await colour("[data-testid=status]")).not.toBe(await colour("[data-testid=error]"));
    expect(await fitsWidth(390)).toBeLessThanOrEqual(390);
    await page.setViewportSize({ width: 1280, height: 860 });
  });

  it("signs in through the PKCE flow and goes live", async () => {
    await page.goto(stack.urls.demo);
    await page.click("[data-testid=sign-in]");
    await page.click("[data-testid=login-alice]");
    await page.waitForURL(stack.urls.demo);
    await expect.poll(() => page.textContent("[data-testid=status]"), { timeout: 10_000 }).toBe("live");
    expect(await page.textContent("[data-testid=user]")).toBe("Alice");
    await room(POD_A.id).waitFor({ timeout: SHOWS_WITHIN_MS });
  });

  let created = "";
  it("labels the create-room fields", async () => {
    expect(await page.getByLabel("Room name").getAttribute("data-testid", { timeout: 2_000 })).toBe("create-name");
    expect(await page.getByLabel("User limit").getAttribute("data-testid", { timeout: 2_000 })).toBe("create-limit");
  });

  it("creates a room, which appears for everyone watching", async () => {
    await page.fill("[data-testid=create-name]", "E2E Pod");
    await page.fill("[data-testid=create-limit]", "3");
    await page.click("[data-testid=create-submit]");
    const item = page.locator("[data-testid=room]", { hasText: "E2E Pod" });
    await item.waitFor({ timeout: SHOWS_WITHIN_MS });
    created = (await item.getAttribute("data-channel-id"))!;
    expect(stack.sim.state().channels.map((c) => c.id)).toContain(created);
  });

  it("shows a simulated player joining, moving, muting (a voice.media event) and leaving", async () => {
    await simulate(MIRA!.id, created);
    await memberIn(created, MIRA!.id).waitFor({ timeout: SHOWS_WITHIN_MS });
    expect(await memberIn(created, MIRA!.id).textContent()).toBe("Mira");
    await shot("joined");

    await simulate(MIRA!.id, POD_A.id);
    await memberIn(POD_A.id, MIRA!.id).waitFor({ timeout: SHOWS_WITHIN_MS });
    await memberIn(created, MIRA!.id).waitFor({ state: "detached", timeout: SHOWS_WITHIN_MS });

    await page.click("[data-testid=sim-mute]");
    await memberIn(POD_A.id, MIRA!.id).locator("[data-media=muted]").waitFor({ timeout: SHOWS_WITHIN_MS });
    await page.locator("[data-testid=event]", { hasText: "voice.media" }).first().waitFor({ timeout: SHOWS_WITHIN_MS });

    await simulate(MIRA!.id, null);
    await memberIn(POD_A.id, MIRA!.id).waitFor({ state: "detached", timeout: SHOWS_WITHIN_MS });
  });

  it("converges to Discord's truth without a reload after gateway-node is killed and restarted", async () => {
    await stack.gateway()!.kill();
    stack.sim.setVoiceState(TAMSIN!.id, DRAFT.id); // while no gateway is running
    stack.sim.setVoiceState(MIRA!.id, created);
    stack.startGateway();
    await memberIn(DRAFT.id, TAMSIN!.id).waitFor({ timeout: 30_000 });
    await memberIn(created, MIRA!.id).waitFor({ timeout: SHOWS_WITHIN_MS });
    await shot("demo-page");
    const shown = await page.locator("[data-testid=room]").evaluateAll((rooms) =>
      rooms.flatMap((r) => [...r.querySelectorAll("[data-user-id]")].map((m) => `${m.getAttribute("data-user-id")}@${r.getAttribute("data-channel-id")}`)).sort(),
    );
    expect(shown).toEqual(stack.sim.state().voiceStates.map((v) => `${v.userId}@${v.channelId}`).sort());
  });

  it("toggles a simulated player's camera, stream, mute and deafen in Discord from the panel", async () => {
    await page.selectOption("[data-testid=sim-user]", MIRA!.id);
    const flags = () => {
      const state = stack.sim.state().voiceStates.find((v) => v.userId === MIRA!.id)!;
      return { selfVideo: state.selfVideo, selfStream: state.selfStream, selfMute: state.selfMute, selfDeaf: state.selfDeaf };
    };
    const before = flags();
    const flipped = (...names: Array<keyof typeof before>) => ({ ...before, ...Object.fromEntries(names.map((name) => [name, !before[name]])) });
    for (const button of ["sim-camera", "sim-stream", "sim-mute", "sim-deafen"]) await page.click(`[data-testid=${button}]`);
    await expect.poll(flags).toEqual(flipped("selfVideo", "selfStream", "selfMute", "selfDeaf"));
    await page.click("[data-testid=sim-camera]");
    await page.click("[data-testid=sim-deafen]");
    await expect.poll(flags).toEqual(flipped("selfStream", "selfMute"));
    for (const button of ["sim-stream", "sim-mute"]) await page.click(`[data-testid=${button}]`);
    await expect.poll(flags).toEqual(before);
    expect(await page.isHidden("[data-testid=error]")).toBe(true);
  });

  it("shows on the member a camera turned on in the panel, a stream, and a moderator's mute and deafen, live", async () => {
    const mira = memberIn(created, MIRA!.id);
    const badges = () => mira.locator("[data-media]").evaluateAll((nodes) => nodes.map((node) => `${node.getAttribute("data-media")}:${node.getAttribute("title")}`));
    await page.selectOption("[data-testid=sim-user]", MIRA!.id);
    await page.click("[data-testid=sim-camera]");
    await mira.locator("[data-media=camera]").waitFor({ timeout: SHOWS_WITHIN_MS });
    stack.sim.setVoiceState(MIRA!.id, created, { selfStream: true, mute: true, deaf: true });
    await expect.poll(badges, { timeout: SHOWS_WITHIN_MS }).toEqual([
      "camera:camera on",
      "stream:streaming",
      "muted:muted by a moderator",
      "deafened:deafened by a moderator",
    ]);
    await shot("media");
    await page.click("[data-testid=sim-camera]");
    stack.sim.setVoiceState(MIRA!.id, created, { selfStream: false, mute: false, deaf: false });
    await expect.poll(badges, { timeout: SHOWS_WITHIN_MS }).toEqual([]);
    expect(await mira.locator(".member-name").textContent()).toBe("Mira");
  });

  it("says when Discord reports an outage in the guild, and clears it when the guild is back", async () => {
    const notice = page.locator("[data-testid=guild-status]");
    expect(await notice.isHidden()).toBe(true);
    stack.sim.guildOutage();
    await expect.poll(() => notice.getAttribute("data-status"), { timeout: SHOWS_WITHIN_MS }).toBe("unavailable");
    expect(await notice.isVisible()).toBe(true);
    expect(await room(POD_A.id).count(), "the rooms stay, possibly stale").toBe(1);
    stack.sim.restoreGuild();
    await notice.waitFor({ state: "hidden", timeout: SHOWS_WITHIN_MS });
  });

  it("sorts rooms naturally: Burst 2 before Burst 10", async () => {
    await createRoom("Burst 10");
    await createRoom("Burst 2");
    const names = await roomNames();
    expect(names.indexOf("Burst 2")).toBeLessThan(names.indexOf("Burst 10"));
    const simRooms = await page.locator("[data-testid=sim-room] option").allTextContents();
    expect(simRooms.indexOf("Burst 2")).toBeLessThan(simRooms.indexOf("Burst 10"));
  });

  it("offers End only on the rooms Alice created, from what the hub says, not what this browser remembers", async () => {
    expect((await endButtons()).sort()).toEqual(["Burst 10", "Burst 2", "E2E Pod"]);
    await page.evaluate(() => localStorage.clear());
    await page.reload();
    await expect.poll(() => page.textContent("[data-testid=status]"), { timeout: 10_000 }).toBe("live");
    await room(created).waitFor({ timeout: SHOWS_WITHIN_MS });
    expect((await endButtons()).sort()).toEqual(["Burst 10", "Burst 2", "E2E Pod"]);
  });

  it("fits a 390 px wide screen when signed in, with rooms and events", async () => {
    expect(await fitsWidth(390)).toBeLessThanOrEqual(390);
    await shot("demo-page-390");
    await page.setViewportSize({ width: 1280, height: 860 });
  });

  it("clears an error on the next action", async () => {
    await page.selectOption("[data-testid=sim-user]", DEMO_USERS[3]!.id); // Lin is in no room
    await page.click("[data-testid=sim-mute]");
    await page.locator("[data-testid=error]", { hasText: "not in a room" }).waitFor({ timeout: SHOWS_WITHIN_MS });
    await page.selectOption("[data-testid=sim-user]", MIRA!.id);
    expect(await page.isHidden("[data-testid=error]")).toBe(true);
  });

  it("keeps a name typed while the previous create was still in flight", async () => {
    // The room's event often arrives before the create's response: the next name may be typed meanwhile.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    await page.route("**/create-room", async (route) => {
      const response = await route.fetch();
      await held;
      await route.fulfill({ response });
    });
    try {
      await page.fill("[data-testid=create-name]", "Late reply");
      await page.click("[data-testid=create-submit]");
      await page.locator("[data-testid=room]", { has: page.locator(".room-name", { hasText: /^Late reply$/ }) }).waitFor({ timeout: SHOWS_WITHIN_MS });
      await page.fill("[data-testid=create-name]", "Next one");
      const answered = page.waitForResponse("**/create-room");
      release();
      await answered;
      await page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 100))); // the page's handler runs
      expect(await page.inputValue("[data-testid=create-name]")).toBe("Next one");
    } finally {
      release();
      await page.unroute("**/create-room");
      await page.fill("[data-testid=create-name]", "");
    }
  });

  it("ends the room", async () => {
    await page.click(`[data-testid="end-${created}"]`);
    await room(created).waitFor({ state: "detached", timeout: SHOWS_WITHIN_MS });
    expect(stack.sim.state().channels.map((c) => c.id)).not.toContain(created);
    expect(await page.isHidden("[data-testid=error]")).toBe(true);
  });

  let bobs = "";
  it("signs out of the identity provider too, so Bob can sign in next", async () => {
    await switchUser("bob", "Bob");
    await room(POD_A.id).waitFor({ timeout: SHOWS_WITHIN_MS });
  });

  it("offers Bob End on his own room only, and Admin End on anyone's", async () => {
    bobs = await createRoom("Bob's table");
    expect(await endButtons()).toEqual(["Bob's table"]);
    await switchUser("admin", "Admin");
    expect((await endButtons()).sort()).toEqual((await roomNames()).sort());
    await page.click(`[data-testid="end-${bobs}"]`);
    await room(bobs).waitFor({ state: "detached", timeout: SHOWS_WITHIN_MS });
    expect(await page.isHidden("[data-testid=error]")).toBe(true);
  });

  it("says when the bot is not in the guild: no rooms, and the notice; all back when it returns", async () => {
    stack.sim.removeBot();
    const notice = page.locator("[data-testid=guild-status]");
    await expect.poll(() => notice.getAttribute("data-status"), { timeout: SHOWS_WITHIN_MS }).toBe("absent");
    expect(await page.locator("[data-testid=room]").count()).toBe(0);
    stack.sim.restoreGuild();
    await notice.waitFor({ state: "hidden", timeout: 30_000 });
    await room(POD_A.id).waitFor({ timeout: SHOWS_WITHIN_MS });
  });
});
