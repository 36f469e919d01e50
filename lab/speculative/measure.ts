// Measuring speculative decoding against plain decoding on the same engine: what `lab speculate`,
// bench/speculative.ts and the notebook report.
//
//   measureCostRatios: c = draft step ÷ target decode step and v(k) = target pass over k+1 tokens ÷
//     target decode step, each the fastest of interleaved repeats on a sequence holding a real prompt;
//   compareWithPlain: plain greedy (plainGreedy: the engine's own pick) or sampled generation and
//     speculativeGenerate over the same prompts,
//     interleaved run by run (so a busy machine slows both alike), tokens/s of each, the acceptance
//     figures, and whether the outputs are identical token for token (meaningful for greedy only).
import { loadCorpus, TASKS, type Task } from "../data/index.ts";
import type { Engine } from "../engine/engine.ts";
import { generateTokens } from "../engine/generate.ts";
import { Sampler, type SamplerOptions } from "../engine/sampler.ts";
import { median } from "../measure/stats.ts";
import { alphaFromMeanLength, predictedSpeedup } from "./cost.ts";
import type { Drafter } from "./drafters.ts";
import { checkSameVocabulary, speculativeGenerate, type SpeculativeResult } from "./generate.ts";

// ---------------------------------------------------------------------------------------------
// Prompts

/** The prompt sets of `lab speculate --prompts`: the corpus tasks' validation documents
 *  ("arith" is the arithmetic task; chat documents start with a long system prompt that answers
 *  quote, which is where prompt lookup pays). */
export const PROMPT_SETS = ["chat", "prose", "code", "arith", "repeat"] as const;
export type PromptSet = (typeof PROMPT_SETS)[number];

/** The first `length` tokens (BOS included) of the first `count` validation documents of a task.
 *  "repeat" is the repetitive workload: 64 tokens of one chat transcript, then the first 8 tokens
 *  of the next one — which opens with the same system prompt, so the continuation repeats text
 *  already in the context (what prompt lookup is for: quoting, multi-turn chat, editing code). */
export function speculativePrompts(engine: Engine, set: PromptSet, { count = 3, length = 64 } = {}): number[][] {
  if (!PROMPT_SETS.includes(set)) throw new RangeError(`unknown prompt set "${set}" (expected ${PROMPT_SETS.join(" | ")})`);
  if (set === "repeat") {
    const docs = loadCorpus("chat", "val");
    const prompts: number[][] = [];
    for (let i = 0; i + 1 < docs.length && prompts.length < count; i++) {
      const first = engine.tokenizer.encode(docs[i], { bos: true }).slice(0, 64);
      const second = engine.tokenizer.encode(docs[i + 1], { bos: false }).slice(0, 8);
      prompts.push([...first, ...engine.tokenizer.encode("\n", { bos: false }), ...second]);
    }
    return prompts;
  }
  const task: Task = set === "arith" ? "arithmetic" : set;
  if (!TASKS.includes(task)) throw new RangeError(`no corpus task for prompt set "${set}"`);
  const docs = loadCorpus(task, "val");
  const prompts: number[][] = [];
  // Several short documents (arithmetic lines) are joined until a prompt is long enough.
  let buffer = "";
  for (const doc of docs) {
    buffer = buffer ? `${buffer}\n${doc}` : doc;
    const ids = engine.tokenizer.encode(buffer, { bos: true });
    if (ids.length < length) continue;
    prompts.push(ids.slice(0, length));
    buffer = "";
    if (prompts.length === count) break;
  }
  if (prompts.length === 0) throw new RangeError(`prompt set "${set}": no document reaches ${length} tokens`);
  return prompts;
}

// ---------------------------------------------------------------------------------------------
// Cost ratios

