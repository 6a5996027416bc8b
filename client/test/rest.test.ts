import { afterEach, describe, expect, it, vi } from "vitest";
import { createRealtimeApi, RealtimeApiError, REST_DEFAULTS } from "../rest.js";

const created = { channelId: "110000000000000001", name: "Friday", guildId: "100000000000000001" };
const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });
const networkError = () => new TypeError("fetch failed");

/** A fetch that answers each call with the next scripted outcome and records the requests. */
function scripted(...outcomes: Array<Response | Error | "hang">) {
  const requests: Request[] = [];
  const fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    requests.push(request);
    const outcome = outcomes.shift();
    if (outcome === undefined) throw new Error("no more scripted answers");
    if (outcome === "hang") {
      return new Promise((_resolve, reject) => {
        // As fetch does: an aborted signal rejects with its reason, also one aborted before the call.
        const signal = init!.signal!;
        if (signal.aborted) reject(signal.reason);
        signal.addEventListener("abort", () => reject(signal.reason));
      });
    }
    if (outcome instanceof Error) throw outcome;
    return outcome;
  };
  return { fetch: fetch as typeof globalThis.fetch, requests };
}

afterEach(() => {
  vi.useRealTimers();
});

const quick = { baseUrl: "https://realtime.test/", getToken: async () => "token", backoff: { minMs: 1, maxMs: 5, factor: 2 } };

describe("createRoom", () => {
  it("retries network errors, timeouts and 5xx with one generated idempotency key", async () => {
    const { fetch, requests } = scripted(networkError(), "hang", json(502, { error: "discord_error", message: "Discord failed" }), json(201, created));
    const api = createRealtimeApi({ ...quick, fetch, timeoutMs: 50, attempts: 4 });
    await expect(api.createRoom({ name: "Friday" })).resolves.toEqual(created);
    expect(requests).toHaveLength(4);
    const keys = new Set(requests.map((r) => r.headers.get("X-Idempotency-Key")));
    expect(keys.size).toBe(1);
    expect([...keys][0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(requests[0]!.url).toBe("https://realtime.test/create-room");
  });

  it("keeps the caller's idempotency key, and waits out Retry-After on 429 rate_limited", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout"] });
    const { fetch, requests } = scripted(json(429, { error: "rate_limited", message: "slow down" }, { "Retry-After": "2" }), json(201, created));
    const done = createRealtimeApi({ ...quick, fetch }).createRoom({}, { idempotencyKey: "key-1" });
    await vi.advanceTimersByTimeAsync(1_999);
    expect(requests).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    await expect(done).resolves.toEqual(created);
    expect(requests.map((r) => r.headers.get("X-Idempotency-Key"))).toEqual(["key-1", "key-1"]);
  });

  it("throws a Retry-After longer than maxRetryAfterMs to the caller instead of waiting", async () => {
    const { fetch, requests } = scripted(json(503, { error: "discord_unavailable", message: "later" }, { "Retry-After": "60" }));
    const api = createRealtimeApi({ ...quick, fetch });
    const error = await api.createRoom({}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RealtimeApiError);
    expect(error).toMatchObject({ status: 503, code: "discord_unavailable", retryAfterSeconds: 60 });
    expect(requests).toHaveLength(1);
  });

  it("never retries other 4xx, nor 429 too_many_rooms", async () => {
    for (const [status, error] of [[400, "invalid_input"], [401, "unauthorized"], [403, "forbidden"], [429, "too_many_rooms"]] as const) {
      const { fetch, requests } = scripted(json(status, { error, message: "no" }));
      await expect(createRealtimeApi({ ...quick, fetch }).createRoom({})).rejects.toMatchObject({ status, code: error });
      expect(requests, `${status} ${error}`).toHaveLength(1);
    }
  });

  it(`gives up after ${REST_DEFAULTS.attempts} tries by default with the last error`, async () => {
    const { fetch, requests } = scripted(networkError(), networkError(), json(500, { error: "internal", message: "oops" }), json(201, created));
    await expect(createRealtimeApi({ ...quick, fetch }).createRoom({})).rejects.toMatchObject({ status: 500, code: "internal" });
    expect(requests).toHaveLength(REST_DEFAULTS.attempts);
  });

  it("stops at once when the caller's signal aborts, during a request or a wait between tries", async () => {
    const hanging = scripted("hang");
    const controller = new AbortController();
    const pending = createRealtimeApi({ ...quick, fetch: hanging.fetch }).createRoom({}, { signal: controller.signal });
    controller.abort(new Error("user left the page"));
    await expect(pending).rejects.toThrow("user left the page");
    expect(hanging.requests).toHaveLength(1);

    const failing = scripted(json(429, { error: "rate_limited", message: "slow down" }, { "Retry-After": "5" }));
    const waiting = new AbortController();
    const api = createRealtimeApi({ ...quick, fetch: failing.fetch });
    const retrying = api.createRoom({}, { signal: waiting.signal });
    await new Promise((resolve) => setTimeout(resolve, 20));
    waiting.abort(new Error("cancelled"));
    await expect(retrying).rejects.toThrow("cancelled");
    expect(failing.requests).toHaveLength(1);
  });
});

describe("endRoom and listRooms", () => {
  it("does not retry endRoom (the service answers 404 for a room already ended)", async () => {
    const { fetch, requests } = scripted(networkError());
    await expect(createRealtimeApi({ ...quick, fetch }).endRoom("110000000000000001")).rejects.toThrow("fetch failed");
    expect(requests).toHaveLength(1);
    expect(requests[0]!.method).toBe("DELETE");
  });

  it("times out a request after timeoutMs", async () => {
    const { fetch } = scripted("hang");
    const error = await createRealtimeApi({ ...quick, fetch, timeoutMs: 20 }).endRoom("110000000000000001").catch((e: unknown) => e);
    expect(error).toMatchObject({ name: "TimeoutError" });
  });

  it("retries listRooms, a GET, like createRoom", async () => {
    const rooms = { guildId: created.guildId, seq: 3, rooms: [] };
    const { fetch, requests } = scripted(networkError(), json(200, rooms));
    await expect(createRealtimeApi({ ...quick, fetch }).listRooms()).resolves.toEqual(rooms);
    expect(requests).toHaveLength(2);
  });

  it("rejects a response that does not match the protocol, without retrying, and drops fields it does not know", async () => {
    const { fetch, requests } = scripted(json(200, { guildId: created.guildId, seq: -1, rooms: [] }), json(200, { ...created, secret: "x" }));
    const api = createRealtimeApi({ ...quick, fetch });
    await expect(api.listRooms()).rejects.toThrow("GET /rooms: the response does not match the protocol");
    expect(requests).toHaveLength(1);
    await expect(api.createRoom({ name: "Friday" })).resolves.toStrictEqual(created);
  });

  it("reads a malformed error body as code unknown", async () => {
    const { fetch } = scripted(json(403, { error: "teapot", message: "no" }));
    await expect(createRealtimeApi({ ...quick, fetch }).endRoom("110000000000000001")).rejects.toMatchObject({ status: 403, code: "unknown", message: "HTTP 403" });
  });
});
