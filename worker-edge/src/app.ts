import { Hono, type Context } from "hono";
import { z } from "zod";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import {
  CloseCode,
  CreateRoomBody,
  InternalEventsBody,
  LeaseRequestBody,
  StatsRequestBody,
  MAX_INTERNAL_BODY_BYTES,
  MAX_REST_BODY_BYTES,
  SIGNATURE_HEADER,
  SSE_QUERY_PARAMS,
  SseHeader,
  Snowflake,
  TIMESTAMP_HEADER,
  checkHubHeaders,
  internalEventList,
  parseJson,
  verifyHubSignature,
  type IdentifiedInternalEvent,
  type InternalEventsResponse,
  type LeaseGrant,
  type LeaseResponse,
} from "../../protocol/index.js";
import { AuthError, bearerToken, verifyAppToken, type AppUser } from "./auth.js";
import { readTextWithin } from "./body.js";
import { ConfigError, edgeConfig, hubSecrets, servedGuilds, type EdgeConfig } from "./config.js";
import { ApiError, invalidInput } from "./errors.js";
import { requestGuild, socketGuildOrUndefined } from "./guilds.js";
import { CLIENT_ADDRESS_HEADER } from "./hub/admission.js";
import type { HubResult } from "./hub/rpc.js";
import { errorFields, log } from "./log.js";
import { hubStub, openLobbySocket, refusedSocket, relayStub } from "./placement.js";
import type { ClientPlace } from "./relay/region.js";
import { streamCredential } from "./sse/credential.js";
import { relayHubStream } from "./sse/relay.js";
import { parseStreamRequest, refuseUnknownParams } from "./sse/request.js";
import { refusedStream } from "./sse/response.js";
import { clearedCookies, sessionCookies } from "./sse/session.js";

type EdgeEnv = { Bindings: Env; Variables: { config: EdgeConfig; user: AppUser; requestId: string } };

const IdempotencyKey = z.string().regex(/^[\x21-\x7e]{1,128}$/, "must be 1–128 visible ASCII characters");

function hub(c: Context<EdgeEnv>, guildId: string) {
  return hubStub(c.env, c.var.config, guildId);
}

/** Where Cloudflare says the client is (absent in some local runs): picks its relays' region. */
function clientPlace(c: Context<EdgeEnv>): ClientPlace | undefined {
  return c.req.raw.cf as ClientPlace | undefined;
}

/**
 * The body of a signed internal request, and when it was signed (unix s: the lease tells a replay by it). Nothing
 * of an unauthenticated body is read before the cheap checks pass, and never more than the limit.
 */
async function signedBody(c: Context<EdgeEnv>): Promise<{ body: string; signedAt: number }> {
  const timestamp = c.req.header(TIMESTAMP_HEADER) ?? null;
  const signature = c.req.header(SIGNATURE_HEADER) ?? null;
  const headers = checkHubHeaders(timestamp, signature);
  if (!headers.ok) throw new ApiError(401, "unauthorized", `signature rejected (${headers.reason})`);
  if (Number(c.req.header("Content-Length") ?? 0) > MAX_INTERNAL_BODY_BYTES) {
    throw new ApiError(413, "payload_too_large", "body too large");
  }
  const body = await readTextWithin(c.req.raw, MAX_INTERNAL_BODY_BYTES);
  if (body === undefined) throw new ApiError(413, "payload_too_large", "body too large");
  const check = await verifyHubSignature(hubSecrets(c.var.config), timestamp, signature, body);
  if (!check.ok) throw new ApiError(401, "unauthorized", `signature rejected (${check.reason})`);
  return { body, signedAt: Number(timestamp) };
}

function unwrap<T>(result: HubResult<T>): T {
  if (!result.ok) throw ApiError.fromWire(result.error);
  return result.value;
}

