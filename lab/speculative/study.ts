// The speculative-decoding study behind notebooks/02-speculative-decoding.ipynb, as functions a cell
// can call. Read top to bottom, in the notebook's order:
//
//   1. toy distributions (§2.1–§2.2)  toyConvergence, toyChainCases, exactnessCheck
//   2. the embedded pair (§2.3)       notebookPrompts, greedyEquivalence, acceptanceByTask
//   3. timings (§2.4–§2.5)            measureBatchCostRatios, measureTtft, measureSpeed
//   4. timings stay out of git        speedStudy: measure (Jupyter, --with-timings) or load the record
//   5. the claims (§2.6)              speculativeClaims
//
// Sections 1 and 2 are deterministic (seeded draws, greedy or seeded decoding): they run on every
// run. Section 3 is timings: like notebook 01's speed figure, they are measured when a person runs
// the notebook in Jupyter or an instructor runs `npm start -- --with-timings`; otherwise the record
// last measured on purpose (data/results/speculative-speed.json) is shown, so `npm start` leaves
// git clean. Every function here takes the verifier/proposer it exercises as an argument, so the
// notebook can run the student's code (exercises/speculative) through the same harness.
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { cpus, loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { openEngine, type Engine, type Sequence } from "../engine/engine.ts";
import { generate, generateTokens } from "../engine/generate.ts";
import { Sampler } from "../engine/sampler.ts";
import { median } from "../measure/stats.ts";
import { mulberry32 } from "../random.ts";
import { saveFigure } from "../plot/index.ts";
import { quantizeLevels, timingPolicy, writingResults, type TimingPolicy } from "../study/quantization.ts";
import { goodnessOfFit } from "./chi-square.ts";
import { predictedSpeedup } from "./cost.ts";
import { ModelDrafter, PromptLookupDrafter, selfDrafter, type Drafter } from "./drafters.ts";
import { speculativeGenerate } from "./generate.ts";
import { compareWithPlain, speculativePrompts, type Comparison, type PromptSet } from "./measure.ts";
import { drawFromWeights } from "./verify.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const TARGET_MODEL = join(ROOT, "data", "models", "target.gguf");
export const DRAFT_MODEL = join(ROOT, "data", "models", "draft.gguf");

// =============================================================================================
// 1. Toy distributions
//
// Distributions here are probabilities (the exercises' convention), not log-probabilities.

/** The §2.1 pair over 8 tokens: p gives token 0 nothing where q gives it 0.2, and q over-weights
 *  token 2; Σ min(p, q) = 0.67, so a third of the drafts are rejected. */
export const TOY_P: Float64Array = Float64Array.from([0, 0.3, 0.25, 0.15, 0.12, 0.08, 0.06, 0.04]);
export const TOY_Q: Float64Array = Float64Array.from([0.2, 0.1, 0.3, 0.05, 0.15, 0.05, 0.1, 0.05]);

/** One draft token x ~ q verified against p: task 2.1's signature. */
export type OneTokenVerifier = (p: ArrayLike<number>, q: ArrayLike<number>, x: number, random: () => number) => { accepted: boolean; token: number };

/** The classic mistake: at a rejection, sample from p instead of norm(max(0, p − q)). */
export const residualFromP: OneTokenVerifier = (p, q, x, random) => {
  const ratio = q[x]! > 0 ? p[x]! / q[x]! : 0;
  if (random() < Math.min(1, ratio)) return { accepted: true, token: x };
  return { accepted: false, token: drawFromWeights(p, random()) };
};

/** No verification at all: every draft is kept, so the output is q. */
export const acceptEverything: OneTokenVerifier = (_p, _q, x) => ({ accepted: true, token: x });

export interface ToyFit {
  variant: string;
  draws: number;
  /** accepted ÷ draws */
  acceptance: number;
  /** Pearson's chi-square of the emitted tokens against p */
  chiSquare: number;
  df: number;
  pValue: number;
  /** the total variation distance between the emitted frequencies and p: ½ Σ |f − p| */
  distanceToP: number;
}

/** Emitted-token frequencies for each verifier and each number of draws (seeded), with a chi-square
 *  test of each against p. Draft tokens are drawn from q by the harness, never by the verifier. */
export function toyConvergence(p: ArrayLike<number>, q: ArrayLike<number>, verifiers: Record<string, OneTokenVerifier>,
  { draws = [100, 1_000, 10_000, 100_000], seed = 21 }: { draws?: number[]; seed?: number } = {}) {
  const rows: { draws: number; variant: string; token: number; frequency: number }[] = [];
  const fits: ToyFit[] = [];
  for (const [v, [variant, verify]] of Object.entries(verifiers).entries()) {
    for (const [d, n] of draws.entries()) {
      const random = mulberry32(seed + 1000 * v + d);
      const counts = new Array<number>(p.length).fill(0);
      let accepted = 0;
      for (let i = 0; i < n; i++) {
        const x = drawFromWeights(q, random());
        const verdict = verify(p, q, x, random);
        if (verdict.accepted) accepted++;
        counts[verdict.token]!++;
      }
      counts.forEach((c, token) => rows.push({ draws: n, variant, token, frequency: c / n }));
      const fit = goodnessOfFit(counts, p);
      const distanceToP = counts.reduce((s, c, t) => s + Math.abs(c / n - p[t]!), 0) / 2;
      fits.push({ variant, draws: n, acceptance: accepted / n, chiSquare: fit.statistic, df: fit.df, pValue: fit.pValue, distanceToP });
    }
  }
  return { rows, fits };
}

/** Σ_y min(p(y), q(y)) = 1 − TV(p, q): the probability that a draft token is accepted. */
export function overlap(p: ArrayLike<number>, q: ArrayLike<number>): number {
  let s = 0;
  for (let y = 0; y < p.length; y++) s += Math.min(p[y]!, q[y]!);
  return s;
}

/** k draft tokens verified in one go: task 2.2's signature, probability rows. */
export type ChainVerifier = (input: { target: ArrayLike<number>[]; draft: ArrayLike<number>[]; tokens: readonly number[]; random: () => number; greedy?: boolean }) => { accepted: number; token: number };

export interface ChainCase { name: string; p: Float64Array[]; q: Float64Array[] }

function randomDistribution(V: number, random: () => number, zeros: number[] = []): Float64Array {
  const w = Array.from({ length: V }, (_, i) => (zeros.includes(i) ? 0 : random() ** 2 + 0.01));
  const total = w.reduce((s, x) => s + x, 0);
  return Float64Array.from(w, (x) => x / total);
}

/** Three k-token cases over V tokens (seeded): independent p and q, q with mass where p has none
 *  (and the reverse), and p == q. Each has k+1 target rows and k draft rows. */
export function toyChainCases({ V = 12, k = 3, seed = 14 }: { V?: number; k?: number; seed?: number } = {}): ChainCase[] {
  const r = mulberry32(seed);
  const same = Array.from({ length: k + 1 }, () => randomDistribution(V, r));
  return [
    { name: "independent p, q", p: Array.from({ length: k + 1 }, () => randomDistribution(V, r)), q: Array.from({ length: k }, () => randomDistribution(V, r)) },
    { name: "q has mass where p has none", p: Array.from({ length: k + 1 }, () => randomDistribution(V, r, [0, 1, 2])), q: Array.from({ length: k }, () => randomDistribution(V, r, [V - 1, V - 2])) },
    { name: "p == q", p: same, q: same.slice(0, k).map((row) => Float64Array.from(row)) },
  ];
}

/** The same chain with the residual replaced by p at a rejection (for contrast with task 2.2). */
export const chainResidualFromP: ChainVerifier = ({ target, draft, tokens, random }) => {
  for (let i = 0; i < tokens.length; i++) {
    const verdict = residualFromP(target[i]!, draft[i]!, tokens[i]!, random);
    if (!verdict.accepted) return { accepted: i, token: verdict.token };
  }
  return { accepted: tokens.length, token: drawFromWeights(target[tokens.length]!, random()) };
};

export interface ExactnessRow { case: string; position: number; reached: number; chiSquare: number; df: number; pValue: number; follows: boolean }
export interface ChainSummary {
  case: string;
  /** how often draft 1 was accepted, and Σ min(p_1, q_1) */
  acceptanceFirst: number;
  overlapFirst: number;
  /** tokens per round, and its expectation 1 + α_1 + α_1·α_2 + … (positions are independent here) */
  tokensPerRound: number;
  expectedTokensPerRound: number;
}

/** `draws` seeded rounds of `verify` per case: a chi-square of every output position against its p
 *  (at significance `alpha`), acceptance of draft 1 against Σ min(p_1, q_1), and tokens per round
 *  against 1 + Σ_i Π_{j ≤ i} α_j. */
export function exactnessCheck(cases: ChainCase[], verify: ChainVerifier, { draws = 100_000, seed = 7, significance = 1e-4 } = {}) {
  const rows: ExactnessRow[] = [];
  const summary: ChainSummary[] = [];
  for (const [ci, c] of cases.entries()) {
    const random = mulberry32(seed + ci);
    const k = c.q.length;
    const V = c.p[0]!.length;
    const counts = Array.from({ length: k + 1 }, () => new Array<number>(V).fill(0));
    let firstAccepted = 0, tokens = 0;
    for (let n = 0; n < draws; n++) {
      const drafts = c.q.map((q) => drawFromWeights(q, random()));
      const { accepted, token } = verify({ target: c.p, draft: c.q, tokens: drafts, random });
      for (let i = 0; i < accepted; i++) counts[i]![drafts[i]!]!++;
      counts[accepted]![token]!++;
      if (accepted > 0) firstAccepted++;
      tokens += accepted + 1;
    }
    for (const [i, row] of counts.entries()) {
      const reached = row.reduce((s, x) => s + x, 0);
      if (reached === 0) continue;
      const fit = goodnessOfFit(row, c.p[i]!);
      rows.push({ case: c.name, position: i + 1, reached, chiSquare: fit.statistic, df: fit.df, pValue: fit.pValue, follows: fit.pValue > significance });
    }
    let expected = 1, reach = 1;
    for (let i = 0; i < k; i++) { reach *= overlap(c.p[i]!, c.q[i]!); expected += reach; }
    summary.push({ case: c.name, acceptanceFirst: firstAccepted / draws, overlapFirst: overlap(c.p[0]!, c.q[0]!), tokensPerRound: tokens / draws, expectedTokensPerRound: expected });
  }
  return { rows, summary };
}

// =============================================================================================
// 2. The embedded pair

/** The task prompt sets of the notebook (the corpus's validation documents, 64 tokens each). */
export const TASK_SETS = ["prose", "arith", "code", "chat"] as const satisfies readonly PromptSet[];

/** `count` prompts of each set (plus the repetitive workload when asked), on this target's tokenizer. */
export function notebookPrompts(target: Engine, { count = 3, sets = [...TASK_SETS] as PromptSet[] } = {}): Record<string, number[][]> {
  return Object.fromEntries(sets.map((set) => [set, speculativePrompts(target, set, { count })]));
}

export interface EquivalenceRow { engine: string; drafter: string; prompts: string; k: number; runs: number; tokens: number; identical: boolean }

/** Greedy speculative output against plain greedy output, token for token, for every prompt set,
 *  drafter and k (one row per set × drafter × k; `identical` only if every prompt's output is). */
export async function greedyEquivalence(target: Engine, drafters: Drafter[], prompts: Record<string, number[][]>, ks: number[], maxTokens = 32): Promise<EquivalenceRow[]> {
  const rows: EquivalenceRow[] = [];
  for (const [set, list] of Object.entries(prompts)) {
    const plain: number[][] = [];
    for (const p of list) plain.push(await generate(target, p, { maxTokens }));
    for (const drafter of drafters) {
      for (const k of ks) {
        let identical = true, tokens = 0;
        for (const [i, p] of list.entries()) {
          const r = await speculativeGenerate(target, drafter, p, { k, maxTokens });
          tokens += r.tokens.length;
          if (r.tokens.length !== plain[i]!.length || r.tokens.some((t, j) => t !== plain[i]![j])) identical = false;
        }
        rows.push({ engine: target.name, drafter: drafter.name, prompts: set, k, runs: list.length, tokens, identical });
      }
    }
  }
  return rows;
}

export interface AcceptanceRow {
  task: string;
  drafter: string;
  k: number;
  temperature: number;
  drafted: number;
  accepted: number;
  /** accepted ÷ drafted */
  acceptanceRate: number;
  /** 1 + accepted ÷ rounds that drafted (vLLM's mean acceptance length) */
  meanAcceptedLength: number;
  /** tokens emitted ÷ target passes (counts the passes that had nothing to verify) */
  tokensPerTargetPass: number;
  /** [k] accepted ÷ drafted at each position */
  acceptancePerPosition: number[];
}

/** Speculative decoding over each prompt set with one drafter: acceptance, accepted length, tokens
 *  per target pass, acceptance per position. Greedy by default; seeded when temperature > 0. */
export async function acceptanceByTask(target: Engine, drafter: Drafter, prompts: Record<string, number[][]>,
  { k, maxTokens = 48, temperature = 0, seed = 0 }: { k: number; maxTokens?: number; temperature?: number; seed?: number }): Promise<AcceptanceRow[]> {
  const rows: AcceptanceRow[] = [];
  for (const [task, list] of Object.entries(prompts)) {
    let drafted = 0, accepted = 0, rounds = 0, passes = 0, tokens = 0;
    const dPos = new Array<number>(k).fill(0), aPos = new Array<number>(k).fill(0);
    for (const [i, p] of list.entries()) {
      const r = await speculativeGenerate(target, drafter, p, { k, maxTokens, sampler: { temperature }, seed: seed + i, stopAtEos: temperature === 0 });
      drafted += r.drafted; accepted += r.accepted; rounds += r.draftRounds; passes += r.targetPasses; tokens += r.tokens.length;
      r.draftedPerPosition.forEach((n, j) => { dPos[j]! += n; aPos[j]! += r.acceptedPerPosition[j]!; });
    }
    rows.push({
      task, drafter: drafter.name, k, temperature, drafted, accepted,
      acceptanceRate: drafted > 0 ? accepted / drafted : NaN,
      meanAcceptedLength: rounds > 0 ? 1 + accepted / rounds : 1,
      tokensPerTargetPass: passes > 0 ? tokens / passes : 0,
      acceptancePerPosition: dPos.map((n, j) => (n > 0 ? aPos[j]! / n : NaN)),
    });
  }
  return rows;
}

/** Acceptance rows flattened to one row per task × drafter × position, for the figure. */
export function positionRows(rows: readonly AcceptanceRow[]): { task: string; drafter: string; position: number; acceptance: number }[] {
  return rows.flatMap((r) => r.acceptancePerPosition.map((acceptance, i) => ({ task: r.task, drafter: r.drafter, position: i + 1, acceptance })));
}

// =============================================================================================
// 3. Timings

export interface BatchCost {
  batch: number;
  k: number;
  /** fastest of the repeats, milliseconds: B one-token target items; B (k+1)-token items with every row; B one-token draft items */
  targetStepMs: number;
  verifyPassMs: number;
  draftStepMs: number;
  c: number;
  v: number;
}

async function sequencesHolding(engine: Engine, context: readonly number[], n: number): Promise<Sequence[]> {
  const first = await engine.createSequence();
  await first.prefill([...context]);
  const out = [first];
  for (let i = 1; i < n; i++) out.push(await first.fork());
  return out;
}

/** c and v(k) when B sequences share every step (a server at load), as the greedy loops run them:
 *  one step of B one-token items with the engine's own greedy pick, one of B (k+1)-token items with
 *  output "argmax", one draft step of B greedy tokens, interleaved, the fastest of `repeats`.
 *  Needs maxSequences >= B on both engines. */
export async function measureBatchCostRatios(target: Engine, draft: Engine, context: readonly number[], k: number, batch: number, repeats = 9): Promise<BatchCost> {
  const greedy = new Sampler({ temperature: 0 });
  const probe = Array.from({ length: k + 1 }, (_, i) => context[(i * 7 + 1) % context.length]!);
  const tSeqs = await sequencesHolding(target, context, batch);
  const dSeqs = await sequencesHolding(draft, context, batch);
  const n = context.length;
  const a: number[] = [], b: number[] = [], c: number[] = [];
  const timed = async (fn: () => Promise<unknown>) => { const t0 = performance.now(); await fn(); return performance.now() - t0; };
  const rollback = async (seqs: Sequence[]) => { for (const s of seqs) await s.truncate(n); };
  try {
    for (let r = 0; r < repeats + 1; r++) {
      const x = await timed(() => target.step(tSeqs.map((sequence) => ({ sequence, tokens: probe.slice(0, 1), output: "none" as const, sample: greedy }))));
      await rollback(tSeqs);
      const y = await timed(() => target.step(tSeqs.map((sequence) => ({ sequence, tokens: probe, output: "argmax" as const }))));
      await rollback(tSeqs);
      const z = await timed(() => draft.step(dSeqs.map((sequence) => ({ sequence, tokens: probe.slice(0, 1), output: "none" as const, sample: greedy }))));
      await rollback(dSeqs);
      if (r === 0) continue; // warm-up
      a.push(x); b.push(y); c.push(z);
    }
  } finally {
    for (const s of [...tSeqs, ...dSeqs]) await s.free();
  }
  const targetStepMs = Math.min(...a), verifyPassMs = Math.min(...b), draftStepMs = Math.min(...c);
  return { batch, k, targetStepMs, verifyPassMs, draftStepMs, c: draftStepMs / targetStepMs, v: verifyPassMs / targetStepMs };
}

/** Time to first token, plain and speculative, medians over prompts × repeats (interleaved). */
export async function measureTtft(target: Engine, drafter: Drafter, prompts: number[][], k: number, repeats = 3): Promise<{ plainMs: number; speculativeMs: number; ratio: number }> {
  const plain: number[] = [], spec: number[] = [];
  for (let r = 0; r < repeats; r++) {
    for (const p of prompts) {
      let t0 = performance.now();
      for await (const _ of generateTokens(target, p, { maxTokens: 2 })) { plain.push(performance.now() - t0); break; }
      t0 = performance.now();
      let first: number | undefined;
      await speculativeGenerate(target, drafter, p, { k, maxTokens: k + 1, onTokens: () => { first ??= performance.now() - t0; } });
      if (first !== undefined) spec.push(first);
    }
  }
  const plainMs = median(plain), speculativeMs = median(spec);
  return { plainMs, speculativeMs, ratio: speculativeMs / plainMs };
}

/** One cell of the speed record: a Comparison (lab/speculative/measure.ts) with where it ran. */
export interface SpeedCell {
  level: string;
  drafter: "draft model" | "prompt lookup" | "target itself";
  workload: "tasks" | "repeat";
  k: number;
  temperature: number;
  /** end to end (the prompt's prefill included in both), and decoding only (the cost model's phase) */
  speedup: number;
  decodeSpeedup: number;
  speedupMedianOfPairs: number;
  predictedSpeedup: number;
  acceptanceRate: number;
  alpha: number;
  meanAcceptedLength: number;
  c: number;
  v: number;
  identical: boolean | null;
}

/** Everything notebook 02 times, as one JSON document (data/results/speculative-speed.json). */
export interface SpeedRecord {
  /** what was measured on which machine, with which models (sha256, first 12 hex digits) */
  machine: { cpus: number; model: string; loadAverageAtStart: number[] };
  models: { target: string; draft: string };
  settings: { engine: "lab"; levels: string[]; ks: number[]; maxTokens: number; repeats: number; tasks: readonly string[]; batches: number[] };
  /** draft model × level × k on the task prompts; prompt lookup × k on the tasks and on the repetitive workload at `focus.level` */
  sweep: SpeedCell[];
  /** the level and k of the draft-model cell with the best measured decode speedup, where the rest was measured */
  focus: { level: string; k: number };
  temperature: SpeedCell[];
  drafters: SpeedCell[];
  batch: (BatchCost & { alpha: number; predicted: number })[];
  ttft: { level: string; k: number; plainMs: number; speculativeMs: number; ratio: number };
}

const cell = (level: string, drafter: SpeedCell["drafter"], workload: SpeedCell["workload"], r: Comparison): SpeedCell => ({
  level, drafter, workload, k: r.k, temperature: r.temperature, speedup: r.speedup, decodeSpeedup: r.decode.speedup, speedupMedianOfPairs: r.speedupMedianOfPairs,
  predictedSpeedup: r.predictedSpeedup, acceptanceRate: r.acceptanceRate, alpha: r.alpha, meanAcceptedLength: r.meanAcceptedLength,
  c: r.c, v: r.v, identical: r.identical,
});

async function sha12(path: string): Promise<string> {
  return createHash("sha256").update(await readFile(path)).digest("hex").slice(0, 12);
}

export interface SpeedOptions {
  levels?: string[];
  ks?: number[];
  maxTokens?: number;
  repeats?: number;
  batches?: number[];
  /** after each measurement: how many of how many are done, and what was just measured */
  onProgress?: (done: number, total: number, label: string) => void;
}

/**
 * Measures everything the notebook times, on LabEngine (one thread), plain and speculative
 * decoding interleaved run by run (compareWithPlain): the draft model at every level and k on the
 * task prompts; prompt lookup at the best level on the tasks and on the repetitive workload; then,
 * at the best measured draft cell: temperature 0.7 and 1, the three kinds of drafter, c and v(k) at
 * several batch sizes, and time to first token.
 */
export async function measureSpeed(opts: SpeedOptions = {}): Promise<SpeedRecord> {
  const { levels = ["F32", "Q8_0", "Q4_K_M"], ks = [1, 2, 3, 4, 6, 8], maxTokens = 48, repeats = 3, batches = [1, 2, 4, 8, 16], onProgress } = opts;
  const loadAverageAtStart = loadavg().map((x) => +x.toFixed(2));
  const files = await quantizeLevels(TARGET_MODEL, levels);
  const maxSequences = Math.max(4, ...batches);
  const draft = await openEngine("lab", DRAFT_MODEL, { maxSequences, contextSize: 512 });
  const targets = new Map<string, Engine>();
  const batchKs = (k: number) => [...new Set([k, 4])].sort((a, b) => a - b);
  let total = files.length * ks.length + 2 * ks.length + 3 + 2 * batches.length + 1; // exact once the focus k is known
  let done = 0;
  const progress = (label: string) => onProgress?.(++done, total, label);
  try {
    for (const f of files) targets.set(f.level, await openEngine("lab", f.path, { maxSequences, contextSize: 512 }));
    const anyTarget = targets.values().next().value!;
    const tasks = TASK_SETS.map((set) => speculativePrompts(anyTarget, set, { count: 1 })[0]!);
    const repeat = speculativePrompts(anyTarget, "repeat", { count: 3 });
    const compare = async (level: string, kind: SpeedCell["drafter"], workload: SpeedCell["workload"], k: number, temperature = 0) => {
      const target = targets.get(level)!;
      const drafter: Drafter = kind === "draft model" ? new ModelDrafter(draft) : kind === "target itself" ? selfDrafter(target) : new PromptLookupDrafter(target.tokenizer.vocabSize);
      try {
        const r = await compareWithPlain(target, drafter, workload === "tasks" ? tasks : repeat, {
          k, maxTokens, repeats, sampler: { temperature }, draftEngine: kind === "draft model" ? draft : kind === "target itself" ? target : undefined,
        });
        progress(`${level} · ${kind} · ${workload} · k = ${k}${temperature > 0 ? ` · T = ${temperature}` : ""}`);
        return cell(level, kind, workload, r);
      } finally {
        await drafter.dispose();
      }
    };
    const sweep: SpeedCell[] = [];
    for (const f of files) for (const k of ks) sweep.push(await compare(f.level, "draft model", "tasks", k));
    const best = sweep.reduce((a, b) => (b.decodeSpeedup > a.decodeSpeedup ? b : a));
    const focus = { level: best.level, k: best.k };
    total = done + 2 * ks.length + 3 + batchKs(focus.k).length * batches.length + 1;
    for (const workload of ["tasks", "repeat"] as const) for (const k of ks) sweep.push(await compare(focus.level, "prompt lookup", workload, k));
    const temperature = [best];
    for (const t of [0.7, 1]) temperature.push(await compare(focus.level, "draft model", "tasks", focus.k, t));
    const drafters = [best, sweep.find((c) => c.level === focus.level && c.drafter === "prompt lookup" && c.workload === "tasks" && c.k === focus.k)!,
      await compare(focus.level, "target itself", "tasks", focus.k)];
    const target = targets.get(focus.level)!;
    const batch = [];
    for (const k of batchKs(focus.k)) {
      const alpha = sweep.find((c) => c.level === focus.level && c.drafter === "draft model" && c.k === k)?.alpha ?? best.alpha;
      for (const B of batches) {
        const cost = await measureBatchCostRatios(target, draft, tasks[0]!, k, B);
        batch.push({ ...cost, alpha, predicted: predictedSpeedup(alpha, k, cost.c, cost.v) });
        progress(`batch ${B} · k = ${k}`);
      }
    }
    const ttftDrafter = new ModelDrafter(draft);
    const ttft = { level: focus.level, k: focus.k, ...(await measureTtft(target, ttftDrafter, tasks, focus.k)) };
    await ttftDrafter.dispose();
    progress("time to first token");
    return {
      machine: { cpus: cpus().length, model: cpus()[0]?.model ?? "unknown", loadAverageAtStart },
      models: { target: await sha12(TARGET_MODEL), draft: await sha12(DRAFT_MODEL) },
      settings: { engine: "lab", levels: files.map((f) => f.level), ks, maxTokens, repeats, tasks: TASK_SETS, batches },
      sweep, focus, temperature, drafters, batch, ttft,
    };
  } finally {
    for (const t of targets.values()) await t.dispose();
    await draft.dispose();
  }
}

// =============================================================================================
// 4. Timings stay out of git unless asked for

/** The committed record: re-measured only by `npm start -- --with-timings` (LAB_TIMINGS=1). */
export const SPEED_RECORD = join(ROOT, "data", "results", "speculative-speed.json");
/** Every measuring run's record (git-ignored). */
export const SPEED_RECORD_TIMINGS = join(ROOT, "data", "results", "timings", "speculative-speed.json");

async function writeJson(path: string, doc: unknown): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(`${path}.tmp`, JSON.stringify(doc, null, 2) + "\n");
  await rename(`${path}.tmp`, path);
}

