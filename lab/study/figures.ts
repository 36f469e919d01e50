// The quantization study's figures, each a function of rows → Plot options (lab/plot renders them,
// shows them inline and saves notebooks/figures/quant-*.svg/png). test/study-figures.test.ts
// snapshots each one on FIXED rows, never on live measurements.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Plot, saveFigure, type PlotOptions } from "../plot/index.ts";
import { REPO_ROOT, TIMINGS_DIR, timingPolicy, writingResults } from "./quantization.ts";
import type { StudyRow } from "./quantization.ts";
import type { MemoryRow, QualityPoint, ServingShape, TaskMetric } from "./analysis.ts";

const MIB = 2 ** 20;

// ─── the bits-per-weight axis and its level names ───────────────────────────────────────────────

const WIDTH = 640;
const MARGIN_LEFT = 56; // room for the y label written along the axis (the top-left corner holds level names)
const MARGIN_RIGHT = 30; // half a level name past the F32 point at the right edge
const LEVEL_FONT = 9; // px
const LEVEL_ROW = 11; // px between rows of level names
const LEVEL_CHAR = 0.7; // generous average glyph advance (em) of DejaVu/system sans at this size: "Q4_K_M" ≈ 36 px

/** One level's position on the bits-per-weight axis. */
interface LevelMark { level: string; bitsPerWeight: number }

/**
 * The log2 bits-per-weight axis with a FIXED domain (3 or less … 32), so the pixel position of a
 * level is known here, before Plot draws: x(b) = left + plotWidth · log2(b / lo) / log2(hi / lo).
 */
function bpwAxis(levels: readonly LevelMark[]) {
  const bpw = levels.map((l) => l.bitsPerWeight).filter((b) => b > 0);
  const lo = Math.min(3, ...bpw.map((b) => b / 1.04));
  const hi = Math.max(32, ...bpw);
  const px = (b: number) => MARGIN_LEFT + ((WIDTH - MARGIN_LEFT - MARGIN_RIGHT) * Math.log2(b / lo)) / Math.log2(hi / lo);
  const x = { type: "log", base: 2, domain: [lo, hi], label: "bits per weight →", ticks: [3, 4, 5, 6, 8, 16, 32], tickFormat: (d: number) => String(d) } as const;
  return { x, px };
}

/**
 * Level names above the frame, one faint vertical guide per level: levels only ~9 px apart on the
 * axis (Q4_0 4.84 and Q4_K_M 5.04 bpw) get different rows instead of overlapping each other, the
 * data or the tick labels. Rows are filled greedily from the left with each name's estimated width.
 */
function levelBand(levels: readonly LevelMark[], px: (b: number) => number): { marks: Plot.Markish[]; marginTop: number } {
  const unique = [...new Map(levels.map((l) => [l.level, l])).values()].sort((a, b) => a.bitsPerWeight - b.bitsPerWeight);
  const rowEnds: number[] = []; // right edge (px) of the last name placed in each row
  const placed = unique.map((l) => {
    const half = (l.level.length * LEVEL_CHAR * LEVEL_FONT) / 2;
    const center = px(l.bitsPerWeight);
    let row = rowEnds.findIndex((end) => end + 4 <= center - half);
    if (row < 0) { row = rowEnds.length; rowEnds.push(0); }
    rowEnds[row] = center + half;
    return { ...l, row };
  });
  const marks = [
    Plot.ruleX(placed, { x: "bitsPerWeight", stroke: "#999", strokeOpacity: 0.35, strokeWidth: 0.75 }),
    // dy is one number per mark, so one text mark per row.
    ...rowEnds.map((_, row) => Plot.text(placed.filter((p) => p.row === row), {
      x: "bitsPerWeight", frameAnchor: "top", dy: -6 - LEVEL_ROW * row, text: "level",
      fontSize: LEVEL_FONT, fillOpacity: 0.75, lineAnchor: "bottom",
    })),
  ];
  return { marks, marginTop: 12 + LEVEL_ROW * Math.max(1, rowEnds.length) };
}

