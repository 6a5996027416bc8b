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
}

export interface IsolateProfiler {
  stop(file: string): Promise<Array<{ fn: string; selfPct: number }>>;
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
  return {
    async stop(file) {
      const { profile } = (await call("Profiler.stop")) as { profile: { nodes: ProfileNode[] } };
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
}
