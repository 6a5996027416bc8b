import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";

/** What the outbox reads of a hub's answer. fetch's Response has all of it, so tests inject fetch-shaped hubs. */
export interface HubResponse {
  readonly ok: boolean;
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  json(): Promise<unknown>;
  text(): Promise<string>;
  /** Unread body to discard; null when the client has read it already. */
  readonly body: { cancel(): Promise<void> } | null;
}

/** One signed POST to a hub. */
export interface HubRequest {
  method: "POST";
  headers: Record<string, string>;
  body: string;
  /** Aborts the exchange (connecting, sending, reading the answer): the outbox's timeout. */
  signal: AbortSignal;
}

/** How the outbox reaches its hub: the global fetch fits, and so does hubHttpClient's. */
export type HubFetch = (url: string | URL, init: HubRequest) => Promise<HubResponse>;

export interface HubHttpClient {
  fetch: HubFetch;
  /** Closes the idle connections (the process stops). */
  close(): void;
}

/** A hub answers with a small JSON object (an acknowledgement, a lease, an error): a larger answer is not a hub's. */
export const MAX_HUB_RESPONSE_BYTES = 64 * 1024;

/**
 * As long as fetch's client (undici) keeps an idle connection: under load the outbox posts every few ms and keeps it;
 * an idle holder's renewals (every 10 s) open a new one.
 */
const IDLE_CONNECTION_MS = 4_000;

/**
 * The outbox's HTTP client: node:http(s) over keep-alive connections. fetch (undici) built web streams, a
 * Request and a Response for every POST, and under load that was most of the gateway's CPU; the outbox needs none
 * of it (a string body, a small JSON answer).
 */
export function hubHttpClient(options: { idleConnectionMs?: number } = {}): HubHttpClient {
  const agentOptions = { keepAlive: true, timeout: options.idleConnectionMs ?? IDLE_CONNECTION_MS };
  const http = new HttpAgent(agentOptions);
  const https = new HttpsAgent(agentOptions);
  return {
    fetch: (url, init) => post(new URL(url), init, http, https),
    close: () => {
      http.destroy();
      https.destroy();
    },
  };
}

function post(url: URL, init: HubRequest, http: HttpAgent, https: HttpsAgent): Promise<HubResponse> {
  const { signal } = init;
  if (signal.aborted) return Promise.reject(signal.reason);
  const secure = url.protocol === "https:";
  const body = Buffer.from(init.body, "utf8");
  return new Promise((resolve, reject) => {
    const request = (secure ? httpsRequest : httpRequest)(url, {
      method: init.method,
      agent: secure ? https : http,
      headers: { ...init.headers, "content-length": String(body.byteLength) },
    });
    const abort = () => request.destroy(signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason)));
    signal.addEventListener("abort", abort, { once: true });
    const fail = (error: Error) => {
      signal.removeEventListener("abort", abort);
      reject(signal.aborted ? signal.reason : error);
    };
    request.on("error", fail);
    request.on("response", (response) => {
      readBody(response).then((text) => {
        signal.removeEventListener("abort", abort);
        resolve(answer(response, text));
      }, fail);
    });
    request.end(body);
  });
}

/** The whole answer, or an error past MAX_HUB_RESPONSE_BYTES. */
function readBody(response: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    response.on("data", (chunk: Buffer) => {
      size += chunk.byteLength;
      if (size > MAX_HUB_RESPONSE_BYTES) return response.destroy(new Error(`the hub's answer is larger than ${MAX_HUB_RESPONSE_BYTES} bytes`));
      chunks.push(chunk);
    });
    response.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    response.on("error", reject);
    response.on("close", () => {
      if (!response.complete) reject(new Error("the hub's answer was cut off"));
    });
  });
}

function answer(response: IncomingMessage, text: string): HubResponse {
  const status = response.statusCode ?? 0;
  return {
    ok: status >= 200 && status < 300,
    status,
    headers: {
      get: (name) => {
        const value = response.headers[name.toLowerCase()];
        return value === undefined ? null : Array.isArray(value) ? value.join(", ") : value;
      },
    },
    json: async () => JSON.parse(text) as unknown,
    text: async () => text,
    body: null,
  };
}
