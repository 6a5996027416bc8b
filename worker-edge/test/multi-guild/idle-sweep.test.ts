import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { SECOND_GUILD_ID, TEST_GUILD_ID } from "../support/bindings.js";
import { DiscordFake } from "../support/discord-fake.js";
import { createRoom, newUserId, postInternal, TestSocket } from "../support/edge.js";
import { joined, left } from "../support/events.js";
import { mintToken } from "../support/tokens.js";

// This project ends rooms the service created after 1 s empty (ROOM_IDLE_TTL_SECONDS=1).
let discord: DiscordFake;
beforeEach(() => {
  discord = new DiscordFake();
  discord.install();
});
afterEach(() => vi.restoreAllMocks());

const token = () => mintToken({ guilds: [TEST_GUILD_ID, SECOND_GUILD_ID], sub: newUserId() });
const deletes = () => discord.calls.filter((call) => call.method === "DELETE");

/** Holds Discord's replies until `release()`, so a test can act while the hub awaits Discord. */
function holdDiscord(): () => void {
  let release!: () => void;
  discord.hold = new Promise<void>((resolve) => (release = resolve));
  return () => {
    discord.hold = undefined;
    release();
  };
}

async function until(check: () => boolean, what: string, timeoutMs = 6_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe("the idle-room sweep", () => {
  it("does not delete a room someone joined while it was deleting another", async () => {
    const first = await (await createRoom(await token(), { name: "idle A" })).json<{ channelId: string }>();
    const second = await (await createRoom(await token(), { name: "idle B" })).json<{ channelId: string }>();
    // Both rooms empty out in one batch, so one alarm finds both idle.
    const [a, b] = [newUserId(), newUserId()];
    await postInternal({ events: [joined(first.channelId, a), joined(second.channelId, b)] });
    const release = holdDiscord();
    await postInternal({ events: [left(first.channelId, a), left(second.channelId, b)] });
    await until(() => deletes().length === 1, "the sweep's first Discord delete");
    expect(deletes()[0]!.path).toBe(`/channels/${first.channelId}`);

    // Someone joins B while the sweep awaits Discord for A.
    await postInternal({ events: [joined(second.channelId, newUserId())] });
    release();

    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(deletes().map((call) => call.path)).toEqual([`/channels/${first.channelId}`]);
    expect(discord.channels.has(second.channelId)).toBe(true);
  });

  it("still enforces the auth timeout of a socket accepted while the sweep awaited Discord", async () => {
    // A live socket whose token expires late: the deadline the old code restored after the sweep.
    const watcher = await TestSocket.open();
    await watcher.auth(await token());
    await createRoom(await token(), { name: "idle C" });
    const release = holdDiscord();
    await until(() => deletes().length === 1, "the sweep's Discord delete");

    const silent = await TestSocket.open();
    await new Promise((resolve) => setTimeout(resolve, 200));
    release();

    expect((await silent.waitForClose(8_000)).code).toBe(4408);
    expect(watcher.closed).toBeUndefined();
  });
});
