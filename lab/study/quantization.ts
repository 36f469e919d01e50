// The quantization study behind notebooks/01-quantization.ipynb, as one function a cell can call:
// quantize an F32 model to a ladder of llama-quantize levels (through lab/quant), then measure every
// level on both engines — size, bits per weight, resident memory, perplexity, KL divergence and
// same-top-1 against F32, exact-match accuracy per task, prefill and decode speed.
//
// Reading order:
//   1. the levels and the settings       STUDY_LEVELS, StudyOptions (with the default budget)
//   2. quantized files, cached            quantizeLevels: data/cache/quantization/<source>-<code>/LEVEL.gguf
//   3. measuring one level on one engine  measureLevel: quality from ONE pass over the prose tokens
//   4. the study                          runQuantizationStudy → StudyRow[] (one per level × engine)
//   5. rows for people                    studyTable (flat columns for danfojs and the CSV)
//   6. timings stay out of committed files timingPolicy, speedTable, writeSpeedCsv
//
// Budget: the notebook must run headlessly in about 5 minutes on 2 cores, so the defaults are small
// (a few thousand prose tokens, 100 items per task, 5 timed runs); pass larger numbers for a real
// study. Quality is always measured against F32 on the SAME engine, so the numbers isolate what
// quantization does from the (tiny, ~1e-5) differences between the engines.
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { openEngine, type Engine, type EngineName } from "../engine/engine.ts";
import { llamaHparams, openGguf, type LlamaHparams } from "../gguf/index.ts";
import { compareDistributions, nextTokenDistributions, taskAccuracy, tokensForScoring, type TaskItem } from "../measure/quality.ts";
import { loadProse, loadTaskSets } from "../measure/evalsets.ts";
import { measureLatency } from "../measure/latency.ts";
import { quantizeGgufFile } from "../quant/file.ts";
import { findMix } from "../quant/mixes.ts";
import { writeCsv } from "../table.ts";

// =============================================================================================
// 1. The levels and the settings

/** The ladder the notebook studies, from lossless to 2-bit. F32 is the reference every level is compared with. */
export const STUDY_LEVELS = ["F32", "F16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_0", "Q3_K_M", "Q2_K"] as const;

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const DEFAULT_CACHE_DIR = join(REPO_ROOT, "data", "cache", "quantization");

export interface StudyOptions {
  /** The F32 GGUF every level is quantized from (e.g. data/models/target.gguf). */
  source: string;
  /** Levels to measure (llama-quantize mix names). F32 is always measured first. Default STUDY_LEVELS. */
  levels?: readonly string[];
  /** Engines to measure each level on. Default ["lab", "llama"]. */
  engines?: readonly EngineName[];
  /** Where quantized files are kept between runs. Default data/cache/quantization. */
  cacheDir?: string;
  /** Folder with prose.jsonl and the {prompt, answer} task sets. Default data/eval. */
  evalDir?: string;
  /** Prose texts for perplexity and KL (~90 tokens each). Default 32. */
  proseTexts?: number;
  /** Items per task set. Default 100. */
  taskItems?: number;
  /** Engines task accuracy and answer perplexity are measured on (LabEngine is several times slower). Default: all of `engines`. */
  taskEngines?: readonly EngineName[];
  /** Speed: prompt tokens, decoded tokens, timed repeats, warm-up runs. Default 64 / 16 / 5 / 1. */
  bench?: { promptTokens?: number; decodeTokens?: number; repeats?: number; warmup?: number };
  /** llama.cpp threads (LabEngine is single-threaded). Default 1. */
  threads?: number;
  /** Measure prefill and decode speed (default true). Without it the rows' tokens/s are NaN. */
  speed?: boolean;
  /** Called as the study goes: quantizing (per tensor) and measuring (per level × engine). */
  onProgress?: (event: StudyProgress) => void;
}

export type StudyProgress =
  | { phase: "quantize"; level: string; done: number; total: number; cached: boolean }
  | { phase: "measure"; level: string; engine: EngineName; step: string; done: number; total: number };

