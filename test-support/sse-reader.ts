export interface SseFrame {
  id?: string;
  event: string;
  data: string;
}

/**
 * Reads a text/event-stream response as a browser would (fields, blank-line dispatch, comments) and keeps every
 * frame and comment, with waits that fail naming what did not arrive.
 */
export class SseReader {
  readonly frames: SseFrame[] = [];
  readonly comments: string[] = [];
  /** Every `retry:` field's value, in order (the reconnection time the server advises, in ms). */
  readonly retries: number[] = [];
  ended = false;
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private readonly decoder = new TextDecoder();
  private buffer = "";
  private pending: Partial<SseFrame> & { data?: string } = {};
  private readonly pump: Promise<void>;

  constructor(readonly response: Response) {
    if (!response.body) throw new Error(`no body (status ${response.status})`);
    this.reader = response.body.getReader();
    this.pump = this.read();
  }

  /** Fetches `url` with a bearer token and reads its stream; fails with the body of anything but a 200. */
  static async open(fetcher: (url: string, init: RequestInit) => Promise<Response>, url: string, token: string, headers: Record<string, string> = {}): Promise<SseReader> {
    const response = await fetcher(url, { headers: { Authorization: `Bearer ${token}`, ...headers } });
    if (response.status !== 200) throw new Error(`stream refused: ${response.status} ${await response.text()}`);
    return new SseReader(response);
  }

  /** Frames parsed as envelopes, apart from a last `end` frame. */
  envelopes(): Array<{ type: string; event?: string; seq: number; payload: Record<string, unknown> }> {
    return this.frames.filter((f) => f.event !== "end").map((f) => JSON.parse(f.data));
  }

  async waitForFrames(count: number, what: string, timeoutMs = 3_000): Promise<SseFrame[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.frames.length < count) {
      if (this.ended || Date.now() > deadline) {
        throw new Error(`${this.ended ? "stream ended" : `timed out after ${timeoutMs} ms`} waiting for ${count} frames (${what}); got ${JSON.stringify(this.frames)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return this.frames;
  }

  async waitForEnd(timeoutMs = 3_000): Promise<void> {
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`the stream did not end within ${timeoutMs} ms; got ${JSON.stringify(this.frames)}`)), timeoutMs));
    await Promise.race([this.pump, timeout]);
  }

  async cancel(): Promise<void> {
    await this.reader.cancel();
  }

  private async read(): Promise<void> {
    try {
      for (;;) {
        const { done, value } = await this.reader.read();
        if (done) break;
        this.buffer += this.decoder.decode(value, { stream: true });
        this.parse();
      }
    } catch {
      // cancelled
    }
    this.ended = true;
  }

  private parse(): void {
    let newline: number;
    while ((newline = this.buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = this.buffer.slice(0, newline);
      this.buffer = this.buffer.slice(newline + (this.buffer.startsWith("\r\n", newline) ? 2 : 1));
      if (line === "") {
        if (this.pending.data !== undefined) this.frames.push({ event: "message", ...this.pending, data: this.pending.data });
        this.pending = {};
      } else if (line.startsWith(":")) {
        this.comments.push(line.slice(1).trim());
      } else {
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "data") this.pending.data = this.pending.data === undefined ? value : `${this.pending.data}\n${value}`;
        else if (field === "event") this.pending.event = value;
        else if (field === "id") this.pending.id = value;
        else if (field === "retry" && /^\d+$/.test(value)) this.retries.push(Number(value));
      }
    }
  }
}
