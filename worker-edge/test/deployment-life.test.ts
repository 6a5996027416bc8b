import { evictDurableObject, runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from "jose";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { AUTH_TIMEOUT_MS, CloseCode, splitGuildSync, type IdentifiedInternalEvent, type InternalEvent } from "../../protocol/index.js";
import { verifyAppToken } from "../src/auth.js";
import * as clock from "../src/clock.js";
import type { EdgeConfig } from "../src/config.js";
import { CreateRoomPolicy } from "../src/hub/rate-limit.js";
import { JWKS_REFETCH_COOLDOWN_MS, KEY_SET_MAX_AGE_MS } from "../src/jwks.js";
import { TEST_AUDIENCE, TEST_BOT_TOKEN, TEST_DISCORD_API_BASE, TEST_GUILD_ID, TEST_ISSUER } from "./support/bindings.js";
import { DiscordFake } from "./support/discord-fake.js";
import { TestSocket } from "./support/edge.js";
import { FIXTURE_PICTURE, FIXTURE_TIME, hubWithStorage, SHIPPED_SCHEMAS } from "./support/hub-storage.js";

/**
 * The life of a deployment, seeded and over simulated time (the edge's clock moves, so days pass in
 * milliseconds). A model holds the truth: Discord's rooms and voice states, a gateway that forwards them in order,
 * at least once, in batches cut into requests, retrying a failed batch with the same ids, and an identity provider
 * that rotates and withdraws signing keys. An operator's life happens around it: the hub starts on storage an
 * earlier release wrote (it is migrated), the edge is redeployed (the object evicted), the hub is unreachable or
 * refuses the gateway's clock for longer than every retention window, the gateway restarts, Discord refuses the
 * bot token while it is rotated, users create rooms.
 *
 * Invariants: after every quiescence (the gateway's queue drained) the hub's rooms and presence equal the
 * model's truth; no token signed by a withdrawn key is accepted later than KEY_SET_MAX_AGE_MS after the
 * withdrawal, cached or not; no user ever has more live rooms than the cap.
 *
 * CI runs the seeds below; EDGE_LIFE_SEEDS=n runs n more, random ones (each printed), EDGE_LIFE_SEED=s one seed.
 */
const CI_SEEDS = [1, 2, 3, 4, 5, 6, 7, 8];
const STEPS = 150;
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
/** Outages, from a blip to longer than every window the hub keeps (event ids and sync parts: 24 h). */
const OUTAGES_MS = [2 * MINUTE, 15 * MINUTE, 3 * HOUR, 25 * HOUR];
/** Gateway batches and requests, small so a sync's parts straddle both. */
const BATCH_EVENTS = 4;
const REQUEST_EVENTS = 2;
const SYNC_PART_BYTES = 400;

const testEnv = env as Env & { EDGE_LIFE_SEEDS?: string; EDGE_LIFE_SEED?: string };

function seedsToRun(): number[] {
  if (testEnv.EDGE_LIFE_SEED) return [Number(testEnv.EDGE_LIFE_SEED)];
  const more = Number(testEnv.EDGE_LIFE_SEEDS || 0);
  return [...CI_SEEDS, ...Array.from({ length: more }, () => Math.floor(Math.random() * 2 ** 31))];
}

/** mulberry32: small, seedable, good enough to pick actions. */
function random(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
  const int = (n: number) => Math.floor(next() * n);
  return { next, int, pick: <T>(items: readonly T[]): T => items[int(items.length)]! };
}
type Random = ReturnType<typeof random>;

let ids = 0n;
const channelId = () => String(430000000000000000n + ids++);
const USERS = Array.from({ length: 30 }, (_, i) => String(530000000000000000n + BigInt(i)));
const CREATORS = Array.from({ length: 3 }, (_, i) => String(540000000000000000n + BigInt(i)));

/** Discord's truth for the guild. */
class Truth {
  readonly rooms = new Map(Object.entries(FIXTURE_PICTURE.rooms));
  readonly members = new Map(Object.entries(FIXTURE_PICTURE.members));

  picture() {
    return {
      guildId: TEST_GUILD_ID,
      channels: [...this.rooms].map(([id, name]) => ({ channelId: id, name, userLimit: 4 })),
      voiceStates: [...this.members].map(([userId, id]) => ({ userId, channelId: id })),
    };
  }
}

/** gateway-node as the hub sees it: ordered, at least once, batches retried whole with the same ids. */
class Gateway {
  queue: IdentifiedInternalEvent[] = [];
  private session = 0;
  private seq = 0;
  private fresh = 0;
  log = { requests: 0, failed: 0, refused: 0, syncs: 0 };

  constructor(private readonly truth: Truth) {}

  /** A fresh Discord session: its GUILD_CREATE becomes a guild.sync, cut into parts. */
  newSession(): void {
    this.session++;
    this.seq = 0;
    this.sync(`s${this.session}:${++this.seq}`);
  }

  /** A restart: the queue in memory is gone, and the new session syncs. */
  restart(): void {
    this.queue = [];
    this.newSession();
  }

  /** One dispatch's events; a dispatch that becomes several events numbers them. */
  dispatch(events: InternalEvent[]): void {
    const at = `s${this.session}:${++this.seq}`;
    events.forEach((event, index) => this.queue.push({ ...event, id: events.length === 1 ? at : `${at}:${index}` } as IdentifiedInternalEvent));
  }

  /**
   * Tries the head batch: every request in order; a request that does not land leaves the batch to retry whole.
   * Returns whether the batch was delivered.
   */
  async deliver(hub: Hub, carries: () => boolean): Promise<boolean> {
    const batch = this.queue.slice(0, BATCH_EVENTS);
    for (let i = 0; i < batch.length; i += REQUEST_EVENTS) {
      this.log.requests++;
      if (!carries()) {
        this.log.failed++;
        return false;
      }
      const result = await hub.ingest(TEST_GUILD_ID, batch.slice(i, i + REQUEST_EVENTS));
      expect(result.kind, "the hub holds no lease for a sender that names no gateway").not.toBe("refused");
      if (result.kind === "failed") {
        // A part the hub can no longer complete: gateway-node drops it and sends a fresh picture.
        expect(result.error.status, result.error.message).toBe(400);
        this.log.refused++;
        this.queue = [];
        this.sync(`resync:${this.session}:${++this.fresh}`);
        return false;
      }
    }
    this.queue.splice(0, batch.length);
    return true;
  }

  private sync(syncId: string): void {
    this.log.syncs++;
    const parts = splitGuildSync(this.truth.picture(), syncId, SYNC_PART_BYTES);
    parts.forEach((payload, index) => this.queue.push({ id: parts.length === 1 ? syncId : `${syncId}:part${index}`, event: "guild.sync", payload }));
  }
}

type Hub = Awaited<ReturnType<typeof hubWithStorage>>;

interface SigningKey {
  kid: string;
  jwk: JWK;
  privateKey: CryptoKey;
  withdrawnAt?: number;
}

/** The identity provider's key set: rotation publishes a new key and signs with it; withdrawal unpublishes an old one. */
class IdentityProvider {
  readonly keys: SigningKey[] = [];
  private published = new Set<string>();

  async rotate(): Promise<void> {
    const { publicKey, privateKey } = await generateKeyPair("ES256", { extractable: true });
    const kid = `key-${this.keys.length}`;
    this.keys.push({ kid, jwk: { ...(await exportJWK(publicKey)), kid, alg: "ES256", use: "sig" }, privateKey });
    this.published.add(kid);
  }

  get signing(): SigningKey {
    return this.keys.at(-1)!;
  }

  /** Withdraws a published key other than the signing one; returns its kid. */
  withdrawOne(rng: Random): string | undefined {
    const old = this.keys.filter((key) => key !== this.signing && this.published.has(key.kid));
    if (old.length === 0) return undefined;
    const key = rng.pick(old);
    this.published.delete(key.kid);
    key.withdrawnAt = clock.now();
    return key.kid;
  }

  jwks(): { keys: JWK[] } {
    return { keys: this.keys.filter((key) => this.published.has(key.kid)).map((key) => key.jwk) };
  }

  /** A token a day long, issued now: long enough to outlive a withdrawal. */
  sign(key: SigningKey, sub: string): Promise<string> {
    const now = Math.floor(clock.now() / 1000);
    return new SignJWT({})
      .setProtectedHeader({ alg: "ES256", kid: key.kid })
      .setSubject(sub)
      .setIssuer(TEST_ISSUER)
      .setAudience(TEST_AUDIENCE)
      .setIssuedAt(now)
      .setExpirationTime(now + 24 * 3_600)
      .sign(key.privateKey);
  }
}

afterEach(() => vi.restoreAllMocks());
afterAll(() => clock.resetClock());

describe("the life of a deployment", () => {
  it.each(seedsToRun())("seed %i: the hub ends equal to the truth, and withdrawn keys stop verifying in time", async (seed) => {
    const started = Date.now();
    const rng = random(seed);
    const schema = rng.pick(SHIPPED_SCHEMAS);
    clock.advanceClockTo(FIXTURE_TIME);
    const hub = await hubWithStorage(`deployment-life-${seed}-${started}`, schema.sql);

    const truth = new Truth();
    const gateway = new Gateway(truth);
    const idp = new IdentityProvider();
    await idp.rotate();
    const jwksUrl = `https://idp.test/life/${seed}/${started}/jwks`;
    const config = { JWT_ISSUER: TEST_ISSUER, JWT_AUDIENCE: TEST_AUDIENCE, JWT_PUBLIC_JWK_URL: jwksUrl } as EdgeConfig;
    const discord = new DiscordFake();
    const original = globalThis.fetch;
    vi.spyOn(globalThis, "fetch").mockImplementation(async (input: RequestInfo | URL, init?: RequestInit) => {
      const request = new Request(input, init);
      if (request.url === jwksUrl) return Response.json(idp.jwks());
      if (request.url.startsWith(TEST_DISCORD_API_BASE)) return discord.reply(request);
      return original(input, init);
    });

    let flaky = false;
    const carries = () => !flaky || rng.next() < 0.5;
    const trace: string[] = [`schema ${schema.commit}`];
    const tokens: Array<{ key: SigningKey; token: string }> = [];

    const expectHubEqualsTruth = async (when: string) => {
      const snapshot = await hub.snapshot(TEST_GUILD_ID);
      const seen = {
        rooms: Object.fromEntries(snapshot.rooms.map((room) => [room.channelId, room.name])),
        members: Object.fromEntries(snapshot.rooms.flatMap((room) => room.members.map((m) => [m.userId, room.channelId]))),
      };
      const expected = { rooms: Object.fromEntries(truth.rooms), members: Object.fromEntries(truth.members) };
      expect(seen, `seed ${seed}, ${when}; steps: ${trace.join(" → ")}`).toEqual(expected);
      for (const creator of CREATORS) {
        const live = snapshot.rooms.filter((room) => room.creatorId === creator).length;
        expect(live, `seed ${seed}: live rooms of ${creator}`).toBeLessThanOrEqual(CreateRoomPolicy.liveRoomsPerUser);
      }
    };

    const drain = async (when: string) => {
      for (let i = 0; i < 1_000 && gateway.queue.length > 0; i++) await gateway.deliver(hub, carries);
      expect(gateway.queue, `seed ${seed}: the gateway drained`).toHaveLength(0);
      await expectHubEqualsTruth(when);
    };

    /** Verifies fresh and earlier tokens of every key; one signed by a key withdrawn past the bound must fail. */
    const checkTokens = async () => {
      for (const key of idp.keys) tokens.push({ key, token: await idp.sign(key, rng.pick(USERS)) });
      for (const { key, token } of tokens.slice(-12)) {
        const accepted = await verifyAppToken(token, config).then(() => true, () => false);
        if (key.withdrawnAt !== undefined && clock.now() > key.withdrawnAt + KEY_SET_MAX_AGE_MS) {
          expect(accepted, `seed ${seed}: a token of ${key.kid}, withdrawn ${(clock.now() - key.withdrawnAt) / MINUTE} min ago`).toBe(false);
        }
      }
    };

    // Discord moved on while the old release ran: only the first session's sync tells the hub.
    const unforwarded = new Gateway(truth); // what it dispatches goes nowhere
    for (let i = 0; i < 6; i++) discordChange(truth, unforwarded, rng);
    gateway.newSession();
    for (let step = 0; step < STEPS; step++) {
      const roll = rng.next();
      if (roll < 0.3) {
        trace.push(discordChange(truth, gateway, rng));
      } else if (roll < 0.55) {
        trace.push("deliver");
        await gateway.deliver(hub, carries);
        if (gateway.queue.length === 0) await expectHubEqualsTruth(`quiescent at step ${step}`);
      } else if (roll < 0.63) {
        // The hub unreachable (or refusing the gateway's skewed clock): a flaky start, then nothing lands.
        const ms = rng.pick(OUTAGES_MS);
        trace.push(`outage ${ms / MINUTE} min`);
        flaky = true;
        for (let batches = 0; batches < 8 && gateway.queue.length > 0; batches++) if (!(await gateway.deliver(hub, carries))) break;
        clock.advanceClock(ms);
        // Users still reach the hub meanwhile: their traffic runs its retention sweeps.
        const user = rng.next();
        if (user < 0.4) trace.push(await restCreate(hub, truth, gateway, discord, rng));
        else if (user < 0.8) trace.push(await clientTimesOut(hub));
        flaky = false;
      } else if (roll < 0.68) {
        trace.push("deploy");
        await deploy(hub);
      } else if (roll < 0.73) {
        const restart = rng.next() < 0.5;
        trace.push(restart ? "gateway restart" : "new session");
        // What changed while the gateway was disconnected reaches the hub only in the new session's sync.
        for (let missed = 1 + rng.int(3); missed > 0; missed--) discordChange(truth, unforwarded, rng);
        if (restart) gateway.restart();
        else gateway.newSession();
      } else if (roll < 0.78) {
        trace.push("jwks rotation");
        await idp.rotate();
      } else if (roll < 0.82) {
        // Browsers keep presenting tokens around a withdrawal: just after it, and on either side of the bound.
        const withdrawn = idp.withdrawOne(rng);
        trace.push(withdrawn ? `${withdrawn} withdrawn` : "nothing to withdraw");
        for (const ms of [rng.int(KEY_SET_MAX_AGE_MS), KEY_SET_MAX_AGE_MS / 2, rng.int(KEY_SET_MAX_AGE_MS / 2)]) {
          clock.advanceClock(ms);
          await checkTokens();
        }
      } else if (roll < 0.88) {
        trace.push("tokens");
        await checkTokens();
      } else if (roll < 0.93) {
        trace.push(await restCreate(hub, truth, gateway, discord, rng));
      } else if (roll < 0.94) {
        const rotating = discord.botToken === "rotated";
        trace.push(rotating ? "bot token deployed" : "bot token rotated");
        discord.botToken = rotating ? TEST_BOT_TOKEN : "rotated";
      } else {
        const ms = rng.pick([5_000, MINUTE, 3 * MINUTE, 7 * MINUTE, 20 * MINUTE, 2 * HOUR]);
        trace.push(`time ${ms / MINUTE} min`);
        clock.advanceClock(ms);
        await checkTokens(); // browsers present their tokens as time passes
      }
    }

    // Quiescence: the gateway delivers everything, and the bot token is the deployed one again.
    discord.botToken = TEST_BOT_TOKEN;
    await drain("at the end");
    await deploy(hub);
    await expectHubEqualsTruth("after a final deploy");
    await checkTokens();
    clock.advanceClock(KEY_SET_MAX_AGE_MS + JWKS_REFETCH_COOLDOWN_MS);
    await expect(verifyAppToken(await idp.sign(idp.signing, USERS[0]!), config), `seed ${seed}: the current key verifies`).resolves.toBeDefined();
    await checkTokens();

    console.log(JSON.stringify({
      msg: "deployment life", seed, schema: schema.commit, steps: STEPS, ms: Date.now() - started, ...gateway.log,
      keys: idp.keys.length, withdrawn: idp.keys.filter((key) => key.withdrawnAt !== undefined).length,
    }));
  }, 60_000);
});

/** A new edge version: the running object is evicted; the next call starts the new code on the same storage. */
async function deploy(hub: Hub): Promise<void> {
  await hub.snapshot(TEST_GUILD_ID); // running, as a guild with traffic is
  await evictDurableObject(hub);
}

/** A browser connects and never authenticates: the hub's alarm closes it (and runs the retention sweep). */
async function clientTimesOut(hub: Hub): Promise<string> {
  const response = await hub.fetch(new Request("https://edge.test/ws", { headers: { Upgrade: "websocket" } }));
  const socket = new TestSocket(response.webSocket!);
  clock.advanceClock(AUTH_TIMEOUT_MS + 1);
  expect(await runDurableObjectAlarm(hub)).toBe(true);
  expect((await socket.waitForClose()).code).toBe(CloseCode.authTimeout);
  return "client timed out";
}

/** One change in Discord, and the events the gateway forwards for it. */
function discordChange(truth: Truth, gateway: Gateway, rng: Random): string {
  const guildId = TEST_GUILD_ID;
  const rooms = [...truth.rooms.keys()];
  const kind = rng.next();
  if (kind < 0.12 && rooms.length < 8) {
    const id = channelId();
    truth.rooms.set(id, `Table ${id.slice(-3)}`);
    gateway.dispatch([{ event: "room.created", payload: { guildId, channelId: id, name: truth.rooms.get(id)!, userLimit: 4 } }]);
    return "room created";
  }
  if (kind < 0.2 && rooms.length > 0) {
    const id = rng.pick(rooms);
    // Deleting a voice channel disconnects everyone in it.
    for (const [userId, where] of truth.members) {
      if (where !== id) continue;
      truth.members.delete(userId);
      gateway.dispatch([{ event: "voice.left", payload: { guildId, channelId: id, userId } }]);
    }
    truth.rooms.delete(id);
    gateway.dispatch([{ event: "room.deleted", payload: { guildId, channelId: id } }]);
    return "room deleted";
  }
  const userId = rng.pick(USERS);
  const current = truth.members.get(userId);
  if (kind < 0.35 && current) {
    truth.members.delete(userId);
    gateway.dispatch([{ event: "voice.left", payload: { guildId, channelId: current, userId } }]);
    return "left";
  }
  if (rooms.length === 0) return "nothing";
  const target = rng.pick(rooms);
  if (target === current) return "nothing";
  truth.members.set(userId, target);
  // A move carries only the new channel: the gateway turns it into a departure and an arrival.
  gateway.dispatch([
    ...(current ? [{ event: "voice.left" as const, payload: { guildId, channelId: current, userId } }] : []),
    { event: "voice.joined", payload: { guildId, channelId: target, userId, username: `user ${userId.slice(-2)}` } },
  ]);
  return current ? "moved" : "joined";
}

/** A user creates a room through the hub; Discord's CHANNEL_CREATE follows through the gateway. */
async function restCreate(hub: Hub, truth: Truth, gateway: Gateway, discord: DiscordFake, rng: Random): Promise<string> {
  const userId = rng.pick(CREATORS);
  const name = `Made by ${userId.slice(-1)}`;
  const result = await hub.createRoom({ guildId: TEST_GUILD_ID, userId, body: { name, userLimit: 4 } });
  if (!result.ok) {
    if (discord.botToken === "rotated") expect([429, 502]).toContain(result.error.status);
    else expect(result.error.status).toBe(429);
    return `create refused ${result.error.status}`;
  }
  truth.rooms.set(result.value.channelId, name);
  gateway.dispatch([{ event: "room.created", payload: { guildId: TEST_GUILD_ID, channelId: result.value.channelId, name, userLimit: 4 } }]);
  return "create";
}
