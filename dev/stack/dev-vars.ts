import { existsSync, readFileSync, writeFileSync } from "node:fs";
import type { StackPorts } from "./ports.js";

/** .dev.vars.example with the local ports filled in: safe local defaults, no real secrets. */
export function renderDevVars(root: string, ports: StackPorts): string {
  return readFileSync(`${root}/.dev.vars.example`, "utf8")
    .replaceAll("127.0.0.1:8788", `127.0.0.1:${ports.IDP_PORT}`)
    .replaceAll("127.0.0.1:8790", `127.0.0.1:${ports.SIM_PORT}`)
    .replaceAll("127.0.0.1:5173", `127.0.0.1:${ports.DEMO_PORT}`)
    .replaceAll("localhost:5173", `localhost:${ports.DEMO_PORT}`);
}

/**
 * Writes .dev.vars from the example only when it is missing: a developer's own .dev.vars is never
 * overwritten. Returns what the Worker will read.
 */
export function ensureDevVars(root: string, ports: StackPorts): { created: boolean; vars: Map<string, string> } {
  const path = `${root}/.dev.vars`;
  let created = false;
  if (!existsSync(path)) {
    writeFileSync(path, renderDevVars(root, ports), { mode: 0o600 });
    created = true;
  }
  return { created, vars: parseDotEnv(readFileSync(path, "utf8")) };
}

export function parseDotEnv(text: string): Map<string, string> {
  const vars = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const match = /^\s*([A-Z0-9_]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (match) vars.set(match[1]!, match[2]!.replace(/^"(.*)"$/, "$1"));
  }
  return vars;
}
