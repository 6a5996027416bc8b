import { backoffDelay, type BackoffPolicy } from "../protocol/backoff.js";
import { corsBlockedOrigin, corsMessage } from "./cors.js";
import { CreateRoomResponse, EndRoomResponse, ErrorBody, RoomsResponse } from "./rest-schemas.js";
import type * as protocol from "./types.js";
import { invalid, type Validator } from "./validate.js";

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

/**
 * The browser blocked the service's response to this page (CORS): the service answers, but does not allow this
 * page's origin (its WEB_ORIGIN). Not retried: no retry can succeed until the service's configuration changes.
 */
export class RealtimeCorsError extends Error {
  override readonly name = "RealtimeCorsError";
  constructor(
    readonly url: string,
    /** The page's origin, the one to add to WEB_ORIGIN. */
    readonly origin: string,
  ) {
    super(corsMessage(url, origin));
  }
}

export interface RealtimeApiOptions {
  /** The Worker's origin, e.g. https://realtime.example.com (the /api prefix works too). */
  baseUrl: string;
  getToken: () => Promise<string>;
  fetch?: typeof fetch;
  /** Each request's time limit, the response body included. */
  timeoutMs?: number;
  /** createRoom's and listRooms' tries in all (the first included). */
  attempts?: number;
  /** The wait between tries when the service gives no Retry-After. */
  backoff?: BackoffPolicy;
  /** The longest Retry-After waited out between tries; a longer one is thrown to the caller. */
  maxRetryAfterMs?: number;
}

/** Per call: an AbortSignal ends the request (and any wait between tries) with the signal's reason. */
export interface CallOptions {
  signal?: AbortSignal;
}

export const REST_DEFAULTS = {
  timeoutMs: 10_000,
  attempts: 3,
  backoff: { minMs: 250, maxMs: 2_000, factor: 2 },
  maxRetryAfterMs: 10_000,
} as const satisfies Partial<RealtimeApiOptions>;

/** Typed helpers for the REST routes. */
export function createRealtimeApi(options: RealtimeApiOptions) {
  const settings = { ...REST_DEFAULTS, ...options };
  const call = async <T>(
    schema: Validator<T>,
    method: string,
    path: string,
    { signal }: CallOptions,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<T> => {
    const limit = AbortSignal.timeout(settings.timeoutMs);
    const ended = signal ? AbortSignal.any([signal, limit]) : limit;
    const fetchImpl = options.fetch ?? fetch;
    const url = `${options.baseUrl.replace(/\/$/, "")}${path}`;
    let response: Response;
    try {
      response = await fetchImpl(url, {
        method,
        headers: { Authorization: `Bearer ${await options.getToken()}`, ...(body === undefined ? {} : { "Content-Type": "application/json" }), ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: ended,
      });
    } catch (error) {
      // A network failure and a CORS block look alike (a TypeError): tell them apart, as only one can heal by itself.
      const blockedFor = error instanceof TypeError && !ended.aborted ? await corsBlockedOrigin(url, fetchImpl) : undefined;
      throw blockedFor ? new RealtimeCorsError(url, blockedFor) : error;
    }
    const json: unknown = await response.json().catch((error: unknown) => {
      // A body cut short by the timeout or the caller's abort is that failure (retried or final), not an empty body.
      if (ended.aborted) throw ended.reason;
      if (error instanceof TypeError) throw error; // the network failed mid-body: retried like any network error
      return undefined;
    });
    if (!response.ok) {
      const error = ErrorBody(json);
      const body = error === invalid ? undefined : error;
      const retryAfter = Number(response.headers.get("Retry-After"));
      throw new RealtimeApiError(
        response.status,
        body?.error ?? "unknown",
        body?.message ?? `HTTP ${response.status}`,
        Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : undefined,
        body?.issues,
      );
    }
    const data = schema(json);
    // Not a TypeError: a response the service should not have sent is final, not retried like a network error.
    if (data === invalid) throw new Error(`${method} ${path}: the response does not match the protocol`);
    return data;
  };

  /** How long to wait before trying again after `error`, or undefined when another try cannot help. */
  const retryDelay = (error: unknown, attempt: number): number | undefined => {
    if (error instanceof RealtimeApiError) {
      // 429 too_many_rooms lasts until a room ends; other 4xx are the request's fault.
      if (error.status < 500 && (error.status !== 429 || error.code === "too_many_rooms")) return undefined;
      if (error.retryAfterSeconds !== undefined) {
        const ms = error.retryAfterSeconds * 1000;
        return ms <= settings.maxRetryAfterMs ? ms : undefined;
      }
    } else if (!(error instanceof Error) || (error.name !== "TypeError" && error.name !== "TimeoutError")) {
      // fetch fails with a TypeError on the network and a TimeoutError at timeoutMs; anything else (the caller's
      // abort, a getToken failure, a response that does not validate) is final.
      return undefined;
    }
    return backoffDelay(attempt, settings.backoff);
  };

  /** Runs `request` up to `attempts` times while its failures are worth retrying. */
  const withRetries = async <T>(request: () => Promise<T>, signal: AbortSignal | undefined): Promise<T> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await request();
      } catch (error) {
        const delay = retryDelay(error, attempt);
        if (delay === undefined || attempt >= settings.attempts || signal?.aborted) throw error;
        await new Promise<void>((resolve, reject) => {
          const onAbort = () => (clearTimeout(timer), reject(signal!.reason));
          // Removed after the wait: an app-wide signal would otherwise collect one listener per retry.
          const timer = setTimeout(() => (signal?.removeEventListener("abort", onAbort), resolve()), delay);
          signal?.addEventListener("abort", onAbort, { once: true });
        });
      }
    }
  };

  return {
    /**
     * Creates a room. Retried on network errors, timeouts, 5xx and 429 rate_limited (honouring Retry-After) with
     * one idempotency key for all tries, so the service creates at most one room.
     */
    createRoom: (body: protocol.CreateRoomBody, opts: { idempotencyKey?: string } & CallOptions = {}) => {
      const key = opts.idempotencyKey ?? crypto.randomUUID();
      return withRetries(
        () => call<protocol.CreateRoomResponse>(CreateRoomResponse, "POST", "/create-room", opts, body, { "X-Idempotency-Key": key }),
        opts.signal,
      );
    },
    /** Not retried: the service answers 404 for a room already ended, so a retry could not tell success from a wrong id. */
    endRoom: (channelId: string, opts: CallOptions = {}) => call<{ ok: true }>(EndRoomResponse, "DELETE", `/end-room/${encodeURIComponent(channelId)}`, opts),
    /** Retried like createRoom: a GET changes nothing. */
    listRooms: (opts: CallOptions = {}) => withRetries(() => call<protocol.RoomsResponse>(RoomsResponse, "GET", "/rooms", opts), opts.signal),
  };
}

export type RealtimeApi = ReturnType<typeof createRealtimeApi>;