export interface CostRatios {
  /** Milliseconds, the fastest of the interleaved repeats (on a loaded machine the median mostly
   *  measures other processes; the fastest is the pass itself): one target decode step (1 token,
   *  its row), one draft step (1 token, greedy pick), one target pass over k+1 tokens, every row. */
  targetStepMs: number;
  draftStepMs: number;
  verifyPassMs: number;
  k: number;
  /** draftStepMs / targetStepMs (0 without a draft model). */
  c: number;
  /** verifyPassMs / targetStepMs. */
  v: number;
}

/**
 * Plain greedy decoding with the engine's own greedy pick (step output "none" + a greedy sampler:
 * LabEngine takes the argmax of the logits, llama.cpp samples natively and builds no probability
 * Map) — the honest baseline, the same tokens as generate() at temperature 0.
 */
export async function plainGreedy(engine: Engine, prompt: readonly number[], maxTokens: number,
  { stopAtEos = true, onFirstToken }: { stopAtEos?: boolean; onFirstToken?: () => void } = {}): Promise<number[]> {
  const greedy = new Sampler({ temperature: 0 });
  const budget = Math.min(maxTokens, engine.contextSize - prompt.length);
  const out: number[] = [];
  if (budget <= 0) return out;
  const seq = await engine.createSequence();
  try {
    let [r] = await engine.step([{ sequence: seq, tokens: [...prompt], output: "none", sample: greedy }]);
    onFirstToken?.(); // the prompt's prefill gave the first token: decoding starts here
    for (;;) {
      const token = r.token!;
      if (stopAtEos && token === engine.tokenizer.eosId) break;
      out.push(token);
      if (out.length >= budget) break;
      [r] = await engine.step([{ sequence: seq, tokens: [token], output: "none", sample: greedy }]);
    }
  } finally {
    await seq.free();
  }
  return out;
}

/** Times the three kinds of pass on sequences holding `context`, interleaved, and rolls each back.
 *  Greedy (the default) times them as the greedy loops run them: a decode step with the engine's own
 *  pick (output "none" + greedy sampler) and a verification pass with output "argmax"; otherwise a
 *  step returning its row ("last") and a pass returning every row ("all"). */
export async function measureCostRatios(target: Engine, draft: Engine | undefined, context: readonly number[], k: number, repeats = 15, { greedy: greedyLoop = true } = {}): Promise<CostRatios> {
  if (context.length + k + 1 > target.contextSize) throw new RangeError(`measureCostRatios: ${context.length} + ${k + 1} tokens do not fit the context of ${target.contextSize}`);
  const greedy = new Sampler({ temperature: 0 });
  const tSeq = await target.createSequence();
  const dSeq = draft ? await draft.createSequence() : undefined;
  const probe = Array.from({ length: k + 1 }, (_, i) => context[(i * 7 + 1) % context.length]);
  const step: number[] = [], pass: number[] = [], draftStep: number[] = [];
  try {
    await tSeq.prefill([...context]);
    if (dSeq) await dSeq.prefill([...context]);
    const n = context.length;
    for (let r = 0; r < repeats + 1; r++) {
      let t0 = performance.now();
      await target.step([greedyLoop ? { sequence: tSeq, tokens: probe.slice(0, 1), output: "none", sample: greedy } : { sequence: tSeq, tokens: probe.slice(0, 1), output: "last" }]);
      const a = performance.now() - t0;
      await tSeq.truncate(n);
      t0 = performance.now();
      await target.step([{ sequence: tSeq, tokens: probe, output: greedyLoop ? "argmax" : "all" }]);
      const b = performance.now() - t0;
      await tSeq.truncate(n);
      let c = 0;
      if (dSeq && draft) {
        t0 = performance.now();
        await draft.step([{ sequence: dSeq, tokens: probe.slice(0, 1), output: "none", sample: greedy }]);
        c = performance.now() - t0;
        await dSeq.truncate(n);
      }
      if (r === 0) continue; // warm-up
      step.push(a); pass.push(b); draftStep.push(c);
    }
  } finally {
    await tSeq.free();
    await dSeq?.free();
  }
  const targetStepMs = Math.min(...step);
  const draftStepMs = Math.min(...draftStep);
  const verifyPassMs = Math.min(...pass);
  return { targetStepMs, draftStepMs, verifyPassMs, k, c: draftStepMs / targetStepMs, v: verifyPassMs / targetStepMs };
}

