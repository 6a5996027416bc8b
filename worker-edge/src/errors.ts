import type { ErrorBody, ErrorCode } from "../../protocol/index.js";
import type { z } from "zod";

export type ErrorStatus = 400 | 401 | 403 | 404 | 409 | 413 | 429 | 500 | 502 | 503;

/** An error that maps to a JSON response; anything else becomes a 500 with no detail. */
export class ApiError extends Error {
  constructor(
    readonly status: ErrorStatus,
    readonly code: ErrorCode,
    message: string,
    readonly extra: { issues?: ErrorBody["issues"]; retryAfterSeconds?: number } = {},
  ) {
    super(message);
  }

  toResponse(): Response {
    const body = { error: this.code, message: this.message, issues: this.extra.issues } satisfies ErrorBody;
    const headers: Record<string, string> = {};
    if (this.extra.retryAfterSeconds !== undefined) headers["Retry-After"] = String(this.extra.retryAfterSeconds);
    return Response.json(body, { status: this.status, headers });
  }

  /** A plain object that survives Durable Object RPC, which does not preserve subclasses. */
  toWire(): ApiErrorWire {
    return { apiError: true, status: this.status, code: this.code, message: this.message, extra: this.extra };
  }

  static fromWire(wire: ApiErrorWire): ApiError {
    return new ApiError(wire.status, wire.code, wire.message, wire.extra);
  }
}

export interface ApiErrorWire {
  apiError: true;
  status: ErrorStatus;
  code: ErrorCode;
  message: string;
  extra: { issues?: ErrorBody["issues"]; retryAfterSeconds?: number };
}

export function invalidInput(error: z.ZodError, what = "request body"): ApiError {
  const issues = error.issues.map((issue) => ({ path: issue.path.join("."), message: issue.message }));
  return new ApiError(400, "invalid_input", `invalid ${what}`, { issues });
}