/** Quality relative to F32 (%) against bits per weight, one line per task. */
export function qualityVsBpwFigure(points: readonly QualityPoint[], opts: { threshold?: number; engine?: string; metric?: TaskMetric } = {}): PlotOptions {
  const threshold = opts.threshold ?? 0.95;
  const data = points.map((p) => ({ ...p, percent: 100 * p.relative, low: 100 * (p.relative - p.stdError), high: 100 * (p.relative + p.stdError) }));
  const { x, px } = bpwAxis(points);
  const band = levelBand(points, px);
  return {
    title: `Quality vs bits per weight, per task${opts.metric === "answer-perplexity" ? " (answer perplexity)" : ""}`,
    subtitle: `relative to F32${opts.engine ? ` (${opts.engine} engine)` : ""}: prose = F32 perplexity ÷ perplexity; tasks = ` +
      (opts.metric === "answer-perplexity" ? "F32 answer perplexity ÷ answer perplexity" : "exact-match accuracy ÷ F32 accuracy"),
    caption: `Bars: ±1 standard error from the finite number of task items${opts.metric === "answer-perplexity" ? " (paired item by item with F32)" : ""}. ` +
      `Dashed: the ${Math.round(100 * threshold)}% threshold of the decision rule.`,
    width: WIDTH,
    height: 360 + band.marginTop,
    marginLeft: MARGIN_LEFT,
    marginRight: MARGIN_RIGHT,
    marginTop: band.marginTop,
    x,
    y: { label: "↑ % of F32 quality", labelAnchor: "center", grid: true },
    color: { legend: true },
    marks: [
      ...band.marks,
      Plot.ruleY([100 * threshold], { stroke: "#888", strokeDasharray: "4,3" }),
      Plot.ruleX(data.filter((d) => d.high > d.low), { x: "bitsPerWeight", y1: "low", y2: "high", stroke: "task", strokeOpacity: 0.5 }),
      Plot.line(data, { x: "bitsPerWeight", y: "percent", stroke: "task", sort: "bitsPerWeight" }),
      Plot.dot(data, { x: "bitsPerWeight", y: "percent", fill: "task", r: 3 }),
    ],
  };
}

/** Mean KL(F32 ‖ level) against bits per weight, one line per engine (log scale; F32 itself is 0 and left out). */
export function kldVsBpwFigure(rows: readonly StudyRow[]): PlotOptions {
  const data = rows.filter((r) => r.klMean > 0);
  const { x } = bpwAxis(rows);
  return {
    title: "KL divergence from F32 vs bits per weight",
    subtitle: "mean over prose positions of KL(F32 ‖ quantized), nats; each engine against its own F32",
    width: WIDTH,
    height: 340,
    marginLeft: MARGIN_LEFT,
    marginRight: MARGIN_RIGHT,
    x,
    y: { type: "log", label: "↑ mean KL (nats, log scale)", grid: true, tickFormat: "~e" },
    color: { legend: true },
    marks: [
      Plot.line(data, { x: "bitsPerWeight", y: "klMean", stroke: "engine", sort: "bitsPerWeight" }),
      Plot.dot(data, { x: "bitsPerWeight", y: "klMean", fill: "engine", r: 3 }),
      Plot.text(data.filter((r) => r.engine === data[0]?.engine), { x: "bitsPerWeight", y: "klMean", text: "level", dx: 6, textAnchor: "start", fontSize: 9 }),
    ],
  };
}

/** Decode tokens/s against bits per weight, one line per engine. */
export function decodeSpeedFigure(rows: readonly StudyRow[], opts: { caption?: string } = {}): PlotOptions {
  const measured = rows.filter((r) => Number.isFinite(r.decodeTokensPerSecond));
  if (measured.length === 0) throw new Error("decodeSpeedFigure: no row has a measured decode speed (the study ran with speed: false)");
  const { x, px } = bpwAxis(measured);
  const band = levelBand(measured, px);
  return {
    title: "Decode speed vs bits per weight, per engine",
    subtitle: "tokens/s at batch size 1, median of the timed runs (engines interleaved run by run)",
    ...(opts.caption ? { caption: opts.caption } : {}),
    width: WIDTH,
    height: 340 + band.marginTop,
    marginLeft: MARGIN_LEFT,
    marginRight: MARGIN_RIGHT,
    marginTop: band.marginTop,
    x,
    y: { label: "↑ decode tokens/s", labelAnchor: "center", grid: true, zero: true },
    color: { legend: true },
    marks: [
      ...band.marks, // level names above the frame: labels at the points overlapped where levels crowd (4.8–5.8 bpw)
      Plot.line(measured, { x: "bitsPerWeight", y: "decodeTokensPerSecond", stroke: "engine", sort: "bitsPerWeight" }),
      Plot.dot(measured, { x: "bitsPerWeight", y: "decodeTokensPerSecond", fill: "engine", r: 3 }),
    ],
  };
}

