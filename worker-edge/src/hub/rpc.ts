import type { z } from "zod";
import type { CreateRoomBody } from "../../../protocol/index.js";
import type { ApiErrorWire } from "../errors.js";

/** What the Worker asks of a GuildHub over RPC. Errors travel as values: RPC does not keep error classes. */
export type HubResult<T> = { ok: true; value: T } | { ok: false; error: ApiErrorWire };

export interface CreateRoomRequest {
  guildId: string;
  userId: string;
  idempotencyKey?: string;
  body: z.output<typeof CreateRoomBody>;
}

export interface EndRoomRequest {
  guildId: string;
  userId: string;
  isAdmin: boolean;
  channelId: string;
}
