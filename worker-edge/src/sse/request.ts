import { z } from "zod";
import { MAX_FILTER_ROOMS, Snowflake } from "../../../protocol/index.js";
import { ApiError, invalidInput } from "../errors.js";

/** What a stream request asks for, parsed like the socket's auth message (`since`, `rooms`). */
export interface StreamRequest {
  since?: number;
  rooms?: string[];
}

// Seqs are per guild and grow by one per event: 15 digits is far beyond any guild's lifetime.
const Seq = z.string().regex(/^\d{1,15}$/, "must be a non-negative integer").transform(Number);
// The same bound as the socket's `rooms`: the subscription lives in the hub socket's attachment.
const Rooms = z.array(Snowflake).max(MAX_FILTER_ROOMS);
/** A parameter name short and plain enough to echo in an error: a longer one could itself be a token. */
const ECHOABLE_NAME = /^[A-Za-z0-9_.-]{1,32}$/;

/**
 * Reads `Last-Event-ID` (what a reconnecting EventSource sends) or `?since=`, and `?rooms=` (comma-separated,
 * or repeated).
 */
export function parseStreamRequest(url: URL, headers: Headers): StreamRequest {
  const request: StreamRequest = {};
  const rawSince = headers.get("Last-Event-ID") ?? url.searchParams.get("since");
  if (rawSince !== null && rawSince !== "") {
    const since = Seq.safeParse(rawSince.trim());
    if (!since.success) throw invalidInput(since.error, headers.has("Last-Event-ID") ? "Last-Event-ID" : "since");
    request.since = since.data;
  }
  const rawRooms = url.searchParams.getAll("rooms");
  if (rawRooms.length > 0) {
    const rooms = Rooms.safeParse(rawRooms.flatMap((value) => value.split(",")).filter((id) => id !== ""));
    if (!rooms.success) throw invalidInput(rooms.error, "rooms");
    request.rooms = rooms.data;
  }
  return request;
}

/**
 * Refuses, before anything else (even authentication), a query parameter that is not in `allowed`, naming it
 * but never echoing its value: an allow-list, because a token in a URL ends up in logs, histories and Referers
 * under whatever name it is given.
 */
export function refuseUnknownParams(url: URL, allowed: readonly string[]): void {
  for (const name of url.searchParams.keys()) {
    if (allowed.includes(name)) continue;
    const named = ECHOABLE_NAME.test(name) ? `"${name}"` : "(name not shown)";
    throw new ApiError(400, "invalid_input", `unknown query parameter ${named}; a token goes in Authorization: Bearer or the stream cookie, never in the URL`);
  }
}
