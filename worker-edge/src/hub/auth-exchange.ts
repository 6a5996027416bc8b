import { CloseCode, SocketLimits, takeToken, type ClientAuth } from "../../../protocol/index.js";
import { AuthError, verifyAppToken } from "../auth.js";
import * as clock from "../clock.js";
import { isMultiGuild, type EdgeConfig } from "../config.js";
import type { UserRates } from "./admission.js";
import type { SocketIndex } from "./socket-index.js";
import { connectionId, isOpen, type LiveAttachment } from "./sockets.js";

const ReauthPolicy = { capacity: SocketLimits.reauthBurst, refillPerSecond: 1000 / SocketLimits.reauthIntervalMs };

/** What an auth message makes of a socket. */
export type AuthOutcome =
  /** The socket is live with `attachment` (already set). */
  | { kind: "live"; attachment: LiveAttachment; refresh: boolean }
  | { kind: "refused"; code: number; reason: string }
  /** The socket closed while the token was verified (the auth deadline, under load): nothing more to do. */
  | { kind: "gone" };

export interface AuthContext {
  sockets: SocketIndex;
  config: EdgeConfig;
  guildId: string;
  /** This object's per-user budget of first auths (admission.ts): each costs a snapshot or a replay. */
  firstAuths: UserRates;
  /**
   * Puts the socket in its new state, in the same synchronous step as the cap check: a first auth makes it count
   * under the cap at once. The object decides what going live means (the hub indexes it; a relay may hold it until
   * its link is ready).
   */
  goLive(ws: WebSocket, attachment: LiveAttachment, refresh: boolean): void;
  /** The user's sockets under the cap besides `ws`, where the object holds some outside the index (a relay). */
  userSocketCount?(userId: string, ws: WebSocket): number;
}

/**
 * The auth exchange: a first auth makes a pending socket live, a later one refreshes a live socket's token. Checks
 * the re-auth rate, the token, the guild, the user (a refresh keeps it), the per-user socket cap and first-auth
 * rate, and sets the socket's new state, or says why it is refused.
 *
 * Verifying awaits, and may wait on I/O that many auths share (the key set's fetch), so auths of one user resume
 * together: what they spend or count is recorded in the same synchronous step that checks it — the re-auth
 * token before verifying, the first-auth token and the socket's place under the cap when it goes live — never
 * after another await.
 */
export async function exchangeAuth(context: AuthContext, ws: WebSocket, auth: ClientAuth, now: number): Promise<AuthOutcome> {
  const { sockets, config, guildId } = context;
  const previous = sockets.attachment(ws);
  if (previous?.phase === "live") {
    // Each auth is a signature check and an alarm write on the guild's one thread: bound how often.
    const reauth = takeToken(previous.reauth, ReauthPolicy, now);
    if (reauth.waitSeconds > 0) return refused(CloseCode.tooMany, "re-authenticating too often");
    sockets.set(ws, { ...previous, reauth: reauth.bucket });
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
  // Read again after verifying: another auth of this socket, or a room filter change, may have landed meanwhile.
  const latest = sockets.attachment(ws);
  const live = latest?.phase === "live" ? latest : undefined;
  if (live && live.userId !== user.userId) {
    return refused(CloseCode.unauthorized, "a refreshed token must be for the same user");
  }
  const count = context.userSocketCount ?? ((userId: string, except: WebSocket) => sockets.userSocketCount(userId, except));
  if (!live) {
    if (count(user.userId, ws) >= SocketLimits.socketsPerUser) return refused(CloseCode.tooMany, "too many connections for this user");
    // After the cap: a socket refused by it costs no catch-up, so it spends none of the budget.
    if (context.firstAuths.take(user.userId, clock.now()) > 0) return refused(CloseCode.tooMany, "connecting too often for this user");
  }
  const batch = auth.batch ?? live?.batch;
  const attachment: LiveAttachment = {
    phase: "live",
    conn: latest && "conn" in latest ? latest.conn : connectionId(),
    userId: user.userId,
    expiresAt: user.expiresAt * 1000,
    rooms: auth.rooms ?? live?.rooms,
    ...(batch ? { batch } : {}),
    reauth: live?.reauth ?? { tokens: ReauthPolicy.capacity, at: now },
    ...(live?.roomsBucket ? { roomsBucket: live.roomsBucket } : {}),
  };
  context.goLive(ws, attachment, live !== undefined); // in the same step as the count above: it takes its place under the cap
  return { kind: "live", attachment, refresh: live !== undefined };
}

function refused(code: number, reason: string): AuthOutcome {
  return { kind: "refused", code, reason };
}