// ---------------------------------------------------------------------------------------------
// Side by side

export interface Comparison {
  k: number;
  drafter: string;
  temperature: number;
  prompts: number;
  tokensPerPrompt: number;
  /** End to end: tokens ÷ the whole run, the prompt's prefill included. */
  baseline: { tokensPerSecond: number; tokens: number; seconds: number };
  speculative: { tokensPerSecond: number; tokens: number; seconds: number };
  speedup: number;
  /** Decoding only, the phase the cost model describes (the prompt's prefill, which speculation
   *  does not change, left out of both): plain = tokens after the first ÷ time after the prefill
   *  gave the first token; speculative = tokens ÷ time after the target's and the draft's prefill. */
  decode: { baselineTokensPerSecond: number; speculativeTokensPerSecond: number; speedup: number };
  /** The median over runs of (plain seconds ÷ speculative seconds) for the same prompt, run back to
   *  back: less moved by load that changes between runs than the ratio of totals. */
  speedupMedianOfPairs: number;
  /** Greedy: every prompt's speculative output equals the plain one token for token. null when sampling. */
  identical: boolean | null;
  drafted: number;
  accepted: number;
  acceptanceRate: number;
  meanAcceptedLength: number;
  tokensPerTargetPass: number;
  acceptancePerPosition: number[];
  /** Seconds spent drafting, verifying (target passes) and rolling back, summed over runs. */
  timeSplit: { prefill: number; draft: number; verify: number; rollback: number };
  costs: CostRatios;
  /** α with E(α, k) = meanAcceptedLength (i.i.d. positions), and E(α,k) / (k·c + v(k)). For prompt
   *  lookup, c is the lookup's measured time per drafted token ÷ target step. */
  alpha: number;
  c: number;
  v: number;
  predictedSpeedup: number;
}

export interface CompareOptions {
  k: number;
  maxTokens: number;
  sampler?: SamplerOptions;
  /** Runs per prompt, plain and speculative interleaved. Default 2. */
  repeats?: number;
  /** The draft model's engine, for its step cost (undefined for prompt lookup). */
  draftEngine?: Engine;
  seed?: number;
}