const requireUser = async (c: Context<EdgeEnv>, next: () => Promise<void>) => {
  const token = bearerToken(c.req.header("Authorization"));
  if (!token) throw new ApiError(401, "unauthorized", "missing bearer token");
  try {
    c.set("user", await verifyAppToken(token, c.var.config));
  } catch (error) {
    if (error instanceof AuthError) {
      log("info", "edge auth rejected", { requestId: c.var.requestId, path: c.req.path, reason: error.message });
      throw new ApiError(401, "unauthorized", error.message);
    }
    throw error;
  }
  await next();
};

/** The routes, mounted at the root and under /api. */
function routes(): Hono<EdgeEnv> {
  const api = new Hono<EdgeEnv>();

  api.get("/health", (c) => c.json({ ok: true, service: "spell-coven-realtime", time: new Date().toISOString() }));

  // The upgrade goes to the guild's hub untouched: no CORS or header-touching middleware on this route.
  api.get("/ws", async (c) => {
    if (c.req.header("Upgrade")?.toLowerCase() !== "websocket") {
      throw new ApiError(400, "invalid_input", "expected a WebSocket upgrade");
    }
    const guildId = socketGuildOrUndefined(new URL(c.req.url), c.var.config);
    if (guildId === undefined) return refusedSocket(CloseCode.guildNotAllowed, "guild not served");
    return openLobbySocket(c.env, c.var.config, guildId, c.req.raw, clientPlace(c));
  });

  api.post("/internal/events", async (c) => {
    const { body, signedAt } = await signedBody(c);
    const parsed = InternalEventsBody.safeParse(parseJson(body));
    if (!parsed.success) throw invalidInput(parsed.error, "events");

    const byGuild = new Map<string, IdentifiedInternalEvent[]>();
    for (const event of internalEventList(parsed.data)) {
      const list = byGuild.get(event.payload.guildId) ?? [];
      list.push(event);
      byGuild.set(event.payload.guildId, list);
    }
    const gateway = "events" in parsed.data ? parsed.data.gateway : undefined;
    const sender = gateway && { ...gateway, signedAt };
    // The lease is per guild, and so is its answer: a gateway's batch is one guild's events.
    if (sender && byGuild.size > 1) throw new ApiError(400, "invalid_input", "a batch naming a gateway carries one guild's events");
    const served = servedGuilds(c.var.config);
    let accepted = 0;
    let duplicates = 0;
    let lease: LeaseGrant | undefined;
    let unserved = false;
    for (const [guildId, events] of byGuild) {
      if (!served.has(guildId)) {
        accepted += events.length; // acknowledged (a gateway of an earlier release moves on), dropped, and said
        unserved = true;
        logUnservedGuild(c, guildId, sender?.instance, { events: events.length });
        continue;
      }
      const outcome = await hub(c, guildId).ingest(guildId, events, sender);
      if (outcome.kind === "refused") return c.json(outcome.refusal, 409);
      if (outcome.kind === "failed") throw ApiError.fromWire(outcome.error);
      accepted += outcome.accepted;
      duplicates += outcome.duplicates;
      lease = outcome.lease;
    }
    return c.json({ ok: true, accepted, duplicates, ...(lease ? { lease } : {}), ...(unserved ? { served: false as const } : {}) } satisfies InternalEventsResponse);
  });

  api.post("/internal/lease", async (c) => {
    const { body, signedAt } = await signedBody(c);
    const parsed = LeaseRequestBody.safeParse(parseJson(body));
    if (!parsed.success) throw invalidInput(parsed.error, "lease request");
    const { guildId, gateway, release } = parsed.data;
    if (!servedGuilds(c.var.config).has(guildId)) {
      logUnservedGuild(c, guildId, gateway.instance);
      return c.json({ ok: true, served: false } satisfies LeaseResponse); // as for its events
    }
    const outcome = await hub(c, guildId).gatewayLease(guildId, { ...gateway, signedAt }, release ?? false);
    if (outcome.kind === "refused") return c.json(outcome.refusal, 409);
    return c.json({ ok: true, ...(outcome.lease ? { lease: outcome.lease } : {}) } satisfies LeaseResponse);
  });

  // Counters of the guild's hub and relays (sends, flushes, tokens verified): for benchmarks and diagnosis.
  api.post("/internal/stats", async (c) => {
    const parsed = StatsRequestBody.safeParse(parseJson((await signedBody(c)).body));
    if (!parsed.success) throw invalidInput(parsed.error, "stats request");
    const { guildId } = parsed.data;
    if (!servedGuilds(c.var.config).has(guildId)) throw new ApiError(404, "not_found", "guild not served here");
    const hubStats = await hub(c, guildId).stats(guildId);
    const relays = await Promise.all(hubStats.relays.map(async (name) => relayStub(c.env, name, name.split("/")[1]!).stats()));
    return c.json({ hub: hubStats, relays });
  });

  const rest = new Hono<EdgeEnv>();
  const restCors = async (c: Context<EdgeEnv>, next: () => Promise<void>) => {
    const allowed = c.var.config.WEB_ORIGIN;
    return cors({
      origin: (origin) => (allowed.includes(origin) ? origin : null),
      allowMethods: ["GET", "POST", "DELETE", "OPTIONS"],
      allowHeaders: ["Authorization", "Content-Type", "X-Idempotency-Key", "Last-Event-ID"],
      exposeHeaders: ["Retry-After", SseHeader.guildId, SseHeader.seq],
      maxAge: 600,
    })(c, next);
  };
  // The stream and its cookie endpoint: credentials (the cookie) allowed, and only for WEB_ORIGIN.
  const streamCors = async (c: Context<EdgeEnv>, next: () => Promise<void>) => {
    const origin = c.req.header("Origin") ?? "";
    const allowed = c.var.config.WEB_ORIGIN.includes(origin);
    return cors({
      origin: () => (allowed ? origin : null),
      credentials: allowed,
      allowMethods: ["GET", "POST", "DELETE", "OPTIONS"],
      allowHeaders: ["Authorization", "Last-Event-ID"],
      exposeHeaders: [SseHeader.guildId, SseHeader.seq],
      maxAge: 600,
    })(c, next);
  };
  const onlyParams = (allowed: readonly string[]) => async (c: Context<EdgeEnv>, next: () => Promise<void>) => {
    refuseUnknownParams(new URL(c.req.url), allowed);
    await next();
  };
  // HEAD reaches a GET route; on the stream it would open a hub socket that nothing ever reads or closes.
  const noHead = async (c: Context<EdgeEnv>, next: () => Promise<void>) => {
    if (c.req.method === "HEAD") return c.body(null, 405, { Allow: "GET" });
    await next();
  };
  for (const path of ["/create-room", "/end-room/*", "/rooms"]) rest.use(path, restCors, requireUser);
  rest.use("/events", noHead, streamCors, onlyParams(SSE_QUERY_PARAMS));
  rest.use("/events/session", streamCors, onlyParams([]));

  rest.post(
    "/create-room",
    bodyLimit({
      maxSize: MAX_REST_BODY_BYTES,
      onError: () => {
        throw new ApiError(413, "payload_too_large", `body larger than ${MAX_REST_BODY_BYTES} bytes`);
      },
    }),
    async (c) => {
      const json = parseJson(await c.req.text());
      if (json === undefined) throw new ApiError(400, "invalid_input", "body must be JSON");
      const body = CreateRoomBody.extend({ guildId: Snowflake.optional() }).safeParse(json);
      if (!body.success) throw invalidInput(body.error);
      const rawKey = c.req.header("X-Idempotency-Key");
      const key = rawKey === undefined ? undefined : IdempotencyKey.safeParse(rawKey);
      if (key && !key.success) throw invalidInput(key.error, "X-Idempotency-Key");
      const user = c.var.user;
      const { guildId: requested, ...room } = body.data;
      const guildId = requestGuild(requested, c.var.config, user);
      const created = unwrap(
        await hub(c, guildId).createRoom({ guildId, userId: user.userId, idempotencyKey: key?.data, body: room }),
      );
      return c.json(created, 201);
    },
  );

  rest.delete("/end-room/:channelId", async (c) => {
    const channelId = Snowflake.safeParse(c.req.param("channelId"));
    if (!channelId.success) throw invalidInput(channelId.error, "channelId");
    const user = c.var.user;
    const guildId = requestGuild(c.req.query("guildId"), c.var.config, user);
    const isAdmin = user.roles.includes(c.var.config.ADMIN_ROLE);
    unwrap(await hub(c, guildId).endRoom({ guildId, userId: user.userId, isAdmin, channelId: channelId.data }));
    return c.json({ ok: true as const });
  });

  rest.get("/rooms", async (c) => {
    const guildId = requestGuild(c.req.query("guildId"), c.var.config, c.var.user);
    return c.json(unwrap(await hub(c, guildId).listRooms(guildId, c.var.user.userId)));
  });

  // Server-sent events: a relay of a socket to the guild's hub, so the hub stays hibernatable (docs/protocol.md).
  rest.get("/events", async (c) => {
    const request = parseStreamRequest(new URL(c.req.url), c.req.raw.headers);
    const credential = await streamCredential(c.req.raw.headers, c.var.config);
    if (!credential.ok) return refusedStream(credential.refusal, c.var.requestId);
    const guildId = requestGuild(c.req.query("guildId"), c.var.config, credential.user);
    const socket = { fetch: (request: Request) => openLobbySocket(c.env, c.var.config, guildId, request, clientPlace(c)) };
    const target = {
      hub: socket,
      guildId,
      token: credential.token,
      clientAddress: c.req.header(CLIENT_ADDRESS_HEADER),
      requestId: c.var.requestId,
      clientGone: c.req.raw.signal,
    };
    return relayHubStream(target, request);
  });

  // The stream cookie for a browser's native EventSource, set only with a bearer token (CSRF: a cookie cannot
  // set itself) and renewed the same way before the token expires.
  rest.post("/events/session", requireUser, (c) => {
    const token = bearerToken(c.req.header("Authorization"))!; // requireUser checked it
    for (const cookie of sessionCookies(token, c.var.user.expiresAt)) c.header("Set-Cookie", cookie, { append: true });
    return c.body(null, 204);
  });

  rest.delete("/events/session", (c) => {
    for (const cookie of clearedCookies()) c.header("Set-Cookie", cookie, { append: true });
    return c.body(null, 204);
  });

  api.route("/", rest);
  return api;
}

