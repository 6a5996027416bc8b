/**
 * A mergeable latency histogram: logarithmic buckets 1% wide from 0.01 ms to ~10 minutes, so the clients'
 * millions of deliveries travel to the driver as one small array per process and percentiles stay within 1%.
 */
const MIN_MS = 0.01;
const GROWTH = 1.01;
const BUCKETS = Math.ceil(Math.log(600_000 / MIN_MS) / Math.log(GROWTH)) + 1;

export interface HistogramData {
  counts: number[];
  max: number;
}

export class Histogram {
  readonly counts = new Float64Array(BUCKETS);
  max = 0;
  total = 0;

  add(ms: number): void {
    const value = Math.max(ms, MIN_MS);
    const bucket = Math.min(BUCKETS - 1, Math.floor(Math.log(value / MIN_MS) / Math.log(GROWTH)));
    this.counts[bucket]!++;
    this.total++;
    if (ms > this.max) this.max = ms;
  }

  merge(data: HistogramData): void {
    data.counts.forEach((count, bucket) => {
      this.counts[bucket]! += count;
      this.total += count;
    });
    this.max = Math.max(this.max, data.max);
  }

  /** The upper edge of the bucket holding the p-th percentile (never above the maximum seen). */
  percentile(p: number): number {
    if (this.total === 0) return Number.NaN;
    const rank = Math.ceil((p / 100) * this.total);
    let seen = 0;
    for (let bucket = 0; bucket < BUCKETS; bucket++) {
      seen += this.counts[bucket]!;
      if (seen >= rank) return Math.min(this.max, MIN_MS * GROWTH ** (bucket + 1));
    }
    return this.max;
  }

  toData(): HistogramData {
    return { counts: Array.from(this.counts), max: this.max };
  }
}

export interface LatencySummary {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export function summarise(histogram: Histogram): LatencySummary {
  const round = (ms: number) => Math.round(ms * 10) / 10;
  return {
    count: histogram.total,
    p50: round(histogram.percentile(50)),
    p95: round(histogram.percentile(95)),
    p99: round(histogram.percentile(99)),
    max: round(histogram.max),
  };
}
