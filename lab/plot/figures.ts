// Named figures. Each is a function of its data (or of a seed) returning Plot options; renderFigure
// turns it into SVG, saveFigure writes notebooks/figures/NAME.svg/.png, and test/plot.test.ts
// snapshots every entry of `figures` below. Later lessons add their figures here.
import { BLOCK_GEOMETRY, bitsPerWeight, type GgmlTypeName } from "../ggml-types.ts";
import { Plot, gaussian, renderFigure, saveFigure, seededRandom, type PlotOptions } from "./index.ts";

// ─── bits per weight of ggml formats (real data from lab/ggml-types.ts) ──────────────────────────

export type FormatFamily = "float" | "legacy quant" | "k-quant" | "i-quant";

export interface FormatRow {
  format: GgmlTypeName;
  family: FormatFamily;
  bitsPerWeight: number;
  /** weights per block */
  blockSize: number;
}

/** Every weight format in lab/ggml-types.ts (integer tensor types and Q8_K, a dot-product helper, left out). */
export function formatRows(): FormatRow[] {
  const skip = new Set(["I8", "I16", "I32", "I64", "F64", "Q8_K", "Q8_1"]);
  return (Object.keys(BLOCK_GEOMETRY) as GgmlTypeName[])
    .filter((t) => !skip.has(t))
    .map((format) => ({ format, family: familyOf(format), bitsPerWeight: bitsPerWeight(format), blockSize: BLOCK_GEOMETRY[format].blockSize }));
}

function familyOf(t: GgmlTypeName): FormatFamily {
  if (t === "F32" || t === "F16" || t === "BF16") return "float";
  if (t.endsWith("_K")) return "k-quant";
  if (t.startsWith("IQ") || t.startsWith("TQ")) return "i-quant";
  return "legacy quant";
}

/** Horizontal bars: bits per weight of each ggml format, colored by family, sorted by size. */
export function bitsPerWeightFigure(rows: FormatRow[] = formatRows()): PlotOptions {
  return {
    title: "Bits per weight of ggml tensor formats",
    subtitle: "8 × bytes per block ÷ weights per block — the scales stored with each block are included",
    width: 640,
    marginLeft: 70,
    x: { label: "bits per weight →", grid: true, domain: [0, 32] },
    marginRight: 40, // room for the "32.00" label past the last bar
    y: { label: null },
    color: { legend: true, domain: ["float", "legacy quant", "k-quant", "i-quant"] },
    marks: [
      Plot.barX(rows, { x: "bitsPerWeight", y: "format", fill: "family", sort: { y: "x" } }),
      Plot.text(rows, { x: "bitsPerWeight", y: "format", text: (d: FormatRow) => d.bitsPerWeight.toFixed(2), dx: 4, textAnchor: "start" }),
      Plot.ruleX([0]),
    ],
  };
}

// ─── toy batch throughput (seeded noise) ─────────────────────────────────────────────────────────

export interface ThroughputRow {
  batchSize: number;
  /** generated tokens per second, all sequences together */
  tokensPerSecond: number;
  trial: number;
}

/**
 * A toy decode roofline: one step reads every weight once (memory time, shared by the batch) and
 * does work proportional to the batch (compute time), so tokens/s = B / (tMem + B·tCompute) rises
 * almost linearly and then saturates at 1/tCompute. Five noisy "measurements" per batch size.
 */
export function toyThroughputRows(seed: number, opts: { tMemMs?: number; tComputeMs?: number; trials?: number } = {}): ThroughputRow[] {
  const { tMemMs = 20, tComputeMs = 0.6, trials = 5 } = opts;
  const random = seededRandom(seed);
  const rows: ThroughputRow[] = [];
  for (const batchSize of [1, 2, 4, 8, 16, 32, 64, 128]) {
    const ideal = (1000 * batchSize) / (tMemMs + batchSize * tComputeMs);
    for (let trial = 0; trial < trials; trial++) {
      rows.push({ batchSize, trial, tokensPerSecond: ideal * (1 + 0.05 * gaussian(random)) });
    }
  }
  return rows;
}

/** Scatter of the noisy measurements over the model's curve, log-scaled batch axis. */
export function toyThroughputFigure(seed: number, opts: { tMemMs?: number; tComputeMs?: number } = {}): PlotOptions {
  const { tMemMs = 20, tComputeMs = 0.6 } = opts;
  const rows = toyThroughputRows(seed, { tMemMs, tComputeMs });
  const curve = Array.from({ length: 57 }, (_, i) => 2 ** (i / 8)).map((b) => ({ batchSize: b, tokensPerSecond: (1000 * b) / (tMemMs + b * tComputeMs) }));
  return {
    title: "Batching: from memory-bound to compute-bound decode (toy model)",
    caption: `tokens/s = B / (t_mem + B·t_compute) with t_mem = ${tMemMs} ms, t_compute = ${tComputeMs} ms; dots: 5 simulated runs with 5% noise (seed ${seed}).`,
    width: 640,
    height: 360,
    x: { type: "log", base: 2, label: "batch size →" },
    y: { label: "↑ tokens/s (all sequences)", grid: true, nice: true },
    marks: [
      Plot.line(curve, { x: "batchSize", y: "tokensPerSecond", stroke: "#888" }),
      Plot.ruleY([1000 / tComputeMs], { stroke: "#888", strokeDasharray: "4,3" }),
      Plot.dot(rows, { x: "batchSize", y: "tokensPerSecond", fill: "#4269d0", r: 2.5 }),
    ],
  };
}

// ─── the registry `npm start` and the snapshot tests walk ────────────────────────────────────────

/** Every named figure with its fixed inputs: NAME → Plot options. */
export const figures: Record<string, () => PlotOptions> = {
  "bits-per-weight": () => bitsPerWeightFigure(),
  "toy-batch-throughput": () => toyThroughputFigure(42),
};

/** Renders every entry of `figures` into `dir` as NAME.svg + NAME.png; returns the names written. */
export function saveAllFigures(dir?: string): string[] {
  for (const [name, make] of Object.entries(figures)) saveFigure(name, renderFigure(make()), { dir });
  return Object.keys(figures);
}
