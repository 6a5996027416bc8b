import { SseReader } from "../../../test-support/sse-reader.js";
import { edgeFetch } from "./edge.js";

export { SseReader };

/** Opens the Worker's event stream at `path` inside the pool. */
export function openStream(path: string, token: string, headers: Record<string, string> = {}): Promise<SseReader> {
  return SseReader.open(edgeFetch, path, token, headers);
}
