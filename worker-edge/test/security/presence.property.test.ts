import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AppEvent, MEDIA_COALESCE_MS, type GuildStatus, type InternalEvent, type Room, type VoiceMedia } from "../../../protocol/index.js";
import { PresenceStore } from "../../../client/presence.js";
import { mediaOf } from "../../src/hub/media-flags.js";
import { publishDueMedia } from "../../src/hub/media.js";
import { reconcile } from "../../src/hub/presence.js";
import { HubStore } from "../../src/hub/store.js";
import { TEST_GUILD_ID } from "../support/bindings.js";

/**
 * Property-based tests of the hub's presence reducer (worker-edge/src/hub/presence.ts) over its real SQLite
 * store, inside a Durable Object of its own. For any sequence of events:
 *   snapshot(after prefix) + the events the hub emits for the rest, applied by a client = snapshot(at the end),
 * and a guild.sync of a random truth leaves the hub equal to that truth. Over the gateway's states (voice, channel,
 * guild states and syncs): any sequence, applied with duplicates and with a replay of any tail, ends in the same
 * truth; and a client applying the published events (voice.media and guild.status included) to its snapshot
 * equals the hub.
 * Each convergence property varies one thing (order, renames, profile changes), so a failure names one defect;
 * the sync properties compare the hub with the truth only (a client's view after a sync is covered above).
 */

const RUNS = 200;
const CHANNELS = 6;
const USERS = 6;
const guildId = TEST_GUILD_ID;
const channelId = (i: number) => String(410000000000000000n + BigInt(i));
const userId = (i: number) => String(510000000000000000n + BigInt(i));
const PARENT = "420000000000000001";

// --- commands, interpreted against the hub's state when they run

type Command =
  | { k: "created"; ch: number; meta: number }
  | { k: "deleted"; ch: number }
  | { k: "joined"; u: number; ch: number; profile: number }
  | { k: "left"; u: number; ch: number }
  | { k: "sync"; rooms: Array<{ ch: number; meta: number }>; states: Array<{ u: number; ch: number; profile: number }> };

interface Variation {
  /** A known room may come back with another name, limit or parent. */
  renames: boolean;
  /** A member's username/avatar may change while they stay in the room. */
  profileChanges: boolean;
  /** Joins only target rooms the hub knows, and sync voice states only the synced rooms. */
  wellOrdered: boolean;
}

const command: fc.Arbitrary<Command> = fc.oneof(
  { arbitrary: fc.record({ k: fc.constant("created" as const), ch: fc.nat(CHANNELS - 1), meta: fc.nat(5) }), weight: 3 },
  { arbitrary: fc.record({ k: fc.constant("deleted" as const), ch: fc.nat(CHANNELS - 1) }), weight: 1 },
  { arbitrary: fc.record({ k: fc.constant("joined" as const), u: fc.nat(USERS - 1), ch: fc.nat(CHANNELS - 1), profile: fc.nat(3) }), weight: 4 },
  { arbitrary: fc.record({ k: fc.constant("left" as const), u: fc.nat(USERS - 1), ch: fc.nat(CHANNELS - 1) }), weight: 2 },
  {
    arbitrary: fc.record({
      k: fc.constant("sync" as const),
      rooms: fc.uniqueArray(fc.record({ ch: fc.nat(CHANNELS - 1), meta: fc.nat(5) }), { selector: (r) => r.ch, maxLength: CHANNELS }),
      states: fc.uniqueArray(fc.record({ u: fc.nat(USERS - 1), ch: fc.nat(CHANNELS - 1), profile: fc.nat(3) }), { selector: (s) => s.u, maxLength: USERS }),
    }),
    weight: 1,
  },
);
const commands = fc.array(command, { maxLength: 25 });

function roomMeta(ch: number, meta: number, v: Variation) {
  if (!v.renames) return { name: `Room ${ch}`, userLimit: ch % 5, ...(ch % 2 ? { parentId: PARENT } : {}) };
  return {
    name: ["Alpha", "Beta", "Gamma"][meta % 3]!,
    userLimit: meta % 4,
    ...([{}, { parentId: PARENT }, { parentId: null }][meta % 3] as { parentId?: string | null }),
  };
}

function profile(u: number, p: number, v: Variation): { username?: string; avatar?: string | null } {
  if (!v.profileChanges) return { username: `user${u}`, avatar: `avatar${u}` };
  return [{}, { username: "ann" }, { username: "bob", avatar: "a1" }, { username: "cy", avatar: null }][p % 4]!;
}

