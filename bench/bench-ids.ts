import { fileURLToPath } from "node:url";

/** The repository root, where the benchmarks find the Worker, gateway-node and wrangler. */
export const ROOT = fileURLToPath(new URL("..", import.meta.url));
/** The guild every benchmark's Worker serves. */
export const GUILD = "100000000000000001";
/** The audience of the tokens the benchmarks sign (the Worker's JWT_AUDIENCE). */
export const AUDIENCE = "spell-coven-realtime";
