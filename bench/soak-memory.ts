/**
 * Resident memory of the soak's processes, read from /proc (Linux only): a process's descendants through
 * /proc/<pid>/task/<tid>/children, each one's VmRSS from /proc/<pid>/status.
 */
import { readdirSync, readFileSync } from "node:fs";

/** VmRSS (or another field of /proc/<pid>/status, e.g. RssAnon) in bytes, or undefined once the process is gone. */
export function rssBytes(pid: number, field: "VmRSS" | "RssAnon" = "VmRSS"): number | undefined {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

export function commandName(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return "";
  }
}

function children(pid: number): number[] {
  const found: number[] = [];
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return found;
  }
  for (const tid of tasks) {
    try {
      for (const child of readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").split(/\s+/)) {
        if (child) found.push(Number(child));
      }
    } catch {
      // the thread ended meanwhile
    }
  }
  return found;
}

/** `root` and every process below it. */
export function processTree(root: number): number[] {
  const all: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    if (all.includes(pid)) continue;
    all.push(pid);
    queue.push(...children(pid));
  }
  return all;
}

export interface ProcessSample {
  rssBytes: number;
  /** The anonymous part of the RSS (heap, stacks): what grows with a leak, unlike mapped files. */
  anonBytes: number;
  pids: number[];
}

/** The wrangler tree split in two: its workerd process(es) and the rest (wrangler's node processes). */
export function sampleWranglerTree(root: number): { workerd: ProcessSample; wrangler: ProcessSample } {
  const workerd: ProcessSample = { rssBytes: 0, anonBytes: 0, pids: [] };
  const wrangler: ProcessSample = { rssBytes: 0, anonBytes: 0, pids: [] };
  for (const pid of processTree(root)) {
    const rss = rssBytes(pid);
    if (rss === undefined) continue;
    const into = commandName(pid).startsWith("workerd") ? workerd : wrangler;
    into.rssBytes += rss;
    into.anonBytes += rssBytes(pid, "RssAnon") ?? 0;
    into.pids.push(pid);
  }
  return { workerd, wrangler };
}
