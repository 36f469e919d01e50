// What the quantization study's rows mean: quality relative to F32 per task, memory at a serving
// configuration, the table a level chooser needs, and the claims check — every verdict COMPUTED
// from the measured numbers, so the text can never contradict the data.
//
// Reading order: relative quality → memory → the chooser's table → claims.
//
// The chooser itself is not here: the notebook uses the reference solution of task 1.4
// (solutions/quantization/memory.ts: chooseLevel, planMemory) on the table built below, so the kit
// has one implementation of it (yours, once task 1.4 passes, can be swapped in).
import type { EngineName } from "../engine/engine.ts";
import type { StudyResult, StudyRow } from "./quantization.ts";

// =============================================================================================
// Relative quality: 1.0 = as good as F32 on the same engine

/** The prose "task": perplexity. */
export const PROSE = "prose";

/**
 * How a task's quality is read: "accuracy" = greedy exact match (what users feel, but coarse and
 * noisy when few answers are right); "answer-perplexity" = perplexity of the reference answer given
 * the prompt (continuous: it moves before accuracy does, and works for a model that rarely gets an
 * answer exactly right). Prose is always perplexity.
 */
export type TaskMetric = "accuracy" | "answer-perplexity";

export interface QualityPoint {
  level: string;
  engine: EngineName;
  bitsPerWeight: number;
  task: string;
  /** prose: F32 perplexity / perplexity; tasks: accuracy / F32 accuracy, or F32 answer perplexity / answer perplexity */
  relative: number;
  /** one standard error of `relative` from the finite number of items (0 for prose and for F32 itself) */
  stdError: number;
  /** the raw figure: perplexity, accuracy or answer perplexity */
  value: number;
}

/** Rows of one engine, F32 first. Throws if the study has no F32 row for it. */
function rowsOf(rows: readonly StudyRow[], engine: EngineName): { f32: StudyRow; rows: StudyRow[] } {
  const mine = rows.filter((r) => r.engine === engine);
  const f32 = mine.find((r) => r.level === "F32");
  if (!f32) throw new Error(`no F32 row for engine "${engine}": relative quality needs the reference`);
  return { f32, rows: mine };
}

/**
 * Quality of every level relative to F32, one point per (level, task). With "accuracy", a task whose
 * F32 accuracy is 0 is left out ("x% of nothing" means nothing) and the standard error of a ratio is
 * the binomial one of the level's accuracy divided by F32's accuracy.
 */
export function relativeQuality(rows: readonly StudyRow[], engine: EngineName, metric: TaskMetric = "accuracy"): QualityPoint[] {
  const { f32, rows: mine } = rowsOf(rows, engine);
  const points: QualityPoint[] = [];
  for (const r of mine) {
    points.push({ level: r.level, engine, bitsPerWeight: r.bitsPerWeight, task: PROSE, relative: f32.perplexity / r.perplexity, stdError: 0, value: r.perplexity });
    if (metric === "answer-perplexity") {
      for (const [task, ppl] of Object.entries(r.answerPerplexity ?? {})) {
        const ref = f32.answerPerplexity?.[task];
        if (ref === undefined || !Number.isFinite(ref) || !Number.isFinite(ppl)) continue;
        const relative = ref / ppl;
        points.push({ level: r.level, engine, bitsPerWeight: r.bitsPerWeight, task, relative, stdError: relative * pairedLogError(f32, r, task, ref), value: ppl });
      }
      continue;
    }
    for (const [task, score] of Object.entries(r.tasks)) {
      const ref = f32.tasks[task];
      if (!ref || ref.accuracy === 0 || score.total === 0) continue;
      // F32 against itself is 100% by definition: no error bar (the reference's own sampling error
      // is already inside every other level's ratio).
      const se = r === f32 ? 0 : Math.sqrt((score.accuracy * (1 - score.accuracy)) / score.total) / ref.accuracy;
      points.push({ level: r.level, engine, bitsPerWeight: r.bitsPerWeight, task, relative: score.accuracy / ref.accuracy, stdError: se, value: score.accuracy });
    }
  }
  return points;
}

/**
 * Standard error of log(relative answer perplexity) from the items, paired: relative = exp(−Σd/T)
 * with d_i = item i's answer NLL at this level minus at F32 and T the answer tokens (recovered from
 * F32's perplexity: T = Σ nll_F32 / log ppl_F32), so SE ≈ sqrt(n) · sd(d) / T. 0 without item data.
 */
