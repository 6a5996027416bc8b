import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";

const major = (version: string) => Number(/^v?(\d+)/.exec(version)?.[1]);

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

it("ships the Node major the tests run on: the image, the bundle's target and `engines` agree", () => {
  const tested = major(process.version);
  const dockerfile = readFileSync(fileURLToPath(new URL("../Dockerfile", import.meta.url)), "utf8");
  const images = [...dockerfile.matchAll(/^FROM node:(\S+)/gm)].map((match) => match[1]!);
  expect(images.length).toBeGreaterThan(0);
  expect(images.map(major), `gateway-node/Dockerfile's images ${images.join(", ")} against the tests' ${process.version}`).toEqual(images.map(() => tested));
  const build = readFileSync(fileURLToPath(new URL("../build.mjs", import.meta.url)), "utf8");
  expect(/target: "node(\d+)"/.exec(build)?.[1]).toBe(String(tested));
  const pkg = JSON.parse(readFileSync(fileURLToPath(new URL("../../package.json", import.meta.url)), "utf8")) as { engines: { node: string } };
  expect(pkg.engines.node).toBe(`>=${tested}`);
});
