/**
 * CPU profile of the Worker's isolate (the GuildHub runs in it) over the inspector workerd exposes: sampled
 * from outside, since workerd's clocks stand still during synchronous code. Writes a .cpuprofile (open it in
 * Chrome DevTools) and returns the functions with the most self time.
 */
import { writeFileSync } from "node:fs";
import WebSocket from "ws";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
}

export interface IsolateProfiler {
  /** Writes the profile to `file` and returns the functions with the most self time, and the profile itself. */
  stop(file: string): Promise<Array<{ fn: string; selfPct: number }>>;
  /** The last profile stopped. */
  last?: Profile;
}

/** Where one profile's busy samples went, as shares (0–1) of them: the hub, the relays, the Worker, the rest. */
export interface ObjectShares {
  hub: number;
  relays: number;
  worker: number;
  runtime: number;
  samples: number;
}

/**
 * Attributes each busy sample of a profile of our isolate (where the Worker and every object of both classes run)
 * to the object class whose code it ran for: the nearest frame on its stack that lies in guild-hub.ts or
 * lobby-relay.ts (or in the Worker's routes), from the source path comments of an unminified bundle. Shared
 * modules (the fan-out, the socket index) count for the class that called them. Samples with no such frame (GC,
 * the runtime's own work between events) are "runtime".
 */
export function objectShares(profile: Profile, bundle: string): ObjectShares {
  const modules: Array<{ line: number; file: string }> = [];
  bundle.split("\n").forEach((text, line) => {
    const match = /^\/\/ (\S+\.ts)$/.exec(text);
    if (match) modules.push({ line, file: match[1]! });
  });
  const fileAt = (line: number) => {
    let found = "";
    for (const module of modules) {
      if (module.line > line) break;
      found = module.file;
    }
    return found;
  };
  const classOf = (file: string): keyof Omit<ObjectShares, "samples"> | undefined => {
    if (file.endsWith("worker-edge/src/guild-hub.ts")) return "hub";
    if (file.endsWith("worker-edge/src/lobby-relay.ts")) return "relays";
    if (file.endsWith("worker-edge/src/app.ts") || file.includes("worker-edge/src/sse/") || file.endsWith("worker-edge/src/index.ts")) return "worker";
    return undefined;
  };
  const parent = new Map<number, ProfileNode>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node);
  const totals = { hub: 0, relays: 0, worker: 0, runtime: 0 };
  let samples = 0;
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0;
    if (hits === 0 || node.callFrame.functionName === "(idle)") continue;
    samples += hits;
    let owner: keyof typeof totals = "runtime";
    for (let at: ProfileNode | undefined = node; at; at = parent.get(at.id)) {
      const owned = at.callFrame.url ? classOf(fileAt(at.callFrame.lineNumber)) : undefined;
      if (owned) {
        owner = owned;
        break;
      }
    }
    totals[owner] += hits;
  }
  const share = (n: number) => (samples === 0 ? 0 : Math.round((n / samples) * 1000) / 1000);
  return { hub: share(totals.hub), relays: share(totals.relays), worker: share(totals.worker), runtime: share(totals.runtime), samples };
}

export async function startProfiler(inspectorPort: number, workerName: string): Promise<IsolateProfiler> {
  const targets = (await (await fetch(`http://127.0.0.1:${inspectorPort}/json/list`)).json()) as Array<{ id: string; webSocketDebuggerUrl: string; title?: string }>;
  const target = targets.find((t) => t.id.includes(workerName) || t.title?.includes(workerName)) ?? targets.at(-1);
  if (!target) throw new Error("no inspector target");
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
  let nextId = 1;
  const call = (method: string, params: Record<string, unknown> = {}) =>
    new Promise<Record<string, unknown>>((resolve) => {
      const id = nextId++;
      const onMessage = (raw: WebSocket.RawData) => {
        const message = JSON.parse(String(raw)) as { id?: number; result?: Record<string, unknown> };
        if (message.id !== id) return;
        ws.off("message", onMessage);
        resolve(message.result ?? {});
      };
      ws.on("message", onMessage);
      ws.send(JSON.stringify({ id, method, params }));
    });
  await call("Profiler.enable");
  await call("Profiler.setSamplingInterval", { interval: 200 });
  await call("Profiler.start");
  const profiler: IsolateProfiler = {
    async stop(file) {
      const { profile } = (await call("Profiler.stop")) as { profile: Profile };
      profiler.last = profile;
      ws.close();
      writeFileSync(file, JSON.stringify(profile));
      const total = profile.nodes.reduce((sum, node) => sum + (node.hitCount ?? 0), 0) || 1;
      const byFunction = new Map<string, number>();
      for (const node of profile.nodes) {
        const { functionName, url, lineNumber } = node.callFrame;
        const name = `${functionName || "(anonymous)"} ${url.split("/").at(-1) ?? ""}:${lineNumber + 1}`;
        byFunction.set(name, (byFunction.get(name) ?? 0) + (node.hitCount ?? 0));
      }
      return [...byFunction]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 15)
        .map(([fn, hits]) => ({ fn, selfPct: Math.round((hits / total) * 1000) / 10 }));
    },
  };
  return profiler;
}
