/**
 * Reads and rewrites a WebSocket stream as it passes a proxy, for tests that need the hub to "say" something it
 * never says (an event kind from a future version). Only what such a test needs: the client's upgrade request is
 * stripped of `Sec-WebSocket-Extensions`, so no compression is negotiated and text frames stay readable; the
 * server's unfragmented, unmasked text frames go through `rewrite`; every other byte passes unchanged.
 */

const HEADER_END = Buffer.from("\r\n\r\n");
const OPCODE_TEXT = 0x1;

/** Removes the extension offer from the HTTP upgrade request (the bytes before the first blank line). */
export class UpgradeRequestFilter {
  private head: Buffer | undefined = Buffer.alloc(0);

  feed(chunk: Buffer): Buffer {
    if (!this.head) return chunk;
    const data = Buffer.concat([this.head, chunk]);
    const end = data.indexOf(HEADER_END);
    if (end < 0) {
      this.head = data;
      return Buffer.alloc(0);
    }
    this.head = undefined;
    const request = data.subarray(0, end).toString("latin1").split("\r\n").filter((line) => !/^sec-websocket-extensions:/i.test(line));
    return Buffer.concat([Buffer.from(request.join("\r\n"), "latin1"), data.subarray(end)]);
  }
}

/** Passes the HTTP response through, then re-frames each server text frame with `rewrite` applied to its text. */
export class ServerFrameRewriter {
  private inHead = true;
  private pending: Buffer = Buffer.alloc(0);
  /** Frames whose text `rewrite` changed. */
  rewritten = 0;

  constructor(private readonly rewrite: (text: string) => string) {}

  feed(chunk: Buffer): Buffer {
    this.pending = Buffer.concat([this.pending, chunk]);
    const out: Buffer[] = [];
    if (this.inHead) {
      const end = this.pending.indexOf(HEADER_END);
      if (end < 0) return Buffer.alloc(0);
      out.push(this.pending.subarray(0, end + HEADER_END.length));
      this.pending = this.pending.subarray(end + HEADER_END.length);
      this.inHead = false;
    }
    for (;;) {
      const frame = readFrame(this.pending);
      if (!frame) break;
      this.pending = this.pending.subarray(frame.size);
      if (frame.plainText) {
        const text = frame.payload.toString("utf8");
        const next = this.rewrite(text);
        if (next !== text) {
          this.rewritten++;
          out.push(textFrame(next));
          continue;
        }
      }
      out.push(frame.raw);
    }
    return Buffer.concat(out);
  }
}

interface Frame {
  size: number;
  raw: Buffer;
  payload: Buffer;
  /** A whole, uncompressed, unmasked text message: safe to re-frame. */
  plainText: boolean;
}

function readFrame(data: Buffer): Frame | undefined {
  if (data.length < 2) return undefined;
  const first = data[0]!;
  const second = data[1]!;
  let length = second & 0x7f;
  let offset = 2;
  if (length === 126) {
    if (data.length < 4) return undefined;
    length = data.readUInt16BE(2);
    offset = 4;
  } else if (length === 127) {
    if (data.length < 10) return undefined;
    length = Number(data.readBigUInt64BE(2));
    offset = 10;
  }
  const masked = (second & 0x80) !== 0;
  if (masked) offset += 4;
  const size = offset + length;
  if (data.length < size) return undefined;
  const fin = (first & 0x80) !== 0;
  const rsv = first & 0x70;
  const opcode = first & 0x0f;
  return { size, raw: data.subarray(0, size), payload: data.subarray(offset, size), plainText: fin && rsv === 0 && opcode === OPCODE_TEXT && !masked };
}

/** A single unmasked text frame, as a server sends it. */
function textFrame(text: string): Buffer {
  const payload = Buffer.from(text, "utf8");
  let header: Buffer;
  if (payload.length < 126) header = Buffer.from([0x80 | OPCODE_TEXT, payload.length]);
  else if (payload.length < 65_536) {
    header = Buffer.from([0x80 | OPCODE_TEXT, 126, 0, 0]);
    header.writeUInt16BE(payload.length, 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = 0x80 | OPCODE_TEXT;
    header[1] = 127;
    header.writeBigUInt64BE(BigInt(payload.length), 2);
  }
  return Buffer.concat([header, payload]);
}
