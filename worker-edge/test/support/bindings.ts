import { exportJWK, generateKeyPair } from "jose";

export const TEST_GUILD_ID = "100000000000000001";
export const TEST_ISSUER = "https://idp.test";
export const TEST_AUDIENCE = "spell-coven-realtime";
export const TEST_HUB_SECRET = "test-hub-secret-0123456789abcdef0123456789abcdef";
export const TEST_BOT_TOKEN = "test-bot-token";
export const TEST_DISCORD_API_BASE = "https://discord.test/api/v10";

/**
 * Bindings for the edge tests: a fresh RS256 key pair per run, the public half as the Worker's inline JWK and
 * the private half handed to the tests (TEST_SIGNING_JWK) so they can mint tokens the Worker accepts.
 */
export async function edgeTestBindings(): Promise<Record<string, string>> {
  const { publicKey, privateKey } = await generateKeyPair("RS256", { extractable: true });
  const otherKey = await generateKeyPair("RS256", { extractable: true });
  return {
    PRIMARY_GUILD_ID: TEST_GUILD_ID,
    DISCORD_BOT_TOKEN: TEST_BOT_TOKEN,
    HUB_SECRET: TEST_HUB_SECRET,
    JWT_ISSUER: TEST_ISSUER,
    JWT_AUDIENCE: TEST_AUDIENCE,
    JWT_PUBLIC_JWK_URL: "",
    JWT_PUBLIC_JWK: JSON.stringify({ ...(await exportJWK(publicKey)), alg: "RS256", kid: "test-key" }),
    WEB_ORIGIN: "https://app.test,http://localhost:5173",
    DISCORD_API_BASE: TEST_DISCORD_API_BASE,
    ALLOWED_GUILD_IDS: "",
    ROOM_IDLE_TTL_SECONDS: "0",
    ADMIN_ROLE: "admin",
    TEST_SIGNING_JWK: JSON.stringify({ ...(await exportJWK(privateKey)), alg: "RS256", kid: "test-key" }),
    TEST_FOREIGN_JWK: JSON.stringify({ ...(await exportJWK(otherKey.privateKey)), alg: "RS256", kid: "test-key" }),
  };
}

export const SECOND_GUILD_ID = "100000000000000002";

/** Overrides for the multi-guild project: two served guilds and rooms that end after 1 s empty. */
export const multiGuildBindings = {
  ALLOWED_GUILD_IDS: SECOND_GUILD_ID,
  ROOM_IDLE_TTL_SECONDS: "1",
};

/** Overrides for the relay project: two relays hold every socket (a relay full at 25 sends the next to the other). */
export const relayBindings = {
  RELAY_SHARDS: "2",
  RELAY_MAX_SOCKETS: "25",
};

/** The relays of the test guild under relayBindings (no RELAY_REGIONS: one region, "any"). */
export const TEST_RELAY_NAMES = [`${TEST_GUILD_ID}/any/0`, `${TEST_GUILD_ID}/any/1`];

/** Overrides for the cadence project: flushes 150 ms apart under load, so publishes reliably wait for one. */
export const cadenceBindings = { FLUSH_CADENCE_MS: "150" };