/** The model the notebook studies: the embedded target, or (until it exists) a stand-in. */
export interface StudyModel {
  path: string;
  /** "target": data/models/target.gguf, trained on the kit's corpus. "synthetic": seeded random
   *  weights of the same shape — the pipeline runs, but its quality numbers mean nothing. */
  kind: "target" | "synthetic";
}

export const TARGET_MODEL = join(REPO_ROOT, "data", "models", "target.gguf");

/** data/models/target.gguf if present; else the synthetic llama of the target's shape, written once into the cache. */
export async function studyModel(cacheDir = DEFAULT_CACHE_DIR): Promise<StudyModel> {
  if (existsSync(TARGET_MODEL)) return { path: TARGET_MODEL, kind: "target" };
  const path = join(cacheDir, "synthetic-target-shape.gguf");
  if (!existsSync(path)) {
    await mkdir(cacheDir, { recursive: true });
    const { writeSyntheticLlama } = await import("../model/synthetic.ts");
    await writeSyntheticLlama(path, { seed: 1 }); // atomic; the defaults are the target's shape
  }
  return { path, kind: "synthetic" };
}

// =============================================================================================
// 2. Quantized files, cached by what they are made from

/** One level on disk. */
export interface LevelFile {
  level: string;
  path: string;
  /** true when the file came from the cache (or is the source itself) */
  cached: boolean;
}

async function sha256OfFile(path: string): Promise<string> {
  return createHash("sha256").update(await readFile(path)).digest("hex");
}

/** A fingerprint of lab/quant's sources: when the quantizers change, cached files are remade. */
async function quantCodeFingerprint(): Promise<string> {
  const dir = join(REPO_ROOT, "lab", "quant");
  const hash = createHash("sha256");
  for (const name of (await readdir(dir)).filter((f) => f.endsWith(".ts")).sort()) {
    hash.update(name).update(await readFile(join(dir, name)));
  }
  return hash.digest("hex");
}

/**
 * Every level as a GGUF file: F32 is the source itself; the others are made with lab/quant's
 * quantizeGgufFile (llama-quantize's mixes, bit-exact with it) into
 * cacheDir/<source sha256[:12]>-<lab/quant sha256[:8]>/LEVEL.gguf, or taken from there when present.
 * A changed model or changed quantizer code gives a new folder, so stale files are never used.
 */
export async function quantizeLevels(
  source: string,
  levels: readonly string[],
  opts: { cacheDir?: string; onProgress?: StudyOptions["onProgress"] } = {},
): Promise<LevelFile[]> {
  for (const level of levels) {
    if (!findMix(level)) throw new Error(`unknown quantization level "${level}" (use a llama-quantize name such as Q4_K_M)`);
  }
  if (!existsSync(source)) throw new Error(`no model at ${source}`);
  const key = `${(await sha256OfFile(source)).slice(0, 12)}-${(await quantCodeFingerprint()).slice(0, 8)}`;
  const dir = join(opts.cacheDir ?? DEFAULT_CACHE_DIR, key);
  await mkdir(dir, { recursive: true });
  const out: LevelFile[] = [];
  for (const level of levels) {
    const name = findMix(level)!.name;
    if (name === "F32") {
      out.push({ level: name, path: source, cached: true });
      opts.onProgress?.({ phase: "quantize", level: name, done: 1, total: 1, cached: true });
      continue;
    }
    const path = join(dir, `${name}.gguf`);
    if (existsSync(path)) {
      out.push({ level: name, path, cached: true });
      opts.onProgress?.({ phase: "quantize", level: name, done: 1, total: 1, cached: true });
      continue;
    }
    // quantizeGgufFile writes atomically (temp + rename): an interrupted run leaves no half file to reuse.
    await quantizeGgufFile(source, path, name, {
      onProgress: (done, total) => opts.onProgress?.({ phase: "quantize", level: name, done, total, cached: false }),
    });
    out.push({ level: name, path, cached: false });
  }
  return out;
}

