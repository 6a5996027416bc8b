import { execFile } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { dirname, extname, join, normalize } from "node:path";
import { promisify } from "node:util";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AddressInfo } from "node:net";
import { DEMO_USERS, SEED_CHANNELS } from "../dev/stack/seed.js";
import { launchChromium } from "./support/browser.js";
import { ROOT } from "./support/paths.js";
import { TcpProxy } from "./support/tcp-proxy.js";
import { startTestStack, type TestStack } from "./support/test-stack.js";

/**
 * The example app (examples/react-lobby) as a new user builds it from the SDK's guide: the packed SDK tarball
 * installed from a scratch copy (never the workspace source) with the example's own dependencies from the npm
 * registry, type-checked in strict mode, built with Vite, served, and driven in Chromium against the local stack:
 * sign-in through the local identity provider at the app's own redirect URI, live rooms with their members, a
 * room created, a connection cut and the recovery, and the CORS error a page on an origin the service does not
 * allow sees.
 */

const SHOWS_WITHIN_MS = 15_000;
const [MIRA, TAMSIN] = DEMO_USERS;
const POD_A = SEED_CHANNELS[0]!;
const run = promisify(execFile);

let scratch: string;
let stack: TestStack | undefined;
let proxy: TcpProxy | undefined;
let server: Server | undefined;
let browser: Browser | undefined;
let appOrigin: string;
const timings: Record<string, number> = {};

/** Runs a command with the project's Node first on PATH (npm, tsc and vite all run on it). */
async function step(name: string, command: string, args: string[], cwd: string, env: Record<string, string> = {}): Promise<void> {
  const started = Date.now();
  const path = `${dirname(process.execPath)}:${process.env.PATH ?? ""}`;
  try {
    await run(command, args, { cwd, env: { ...process.env, PATH: path, npm_config_update_notifier: "false", ...env }, maxBuffer: 16 * 1024 * 1024 });
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(`${name} failed:\n${stdout ?? ""}\n${stderr ?? ""}`);
  }
  timings[name] = Date.now() - started;
}

/** Serves the built app's files; any other path gets index.html (the app is its own redirect target, with a query). */
function serve(dist: string): Promise<Server> {
  const types: Record<string, string> = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml" };
  const http = createServer((request, response) => {
    const path = normalize(new URL(request.url ?? "/", "http://app").pathname).replace(/^(\.\.[/\\])+/, "");
    let file = join(dist, path === "/" ? "index.html" : path);
    let body: Buffer;
    try {
      body = readFileSync(file);
    } catch {
      file = join(dist, "index.html");
      body = readFileSync(file);
    }
    response.writeHead(200, { "Content-Type": types[extname(file)] ?? "application/octet-stream" });
    response.end(body);
  });
  return new Promise((resolve) => http.listen(0, "127.0.0.1", () => resolve(http)));
}

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), "scr-example-"));
  const dist = join(scratch, "react-lobby", "dist");
  // The app's server first (port 0), so its origin is known to the service's WEB_ORIGIN; it serves the build once made.
  server = await serve(dist);
  appOrigin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  // The service allows the app's 127.0.0.1 origin only (WEB_ORIGIN), not the same app at localhost.
  const started = Date.now();
  const stackReady = startTestStack({ vars: { WEB_ORIGIN: appOrigin } }).then((value) => {
    timings["local stack"] = Date.now() - started;
    return value;
  });
  const browserReady = launchChromium();

  // The SDK as published: npm pack (its prepack builds it), then the example installed from a copy, on its own.
  const packed = JSON.parse((await run("npm", ["pack", "--json", "--pack-destination", scratch], { cwd: join(ROOT, "client") })).stdout.replace(/^[^[]*/, "")) as Array<{ filename: string }>;
  const app = join(scratch, "react-lobby");
  cpSync(join(ROOT, "examples/react-lobby"), app, { recursive: true, filter: (source) => !/[/\\](node_modules|dist)$/.test(source) });
  const manifest = JSON.parse(readFileSync(join(app, "package.json"), "utf8")) as { dependencies: Record<string, string> };
  manifest.dependencies["@spell-coven/realtime-client"] = `file:${join(scratch, packed[0]!.filename)}`;
  writeFileSync(join(app, "package.json"), JSON.stringify(manifest, null, 2));
  await step("npm install", "npm", ["install", "--no-audit", "--no-fund", "--prefer-offline"], app);
  await step("tsc --noEmit", process.execPath, ["node_modules/typescript/bin/tsc", "--noEmit"], app);

  [stack, browser] = await Promise.all([stackReady, browserReady]);
  // Everything the page talks to on the service goes through the proxy, so the test can cut it.
  proxy = await TcpProxy.start({ upstreamPort: Number(new URL(stack.urls.worker).port) });
  await step("vite build", process.execPath, ["node_modules/vite/bin/vite.js", "build"], app, {
    VITE_REALTIME_URL: `http://127.0.0.1:${proxy.port}`,
    VITE_IDP_URL: stack.urls.idp,
  });
  console.log(`example app: ${JSON.stringify(timings)}`);
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await proxy?.stop();
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  await stack?.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

const room = (page: Page, channelId: string) => page.locator(`[data-testid=room][data-channel-id="${channelId}"]`);
const status = (page: Page) => page.textContent("[data-testid=status]");

/** Opens the app at `origin` in a fresh browser context and signs in as Alice on the identity provider's page. */
async function signedIn(origin: string): Promise<Page> {
  const page = await (await browser!.newContext()).newPage();
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(error.message));
  page.on("console", (message) => message.type() === "error" && errors.push(message.text()));
  await page.goto(`${origin}/`);
  await page.click("[data-testid=sign-in]");
  await page.locator("[data-testid=login-alice]").click({ timeout: SHOWS_WITHIN_MS });
  await page.waitForURL(`${origin}/`, { timeout: SHOWS_WITHIN_MS });
  await page
    .locator("[data-testid=status]")
    .waitFor({ timeout: SHOWS_WITHIN_MS })
    .catch(async () => {
      throw new Error(`the app shows no connection status after sign-in; it shows: ${await page.locator("body").innerText()}\npage errors: ${errors.join("; ")}`);
    });
  return page;
}

