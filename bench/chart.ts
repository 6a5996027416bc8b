/** The benchmark's chart: fan-out latency (p50 and p99, POST → last socket) against N, ours next to the bare object and the baseline. */
export interface ChartPoint {
  target: string;
  sockets: number;
  fanout: { p50: number; p99: number };
}

const WIDTH = 720;
const HEIGHT = 420;
const PAD = { left: 70, right: 170, top: 30, bottom: 50 };
const COLOURS: Record<string, string> = { ours: "#d9480f", bare: "#2f9e44", baseline: "#1c7ed6" };

export function fanoutChart(points: ChartPoint[]): string {
  const sizes = [...new Set(points.map((p) => p.sockets))].sort((a, b) => a - b);
  const maxMs = Math.max(1, ...points.map((p) => p.fanout.p99));
  const x = (n: number) => PAD.left + (sizes.length === 1 ? 0.5 : sizes.indexOf(n) / (sizes.length - 1)) * (WIDTH - PAD.left - PAD.right);
  const y = (ms: number) => HEIGHT - PAD.bottom - (ms / maxMs) * (HEIGHT - PAD.top - PAD.bottom);
  const parts: string[] = [];
  for (let i = 0; i <= 4; i++) {
    const ms = (maxMs * i) / 4;
    parts.push(`<line x1="${PAD.left}" x2="${WIDTH - PAD.right}" y1="${y(ms)}" y2="${y(ms)}" stroke="#ddd"/>`);
    parts.push(`<text x="${PAD.left - 8}" y="${y(ms) + 4}" text-anchor="end">${ms.toFixed(0)}</text>`);
  }
  for (const n of sizes) parts.push(`<text x="${x(n)}" y="${HEIGHT - PAD.bottom + 20}" text-anchor="middle">${n.toLocaleString("en")}</text>`);
  let legend = 0;
  for (const target of [...new Set(points.map((p) => p.target))]) {
    const series = points.filter((p) => p.target === target).sort((a, b) => a.sockets - b.sockets);
    for (const [stat, dash] of [["p50", ""], ["p99", ' stroke-dasharray="6 4"']] as const) {
      const path = series.map((p) => `${x(p.sockets)},${y(p.fanout[stat])}`).join(" ");
      const colour = COLOURS[target] ?? "#333";
      parts.push(`<polyline fill="none" stroke="${colour}" stroke-width="2"${dash} points="${path}"/>`);
      for (const p of series) parts.push(`<circle cx="${x(p.sockets)}" cy="${y(p.fanout[stat])}" r="3" fill="${colour}"/>`);
      const ly = PAD.top + 20 * legend++;
      parts.push(`<line x1="${WIDTH - PAD.right + 15}" x2="${WIDTH - PAD.right + 45}" y1="${ly}" y2="${ly}" stroke="${colour}" stroke-width="2"${dash}/>`);
      parts.push(`<text x="${WIDTH - PAD.right + 50}" y="${ly + 4}">${target} ${stat}</text>`);
    }
  }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<text x="${PAD.left}" y="18" font-weight="bold">Lobby fan-out, POST → last socket (ms) vs sockets</text>`,
    ...parts,
    `<text x="${(WIDTH - PAD.right + PAD.left) / 2}" y="${HEIGHT - 10}" text-anchor="middle">sockets (N)</text>`,
    "</svg>",
  ].join("\n");
}
