import { z } from "zod";
import { InvalidTokenError, type GatewayBotInfo } from "./shard.js";
import type { IdentifyQueue } from "./identify-queue.js";

const GatewayBotBody = z.object({
  url: z.string().min(1),
  shards: z.number().int().min(1),
  session_start_limit: z.object({
    remaining: z.number().int(),
    reset_after: z.number().min(0),
    max_concurrency: z.number().int().min(1).default(1),
  }),
});

/**
 * GET /gateway/bot: the gateway URL, the shard count Discord recommends and the session start limit, which it
 * also hands to the process's IDENTIFY pacing. A 401 is an InvalidTokenError (no retry will fix it).
 */
export function gatewayBotFetcher(apiBase: string, token: string, fetchImpl: typeof fetch, identifyQueue: IdentifyQueue): () => Promise<GatewayBotInfo> {
  return async () => {
    const response = await fetchImpl(`${apiBase}/gateway/bot`, { headers: { Authorization: `Bot ${token}` }, signal: AbortSignal.timeout(10_000) });
    if (response.status === 401) throw new InvalidTokenError("GET /gateway/bot answered 401");
    if (!response.ok) throw new Error(`GET /gateway/bot answered ${response.status}`);
    const body = GatewayBotBody.parse(await response.json());
    const limit = body.session_start_limit;
    identifyQueue.setMaxConcurrency(limit.max_concurrency);
    identifyQueue.noteSessionStartLimit(limit.remaining, limit.reset_after);
    return {
      url: body.url,
      shards: body.shards,
      sessionStartLimit: { remaining: limit.remaining, resetAfterMs: limit.reset_after, maxConcurrency: limit.max_concurrency },
    };
  };
}