describe("the example React app, built from the packed SDK, in Chromium", () => {
  it("signs in at its own redirect URI, shows live rooms with members, creates a room and recovers from a cut", async () => {
    stack!.sim.setVoiceState(MIRA!.id, POD_A.id);
    const page = await signedIn(appOrigin);
    const mira = room(page, POD_A.id).locator(`[data-user-id="${MIRA!.id}"]`);
    await mira.waitFor({ timeout: SHOWS_WITHIN_MS }); // the hub has her: she is in the next page load's snapshot
    await page.reload();
    await expect.poll(() => status(page), { timeout: SHOWS_WITHIN_MS }).toBe("live");
    // Live means the picture is here: the members are shown with the first live render.
    expect(await mira.textContent()).toBe(MIRA!.username);
    expect(await page.locator("[data-testid=toast]").count(), "nobody already present is announced as joining").toBe(0);

    await page.fill("[data-testid=create-name]", "Friday pod");
    await page.click("[data-testid=create-submit]");
    const created = page.locator("[data-testid=room]", { has: page.locator(".room-name", { hasText: /^Friday pod$/ }) });
    await created.waitFor({ timeout: SHOWS_WITHIN_MS });
    const createdId = (await created.getAttribute("data-channel-id"))!;

    proxy!.hold(); // the reconnect waits, so the join below is surely missed by the cut connection
    expect(proxy!.cut()).toBeGreaterThan(0);
    await expect.poll(() => status(page), { timeout: SHOWS_WITHIN_MS }).toBe("resuming");
    stack!.sim.setVoiceState(TAMSIN!.id, createdId);
    proxy!.release();
    await expect.poll(() => status(page), { timeout: SHOWS_WITHIN_MS }).toBe("live");
    await room(page, createdId).locator(`[data-user-id="${TAMSIN!.id}"]`).waitFor({ timeout: SHOWS_WITHIN_MS });
    expect(await page.locator("[data-testid=toast]").allTextContents()).toEqual([`${TAMSIN!.username} joined`]);
  });

  it("shows who has a camera on or streams: in the snapshot a page loads, and live", async () => {
    stack!.sim.setVoiceState(MIRA!.id, POD_A.id, { selfVideo: true });
    const page = await signedIn(appOrigin);
    const mira = room(page, POD_A.id).locator(`[data-user-id="${MIRA!.id}"]`);
    await mira.locator("[data-media=camera]").waitFor({ timeout: SHOWS_WITHIN_MS });
    stack!.sim.setVoiceState(MIRA!.id, POD_A.id, { selfVideo: false, selfStream: true });
    await mira.locator("[data-media=stream]").waitFor({ timeout: SHOWS_WITHIN_MS });
    expect(await mira.locator("[data-media]").count(), "the camera is off again").toBe(1);
    await page.reload();
    await expect.poll(() => status(page), { timeout: SHOWS_WITHIN_MS }).toBe("live");
    // Live means the picture is here, the members' media state with it.
    expect(await mira.locator("[data-media]").evaluateAll((nodes) => nodes.map((node) => node.getAttribute("aria-label")))).toEqual(["streaming"]);
    expect(await mira.locator(".member-name").textContent()).toBe(MIRA!.username);
    stack!.sim.setVoiceState(MIRA!.id, POD_A.id, { selfStream: false });
  });

  it("on an origin the service does not allow, says so: the REST error names the origin and WEB_ORIGIN", async () => {
    const elsewhere = appOrigin.replace("127.0.0.1", "localhost");
    const page = await signedIn(elsewhere);
    await expect.poll(() => status(page), { timeout: SHOWS_WITHIN_MS }).toBe("live"); // presence is not CORS-bound
    await page.fill("[data-testid=create-name]", "Blocked pod");
    await page.click("[data-testid=create-submit]");
    const error = await page.locator("[data-testid=create-error]").textContent({ timeout: SHOWS_WITHIN_MS });
    expect(error).toContain(`blocked its response to ${elsewhere} (CORS): add ${elsewhere} to the service's WEB_ORIGIN`);
  });
});
