import { existsSync, readFileSync, writeFileSync } from "node:fs";
import type { StackPorts } from "./ports.js";

/** A local address in .dev.vars.example: its port is the only part `npm run dev` fills in. */
const LOCAL_ADDRESS = /(127\.0\.0\.1|localhost):\d{1,5}/;

/** .dev.vars.example with the local ports filled in: safe local defaults, no real secrets. */
export function renderDevVars(root: string, ports: StackPorts): string {
  return readFileSync(`${root}/.dev.vars.example`, "utf8")
    .replaceAll("127.0.0.1:8788", `127.0.0.1:${ports.IDP_PORT}`)
    .replaceAll("127.0.0.1:8790", `127.0.0.1:${ports.SIM_PORT}`)
    .replaceAll("127.0.0.1:5173", `127.0.0.1:${ports.DEMO_PORT}`)
    .replaceAll("localhost:5173", `localhost:${ports.DEMO_PORT}`);
}

/**
 * The entries of `current` that were generated for other local ports: a key whose expected value (from the
 * rendered example) holds a local address, and whose current value is that same value with different port
 * numbers. Anything else — a real issuer, an extra origin, an emptied entry — was written by hand and is not
 * listed. Returns key → the value for the current ports, in the example's order.
 */
export function staleDevVars(current: string, expected: string): Map<string, string> {
  const have = parseDotEnv(current);
  const stale = new Map<string, string>();
  for (const [key, want] of parseDotEnv(expected)) {
    const value = have.get(key);
    if (value === undefined || value === want) continue;
    const pattern = generatedPattern(want);
    if (pattern?.test(value)) stale.set(key, want);
  }
  return stale;
}

/** `text` with each listed key's line set to its new value; every other line (comments included) is kept. */
export function rewriteDevVars(text: string, values: Map<string, string>): string {
  return text
    .split(/(?<=\n)/)
    .map((line) => {
      const match = /^(\s*)([A-Z0-9_]+)(\s*=\s*)(.*?)(\r?\n)?$/.exec(line);
      if (!match || !values.has(match[2]!)) return line;
      return `${match[1]}${match[2]}${match[3]}${values.get(match[2]!)}${match[5] ?? ""}`;
    })
    .join("");
}

/**
 * Writes .dev.vars from the example when it is missing. An existing one is kept, except for entries that were
 * generated for other ports (WORKER_PORT, IDP_PORT, SIM_PORT, DEMO_PORT changed since): those are rewritten
 * and listed in `updated`, so the Worker trusts the IdP, the simulator and the demo page actually running.
 * Values changed by hand are never touched. Returns what the Worker will read.
 */
export function ensureDevVars(root: string, ports: StackPorts): { created: boolean; updated: string[]; vars: Map<string, string> } {
  const path = `${root}/.dev.vars`;
  const expected = renderDevVars(root, ports);
  if (!existsSync(path)) {
    writeFileSync(path, expected, { mode: 0o600 });
    return { created: true, updated: [], vars: parseDotEnv(expected) };
  }
  let text = readFileSync(path, "utf8");
  const stale = staleDevVars(text, expected);
  if (stale.size > 0) {
    text = rewriteDevVars(text, stale);
    writeFileSync(path, text); // an existing file keeps its mode
  }
  return { created: false, updated: [...stale.keys()], vars: parseDotEnv(text) };
}

/** The one line `npm run dev` prints when it rewrote entries. */
export function describeDevVarsUpdate(updated: string[]): string {
  return `updated .dev.vars for the current ports: ${updated.join(", ")}`;
}

export function parseDotEnv(text: string): Map<string, string> {
  const vars = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const match = /^\s*([A-Z0-9_]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (match) vars.set(match[1]!, match[2]!.replace(/^"(.*)"$/, "$1"));
  }
  return vars;
}

/** `value` with any port of its local addresses; undefined when it has no local address. */
function generatedPattern(value: string): RegExp | undefined {
  const parts = value.split(new RegExp(LOCAL_ADDRESS.source, "g"));
  if (parts.length === 1) return undefined;
  // split() interleaves the captured host: text, host, text, host, …, text.
  const source = parts.map((part, i) => (i % 2 === 0 ? escapeRegExp(part) : `${escapeRegExp(part)}:\\d{1,5}`)).join("");
  return new RegExp(`^${source}$`);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
