/** The wire's codes, in a module without zod so the browser SDK can share them at no size cost. */

/** WebSocket close codes the hub sends. */
export const CloseCode = {
  normal: 1000,
  tooLarge: 1009,
  serviceRestart: 1012,
  overloaded: 1013,
  unauthorized: 4401,
  guildNotAllowed: 4403,
  authTimeout: 4408,
  badMessage: 4409,
  tooMany: 4429,
} as const;

/** The `error` field of every REST error body. */
export const ERROR_CODES = [
  "invalid_input",
  "unauthorized",
  "forbidden",
  "not_found",
  "payload_too_large",
  "rate_limited",
  "too_many_rooms",
  "discord_error",
  "discord_unavailable",
  "internal",
] as const;
