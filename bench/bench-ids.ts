import { fileURLToPath } from "node:url";

/** The repository root, where the benchmarks find the Worker, gateway-node and wrangler. */
export const ROOT = fileURLToPath(new URL("..", import.meta.url));
/** The guild every benchmark's Worker serves. */
export const GUILD = "100000000000000001";
/** The audience of the tokens the benchmarks sign (the Worker's JWT_AUDIENCE). */
export const AUDIENCE = "spell-coven-realtime";

/**
 * The `CF-Connecting-IP` a simulated client sends (workerd keeps one a client set; else it names the loopback
 * address): the edge admits at most SocketLimits.pendingSocketsPerAddress waiting sockets per address, and the
 * benchmarks' clients stand for as many users on their own networks.
 */
export function simulatedAddress(client: number): Record<string, string> {
  return { "CF-Connecting-IP": `10.${(client >> 16) & 255}.${(client >> 8) & 255}.${client & 255}` };
}
