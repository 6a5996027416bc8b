import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { DiscordFake } from "./support/discord-fake.js";
import { authed, createRoom, edgeFetch } from "./support/edge.js";
import { mintToken, publicKeyAsHmacToken, unsignedToken } from "./support/tokens.js";

beforeEach(() => new DiscordFake().install());
afterEach(() => vi.restoreAllMocks());

const routes = [
  { name: "POST /create-room", call: (token?: string) => createRoom(token ?? "", { name: "x" }, token ? {} : { Authorization: "" }) },
  { name: "DELETE /end-room/:id", call: (token?: string) => edgeFetch("/end-room/300000000000000999", authed(token ?? "", { method: "DELETE" })) },
  { name: "GET /rooms", call: (token?: string) => edgeFetch("/rooms", token ? authed(token) : {}) },
  { name: "GET /api/rooms", call: (token?: string) => edgeFetch("/api/rooms", token ? authed(token) : {}) },
];

const badTokens: Array<[string, () => Promise<string | undefined>]> = [
  ["missing", async () => undefined],
  ["expired", () => mintToken({ expiresIn: -120 })],
  ["for another audience", () => mintToken({ audience: "someone-else" })],
  ["from another issuer", () => mintToken({ issuer: "https://evil.test" })],
  ["unsigned (alg none)", async () => unsignedToken()],
  ["signed by an unknown key", () => mintToken({ key: "foreign" })],
  ["HS256 keyed with the public key", () => publicKeyAsHmacToken()],
  ["not a JWT", async () => "not-a-jwt"],
];

describe.each(routes)("$name", ({ call }) => {
  it.each(badTokens)("answers 401 with a JSON error for a token that is %s", async (_label, make) => {
    const response = await call(await make());
    expect(response.status).toBe(401);
    const body = await response.json<{ error: string; message: string }>();
    expect(body.error).toBe("unauthorized");
    expect(body.message).toBeTruthy();
  });

  it("accepts a valid token", async () => {
    const response = await call(await mintToken());
    expect(response.status).not.toBe(401);
    expect(response.status).toBeLessThan(500);
  });
});

describe("public routes", () => {
  it("serves /health and /api/health without a token", async () => {
    for (const path of ["/health", "/api/health"]) {
      const response = await edgeFetch(path);
      expect(response.status).toBe(200);
      expect(await response.json()).toMatchObject({ ok: true });
    }
  });

  it("answers unknown routes with a JSON 404", async () => {
    const response = await edgeFetch("/nope");
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ error: "not_found" });
  });

  it("allows only WEB_ORIGIN in CORS, and answers preflight without a token", async () => {
    const allowed = await edgeFetch("/rooms", {
      method: "OPTIONS",
      headers: { Origin: "https://app.test", "Access-Control-Request-Method": "GET" },
    });
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get("Access-Control-Allow-Origin")).toBe("https://app.test");
    const denied = await edgeFetch("/rooms", authed(await mintToken(), { headers: { Origin: "https://evil.test" } }));
    expect(denied.headers.get("Access-Control-Allow-Origin")).toBeNull();
  });
});
