import { CloseCode } from "../../protocol/index.js";
import type { EdgeConfig, LocationHint } from "./config.js";
import { closeSocket } from "./hub/sockets.js";
import { errorFields, log } from "./log.js";
import { ANY_REGION, relayRegion, type ClientPlace } from "./relay/region.js";

/**
 * Which object a request goes to: the guild's hub (placed by HUB_LOCATION_HINT), and, when relays are configured,
 * the relay that holds a client's socket (by the client's region and a shard with room for it).
 */

/** The guild's hub. The hint only matters the first time the object is created: an object never moves. */
export function hubStub(env: Env, config: EdgeConfig, guildId: string) {
  const id = env.GUILD_HUB.idFromName(guildId);
  return config.HUB_LOCATION_HINT ? env.GUILD_HUB.get(id, { locationHint: config.HUB_LOCATION_HINT }) : env.GUILD_HUB.get(id);
}

/** The header a relay learns its name from (set by this Worker on every request it forwards). */
export const RELAY_NAME_HEADER = "X-Lobby-Relay";
/** A relay's answer when it holds RELAY_MAX_SOCKETS already: the Worker tries the region's next shard. */
export const RELAY_FULL_STATUS = 503;

export function relayName(guildId: string, region: string, shard: number): string {
  return `${guildId}/${region}/${shard}`;
}

export function relayStub(env: Env, name: string, region: string) {
  const id = env.LOBBY_RELAY.idFromName(name);
  return region === ANY_REGION ? env.LOBBY_RELAY.get(id) : env.LOBBY_RELAY.get(id, { locationHint: region as LocationHint });
}

/**
 * Opens a client's socket (a `/ws` upgrade, or the SSE relay's socket) on the object that serves it: the hub when
 * no relays are configured, else a relay of the client's region, trying its shards from a random one until one
 * has room. With every shard full the socket is completed only to be closed 4429.
 */
export async function openLobbySocket(env: Env, config: EdgeConfig, guildId: string, request: Request, place: ClientPlace | undefined): Promise<Response> {
  if (config.RELAY_SHARDS === 0) return hubStub(env, config, guildId).fetch(request);
  const region = relayRegion(place, config.RELAY_REGIONS);
  const first = Math.floor(Math.random() * config.RELAY_SHARDS);
  let unreachable = 0;
  for (let k = 0; k < config.RELAY_SHARDS; k++) {
    const name = relayName(guildId, region, (first + k) % config.RELAY_SHARDS);
    const headers = new Headers(request.headers);
    headers.set(RELAY_NAME_HEADER, name);
    try {
      const response = await relayStub(env, name, region).fetch(new Request(request.url, { headers }));
      if (response.status !== RELAY_FULL_STATUS) return response;
    } catch (error) {
      // A relay resetting (a deploy, a crash) fails the request in flight: the next one takes the socket.
      unreachable++;
      log("warn", "edge relay unreachable", { relay: name, ...errorFields(error) });
    }
  }
  if (unreachable === config.RELAY_SHARDS) return refusedSocket(CloseCode.serviceRestart, "relays unavailable");
  return refusedSocket(CloseCode.tooMany, "every relay of this region is full");
}

/** Completes the upgrade only to say why the socket cannot stay: browsers cannot read an HTTP error on /ws. */
export function refusedSocket(code: number, reason: string): Response {
  const { 0: client, 1: server } = new WebSocketPair();
  server.accept();
  closeSocket(server, code, reason);
  return new Response(null, { status: 101, webSocket: client });
}
