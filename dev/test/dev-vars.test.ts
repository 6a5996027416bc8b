import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import * as devVars from "../stack/dev-vars.js";
import { DEFAULT_PORTS, type StackPorts } from "../stack/ports.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const MOVED: StackPorts = { ...DEFAULT_PORTS, IDP_PORT: 9788, SIM_PORT: 9790, DEMO_PORT: 6173 };

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

/** A scratch project root with the real .dev.vars.example and, optionally, an existing .dev.vars. */
function project(devVars?: string): string {
  dir = mkdtempSync(join(tmpdir(), "scr-dev-vars-"));
  writeFileSync(join(dir, ".dev.vars.example"), readFileSync(join(ROOT, ".dev.vars.example"), "utf8"));
  if (devVars !== undefined) writeFileSync(join(dir, ".dev.vars"), devVars, { mode: 0o600 });
  return dir;
}

describe(".dev.vars and the stack's ports", () => {
  it("writes .dev.vars when it is missing, with the current ports", () => {
    const root = project();
    const result = devVars.ensureDevVars(root, MOVED);
    expect(result.created).toBe(true);
    expect(result.updated).toEqual([]);
    expect(result.vars.get("JWT_ISSUER")).toBe("http://127.0.0.1:9788");
    expect(result.vars.get("WEB_ORIGIN")).toBe("http://127.0.0.1:6173,http://localhost:6173");
  });

  it("rewrites the generated local-port entries when the ports change, and says which", () => {
    const root = project(devVars.renderDevVars(ROOT, DEFAULT_PORTS));
    const result = devVars.ensureDevVars(root, MOVED);
    expect(result.created).toBe(false);
    expect(result.updated).toEqual(["JWT_ISSUER", "JWT_PUBLIC_JWK_URL", "WEB_ORIGIN", "DISCORD_API_BASE"]);
    expect(result.vars.get("JWT_ISSUER")).toBe("http://127.0.0.1:9788");
    expect(result.vars.get("JWT_PUBLIC_JWK_URL")).toBe("http://127.0.0.1:9788/jwks");
    expect(result.vars.get("WEB_ORIGIN")).toBe("http://127.0.0.1:6173,http://localhost:6173");
    expect(result.vars.get("DISCORD_API_BASE")).toBe("http://127.0.0.1:9790/api/v10");
    // The file itself now holds what a fresh one would (comments are kept as they were); a second start changes nothing.
    expect(devVars.parseDotEnv(readFileSync(join(root, ".dev.vars"), "utf8"))).toEqual(devVars.parseDotEnv(devVars.renderDevVars(ROOT, MOVED)));
    expect(statSync(join(root, ".dev.vars")).mode & 0o777).toBe(0o600);
    expect(devVars.ensureDevVars(root, MOVED).updated).toEqual([]);
    expect(devVars.describeDevVarsUpdate(result.updated)).toBe(
      "updated .dev.vars for the current ports: JWT_ISSUER, JWT_PUBLIC_JWK_URL, WEB_ORIGIN, DISCORD_API_BASE",
    );
  });

  it("rewrites only the stale entries and keeps every value changed by hand", () => {
    const original = devVars.renderDevVars(ROOT, DEFAULT_PORTS)
      .replace("JWT_ISSUER=http://127.0.0.1:8788", "JWT_ISSUER=https://auth.example.com")
      .replace("JWT_PUBLIC_JWK_URL=http://127.0.0.1:8788/jwks", 'JWT_PUBLIC_JWK_URL="https://auth.example.com/jwks"')
      .replace("WEB_ORIGIN=http://127.0.0.1:5173,http://localhost:5173", "WEB_ORIGIN=http://127.0.0.1:5173,http://localhost:5173,http://my-laptop:3000")
      .replace("HUB_SECRET=local-dev-hub-secret-change-me-0123456789abcdef", "HUB_SECRET=my-own-secret");
    const root = project(original);
    const result = devVars.ensureDevVars(root, MOVED);
    expect(result.updated).toEqual(["DISCORD_API_BASE"]);
    expect(result.vars.get("JWT_ISSUER")).toBe("https://auth.example.com");
    expect(result.vars.get("JWT_PUBLIC_JWK_URL")).toBe("https://auth.example.com/jwks");
    expect(result.vars.get("WEB_ORIGIN")).toBe("http://127.0.0.1:5173,http://localhost:5173,http://my-laptop:3000");
    expect(result.vars.get("HUB_SECRET")).toBe("my-own-secret");
    expect(result.vars.get("DISCORD_API_BASE")).toBe("http://127.0.0.1:9790/api/v10");
    expect(readFileSync(join(root, ".dev.vars"), "utf8")).toBe(original.replace("127.0.0.1:8790/api/v10", "127.0.0.1:9790/api/v10"));
  });

  it("leaves an up-to-date .dev.vars byte for byte alone", () => {
    const text = devVars.renderDevVars(ROOT, DEFAULT_PORTS);
    const root = project(text);
    const result = devVars.ensureDevVars(root, DEFAULT_PORTS);
    expect(result).toMatchObject({ created: false, updated: [] });
    expect(readFileSync(join(root, ".dev.vars"), "utf8")).toBe(text);
  });

  it("finds stale entries in text without touching a file", () => {
    const stale = devVars.staleDevVars(devVars.renderDevVars(ROOT, DEFAULT_PORTS), devVars.renderDevVars(ROOT, MOVED));
    expect([...stale.keys()]).toEqual(["JWT_ISSUER", "JWT_PUBLIC_JWK_URL", "WEB_ORIGIN", "DISCORD_API_BASE"]);
    expect(stale.get("JWT_ISSUER")).toBe("http://127.0.0.1:9788");
  });
});
