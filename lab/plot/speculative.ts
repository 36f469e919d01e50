// Notebook 02's figures (speculative decoding), each a function of rows → Plot options. The rows
// come from lab/speculative/study.ts; test/plot-speculative.test.ts snapshots each figure on FIXED
// rows, never on live measurements. Saved as notebooks/figures/spec-*.svg/.png.
import { Plot, type PlotOptions } from "./index.ts";

const WIDTH = 640;

/** The names notebook 02 saves its figures under (notebooks/figures/NAME.svg/.png). */
export const SPEC_FIGURE_NAMES = {
  toy: "spec-toy-convergence",
  positions: "spec-acceptance-per-position",
  verifyCost: "spec-verify-cost",
  speedup: "spec-speedup-vs-k",
  batch: "spec-batch-speedup",
} as const;

// ─── §2.1 toy distributions ─────────────────────────────────────────────────────────────────────

/** How often each token came out of `draws` rounds of one verifier (variant), or p itself. */
export interface ToyHistogramRow {
  draws: number;
  /** "exact" (the rejection rule), "residual = p" (the classic mistake), … */
  variant: string;
  token: number;
  /** observed frequency, 0..1 */
  frequency: number;
}

/**
 * Emitted-token frequencies against the target p (gray bars), one panel per number of draws: the
 * exact rule's dots settle on the bars, the wrong variant's settle somewhere else.
 */
export function toyConvergenceFigure(rows: readonly ToyHistogramRow[], p: ArrayLike<number>): PlotOptions {
  const draws = [...new Set(rows.map((r) => r.draws))].sort((a, b) => a - b);
  const target = draws.flatMap((n) => Array.from(p, (pi, token) => ({ draws: n, token, p: pi })));
  const variants = [...new Set(rows.map((r) => r.variant))];
  return {
    title: "Rejection sampling on toy distributions: what comes out vs the target p",
    subtitle: "draft tokens drawn from q, verified against p; frequency of each emitted token as draws grow",
    caption: "Gray bars: the target distribution p. Dots: the frequency of each emitted token, one colour per verifier.",
    width: WIDTH,
    height: 300,
    marginLeft: 48,
    marginBottom: 36,
    fx: { label: "draws →", tickFormat: (n: number) => n.toLocaleString("en-US") },
    x: { label: "token", tickSize: 0 },
    y: { label: "↑ frequency", grid: true, zero: true },
    color: { legend: true, domain: variants },
    marks: [
      Plot.barY(target, { fx: "draws", x: "token", y: "p", fill: "#ccc" }),
      Plot.dot(rows, { fx: "draws", x: "token", y: "frequency", stroke: "variant", r: 2.5, strokeWidth: 1.5 }),
      Plot.ruleY([0]),
    ],
  };
}

// ─── §2.3 acceptance per draft position ─────────────────────────────────────────────────────────

export interface PositionRow {
  /** prompt set: prose, arith, code, chat, … */
  task: string;
  drafter: string;
  /** draft position 1..k */
  position: number;
  /** accepted ÷ drafted at that position (given the positions before it were accepted) */
  acceptance: number;
}

/** Acceptance at each draft position, one line per task, one panel per drafter. */
export function acceptancePerPositionFigure(rows: readonly PositionRow[], opts: { k?: number } = {}): PlotOptions {
  const data = rows.filter((r) => Number.isFinite(r.acceptance));
  return {
    title: "Acceptance per draft position, per task",
    subtitle: `greedy; position i counts only rounds whose first i − 1 drafts were accepted${opts.k ? ` (k = ${opts.k})` : ""}`,
    width: WIDTH,
    height: 300,
    marginLeft: 48,
    fx: { label: null },
    x: { label: "draft position →", ticks: [...new Set(data.map((r) => r.position))], tickFormat: "d" },
    y: { label: "↑ acceptance", grid: true, domain: [0, 1] },
    color: { legend: true },
    marks: [
      Plot.frame({ stroke: "#ddd" }),
      Plot.line(data, { fx: "drafter", x: "position", y: "acceptance", stroke: "task", sort: "position" }),
      Plot.dot(data, { fx: "drafter", x: "position", y: "acceptance", fill: "task", r: 3 }),
    ],
  };
}

// ─── §2.4 the cost model ────────────────────────────────────────────────────────────────────────

export interface CostRow {
  level: string;
  k: number;
  /** one target pass over k+1 tokens ÷ one target decode step */
  v: number;
}

/** v(k) against k per target level, between the two regimes: 1 (the pass costs one step: decode is
 *  bandwidth- or dequantization-bound) and k + 1 (it costs k + 1 steps: compute-bound). */
