import { CloseCode, SocketLimits, takeToken, type ClientAuth } from "../../../protocol/index.js";
import { AuthError, verifyAppToken } from "../auth.js";
import { isMultiGuild, type EdgeConfig } from "../config.js";
import type { SocketIndex } from "./socket-index.js";
import { connectionId, isOpen, type LiveAttachment } from "./sockets.js";

const ReauthPolicy = { capacity: SocketLimits.reauthBurst, refillPerSecond: 1000 / SocketLimits.reauthIntervalMs };

/** What an auth message makes of a socket. */
export type AuthOutcome =
  | { kind: "live"; attachment: LiveAttachment; refresh: boolean }
  | { kind: "refused"; code: number; reason: string }
  /** The socket closed while the token was verified (the auth deadline, under load): nothing more to do. */
  | { kind: "gone" };

export interface AuthContext {
  sockets: SocketIndex;
  config: EdgeConfig;
  guildId: string;
}

/**
 * The auth exchange: a first auth makes a pending socket live, a later one refreshes a live socket's token. Checks
 * the re-auth rate, the token, the guild, the user (a refresh keeps it) and the per-user socket cap, and returns
 * the socket's new state, or why it is refused; it changes nothing itself.
 */
export async function exchangeAuth(context: AuthContext, ws: WebSocket, auth: ClientAuth, now: number): Promise<AuthOutcome> {
  const { sockets, config, guildId } = context;
  const previous = sockets.attachment(ws);
  let reauth;
  if (previous?.phase === "live") {
    // Each auth is a signature check and an alarm write on the guild's one thread: bound how often.
    reauth = takeToken(previous.reauth, ReauthPolicy, now);
    if (reauth.waitSeconds > 0) return refused(CloseCode.tooMany, "re-authenticating too often");
  }
  let user;
  try {
    user = await verifyAppToken(auth.token, config);
  } catch (error) {
    if (!(error instanceof AuthError)) throw error;
    return refused(CloseCode.unauthorized, error.message);
  }
  // Verifying awaits: under load the auth deadline may have closed the socket meanwhile.
  if (!isOpen(ws)) return { kind: "gone" };
  if (isMultiGuild(config) && !user.guilds.includes(guildId)) {
    return refused(CloseCode.guildNotAllowed, "guild not allowed for this token");
  }
  if (previous?.phase === "live" && previous.userId !== user.userId) {
    return refused(CloseCode.unauthorized, "a refreshed token must be for the same user");
  }
  if (previous?.phase !== "live" && sockets.userSocketCount(user.userId, ws) >= SocketLimits.socketsPerUser) {
    return refused(CloseCode.tooMany, "too many connections for this user");
  }
  // Read again after verifying: a room filter change may have landed meanwhile.
  const latest = sockets.attachment(ws);
  const batch = auth.batch ?? (previous?.phase === "live" ? previous.batch : undefined);
  const attachment: LiveAttachment = {
    phase: "live",
    conn: previous && "conn" in previous ? previous.conn : connectionId(),
    userId: user.userId,
    expiresAt: user.expiresAt * 1000,
    rooms: auth.rooms ?? (latest?.phase === "live" ? latest.rooms : undefined),
    ...(batch ? { batch } : {}),
    reauth: reauth?.bucket ?? { tokens: ReauthPolicy.capacity, at: now },
    ...(latest?.phase === "live" && latest.roomsBucket ? { roomsBucket: latest.roomsBucket } : {}),
  };
  return { kind: "live", attachment, refresh: previous?.phase === "live" };
}

function refused(code: number, reason: string): AuthOutcome {
  return { kind: "refused", code, reason };
}
