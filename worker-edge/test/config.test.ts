import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ConfigError, DEFAULT_RELAY_MAX_SOCKETS, edgeConfig } from "../src/config.js";

/** The test bindings with some variables changed, as a fresh env object (the config is parsed once per env). */
const withVars = (vars: Record<string, string>) => edgeConfig({ ...env, ...vars } as Env);

describe("placement, cadence and relay configuration", () => {
  it("keeps every socket on the hub, unplaced, with the adaptive cadence, when nothing is set", () => {
    const config = withVars({ HUB_LOCATION_HINT: "", FLUSH_CADENCE_MS: "", RELAY_SHARDS: "", RELAY_REGIONS: "", RELAY_MAX_SOCKETS: "" });
    expect(config.HUB_LOCATION_HINT).toBeUndefined();
    expect(config.FLUSH_CADENCE_MS).toEqual({ kind: "adaptive" });
    expect(config.RELAY_SHARDS).toBe(0);
    expect(config.RELAY_REGIONS).toEqual([]);
    expect(config.RELAY_MAX_SOCKETS).toBe(DEFAULT_RELAY_MAX_SOCKETS);
  });

  it("reads a placed hub, a fixed cadence and relays in regions", () => {
    const config = withVars({ HUB_LOCATION_HINT: "enam", FLUSH_CADENCE_MS: "0", RELAY_SHARDS: "16", RELAY_REGIONS: "enam, weur", RELAY_MAX_SOCKETS: "1500" });
    expect(config.HUB_LOCATION_HINT).toBe("enam");
    expect(config.FLUSH_CADENCE_MS).toEqual({ kind: "fixed", ms: 0 });
    expect(config.RELAY_SHARDS).toBe(16);
    expect(config.RELAY_REGIONS).toEqual(["enam", "weur"]);
    expect(config.RELAY_MAX_SOCKETS).toBe(1500);
  });

  it("refuses a bad value with one error naming every bad variable", () => {
    const bad = () => withVars({ HUB_LOCATION_HINT: "mars", FLUSH_CADENCE_MS: "fast", RELAY_SHARDS: "-1", RELAY_REGIONS: "enam,atlantis", RELAY_MAX_SOCKETS: "0" });
    expect(bad).toThrow(ConfigError);
    for (const name of ["HUB_LOCATION_HINT", "FLUSH_CADENCE_MS", "RELAY_SHARDS", "RELAY_REGIONS", "RELAY_MAX_SOCKETS"]) expect(bad).toThrow(name);
  });
});
