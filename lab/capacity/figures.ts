// The figures of notebook 05 (serving a 70B model). Each is a function of its rows returning Plot
// options; the notebook computes the rows with lab/capacity and saves the SVG + PNG with
// lab.saveFigure, and test/capacity-figures.test.ts snapshots each one on fixed rows.
import { Plot, type PlotOptions } from "../plot/index.ts";

export const CAPACITY_FIGURE_NAMES = {
  memory: "capacity-memory-fit",
  latency: "capacity-tpot-vs-batch",
  published: "capacity-published",
  kvPolicy: "capacity-kv-policies",
  autoscale: "capacity-autoscaling",
  calibration: "capacity-calibration",
} as const;

// ─── memory per GPU ──────────────────────────────────────────────────────────────────────────────

export interface MemoryFitRow {
  /** e.g. "A100 80GB × 1, AWQ 4-bit" */
  label: string;
  /** per GPU, in GB (10^9 bytes) */
  weightsGB: number;
  kvGB: number;
  headroomGB: number;
  capacityGB: number;
  fits: boolean;
}

/** Stacked bars per configuration: weights, KV cache and headroom per GPU, with the GPU's memory as a tick. */
export function memoryFitFigure(rows: readonly MemoryFitRow[], opts: { caption?: string } = {}): PlotOptions {
  const parts = rows.flatMap((r) => [
    { label: r.label, part: "weights", gb: r.weightsGB },
    { label: r.label, part: "KV cache", gb: r.kvGB },
    { label: r.label, part: "headroom", gb: r.headroomGB },
  ]);
  const order = rows.map((r) => r.label);
  const max = Math.max(...rows.map((r) => Math.max(r.capacityGB, r.weightsGB + r.kvGB + r.headroomGB)));
  return {
    title: "Memory per GPU: weights ÷ TP + KV cache + headroom",
    subtitle: "black tick: the GPU's memory; a bar past its tick does not fit",
    caption: opts.caption,
    width: 720,
    height: 40 + 26 * rows.length,
    marginLeft: 230,
    marginRight: 40,
    x: { label: "GB per GPU →", grid: true, domain: [0, Math.ceil(max / 20) * 20] },
    y: { label: null, domain: order },
    color: { legend: true, domain: ["weights", "KV cache", "headroom"], range: ["#4269d0", "#efb118", "#c8c8c8"] },
    marks: [
      Plot.barX(parts, Plot.stackX({ x: "gb", y: "label", fill: "part", order: ["weights", "KV cache", "headroom"] })),
      Plot.tickX(rows, { x: "capacityGB", y: "label", stroke: "black", strokeWidth: 2 }),
      Plot.text(rows, { x: (r: MemoryFitRow) => Math.max(r.capacityGB, r.weightsGB + r.kvGB + r.headroomGB), y: "label", text: (r: MemoryFitRow) => (r.fits ? "fits" : "no"), dx: 6, textAnchor: "start" }),
      Plot.ruleX([0]),
    ],
  };
}

// ─── TPOT against batch: the roofline crossover ─────────────────────────────────────────────────

export interface BatchLatencyRow {
  config: string;
  batch: number;
  tpotMs: number;
}

export interface Crossover {
  config: string;
  batch: number;
  tpotMs: number;
}

/** TPOT per configuration over the batch (log scale), the TPOT SLO, and where each turns compute-bound. */
export function tpotVsBatchFigure(rows: readonly BatchLatencyRow[], opts: { sloMs: number; crossovers: readonly Crossover[]; caption?: string }): PlotOptions {
  return {
    title: "Decode: time per output token against the batch",
    subtitle: `flat while memory-bound (every step streams the weights once for the whole batch), rising once compute-bound (dots: the crossover batch); dashed: the ${opts.sloMs} ms SLO`,
    caption: opts.caption,
    width: 720,
    height: 400,
    x: { type: "log", base: 2, label: "sequences decoding together →" },
    y: { type: "log", label: "↑ TPOT (ms)", grid: true },
    color: { legend: true },
    marks: [
      Plot.line(rows, { x: "batch", y: "tpotMs", stroke: "config" }),
      Plot.dot(opts.crossovers, { x: "batch", y: "tpotMs", fill: "config", r: 4 }),
      Plot.ruleY([opts.sloMs], { stroke: "#888", strokeDasharray: "4,3" }),
    ],
  };
}

// ─── published measurements against the model ──────────────────────────────────────────────────

export interface PublishedRow {
  id: string;
  /** what the point measures, for the colour */
  kind: string;
  published: number;
  predicted: number;
  within2x: boolean;
}

/** The marks of a predicted-vs-measured plot: the identity line (solid) and the tolerance band
 *  y = above·x and y = below·x (dashed), over the axis range `band`. */
function identityAndBand(band: number[], above: number, below: number) {
  const line = (f: number, stroke: string, dash?: string) =>
    Plot.line(band.map((v) => ({ x: v, y: f * v })), { x: "x", y: "y", stroke, ...(dash ? { strokeDasharray: dash } : {}), clip: true });
  return [line(1, "#444"), line(above, "#888", "4,3"), line(below, "#888", "4,3")];
}