// =============================================================================================
// 3. Measuring one level on one engine

export interface TaskScore {
  correct: number;
  total: number;
  accuracy: number;
}

/** One level measured on one engine. Quality figures are against F32 on the same engine. */
export interface StudyRow {
  level: string;
  engine: EngineName;
  /** 8 × tensor bytes / parameters, all tensors (norms and the F32 ones included) */
  bitsPerWeight: number;
  /** GGUF file size */
  fileBytes: number;
  /** weight bytes the engine keeps resident */
  residentWeightBytes: number;
  /** KV-cache bytes per token position as the engine allocates them (F32 cache in both engines) */
  kvBytesPerToken: number;
  perplexity: number;
  /** 100 × (perplexity / F32 perplexity − 1) */
  pplIncreasePct: number;
  /** KL(F32 ‖ level) per position, nats */
  klMean: number;
  klP99: number;
  /** fraction of positions whose most likely next token is F32's */
  top1: number;
  /** scored prose positions */
  positions: number;
  /** task name → exact-match score; empty when tasks were not measured on this engine */
  tasks: Record<string, TaskScore>;
  /**
   * task name → perplexity of the reference ANSWER tokens given the prompt (teacher forcing), on the
   * task engines (empty elsewhere). Unlike exact match it is continuous, so a small model that rarely gets a whole
   * answer right still shows how much each level hurts each task.
   */
  answerPerplexity: Record<string, number>;
  /** task → NLL (nats) of each item's answer tokens, in item order: paired across levels for error bars */
  answerItemNll: Record<string, number[]>;
  /** tokens/s at batch size 1, median of the timed runs; NaN when speed was not measured */
  prefillTokensPerSecond: number;
  /** tokens/s at batch size 1, median of the timed runs; NaN when speed was not measured */
  decodeTokensPerSecond: number;
}

/** The prose token ids (tokenized once, by the F32 model) and F32's distributions over them. */
interface Reference {
  ids: number[][];
  rows: Float32Array[][];
  nll: number;
  positions: number;
}

async function proseDistributions(engine: Engine, ids: number[][]): Promise<{ rows: Float32Array[][]; nll: number; positions: number }> {
  const rows: Float32Array[][] = [];
  let nll = 0;
  let positions = 0;
  for (const text of ids) {
    const r = await nextTokenDistributions(engine, text);
    for (let i = 0; i < r.length; i++) nll -= r[i][text[i + 1]];
    positions += r.length;
    rows.push(r);
  }
  return { rows, nll, positions };
}

/** Perplexity, KL against F32 and top-1 of one opened engine, from ONE pass over the prose ids. */
async function measureQuality(engine: Engine, reference: Reference): Promise<Pick<StudyRow, "perplexity" | "pplIncreasePct" | "klMean" | "klP99" | "top1" | "positions">> {
  const mine = await proseDistributions(engine, reference.ids);
  const kl = compareDistributions(mine.rows.flat(), reference.rows.flat());
  const perplexity = Math.exp(mine.nll / mine.positions);
  const f32Ppl = Math.exp(reference.nll / reference.positions);
  return {
    perplexity, pplIncreasePct: 100 * (perplexity / f32Ppl - 1),
    klMean: kl.kl.mean, klP99: kl.kl.p99, top1: kl.top1, positions: kl.positions,
  };
}

/**
 * exp(mean NLL of the answer tokens): the prompt and " " + answer are tokenized together, and the
 * positions after the prompt's own tokens are scored (where the two tokenizations part, from there).
 */
