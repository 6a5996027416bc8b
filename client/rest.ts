import type * as z from "zod/mini";
import type * as protocol from "../protocol/index.js";
import { CreateRoomResponse, EndRoomResponse, ErrorBody, RoomsResponse } from "./schemas.js";

/** A failed API call, with the service's error code and, for 429/503, when to retry. */
export class RealtimeApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfterSeconds?: number,
    readonly issues?: protocol.ErrorBody["issues"],
  ) {
    super(message);
  }
}

export interface RealtimeApiOptions {
  /** The Worker's origin, e.g. https://realtime.example.com (the /api prefix works too). */
  baseUrl: string;
  getToken: () => Promise<string>;
  fetch?: typeof fetch;
}

/** Typed helpers for the REST routes. */
export function createRealtimeApi(options: RealtimeApiOptions) {
  const call = async <T>(schema: z.ZodMiniType<T>, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> => {
    const response = await (options.fetch ?? fetch)(`${options.baseUrl.replace(/\/$/, "")}${path}`, {
      method,
      headers: { Authorization: `Bearer ${await options.getToken()}`, ...(body === undefined ? {} : { "Content-Type": "application/json" }), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json: unknown = await response.json().catch(() => undefined);
    if (!response.ok) {
      const error = ErrorBody.safeParse(json);
      const retryAfter = Number(response.headers.get("Retry-After"));
      throw new RealtimeApiError(
        response.status,
        error.success ? error.data.error : "unknown",
        error.success ? error.data.message : `HTTP ${response.status}`,
        Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : undefined,
        error.success ? error.data.issues : undefined,
      );
    }
    return schema.parse(json);
  };
  return {
    createRoom: (body: protocol.CreateRoomBody, opts: { idempotencyKey?: string } = {}) =>
      call<protocol.CreateRoomResponse>(CreateRoomResponse, "POST", "/create-room", body, opts.idempotencyKey ? { "X-Idempotency-Key": opts.idempotencyKey } : {}),
    endRoom: (channelId: string) => call<{ ok: true }>(EndRoomResponse, "DELETE", `/end-room/${encodeURIComponent(channelId)}`),
    listRooms: () => call<protocol.RoomsResponse>(RoomsResponse, "GET", "/rooms"),
  };
}

export type RealtimeApi = ReturnType<typeof createRealtimeApi>;
