import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { AuthError, verifyAppToken } from "../src/auth.js";
import { edgeConfig } from "../src/config.js";
import { mintToken } from "./support/tokens.js";

describe("verified-token cache", () => {
  it("does not serve a token past its expiry, though it verified it before", async () => {
    const config = edgeConfig(env);
    // exp is whole seconds: 3 s leaves at least 2 for the first verification on a busy machine.
    const token = await mintToken({ sub: "210000000000000001", expiresIn: 3 });
    await expect(verifyAppToken(token, config)).resolves.toMatchObject({ userId: "210000000000000001" });
    const expiresAt = JSON.parse(atob(token.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/"))) as { exp: number };
    await new Promise((resolve) => setTimeout(resolve, expiresAt.exp * 1000 - Date.now() + 50));
    await expect(verifyAppToken(token, config)).rejects.toThrow(AuthError);
  });

  it("gives the same user for a token presented again, and never caches a rejection", async () => {
    const config = edgeConfig(env);
    const token = await mintToken({ sub: "210000000000000002", guilds: ["1"] });
    const first = await verifyAppToken(token, config);
    expect(await verifyAppToken(token, config)).toEqual(first);
    const foreign = await mintToken({ key: "foreign" });
    await expect(verifyAppToken(foreign, config)).rejects.toThrow(AuthError);
    await expect(verifyAppToken(foreign, config)).rejects.toThrow(AuthError);
  });
});
