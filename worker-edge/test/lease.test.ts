import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { channelOf } from "../../protocol/index.js";
import { TEST_GUILD_ID } from "./support/bindings.js";
import { edgeFetch, newChannelId, newUserId, postInternal, postLease, TestSocket } from "./support/edge.js";
import { joined, roomCreated, sync } from "./support/events.js";
import { mintToken } from "./support/tokens.js";

/** The hub's lease TTL, as documented: a holder's lease lapses this long after its last batch or heartbeat. */
const TTL_MS = 30_000;

// The hub's clock is the test's: moving Date moves the time the hub decides expiry by. The guild's storage outlives
// a test, so each test starts well after every lease of the one before, in a past that real time never reaches.
let clock = Date.now() - 24 * 60 * 60_000;
beforeEach(() => {
  clock += 10 * 60_000;
  vi.useFakeTimers({ toFake: ["Date"], now: clock });
});
afterEach(() => void vi.useRealTimers());
const advance = (ms: number) => {
  clock = Date.now() + ms;
  vi.setSystemTime(clock);
};

/** What gateway-node sends: its instance, its term, and its start time for edges of the previous release. */
const gateway = (instance: string, term = 0, extra: Record<string, unknown> = {}) => ({ instance, term, epoch: Date.now(), ...extra });

async function write(events: unknown[], sender: unknown, nowMs?: number): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await postInternal({ events, gateway: sender }, { nowMs });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function heartbeat(sender: unknown, release = false): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await postLease({ guildId: TEST_GUILD_ID, gateway: sender, ...(release ? { release } : {}) });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** A holder with term 1 that has begun it with a sync, as every new term must. */
async function holding(instance: string): Promise<number> {
  const first = await write([sync([], [])], gateway(instance));
  expect(first.status, JSON.stringify(first.body)).toBe(200);
  const lease = first.body.lease as { term: number } | undefined;
  expect(lease, "the hub grants a lease").toBeDefined();
  return lease!.term;
}

async function watcher(): Promise<TestSocket> {
  const socket = await TestSocket.open();
  await socket.auth(await mintToken({ sub: newUserId() }));
  return socket;
}