function pairedLogError(f32: StudyRow, r: StudyRow, task: string, f32Ppl: number): number {
  const a = f32.answerItemNll?.[task], b = r.answerItemNll?.[task];
  if (!a || !b || a.length !== b.length || a.length < 2 || !(Math.log(f32Ppl) > 0)) return 0;
  const tokens = a.reduce((s, x) => s + x, 0) / Math.log(f32Ppl);
  const d = b.map((x, i) => x - a[i]);
  const mean = d.reduce((s, x) => s + x, 0) / d.length;
  const sd = Math.sqrt(d.reduce((s, x) => s + (x - mean) ** 2, 0) / (d.length - 1));
  return (Math.sqrt(d.length) * sd) / tokens;
}

// =============================================================================================
// Memory at a serving configuration: weights (measured) + KV cache (formula)

export interface ServingShape {
  /** tokens of context per sequence */
  contextLength: number;
  /** sequences served at once */
  concurrentSequences: number;
  /** bytes per KV element: 2 for an F16 cache (llama.cpp's default), 4 for F32 */
  kvBytesPerElement: number;
}

export interface MemoryRow {
  level: string;
  bitsPerWeight: number;
  /** tensor bytes of the GGUF = parameters × bpw / 8 */
  weightBytes: number;
  /** 2 × layers × KV heads × head dim × bytes per element × context × sequences */
  kvCacheBytes: number;
  totalBytes: number;
}

/** One row per level (of one engine's rows; the file is the same for both). */
export function memoryRows(result: StudyResult, shape: ServingShape, engine: EngineName = result.rows[0].engine): MemoryRow[] {
  const { nLayer, nKvHead, headDim } = result.model;
  const kvPerToken = 2 * nLayer * nKvHead * headDim * shape.kvBytesPerElement;
  const kvCacheBytes = kvPerToken * shape.contextLength * shape.concurrentSequences;
  return result.rows.filter((r) => r.engine === engine).map((r) => {
    const weightBytes = (result.model.parameters * r.bitsPerWeight) / 8;
    return { level: r.level, bitsPerWeight: r.bitsPerWeight, weightBytes, kvCacheBytes, totalBytes: weightBytes + kvCacheBytes };
  });
}

// =============================================================================================
// The chooser's table (the shape of solutions/quantization/memory.ts's LevelMeasurement)

export interface LevelTableRow {
  level: string;
  bitsPerWeight: number;
  memoryBytes: number;
  /** task → quality relative to F32 */
  relativeQuality: Record<string, number>;
}

/** Memory at `shape` and relative quality on every task of `engine`'s rows, one entry per level. */
export function levelTable(result: StudyResult, engine: EngineName, shape: ServingShape, metric: TaskMetric = "accuracy"): LevelTableRow[] {
  const memory = new Map(memoryRows(result, shape, engine).map((m) => [m.level, m]));
  const quality = relativeQuality(result.rows, engine, metric);
  return [...memory.values()].map((m) => ({
    level: m.level,
    bitsPerWeight: m.bitsPerWeight,
    memoryBytes: memory.get(m.level)!.totalBytes,
    relativeQuality: Object.fromEntries(quality.filter((q) => q.level === m.level).map((q) => [q.task, q.relative])),
  }));
}

// =============================================================================================
// Claims check: a common interview answer's rules of thumb against our measurements and
// llama.cpp's published ones

/** Where a published number comes from: enough to find the table it was copied from. */
export interface PublishedSource {
  /** a few words for a table cell */
  short: string;
  /** document and section */
  where: string;
  /** which column/row, and the run's conditions */
  what: string;
  url: string;
}

const PERPLEXITY_README = "https://github.com/ggml-org/llama.cpp/blob/master/tools/perplexity/README.md";

