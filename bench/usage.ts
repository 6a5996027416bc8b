/**
 * What one measured window cost, and whether the load generator could keep up: the server's own CPU (its
 * processes' threads' time on a CPU, from /proc, Linux only) per delivered frame and per watcher-second, next to the CPU
 * the client processes and the driver spent over the same window. A figure is only the server's when its clients
 * had headroom: a client process busier than GENERATOR_BOUND_PCT of a core is flagged.
 */
import { readdirSync, readFileSync } from "node:fs";
import { cpus } from "node:os";

/** USER_HZ, the unit of /proc/<pid>/stat's CPU times: 100 on Linux. */
const TICKS_PER_SECOND = 100;
/** A client process (or the driver) this busy may be what sets the pace, not the server. */
export const GENERATOR_BOUND_PCT = 80;

/**
 * CPU time of processes (every thread), in ms; a process gone meanwhile counts 0. Read from each thread's
 * schedstat (nanoseconds on a CPU), or from the process's stat (user + system, in 10 ms ticks) where the kernel
 * keeps no schedstats: a window of one event to a hundred sockets is a few ms.
 */
export function cpuMs(pids: number[]): number {
  let ms = 0;
  for (const pid of pids) ms += threadsCpuMs(pid) ?? processCpuMs(pid);
  return ms;
}

function threadsCpuMs(pid: number): number | undefined {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
    readFileSync(`/proc/${pid}/schedstat`);
  } catch {
    return undefined; // gone, or no schedstats here
  }
  let ns = 0;
  for (const tid of tids) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
    } catch {
      // the thread ended meanwhile
    }
  }
  return ns / 1e6;
}

function processCpuMs(pid: number): number {
  try {
    // The command name (field 2) may hold spaces: count fields from after its closing parenthesis.
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
  } catch {
    return 0; // gone meanwhile
  }
}

/** Busy time of the whole machine (every core, every process: other work on it too), in ms, from /proc/stat. */
export function machineBusyMs(): number {
  try {
    const [user, nice, system, idle, iowait, irq, softirq, steal] = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
    const busy = user! + nice! + system! + irq! + softirq! + steal!;
    return Number.isFinite(busy + idle! + iowait!) ? (busy * 1000) / TICKS_PER_SECOND : 0;
  } catch {
    return 0;
  }
}

/** The raw counts of one or more windows; sums of windows stay exact (see addUsage). */
export interface Usage {
  wallMs: number;
  /** The target's processes (workerd for ours and bare, the Node hub for the baseline). */
  serverCpuMs: number;
  /** The driver: the publisher (and, on the full path, the Discord simulator). */
  driverCpuMs: number;
  /** Per client process, over the window. */
  clientCpuMs: number[];
  /** Every core of the machine, including work that is not the benchmark's (cpus().length cores). */
  machineBusyMs: number;
  /** WebSocket messages the clients received (a batch frame is one). */
  frames: number;
  /** Events the clients received (a batch frame of k events is k). */
  deliveries: number;
  /** Sockets × seconds of load: what "per watcher-second" divides by. */
  watcherSeconds: number;
}

export function addUsage(a: Usage | undefined, b: Usage): Usage {
  if (!a) return b;
  return {
    wallMs: a.wallMs + b.wallMs,
    serverCpuMs: a.serverCpuMs + b.serverCpuMs,
    driverCpuMs: a.driverCpuMs + b.driverCpuMs,
    clientCpuMs: b.clientCpuMs.map((ms, i) => ms + (a.clientCpuMs[i] ?? 0)),
    machineBusyMs: a.machineBusyMs + b.machineBusyMs,
    frames: a.frames + b.frames,
    deliveries: a.deliveries + b.deliveries,
    watcherSeconds: a.watcherSeconds + b.watcherSeconds,
  };
}

/** The figures the report prints from a Usage. */
export interface UsageFigures {
  /** Server CPU per frame delivered, µs. */
  serverUsPerFrame: number;
  /** Server CPU per event delivered to one socket, µs. */
  serverUsPerDelivery: number;
  /** Server CPU per watcher-second, µs: flat across rates when the cost follows the audience, not the traffic. */
  serverUsPerWatcherSecond: number;
  framesPerSocketSecond: number;
  /** % of one core over the window. */
  serverBusyPct: number;
  driverBusyPct: number;
  /** The busiest client process, % of one core. */
  clientsBusyPct: number;
  /** The whole machine, % of all its cores: near 100, the server competed for a core (with the clients or other work). */
  machineBusyPct: number;
  /** A client process or the driver was past GENERATOR_BOUND_PCT: the figure may measure the load generator. */
  generatorBound: boolean;
}

export function usageFigures(usage: Usage): UsageFigures {
  const pct = (ms: number) => round((ms / usage.wallMs) * 100, 0);
  const clientsBusyPct = Math.max(0, ...usage.clientCpuMs.map(pct));
  const driverBusyPct = pct(usage.driverCpuMs);
  return {
    serverUsPerFrame: round((usage.serverCpuMs * 1000) / usage.frames, 1),
    serverUsPerDelivery: round((usage.serverCpuMs * 1000) / usage.deliveries, 1),
    serverUsPerWatcherSecond: round((usage.serverCpuMs * 1000) / usage.watcherSeconds, 0),
    framesPerSocketSecond: round(usage.frames / usage.watcherSeconds, 1),
    serverBusyPct: pct(usage.serverCpuMs),
    driverBusyPct,
    clientsBusyPct,
    machineBusyPct: round((usage.machineBusyMs / usage.wallMs / cpus().length) * 100, 0),
    generatorBound: clientsBusyPct > GENERATOR_BOUND_PCT || driverBusyPct > GENERATOR_BOUND_PCT,
  };
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Number.isFinite(value) ? Math.round(value * scale) / scale : Number.NaN;
}
