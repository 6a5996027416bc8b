import { describe, expect, it } from "vitest";
import { RoomFilterBook } from "../room-filter.js";

const A = "110000000000000001";
const B = "110000000000000002";
const C = "110000000000000003";
const limits = { roomsBurst: 2, roomsIntervalMs: 1_000 };
/** The SDK waits a quarter more than the hub's interval between changes past the burst. */
const paced = 1_250;

/** A book on a connection that has authenticated at `now` with `rooms`, and had its snapshot. */
function settled(rooms: string[] | undefined, now = 0): RoomFilterBook {
  const book = new RoomFilterBook(rooms, limits);
  book.authSent(now);
  book.acknowledged(true);
  book.snapshot();
  return book;
}

describe("RoomFilterBook", () => {
  it("keeps the filter an auth carries, and has nothing to send until the app changes it", () => {
    const book = new RoomFilterBook([A], limits);
    expect(book.authSent(0)).toEqual([A]);
    book.acknowledged(true);
    expect(book.next(0)).toBeUndefined();
    expect(book.snapshot(), "the auth's snapshot answers the filter it carried").toBe(true);
    expect(book.exact).toBe(true);
  });

  it("ignores a change to the same rooms, and needs a snapshot after a real change until the hub answers it", () => {
    const book = settled([A, B]);
    expect(book.want([A, B])).toBe(false);
    expect(book.exact).toBe(true);
    expect(book.want([B])).toBe(true);
    expect(book.exact, "a replay now would be for the old filter").toBe(false);
    expect(book.next(0)).toEqual({ send: [B] });
    expect(book.next(0), "sent: nothing more to send").toBeUndefined();
    expect(book.snapshot()).toBe(true);
    expect(book.exact).toBe(true);
  });

  it("sends a burst, then waits for the hub's budget, sending only the newest filter once it allows", () => {
    const book = settled(undefined);
    book.want([A]);
    expect(book.next(0)).toEqual({ send: [A] });
    book.want([B]);
    expect(book.next(0)).toEqual({ send: [B] });
    book.want([C]);
    expect(book.next(0)).toEqual({ waitMs: paced });
    book.want(undefined); // coalesces with [C]: only the newest goes out
    expect(book.next(paced / 2)).toEqual({ waitMs: paced / 2 });
    expect(book.next(paced)).toEqual({ send: undefined });
    expect(book.next(paced)).toBeUndefined();
  });

  it("a new connection's budget starts full", () => {
    const book = settled(undefined);
    for (const rooms of [[A], [B]]) {
      book.want(rooms);
      book.next(0);
    }
    book.want([C]);
    expect(book.next(0)).toMatchObject({ waitMs: expect.any(Number) });
    expect(book.authSent(10), "the reconnect's auth carries the newest filter").toEqual([C]);
    book.want([A]);
    expect(book.next(10)).toEqual({ send: [A] });
  });

  it("two changes in a row: the first one's snapshot does not make the state exact for the second", () => {
    const book = settled([A]);
    book.want([B]);
    book.next(0);
    book.want([C]);
    book.next(0);
    expect(book.snapshot(), "the answer to [B]").toBe(false);
    expect(book.exact).toBe(false);
    expect(book.snapshot(), "the answer to [C]").toBe(true);
    expect(book.exact).toBe(true);
  });

  it("a change during auth: the auth's snapshot is for the old filter; the rooms message's answer is for the new one", () => {
    const book = new RoomFilterBook([A], limits);
    book.authSent(0);
    book.want([B]);
    book.acknowledged(true);
    expect(book.next(0)).toEqual({ send: [B] });
    expect(book.snapshot(), "the auth's answer, for [A]").toBe(false);
    expect(book.snapshot(), "the answer to [B]").toBe(true);
  });

  it("a token refresh's ack owes no snapshot", () => {
    const book = settled([A]);
    book.want([B]);
    book.next(0);
    book.acknowledged(false);
    expect(book.snapshot()).toBe(true);
  });

  it("an unreadable event needs a snapshot; the next snapshot for the newest filter clears it", () => {
    const book = settled(undefined);
    book.invalidate();
    expect(book.exact).toBe(false);
    book.authSent(0);
    book.acknowledged(true);
    expect(book.snapshot()).toBe(true);
    expect(book.exact).toBe(true);
  });
});
