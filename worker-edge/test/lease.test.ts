import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { channelOf, hubRequestHeaders } from "../../protocol/index.js";
import { TEST_GUILD_ID, TEST_HUB_SECRET } from "./support/bindings.js";
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

/**
 * A signed request as someone on its path captured it (headers and body, no HUB_SECRET): `replay` sends those
 * very bytes again, as often as the signature's timestamp window allows.
 */
async function captured(path: "/internal/events" | "/internal/lease", body: unknown): Promise<{ replay: () => Promise<{ status: number; body: Record<string, unknown> }> }> {
  const text = JSON.stringify(body);
  const headers = await hubRequestHeaders(TEST_HUB_SECRET, text);
  return {
    replay: async () => {
      const response = await edgeFetch(path, { method: "POST", headers, body: text });
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    },
  };
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

  it("lets a successor take over one TTL after a dead holder's last heartbeat, however often its captured requests are replayed", async () => {
    const term = await holding("killed-host");
    advance(10_000);
    const heartbeatRequest = await captured("/internal/lease", { guildId: TEST_GUILD_ID, gateway: gateway("killed-host", term) });
    const batchRequest = await captured("/internal/events", { events: [roomCreated(newChannelId())], gateway: gateway("killed-host", term) });
    expect((await heartbeatRequest.replay()).status).toBe(200); // the holder's own last heartbeat
    expect((await batchRequest.replay()).status).toBe(200); // and its last batch; then it dies
    // Someone who captured them replays both every 10 s, well inside the 300 s signature window.
    for (let i = 0; i < 3; i++) {
      advance(10_000);
      await heartbeatRequest.replay();
      await batchRequest.replay();
    }
    const takeover = await heartbeat(gateway("new-host"));
    expect(takeover, "a replayed request renewed a dead holder's lease").toEqual({ status: 200, body: { ok: true, lease: { term: term + 1, expiresInMs: TTL_MS, syncRequired: true } } });
  });

  it("does not let a captured release, replayed, free the guild its holder claimed again", async () => {
    const term = await holding("restarted-host");
    advance(5_000);
    const release = await captured("/internal/lease", { guildId: TEST_GUILD_ID, gateway: gateway("restarted-host", term), release: true });
    expect((await release.replay()).status).toBe(200); // a rolling restart: the holder releases as it stops
    advance(5_000);
    expect(await heartbeat(gateway("restarted-host"))).toMatchObject({ status: 200, body: { lease: { term } } }); // and claims again
    advance(5_000);
    await release.replay();
    expect((await heartbeat(gateway("standby-host"))).body, "a replayed release freed the holder's guild").toMatchObject({ error: "lease_held" });
  });

  it("keeps renewing the lease of a holder whose clock, two minutes fast, is corrected", async () => {
    const ahead = (ms: number) => Date.now() + ms;
    const first = await write([sync([], [])], gateway("fast-host"), ahead(120_000));
    expect(first.status).toBe(200);
    const term = (first.body.lease as { term: number }).term;
    for (let i = 0; i < 3; i++) {
      advance(TTL_MS / 2);
      const renewed = await write([roomCreated(newChannelId())], gateway("fast-host", term), Date.now()); // corrected
      expect(renewed, `renewal ${i + 1} after the correction`).toMatchObject({ status: 200, body: { lease: { term, expiresInMs: TTL_MS } } });
    }
  });

  it("validates the lease request and checks its signature", async () => {
    expect((await postLease({ guildId: TEST_GUILD_ID, gateway: { instance: "" , term: 0 } })).status).toBe(400);
    expect((await postLease({ guildId: TEST_GUILD_ID, gateway: { instance: "host" } })).status).toBe(400); // a term is required
    const stale = await postLease({ guildId: TEST_GUILD_ID, gateway: gateway("host") }, { nowMs: Date.now() - 600_000 });
    expect(stale.status).toBe(401);
    const unsigned = await edgeFetch("/internal/lease", { method: "POST", body: JSON.stringify({ guildId: TEST_GUILD_ID, gateway: gateway("host") }) });
    expect(unsigned.status).toBe(401);
    // A guild this edge does not serve: no lease, and it says so (gateway-node reports the guild).
    expect(await postLease({ guildId: "999999999999999999", gateway: gateway("host") }).then((r) => r.json())).toEqual({ ok: true, served: false });
  });
});
