import { z } from "zod";
import { hubRequestHeaders, verifyHubSignature, SIGNATURE_HEADER, TIMESTAMP_HEADER } from "../../../protocol/index.js";

/**
 * The link from a relay (LobbyRelay) to its guild's hub: one WebSocket per relay, opened by the relay, accepted
 * (hibernatable) by the hub. Internal to the Worker: the public routes never forward this path, and the upgrade
 * is signed with HUB_SECRET besides.
 *
 * hub → relay, in order on the one socket:
 * - `{"type":"hello","seq":S,"from":F}` first: the hub is at seq S, and the events F..S follow as `events` frames
 *   (none when F = S + 1). A relay that linked with `since` gets F = since + 1 when the hub still holds every
 *   event after it (the gap is filled), else F = S + 1 and a snapshot at S follows (the relay starts over at S).
 *   A relay that linked fresh gets everything the hub buffers, for resumes of its own.
 * - `{"type":"events","events":[<event envelope>, …]}`: consecutive events; each flush of the hub is one frame.
 * - a snapshot message, exactly as a client gets it (`{"v":1,"type":"snapshot",…,"seq":S}`): after a hello that
 *   could not fill the gap, and in answer to a snapshot request, at the seq of the last event sent before it.
 *
 * relay → hub: `{"type":"snapshot"}`, a snapshot request (answered in order, as above).
 */
export const RELAY_LINK_PATH = "/relay-link";

/** Events per `events` frame when the hub sends its buffer: well under the runtime's message size limit. */
export const HISTORY_CHUNK = 200;

export const RelayRequest = z.discriminatedUnion("type", [z.object({ type: z.literal("snapshot") }).strict()]);
export type RelayRequest = z.infer<typeof RelayRequest>;

export interface LinkHello {
  type: "hello";
  seq: number;
  from: number;
}

/** The relay's name: `<guildId>/<region>/<shard>`; the hub only reads it as the link's identity. */
const RelayName = z.string().regex(/^\d{17,20}\/[a-z0-9-]{1,16}\/\d{1,4}$/);

export interface LinkRequest {
  relay: string;
  since: number | undefined;
}

function signedText(guildId: string, link: LinkRequest): string {
  return `${RELAY_LINK_PATH}\n${guildId}\n${link.relay}\n${link.since ?? ""}`;
}

/** The upgrade request a relay sends its hub. */
export async function linkRequest(secret: string, guildId: string, link: LinkRequest): Promise<Request> {
  const query = new URLSearchParams({ guildId, relay: link.relay, ...(link.since === undefined ? {} : { since: String(link.since) }) });
  const headers = await hubRequestHeaders(secret, signedText(guildId, link));
  return new Request(`https://guild-hub${RELAY_LINK_PATH}?${query}`, { headers: { ...headers, Upgrade: "websocket" } });
}

/** The relay and `since` of a link request, or undefined when it is not a well-formed, well-signed one. */
export async function readLinkRequest(request: Request, secrets: string[], guildId: string): Promise<LinkRequest | undefined> {
  const url = new URL(request.url);
  const relay = RelayName.safeParse(url.searchParams.get("relay"));
  const rawSince = url.searchParams.get("since");
  const since = rawSince === null ? undefined : Number(rawSince);
  if (!relay.success || (since !== undefined && !(Number.isSafeInteger(since) && since >= 0))) return undefined;
  const link = { relay: relay.data, since };
  const check = await verifyHubSignature(secrets, request.headers.get(TIMESTAMP_HEADER), request.headers.get(SIGNATURE_HEADER), signedText(guildId, link));
  return check.ok ? link : undefined;
}

/** An `events` frame of envelopes already serialised: concatenated, never parsed again. */
export function eventsFrame(messages: string[]): string {
  return `{"type":"events","events":[${messages.join(",")}]}`;
}
