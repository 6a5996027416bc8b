export * from "./ids.js";
export * from "./events.js";
export * from "./rest.js";
export * from "./socket.js";
export * from "./internal.js";
export * from "./hmac.js";
export * from "./backoff.js";
export * from "./json.js";
export { ERROR_CODES } from "./codes.js";
