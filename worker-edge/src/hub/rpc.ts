import type { z } from "zod";
import type { CreateRoomBody, LeaseGrant, LeaseRefusal } from "../../../protocol/index.js";
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

/** A batch from the gateway: applied (with the sender's renewed lease, when it named one), or refused by the lease (409). */
export type IngestOutcome =
  | { kind: "applied"; accepted: number; duplicates: number; lease?: LeaseGrant }
  | { kind: "refused"; refusal: LeaseRefusal }
  /** A part of a sync that can no longer complete: the events before it stand, the gateway sends a fresh sync. */
  | { kind: "failed"; error: ApiErrorWire };

/** A lease renewal or release: the lease now held (none after a release), or refused (409). */
export type LeaseOutcome = { kind: "granted"; lease?: LeaseGrant } | { kind: "refused"; refusal: LeaseRefusal };
