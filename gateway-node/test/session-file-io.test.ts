import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { Logger } from "../src/log.js";
import { fileSessionStore } from "../src/session-store.js";

/** SESSION_FILE on disk: a file it cannot trust is kept aside and said so, and a write that fails leaves nothing behind. */
let dir: string;
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function recordingLog(): { log: Logger; lines: Array<{ level: string; msg: string; fields: Record<string, unknown> }> } {
  const lines: Array<{ level: string; msg: string; fields: Record<string, unknown> }> = [];
  return { lines, log: (level, msg, fields = {}) => void lines.push({ level, msg, fields }) };
}

describe("a session file the gateway cannot trust", () => {
  it.each([
    ["corrupt", '{"version": 3, "shards": {'],
    ["empty", ""],
    ["of a newer version", JSON.stringify({ version: 99, shardCount: 1, shards: {}, guilds: {} })],
  ])("is %s: one error line names it, it is kept aside as <file>.bad-<time>, and the gateway starts without it", (_label, content) => {
    dir = mkdtempSync(join(tmpdir(), "gw-file-"));
    const file = join(dir, "session.json");
    writeFileSync(file, content);
    const { log, lines } = recordingLog();

    expect(fileSessionStore(file, log).load()).toBeUndefined();

    const errors = lines.filter((line) => line.level === "error");
    expect(errors, JSON.stringify(lines)).toHaveLength(1);
    expect(errors[0]!.fields).toMatchObject({ file });
    const aside = readdirSync(dir).filter((name) => name.startsWith("session.json.bad-"));
    expect(aside).toHaveLength(1);
    expect(readFileSync(join(dir, aside[0]!), "utf8")).toBe(content);
    expect(String(errors[0]!.fields.keptAs)).toBe(join(dir, aside[0]!));
    expect(readdirSync(dir)).not.toContain("session.json"); // the next write starts a fresh file
  });

  it("is absent: nothing is logged at error level and nothing is moved", () => {
    dir = mkdtempSync(join(tmpdir(), "gw-file-"));
    const { log, lines } = recordingLog();
    expect(fileSessionStore(join(dir, "session.json"), log).load()).toBeUndefined();
    expect(lines.filter((line) => line.level === "error")).toEqual([]);
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe("a write that fails", () => {
  it("throws, and leaves no temporary file behind", () => {
    dir = mkdtempSync(join(tmpdir(), "gw-file-"));
    const file = join(dir, "session.json");
    mkdirSync(file); // a directory where the file should be: the rename fails
    const store = fileSessionStore(file, recordingLog().log);
    expect(() => store.save({ version: 3, instance: "host-1", shardCount: 1, shards: {}, guilds: {} } as never)).toThrow();
    expect(readdirSync(dir)).toEqual(["session.json"]);
  });
});
