import { describe, expect, it } from "vitest";
import { edgeFetch, newChannelId, newUserId, postInternal } from "./support/edge.js";
import { roomCreated } from "./support/events.js";
import { openStream, SseReader } from "./support/sse.js";
import { mintToken } from "./support/tokens.js";

/**
 * The stream cookie: a browser's native EventSource cannot send an Authorization header, so the app trades its
 * bearer token for an HttpOnly cookie that only GET /events reads, and renews it the same way.
 */

const COOKIE = "__Secure-scr-events";
const APP = "https://app.test";

function postSession(token: string | undefined, path = "/events/session", headers: Record<string, string> = {}): Promise<Response> {
  return edgeFetch(path, { method: "POST", headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...headers } });
}

/** The cookies a response sets, by Path, each as its attributes (lower-cased names; the value under `value`). */
function setCookies(response: Response): Map<string, Record<string, string>> {
  const byPath = new Map<string, Record<string, string>>();
  for (const header of response.headers.getSetCookie()) {
    const [pair, ...attributes] = header.split(";").map((part) => part.trim());
    const [name, value] = [pair!.slice(0, pair!.indexOf("=")), pair!.slice(pair!.indexOf("=") + 1)];
    const fields: Record<string, string> = { name: name!, value: value! };
    for (const attribute of attributes) {
      const [key, val] = attribute.split("=");
      fields[key!.toLowerCase()] = val ?? "";
    }
    byPath.set(fields.path ?? "", fields);
  }
  return byPath;
}

async function streamWithCookie(path: string, token: string, headers: Record<string, string> = {}): Promise<SseReader> {
  const response = await edgeFetch(path, { headers: { Cookie: `${COOKIE}=${token}`, ...headers } });
  expect(response.status).toBe(200);
  return new SseReader(response);
}

describe("POST /events/session", () => {
  it("trades a bearer token for the stream cookie: HttpOnly, Secure, SameSite=Strict, scoped to the stream, expiring with the token", async () => {
    for (const path of ["/events/session", "/api/events/session"]) {
      const token = await mintToken({ sub: newUserId(), expiresIn: 300 });
      const response = await postSession(token, path);
      expect(response.status).toBe(204);
      const cookies = setCookies(response);
      expect([...cookies.keys()].sort()).toEqual(["/api/events", "/events"]);
      for (const cookie of cookies.values()) {
        expect(cookie).toMatchObject({ name: COOKIE, value: token, httponly: "", secure: "", samesite: "Strict" });
        expect(cookie.domain).toBeUndefined();
        expect(Number(cookie["max-age"])).toBeGreaterThan(290);
        expect(Number(cookie["max-age"])).toBeLessThanOrEqual(300);
      }
    }
  });

  it("needs a valid bearer token: a cookie alone, a bad or an expired token is a 401 and sets nothing", async () => {
    const good = await mintToken({ sub: newUserId() });
    for (const response of [
      await postSession(undefined),
      await postSession(undefined, "/events/session", { Cookie: `${COOKIE}=${good}` }),
      await postSession(await mintToken({ key: "foreign" })),
      await postSession(await mintToken({ expiresIn: -60 })),
    ]) {
      expect(response.status).toBe(401);
      expect(response.headers.getSetCookie()).toEqual([]);
    }
  });

  it("refuses a token too large for a browser to keep as a cookie, rather than set one the browser drops", async () => {
    const guilds = Array.from({ length: 220 }, (_, i) => String(300000000000000000n + BigInt(i)));
    const response = await postSession(await mintToken({ guilds }));
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: "invalid_input", message: expect.stringContaining("Authorization: Bearer") });
    expect(response.headers.getSetCookie()).toEqual([]);
  });

  it("takes no query parameters", async () => {
    const token = await mintToken();
    const response = await edgeFetch(`/events/session?token=${token}`, { method: "POST", headers: { Authorization: `Bearer ${token}` } });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: "invalid_input", message: expect.stringContaining('"token"') });
  });
});

describe("DELETE /events/session", () => {
  it("clears the cookie on both paths, without needing a token", async () => {
    const response = await edgeFetch("/events/session", { method: "DELETE" });
    expect(response.status).toBe(204);
    const cookies = setCookies(response);
    expect([...cookies.keys()].sort()).toEqual(["/api/events", "/events"]);
    for (const cookie of cookies.values()) expect(cookie).toMatchObject({ name: COOKIE, value: "", "max-age": "0", httponly: "", secure: "", samesite: "Strict" });
  });
});

