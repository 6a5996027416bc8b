import { GatewayCloseCodes } from "discord-api-types/v10";

export type CloseAction = "resume" | "new-session" | "fatal";

/**
 * What a Discord close code means for the session. Anything not listed (including 1006, a dropped TCP
 * connection) is resumable.
 */
const CLOSE_ACTIONS: Partial<Record<number, { action: CloseAction; why: string }>> = {
  [GatewayCloseCodes.AuthenticationFailed]: { action: "fatal", why: "the bot token is invalid" },
  [GatewayCloseCodes.InvalidShard]: { action: "fatal", why: "invalid shard: check SHARD_COUNT and SHARD_IDS" },
  [GatewayCloseCodes.ShardingRequired]: { action: "fatal", why: "sharding required: raise SHARD_COUNT, or unset it to use the count Discord recommends" },
  [GatewayCloseCodes.InvalidAPIVersion]: { action: "fatal", why: "invalid API version" },
  [GatewayCloseCodes.InvalidIntents]: { action: "fatal", why: "invalid intents" },
  [GatewayCloseCodes.DisallowedIntents]: { action: "fatal", why: "disallowed intents: enable them in the developer portal" },
  [GatewayCloseCodes.InvalidSeq]: { action: "new-session", why: "invalid sequence on resume" },
  [GatewayCloseCodes.SessionTimedOut]: { action: "new-session", why: "session timed out" },
  1000: { action: "new-session", why: "closed normally, which ends the session" },
  1001: { action: "new-session", why: "going away, which ends the session" },
};

export function closeAction(code: number): { action: CloseAction; why: string } {
  return CLOSE_ACTIONS[code] ?? { action: "resume", why: `closed with ${code}` };
}
