import type { z } from "zod";
import type { CreateRoomBody } from "../../../protocol/index.js";
import { ApiError, type ApiErrorWire } from "../errors.js";

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

export function failure(error: ApiError): { ok: false; error: ApiErrorWire } {
  return { ok: false, error: error.toWire() };
}

/** An ApiError as a result; anything else is a bug and propagates. */
export function failureOf(error: unknown): { ok: false; error: ApiErrorWire } {
  if (error instanceof ApiError) return failure(error);
  throw error;
}