/**
 * Saves one of notebook 02's figures into notebooks/figures/ (SVG + PNG) — except under vitest (the
 * notebook test runs every notebook and must not rewrite committed files). Returns whether it wrote.
 * The timed figures are drawn from the speed record, so they change only when the record does.
 */
export function saveSpecFigure(name: string, svg: string): boolean {
  if (!writingResults()) return false;
  saveFigure(name, svg, { dir: join(ROOT, "notebooks", "figures") });
  return true;
}

export function loadSpeedRecord(path = SPEED_RECORD): SpeedRecord {
  if (!existsSync(path)) throw new Error(`no ${path}: measure it with \`npm start -- --with-timings\` (or run notebook 02 in Jupyter)`);
  return JSON.parse(readFileSync(path, "utf8")) as SpeedRecord;
}

export interface SpeedStudy {
  record: SpeedRecord;
  /** true: measured by this run; false: the committed record */
  measuredNow: boolean;
  /** the record was measured on other model files than the ones in data/models now */
  stale: boolean;
  /** one line saying where the numbers come from (no timings in it) */
  provenance: string;
}

/**
 * The notebook's timings: measured when the policy says so (Jupyter, or LAB_TIMINGS=1), written
 * to data/results/timings/ and, with LAB_TIMINGS=1 only, over the committed record; otherwise the
 * committed record. Never writes under vitest.
 */
