import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ChaosClient, type RoomView } from "./client.js";
import { Prng } from "../../test-support/prng.js";
import { RestLimits } from "../../protocol/limits.js";
import type { ProxyMode } from "./proxy.js";
import { ChaosStack, GUILD } from "./stack.js";

export const VOICE_USERS = Array.from({ length: 8 }, (_, i) => ({ id: `2100000000000000${String(i + 10)}`, username: `Player${i}` }));
export const CLIENT_USERS = Array.from({ length: 4 }, (_, i) => `2000000000000000${String(i + 10)}`);
const ADMIN = "200000000000000099";
export const SEED_CHANNELS = [
  { id: "110000000000000001", name: "Pod A", type: 2 as const, userLimit: 4 },
  { id: "110000000000000002", name: "Pod B", type: 2 as const, userLimit: 8 },
  { id: "110000000000000003", name: "general", type: 0 as const },
];

/** Everything the schedule can do; CHAOS_SKIP=name,name leaves some out (to minimise a failing schedule). */
export const OPS = [
  "join", "move", "leave", "mute", "create-room", "create-twice", "end-room", "end-forbidden", "discord-create", "discord-delete", "rename",
  "rest-fault", "pause",
  "gw-kill", "gw-term", "sim-drop", "sim-zombie", "sim-reconnect", "sim-invalid", "sim-close", "sim-break-resume", "sim-outage",
  "hub-reset", "hub-hang", "hub-drop-responses", "worker-restart", "client-cut", "client-fresh", "client-reauth", "end-twice",
] as const;
export type Op = (typeof OPS)[number];
const FAULTS = new Set<Op>([
  "pause",
  "gw-kill", "gw-term", "sim-drop", "sim-zombie", "sim-reconnect", "sim-invalid", "sim-close", "sim-break-resume", "sim-outage",
  "hub-reset", "hub-hang", "hub-drop-responses", "worker-restart", "client-cut", "client-fresh", "client-reauth",
]);

export interface RunOptions {
  seed: number;
  steps: number;
  checkEvery: number;
  quiesceMs: number;
  skip: Set<string>;
  /** An explicit schedule (CHAOS_SCRIPT) instead of the PRNG's choice of ops: "op" or "op:hold" per step. */
  script?: Array<{ op: Op | "voice"; hold?: number }>;
  maxWorkerRestarts: number;
  /** Fail on anomalies too (events that do not fit the presence they apply to, e.g. a join into a deleted room). */
  strict: boolean;
}

export interface RunResult {
  seed: number;
  steps: number;
  checkpoints: number;
  counts: Record<string, number>;
  failure?: string;
  anomalies: string[];
  ms: number;
}

interface Pending {
  kind: string;
  at: number;
  undo: () => Promise<void>;
}

interface TruthRoom {
  name: string;
  userLimit: number;
  parentId: string | null;
  members: Map<string, string | undefined>;
}

class InvariantFailure extends Error {}