async function answerNll(engine: Engine, items: TaskItem[]): Promise<{ perplexity: number; itemNll: number[] }> {
  let nll = 0;
  let count = 0;
  const itemNll: number[] = [];
  for (const item of items) {
    const prompt = engine.tokenizer.encode(item.prompt, { bos: true });
    const full = engine.tokenizer.encode(`${item.prompt} ${item.answer}`, { bos: true }).slice(0, engine.contextSize);
    let start = 0;
    while (start < prompt.length && start < full.length && prompt[start] === full[start]) start++;
    start = Math.max(1, start);
    if (start >= full.length) { itemNll.push(0); continue; }
    const rows = await nextTokenDistributions(engine, full);
    let mine = 0;
    for (let i = start; i < full.length; i++) mine -= rows[i - 1][full[i]];
    itemNll.push(mine);
    nll += mine;
    count += full.length - start;
  }
  return { perplexity: count > 0 ? Math.exp(nll / count) : NaN, itemNll };
}

async function measureTasks(engine: Engine, taskSets: Map<string, TaskItem[]>, report: (step: string) => void): Promise<Record<string, TaskScore>> {
  const tasks: Record<string, TaskScore> = {};
  for (const [name, items] of taskSets) {
    report(`task ${name}`);
    tasks[name] = await taskAccuracy(engine, items);
  }
  return tasks;
}

// =============================================================================================
// 4. The study

export interface StudyResult {
  rows: StudyRow[];
  files: LevelFile[];
  /** what was measured, for the notebook's captions */
  /** the model's shape: what memory formulas need */
  model: LlamaHparams & { parameters: number };
  settings: { source: string; proseTexts: number; positions: number; taskItems: Record<string, number>; bench: Required<NonNullable<StudyOptions["bench"]>>; threads: number };
  /** whether the rows carry prefill/decode speed (StudyOptions.speed) */
  speedMeasured: boolean;
  /** wall-clock seconds of the whole study: a timing, so never print it into a committed output */
  seconds: number;
}

/** A prompt of exactly n tokens cut from the prose texts (BOS first), the same for every level. */
function benchPromptFrom(ids: number[][], n: number): number[] {
  const flat = [ids[0]?.[0] ?? 1, ...ids.flatMap((t) => t.slice(1))];
  if (flat.length < n) throw new Error(`the prose texts hold ${flat.length} tokens, fewer than the ${n}-token bench prompt`);
  return flat.slice(0, n);
}

/**
 * Quantizes `source` to every level (cached) and measures each level on each engine: the rows come
 * level by level (F32 first), engines in `engines` order.
 */