export async function speedStudy(opts: SpeedOptions & { policy?: TimingPolicy } = {}): Promise<SpeedStudy> {
  const policy = opts.policy ?? timingPolicy();
  const models = { target: await sha12(TARGET_MODEL), draft: await sha12(DRAFT_MODEL) };
  if (policy.measure) {
    const record = await measureSpeed(opts);
    if (writingResults()) {
      await writeJson(SPEED_RECORD_TIMINGS, record);
      if (policy.saveFigure) await writeJson(SPEED_RECORD, record);
    }
    return { record, measuredNow: true, stale: false, provenance: `measured by this run on ${record.machine.cpus} × ${record.machine.model} (1 thread, LabEngine)` };
  }
  const record = loadSpeedRecord();
  const stale = record.models.target !== models.target || record.models.draft !== models.draft;
  return {
    record, measuredNow: false, stale,
    provenance: `as last measured on purpose (\`npm start -- --with-timings\`, data/results/speculative-speed.json) on ${record.machine.cpus} × ${record.machine.model}, ` +
      `load average ${record.machine.loadAverageAtStart[0]} (1 thread, LabEngine)` +
      (stale ? " — NOTE: on other model files than data/models holds now; re-measure with `npm start -- --with-timings`" : ""),
  };
}

// =============================================================================================
// 5. The usual claims, checked against the record

