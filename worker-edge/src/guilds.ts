import { Snowflake } from "../../protocol/index.js";
import type { AppUser } from "./auth.js";
import { isMultiGuild, servedGuilds, type EdgeConfig } from "./config.js";
import { ApiError } from "./errors.js";

/**
 * The guild a request is about. Single-guild deployments always use PRIMARY_GUILD_ID and ignore what the
 * client sends; multi-guild ones take `guildId` from the client, which must be served and in the token's claim.
 */
export function requestGuild(requested: string | undefined, config: EdgeConfig, user: AppUser): string {
  if (!isMultiGuild(config) || requested === undefined) {
    if (isMultiGuild(config) && !user.guilds.includes(config.PRIMARY_GUILD_ID)) {
      throw new ApiError(403, "forbidden", "this token does not grant the guild");
    }
    return config.PRIMARY_GUILD_ID;
  }
  if (!Snowflake.safeParse(requested).success) throw new ApiError(400, "invalid_input", "guildId must be a snowflake");
  if (!servedGuilds(config).has(requested)) throw new ApiError(403, "forbidden", "guild not served here");
  if (!user.guilds.includes(requested)) throw new ApiError(403, "forbidden", "this token does not grant the guild");
  return requested;
}

/** The guild a socket connects to, from `?guildId=`; undefined when that guild is not served. */
export function socketGuildOrUndefined(url: URL, config: EdgeConfig): string | undefined {
  const requested = url.searchParams.get("guildId");
  if (!isMultiGuild(config) || requested === null) return config.PRIMARY_GUILD_ID;
  return servedGuilds(config).has(requested) ? requested : undefined;
}

export function socketGuild(url: URL, config: EdgeConfig): string {
  const guildId = socketGuildOrUndefined(url, config);
  if (guildId === undefined) throw new Error("socket for a guild that is not served");
  return guildId;
}
