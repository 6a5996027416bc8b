/**
 * Side-by-side fan-out benchmark: our Worker + GuildHub (workerd through Miniflare, from the deploy bundle), the
 * bare object (bench/bare-object/: the least a Durable Object can do, in the same workerd setup) and the simplest
 * alternative (bench/baseline-hub.ts: one Node process with `ws`), with the same client processes, the same
 * tokens and the same load in the same run. `npm run bench -- --help` lists the options and scenarios
 * (bench/scenarios.ts). Each event is timed from the publisher's POST (the full path: the simulator's dispatch)
 * to its arrival on every socket, and each measured window reports the server's own CPU per delivered frame and
 * per watcher-second, and how busy the clients and the driver were (bench/usage.ts). Results:
 * bench/results/bench-<time>.json and fanout.svg.
 */
import { fork } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { exportJWK, generateKeyPair } from "jose";
import { freePort } from "../dev/stack/ports.js";
import { AUDIENCE, GUILD, ROOT } from "./bench-ids.js";
import { nowMs } from "./bench-shared.js";
import { fanoutChart } from "./chart.js";
import { buildBundle, removeBundle, startBareObject, startEdge } from "./edge-target.js";
import {
  ClientProcess,
  ISSUER,
  note,
  PeakMemory,
  publish,
  roomCreated,
  SECRET,
  SOCKETS_PER_CLIENT,
  TARGET_NAMES,
  WORKERD_MAX_SOCKETS,
  type BenchOptions,
  type Harness,
  type OursFactory,
  type Target,
} from "./harness.js";
import { choiceListOption, numberListOption, numberOption } from "./options.js";
import { generatorBoundSteps, sideBySide } from "./report-table.js";
import { chartPoints, SCENARIOS, type ScenarioRow } from "./scenarios.js";
import { GENERATOR_BOUND_PCT, usageFigures } from "./usage.js";

const USAGE = `npm run bench -- [options]

  --scenario <list>     ids or names, comma-separated (default: all; with --quick those marked q)
${SCENARIOS.map((s) => `                          ${s.id} ${s.name}${s.quick ? " (q)" : ""}: ${s.title}`).join("\n")}
  --target <list>       ours, bare, baseline (default: all three, side by side with ratios)
  --quick               small N, < 1 min: asserts no loss and exact counts, never a time (CI)
  --sizes <list>        scenario 1's socket counts (default 100,1000,5000,9500)
  --rates <list>        scenario 8's event rates per second (default 10,50,100,200,500)
  --watchers <n>        scenario 8's lobby sockets (default 500)
  --rate-seconds <s>    how long the steady-load scenarios (2, 4, 7, 8, 9, 10) publish (default 5)
  --cadences <list>     scenario 9's FLUSH_CADENCE_MS values (default 0,10,25,50,100,adaptive)
  --relays <list>       scenario 10's relay counts (default 0,1,4; 0: every socket on the hub)
  --relay-watchers <n>  scenario 10's lobby sockets (default 2000), --relay-rate <n> its events/s (default 100)
  --single-frames       clients do not opt into batch frames (scenario 7 never does)
  --bundle <file>       our Worker from a prebuilt bundle (e.g. another commit's, for before/after)
  --profile             CPU profiles of our isolate per step, and of gateway-node in scenario 4
  --help                this text

Each measured window prints the server's CPU (its processes' utime + stime) per frame, per delivery and per
watcher-second, frames per socket per second, and how busy the server, the busiest client process and the
driver were (% of one core); a client process or driver past ${GENERATOR_BOUND_PCT} % marks the figure GENERATOR-BOUND.`;