export interface ClaimCheck { claim: string; ours: string; verdict: string }

const x2 = (v: number) => `${v.toFixed(2)}×`;

/** Verdicts computed from the measurements, never typed in. */
export function speculativeClaims(record: SpeedRecord): ClaimCheck[] {
  const draftCells = record.sweep.filter((c) => c.drafter === "draft model" && c.workload === "tasks");
  // Speedups are decoding only (the cost model's phase; the prompt's prefill is the same work either way).
  // 1. "speedup ≈ k × acceptance rate"
  const ratios = draftCells.map((c) => (c.k * c.acceptanceRate) / c.decodeSpeedup);
  const over = median(ratios);
  const worst = draftCells.reduce((a, b) => ((b.k * b.acceptanceRate) / b.decodeSpeedup > (a.k * a.acceptanceRate) / a.decodeSpeedup ? b : a));
  const claim1: ClaimCheck = {
    claim: "the speedup is roughly k times the acceptance rate",
    ours: `k·α / measured speedup: median ${over.toFixed(2)} over ${draftCells.length} cells; worst ${worst.level} k = ${worst.k}: ` +
      `k·α = ${(worst.k * worst.acceptanceRate).toFixed(2)} vs measured ${x2(worst.decodeSpeedup)}`,
    verdict: over > 0.8 && over < 1.25 ? "holds (within 25% at the median)" : over >= 1.25 ? `false: it overestimates ${over.toFixed(1)}-fold at the median` : "false: it underestimates",
  };
  // 2. "TTFT falls by 40–60%"
  const t = record.ttft;
  const change = 1 - t.ratio;
  const claim2: ClaimCheck = {
    claim: "speculative decoding reduces time-to-first-token by 40–60%",
    ours: `TTFT with speculation = ${x2(t.ratio)} plain TTFT (${t.level}, k = ${t.k})`,
    verdict: change >= 0.4 && change <= 0.6 ? "holds" : change > 0 ? `false: it fell by ${(100 * change).toFixed(0)}%, not 40–60%` : `false: TTFT grew by ${(100 * -change).toFixed(0)}% (the draft prefills the prompt and drafts k tokens before the first verification)`,
  };
  // 3. "2–3× for well-matched pairs"
  const best = draftCells.reduce((a, b) => (b.decodeSpeedup > a.decodeSpeedup ? b : a));
  const claim3: ClaimCheck = {
    claim: "2–3× speedup for well-matched target/draft pairs",
    ours: `best measured with our draft: ${x2(best.decodeSpeedup)} decoding, ${x2(best.speedup)} end to end (${best.level}, k = ${best.k}, acceptance ${best.acceptanceRate.toFixed(2)}, c = ${best.c.toFixed(2)}, v(k) = ${best.v.toFixed(2)})`,
    verdict: best.decodeSpeedup >= 2 && best.decodeSpeedup <= 3 ? "holds on our pair" : best.decodeSpeedup > 3 ? "exceeded on our pair" : `not on our pair: best ${x2(best.decodeSpeedup)} (the draft's c and the target's v(k) leave less room than on a GPU)`,
  };
  // 4. the cost model itself
  const errors = draftCells.map((c) => Math.abs(c.decodeSpeedup / c.predictedSpeedup - 1));
  const within = errors.filter((e) => e <= 0.15).length;
  const claim4: ClaimCheck = {
    claim: "E(α, k) / (k·c + v(k)) predicts the measured decode speedup (within 15%)",
    ours: `${within} of ${draftCells.length} draft-model cells within 15%; median error ${(100 * median(errors)).toFixed(0)}%`,
    verdict: within >= draftCells.length / 2 ? "holds for most cells" : "misses most cells (timing noise on a shared machine, or costs the model leaves out: rollback, the sampler, per-call overhead)",
  };
  return [claim1, claim2, claim3, claim4];
}