/** Memory per level at a serving shape: stacked bars of weights and KV cache, in MiB. */
export function memoryFigure(rows: readonly MemoryRow[], shape: ServingShape): PlotOptions {
  const data = rows.flatMap((r) => [
    { level: r.level, part: "weights", mib: r.weightBytes / MIB },
    { level: r.level, part: "KV cache", mib: r.kvCacheBytes / MIB },
  ]);
  const kvType = shape.kvBytesPerElement === 2 ? "F16" : shape.kvBytesPerElement === 4 ? "F32" : `${shape.kvBytesPerElement}-byte`;
  return {
    title: "Memory: weights + KV cache",
    subtitle: `${shape.concurrentSequences} sequence${shape.concurrentSequences === 1 ? "" : "s"} × ${shape.contextLength} tokens of context, ${kvType} KV cache`,
    width: 640,
    height: 40 + 26 * rows.length,
    marginLeft: 60,
    x: { label: "MiB →", grid: true },
    y: { label: null, domain: rows.map((r) => r.level) },
    color: { legend: true, domain: ["weights", "KV cache"], range: ["#4269d0", "#efb118"] },
    marks: [
      Plot.barX(data, { x: "mib", y: "level", fill: "part" }),
      Plot.text(rows, { x: (r: MemoryRow) => r.totalBytes / MIB, y: "level", text: (r: MemoryRow) => `${(r.totalBytes / MIB).toFixed(2)} MiB`, dx: 4, textAnchor: "start" }),
      Plot.ruleX([0]),
    ],
    marginRight: 70,
  };
}

/**
 * Original weights of one block and what the block gives back, weight by weight. `subBlock` draws a
 * dashed line between sub-blocks of that many weights (Q4_K: 32); `subtitle` says what is shown.
 */
export function blockFigure(type: string, original: Float32Array, rebuilt: Float32Array, opts: { subtitle?: string; subBlock?: number } = {}): PlotOptions {
  const data = Array.from(original, (w, i) => ({ i, original: w, rebuilt: rebuilt[i] }));
  const bounds = opts.subBlock ? Array.from({ length: Math.ceil(original.length / opts.subBlock) - 1 }, (_, k) => (k + 1) * opts.subBlock! - 0.5) : [];
  return {
    title: `One ${type} block: original weights vs what the block stores`,
    ...(opts.subtitle ? { subtitle: opts.subtitle } : {}),
    width: 640,
    height: 260,
    x: { label: "weight index in the block →" },
    y: { label: "↑ weight", grid: true },
    marks: [
      Plot.ruleY([0]),
      ...(bounds.length ? [Plot.ruleX(bounds, { stroke: "#888", strokeDasharray: "4,3" })] : []),
      Plot.link(data, { x1: "i", x2: "i", y1: "original", y2: "rebuilt", stroke: "#e15759" }),
      Plot.dot(data, { x: "i", y: "original", stroke: "#4269d0", r: 2.5 }),
      Plot.dot(data, { x: "i", y: "rebuilt", fill: "#e15759", r: 1.8 }),
    ],
    caption: `Blue rings: F32 weights. Red dots: dequantized. Red lines: the error.${bounds.length ? " Dashed: sub-block boundaries (each has its own scale and min)." : ""}`,
  };
}

/** The names the notebook saves the figures under (notebooks/figures/NAME.svg/.png). */
export const QUANT_FIGURE_NAMES = {
  quality: "quant-quality-vs-bpw",
  accuracy: "quant-accuracy-vs-bpw",
  kld: "quant-kld-vs-bpw",
  speed: "quant-decode-speed",
  memory: "quant-memory",
  q4_0Block: "quant-q4_0-block",
  q4_KBlock: "quant-q4_k-block",
} as const;

/**
 * Saves a study figure into notebooks/figures/ (SVG + PNG) — except under vitest: the notebook test
 * runs every notebook without saving it, and a test must not rewrite committed files with fresh
 * (timing-dependent) numbers. Returns whether it wrote.
 */
export function saveStudyFigure(name: string, svg: string): boolean {
  if (!writingResults()) return false;
  saveFigure(name, svg, { dir: join(REPO_ROOT, "notebooks", "figures") });
  return true;
}

/**
 * Saves the decode-speed figure of a run that measured speed: always into data/results/timings/
 * (git-ignored), and over the committed notebooks/figures/quant-decode-speed.* only when timings
 * were asked for (timingPolicy().saveFigure: `npm start -- --with-timings`). Never under vitest.
 * Returns the paths written.
 */
export function saveSpeedFigure(svg: string): string[] {
  if (!writingResults()) return [];
  const written = [saveFigure(QUANT_FIGURE_NAMES.speed, svg, { dir: TIMINGS_DIR }).svg];
  if (timingPolicy().saveFigure) written.push(saveFigure(QUANT_FIGURE_NAMES.speed, svg, { dir: join(REPO_ROOT, "notebooks", "figures") }).svg);
  return written;
}

/**
 * A committed figure, notebooks/figures/NAME.svg, as the SVG string saveFigure was given (its final
 * newline removed): a run that does not measure speed shows the speed figure last measured on
 * purpose, and shows it byte for byte as the run that measured it did.
 */
export function committedStudyFigure(name: string): string {
  const path = join(REPO_ROOT, "notebooks", "figures", `${name}.svg`);
  if (!existsSync(path)) {
    throw new Error(`no ${name}.svg in notebooks/figures/: measure it with \`npm start -- --with-timings\` (or run the notebook in Jupyter)`);
  }
  return readFileSync(path, "utf8").replace(/\n$/, "");
}