/** The two tables of llama.cpp's tools/perplexity/README.md the published numbers are read from. */
export const PUBLISHED_SOURCES = {
  llama3_8b: {
    short: "llama.cpp perplexity README, Llama 3 8B scoreboard",
    where: "llama.cpp tools/perplexity/README.md, \"LLaMA 3 8b Scoreboard\" and its \"LLaMA 2 vs. LLaMA 3 Quantization comparison\" table",
    what: "Mean PPL ratio − 1 of L3 8b q8_0 (1.000425), q4_K_M (1.028160), q2_K (1.564849) against FP16, no imatrix; Wikitext-2, llama.cpp revision f364eb6f, CUDA backend",
    url: PERPLEXITY_README,
  },
  llama2_70b: {
    short: "llama.cpp perplexity README, old Llama 2 70B table",
    where: "llama.cpp tools/perplexity/README.md, \"Old Numbers\": \"Llama 2 70B Scoreboard\"",
    what: "\"Delta to fp16\" of Q2_K (perplexity 3.7339 vs 3.4313); Wikitext-2",
    url: PERPLEXITY_README,
  },
} as const satisfies Record<string, PublishedSource>;

/** Published llama.cpp perplexity increases over F16 (Wikitext-2), in percent, each with its source. */
export const PUBLISHED = [
  { level: "Q8_0", model: "Llama-3-8B", pplIncreasePct: 0.0425, source: PUBLISHED_SOURCES.llama3_8b },
  { level: "Q4_K_M", model: "Llama-3-8B", pplIncreasePct: 2.816, source: PUBLISHED_SOURCES.llama3_8b },
  { level: "Q2_K", model: "Llama-3-8B", pplIncreasePct: 56.4849, source: PUBLISHED_SOURCES.llama3_8b },
  { level: "Q2_K", model: "Llama-2-70B", pplIncreasePct: 8.82, source: PUBLISHED_SOURCES.llama2_70b },
] as const;

/** A common interview answer's rules of thumb: perplexity increase ranges per level, in percent. */
export const COMMON_ANSWER_RANGES = [
  { level: "Q8_0", low: 0, high: 1, text: "Q8_0 costs < 1% perplexity" },
  { level: "Q4_K_M", low: 3, high: 6, text: "Q4_K_M costs 3–6% perplexity" },
  { level: "Q2_K", low: 10, high: 15, text: "Q2_K costs 10–15% perplexity" },
] as const;

export type Verdict = "holds" | "partly holds" | "smaller than claimed" | "larger than claimed" | "does not hold" | "within noise" | "not measured";

export interface ClaimRow {
  claim: string;
  /** what the claim predicts, in words */
  claimed: string;
  /** our measurement, in words */
  ours: string;
  /** llama.cpp's published numbers for real models, in words, with the table they come from */
  published: string;
  verdict: Verdict;
}

/** A range with low 0 ("< 1%") has no lower end: any change below `high`, even a gain, agrees with it. */
function rangeVerdict(x: number, low: number, high: number): Verdict {
  if (x < low && low > 0) return "smaller than claimed";
  if (x > high) return "larger than claimed";
  return "holds";
}

const pct = (x: number) => `${x >= 0 ? "+" : ""}${x.toFixed(x !== 0 && Math.abs(x) < 0.1 ? 3 : 2)}%`;

export interface DegradationOptions {
  /** how task quality is read (default "accuracy") */
  metric?: TaskMetric;
  /** levels whose drops are averaged: the low-bit end where differences show (default Q4_K_M and below) */
  levels?: readonly string[];
  /** standard errors a difference must exceed to count (default 2) */
  sigmas?: number;
}

export interface TaskDegradation {
  task: string;
  /** mean over `levels` of 1 − relative quality */
  meanDrop: number;
  /** its standard error (0 for prose) */
  stdError: number;
  /** meanDrop − prose's meanDrop */
  versusProse: number;
  verdict: "faster than prose" | "not faster than prose" | "within noise" | "not measured";
}

/**
 * Does each task lose quality faster than prose as bits go down? Mean drop over the low-bit levels,
 * compared with prose's drop; a difference under `sigmas` standard errors is "within noise".
 */
