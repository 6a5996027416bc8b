import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";

it("bundles into one file that runs on plain node and validates its environment", () => {
  const out = mkdtempSync(join(tmpdir(), "gw-bundle-"));
  try {
    const build = spawnSync(process.execPath, [fileURLToPath(new URL("../build.mjs", import.meta.url)), out], { encoding: "utf8" });
    expect(build.status, build.stderr).toBe(0);
    const run = spawnSync(process.execPath, [join(out, "main.mjs")], { encoding: "utf8", env: { PATH: process.env.PATH }, cwd: out });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain("DISCORD_BOT_TOKEN is required");
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