export async function runQuantizationStudy(opts: StudyOptions): Promise<StudyResult> {
  const t0 = performance.now();
  const engines = opts.engines ?? (["lab", "llama"] as const);
  const taskEngines = new Set(opts.taskEngines ?? engines);
  const levels = ["F32", ...(opts.levels ?? STUDY_LEVELS).map((l) => findMix(l)?.name ?? l).filter((l) => l !== "F32")];
  const threads = opts.threads ?? 1;
  const speed = opts.speed ?? true;
  const bench = { promptTokens: 64, decodeTokens: 16, repeats: 5, warmup: 1, ...opts.bench };
  const texts = await loadProse(opts.evalDir, opts.proseTexts ?? 32);
  if (texts.length === 0) throw new Error(`no prose texts in ${opts.evalDir ?? "data/eval"} (prose.jsonl)`);
  const taskSets = await loadTaskSets(opts.evalDir, opts.taskItems ?? 100);
  // Chat prompts open with the 919-token system prompt and need the full 1,024-token context; this
  // study runs at contextSize 512 on the Q/A tasks (`lab eval` measures chat per level).
  taskSets.delete("chat");

  const sourceFile = await openGguf(opts.source);
  const model = { ...llamaHparams(sourceFile), parameters: sourceFile.tensors.reduce((s, t) => s + t.ne.reduce((a, b) => a * b, 1), 0) };
  const files = await quantizeLevels(opts.source, levels, { cacheDir: opts.cacheDir, onProgress: opts.onProgress });
  const engineOpts = { threads, maxSequences: 1, contextSize: 512 };
  const references = new Map<EngineName, Reference>();
  const rows: StudyRow[] = [];
  const perLevel = 1 + engines.length * 2 + (speed ? 1 : 0); // open, quality (+ tasks) per engine, speed
  for (const file of files) {
    let done = 0;
    const report = (engine: EngineName, step: string) =>
      opts.onProgress?.({ phase: "measure", level: file.level, engine, step, done: done, total: perLevel });
    const opened: Engine[] = [];
    try {
      for (const name of engines) opened.push(await openEngine(name, file.path, engineOpts));
      done++;
      const partial: Omit<StudyRow, "prefillTokensPerSecond" | "decodeTokensPerSecond">[] = [];
      for (const engine of opened) {
        report(engine.name, "perplexity + KL");
        let reference = references.get(engine.name);
        if (!reference) {
          // The F32 model (files[0]) tokenizes the texts once; every level then scores the same ids.
          const ids = texts.map((t) => tokensForScoring(engine, t)).filter((t) => t.length >= 2);
          reference = { ids, ...(await proseDistributions(engine, ids)) };
          references.set(engine.name, reference);
        }
        const quality = await measureQuality(engine, reference);
        done++;
        const tasks = taskEngines.has(engine.name) ? await measureTasks(engine, taskSets, (step) => report(engine.name, step)) : {};
        const answers: Record<string, number> = {};
        const answerItems: Record<string, number[]> = {};
        for (const [name, items] of taskEngines.has(engine.name) ? taskSets : new Map<string, TaskItem[]>()) {
          const a = await answerNll(engine, items);
          answers[name] = a.perplexity;
          answerItems[name] = a.itemNll;
        }
        done++;
        const mem = engine.memory();
        partial.push({
          level: file.level, engine: engine.name, bitsPerWeight: mem.bitsPerWeight, fileBytes: mem.fileBytes,
          residentWeightBytes: mem.weightBytes, kvBytesPerToken: mem.kvBytesPerToken, ...quality, tasks, answerPerplexity: answers, answerItemNll: answerItems,
        });
      }
      // Speed: the engines take turns run by run, so a busy machine slows both alike.
      let speeds: { prefillTokensPerSecond: number; decodeTokensPerSecond: number }[] = opened.map(() => ({ prefillTokensPerSecond: NaN, decodeTokensPerSecond: NaN }));
      if (speed) {
        report(opened[0].name, "speed");
        const prompt = benchPromptFrom(references.get(opened[0].name)!.ids, bench.promptTokens);
        speeds = await measureLatency(opened, { prompt, ...bench });
        done++;
      }
      report(opened[0].name, "done");
      partial.forEach((p, i) => rows.push({
        ...p, prefillTokensPerSecond: speeds[i].prefillTokensPerSecond, decodeTokensPerSecond: speeds[i].decodeTokensPerSecond,
      }));
    } finally {
      for (const e of opened) await e.dispose();
    }
  }
  const reference = references.get(engines[0])!;
  const settings: StudyResult["settings"] = {
    source: opts.source, proseTexts: reference.ids.length, positions: reference.positions,
    taskItems: Object.fromEntries([...taskSets].map(([k, v]) => [k, v.length])), bench, threads,
  };
  return { rows, files, model, settings, speedMeasured: speed, seconds: (performance.now() - t0) / 1000 };
}

// =============================================================================================
// 5. Rows for people: flat columns for the table, danfojs and data/results/quantization.csv

export type FlatRow = Record<string, string | number | null>;

/**
 * One flat record per row: task accuracies become `<task>_acc` columns (null when not measured).
 * Speed is not a column: it changes from run to run, and this table is committed (speedTable).
 */
export function studyTable(rows: readonly StudyRow[]): FlatRow[] {
  const taskNames = [...new Set(rows.flatMap((r) => [...Object.keys(r.tasks), ...Object.keys(r.answerPerplexity)]))].sort();
  return rows.map((r) => {
    const flat: FlatRow = {
      level: r.level, engine: r.engine,
      bits_per_weight: r.bitsPerWeight,
      file_mib: r.fileBytes / 2 ** 20,
      resident_weights_mib: r.residentWeightBytes / 2 ** 20,
      kv_bytes_per_token: r.kvBytesPerToken,
      perplexity: r.perplexity,
      ppl_increase_pct: r.pplIncreasePct,
      kl_mean: r.klMean,
      kl_p99: r.klP99,
      same_top1: r.top1,
    };
    for (const t of taskNames) flat[`${t}_acc`] = r.tasks[t]?.accuracy ?? null;
    for (const t of taskNames) flat[`${t}_answer_ppl`] = r.answerPerplexity[t] ?? null;
    return flat;
  });
}

