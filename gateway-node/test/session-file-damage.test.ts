import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { LogLevel } from "../src/config.js";
import { fileSessionStore } from "../src/session-store.js";
import { startHarness, until, type Harness } from "./support/harness.js";

let h: Harness | undefined;
let dir: string | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("a SESSION_FILE that cannot be read", () => {
  it("is said at start (the path, and that every shard identifies anew), not silently replaced", async () => {
    dir = mkdtempSync(join(tmpdir(), "gw-damaged-"));
    const file = join(dir, "session.json");
    // A write cut short (a full volume, a copy by hand): not JSON any more.
    writeFileSync(file, '{"version":2,"shardCount":1,"shards":{"0":{"sessionId":"x"');
    const lines: Array<{ level: LogLevel; msg: string; fields: Record<string, unknown> }> = [];
    h = await startHarness({ deps: { sessionStore: fileSessionStore(file), log: (level, msg, fields = {}) => void lines.push({ level, msg, fields }) } });
    const harness = h;
    await until(() => harness.hub.accepted.length === 1, "the guild.sync of a fresh session");
    const said = lines.filter((line) => (line.level === "warn" || line.level === "error") && JSON.stringify(line).includes(file));
    expect(said, "a warning naming the unreadable session file").not.toEqual([]);
  });
});
