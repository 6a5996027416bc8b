import { describe, expect, it } from "vitest";
import { parseConfig } from "../src/config.js";

const VALID = {
  DISCORD_BOT_TOKEN: "a-bot-token",
  PRIMARY_GUILD_ID: "100000000000000001",
  HUB_ENDPOINT: "https://edge.example.com/internal/events",
  HUB_SECRET: "0123456789abcdef0123456789abcdef",
};

/** The one line the process prints before it exits 2, or undefined when the environment is accepted. */
function refusal(changes: Record<string, string>): string | undefined {
  const parsed = parseConfig({ ...VALID, ...changes });
  return parsed.ok ? undefined : parsed.message;
}

describe("gateway-node configuration: a value that cannot work stops the start, naming the variable", () => {
  it("a HUB_ENDPOINT that is not the edge's /internal/events (the edge's root, another scheme)", () => {
    expect(refusal({ HUB_ENDPOINT: "https://edge.example.com" })).toMatch(/^invalid configuration: HUB_ENDPOINT /);
    expect(refusal({ HUB_ENDPOINT: "https://edge.example.com/internal/lease" })).toMatch(/HUB_ENDPOINT/);
    expect(refusal({ HUB_ENDPOINT: "ftp://edge.example.com/internal/events" })).toMatch(/HUB_ENDPOINT/);
  });

  it("accepts the edge's /internal/events over https, or http on a private network, also under a path prefix", () => {
    expect(refusal({})).toBeUndefined();
    expect(refusal({ HUB_ENDPOINT: "http://127.0.0.1:8787/internal/events" })).toBeUndefined();
    expect(refusal({ HUB_ENDPOINT: "https://example.com/realtime/internal/events" })).toBeUndefined();
  });

  it("a DISCORD_GATEWAY_URL that is not a ws(s) URL", () => {
    expect(refusal({ DISCORD_GATEWAY_URL: "https://gateway.discord.gg" })).toMatch(/DISCORD_GATEWAY_URL/);
    expect(refusal({ DISCORD_GATEWAY_URL: "wss://gateway.discord.gg" })).toBeUndefined();
  });

  it("SHARD_IDS without SHARD_COUNT, or not numbers, says only what is wrong", () => {
    expect(refusal({ SHARD_IDS: "1" })).toBe("invalid configuration: SHARD_IDS needs SHARD_COUNT (every process must agree on it)");
    expect(refusal({ SHARD_IDS: "a,b", SHARD_COUNT: "2" })).toBe("invalid configuration: SHARD_IDS must be shard numbers separated by commas");
    expect(refusal({ SHARD_IDS: "0,2", SHARD_COUNT: "2" })).toBe("invalid configuration: SHARD_IDS must be below SHARD_COUNT");
  });

  it("a HEALTH_PORT or SHARD_COUNT that is not a number says what it must be", () => {
    expect(refusal({ HEALTH_PORT: "http" })).toBe("invalid configuration: HEALTH_PORT must be a port (0-65535)");
    expect(refusal({ SHARD_COUNT: "two" })).toBe("invalid configuration: SHARD_COUNT must be a whole number from 1");
  });
});