/** Predicted against published (log–log), the identity and the 2× band; misses as open circles. */
export function publishedFigure(rows: readonly PublishedRow[], opts: { caption?: string } = {}): PlotOptions {
  const values = rows.flatMap((r) => [r.published, r.predicted]);
  const lo = Math.min(...values) / 2.5;
  const hi = Math.max(...values) * 2.5;
  const band = [lo, hi];
  return {
    title: "The roofline against published Llama-2-70B measurements",
    subtitle: "each point: one TensorRT-LLM table entry with its own settings; solid line: exact, dashed: 2× either way; open circles miss by more",
    caption: opts.caption,
    width: 640,
    height: 520,
    x: { type: "log", label: "published →", domain: band },
    y: { type: "log", label: "↑ predicted by lab/capacity", domain: band, grid: true },
    color: { legend: true },
    symbol: { legend: false },
    marks: [
      ...identityAndBand(band, 2, 1 / 2),
      Plot.dot(rows.filter((r) => r.within2x), { x: "published", y: "predicted", fill: "kind", r: 4 }),
      Plot.dot(rows.filter((r) => !r.within2x), { x: "published", y: "predicted", stroke: "kind", r: 5, strokeWidth: 1.5 }),
    ],
  };
}

// ─── KV policies: static, contiguous reservation, paged ──────────────────────────────────────────

export interface KvPolicyRow {
  workload: string;
  policy: string;
  outputTokensPerSecond: number;
  meanBatch: number;
}

/** Output tokens/s per KV policy, grouped by workload, with the mean batch written on each bar. */
export function kvPolicyFigure(rows: readonly KvPolicyRow[], opts: { caption?: string } = {}): PlotOptions {
  return {
    title: "Throughput of one replica under three KV-cache policies",
    subtitle: "static batches with max-length reservation, continuous batching with max-length reservation, paged blocks (label: mean batch)",
    caption: opts.caption,
    width: 720,
    height: 380,
    marginBottom: 40,
    fx: { label: null },
    x: { axis: null, domain: ["static", "contiguous", "paged"] },
    y: { label: "↑ output tokens/s", grid: true },
    color: { legend: true, domain: ["static", "contiguous", "paged"] },
    marks: [
      Plot.barY(rows, { fx: "workload", x: "policy", y: "outputTokensPerSecond", fill: "policy" }),
      Plot.text(rows, { fx: "workload", x: "policy", y: "outputTokensPerSecond", text: (r: KvPolicyRow) => `b=${r.meanBatch.toFixed(0)}`, dy: -6 }),
      Plot.ruleY([0]),
    ],
  };
}

// ─── autoscaling on a bursty trace ───────────────────────────────────────────────────────────────

export interface ReplicaPoint {
  policy: string;
  /** minutes from the start */
  minute: number;
  replicas: number;
}

/** Replicas over time per scaling policy, with the burst windows shaded. */
export function autoscaleFigure(points: readonly ReplicaPoint[], opts: { bursts: readonly [number, number][]; caption?: string }): PlotOptions {
  return {
    title: "Autoscaling on a bursty trace: queue depth against utilisation",
    subtitle: "replicas asked for after each decision; grey: the bursts",
    caption: opts.caption,
    width: 720,
    height: 340,
    x: { label: "minutes →" },
    y: { label: "↑ replicas", grid: true },
    color: { legend: true },
    marks: [
      Plot.rectX(opts.bursts.map(([a, b]) => ({ a, b })), { x1: "a", x2: "b", fill: "#ddd" }),
      Plot.line(points, { x: "minute", y: "replicas", stroke: "policy", curve: "step-after" }),
      Plot.ruleY([0]),
    ],
  };
}

// ─── checked against ourselves: predicted against measured on this CPU ──────────────────────────

export interface CalibrationRow {
  /** the quantization level served, e.g. "Q4_K_M" */
  level: string;
  users: number;
  metric: "TTFT" | "TPOT";
  predictedMs: number;
  measuredMs: number;
  /** the engine `lab serve` ran (lab | llama), predicted with that engine's measured kernels; rows with it are faceted by engine */
  engine?: string;
}

/** Predicted against measured (log–log) for our own service, the identity and a ±30% band; colour: level, symbol: what and how loaded;
 *  one panel per engine when the rows name engines. */
export function calibrationFigure(rows: readonly CalibrationRow[], opts: { caption?: string } = {}): PlotOptions {
  const values = rows.flatMap((r) => [r.predictedMs, r.measuredMs]);
  const lo = Math.min(...values) / 2;
  const hi = Math.max(...values) * 2;
  const band = [lo, hi];
  const series = (r: CalibrationRow) => `${r.metric}, ${r.users} user${r.users > 1 ? "s" : ""}`;
  const faceted = rows.some((r) => r.engine !== undefined);
  return {
    title: "The roofline against our own service on this CPU",
    subtitle: faceted
      ? "lab serve measured by lab/loadtest (median) against the model with each engine's measured kernel rates; dashed: ±30%"
      : "lab serve measured by lab/loadtest (median) against the model with this machine's measured bandwidth and FLOP/s; dashed: ±30%",
    caption: opts.caption,
    width: faceted ? 960 : 640,
    height: 520,
    ...(faceted ? { fx: { label: "engine", domain: [...new Set(rows.map((r) => r.engine ?? ""))] } } : {}),
    x: { type: "log", label: "measured (ms) →", domain: band },
    y: { type: "log", label: "↑ predicted (ms)", domain: band, grid: true },
    color: { legend: true },
    symbol: { legend: true },
    marks: [
      ...identityAndBand(band, 1.3, 0.7),
      Plot.dot(rows, { x: "measuredMs", y: "predictedMs", stroke: "level", symbol: series, r: 5, strokeWidth: 1.5, ...(faceted ? { fx: "engine" } : {}) }),
    ],
  };
}
