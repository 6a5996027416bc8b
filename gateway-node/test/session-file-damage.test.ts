import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { LogLevel } from "../src/config.js";
import type { Logger } from "../src/log.js";
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
  it.each([
    // A write cut short (a full volume, a copy by hand): not JSON any more.
    ["not JSON", '{"version":3,"instance":"host-1","shardCount":1,"shards":{"0":{"sessionId":"x"'],
    // JSON, but of no format this release reads (edited by hand, another program's file).
    ["JSON of no known format", '{"version":3,"shards":[]}'],
  ])("is said at start (the path, and that every shard identifies anew), not silently replaced: %s", async (_label, damaged) => {
    dir = mkdtempSync(join(tmpdir(), "gw-damaged-"));
    const file = join(dir, "session.json");
    writeFileSync(file, damaged);
    const lines: Array<{ level: LogLevel; msg: string; fields: Record<string, unknown> }> = [];
    const log: Logger = (level, msg, fields = {}) => void lines.push({ level, msg, fields });
    h = await startHarness({ config: { SESSION_FILE: file }, deps: { sessionStore: fileSessionStore(file, log), log } });
    const harness = h;
    await until(() => harness.hub.accepted.length === 1, "the guild.sync of a fresh session");
    expect(harness.sim.state()).toMatchObject({ identifyCount: 1, resumeCount: 0 });

    const said = lines.filter((line) => (line.level === "warn" || line.level === "error") && JSON.stringify(line).includes(file));
    expect(said, "one error line naming the unreadable session file").toEqual([
      { level: "error", msg: expect.stringContaining("every shard IDENTIFYs"), fields: expect.objectContaining({ file }) },
    ]);
    const keptAs = String(said[0]!.fields.keptAs);
    expect(readdirSync(dir).map((name) => join(dir!, name))).toContain(keptAs);
    expect(readFileSync(keptAs, "utf8"), "the damaged file, kept aside for a look").toBe(damaged);
    await until(() => existsSync(file) || undefined, "a new session file in its place");
  });
});