describe("the gateway lease the hub grants", () => {
  it("grants a free guild to the first gateway, renews it with each batch and refuses another gateway 409 lease_held with the time left", async () => {
    const term = await holding("old-host");
    advance(20_000);
    const renewed = await write([roomCreated(newChannelId())], gateway("old-host", term));
    expect(renewed).toMatchObject({ status: 200, body: { lease: { term, expiresInMs: TTL_MS } } });

    advance(5_000);
    const rival = await write([roomCreated(newChannelId())], gateway("new-host"));
    expect(rival.status).toBe(409);
    expect(rival.body).toMatchObject({ error: "lease_held", retryAfterMs: TTL_MS - 5_000 });
  });

  it("lets a successor whose clock is 30 s behind take over once the holder stops: at once after a release", async () => {
    const term = await holding("old-host");
    // Under a lease decided by gateways' start times, this successor would be refused for good.
    const behind = Date.now() - 30_000;
    const standby = await write([roomCreated(newChannelId())], gateway("new-host", 0, { epoch: behind }), behind);
    expect(standby.body).toMatchObject({ error: "lease_held" });

    expect(await heartbeat(gateway("old-host", term), true)).toEqual({ status: 200, body: { ok: true } });
    const takeover = await write([sync([], [])], gateway("new-host", 0, { epoch: behind }), behind);
    expect(takeover).toMatchObject({ status: 200, body: { lease: { term: term + 1, expiresInMs: TTL_MS } } });
  });

  it("lets a successor take over a dead holder's guild once its lease expires by the hub's clock, and not before", async () => {
    const term = await holding("killed-host");
    advance(TTL_MS - 1);
    expect((await heartbeat(gateway("new-host"))).body).toMatchObject({ error: "lease_held", retryAfterMs: 1 });
    advance(1);
    // Taken by a heartbeat, the new term has not begun with a sync: the answer says one is owed.
    expect(await heartbeat(gateway("new-host"))).toEqual({ status: 200, body: { ok: true, lease: { term: term + 1, expiresInMs: TTL_MS, syncRequired: true } } });
  });

  it("begins a new term with a guild.sync: the new holder's other writes are refused 409 sync_required until it sends one", async () => {
    const oldTerm = await holding("old-host");
    advance(TTL_MS);
    const socket = await watcher();
    const room = newChannelId();
    const early = await write([joined(room, newUserId())], gateway("new-host"));
    const term = oldTerm + 1;
    expect(early).toMatchObject({ status: 409, body: { error: "sync_required", retryAfterMs: 0, lease: { term } } });

    const synced = await write([sync([room], []), roomCreated(newChannelId())], gateway("new-host", term));
    expect(synced).toMatchObject({ status: 200, body: { lease: { term } } });
    expect((await write([joined(room, newUserId())], gateway("new-host", term))).status).toBe(200);
    await socket.waitForEvents(3, "the sync's room, the created room and the join");
    expect(socket.events().map((e) => e.event)).toEqual(["room.created", "room.created", "voice.joined"]);
  });

  it("fences a holder that lost its lease: its late batch naming the old term is refused lease_lost and nothing of it is applied", async () => {
    const oldTerm = await holding("slow-host");
    advance(TTL_MS); // its renewals stopped reaching the hub
    await holding("new-host");
    const socket = await watcher();

    const late = await write([roomCreated(newChannelId())], gateway("slow-host", oldTerm));
    expect(late).toMatchObject({ status: 409, body: { error: "lease_lost", retryAfterMs: TTL_MS } });
    advance(TTL_MS); // even once the new holder's lease lapses, the old term stays fenced
    expect((await write([roomCreated(newChannelId())], gateway("slow-host", oldTerm))).body).toMatchObject({ error: "lease_lost", retryAfterMs: 0 });
    expect((await heartbeat(gateway("slow-host", oldTerm))).body).toMatchObject({ error: "lease_lost" });

    const marker = newChannelId();
    expect((await postInternal({ events: [roomCreated(marker)] })).status).toBe(200); // the guild is free: a tool may write
    await socket.waitForEvents(1, "the marker");
    expect(socket.events().map((e) => channelOf(e))).toEqual([marker]);
  });

  it("keeps an idle holder's lease with heartbeats, and a released one is free at once", async () => {
    const term = await holding("idle-host");
    for (let i = 0; i < 6; i++) {
      advance(TTL_MS / 3);
      expect(await heartbeat(gateway("idle-host", term))).toEqual({ status: 200, body: { ok: true, lease: { term, expiresInMs: TTL_MS } } });
      expect((await heartbeat(gateway("standby-host"))).body).toMatchObject({ error: "lease_held" });
    }
    // Only the holder can release it.
    expect((await heartbeat(gateway("standby-host", 0), true)).body).toMatchObject({ error: "lease_held" });
    expect((await heartbeat(gateway("idle-host", term), true)).status).toBe(200);
    expect((await heartbeat(gateway("standby-host"))).body).toEqual({ ok: true, lease: { term: term + 1, expiresInMs: TTL_MS, syncRequired: true } });
  });

  it("keeps the term of the same instance restarting within the TTL: no sync is owed", async () => {
    const term = await holding("same-host");
    advance(5_000);
    const restarted = await write([roomCreated(newChannelId())], gateway("same-host", 0));
    expect(restarted).toMatchObject({ status: 200, body: { lease: { term } } });
  });

  it("serves a gateway of the previous release ({epoch, instance}), fenced by the lease but owing no sync it could not send", async () => {
    const legacy = { epoch: Date.now(), instance: "previous-release" };
    const first = await write([roomCreated(newChannelId())], legacy);
    expect(first).toMatchObject({ status: 200, body: { lease: { expiresInMs: TTL_MS } } });
    expect((await write([roomCreated(newChannelId())], gateway("new-host"))).body).toMatchObject({ error: "lease_held" });
    advance(TTL_MS); // it never heartbeats: idle for a TTL, its lease lapses
    expect((await write([sync([], [])], gateway("new-host"))).status).toBe(200);
    expect((await write([roomCreated(newChannelId())], { ...legacy, epoch: Date.now() })).body).toMatchObject({ error: "lease_held" });
  });

  it("refuses a write naming no gateway while a gateway holds the guild", async () => {
    await holding("host");
    const unleased = await postInternal({ events: [roomCreated(newChannelId())] });
    expect(unleased.status).toBe(409);
    expect(await unleased.json()).toMatchObject({ error: "lease_held" });
  });

  it("refuses a batch naming a gateway that carries two guilds' events: the lease and its answer are per guild", async () => {
    const foreign = { id: "x:lease", event: "room.created", payload: { guildId: "999999999999999999", channelId: newChannelId(), name: "Elsewhere", userLimit: 2 } };
    const mixed = await write([sync([], []), foreign], gateway("host"));
    expect(mixed).toMatchObject({ status: 400, body: { error: "invalid_input" } });
  });

  it("validates the lease request and checks its signature", async () => {
    expect((await postLease({ guildId: TEST_GUILD_ID, gateway: { instance: "" , term: 0 } })).status).toBe(400);
    expect((await postLease({ guildId: TEST_GUILD_ID, gateway: { instance: "host" } })).status).toBe(400); // a term is required
    const stale = await postLease({ guildId: TEST_GUILD_ID, gateway: gateway("host") }, { nowMs: Date.now() - 600_000 });
    expect(stale.status).toBe(401);
    const unsigned = await edgeFetch("/internal/lease", { method: "POST", body: JSON.stringify({ guildId: TEST_GUILD_ID, gateway: gateway("host") }) });
    expect(unsigned.status).toBe(401);
    expect(await postLease({ guildId: "999999999999999999", gateway: gateway("host") }).then((r) => r.json())).toEqual({ ok: true });
  });
});