/** The internal event a command stands for right now, or undefined when a well-ordered run skips it. */
function toEvent(cmd: Command, store: HubStore, v: Variation): InternalEvent | undefined {
  const live = store.rooms().map((room) => room.channelId);
  switch (cmd.k) {
    case "created":
      return { event: "room.created", payload: { guildId, channelId: channelId(cmd.ch), ...roomMeta(cmd.ch, cmd.meta, v) } };
    case "deleted":
      return { event: "room.deleted", payload: { guildId, channelId: channelId(cmd.ch) } };
    case "joined": {
      const target = v.wellOrdered ? live[cmd.ch % Math.max(1, live.length)] : channelId(cmd.ch);
      if (target === undefined) return undefined;
      return { event: "voice.joined", payload: { guildId, channelId: target, userId: userId(cmd.u), ...profile(cmd.u, cmd.profile, v) } };
    }
    case "left":
      return { event: "voice.left", payload: { guildId, channelId: channelId(cmd.ch), userId: userId(cmd.u) } };
    case "sync": {
      const channels = cmd.rooms.map((r) => ({ channelId: channelId(r.ch), ...roomMeta(r.ch, r.meta, v) }));
      const states = cmd.states.flatMap((s) => {
        const target = v.wellOrdered ? channels[s.ch % Math.max(1, channels.length)]?.channelId : channelId(s.ch);
        return target === undefined ? [] : [{ userId: userId(s.u), channelId: target, ...profile(s.u, s.profile, v) }];
      });
      return { event: "guild.sync", payload: { guildId, channels, voiceStates: states } };
    }
  }
}

// --- the client side: the contract's reducer, and the browser SDK's

/** A client that applies events exactly as the wire contract describes (room.updated included). */
class ContractClient {
  private readonly rooms = new Map<string, Room>();

  constructor(snapshot: Room[]) {
    for (const room of snapshot) this.rooms.set(room.channelId, { ...room, members: [...room.members] });
  }

  apply(event: { event: string; payload: Record<string, unknown> }): void {
    const p = event.payload as { channelId: string; userId: string; name: string; userLimit: number; parentId?: string | null; username?: string; avatar?: string | null };
    switch (event.event) {
      case "room.created":
        if (!this.rooms.has(p.channelId)) this.rooms.set(p.channelId, { channelId: p.channelId, name: p.name, userLimit: p.userLimit, parentId: p.parentId ?? null, members: [] });
        break;
      case "room.updated": {
        const room = this.rooms.get(p.channelId);
        if (room) this.rooms.set(p.channelId, { ...room, name: p.name, userLimit: p.userLimit, parentId: p.parentId ?? null });
        break;
      }
      case "room.deleted":
        this.rooms.delete(p.channelId);
        break;
      case "voice.joined": {
        for (const room of this.rooms.values()) room.members = room.members.filter((m) => m.userId !== p.userId);
        this.rooms.get(p.channelId)?.members.push({ userId: p.userId, username: p.username, avatar: p.avatar });
        break;
      }
      case "voice.left": {
        const room = this.rooms.get(p.channelId);
        if (room) room.members = room.members.filter((m) => m.userId !== p.userId);
        break;
      }
      default: // unknown events are ignored, as the contract asks of clients
    }
  }

  view(): Room[] {
    return [...this.rooms.values()];
  }
}

/** Rooms in a comparable form: sorted, parentId null when absent, no null/undefined member fields. */
function normalize(rooms: Room[]) {
  return [...rooms]
    .sort((a, b) => a.channelId.localeCompare(b.channelId))
    .map((room) => ({
      channelId: room.channelId,
      name: room.name,
      userLimit: room.userLimit,
      parentId: room.parentId ?? null,
      members: [...room.members]
        .sort((a, b) => a.userId.localeCompare(b.userId))
        .map((m) => ({ userId: m.userId, ...(m.username != null ? { username: m.username } : {}), ...(m.avatar != null ? { avatar: m.avatar } : {}) })),
    }));
}

// --- running inside a Durable Object of its own, over the real SQLite store

const TABLES = ["meta", "rooms", "members", "events", "seen_ids", "ended_rooms", "displaced_rooms", "idempotency"];