export function createApp(): Hono<EdgeEnv> {
  const app = new Hono<EdgeEnv>();
  app.use("*", async (c, next) => {
    // Only variables are set here: touching the response would break the /ws upgrade.
    c.set("requestId", c.req.header("cf-ray") ?? crypto.randomUUID());
    c.set("config", edgeConfig(c.env));
    await next();
  });
  const api = routes();
  app.route("/api", api);
  app.route("/", api);
  app.notFound((c) => c.json({ error: "not_found", message: "no such route" }, 404));
  app.onError((error, c) => {
    if (error instanceof ApiError) {
      log(error.status >= 500 ? "warn" : "info", "edge request refused", {
        requestId: c.var.requestId,
        method: c.req.method,
        path: c.req.path,
        status: error.status,
        error: error.code,
      });
      return error.toResponse();
    }
    if (error instanceof ConfigError) {
      log("error", "edge misconfigured", { detail: error.message });
      return c.json({ error: "internal", message: "service misconfigured" }, 500);
    }
    log("error", "edge request failed", { requestId: c.var.requestId, path: c.req.path, ...errorFields(error) });
    return c.json({ error: "internal", message: "internal error" }, 500);
  });
  return app;
}

/**
 * A gateway delivers a guild this deployment does not serve: answered 200 with `served: false` (gateway-node then
 * keeps the guild's events and reports it), and said here (the usual cause: the guild is in gateway-node's
 * ALLOWED_GUILD_IDS but not yet in the edge's).
 */
function logUnservedGuild(c: Context<EdgeEnv>, guildId: string, instance: string | undefined, fields: Record<string, unknown> = {}): void {
  log("warn", "edge does not serve this guild", { requestId: c.var.requestId, path: c.req.path, guildId, instance, ...fields });
}

