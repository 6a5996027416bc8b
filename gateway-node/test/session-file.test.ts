import { describe, expect, it } from "vitest";
import type { Logger } from "../src/log.js";
import { parseStored, UntrustedSessionFile } from "../src/session-store.js";

/** The session file's format (v3), and the two earlier ones it reads once and writes back as v3. */
const PRIMARY = "100000000000000001";
const VIEW = { rooms: [{ channelId: "110000000000000001", name: "Pod A", parentId: null, userLimit: 4 }], members: [], syncDue: false };
const SESSION = { sessionId: "s0", seq: 42, resumeGatewayUrl: "wss://resume.example" };

function recording(): { log: Logger; lines: Array<{ level: string; msg: string; fields?: Record<string, unknown> }> } {
  const lines: Array<{ level: string; msg: string; fields?: Record<string, unknown> }> = [];
  return { lines, log: (level, msg, fields) => void lines.push({ level, msg, fields }) };
}

describe("the session file's format", () => {
  it("reads v3 as written: per shard the session, per guild whether a picture is owed and what Discord last said, the instance", () => {
    const state = {
      version: 3,
      instance: "host-1a2b3c4d",
      shardCount: 2,
      shards: { "1": { sessionId: "s1", seq: 7, resumeGatewayUrl: "wss://r" } },
      guilds: { "1258291200004194304": { syncOwed: false, state: "available" } },
    };
    const { log, lines } = recording();
    expect(parseStored(state, PRIMARY, () => "new", log)).toEqual(state);
    expect(lines).toEqual([]);
  });

  it("migrates v2: keeps the sessions and the instance, drops the pictures (saying so), and owes a picture to a guild behind its shard's session", () => {
    const v2 = {
      version: 2,
      instance: "host-old",
      shardCount: 1,
      shards: { "0": SESSION },
      guilds: {
        [PRIMARY]: { sessionId: "s0", seq: 44, view: VIEW },
        "100000000000000002": { sessionId: "an-older-session", seq: 3, view: VIEW },
        "100000000000000003": { sessionId: "s0", seq: 42, view: { ...VIEW, syncDue: true } },
      },
    };
    const { log, lines } = recording();
    expect(parseStored(v2, PRIMARY, () => "new", log)).toEqual({
      version: 3,
      instance: "host-old",
      shardCount: 1,
      shards: { "0": SESSION },
      guilds: {
        [PRIMARY]: { syncOwed: false, state: "unknown" },
        "100000000000000002": { syncOwed: true, state: "unknown" },
        "100000000000000003": { syncOwed: true, state: "unknown" },
      },
    });
    expect(lines).toEqual([expect.objectContaining({ level: "info", fields: expect.objectContaining({ dropped: expect.stringContaining("picture") }) })]);
  });

  it("migrates v1 (the single session of an unsharded one-guild gateway) as shard 0 of 1 serving PRIMARY_GUILD_ID, under a new instance", () => {
    const { log, lines } = recording();
    expect(parseStored({ ...SESSION, view: VIEW }, PRIMARY, () => "host-new", log)).toEqual({
      version: 3,
      instance: "host-new",
      shardCount: 1,
      shards: { "0": SESSION },
      guilds: { [PRIMARY]: { syncOwed: false, state: "unknown" } },
    });
    expect(lines).toHaveLength(1);
    expect(lines[0]!.fields).toMatchObject({ kept: expect.stringContaining("shard 0 of 1"), dropped: expect.stringContaining("picture") });
  });

  it.each([{}, { version: 3 }, { sessionId: "", seq: 1, resumeGatewayUrl: "x", view: VIEW }, { version: 2, shardCount: 1, shards: { x: {} }, guilds: {} }, null])(
    "trusts nothing it cannot read: %j",
    (raw) => expect(() => parseStored(raw, PRIMARY, () => "new", recording().log)).toThrow(UntrustedSessionFile),
  );
});