/** Runs one seeded schedule against a fresh stack and checks the invariants at every checkpoint and at the end. */
export async function runSchedule(stack: ChaosStack, options: RunOptions): Promise<RunResult> {
  const started = Date.now();
  const rng = new Prng(options.seed);
  const schedule: string[] = [];
  const counts: Record<string, number> = {};
  const pending: Pending[] = [];
  const creators = new Map<string, string>(); // REST-created room → its creator
  let step = 0;
  let checkpoints = 0;
  let workerRestarts = 0;
  let renamesSeen = 0;
  const log = (line: string) => {
    const stamped = `#${step} ${line}`;
    schedule.push(stamped);
    stack.note(stamped);
  };
  const clients = CLIENT_USERS.map((sub, i) => new ChaosClient(`client${i}`, sub, stack.wsUrl, () => stack.token(sub), (line) => log(line)));
  const cutClients = new Set<ChaosClient>();
  const restViolations: string[] = [];

  const fail = (what: string, details: string[]): never => {
    throw new InvariantFailure([`${what} (seed ${options.seed}, step ${step})`, ...details].join("\n"));
  };

  const truth = (): Map<string, TruthRoom> => {
    const state = stack.sim.state();
    const users = new Map(state.users.map((u) => [u.id, u.username]));
    const rooms = new Map<string, TruthRoom>();
    for (const c of state.channels) {
      if (c.type !== 2) continue;
      rooms.set(c.id, { name: c.name, userLimit: c.user_limit ?? 0, parentId: c.parent_id ?? null, members: new Map() });
    }
    for (const v of state.voiceStates) rooms.get(v.channelId)?.members.set(v.userId, users.get(v.userId));
    return rooms;
  };
  const voiceRooms = () => stack.sim.state().channels.filter((c) => c.type === 2).map((c) => c.id);
  const userRoom = (userId: string) => stack.sim.state().voiceStates.find((v) => v.userId === userId);

  async function rest(method: string, path: string, sub: string, body?: unknown, roles?: string[], headers: Record<string, string> = {}): Promise<{ status: number; json: unknown }> {
    const token = await stack.token(sub, roles ? { roles } : {});
    const response = await fetch(`${stack.workerUrl}${path}`, {
      method,
      headers: { Authorization: `Bearer ${token}`, ...(body ? { "Content-Type": "application/json" } : {}), ...headers },
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(15_000),
    });
    const text = await response.text();
    let json: unknown = text;
    try {
      json = JSON.parse(text);
    } catch {
      // keep the text
    }
    return { status: response.status, json };
  }

  const has = (kind: string) => pending.some((p) => p.kind === kind);
  const later = (kind: string, steps: number, undo: () => Promise<void>) => pending.push({ kind, at: step + steps, undo });

  async function ensureClients(): Promise<void> {
    if (!stack.workerRunning) return;
    for (const client of clients) {
      if (cutClients.has(client) || client.ws) continue;
      log(`${client.name} reconnects with since=${client.lastSeq}`);
      await client.connect(true).catch((error: unknown) => log(`${client.name} reconnect failed: ${String(error)}`));
    }
    for (const client of clients) {
      // A socket the hub (or a restart) closed is reconnected by the next step, as the SDK would.
      if (client.ws && client.ws.readyState > 1) client.ws = undefined;
    }
  }

  async function runDue(all: boolean): Promise<void> {
    for (const item of [...pending]) {
      if (!all && item.at > step) continue;
      pending.splice(pending.indexOf(item), 1);
      await item.undo();
    }
  }

  async function voiceOp(forced?: "join" | "move" | "leave" | "mute"): Promise<void> {
    const inVoice = (u: { id: string }) => userRoom(u.id) !== undefined;
    const candidates = forced === undefined ? VOICE_USERS : VOICE_USERS.filter((u) => (forced === "join" ? !inVoice(u) : inVoice(u)));
    if (candidates.length === 0) return void log(`(no user can ${forced})`);
    const user = rng.pick(candidates);
    const current = userRoom(user.id);
    const rooms = voiceRooms();
    if (rooms.length === 0) return;
    if (!current) {
      if (options.skip.has("join")) return;
      const room = rng.pick(rooms);
      log(`join ${user.username} → ${room}`);
      count("join");
      stack.sim.setVoiceState(user.id, room);
      return;
    }
    const choice = forced && forced !== "join" ? forced : rng.weighted<"move" | "leave" | "mute">({
      move: options.skip.has("move") || rooms.length < 2 ? 0 : 4,
      leave: options.skip.has("leave") ? 0 : 3,
      mute: options.skip.has("mute") ? 0 : 3,
    });
    if (choice === "move") {
      const room = rng.pick(rooms.filter((r) => r !== current.channelId));
      log(`move ${user.username} ${current.channelId} → ${room}`);
      stack.sim.setVoiceState(user.id, room);
    } else if (choice === "leave") {
      log(`leave ${user.username} ${current.channelId}`);
      stack.sim.setVoiceState(user.id, null);
    } else {
      const deaf = rng.chance(0.3);
      log(`${deaf ? "deafen" : "mute"} toggle ${user.username} in ${current.channelId}`);
      stack.sim.setVoiceState(user.id, current.channelId, deaf ? { selfDeaf: !current.selfDeaf } : { selfMute: !current.selfMute });
    }
    count(choice);
  }

  function count(op: string): void {
    counts[op] = (counts[op] ?? 0) + 1;
  }

  async function roomOp(op: Op): Promise<void> {
    const rooms = voiceRooms();
    switch (op) {
      case "create-room": {
        const creator = rng.pick(CLIENT_USERS);
        const name = `chaos ${options.seed}-${step}`;
        const userLimit = rng.int(0, 12);
        const result = await rest("POST", "/create-room", creator, { name, userLimit }, undefined);
        log(`create-room by ${creator} "${name}" limit=${userLimit} → ${result.status} ${JSON.stringify(result.json)}`);
        if (result.status === 201) {
          const { channelId } = result.json as { channelId: string };
          creators.set(channelId, creator);
        } else if (result.status !== 429) {
          restViolations.push(`#${step} create-room answered ${result.status} ${JSON.stringify(result.json)}`);
        }
        return;
      }
      case "create-twice": {
        // Two racing creates with one X-Idempotency-Key: one room, both answers name it.
        const creator = rng.pick(CLIENT_USERS);
        const name = `twice ${options.seed}-${step}`;
        const key = `chaos-${options.seed}-${step}`;
        const before = voiceRooms().length;
        const [a, b] = await Promise.all([0, 1].map(() => rest("POST", "/create-room", creator, { name, userLimit: 2 }, undefined, { "X-Idempotency-Key": key })));
        log(`create-twice by ${creator} "${name}" key ${key} → ${a!.status} ${JSON.stringify(a!.json)} / ${b!.status} ${JSON.stringify(b!.json)}`);
        const ids = [a!, b!].filter((r) => r.status === 201).map((r) => (r.json as { channelId: string }).channelId);
        for (const id of ids) creators.set(id, creator);
        if (new Set(ids).size > 1) restViolations.push(`#${step} two creates with one X-Idempotency-Key made two rooms: ${ids.join(", ")}`);
        if ([a!, b!].some((r) => r.status !== 201 && r.status !== 429)) restViolations.push(`#${step} create-twice answered ${a!.status}/${b!.status}`);
        const made = voiceRooms().length - before;
        if (made > 1) restViolations.push(`#${step} two creates with one X-Idempotency-Key created ${made} Discord channels`);
        return;
      }
      case "end-twice": {
        // Two racing ends of one room by its creator: at least one 200, the other 200 or 404, one room.deleted.
        const mine = rooms.filter((r) => creators.has(r));
        if (mine.length === 0) return;
        const room = rng.pick(mine);
        const by = creators.get(room)!;
        const [a, b] = await Promise.all([0, 1].map(() => rest("DELETE", `/end-room/${room}`, by)));
        log(`end-twice ${room} by ${by} → ${a!.status} / ${b!.status}`);
        const statuses = [a!.status, b!.status];
        if (!statuses.includes(200) || statuses.some((s) => s !== 200 && s !== 404)) {
          restViolations.push(`#${step} two racing end-rooms answered ${statuses.join("/")} (${JSON.stringify(a!.json)} / ${JSON.stringify(b!.json)})`);
        }
        creators.delete(room);
        return;
      }
      case "end-forbidden": {
        const mine = rooms.filter((r) => creators.has(r));
        if (mine.length === 0) return;
        const room = rng.pick(mine);
        const other = CLIENT_USERS.find((u) => u !== creators.get(room))!;
        const result = await rest("DELETE", `/end-room/${room}`, other);
        log(`end-room ${room} by ${other}, not its creator → ${result.status}`);
        if (result.status !== 403) restViolations.push(`#${step} end-room by a user who is not the creator answered ${result.status} ${JSON.stringify(result.json)}`);
        return;
      }
      case "rest-fault": {
        // Discord refuses the next create: the edge answers 502, and no room appears anywhere.
        const creator = rng.pick(CLIENT_USERS);
        const status = rng.pick([500, 403]);
        stack.sim.scriptRest({ method: "POST", route: "POST /guilds/:id/channels", status, times: 1, body: { message: "scripted", code: status === 403 ? 50013 : 0 } });
        const before = voiceRooms().length;
        const result = await rest("POST", "/create-room", creator, { name: `refused ${options.seed}-${step}` });
        log(`create-room while Discord answers ${status} → ${result.status} ${JSON.stringify(result.json)}`);
        if (result.status !== 502) restViolations.push(`#${step} create-room while Discord answered ${status}: ${result.status} ${JSON.stringify(result.json)} (expected 502)`);
        if (result.status === 201) creators.set((result.json as { channelId: string }).channelId, creator);
        if (voiceRooms().length !== before && result.status !== 201) restViolations.push(`#${step} a refused create still made a channel`);
        return;
      }
      case "end-room": {
        const mine = rooms.filter((r) => creators.has(r));
        if (mine.length === 0) return;
        const room = rng.pick(mine);
        const asAdmin = rng.chance(0.3);
        const by = asAdmin ? ADMIN : creators.get(room)!;
        const result = await rest("DELETE", `/end-room/${room}`, by, undefined, asAdmin ? ["admin"] : undefined);
        log(`end-room ${room} by ${asAdmin ? "admin" : by} → ${result.status} ${JSON.stringify(result.json)}`);
        if (result.status !== 200) restViolations.push(`#${step} end-room ${room} by ${asAdmin ? "admin" : "its creator"} answered ${result.status} ${JSON.stringify(result.json)}`);
        creators.delete(room);
        return;
      }
      case "discord-create": {
        const channel = stack.sim.createChannel({ name: `discord ${options.seed}-${step}`, userLimit: rng.int(0, 10) });
        log(`discord-create ${channel.id} "${channel.name}" limit=${channel.user_limit}`);
        return;
      }
      case "discord-delete": {
        const room = rng.pick(rooms);
        log(`discord-delete ${room} (members: ${stack.sim.state().voiceStates.filter((v) => v.channelId === room).map((v) => v.userId).join(",") || "none"})`);
        stack.sim.deleteChannel(room);
        creators.delete(room);
        return;
      }
      case "rename": {
        const room = rng.pick(rooms);
        const limit = rng.chance(0.3) ? rng.int(0, 12) : undefined;
        const name = `renamed ${options.seed}-${step}`;
        log(`rename ${room} → "${name}"${limit !== undefined ? ` limit=${limit}` : ""} (Discord CHANNEL_UPDATE)`);
        stack.sim.updateChannel(room, { name, ...(limit !== undefined ? { userLimit: limit } : {}) });
        renamesSeen++;
        return;
      }
      default:
        return;
    }
  }

  async function faultOp(op: Op, scriptedHold?: number): Promise<void> {
    const hold = scriptedHold ?? rng.int(1, 10);
    switch (op) {
      case "pause": {
        // Nothing happens for a while, so backoffs, timeouts and resume windows run out under the pending faults.
        const ms = scriptedHold ?? rng.int(1_000, 8_000);
        log(`pause ${ms} ms (pending: ${pending.map((p) => p.kind).join(",") || "none"})`);
        await new Promise((resolve) => setTimeout(resolve, ms));
        break;
      }
      case "gw-kill":
      case "gw-term": {
        if (has("gateway") || !stack.gatewayRunning) return;
        log(`${op === "gw-kill" ? "SIGKILL" : "SIGTERM"} gateway-node; restart in ${hold} steps`);
        if (op === "gw-kill") await stack.killGateway();
        else await stack.stopGatewayGracefully();
        later("gateway", hold, async () => {
          log("restart gateway-node (same SESSION_FILE)");
          stack.startGateway();
        });
        break;
      }
      case "sim-drop":
        log("sim: drop the gateway TCP connection");
        stack.sim.dropConnections();
        break;
      case "sim-zombie":
        if (has("acks")) return;
        log(`sim: stop ACKing heartbeats (zombie) for ${hold} steps`);
        stack.sim.withholdAcks(true);
        later("acks", hold, async () => {
          log("sim: ACK heartbeats again");
          stack.sim.withholdAcks(false);
        });
        break;
      case "sim-reconnect":
        log("sim: op 7 reconnect");
        stack.sim.requestReconnect();
        break;
      case "sim-invalid": {
        const resumable = scriptedHold === undefined ? rng.chance(0.5) : scriptedHold === 1;
        log(`sim: op 9 invalid session d:${resumable}`);
        stack.sim.invalidateSession(resumable);
        break;
      }
      case "sim-close": {
        const code = scriptedHold ?? rng.pick([4000, 4007, 4009]);
        log(`sim: close ${code}`);
        stack.sim.closeConnections(code, "chaos");
        break;
      }
      case "sim-break-resume":
        if (has("resume-url")) return;
        log(`sim: break the resume URL and drop the connection; fix in ${hold} steps`);
        stack.sim.breakResumeUrl(true);
        stack.sim.dropConnections();
        later("resume-url", hold, async () => {
          log("sim: fix the resume URL");
          stack.sim.breakResumeUrl(false);
        });
        break;
      case "sim-outage":
        if (has("outage")) return;
        log(`sim: guild outage (GUILD_DELETE unavailable) for ${hold} steps`);
        stack.sim.guildOutage();
        later("outage", hold, async () => {
          log("sim: guild restored (GUILD_CREATE)");
          stack.sim.restoreGuild();
        });
        break;
      case "hub-reset":
      case "hub-hang":
      case "hub-drop-responses": {
        if (has("proxy")) return;
        const mode: ProxyMode = op === "hub-reset" ? "reset" : op === "hub-hang" ? "hang" : "drop-responses";
        log(`hub unreachable for gateway-node (${mode}) for ${hold} steps`);
        stack.proxy.set(mode);
        later("proxy", hold, async () => {
          log("hub reachable again");
          stack.proxy.set("open");
        });
        break;
      }
      case "worker-restart": {
        if (has("worker") || workerRestarts >= options.maxWorkerRestarts) return;
        workerRestarts++;
        log(`stop wrangler dev (SIGTERM); restart on the same port and --persist-to in ${hold} steps`);
        await stack.stopWorker();
        later("worker", hold, async () => {
          log("start wrangler dev again");
          const t = Date.now();
          await stack.startWorker();
          log(`wrangler dev ready after ${Date.now() - t} ms`);
        });
        break;
      }
      case "client-cut": {
        const victims = clients.filter((c) => c.ws && !cutClients.has(c) && rng.chance(0.5));
        if (victims.length === 0) return;
        for (const victim of victims) {
          log(`${victim.name} cut (last seq ${victim.lastSeq}); resumes in ${hold} steps`);
          victim.cut();
          cutClients.add(victim);
        }
        later("client-cut", hold, async () => {
          for (const victim of victims) {
            cutClients.delete(victim);
            if (!stack.workerRunning) continue;
            log(`${victim.name} resumes since=${victim.lastSeq}`);
            await victim.connect(true).catch((error: unknown) => log(`${victim.name} resume failed: ${String(error)}`));
          }
        });
        break;
      }
      case "client-reauth": {
        // A token refresh on a live socket: an auth.ok and nothing else (no snapshot, no replay).
        const client = rng.pick(clients);
        if (!client.connected) return;
        log(`${client.name} sends a fresh auth on its live socket`);
        await client.reauth();
        break;
      }
      case "client-fresh": {
        const client = rng.pick(clients);
        if (cutClients.has(client) || !stack.workerRunning) return;
        log(`${client.name} reconnects fresh (no since)`);
        client.lastSeq = undefined;
        await client.connect(false).catch((error: unknown) => log(`${client.name} connect failed: ${String(error)}`));
        break;
      }
      default:
        return;
    }
    count(op);
  }

  async function checkpoint(final: boolean): Promise<void> {
    checkpoints++;
    log(`checkpoint ${checkpoints}${final ? " (final)" : ""}: heal every fault and wait for quiescence`);
    await runDue(true);
    cutClients.clear();
    if (!stack.gatewayRunning) stack.startGateway();
    await ensureClients();
    const deadline = Date.now() + options.quiesceMs;
    let last: { hub: string[]; clients: Array<[ChaosClient, string[]]>; hubSeq: number | undefined; expected: string[] } | undefined;
    let stableSince: number | undefined;
    for (;;) {
      await ensureClients();
      const expected = render(truth());
      let hub: string[] = ["(no answer)"];
      let hubSeq: number | undefined;
      try {
        const result = await rest("GET", "/rooms", CLIENT_USERS[0]!);
        if (result.status === 200) {
          const body = result.json as { guildId: string; seq: number; rooms: Array<{ channelId: string; name: string; userLimit: number; parentId?: string | null; members: Array<{ userId: string; username?: string }> }> };
          hubSeq = body.seq;
          if (body.guildId !== GUILD) fail("GET /rooms names another guild", [body.guildId]);
          hub = render(new Map(body.rooms.map((r) => [r.channelId, { name: r.name, userLimit: r.userLimit, parentId: r.parentId ?? null, members: new Map(r.members.map((m) => [m.userId, m.username])) }])));
        } else hub = [`(status ${result.status})`];
      } catch (error) {
        hub = [`(error ${String(error)})`];
      }
      const views = clients.map((c): [ChaosClient, string[]] => [c, render(c.presence())]);
      last = { hub, clients: views, hubSeq, expected };
      const same = (a: string[]) => a.join("\n") === expected.join("\n");
      const ok = same(hub) && views.every(([c, v]) => same(v) && c.connected && c.lastSeq === hubSeq);
      if (ok) {
        stableSince ??= Date.now();
        if (Date.now() - stableSince >= 1_000) break;
      } else stableSince = undefined;
      if (Date.now() > deadline) break;
      // One GET /rooms per interval stays within the observing user's rate.
      await new Promise((resolve) => setTimeout(resolve, RestLimits.roomListIntervalMs));
    }
    const violations = clients.flatMap((c) => c.violations);
    const problems: string[] = [];
    if (violations.length > 0) problems.push("seq invariant (no duplicate, no gap except at a snapshot):", ...violations.map((v) => `  ${v}`));
    const anomalies = [...new Set(clients.flatMap((c) => c.anomalies))];
    if (options.strict && anomalies.length > 0) problems.push("events that do not fit the presence they apply to (CHAOS_STRICT):", ...anomalies.slice(0, 20).map((a) => `  ${a}`));
    if (restViolations.length > 0) problems.push("REST answers that contradict the contract:", ...restViolations.map((v) => `  ${v}`));
    const { hub, clients: views, hubSeq, expected } = last;
    if (stableSince === undefined) {
      problems.push(`not converged within ${options.quiesceMs} ms after healing every fault:`);
      problems.push("  expected (simulator truth):", ...expected.map((l) => `    ${l}`));
      if (hub.join("\n") !== expected.join("\n")) problems.push(`  GET /rooms (seq ${hubSeq}) differs:`, ...diff(expected, hub).map((l) => `    ${l}`));
      for (const [client, view] of views) {
        if (view.join("\n") !== expected.join("\n")) problems.push(`  ${client.name} presence differs (lastSeq ${client.lastSeq}):`, ...diff(expected, view).map((l) => `    ${l}`));
        else if (client.lastSeq !== hubSeq || !client.connected) problems.push(`  ${client.name} at seq ${client.lastSeq}, connected ${client.connected}; hub at ${hubSeq}`);
      }
      for (const [client] of views) {
        if (client.anomalies.length > 0) problems.push(`  ${client.name} anomalies:`, ...client.anomalies.slice(-10).map((a) => `    ${a}`));
      }
      problems.push("  client0's last messages:", ...clients[0]!.recent.slice(-25).map((l) => `    ${l}`));
    }
    if (problems.length > 0) {
      fail(`invariant failed at checkpoint ${checkpoints}`, [
        ...problems,
        `schedule (last 40 of ${schedule.length} lines):`,
        ...schedule.slice(-40).map((l) => `  ${l}`),
        "gateway-node log (last 25 lines):",
        ...stack.gatewayTail.slice(-25).map((l) => `  ${l}`),
      ]);
    }
    log(`checkpoint ${checkpoints} ok: hub seq ${hubSeq}, ${expected.length} rooms agree on ${clients.length} clients`);
  }

  try {
    stack.note(`chaos seed ${options.seed} steps ${options.steps}`);
    await stack.sim.waitFor(() => stack.sim.state().identifyCount > 0, 30_000, "gateway-node's IDENTIFY");
    for (const client of clients) await client.connect(false);
    for (step = 1; step <= options.steps; step++) {
      await runDue(false);
      await ensureClients();
      const roomCount = voiceRooms().length;
      const weights: Partial<Record<Op | "voice", number>> = {
        voice: 50,
        "create-room": stack.workerRunning && roomCount < 10 ? 6 : 0,
        "end-room": stack.workerRunning ? 4 : 0,
        "create-twice": stack.workerRunning && roomCount < 10 ? 1.5 : 0,
        "end-forbidden": stack.workerRunning ? 1 : 0,
        "rest-fault": stack.workerRunning ? 1 : 0,
        "end-twice": stack.workerRunning ? 1 : 0,
        "client-reauth": stack.workerRunning ? 1 : 0,
        "hub-drop-responses": 2,
        pause: 1.5,
        "discord-create": roomCount < 10 ? 2 : 0,
        "discord-delete": roomCount > 2 ? 2 : 0,
        rename: 3,
        "gw-kill": 3, "gw-term": 1.5, "sim-drop": 2, "sim-zombie": 1.5, "sim-reconnect": 1.5, "sim-invalid": 1.5, "sim-close": 2,
        "sim-break-resume": 1, "sim-outage": 1, "hub-reset": 2, "hub-hang": 2, "worker-restart": 1, "client-cut": 3, "client-fresh": 1,
      };
      for (const op of options.skip) delete weights[op as Op];
      const scripted = options.script?.[step - 1];
      const op = scripted?.op ?? rng.weighted(weights);
      if (op === "voice") await voiceOp();
      else if (op === "join" || op === "move" || op === "leave" || op === "mute") await voiceOp(op);
      else if (FAULTS.has(op)) await faultOp(op, scripted?.hold);
      else {
        await roomOp(op);
        count(op);
      }
      await new Promise((resolve) => setTimeout(resolve, rng.int(20, 300)));
      if (step % options.checkEvery === 0 && step < options.steps) await checkpoint(false);
    }
    step = options.steps;
    await checkpoint(true);
    return { seed: options.seed, steps: options.steps, checkpoints, counts, anomalies: clients.flatMap((c) => c.anomalies), ms: Date.now() - started };
  } catch (error) {
    const message = error instanceof Error ? (error instanceof InvariantFailure ? error.message : `${error.stack ?? error.message}\nschedule (last 30):\n${schedule.slice(-30).join("\n")}`) : String(error);
    return { seed: options.seed, steps: step, checkpoints, counts, failure: message, anomalies: clients.flatMap((c) => c.anomalies), ms: Date.now() - started };
  } finally {
    writeFileSync(join(stack.dir, "schedule.log"), `${schedule.join("\n")}\n`);
    for (const client of clients) writeFileSync(join(stack.dir, `${client.name}.log`), `${client.history.join("\n")}\n`);
    for (const client of clients) client.cut();
    if (renamesSeen > 0) stack.note(`${renamesSeen} renames`);
  }
}

function render(rooms: Map<string, RoomView | TruthRoom>): string[] {
  return [...rooms.entries()]
    .map(([id, r]) => {
      const members = [...r.members.entries()].map(([u, name]) => `${u}(${name ?? "?"})`).sort().join(",");
      return `${id} "${r.name}" limit=${r.userLimit} parent=${r.parentId ?? "-"} [${members}]`;
    })
    .sort();
}

function diff(expected: string[], actual: string[]): string[] {
  const a = new Set(actual);
  const e = new Set(expected);
  return [...expected.filter((l) => !a.has(l)).map((l) => `- ${l}`), ...actual.filter((l) => !e.has(l)).map((l) => `+ ${l}`)];
}
