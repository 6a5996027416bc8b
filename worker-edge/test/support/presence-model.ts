// The browser SDK's connect() against the real hub in workerd, driven by a seeded random schedule of room
// creates and deletes, joins, leaves and moves, room filter changes and connection cuts (with resumes), and the
// faults a deployment adds (relays reset, relay→hub links cut, the hub evicted). After each step batch the
// client's rooms must equal the hub's GET /rooms, with the members of rooms outside the filter emptied as
// documented. A failure names its seed and prints the schedule.
import type { Room, RoomsResponse } from "../../../protocol/index.js";
import { connect, type RealtimeConnection } from "../../../client/connect.js";
import { authed, edgeFetch, newChannelId, newUserId, postInternal } from "./edge.js";
import { EdgeSocket } from "./sdk-socket.js";
import { joined, left, roomCreated, roomDeleted } from "./events.js";
import { mintToken } from "./tokens.js";
import { seededRandom } from "../../../test-support/prng.js";

/** A fault the schedule may inject besides the client's own cuts: its name (for the printed schedule) and how. */
export interface ModelFault {
  name: string;
  inject(random: () => number): Promise<void>;
}

/**
 * The SDK's SSE transport calls the global fetch: this one sends its requests to the Worker in this isolate, and
 * `cut()` errors every open stream like a dropped connection (an abort by the SDK does the same to its own).
 */
class EdgeStreams {
  private readonly open = new Set<TransformStreamDefaultController<Uint8Array>>();

  readonly fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = new URL(String(input));
    const { signal, ...rest } = init ?? {};
    const response = await edgeFetch(url.pathname + url.search, rest);
    if (!response.body) return response;
    let controller!: TransformStreamDefaultController<Uint8Array>;
    const relay = new TransformStream<Uint8Array, Uint8Array>({ start: (c) => void (controller = c) });
    this.open.add(controller);
    const drop = (reason: unknown) => {
      this.open.delete(controller);
      controller.error(reason);
    };
    signal?.addEventListener("abort", () => drop(signal.reason));
    // An error on our side cancels the Worker's stream, as a client going away does.
    void response.body.pipeTo(relay.writable).catch(() => this.open.delete(controller));
    return new Response(relay.readable, { status: response.status, headers: response.headers });
  };

  cut(): void {
    for (const controller of [...this.open]) {
      this.open.delete(controller);
      controller.error(new TypeError("network connection lost"));
    }
  }
}

const byId = (rooms: Room[]) =>
  [...rooms]
    .map((room) => ({ ...room, members: room.members.map((m) => m.userId).sort() }))
    .sort((a, b) => a.channelId.localeCompare(b.channelId));

/** What the documented contract says the client holds: the hub's rooms, members only in the rooms it filters on. */
function expected(hub: RoomsResponse, filter: string[] | undefined) {
  return byId(hub.rooms.map((room) => (!filter || filter.includes(room.channelId) ? room : { ...room, members: [] })));
}

const until = async (check: () => boolean | Promise<boolean>, what: string, timeoutMs = 5_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
};