describe("GET /events with the stream cookie", () => {
  it("streams for the cookie's user when no Authorization header is sent, at /events and /api/events", async () => {
    const token = await mintToken({ sub: newUserId() });
    for (const path of ["/events", "/api/events"]) {
      const stream = await streamWithCookie(path, token);
      expect((await stream.waitForFrames(1, "snapshot"))[0]!.event).toBe("snapshot");
      await stream.cancel();
    }
  });

  it("resumes from Last-Event-ID like a bearer stream", async () => {
    const token = await mintToken({ sub: newUserId() });
    const first = await streamWithCookie("/events", token);
    const [snapshot] = await first.waitForFrames(1, "snapshot");
    await first.cancel();
    const room = newChannelId();
    expect((await postInternal({ events: [roomCreated(room)] })).status).toBe(200);
    const resumed = await streamWithCookie("/events", token, { "Last-Event-ID": snapshot!.id! });
    const [missed] = await resumed.waitForFrames(1, "the missed event");
    expect(missed).toMatchObject({ id: String(Number(snapshot!.id) + 1), event: "room.created" });
    expect(JSON.parse(missed!.data)).toMatchObject({ payload: { channelId: room } });
    await resumed.cancel();
  });

  it("lets an Authorization header win over the cookie", async () => {
    const response = await edgeFetch("/events", { headers: { Cookie: `${COOKIE}=${await mintToken()}`, Authorization: `Bearer ${await mintToken({ key: "foreign" })}` } });
    expect(response.status).toBe(401);
  });

  it("answers a lapsed cookie's token in-stream with 4401, and a forged one with 401", async () => {
    const lapsed = await edgeFetch("/events", { headers: { Cookie: `${COOKIE}=${await mintToken({ expiresIn: -60 })}` } });
    const stream = new SseReader(lapsed);
    await stream.waitForEnd();
    expect(stream.frames.map((f) => [f.event, JSON.parse(f.data)])).toEqual([["end", { code: 4401, reason: "token expired" }]]);
    const forged = await edgeFetch("/events", { headers: { Cookie: `${COOKIE}=${await mintToken({ key: "foreign" })}` } });
    expect(forged.status).toBe(401);
  });

  it("authorizes nothing but reading the stream: the REST routes ignore it", async () => {
    const response = await edgeFetch("/rooms", { headers: { Cookie: `${COOKIE}=${await mintToken()}` } });
    expect(response.status).toBe(401);
  });
});

describe("credentials in CORS", () => {
  it("are allowed on the stream and its cookie endpoint for WEB_ORIGIN only, never with a wildcard", async () => {
    const preflight = await edgeFetch("/events/session", {
      method: "OPTIONS",
      headers: { Origin: APP, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization" },
    });
    expect(preflight.headers.get("Access-Control-Allow-Origin")).toBe(APP);
    expect(preflight.headers.get("Access-Control-Allow-Credentials")).toBe("true");
    expect(preflight.headers.get("Access-Control-Allow-Methods")).toContain("POST");

    const token = await mintToken({ sub: newUserId() });
    const stream = await streamWithCookie("/events", token, { Origin: APP });
    expect(stream.response.headers.get("Access-Control-Allow-Origin")).toBe(APP);
    expect(stream.response.headers.get("Access-Control-Allow-Credentials")).toBe("true");
    await stream.cancel();

    const session = await postSession(token, "/events/session", { Origin: APP });
    expect(session.headers.get("Access-Control-Allow-Credentials")).toBe("true");

    for (const [path, method] of [["/events", "GET"], ["/events/session", "POST"], ["/events/session", "DELETE"]] as const) {
      const foreign = await edgeFetch(path, { method: "OPTIONS", headers: { Origin: "https://evil.test", "Access-Control-Request-Method": method } });
      expect(foreign.headers.get("Access-Control-Allow-Origin")).toBeNull();
      expect(foreign.headers.get("Access-Control-Allow-Credentials")).toBeNull();
    }
    const foreignStream = await openStream("/events", token, { Origin: "https://evil.test" });
    expect(foreignStream.response.headers.get("Access-Control-Allow-Origin")).toBeNull();
    expect(foreignStream.response.headers.get("Access-Control-Allow-Credentials")).toBeNull();
    await foreignStream.cancel();
  });

  it("are not allowed on the REST routes, which take only bearer tokens", async () => {
    const preflight = await edgeFetch("/rooms", { method: "OPTIONS", headers: { Origin: APP, "Access-Control-Request-Method": "GET" } });
    expect(preflight.headers.get("Access-Control-Allow-Origin")).toBe(APP);
    expect(preflight.headers.get("Access-Control-Allow-Credentials")).toBeNull();
  });
});
