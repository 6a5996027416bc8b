import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ConfigError, edgeConfig } from "../src/config.js";

/** The deployment's bindings with some variables changed, as an operator's `[vars]` or secret would change them. */
const deployedWith = (changes: Record<string, string>) => ({ ...env, ...changes }) as Env;

/** The message `edge misconfigured` logs for these bindings, or undefined when they are accepted. */
function misconfiguration(changes: Record<string, string>): string | undefined {
  try {
    edgeConfig(deployedWith(changes));
    return undefined;
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
}

describe("edge configuration: a bad value is a misconfiguration naming the variable", () => {
  it("an inline JWT_PUBLIC_JWK that is not JSON", () => {
    expect(misconfiguration({ JWT_PUBLIC_JWK_URL: "", JWT_PUBLIC_JWK: "{not-json" })).toMatch(/JWT_PUBLIC_JWK/);
  });

  it("an inline JWT_PUBLIC_JWK that is a private key, without echoing it", () => {
    const message = misconfiguration({ JWT_PUBLIC_JWK_URL: "", JWT_PUBLIC_JWK: JSON.stringify({ kty: "oct", k: "c2VjcmV0LXZhbHVl" }) });
    expect(message).toMatch(/JWT_PUBLIC_JWK/);
    expect(message).not.toContain("c2VjcmV0LXZhbHVl");
  });

  it("a WEB_ORIGIN entry that is not an origin (a trailing slash or a path never matches a browser's Origin)", () => {
    expect(misconfiguration({ WEB_ORIGIN: "https://app.test/" })).toMatch(/WEB_ORIGIN/);
    expect(misconfiguration({ WEB_ORIGIN: "https://app.test,app.test" })).toMatch(/WEB_ORIGIN/);
  });

  it("accepts the documented forms: origins separated by commas, an inline public JWK", () => {
    expect(misconfiguration({ WEB_ORIGIN: "https://app.test, http://localhost:5173" })).toBeUndefined();
    expect(misconfiguration({})).toBeUndefined();
  });
});
