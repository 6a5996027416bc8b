import { exports } from "cloudflare:workers";
import { env } from "cloudflare:workers";
import { hubRequestHeaders, type ServerMessage, type StatsResponse } from "../../../protocol/index.js";
import { TEST_GUILD_ID, TEST_HUB_SECRET } from "./bindings.js";

export const BASE = "https://edge.test";

export function edgeFetch(path: string, init?: RequestInit): Promise<Response> {
  return exports.default.fetch(new Request(`${BASE}${path}`, init));
}

export function authed(token: string, init: RequestInit = {}): RequestInit {
  return { ...init, headers: { ...(init.headers as Record<string, string>), Authorization: `Bearer ${token}` } };
}

export function createRoom(token: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return edgeFetch("/create-room", {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
}

/** POSTs internal events signed as gateway-node would; `nowMs` is the sender's clock. */
export function postInternal(body: unknown, options: SignedPostOptions = {}): Promise<Response> {
  return postSigned("/internal/events", body, options);
}

/** POSTs a lease renewal or release (POST /internal/lease) signed as gateway-node would. */
export function postLease(body: unknown, options: SignedPostOptions = {}): Promise<Response> {
  return postSigned("/internal/lease", body, options);
}

/** The counters of the test guild's hub and of its relays (POST /internal/stats). */
export async function guildStats(guildId = TEST_GUILD_ID): Promise<StatsResponse> {
  const response = await postSigned("/internal/stats", { guildId }, {});
  if (response.status !== 200) throw new Error(`POST /internal/stats answered ${response.status}: ${await response.text()}`);
  return response.json<StatsResponse>();
}

type SignedPostOptions = { secret?: string; nowMs?: number; raw?: string };

async function postSigned(path: string, body: unknown, options: SignedPostOptions): Promise<Response> {
  const text = options.raw ?? JSON.stringify(body);
  const headers = await hubRequestHeaders(options.secret ?? TEST_HUB_SECRET, text, options.nowMs);
  return edgeFetch(path, { method: "POST", headers, body: text });
}

export function hubStub() {
  return env.GUILD_HUB.get(env.GUILD_HUB.idFromName(TEST_GUILD_ID));
}

let channelCounter = 400000000000000000n;
let userCounter = 500000000000000000n;
export const newChannelId = () => String(channelCounter++);
export const newUserId = () => String(userCounter++);

/** A browser-like client socket with a message log and waits that fail with what did not arrive. */
export class TestSocket {
  readonly messages: ServerMessage[] = [];
  readonly raw: string[] = [];
  closed: { code: number; reason: string } | undefined;
  private waiters: Array<() => void> = [];

  constructor(readonly ws: WebSocket) {
    ws.accept();
    ws.addEventListener("message", (event) => {
      const data = String(event.data);
      this.raw.push(data);
      if (data !== "pong") this.messages.push(JSON.parse(data) as ServerMessage);
      this.notify();
    });
    ws.addEventListener("close", (event) => {
      this.closed = { code: event.code, reason: event.reason };
      this.notify();
    });
  }

  static async open(query = "", headers: Record<string, string> = {}): Promise<TestSocket> {
    const response = await edgeFetch(`/ws${query}`, { headers: { Upgrade: "websocket", ...headers } });
    if (!response.webSocket) throw new Error(`no WebSocket in the upgrade response (status ${response.status})`);
    return new TestSocket(response.webSocket);
  }

  send(value: unknown): void {
    this.ws.send(typeof value === "string" ? value : JSON.stringify(value));
  }

  async auth(token: string, extra: Record<string, unknown> = {}): Promise<void> {
    this.send({ type: "auth", token, ...extra });
    await this.waitFor((m) => m.type === "ack", "auth.ok ack");
  }

  events(): Array<Extract<ServerMessage, { type: "event" }>> {
    return this.messages.filter((m): m is Extract<ServerMessage, { type: "event" }> => m.type === "event");
  }

  async waitFor(predicate: (message: ServerMessage) => boolean, what: string, timeoutMs = 3_000): Promise<ServerMessage> {
    const found = await this.until(() => this.messages.find(predicate), what, timeoutMs);
    return found;
  }

  async waitForEvents(count: number, what: string, timeoutMs = 3_000) {
    await this.until(() => this.events().length >= count || undefined, `${count} events (${what})`, timeoutMs);
    return this.events();
  }

  async waitForClose(timeoutMs = 3_000): Promise<{ code: number; reason: string }> {
    return this.until(() => this.closed, "the socket to close", timeoutMs);
  }

  private async until<T>(check: () => T | undefined, what: string, timeoutMs: number): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = check();
      if (value !== undefined) return value;
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; got ${JSON.stringify(this.raw)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(remaining, 50));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}