/** Runs one seeded schedule; with `faults`, about one step in ten injects one of them. */
export async function runSchedule(seed: number, steps: number, transport: "websocket" | "sse", faults: ModelFault[] = []): Promise<void> {
  const random = seededRandom(seed);
  const pick = <T>(list: T[]): T => list[Math.floor(random() * list.length)]!;
  const viewer = newUserId();
  const users = Array.from({ length: 6 }, newUserId);
  const rooms: string[] = [];
  const where = new Map<string, string>();
  let filter: string[] | undefined;
  // Read as a user of its own each time: the checks list rooms more often than one user's GET /rooms rate allows.
  const hubRooms = async () => (await (await edgeFetch("/rooms", authed(await mintToken({ sub: newUserId() })))).json()) as RoomsResponse;
  const streams = new EdgeStreams();
  const realFetch = globalThis.fetch;
  if (transport === "sse") globalThis.fetch = streams.fetch as typeof fetch;
  const options = { url: "https://edge.test/ws", getToken: () => mintToken({ sub: viewer }), browser: false as const, backoff: { minMs: 1, maxMs: 20, factor: 2 }, random };
  const client: RealtimeConnection = transport === "sse" ? connect({ ...options, transport }) : connect({ ...options, WebSocket: EdgeSocket });
  const cut = () => (transport === "sse" ? streams.cut() : EdgeSocket.live.forEach((socket) => socket.cut()));
  const log: string[] = [];
  try {
    for (let step = 0; step < steps; step++) {
      const roll = random();
      if (roll < 0.15 || rooms.length === 0) {
        const id = newChannelId();
        rooms.push(id);
        log.push(`create ${id}`);
        await postInternal({ events: [roomCreated(id, `R${id.slice(-3)}`)] });
      } else if (roll < 0.22) {
        const id = pick(rooms);
        rooms.splice(rooms.indexOf(id), 1);
        log.push(`delete ${id}`);
        await postInternal({ events: [roomDeleted(id)] });
      } else if (roll < 0.55) {
        const user = pick(users);
        const id = pick(rooms);
        where.set(user, id);
        log.push(`join ${user} ${id}`);
        await postInternal({ events: [joined(id, user)] });
      } else if (roll < 0.7) {
        const user = pick(users);
        const id = where.get(user);
        if (id === undefined) continue;
        where.delete(user);
        log.push(`leave ${user} ${id}`);
        await postInternal({ events: [left(id, user)] });
      } else if (roll < 0.82) {
        filter = random() < 0.3 ? undefined : rooms.filter(() => random() < 0.5);
        log.push(`setRooms ${JSON.stringify(filter)}`);
        client.setRooms(filter);
        if (random() < 0.4) {
          // A second change, or a cut, before the hub has answered the first.
          if (random() < 0.5) {
            filter = rooms.filter(() => random() < 0.5);
            log.push(`setRooms ${JSON.stringify(filter)} at once`);
            client.setRooms(filter);
          }
          await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 3)));
          log.push("cut");
          cut();
        }
      } else if (roll < 0.92) {
        log.push("cut");
        cut();
      } else if (faults.length > 0 && roll < 0.96) {
        const fault = pick(faults);
        log.push(fault.name);
        await fault.inject(random);
      } else {
        // Let the client catch up, then check the invariant mid-schedule.
        log.push("check");
        await settle();
      }
      if (random() < 0.3) await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 5)));
    }
    log.push("final check");
    await settle();
  } catch (error) {
    throw new Error(`seed ${seed}: ${(error as Error).message}\nschedule:\n${log.join("\n")}`);
  } finally {
    client.close();
    globalThis.fetch = realFetch;
  }

  /** Waits for the client to be live and to have seen a barrier event (room events always arrive), then compares. */
  async function settle(): Promise<void> {
    const barrier = newChannelId();
    await postInternal({ events: [roomCreated(barrier, "barrier"), roomDeleted(barrier)] });
    const target = (await hubRooms()).seq;
    try {
      await until(() => client.status === "live" && client.presence.seq >= target, `the client live at seq ${target}`);
    } catch (error) {
      throw new Error(`${(error as Error).message} (status ${client.status}, seq ${client.presence.seq}, ${client.state.detail ?? ""})`);
    }
    const hub = await hubRooms();
    // Rooms newly filtered fill in with the hub's answering snapshot, and the SDK paces filter changes to the
    // hub's budget (one per 2.5 s past a burst of 5): give the newest filter that long to be sent and answered.
    await until(() => JSON.stringify(byId(client.presence.getSnapshot().rooms)) === JSON.stringify(expected(hub, filter)), "the rooms to match", 4_000).catch(() => undefined);
    const mine = byId(client.presence.getSnapshot().rooms);
    const theirs = expected(hub, filter);
    if (JSON.stringify(mine) !== JSON.stringify(theirs)) {
      // Only the rooms that differ: the guild's rooms accumulate over the seeds.
      const text = (rooms: typeof mine) => new Set(rooms.map((room) => JSON.stringify(room)));
      const [ours, hubs] = [text(mine), text(theirs)];
      const only = (a: Set<string>, b: Set<string>) => [...a].filter((room) => !b.has(room)).join("\n  ");
      throw new Error(`client rooms != hub GET /rooms (filter ${JSON.stringify(filter)})\nclient only:\n  ${only(ours, hubs)}\nhub only:\n  ${only(hubs, ours)}`);
    }
  }
}

