import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { startDiscordSimulator, type DiscordSimulator } from "../../dev/discord-sim/index.js";
import { FakeHub, HUB_SECRET } from "./support/fake-hub.js";
import { BOT_TOKEN, GUILD, until } from "./support/harness.js";

const MAIN = fileURLToPath(new URL("../src/main.ts", import.meta.url));
const TSX = fileURLToPath(new URL("../../node_modules/.bin/tsx", import.meta.url));

let sim: DiscordSimulator | undefined;
let hub: FakeHub | undefined;
afterEach(async () => {
  await hub?.stop();
  await sim?.close();
  sim = hub = undefined;
});

function runMain(env: Record<string, string>) {
  const child = spawn(TSX, [MAIN], { env: { PATH: process.env.PATH ?? "", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, exited, output: () => ({ stdout, stderr }) };
}

async function world(token = BOT_TOKEN) {
  sim = await startDiscordSimulator({ botToken: BOT_TOKEN, guildId: GUILD, heartbeatIntervalMs: 500, identifyIntervalMs: 0 });
  hub = new FakeHub();
  await hub.start();
  return {
    DISCORD_BOT_TOKEN: token,
    PRIMARY_GUILD_ID: GUILD,
    HUB_ENDPOINT: hub.endpoint,
    HUB_SECRET,
    DISCORD_API_BASE: sim.restBase,
    HEALTH_PORT: "0",
    LOG_LEVEL: "info",
  };
}

describe("the gateway-node process", () => {
  it("exits 2 with one line naming every bad variable", async () => {
    const run = runMain({ HUB_ENDPOINT: "not a url", HUB_SECRET: "short" });
    expect(await run.exited).toBe(2);
    const { stderr } = run.output();
    expect(stderr.trim().split("\n")).toHaveLength(1);
    for (const name of ["DISCORD_BOT_TOKEN", "PRIMARY_GUILD_ID", "HUB_ENDPOINT", "HUB_SECRET"]) expect(stderr).toContain(name);
    expect(stderr).not.toContain("short");
  });

  it("exits non-zero with the reason when the gateway rejects the token (close 4004), without logging it", async () => {
    const env = await world("a-wrong-token");
    const run = runMain({ ...env, DISCORD_GATEWAY_URL: sim!.gatewayUrl });
    expect(await run.exited).toBe(1);
    const { stdout } = run.output();
    expect(stdout).toContain('"code":4004');
    expect(stdout).toContain("the bot token is invalid");
    expect(stdout).not.toContain("a-wrong-token");
  });

  it("exits non-zero when Discord REST rejects the token before any gateway connection", async () => {
    const run = runMain(await world("another-wrong-token"));
    expect(await run.exited).toBe(1);
    expect(run.output().stdout).toContain("Discord REST answered 401");
  });

  it("exits non-zero on close 4014 (disallowed intents)", async () => {
    const run = runMain(await world());
    await until(() => hub!.accepted.length === 1, "the process's guild.sync", 15_000);
    await fetch(`${sim!.url}/_sim/faults`, { method: "POST", body: JSON.stringify({ action: "close", code: 4014 }) });
    expect(await run.exited).toBe(1);
    expect(run.output().stdout).toContain("disallowed intents");
  });

  it("on SIGTERM flushes, closes Discord with a resumable code and exits 0", async () => {
    const run = runMain(await world());
    await until(() => hub!.accepted.length === 1, "the process's guild.sync", 15_000);
    run.child.kill("SIGTERM");
    expect(await run.exited).toBe(0);
    const { stdout } = run.output();
    expect(stdout).toContain("outbox flushed");
    expect(stdout).not.toContain(HUB_SECRET);
    const session = sim!.state().sessions[0]!;
    expect(session.connected).toBe(false);
    expect(sim!.closes.find((c) => c.sessionId === session.id)).toMatchObject({ code: 4000, by: "client" });
    // Closed with 4000, the session is still resumable: a RESUME now is answered with RESUMED.
    const { WebSocket } = await import("ws");
    const ws = new WebSocket(`${sim!.gatewayUrl}?v=10&encoding=json`);
    const answer = await new Promise<string>((resolve) => {
      ws.on("message", (data) => {
        const payload = JSON.parse(String(data)) as { op: number; t?: string };
        if (payload.op === 10) ws.send(JSON.stringify({ op: 6, d: { token: BOT_TOKEN, session_id: session.id, seq: session.seq } }));
        else if (payload.t === "RESUMED" || payload.op === 9) resolve(payload.t ?? `op ${payload.op}`);
      });
    });
    ws.terminate();
    expect(answer).toBe("RESUMED");
  });
});