function inHubStorage<R>(body: (fresh: () => HubStore) => R): Promise<R> {
  const stub = env.GUILD_HUB.get(env.GUILD_HUB.idFromName("presence-property-tests"));
  return runInDurableObject(stub, (_instance, state) =>
    body(() => {
      const store = new HubStore(state.storage);
      for (const table of TABLES) state.storage.sql.exec(`DELETE FROM ${table}`);
      return store;
    }),
  );
}

/** Runs prefix, takes the snapshot a client would get, runs suffix and returns what the client and hub ended with. */
function replay(fresh: () => HubStore, prefix: Command[], suffix: Command[], v: Variation) {
  const store = fresh();
  let now = 1_000;
  for (const cmd of prefix) {
    const event = toEvent(cmd, store, v);
    if (event) reconcile(store, event, (now += 1_000));
  }
  const initial = store.snapshotRooms();
  const client = new ContractClient(initial);
  const sdk = new PresenceStore();
  sdk.applySnapshot({ seq: 0, payload: { rooms: initial } });
  let seq = 0;
  const emitted: unknown[] = [];
  for (const cmd of suffix) {
    const event = toEvent(cmd, store, v);
    if (!event) continue;
    for (const out of reconcile(store, event, (now += 1_000))) {
      emitted.push(out);
      const wire = AppEvent.safeParse(out);
      expect(wire.success, `emitted event is not a valid wire event: ${JSON.stringify(out)}`).toBe(true);
      client.apply(out);
      sdk.applyEvent({ v: 1, type: "event", ts: now, seq: ++seq, ...out } as Parameters<PresenceStore["applyEvent"]>[0]);
    }
  }
  return { hub: normalize(store.snapshotRooms()), client: normalize(client.view()), sdk: normalize(sdk.getSnapshot().rooms), emitted, store };
}

function convergenceProperty(v: Variation, checkSdk: boolean) {
  return inHubStorage((fresh) =>
    fc.assert(
      fc.property(commands, commands, (prefix, suffix) => {
        const result = replay(fresh, prefix, suffix, v);
        expect(result.client, `events emitted: ${JSON.stringify(result.emitted)}`).toEqual(result.hub);
        if (checkSdk) expect(result.sdk, "the browser SDK's PresenceStore").toEqual(result.hub);
      }),
      { numRuns: RUNS },
    ),
  );
}

describe("presence reducer: snapshot + emitted events = final snapshot", () => {
  it("holds for well-ordered sequences with stable names and profiles (also for the browser SDK's store)", async () => {
    await convergenceProperty({ renames: false, profileChanges: false, wellOrdered: true }, true);
  });

  it("holds for any order (joins into channels the hub does not know as rooms, voice states outside the synced rooms)", async () => {
    await convergenceProperty({ renames: false, profileChanges: false, wellOrdered: false }, false);
  });

  it("holds when a known room comes back renamed or with another limit or parent (room.updated)", async () => {
    await convergenceProperty({ renames: true, profileChanges: false, wellOrdered: true }, false);
  });

  it("holds when a member's username or avatar changes while they stay in the room", async () => {
    await convergenceProperty({ renames: false, profileChanges: true, wellOrdered: true }, false);
  });
});

describe("presence reducer: guild.sync of a random truth makes the hub equal that truth", () => {
  const truth = fc.record({
    rooms: fc.uniqueArray(fc.record({ ch: fc.nat(CHANNELS - 1), meta: fc.nat(5) }), { selector: (r) => r.ch, maxLength: CHANNELS }),
    states: fc.uniqueArray(fc.record({ u: fc.nat(USERS - 1), ch: fc.nat(CHANNELS - 1), profile: fc.nat(3) }), { selector: (s) => s.u, maxLength: USERS }),
  });

  it.each([
    ["stable names and profiles", { renames: false, profileChanges: false }],
    ["renames and profile changes", { renames: true, profileChanges: true }],
  ])("after any history, with %s", async (_label, variation) => {
    const v: Variation = { ...variation, wellOrdered: false };
    await inHubStorage((fresh) =>
      fc.assert(
        fc.property(commands, truth, (history, picture) => {
          const store = fresh();
          let now = 1_000;
          for (const cmd of history) {
            const event = toEvent(cmd, store, v);
            if (event) reconcile(store, event, (now += 1_000));
          }
          // Discord never reuses a channel id, so a truth cannot contain a room that has ended.
          const rooms = picture.rooms.filter((r) => !store.hasEnded(channelId(r.ch)));
          const sync = toEvent({ k: "sync", rooms, states: picture.states }, store, v) as Extract<InternalEvent, { event: "guild.sync" }>;
          reconcile(store, sync, (now += 1_000));

          const expected = normalize(
            sync.payload.channels.map((c) => ({
              channelId: c.channelId,
              name: c.name,
              userLimit: c.userLimit,
              parentId: c.parentId ?? null,
              members: sync.payload.voiceStates.filter((s) => s.channelId === c.channelId).map(({ channelId: _c, ...member }) => member),
            })),
          );
          // Usernames and avatars are compared where the truth states them (a missing one may keep what was known).
          const stated = new Map(sync.payload.voiceStates.map((s) => [s.userId, s]));
          const project = (rooms: ReturnType<typeof normalize>) =>
            rooms.map((room) => ({
              ...room,
              members: room.members.map((m) => {
                const s = stated.get(m.userId);
                return {
                  userId: m.userId,
                  ...(s?.username !== undefined ? { username: m.username } : {}),
                  ...(s?.avatar != null ? { avatar: m.avatar } : {}),
                };
              }),
            }));
          expect(project(normalize(store.snapshotRooms())), "the hub's snapshot after the sync").toEqual(project(expected));
        }),
        { numRuns: RUNS },
      ),
    );
  });
});

