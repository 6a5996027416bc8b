import { CloseCode } from "../../../protocol/index.js";
import { AuthError, bearerToken, verifyAppToken, type AppUser } from "../auth.js";
import type { EdgeConfig } from "../config.js";
import { ApiError } from "../errors.js";
import type { StreamRefusal } from "./response.js";
import { streamCookieToken } from "./session.js";

/** verifyAppToken's reason for a token whose `exp` has passed: the one failure a renewed token fixes. */
const TOKEN_EXPIRED = "token expired";

export type StreamCredential = { ok: true; user: AppUser; token: string } | { ok: false; refusal: StreamRefusal };

/**
 * Who asks for the stream: the Authorization header when there is one, else the stream cookie. What a renewal
 * fixes (no credential, which is also how a lapsed cookie arrives, or an expired token) is a refusal answered
 * in-stream; what no retry fixes (a malformed header, a token that is forged, or for another issuer or audience)
 * is a 401.
 */
export async function streamCredential(headers: Headers, config: EdgeConfig): Promise<StreamCredential> {
  const authorization = headers.get("Authorization");
  const token = authorization === null ? streamCookieToken(headers.get("Cookie")) : bearerToken(authorization);
  if (authorization !== null && token === undefined) throw new ApiError(401, "unauthorized", "malformed Authorization header; send Bearer <token>");
  if (token === undefined) return { ok: false, refusal: { code: CloseCode.unauthorized, reason: "missing credentials" } };
  try {
    return { ok: true, user: await verifyAppToken(token, config), token };
  } catch (error) {
    if (!(error instanceof AuthError)) throw error;
    if (error.message === TOKEN_EXPIRED) return { ok: false, refusal: { code: CloseCode.unauthorized, reason: TOKEN_EXPIRED } };
    throw new ApiError(401, "unauthorized", error.message);
  }
}