export function degradationByTask(rows: readonly StudyRow[], engine: EngineName, opts: DegradationOptions = {}): TaskDegradation[] {
  const levels = opts.levels ?? ["Q4_K_M", "Q4_0", "Q3_K_M", "Q2_K"];
  const sigmas = opts.sigmas ?? 2;
  const points = relativeQuality(rows, engine, opts.metric).filter((p) => levels.includes(p.level));
  const allTasks = [...new Set(rows.filter((r) => r.engine === engine)
    .flatMap((r) => [PROSE, ...Object.keys(opts.metric === "answer-perplexity" ? r.answerPerplexity ?? {} : r.tasks)]))];
  const drop = (task: string) => {
    const ps = points.filter((p) => p.task === task);
    if (ps.length === 0) return undefined;
    const meanDrop = ps.reduce((s, p) => s + (1 - p.relative), 0) / ps.length;
    const stdError = Math.sqrt(ps.reduce((s, p) => s + p.stdError ** 2, 0)) / ps.length;
    return { meanDrop, stdError };
  };
  const prose = drop(PROSE);
  return allTasks.map((task) => {
    const d = drop(task);
    if (!d || !prose) return { task, meanDrop: NaN, stdError: NaN, versusProse: NaN, verdict: "not measured" as const };
    const versusProse = d.meanDrop - prose.meanDrop;
    const verdict = task === PROSE ? "not faster than prose" as const
      : Math.abs(versusProse) <= sigmas * d.stdError ? "within noise" as const
      : versusProse > 0 ? "faster than prose" as const : "not faster than prose" as const;
    return { task, ...d, versusProse, verdict };
  });
}

/** Every claim with its verdict, computed from `rows` of `engine`. */
export function claimsCheck(rows: readonly StudyRow[], engine: EngineName, opts: DegradationOptions = {}): ClaimRow[] {
  const { rows: mine } = rowsOf(rows, engine);
  const out: ClaimRow[] = [];
  for (const rule of COMMON_ANSWER_RANGES) {
    const r = mine.find((x) => x.level === rule.level);
    const published = PUBLISHED.filter((p) => p.level === rule.level)
      .map((p) => `${p.model} ${pct(p.pplIncreasePct)} (${p.source.short})`).join(", ");
    out.push({
      claim: rule.text,
      claimed: rule.low === 0 ? `< ${rule.high}%` : `${rule.low}–${rule.high}%`,
      ours: r ? `${pct(r.pplIncreasePct)} (ppl ${r.perplexity.toFixed(3)} vs ${rowsOf(rows, engine).f32.perplexity.toFixed(3)})` : "not measured",
      published,
      verdict: r ? rangeVerdict(r.pplIncreasePct, rule.low, rule.high) : "not measured",
    });
  }
  for (const metric of opts.metric ? [opts.metric] : (["answer-perplexity", "accuracy"] as const)) out.push(degradationClaim(rows, engine, { ...opts, metric }));
  return out;
}

/** "math and code degrade faster than prose", judged with one task metric. */
function degradationClaim(rows: readonly StudyRow[], engine: EngineName, opts: DegradationOptions & { metric: TaskMetric }): ClaimRow {
  const degr = degradationByTask(rows, engine, opts);
  const prose = degr.find((d) => d.task === PROSE);
  const wanted = ["arithmetic", "code"];
  const found = degr.filter((d) => wanted.includes(d.task));
  const measured = found.filter((d) => d.verdict !== "not measured");
  let verdict: Verdict;
  if (measured.length < wanted.length) verdict = "not measured";
  else if (measured.every((d) => d.verdict === "faster than prose")) verdict = "holds";
  else if (measured.every((d) => d.verdict === "within noise")) verdict = "within noise";
  else if (measured.some((d) => d.verdict === "faster than prose")) verdict = "partly holds"; // one of the two
  else verdict = "does not hold";
  const words = (d: TaskDegradation | undefined) => d && Number.isFinite(d.meanDrop)
    ? `${d.task} ${d.meanDrop > 0 ? "−" : "+"}${Math.abs(100 * d.meanDrop).toFixed(1)}%${d.stdError > 0 ? ` ± ${(100 * d.stdError).toFixed(1)}` : ""}` : "n/a";
  const missing = wanted.filter((t) => !measured.some((m) => m.task === t));
  const how = opts.metric === "accuracy" ? "exact-match accuracy" : "answer perplexity";
  return {
    claim: `math and code degrade faster than prose (by ${how})`,
    claimed: "arithmetic and code lose more (relative to F32) than prose at low bits",
    ours: `mean quality change at ${(opts.levels ?? ["Q4_K_M", "Q4_0", "Q3_K_M", "Q2_K"]).join("/")}: ${[prose, ...found].map(words).join(", ")}` +
      (missing.length ? ` (no ratio for ${missing.join(" and ")}: ${opts.metric === "accuracy" ? "F32 scores 0" : "not measured"})` : ""),
    published: "reported for 7B+ models in several papers (math/code most sensitive); llama.cpp publishes perplexity only",
    verdict,
  };
}
