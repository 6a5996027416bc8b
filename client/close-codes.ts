import { CloseCode } from "../protocol/codes.js";

/**
 * What ends a connection's attempt leads to. `retry`: again, after the backoff (at once after a connection that
 * stayed live); `back-off`: again, after the longest backoff (told to slow down); `refresh-token`: again with a
 * fresh token, and a second refusal in a row stops as `unauthorized`; `forbidden`: stop as `failed`.
 */
export type CloseAction = "retry" | "back-off" | "refresh-token" | "forbidden";

/** The hub's close codes (and an SSE stream's `end` codes, and the HTTP statuses they stand for) that do not just retry. */
const CLOSE_ACTIONS: Partial<Record<number, { action: CloseAction; why?: string }>> = {
  [CloseCode.unauthorized]: { action: "refresh-token" },
  [CloseCode.guildNotAllowed]: { action: "forbidden", why: "guild not allowed for this account" },
  [CloseCode.tooMany]: { action: "back-off" },
};

/** A close code's action; the client's own reasons to drop a connection (no code) retry. */
export function closeAction(code: number | undefined): { action: CloseAction; why?: string } {
  return (code === undefined ? undefined : CLOSE_ACTIONS[code]) ?? { action: "retry" };
}
