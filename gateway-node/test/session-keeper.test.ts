import { afterEach, describe, expect, it, vi } from "vitest";
import { silentLogger, type Logger } from "../src/log.js";
import { resumablePosition, SessionKeeper, type PipeRecord } from "../src/session-keeper.js";
import type { SessionStore, StoredGateway } from "../src/session-store.js";

/** What the session file holds and how often it is written: the resume arithmetic and the write policy. */
const SESSION = { sessionId: "s1", seq: 50, resumeGatewayUrl: "wss://r" };
const pipe = (guildId: string, seq: number | undefined, syncOwed = false, sessionId = "s1"): PipeRecord => ({
  guildId,
  syncOwed,
  state: "available",
  committedPosition: seq === undefined ? undefined : { sessionId, seq },
});

afterEach(() => void vi.useRealTimers());

describe("where a shard can be resumed from", () => {
  it("is its session at its slowest guild's position, so every dispatch a hub has not accepted is replayed", () => {
    expect(resumablePosition({ session: SESSION, pipes: [pipe("1", 48), pipe("2", 41)] })).toEqual({ ...SESSION, seq: 41 });
    expect(resumablePosition({ session: SESSION, pipes: [] })).toEqual(SESSION);
  });

  it("is nowhere while a guild is owed a picture, or has accepted nothing of this session", () => {
    expect(resumablePosition({ session: SESSION, pipes: [pipe("1", 48), pipe("2", 49, true)] })).toBeUndefined();
    expect(resumablePosition({ session: SESSION, pipes: [pipe("1", 48), pipe("2", 49, false, "s0")] })).toBeUndefined();
    expect(resumablePosition({ session: SESSION, pipes: [pipe("1", undefined)] })).toBeUndefined();
    expect(resumablePosition({ session: undefined, pipes: [] })).toBeUndefined();
  });
});

describe("the session file's writes", () => {
  function keeper(store: SessionStore, log: Logger = silentLogger) {
    const pipes = [pipe("100000000000000001", 10)];
    const shard = { session: { ...SESSION }, pipes };
    const keeper = new SessionKeeper({ store, instance: "host-1", shardCount: 1, shards: new Map([[0, shard]]), stored: {}, writeIntervalMs: 1_000, log });
    return { keeper, shard, pipes };
  }

  it("coalesces changes into at most one write per interval, skips a write that changes nothing, and writes at once on flush", () => {
    vi.useFakeTimers();
    const saved: StoredGateway[] = [];
    const { keeper: k, pipes } = keeper({ load: () => undefined, save: (state) => void saved.push(structuredClone(state)) });
    for (let seq = 11; seq <= 200; seq++) {
      (pipes[0] as { committedPosition: unknown }).committedPosition = { sessionId: "s1", seq };
      k.changed();
    }
    expect(saved).toHaveLength(0);
    vi.advanceTimersByTime(1_000);
    expect(saved).toEqual([{ version: 3, instance: "host-1", shardCount: 1, shards: { "0": { ...SESSION, seq: 50 } }, guilds: { "100000000000000001": { syncOwed: false, state: "available" } } }]);
    k.changed();
    vi.advanceTimersByTime(1_000);
    expect(saved).toHaveLength(1); // nothing the file holds changed
    (pipes[0] as { syncOwed: boolean }).syncOwed = true;
    k.flush();
    expect(saved).toHaveLength(2);
    expect(saved[1]!.guilds["100000000000000001"]).toEqual({ syncOwed: true, state: "available" });
    expect(saved[1]!.shards["0"]).toEqual({ ...SESSION, seq: 50 }); // the last resumable position is kept
  });

  it("goes on when a write fails, says so once, and says when it works again", () => {
    const lines: string[] = [];
    let failing = true;
    const { keeper: k, pipes } = keeper(
      { load: () => undefined, save: () => { if (failing) throw new Error("EROFS"); } },
      (level, msg) => void lines.push(`${level}: ${msg}`),
    );
    k.flush();
    (pipes[0] as { committedPosition: unknown }).committedPosition = { sessionId: "s1", seq: 12 };
    k.flush();
    expect(k.ok).toBe(0);
    failing = false;
    (pipes[0] as { committedPosition: unknown }).committedPosition = { sessionId: "s1", seq: 13 };
    k.flush();
    expect(k.ok).toBe(1);
    expect(lines).toEqual(["error: cannot write the session file; running without resume", "info: the session file is writable again"]);
  });
});