export async function compareWithPlain(target: Engine, drafter: Drafter, prompts: number[][], opts: CompareOptions): Promise<Comparison> {
  const { k, maxTokens, repeats = 2, sampler = {}, seed = 0 } = opts;
  const temperature = sampler.temperature ?? 0;
  checkSameVocabulary(target, drafter); // before any generation
  let plainTokens = 0, plainMs = 0, specTokens = 0, specMs = 0;
  let plainDecodeTokens = 0, plainDecodeMs = 0, specDecodeMs = 0;
  let identical = true;
  const runs: SpeculativeResult[] = [];
  const pairRatios: number[] = [];
  for (let r = 0; r < repeats; r++) {
    for (const [i, prompt] of prompts.entries()) {
      const runSeed = seed + 1000 * r + i;
      // Alternate which goes first, so neither always gets the warmer cache.
      const order = (r + i) % 2 === 0 ? ["plain", "spec"] : ["spec", "plain"];
      let plain: number[] = [];
      let spec: SpeculativeResult | undefined;
      let onePlainMs = 0, oneSpecMs = 0, plainFirstMs = 0;
      for (const which of order) {
        const t0 = performance.now();
        if (which === "plain") {
          const first = () => { plainFirstMs = performance.now() - t0; };
          if (temperature === 0) plain = await plainGreedy(target, prompt, maxTokens, { onFirstToken: first });
          else {
            plain = [];
            for await (const t of generateTokens(target, prompt, { maxTokens, ...sampler, seed: runSeed })) { if (plain.length === 0) first(); plain.push(t); }
          }
          onePlainMs = performance.now() - t0;
        } else {
          spec = await speculativeGenerate(target, drafter, prompt, { k, maxTokens, sampler, seed: runSeed });
          oneSpecMs = performance.now() - t0;
        }
      }
      plainMs += onePlainMs;
      specMs += oneSpecMs;
      if (plain.length > 1) { plainDecodeTokens += plain.length - 1; plainDecodeMs += onePlainMs - plainFirstMs; }
      specDecodeMs += oneSpecMs - spec!.time.prefillMs;
      // Tokens per second of each run, as a ratio (sampling may give the two runs different lengths).
      if (plain.length > 0 && spec!.tokens.length > 0) pairRatios.push((spec!.tokens.length / oneSpecMs) / (plain.length / onePlainMs));
      plainTokens += plain.length;
      specTokens += spec!.tokens.length;
      runs.push(spec!);
      if (plain.length !== spec!.tokens.length || plain.some((t, j) => t !== spec!.tokens[j])) identical = false;
    }
  }
  const sum = (f: (r: SpeculativeResult) => number) => runs.reduce((s, r) => s + f(r), 0);
  const drafted = sum((r) => r.drafted);
  const accepted = sum((r) => r.accepted);
  const draftRounds = sum((r) => r.draftRounds);
  const passes = sum((r) => r.targetPasses);
  const meanAcceptedLength = draftRounds > 0 ? 1 + accepted / draftRounds : 1;
  const perPosDrafted = new Array<number>(k).fill(0), perPosAccepted = new Array<number>(k).fill(0);
  for (const r of runs) r.draftedPerPosition.forEach((n, i) => { perPosDrafted[i] += n; perPosAccepted[i] += r.acceptedPerPosition[i]; });
  const costs = await measureCostRatios(target, opts.draftEngine, prompts[0], k, 15, { greedy: temperature === 0 });
  const c = opts.draftEngine ? costs.c : (sum((r) => r.time.draftMs) / Math.max(1, drafted)) / costs.targetStepMs;
  const alpha = alphaFromMeanLength(meanAcceptedLength, k);
  const baseline = { tokensPerSecond: plainTokens / (plainMs / 1000), tokens: plainTokens, seconds: plainMs / 1000 };
  const speculative = { tokensPerSecond: specTokens / (specMs / 1000), tokens: specTokens, seconds: specMs / 1000 };
  const decodeBase = plainDecodeTokens / (plainDecodeMs / 1000), decodeSpec = specTokens / (specDecodeMs / 1000);
  return {
    k, drafter: drafter.name, temperature, prompts: prompts.length, tokensPerPrompt: maxTokens,
    baseline, speculative, speedup: speculative.tokensPerSecond / baseline.tokensPerSecond,
    decode: { baselineTokensPerSecond: decodeBase, speculativeTokensPerSecond: decodeSpec, speedup: decodeSpec / decodeBase },
    speedupMedianOfPairs: pairRatios.length > 0 ? median(pairRatios) : NaN,
    identical: temperature === 0 ? identical : null,
    drafted, accepted, acceptanceRate: drafted > 0 ? accepted / drafted : NaN, meanAcceptedLength,
    tokensPerTargetPass: specTokens / Math.max(1, passes),
    acceptancePerPosition: perPosDrafted.map((n, i) => (n > 0 ? perPosAccepted[i] / n : NaN)),
    timeSplit: {
      prefill: sum((r) => r.time.prefillMs) / 1000, draft: sum((r) => r.time.draftMs) / 1000,
      verify: sum((r) => r.time.verifyMs) / 1000, rollback: sum((r) => r.time.rollbackMs) / 1000,
    },
    costs, alpha, c, v: costs.v,
    predictedSpeedup: predictedSpeedup(alpha, k, c, costs.v),
  };
}
