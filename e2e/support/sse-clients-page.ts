/**
 * The browser side of the standard-client tests, bundled by esbuild into a page served same-site with the Worker:
 * the browser's own EventSource with the stream cookie, and `@microsoft/fetch-event-source` with a bearer token,
 * each used the way their documentation shows. Every event, open and error is recorded for the test to read.
 * Tokens come from the test through `window.issueToken`, which Playwright exposes.
 */
import { fetchEventSource } from "@microsoft/fetch-event-source";

export interface SeenItem {
  /** An event by its name, or the client's own open and error notices. */
  kind: "event" | "open" | "error";
  event?: string;
  id?: string;
  data?: string;
  /** EventSource.readyState after an error: 0 reconnecting, 2 given up. */
  readyState?: number;
  status?: number;
}

export interface ClientsPage {
  seen: SeenItem[];
  /** POSTs /events/session with a fresh token (credentials included, so the browser keeps the cookie). */
  renewCookie(base: string): Promise<number>;
  /** Clears the cookie (DELETE /events/session). */
  clearCookie(base: string): Promise<number>;
  /** A native EventSource with credentials, reading the events named in `names`. */
  nativeEventSource(url: string, names: string[]): void;
  /** fetch-event-source with `Authorization: Bearer` from `issueToken()` on every connection; retries on every close. */
  fetchEventSource(url: string): void;
  close(): void;
}

declare global {
  interface Window {
    issueToken(): Promise<string>;
    clients: ClientsPage;
  }
}

const seen: SeenItem[] = [];
let source: EventSource | undefined;
let stop: AbortController | undefined;

/** An HTTP error no retry fixes: fetch-event-source must stop, as an EventSource does. */
class FinalRefusal extends Error {}
/** The stream ended: fetch-event-source resolves unless onclose throws, so this asks it to reconnect. */
class StreamClosed extends Error {}

async function postSession(base: string, method: "POST" | "DELETE"): Promise<number> {
  const headers: Record<string, string> = method === "POST" ? { Authorization: `Bearer ${await window.issueToken()}` } : {};
  const response = await fetch(`${base}/events/session`, { method, headers, credentials: "include" });
  return response.status;
}

window.clients = {
  seen,
  renewCookie: (base) => postSession(base, "POST"),
  clearCookie: (base) => postSession(base, "DELETE"),
  nativeEventSource(url, names) {
    source = new EventSource(url, { withCredentials: true });
    source.onopen = () => seen.push({ kind: "open" });
    source.onerror = () => seen.push({ kind: "error", readyState: source!.readyState });
    for (const name of names) {
      source.addEventListener(name, (event) => seen.push({ kind: "event", event: name, id: event.lastEventId, data: event.data }));
    }
  },
  fetchEventSource(url) {
    stop = new AbortController();
    void fetchEventSource(url, {
      signal: stop.signal,
      openWhenHidden: true,
      // A fresh token on every connection, as an app's token cache hands out; the library keeps Last-Event-ID.
      fetch: async (input, init) => fetch(input, { ...init, headers: { ...(init?.headers as Record<string, string>), Authorization: `Bearer ${await window.issueToken()}` } }),
      async onopen(response) {
        seen.push({ kind: "open", status: response.status });
        if (response.ok && response.headers.get("Content-Type")?.startsWith("text/event-stream")) return;
        throw new FinalRefusal(`HTTP ${response.status}`);
      },
      onmessage(message) {
        // The library calls this for every blank line: comments (the heartbeat) and the retry field come as
        // messages with no event name and no data, which an app skips.
        if (message.event === "" && message.data === "") return;
        seen.push({ kind: "event", event: message.event, id: message.id, data: message.data });
      },
      onclose() {
        throw new StreamClosed();
      },
      onerror(error) {
        seen.push({ kind: "error" });
        if (error instanceof FinalRefusal) throw error;
        return undefined; // wait the server's retry advice
      },
    }).catch(() => seen.push({ kind: "error", readyState: 2 }));
  },
  close() {
    source?.close();
    stop?.abort();
  },
};
