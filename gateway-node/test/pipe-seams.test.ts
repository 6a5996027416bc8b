import type { GatewayDispatchPayload } from "discord-api-types/v10";
import { describe, expect, it } from "vitest";
import { InternalEventsBody, internalEventList, type IdentifiedInternalEvent } from "../../protocol/index.js";
import type { GatewaySession } from "../src/gateway/shard.js";
import { GuildPipe, type GuildState } from "../src/guild-pipe.js";
import { silentLogger } from "../src/log.js";
import { until } from "./support/harness.js";

/**
 * A guild's pipe against an injected hub (its outbox's `fetch`), an injected shard session and an injected way to a
 * fresh session: what the pipe does when the hub's lease asks for a whole picture, by what Discord last said.
 */
const GUILD = "100000000000000001";
const ROOM = "110000000000000001";
const USER = "210000000000000001";
const MEDIA = { self_mute: false, self_deaf: false, mute: false, deaf: false, self_video: false };

/** A hub that refuses the first batch with 409 sync_required (a new lease term), then applies everything. */
function hubRequiringAPicture() {
  const received: IdentifiedInternalEvent[][] = [];
  const post = (async (_url: string | URL | Request, init?: RequestInit) => {
    const body = InternalEventsBody.parse(JSON.parse(String(init!.body)));
    const events = internalEventList(body);
    received.push(events);
    if (received.length === 1) {
      return Response.json({ error: "sync_required", message: "begin with a picture", retryAfterMs: 0, lease: { term: 2, expiresInMs: 30_000, syncRequired: true } }, { status: 409 });
    }
    return Response.json({ ok: true, accepted: events.length, duplicates: 0, lease: { term: 2, expiresInMs: 30_000 } });
  }) as typeof globalThis.fetch;
  return { fetch: post, received };
}

function pipeIn(state: GuildState, hub: ReturnType<typeof hubRequiringAPicture>) {
  let session: GatewaySession = { sessionId: "s1", seq: 10, resumeGatewayUrl: "wss://resume" };
  const fresh: string[] = [];
  const pipe = new GuildPipe({
    guildId: GUILD,
    shardId: 0,
    configuredAs: "PRIMARY_GUILD_ID",
    stored: { syncOwed: false, state },
    session: () => session,
    replaying: () => false,
    freshSession: (reason) => void fresh.push(reason),
    changed: () => undefined,
    changedNow: () => undefined,
    log: silentLogger,
    outbox: {
      guildId: GUILD,
      endpoint: "http://hub.test/internal/events",
      secret: "pipe-seams-test-secret-0123456789",
      maxEvents: 100,
      batchSize: 10,
      batchLingerMs: 0,
      backoff: { minMs: 1, maxMs: 5, factor: 2 },
      fetch: hub.fetch,
      random: () => 0.5,
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, Math.min(ms, 5))),
      log: silentLogger,
      gateway: { instance: "seams", epoch: 0 },
      standbyPollMs: 50,
      idleContactMs: 60_000,
      now: Date.now,
      clock: () => performance.now(),
    },
  });
  pipe.resumeFrom({ sessionId: "s1", seq: 10 });
  const dispatch = (payload: { t: string; s: number; d: unknown }) => {
    session = { ...session, seq: payload.s };
    pipe.onDispatch({ op: 0, ...payload } as GatewayDispatchPayload, session);
  };
  const newSession = (sessionId: string) => (session = { sessionId, seq: 0, resumeGatewayUrl: "wss://resume" });
  return { pipe, fresh, dispatch, newSession };
}

const voiceUpdate = (s: number) => ({ t: "VOICE_STATE_UPDATE", s, d: { guild_id: GUILD, user_id: USER, channel_id: ROOM, session_id: "v", suppress: false, request_to_speak_timestamp: null, ...MEDIA } });
const guildCreate = (s: number) => ({
  t: "GUILD_CREATE",
  s,
  d: { id: GUILD, channels: [{ id: ROOM, type: 2, name: "Pod", parent_id: null, user_limit: 4 }], voice_states: [{ user_id: USER, channel_id: ROOM, ...MEDIA }], members: [] },
});

describe("a pipe whose hub begins a new lease term (409 sync_required) with no picture queued", () => {
  it("of an available guild asks its shard for a fresh session once, sends nothing else meanwhile, and begins the term with the new GUILD_CREATE's picture", async () => {
    const hub = hubRequiringAPicture();
    const { pipe, fresh, dispatch, newSession } = pipeIn("available", hub);
    dispatch(voiceUpdate(11));
    await until(() => fresh.length === 1 || undefined, "a fresh session asked for");
    expect(pipe.syncOwed).toBe(true);
    dispatch(voiceUpdate(12));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(hub.received).toHaveLength(1); // the refused batch only: the hub takes nothing else before a picture

    newSession("s2");
    dispatch({ t: "READY", s: 1, d: { guilds: [{ id: GUILD, unavailable: true }], session_id: "s2", resume_gateway_url: "wss://resume", v: 10, user: {}, application: {} } } as never);
    dispatch(guildCreate(2));
    await until(() => !pipe.syncOwed || undefined, "the picture delivered");
    expect(hub.received[1]!.map((e) => e.event)).toEqual(["guild.sync"]);
    expect(hub.received[1]![0]!.id).toBe("s2:2");
    expect(fresh).toHaveLength(1);
    expect(pipe.committedPosition).toEqual({ sessionId: "s2", seq: 2 });
  });

  it("of a guild the bot is not in begins the term with the bot's absence, at once", async () => {
    const hub = hubRequiringAPicture();
    const { pipe, fresh, dispatch } = pipeIn("absent", hub);
    dispatch(voiceUpdate(11)); // not something Discord sends for such a guild; it makes the pipe post
    await until(() => hub.received.length === 2 || undefined, "the absence posted");
    expect(hub.received[1]!.map((e) => [e.event, e.payload])).toEqual([["guild.state", { guildId: GUILD, status: "absent" }]]);
    expect(fresh).toEqual([]);
    expect(pipe.syncOwed).toBe(false);
  });

  it("of a guild in an outage waits for the GUILD_CREATE that ends it (a fresh session would not bring it sooner)", async () => {
    const hub = hubRequiringAPicture();
    const { pipe, fresh, dispatch } = pipeIn("unavailable", hub);
    dispatch(voiceUpdate(11));
    await until(() => pipe.syncOwed || undefined, "a picture owed");
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(fresh).toEqual([]);
    dispatch(guildCreate(12));
    await until(() => !pipe.syncOwed || undefined, "the picture delivered");
    expect(hub.received.at(-1)!.map((e) => e.id)).toEqual(["s1:12"]);
    expect(pipe.state).toBe("available");
  });
});
