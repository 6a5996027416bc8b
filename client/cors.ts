// A request the browser blocks for CORS fails like a network error (a TypeError, no status, no body), though
// retrying cannot help. A no-cors request (no custom headers, its response unreadable) still reaches a server that
// does not allow the page's origin: if it succeeds, the service is up and the origin is what is refused.

/**
 * The page's origin when the service at `url` answers but the browser refused its response to this page; undefined
 * when it does not answer either (a network failure), outside a browser, or for a same-origin URL.
 */
export async function corsBlockedOrigin(url: string, fetchImpl: typeof fetch): Promise<string | undefined> {
  const origin = (globalThis as { location?: { origin?: unknown } }).location?.origin;
  if (typeof origin !== "string" || origin === "null" || new URL(url).origin === origin) return undefined;
  // Not a literal in the call: runtimes whose RequestInit type lacks `mode` (workerd's) would refuse it.
  const probe = { mode: "no-cors", credentials: "omit", cache: "no-store" } as const;
  try {
    await fetchImpl(url, probe);
    return origin;
  } catch {
    return undefined;
  }
}

export function corsMessage(url: string, pageOrigin: string): string {
  return `${new URL(url).origin} answers, but the browser blocked its response to ${pageOrigin} (CORS): add ${pageOrigin} to the service's WEB_ORIGIN`;
}