const { values } = parseArgs({
  options: {
    scenario: { type: "string" },
    quick: { type: "boolean", default: false },
    sizes: { type: "string" },
    target: { type: "string", default: TARGET_NAMES.join(",") },
    "single-frames": { type: "boolean", default: false },
    "rate-seconds": { type: "string" },
    rates: { type: "string" },
    watchers: { type: "string" },
    cadences: { type: "string" },
    relays: { type: "string" },
    "relay-watchers": { type: "string" },
    "relay-rate": { type: "string" },
    bundle: { type: "string" },
    profile: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
});

/** FLUSH_CADENCE_MS values: whole ms from 0 to 1000, or "adaptive". */
function cadenceListOption(raw: string): string[] {
  return raw.split(",").map((item) => {
    const value = item.trim();
    if (value !== "adaptive" && !(Number.isInteger(Number(value)) && Number(value) >= 0 && Number(value) <= 1_000)) {
      throw new Error(`--cadences: ${value} is neither whole ms from 0 to 1000 nor "adaptive"`);
    }
    return value;
  });
}

function scenarioChoice(raw: string | undefined, quick: boolean) {
  if (raw === undefined) return SCENARIOS.filter((s) => !quick || s.quick);
  const wanted = raw.split(",").map((item) => item.trim());
  for (const item of wanted) {
    if (!SCENARIOS.some((s) => String(s.id) === item || s.name === item)) {
      throw new Error(`--scenario: unknown ${item} (have ${SCENARIOS.map((s) => `${s.id} ${s.name}`).join(", ")})`);
    }
  }
  return SCENARIOS.filter((s) => wanted.includes(String(s.id)) || wanted.includes(s.name));
}

async function main(): Promise<void> {
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const quick = values.quick ?? false;
  const options: BenchOptions = {
    quick,
    sizes: numberListOption("sizes", values.sizes, quick ? "100,300" : "100,1000,5000,9500", { min: 1, max: 40_000, integer: true }),
    batchFrames: !(values["single-frames"] ?? false),
    rateSeconds: numberOption("rate-seconds", values["rate-seconds"], 5, { min: 1 }),
    rates: numberListOption("rates", values.rates, "10,50,100,200,500", { min: 1, max: 5_000 }),
    sweepWatchers: numberOption("watchers", values.watchers, 500, { min: 1, max: 40_000, integer: true }),
    profile: values.profile ?? false,
    cadences: cadenceListOption(values.cadences ?? "0,10,25,50,100,adaptive"),
    relayCounts: numberListOption("relays", values.relays, "0,1,4", { min: 0, max: 16, integer: true }),
    relayWatchers: numberOption("relay-watchers", values["relay-watchers"], 2_000, { min: 1, max: 9_000, integer: true }),
    relayRate: numberOption("relay-rate", values["relay-rate"], 100, { min: 1, max: 2_000 }),
  };
  const scenarios = scenarioChoice(values.scenario, quick);
  const targetNames = choiceListOption("target", values.target, TARGET_NAMES);

  const started = nowMs();
  const loadBefore = loadavg();
  const { publicKey, privateKey } = await generateKeyPair("RS256", { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), alg: "RS256" };
  const maxSockets = Math.max(...scenarios.map((s) => s.sockets(options)));
  const processes = Math.max(2, Math.ceil(maxSockets / SOCKETS_PER_CLIENT));
  note(`${processes} client processes, up to ${maxSockets} sockets; targets: ${targetNames.join(", ")}; load average ${loadBefore.map((l) => l.toFixed(2)).join(" ")}`);

  const cleanups: Array<() => Promise<void> | void> = [];
  const targets: Target[] = [];
  const vars = { PRIMARY_GUILD_ID: GUILD, HUB_SECRET: SECRET, JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE, JWT_PUBLIC_JWK: JSON.stringify(publicJwk) };
  // Bundles for fresh instances of ours (scenarios 9 and 10), built on first use.
  const bundles = new Map<boolean, string>();
  const ours: OursFactory | undefined = !targetNames.includes("ours")
    ? undefined
    : async (settings, { profiled = false } = {}) => {
        let script = bundles.get(profiled) ?? (!profiled && values.bundle ? values.bundle : undefined);
        if (!script) {
          const built = buildBundle(ROOT, undefined, !profiled);
          cleanups.push(() => removeBundle(built.dir));
          bundles.set(profiled, (script = built.script));
        }
        const inspectorPort = profiled ? await freePort() : undefined;
        const edge = await startEdge(script, vars, inspectorPort, settings);
        const target: Target = { name: "ours", url: edge.url, seq: 0, pids: edge.pids, maxSockets: WORKERD_MAX_SOCKETS, resumes: true };
        await publish(target, [roomCreated(0)]);
        return { target, bundle: script, inspectorPort, stop: () => edge.stop() };
      };
  try {
    for (const name of TARGET_NAMES.filter((n) => targetNames.includes(n))) {
      if (name === "ours") {
        const bundle = values.bundle ? { dir: "", script: values.bundle } : buildBundle(ROOT);
        if (bundle.dir) cleanups.push(() => removeBundle(bundle.dir));
        options.inspectorPort = options.profile ? await freePort() : undefined;
        const edge = await startEdge(bundle.script, vars, options.inspectorPort);
        cleanups.push(() => edge.stop());
        cleanups.push(() => {
          if (edge.problems.length > 0) note(`our Worker logged warnings/errors: ${edge.problems.slice(0, 5).join(" | ")}`);
        });
        targets.push({ name, url: edge.url, seq: 0, pids: edge.pids, maxSockets: WORKERD_MAX_SOCKETS, resumes: true, hibernate: () => edge.hibernate(GUILD) });
      } else if (name === "bare") {
        const bundle = buildBundle(ROOT, "bench/bare-object/wrangler.toml");
        cleanups.push(() => removeBundle(bundle.dir));
        const bare = await startBareObject(bundle.script, { PRIMARY_GUILD_ID: GUILD, HUB_SECRET: SECRET });
        cleanups.push(() => bare.stop());
        // No hibernation: it keeps its seq in memory only.
        targets.push({ name, url: bare.url, seq: 0, pids: bare.pids, maxSockets: WORKERD_MAX_SOCKETS, resumes: false });
      } else {
        const child = fork(join(ROOT, "bench/baseline-hub.ts"), [], { cwd: ROOT, execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
        cleanups.push(() => void child.kill());
        const port = await new Promise<number>((resolve, reject) => {
          child.once("message", (m: { port: number }) => resolve(m.port));
          child.once("exit", (code) => reject(new Error(`baseline hub exited ${code}`)));
          child.send({ guildId: GUILD, secret: SECRET, issuer: ISSUER, audience: AUDIENCE, publicJwk });
        });
        targets.push({ name, url: `http://127.0.0.1:${port}`, seq: 0, pids: [child.pid!], maxSockets: Infinity, resumes: true });
      }
    }

    const clients = Array.from({ length: processes }, () => new ClientProcess());
    cleanups.push(() => clients.forEach((c) => c.child.kill()));
    const privateJwk = await exportJWK(privateKey);
    const perClient = Math.ceil(maxSockets / processes);
    await Promise.all(
      clients.map((c, p) =>
        c.ask({ type: "init", tokens: { privateJwk: { ...privateJwk }, issuer: ISSUER, audience: AUDIENCE }, firstIndex: p * SOCKETS_PER_CLIENT, count: perClient }, "ready"),
      ),
    );
    note(`tokens signed (${Math.round(nowMs() - started)} ms)`);
    const harness: Harness = { clients, targets, ours, memory: new PeakMemory(), nextUser: 0, options };
    for (const target of targets) {
      // One room every lobby scenario's voice events go to.
      await publish(target, [roomCreated(0)]);
    }

    const results: Record<string, ScenarioRow[]> = {};
    for (const scenario of scenarios) results[scenario.name] = await scenario.run(harness);

    const report = {
      when: new Date().toISOString(),
      command: `npm run bench -- ${process.argv.slice(2).join(" ")}`.trim(),
      machine: { ...machine(), loadAverageBefore: loadBefore, loadAverageAfter: loadavg() },
      quick,
      batchFrames: options.batchFrames,
      durationS: Math.round((nowMs() - started) / 1000),
      results,
    };
    const failures = correctness(results);
    mkdirSync(join(ROOT, "bench/results"), { recursive: true });
    const stamp = report.when.replace(/[:.]/g, "-");
    // The figures the tables print, next to each window's raw counts.
    const withFigures = (_key: string, value: unknown) =>
      value && typeof value === "object" && "usage" in value && (value as ScenarioRow).usage ? { ...value, figures: usageFigures((value as ScenarioRow).usage!) } : value;
    writeFileSync(join(ROOT, `bench/results/bench-${stamp}.json`), JSON.stringify(report, withFigures, 2));
    if (results.lobby) writeFileSync(join(ROOT, "bench/results/fanout.svg"), fanoutChart(chartPoints(results.lobby)));
    const rows = Object.values(results).flat();
    const names = TARGET_NAMES.filter((n) => targetNames.includes(n));
    console.log(["", ...Object.keys(results).flatMap((name) => sideBySide(name, rows, names))].join("\n"));
    const bound = generatorBoundSteps(rows);
    if (bound.length > 0) note(`GENERATOR-BOUND (a client process or the driver past ${GENERATOR_BOUND_PCT} % of a core): ${bound.join("; ")}`);
    note(`load average before ${loadBefore.map((l) => l.toFixed(2)).join(" ")}, after ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
    note(`results in bench/results/bench-${stamp}.json (${report.durationS} s)`);
    if (failures.length > 0) {
      for (const failure of failures) console.error(`[bench] FAIL ${failure}`);
      process.exitCode = 1;
    }
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup();
  }
}

/** Loss and exact counts: the only things --quick asserts (times are noise on a shared CI box). */
function correctness(results: Record<string, ScenarioRow[]>): string[] {
  const failures: string[] = [];
  for (const [name, list] of Object.entries(results)) {
    for (const r of list) {
      const label = `${name} ${r.target} ${r.step}`;
      if (typeof r.lost === "number" && r.lost > 0) failures.push(`${label}: ${r.lost} deliveries lost`);
      if (typeof r.extra === "number" && r.extra > 0) failures.push(`${label}: ${r.extra} unexpected or duplicate deliveries`);
      if (typeof r.exact === "number" && r.exact !== r.sockets) failures.push(`${label}: ${r.exact}/${String(r.sockets)} resumed with exactly the missed events`);
      failures.push(...relayCountFailures(label, r));
    }
  }
  return failures;
}

/**
 * The relay tier's counts (scenario 10): with K relays the hub writes K frames per flush and verifies no client
 * token, and each relay verified exactly its own sockets' tokens.
 */
function relayCountFailures(label: string, row: ScenarioRow): string[] {
  const relays = row.relays;
  const hub = row.hub as { sendsPerFlush: number; tokensVerified: number } | undefined;
  const objects = row.relayObjects as Array<{ sockets: number; tokensVerified: number }> | undefined;
  if (typeof relays !== "number" || relays === 0 || !hub || !objects) return [];
  const failures: string[] = [];
  if (hub.sendsPerFlush !== relays) failures.push(`${label}: the hub wrote ${hub.sendsPerFlush} frames per flush, not ${relays}`);
  if (hub.tokensVerified !== 0) failures.push(`${label}: the hub verified ${hub.tokensVerified} client tokens`);
  for (const relay of objects) {
    if (relay.tokensVerified !== relay.sockets) failures.push(`${label}: a relay verified ${relay.tokensVerified} tokens for its ${relay.sockets} sockets`);
  }
  return failures;
}

function machine(): Record<string, unknown> {
  return { cpus: cpus().length, cpu: cpus()[0]?.model, memGb: Math.round(totalmem() / 1024 ** 3), node: process.version, platform: process.platform };
}

main().catch((error: unknown) => {
  console.error(`[bench] ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exit(1);
});
