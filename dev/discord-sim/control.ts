import type { IncomingMessage, ServerResponse } from "node:http";
import { z } from "zod";
import { Snowflake } from "../../protocol/ids.js";
import { MAX_ROOM_NAME_LENGTH, MAX_ROOM_USER_LIMIT } from "../../protocol/limits.js";
import { isSnowflake } from "../../protocol/snowflake.js";
import { readJson, reply, type RestFault } from "./rest.js";
import type { ChannelObject, SimUser, VoiceFlags } from "./world.js";

const VoiceBody = z.object({
  userId: Snowflake,
  channelId: Snowflake.nullable(),
  selfMute: z.boolean().optional(),
  selfDeaf: z.boolean().optional(),
  selfVideo: z.boolean().optional(),
  selfStream: z.boolean().optional(),
  mute: z.boolean().optional(),
  deaf: z.boolean().optional(),
  username: z.string().min(1).max(32).optional(),
  /** Another guild of the bot than the primary one. */
  guildId: Snowflake.optional(),
});
const ChannelBody = z.object({
  name: z.string().min(1).max(MAX_ROOM_NAME_LENGTH),
  type: z.union([z.literal(0), z.literal(2), z.literal(13)]).optional(),
  parentId: Snowflake.nullable().optional(),
  userLimit: z.number().int().min(0).max(MAX_ROOM_USER_LIMIT).optional(),
});
const ChannelUpdateBody = z
  .object({
    name: z.string().min(1).max(MAX_ROOM_NAME_LENGTH).optional(),
    parentId: Snowflake.nullable().optional(),
    userLimit: z.number().int().min(0).max(MAX_ROOM_USER_LIMIT).optional(),
  })
  .refine((change) => Object.keys(change).length > 0, "name, parentId or userLimit");
const SENDABLE_CLOSE_CODES = new Set([1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014]);
const FaultBody = z.object({
  action: z.enum([
    "withhold-acks", "release-acks", "drop-tcp", "stall-handshakes", "release-handshakes", "reconnect",
    "invalid-session", "close", "break-resume-url", "fix-resume-url", "heartbeat-request", "outage", "remove-bot", "restore",
  ]),
  resumable: z.boolean().optional(),
  // Codes ws may put on the wire: 1005, 1006 and 1015 are reserved for reporting, never sent.
  code: z.number().int().min(1000).max(4999).refine((code) => code >= 3000 || SENDABLE_CLOSE_CODES.has(code), "not a close code a server may send").optional(),
  reason: z.string().max(123).optional(),
  /** drop-tcp: only the connections of this shard's sessions. */
  shard: z.number().int().min(0).optional(),
  /** outage, remove-bot, restore: another guild of the bot than the primary one. */
  guildId: Snowflake.optional(),
});
const RestFaultBody = z.object({
  method: z.enum(["GET", "POST", "PUT", "PATCH", "DELETE", "get", "post", "put", "patch", "delete"]),
  route: z.string().min(1).max(200),
  status: z.number().int().min(100).max(599),
  body: z.unknown().optional(),
  retryAfterS: z.number().min(0).optional(),
  times: z.number().int().min(1).max(1000).optional(),
  delayMs: z.number().int().min(0).max(60_000).optional(),
});

/** What the control API scripts in one guild of the bot. */
interface GuildControls {
  setVoiceState(userId: string, channelId: string | null, flags?: Partial<VoiceFlags>): void;
  guildOutage(): void;
  removeBot(): void;
  restoreGuild(): void;
}

/** What the control API drives: the simulator's scripting surface, declared here so this module needs no index.ts. */
export interface SimControls extends GuildControls {
  /** Sent whole as GET /_sim/state; the routes read its users and channels. */
  state(): { users: ReadonlyArray<{ id: string }>; channels: ReadonlyArray<{ id: string }> };
  guild(guildId: string): GuildControls;
  addUser(user: SimUser): void;
  createChannel(input: { name: string; type?: 0 | 2 | 13; parentId?: string | null; userLimit?: number }): ChannelObject;
  updateChannel(channelId: string, change: { name?: string; userLimit?: number; parentId?: string | null }): ChannelObject | undefined;
  deleteChannel(channelId: string): void;
  withholdAcks(on: boolean): void;
  dropConnections(shardId?: number): void;
  stallHandshakes(on: boolean): void;
  requestReconnect(): void;
  invalidateSession(resumable: boolean): void;
  closeConnections(code: number, reason?: string): void;
  breakResumeUrl(on: boolean): void;
  requestHeartbeat(): void;
  scriptRest(fault: RestFault): void;
}