// --- states, as gateway-node sends them

type StateCommand =
  | { k: "voice"; u: number; ch: number | null; media: number; profile: number }
  | { k: "channel"; ch: number; stage: boolean; meta: number; deleted: boolean }
  | { k: "guild"; status: "unavailable" | "absent" }
  | { k: "sync"; rooms: Array<{ ch: number; meta: number; stage: boolean }>; states: Array<{ u: number; ch: number; media: number; profile: number }> }
  /** Time passes past a media window: the hub publishes what the windows that ended hold. */
  | { k: "flush" };

const stateCommand: fc.Arbitrary<StateCommand> = fc.oneof(
  { arbitrary: fc.record({ k: fc.constant("voice" as const), u: fc.nat(USERS - 1), ch: fc.option(fc.nat(CHANNELS - 1), { nil: null }), media: fc.nat(63), profile: fc.nat(3) }), weight: 8 },
  { arbitrary: fc.record({ k: fc.constant("channel" as const), ch: fc.nat(CHANNELS - 1), stage: fc.boolean(), meta: fc.nat(5), deleted: fc.boolean() }), weight: 3 },
  { arbitrary: fc.record({ k: fc.constant("guild" as const), status: fc.constantFrom("unavailable" as const, "absent" as const) }), weight: 1 },
  {
    arbitrary: fc.record({
      k: fc.constant("sync" as const),
      rooms: fc.uniqueArray(fc.record({ ch: fc.nat(CHANNELS - 1), meta: fc.nat(5), stage: fc.boolean() }), { selector: (r) => r.ch, maxLength: CHANNELS }),
      states: fc.uniqueArray(fc.record({ u: fc.nat(USERS - 1), ch: fc.nat(CHANNELS - 1), media: fc.nat(63), profile: fc.nat(3) }), { selector: (s) => s.u, maxLength: USERS }),
    }),
    weight: 1,
  },
  { arbitrary: fc.constant({ k: "flush" as const }), weight: 2 },
);
const stateCommands = fc.array(stateCommand, { maxLength: 30 });
const STATE_VARIATION: Variation = { renames: true, profileChanges: true, wellOrdered: false };

function toStateEvent(cmd: Exclude<StateCommand, { k: "flush" }>): InternalEvent {
  switch (cmd.k) {
    case "voice":
      return {
        event: "voice.state",
        payload: { guildId, userId: userId(cmd.u), channelId: cmd.ch === null ? null : channelId(cmd.ch), media: mediaOf(cmd.media), ...profile(cmd.u, cmd.profile, STATE_VARIATION) },
      };
    case "channel": {
      const { name, userLimit, parentId } = roomMeta(cmd.ch, cmd.meta, STATE_VARIATION);
      return {
        event: "channel.state",
        payload: { guildId, channelId: channelId(cmd.ch), type: cmd.stage ? 13 : 2, name, userLimit, parentId: parentId ?? null, ...(cmd.deleted ? { deleted: true as const } : {}) },
      };
    }
    case "guild":
      return { event: "guild.state", payload: { guildId, status: cmd.status } };
    case "sync":
      return {
        event: "guild.sync",
        payload: {
          guildId,
          channels: cmd.rooms.map((r) => ({ channelId: channelId(r.ch), type: r.stage ? 13 : 2, ...roomMeta(r.ch, r.meta, STATE_VARIATION) })),
          voiceStates: cmd.states.map((st) => ({ userId: userId(st.u), channelId: channelId(st.ch), media: mediaOf(st.media), ...profile(st.u, st.profile, STATE_VARIATION) })),
        },
      };
  }
}

