import { spawn, execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePorts, onFreePorts, PortInUseError, STACK_PORT_NAMES, type StackPorts } from "../dev/stack/ports.js";
import { until } from "../test-support/until.js";
import { ROOT } from "./support/paths.js";

let clean: string;

/** A copy of exactly what git tracks (what a fresh clone has), sharing this checkout's node_modules. */
beforeAll(() => {
  clean = mkdtempSync(join(tmpdir(), "scr-quickstart-"));
  const files = execFileSync("git", ["ls-files", "-z"], { cwd: ROOT, encoding: "utf8" }).split("\0").filter(Boolean);
  for (const file of files) {
    mkdirSync(dirname(join(clean, file)), { recursive: true });
    cpSync(join(ROOT, file), join(clean, file));
  }
  symlinkSync(join(ROOT, "node_modules"), join(clean, "node_modules"));
});
afterAll(() => rmSync(clean, { recursive: true, force: true }));

function runDev(ports: StackPorts) {
  const portVars = Object.fromEntries(Object.entries(ports).map(([name, port]) => [name, String(port)]));
  const child = spawn("npm", ["run", "dev"], { cwd: clean, env: { ...process.env, ...portVars }, stdio: ["ignore", "pipe", "pipe"], detached: true });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, exited, output: () => output };
}

/** `npm run dev` on free ports, started again on new ones when it says a port was taken before it bound it. */
function runDevOnFreePorts() {
  return onFreePorts(STACK_PORT_NAMES, async (ports) => {
    const dev = runDev(ports);
    await Promise.race([
      until(() => dev.output().includes("ready: open"), "the ready line", 120_000),
      dev.exited.then((code) => {
        const taken = [...dev.output().matchAll(/port already in use: (.*)/g)].flatMap((line) => [...line[1]!.matchAll(/(\w+_PORT) (\d+)/g)]);
        if (taken.length > 0) throw new PortInUseError(taken.map(([, name, port]) => ({ name: name!, port: Number(port) })));
        throw new Error(`npm run dev exited with ${code} before it was ready:\n${dev.output()}`);
      }),
    ]);
    return { ...dev, ports };
  });
}

describe("the README quick start", () => {
  it("`npm run dev` comes up from a clean clone with no secrets, and Ctrl-C stops everything", async () => {
    expect(existsSync(join(clean, ".dev.vars"))).toBe(false);
    const dev = await runDevOnFreePorts();
    const { ports } = dev;
    try {
      const health = await fetch(`http://127.0.0.1:${ports.WORKER_PORT}/health`);
      expect(await health.json()).toMatchObject({ ok: true });
      expect((await fetch(`http://127.0.0.1:${ports.DEMO_PORT}/`)).status).toBe(200);
      await until(async () => ((await fetch(`http://127.0.0.1:${ports.GATEWAY_HEALTH_PORT}/healthz`)).ok ? true : undefined), "gateway-node ready");
      expect(readFileSync(join(clean, ".dev.vars"), "utf8")).toContain(`127.0.0.1:${ports.SIM_PORT}/api/v10`);
      expect(dev.output()).toContain(`http://127.0.0.1:${ports.DEMO_PORT}/`);
    } finally {
      process.kill(-dev.child.pid!, "SIGINT");
    }
    // In a terminal Ctrl-C signals the whole group: npm dies of it, the stack shuts its parts down.
    await dev.exited;
    await until(() => (dev.output().includes("stopping") ? true : undefined), "the stack's shutdown");
    for (const port of Object.values(ports)) {
      await until(() => portFree(port).then((free) => (free ? true : undefined)), `port ${port} to be released`, 10_000);
    }
  });

  it("says which port is taken instead of failing with a stack trace", async () => {
    // The taken port is one this test holds; the others are free ones.
    const blocker = createServer().listen(0, "127.0.0.1");
    await new Promise((resolve) => blocker.once("listening", resolve));
    const idpPort = (blocker.address() as AddressInfo).port;
    try {
      const ports = { ...(await freePorts(STACK_PORT_NAMES)), IDP_PORT: idpPort };
      const dev = runDev(ports);
      expect(await dev.exited).toBe(1);
      expect(dev.output()).toMatch(new RegExp(`port already in use: .*IDP_PORT ${idpPort}\\b`));
      expect(dev.output()).not.toMatch(/\n\s+at /);
    } finally {
      blocker.close();
    }
  });
});

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once("error", () => resolve(false));
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve(true)));
  });
}