/** File size of a path in bytes (for cells that want to show the cache). */
export async function fileBytes(path: string): Promise<number> {
  return (await stat(path)).size;
}

/** False under vitest (the notebook test must not rewrite committed results with fresh timings). */
export function writingResults(): boolean {
  return process.env.VITEST === undefined;
}

export const RESULTS_CSV = join(REPO_ROOT, "data", "results", "quantization.csv");

/** Writes the flat table to data/results/quantization.csv (atomically), except under vitest. Returns whether it wrote. */
export function writeStudyCsv(rows: readonly FlatRow[], path = RESULTS_CSV): boolean {
  if (!writingResults()) return false;
  writeCsv(path, rows);
  return true;
}

// =============================================================================================
// 6. Timings stay out of committed files
//
// `npm start` must leave `git status` clean when nothing changed, but tokens/s and seconds differ
// on every run. So: data/results/quantization.csv and the notebook's text outputs hold no timings;
// speed goes to data/results/timings/ (git-ignored); and the committed speed figure
// (notebooks/figures/quant-decode-speed.*) is re-measured only when asked for
// (`npm start -- --with-timings`, which sets LAB_TIMINGS=1 in the kernel).

/** What a run does with timings, from the kernel's environment. */
export interface TimingPolicy {
  /** measure prefill/decode speed: interactive runs, or LAB_TIMINGS=1; never with LAB_TIMINGS=0 */
  measure: boolean;
  /** print timing numbers in cell outputs: interactive runs only (headless outputs get committed) */
  print: boolean;
  /** overwrite the committed speed figure: only with LAB_TIMINGS=1, and never under vitest */
  saveFigure: boolean;
}

/**
 * A headless run (the kit's runner sets LAB_HEADLESS=1: `npm start`, `npm test`, `lab notebooks run`)
 * writes committed files and measures no speed unless LAB_TIMINGS=1; Jupyter (interactive, or
 * nbconvert) measures and prints it, but rewrites the committed speed figure only with LAB_TIMINGS=1.
 */
export function timingPolicy(env: NodeJS.ProcessEnv = process.env): TimingPolicy {
  const headless = env.LAB_HEADLESS === "1";
  const asked = env.LAB_TIMINGS === "1";
  const measure = env.LAB_TIMINGS === "0" ? false : asked || !headless;
  return { measure, print: measure && !headless, saveFigure: measure && asked && env.VITEST === undefined };
}

/** data/results/timings/: git-ignored, so timings written there never dirty the working tree. */
export const TIMINGS_DIR = join(REPO_ROOT, "data", "results", "timings");

/** One flat record per row with speed measured: level, engine, bits per weight, prefill and decode tokens/s. */
export function speedTable(rows: readonly StudyRow[]): FlatRow[] {
  return rows.filter((r) => Number.isFinite(r.decodeTokensPerSecond)).map((r) => ({
    level: r.level, engine: r.engine, bits_per_weight: r.bitsPerWeight,
    prefill_tok_s: r.prefillTokensPerSecond, decode_tok_s: r.decodeTokensPerSecond,
  }));
}

/**
 * Writes the speed rows to data/results/timings/quantization-speed.csv (git-ignored), except under
 * vitest or when no row has speed. Returns the path written, or undefined.
 */
export function writeSpeedCsv(rows: readonly StudyRow[], path = join(TIMINGS_DIR, "quantization-speed.csv")): string | undefined {
  const table = speedTable(rows);
  if (!writingResults() || table.length === 0) return undefined;
  writeCsv(path, table);
  return path;
}
