/**
 * The benchmark's side-by-side tables: per scenario, each step's figure for every target with the ratios of ours
 * to the bare object (the runtime's floor) and to the Node baseline, then what the step cost the servers and
 * whether the clients had headroom. Markdown, so a run's output pastes into notes as it is.
 */
import { usageFigures, type Usage, type UsageFigures } from "./usage.js";

export interface StepResult {
  /** The scenario's name (e.g. "single-frames") and the step within it (e.g. "200/s × 100"). */
  scenario: string;
  step: string;
  target: string;
  /** The latency this step compares across targets. */
  headline: { label: string; ms: number };
  /** What the measured window cost; absent where a step is not a delivery window. */
  usage?: Usage;
}

/** Ours against the floor and against the baseline; the floor against the baseline. */
const RATIOS: Array<[string, string]> = [["ours", "bare"], ["ours", "baseline"], ["bare", "baseline"]];

export function sideBySide(scenario: string, results: StepResult[], targets: readonly string[]): string[] {
  const mine = results.filter((r) => r.scenario === scenario);
  if (mine.length === 0) return [];
  const ratios = RATIOS.filter(([a, b]) => targets.includes(a) && targets.includes(b));
  const header = ["step", ...targets, ...ratios.map(([a, b]) => `${a}/${b}`)];
  const lines = [`### ${scenario}`, "", `| ${header.join(" | ")} |`, `|${header.map(() => "---").join("|")}|`];
  const row = (label: string, cells: Array<number | undefined>, format: (v: number) => string, compare = true) => {
    const at = (name: string) => cells[targets.indexOf(name)];
    const ratio = ([a, b]: [string, string]) => {
      const x = at(a);
      const y = at(b);
      return compare && x !== undefined && y !== undefined && y > 0 ? `${(x / y).toFixed(2)}×` : "";
    };
    lines.push(`| ${[label, ...cells.map((v) => (v === undefined ? "–" : format(v))), ...ratios.map(ratio)].join(" | ")} |`);
  };
  for (const step of [...new Set(mine.map((r) => r.step))]) {
    const byTarget = targets.map((t) => mine.find((r) => r.step === step && r.target === t));
    const label = byTarget.find(Boolean)!.headline.label;
    row(`${step}: ${label}`, byTarget.map((r) => r?.headline.ms), formatMs);
    const figures = byTarget.map((r) => (r?.usage ? usageFigures(r.usage) : undefined));
    if (!figures.some(Boolean)) continue;
    const figure = (pick: (f: UsageFigures) => number) => figures.map((f) => (f ? pick(f) : undefined));
    row("  server CPU per frame", figure((f) => f.serverUsPerFrame), (v) => `${v} µs`);
    row("  server CPU per delivery", figure((f) => f.serverUsPerDelivery), (v) => `${v} µs`);
    row("  server CPU per watcher-second", figure((f) => f.serverUsPerWatcherSecond), (v) => `${v} µs`);
    row("  frames per socket per second", figure((f) => f.framesPerSocketSecond), (v) => String(v), false);
    const busy = figures.map((f) =>
      f ? `${f.serverBusyPct} / ${f.clientsBusyPct} / ${f.driverBusyPct} % (machine ${f.machineBusyPct} %)${f.generatorBound ? " GENERATOR-BOUND" : ""}` : "–",
    );
    lines.push(`| ${["  busy: server / busiest client / driver, % of a core (machine: % of all cores)", ...busy, ...ratios.map(() => "")].join(" | ")} |`);
  }
  return [...lines, ""];
}

/** Whether any measured window of these results had a client process or the driver past the bound. */
export function generatorBoundSteps(results: StepResult[]): string[] {
  return results.filter((r) => r.usage && usageFigures(r.usage).generatorBound).map((r) => `${r.scenario} ${r.step} ${r.target}`);
}

function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return "–";
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  return `${ms >= 100 ? ms.toFixed(0) : ms.toFixed(1)} ms`;
}