const CORS = { "Access-Control-Allow-Origin": "*", "Access-Control-Allow-Headers": "Content-Type", "Access-Control-Allow-Methods": "GET, POST, PATCH, DELETE, OPTIONS" };

/** The control API under /_sim: script the world and the faults over HTTP (the demo page and browser tests use it). */
export async function handleControl(sim: SimControls, request: IncomingMessage, response: ServerResponse, path: string): Promise<void> {
  const method = request.method ?? "GET";
  const ok = (body: unknown = { ok: true }) => reply(response, 200, body, CORS);
  const bad = (message: string) => reply(response, 400, { error: "invalid_input", message }, CORS);
  if (method === "OPTIONS") {
    response.writeHead(204, CORS);
    return void response.end();
  }
  try {
    if (method === "GET" && path === "/_sim/state") return ok(sim.state());
    if (method === "POST" && path === "/_sim/voice") {
      const body = VoiceBody.safeParse(await readJson(request));
      if (!body.success) return bad(body.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
      if (body.data.username && !sim.state().users.some((u) => u.id === body.data.userId)) {
        sim.addUser({ id: body.data.userId, username: body.data.username });
      }
      const target = body.data.guildId ? sim.guild(body.data.guildId) : sim;
      const { userId, channelId, username: _username, guildId: _guild, ...flags } = body.data;
      target.setVoiceState(userId, channelId, flags);
      return ok();
    }
    if (method === "POST" && path === "/_sim/channels") {
      const body = ChannelBody.safeParse(await readJson(request));
      if (!body.success) return bad(body.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
      return ok(sim.createChannel(body.data));
    }
    const pathId = /^\/_sim\/channels\/([^/]+)$/.exec(path)?.[1];
    const channel = isSnowflake(pathId) ? pathId : undefined;
    if (method === "PATCH" && channel) {
      const body = ChannelUpdateBody.safeParse(await readJson(request));
      if (!body.success) return bad(body.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
      const updated = sim.updateChannel(channel, body.data);
      if (!updated) return reply(response, 404, { error: "not_found", message: `unknown channel ${channel}` }, CORS);
      return ok(updated);
    }
    if (method === "DELETE" && channel) {
      if (!sim.state().channels.some((c) => c.id === channel)) {
        return reply(response, 404, { error: "not_found", message: `unknown channel ${channel}` }, CORS);
      }
      sim.deleteChannel(channel);
      return ok();
    }
    if (method === "POST" && path === "/_sim/faults") {
      const body = FaultBody.safeParse(await readJson(request));
      if (!body.success) return bad(body.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
      applyFault(sim, body.data);
      return ok();
    }
    if (method === "POST" && path === "/_sim/rest-faults") {
      const body = RestFaultBody.safeParse(await readJson(request));
      if (!body.success) return bad(body.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
      sim.scriptRest(body.data);
      return ok();
    }
  } catch (error) {
    return bad(error instanceof Error ? error.message : String(error));
  }
  reply(response, 404, { error: "not_found", message: "no such control route" }, CORS);
}

function applyFault(sim: SimControls, fault: z.infer<typeof FaultBody>): void {
  switch (fault.action) {
    case "withhold-acks": return sim.withholdAcks(true);
    case "release-acks": return sim.withholdAcks(false);
    case "drop-tcp": return sim.dropConnections(fault.shard);
    case "stall-handshakes": return sim.stallHandshakes(true);
    case "release-handshakes": return sim.stallHandshakes(false);
    case "reconnect": return sim.requestReconnect();
    case "invalid-session": return sim.invalidateSession(fault.resumable ?? false);
    case "close": return sim.closeConnections(fault.code ?? 4000, fault.reason);
    case "break-resume-url": return sim.breakResumeUrl(true);
    case "fix-resume-url": return sim.breakResumeUrl(false);
    case "heartbeat-request": return sim.requestHeartbeat();
    case "outage": return (fault.guildId ? sim.guild(fault.guildId) : sim).guildOutage();
    case "remove-bot": return (fault.guildId ? sim.guild(fault.guildId) : sim).removeBot();
    case "restore": return (fault.guildId ? sim.guild(fault.guildId) : sim).restoreGuild();
  }
}