export function verifyCostFigure(rows: readonly CostRow[]): PlotOptions {
  const ks = [...new Set(rows.map((r) => r.k))].sort((a, b) => a - b);
  const bounds = ks.flatMap((k) => [{ k, v: k + 1, regime: "k + 1 (compute-bound)" }, { k, v: 1, regime: "1 (bandwidth-bound)" }]);
  return {
    title: "What verification costs: v(k) per target level",
    subtitle: "one target pass over k + 1 tokens ÷ one target decode step (fastest of interleaved repeats)",
    caption: "Dashed: the two regimes. Near 1, k + 1 tokens cost about one decode step and speculation can pay; near k + 1 it cannot.",
    width: WIDTH,
    height: 320,
    marginLeft: 48,
    x: { label: "k (draft tokens per pass) →", ticks: ks, tickFormat: "d" },
    y: { label: "↑ v(k), target steps", grid: true, zero: true },
    color: { legend: true, domain: [...new Set(rows.map((r) => r.level))] },
    marks: [
      Plot.line(bounds, { x: "k", y: "v", z: "regime", stroke: "#999", strokeDasharray: "4,3" }),
      Plot.text(bounds.filter((b) => b.k === ks[ks.length - 1]), { x: "k", y: "v", text: "regime", dy: -8, textAnchor: "end", fill: "#777", fontSize: 9 }),
      Plot.line(rows, { x: "k", y: "v", stroke: "level", sort: "k" }),
      Plot.dot(rows, { x: "k", y: "v", fill: "level", r: 3 }),
    ],
  };
}

export interface SpeedupRow {
  level: string;
  k: number;
  /** measured: speculative tokens/s ÷ plain tokens/s, same engine and level, interleaved */
  measured: number;
  /** E(α, k) / (k·c + v(k)) with the α, c and v(k) measured for that cell */
  predicted: number;
}

/** Measured and predicted speedup against k, one panel per target level. */
export function speedupVsKFigure(rows: readonly SpeedupRow[], opts: { caption?: string } = {}): PlotOptions {
  const data = rows.flatMap((r) => [
    { level: r.level, k: r.k, speedup: r.measured, series: "measured" },
    { level: r.level, k: r.k, speedup: r.predicted, series: "predicted by the cost model" },
  ]);
  const ks = [...new Set(rows.map((r) => r.k))].sort((a, b) => a - b);
  const levels = [...new Set(rows.map((r) => r.level))]; // in the rows' order (F32, Q8_0, Q4_K_M), not alphabetical
  return {
    title: "Speedup over plain decoding vs k, per target level",
    subtitle: "draft model, greedy; measured beside E(α, k) / (k·c + v(k))",
    ...(opts.caption ? { caption: opts.caption } : {}),
    width: WIDTH,
    height: 300,
    marginLeft: 48,
    fx: { label: null, domain: levels },
    x: { label: "k →", ticks: ks, tickFormat: "d" },
    y: { label: "↑ speedup (×)", grid: true, zero: true },
    color: { legend: true, domain: ["measured", "predicted by the cost model"], range: ["#4269d0", "#e15759"] },
    marks: [
      Plot.frame({ stroke: "#ddd" }),
      Plot.ruleY([1], { stroke: "#888" }),
      Plot.line(data.filter((d) => d.series === "measured"), { fx: "level", x: "k", y: "speedup", stroke: "series", sort: "k" }),
      Plot.line(data.filter((d) => d.series !== "measured"), { fx: "level", x: "k", y: "speedup", stroke: "series", sort: "k", strokeDasharray: "4,3" }),
      Plot.dot(data, { fx: "level", x: "k", y: "speedup", fill: "series", r: 2.5 }),
    ],
  };
}

// ─── §2.5 batch size ────────────────────────────────────────────────────────────────────────────

export interface BatchSpeedupRow {
  /** sequences per step */
  batch: number;
  k: number;
  /** E(α, k) / (k·c_B + v_B(k)), with c and v measured at that batch size */
  predicted: number;
}

/** Predicted speedup against batch size (log axis), one line per k. */
export function batchSpeedupFigure(rows: readonly BatchSpeedupRow[], opts: { level?: string } = {}): PlotOptions {
  const batches = [...new Set(rows.map((r) => r.batch))].sort((a, b) => a - b);
  const data = rows.map((r) => ({ ...r, series: `k = ${r.k}` }));
  return {
    title: "The gain shrinks as the batch grows",
    subtitle: `predicted speedup with c and v(k) measured at each batch size${opts.level ? ` (${opts.level} target)` : ""}: B sequences per step, k + 1 tokens each`,
    caption: "Below the gray line speculation is slower than plain batched decoding.",
    width: WIDTH,
    height: 300,
    marginLeft: 48,
    x: { type: "log", base: 2, label: "sequences per step (batch) →", ticks: batches, tickFormat: "d" },
    y: { label: "↑ predicted speedup (×)", grid: true, zero: true },
    color: { legend: true },
    marks: [
      Plot.ruleY([1], { stroke: "#888" }),
      Plot.line(data, { x: "batch", y: "predicted", stroke: "series", sort: "batch" }),
      Plot.dot(data, { x: "batch", y: "predicted", fill: "series", r: 3 }),
    ],
  };
}
