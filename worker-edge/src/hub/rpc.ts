import type { z } from "zod";
import type { CreateRoomBody, LeaseGrant, LeaseRefusal } from "../../../protocol/index.js";
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

/** A batch from the gateway: applied (with the sender's renewed lease, when it named one), or refused by the lease (409). */
export type IngestOutcome =
  | { kind: "applied"; accepted: number; duplicates: number; lease?: LeaseGrant }
  | { kind: "refused"; refusal: LeaseRefusal };

/** A lease renewal or release: the lease now held (none after a release), or refused (409). */
export type LeaseOutcome = { kind: "granted"; lease?: LeaseGrant } | { kind: "refused"; refusal: LeaseRefusal };
