import { afterEach, describe, expect, it } from "vitest";
import { createRealtimeApi, RealtimeCorsError } from "../rest.js";

const PAGE = "http://127.0.0.1:5173";
const SERVICE = "http://127.0.0.1:8787";

/**
 * A browser's fetch as a page at PAGE sees it: CORS requests to the service fail with a bare TypeError (blocked for
 * this origin, or a network down: the page cannot tell); no-cors requests get an opaque response when the service
 * is reachable.
 */
function browserFetch(serviceUp: boolean) {
  const calls: Array<{ url: string; mode: string | undefined }> = [];
  const fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    calls.push({ url: String(input), mode: init?.mode });
    if (init?.mode === "no-cors" && serviceUp) return new Response(null, { status: 200 });
    throw new TypeError("Failed to fetch");
  };
  return { fetch: fetch as typeof globalThis.fetch, calls };
}

/** Runs with `location` set, as in a page. */
function inPage(): void {
  Object.defineProperty(globalThis, "location", { value: { origin: PAGE }, configurable: true });
}
afterEach(() => {
  delete (globalThis as { location?: unknown }).location;
});

const options = { baseUrl: SERVICE, getToken: async () => "token", backoff: { minMs: 1, maxMs: 5, factor: 2 } };

describe("a REST call the browser blocks for CORS", () => {
  it("fails at once, without retries, with an error that names the page's origin and WEB_ORIGIN", async () => {
    inPage();
    const { fetch, calls } = browserFetch(true);
    const api = createRealtimeApi({ ...options, fetch });
    const error = await api.listRooms().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RealtimeCorsError);
    expect((error as RealtimeCorsError).origin).toBe(PAGE);
    expect((error as Error).message).toBe(`${SERVICE} answers, but the browser blocked its response to ${PAGE} (CORS): add ${PAGE} to the service's WEB_ORIGIN`);
    expect(calls.filter((call) => call.mode !== "no-cors"), "one try: another cannot succeed").toHaveLength(1);
  });

  it("is still retried as a network error when the service does not answer at all", async () => {
    inPage();
    const { fetch, calls } = browserFetch(false);
    const api = createRealtimeApi({ ...options, fetch });
    const error = await api.createRoom({ name: "Friday" }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(TypeError);
    expect(calls.filter((call) => call.mode !== "no-cors")).toHaveLength(3);
  });

  it("is not probed outside a browser, or for the page's own origin", async () => {
    const { fetch, calls } = browserFetch(true);
    await createRealtimeApi({ ...options, fetch }).listRooms().catch(() => undefined);
    inPage();
    await createRealtimeApi({ ...options, baseUrl: PAGE, fetch }).listRooms().catch(() => undefined);
    expect(calls.filter((call) => call.mode === "no-cors")).toEqual([]);
  });
});
