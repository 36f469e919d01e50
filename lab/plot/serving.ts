// Notebook 04's figures (batching and serving), each a function of rows → Plot options. The rows come
// from load tests of `lab serve` (lab/loadtest); test/plot-serving.test.ts snapshots each figure on
// FIXED rows, never on live measurements. Saved as notebooks/figures/serve-*.svg/.png.
import { Plot, type PlotOptions } from "./index.ts";

const WIDTH = 640;

/** Each facet's name written inside its panel, top left (a right-hand facet axis gets cut off). */
function panelTitles(names: readonly string[]) {
  return Plot.text(names, { fy: (d: string) => d, text: (d: string) => d, frameAnchor: "top-left", dx: 6, dy: 4, fontWeight: "bold", fontSize: 11 });
}

/** The names notebook 04 saves its figures under (notebooks/figures/NAME.svg/.png). */
export const SERVING_FIGURE_NAMES = {
  curve: "serve-throughput-latency",
  itl: "serve-chunked-prefill-itl",
  kv: "serve-kv-blocks",
} as const;

// ─── §4.1 static vs continuous batching ─────────────────────────────────────────────────────────

/** One load test of one scheduling mode at one arrival rate. */
export interface CurvePoint {
  /** "continuous", "static", … */
  mode: string;
  /** offered load, requests per second */
  rate: number;
  /** measured output tokens per second */
  throughput: number;
  /** which latency: "TTFT p90", "TPOT p50", … (one panel each) */
  metric: string;
  ms: number;
}

/**
 * Latency against throughput as the offered load rises, one line per scheduling mode, one panel per
 * latency metric; each point is labelled with its arrival rate. Down and to the right is better: a
 * mode whose curve turns up at a lower throughput saturates first.
 */
export function throughputLatencyFigure(points: readonly CurvePoint[]): PlotOptions {
  const data = points.filter((p) => Number.isFinite(p.ms) && Number.isFinite(p.throughput));
  const modes = [...new Set(data.map((p) => p.mode))];
  const metrics = [...new Set(data.map((p) => p.metric))];
  const byLine = (p: CurvePoint) => `${p.metric}|${p.mode}`;
  const sorted = [...data].sort((a, b) => (byLine(a) < byLine(b) ? -1 : byLine(a) > byLine(b) ? 1 : a.rate - b.rate));
  return {
    title: "Throughput vs latency as the arrival rate rises: static vs continuous batching",
    subtitle: "each point one load test (Poisson arrivals); labels are requests per second offered",
    caption: "A curve that bends upward at lower throughput saturates first. Log scale on latency.",
    width: WIDTH,
    height: 160 + 150 * metrics.length,
    marginLeft: 56,
    marginRight: 24,
    fy: { axis: null, domain: metrics },
    x: { label: "output tokens/s →", grid: true, zero: true },
    y: { label: "↑ ms", type: "log", grid: true },
    color: { legend: true, domain: modes },
    marks: [
      panelTitles(metrics),
      Plot.line(sorted, { x: "throughput", y: "ms", fy: "metric", stroke: "mode", z: byLine, strokeWidth: 1.5 }),
      Plot.dot(sorted, { x: "throughput", y: "ms", fy: "metric", stroke: "mode", fill: "white", r: 3 }),
      Plot.text(sorted, { x: "throughput", y: "ms", fy: "metric", text: (p: CurvePoint) => `${p.rate}/s`, dy: -9, fontSize: 9, fill: "mode" }),
    ],
  };
}

// ─── §4.2 chunked prefill and ITL spikes ─────────────────────────────────────────────────────────

/** One gap between two chunks of a stream that was already running. */
export interface ItlPoint {
  /** "chunked prefill (budget 64)", "no chunking", … (one panel each) */
  mode: string;
  /** when the later chunk arrived, ms from the test's start */
  tMs: number;
  itlMs: number;
}

/**
 * Every inter-token gap of the running streams over time, one panel per mode, with a rule where
 * the long prompt arrived: without chunking its whole prefill lands in one step, and every stream
 * stalls for it at once.
 */
export function itlSpikesFigure(points: readonly ItlPoint[], arrivals: readonly { mode: string; tMs: number }[]): PlotOptions {
  const modes = [...new Set(points.map((p) => p.mode))];
  return {
    title: "Inter-token latency of running streams while a long prompt arrives",
    subtitle: "each dot one gap between two chunks of a stream; the dashed rule marks the long prompt's arrival",
    width: WIDTH,
    height: 150 + 140 * modes.length,
    marginLeft: 56,
    fy: { axis: null, domain: modes },
    x: { label: "time since the first request (ms) →", grid: true, zero: true },
    y: { label: "↑ gap (ms)", grid: true, zero: true },
    marks: [
      panelTitles(modes),
      Plot.ruleX(arrivals.filter((a) => modes.includes(a.mode)), { x: "tMs", fy: "mode", stroke: "#d62728", strokeDasharray: "4,3" }),
      Plot.dot(points, { x: "tMs", y: "itlMs", fy: "mode", r: 2, fill: "#1f77b4" }),
      Plot.ruleY([0]),
    ],
  };
}

// ─── §4.3 KV blocks over time ────────────────────────────────────────────────────────────────────

/** One sample of the server's gauges. */
export interface KvSample {
  tMs: number;
  /** "KV blocks used", "requests running", "requests waiting" */
  series: string;
  value: number;
}

/**
 * KV blocks in use, requests running and waiting over a load test, sampled from /metrics, with the
 * pool's size as a dashed rule: when used blocks hit the pool, the newest request is preempted
 * (running drops, waiting rises) and recomputed later.
 */
export function kvBlocksFigure(samples: readonly KvSample[], opts: { totalBlocks: number; preemptions?: number }): PlotOptions {
  const series = [...new Set(samples.map((s) => s.series))];
  const sorted = [...samples].sort((a, b) => (a.series < b.series ? -1 : a.series > b.series ? 1 : a.tMs - b.tMs));
  return {
    title: "KV-cache blocks and requests over a load test",
    subtitle: `pool of ${opts.totalBlocks} blocks (dashed)${opts.preemptions !== undefined ? `; ${opts.preemptions} preemption${opts.preemptions === 1 ? "" : "s"} during the test` : ""}`,
    width: WIDTH,
    height: 320,
    marginLeft: 48,
    x: { label: "time (ms) →", grid: true, zero: true },
    y: { label: "↑ count", grid: true, zero: true },
    color: { legend: true, domain: series },
    marks: [
      Plot.ruleY([opts.totalBlocks], { stroke: "#888", strokeDasharray: "5,4" }),
      Plot.line(sorted, { x: "tMs", y: "value", stroke: "series", curve: "step-after", strokeWidth: 1.5 }),
      Plot.ruleY([0]),
    ],
  };
}
