import { describe, expect, it } from "vitest";
import { migrateLoaded, parseStored } from "../src/session-store.js";

const VIEW = { rooms: [{ channelId: "110000000000000001", name: "Pod A", parentId: null, userLimit: 4 }], members: [], syncDue: false };

describe("the session file's format", () => {
  it("reads the single-session file of an unsharded one-guild gateway as shard 0 of 1 serving PRIMARY_GUILD_ID", () => {
    const legacy = { sessionId: "abc", seq: 42, resumeGatewayUrl: "wss://resume.example", view: VIEW };
    expect(migrateLoaded(parseStored(legacy), "100000000000000001")).toEqual({
      version: 2,
      shardCount: 1,
      shards: { "0": { sessionId: "abc", seq: 42, resumeGatewayUrl: "wss://resume.example" } },
      guilds: { "100000000000000001": { sessionId: "abc", seq: 42, view: VIEW } },
    });
  });

  it("reads today's format as written", () => {
    const state = {
      version: 2,
      shardCount: 2,
      shards: { "1": { sessionId: "s1", seq: 7, resumeGatewayUrl: "wss://r" } },
      guilds: { "1258291200004194304": { sessionId: "s1", seq: 9, view: VIEW } },
    };
    expect(migrateLoaded(parseStored(state), "100000000000000001")).toEqual(state);
  });

  it.each([{}, { version: 3 }, { sessionId: "", seq: 1, resumeGatewayUrl: "x", view: VIEW }, { version: 2, shardCount: 1, shards: { x: {} }, guilds: {} }, null])(
    "resumes nothing from a file it cannot trust: %j",
    (raw) => expect(parseStored(raw)).toBeUndefined(),
  );
});