/** What a client keeps: the rooms with their members' flags, and the guild's status. */
class StateClient extends ContractClient {
  status: GuildStatus;
  private readonly media = new Map<string, VoiceMedia>();

  constructor(snapshot: Room[], status: GuildStatus) {
    super(snapshot);
    this.status = status;
    for (const member of snapshot.flatMap((room) => room.members)) if (member.media) this.media.set(member.userId, member.media);
  }

  override apply(event: { event: string; payload: Record<string, unknown> }): void {
    const p = event.payload as { userId: string; media?: VoiceMedia; status?: GuildStatus };
    if (event.event === "guild.status") this.status = p.status!;
    if ((event.event === "voice.joined" || event.event === "voice.media") && p.media) this.media.set(p.userId, p.media);
    super.apply(event);
  }

  mediaOf(userId: string): VoiceMedia | undefined {
    return this.media.get(userId);
  }
}

/** The hub's truth: its rooms (members with their flags) and its status. */
function truthOf(rooms: Room[], status: GuildStatus, mediaOfMember: (userId: string, member: Room["members"][number]) => VoiceMedia | undefined) {
  const byId = new Map(rooms.flatMap((r) => r.members).map((m) => [m.userId, m]));
  return {
    status,
    rooms: normalize(rooms).map((room) => ({ ...room, members: room.members.map((m) => ({ ...m, media: mediaOfMember(m.userId, byId.get(m.userId)!) })) })),
  };
}

function runStates(store: HubStore, commands: StateCommand[], start: number, onEvents: (events: AppEvent[], now: number) => void = () => undefined): number {
  let now = start;
  for (const cmd of commands) {
    now += 100;
    if (cmd.k === "flush") {
      now += MEDIA_COALESCE_MS;
      onEvents(publishDueMedia(store, guildId, now), now);
    } else onEvents(reconcile(store, toStateEvent(cmd), now), now);
  }
  return now;
}

describe("presence reducer over states", () => {
  it("any sequence of states ends in the same truth applied with duplicates and with a replay of any tail", async () => {
    await inHubStorage((fresh) =>
      fc.assert(
        fc.property(stateCommands, fc.array(fc.boolean(), { minLength: 30, maxLength: 30 }), fc.nat(30), (commands, doubled, tailFrom) => {
          const once = fresh();
          runStates(once, commands, 1_000);
          const expected = truthOf(once.snapshotRooms(), once.guildStatus, (_u, m) => m.media);

          const again = fresh();
          const withDuplicates = commands.flatMap((cmd, i) => (doubled[i] ? [cmd, cmd] : [cmd]));
          const replayed = [...withDuplicates, ...commands.slice(Math.min(tailFrom, commands.length))];
          runStates(again, replayed, 1_000);
          expect(truthOf(again.snapshotRooms(), again.guildStatus, (_u, m) => m.media), `replayed: ${JSON.stringify(replayed)}`).toEqual(expected);
        }),
        { numRuns: RUNS },
      ),
    );
  });

  it("a client applying the events published after its snapshot (voice.media and guild.status included) equals the hub", async () => {
    await inHubStorage((fresh) =>
      fc.assert(
        fc.property(stateCommands, stateCommands, (prefix, suffix) => {
          const store = fresh();
          const at = runStates(store, prefix, 1_000);
          const client = new StateClient(store.snapshotRooms(), store.guildStatus);
          const emitted: unknown[] = [];
          const apply = (events: AppEvent[]) => {
            for (const out of events) {
              emitted.push(out);
              expect(AppEvent.safeParse(out).success, `not a valid wire event: ${JSON.stringify(out)}`).toBe(true);
              client.apply(out);
            }
          };
          // Every window open at the end closes: the client then knows every member's flags.
          runStates(store, [...suffix, { k: "flush" }], at, apply);
          const hub = truthOf(store.snapshotRooms(), store.guildStatus, (_u, m) => m.media);
          const seen = truthOf(client.view(), client.status, (u) => client.mediaOf(u));
          expect(seen, `events emitted: ${JSON.stringify(emitted)}`).toEqual(hub);
        }),
        { numRuns: RUNS },
      ),
    );
  });
});
