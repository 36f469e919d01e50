// speculativeGenerate: the decoding loop with a drafter. Each round
//   1. the drafter proposes k tokens d1..dk continuing the context (k draft steps, or a lookup);
//   2. the target runs ONE pass over [last, d1..dk] with output "all": k+1 distributions (greedy:
//      output "argmax", the target's k+1 picks, no distributions);
//   3. verifyDraft (greedy: verifyGreedy) accepts a prefix d1..da and emits one more token;
//   4. rejected tokens are rolled back with truncate, in the target and in the draft.
// The target's sequence always holds every committed token except the last one ("pending"): the
// next round's pass starts with it, so the pass that verifies the drafts also computes the row after
// the last committed token — no separate decode step is ever needed.
//
// Greedy output is identical to plain greedy decoding (lab/engine/generate.ts), token for token; at
// temperature > 0 the output has the plain sampler's distribution (not its exact draws: the random
// numbers are used differently).
import { EngineError, type Engine } from "../engine/engine.ts";
import { Sampler, type SamplerOptions } from "../engine/sampler.ts";
import { mulberry32 } from "../random.ts";
import type { Drafter, DraftSampling } from "./drafters.ts";
import { samplerDistribution, verifyDraft, verifyGreedy } from "./verify.ts";

/** Longest draft the loop accepts (vLLM and llama.cpp use far less; a bigger k only wastes work). */
export const MAX_K = 32;

export interface SpeculativeOptions {
  /** Draft tokens per round, 1..32. Fewer are drafted near maxTokens. */
  k: number;
  /** New tokens to produce at most (also capped by the context, as generate() does). */
  maxTokens: number;
  /** temperature / topK / topP, applied to target AND draft rows; default greedy. */
  sampler?: SamplerOptions | Sampler;
  /** Seed of the uniform numbers used for drafting and verification. Default sampler.seed ?? 0. */
  seed?: number;
  /** Stop when the end-of-sequence token is emitted (it is not returned). Default true. */
  stopAtEos?: boolean;
  /** Called after each round with the tokens it emitted (at least one; what a stream would send):
   *  the first call marks the time to first token. */
  onTokens?: (tokens: readonly number[]) => void;
}

export interface SpeculativeResult {
  tokens: number[];
  /** Draft tokens proposed, and accepted by the target. */
  drafted: number;
  accepted: number;
  /** accepted / drafted (vLLM's draft acceptance rate); NaN when nothing was drafted. */
  acceptanceRate: number;
  /** Rounds that drafted at least one token (vLLM's num_drafts). */
  draftRounds: number;
  /** vLLM's mean acceptance length: 1 + accepted / draftRounds (tokens per target pass of a draft round). */
  meanAcceptedLength: number;
  /** Target passes (one per round, drafts or not) and tokens emitted per pass. */
  targetPasses: number;
  tokensPerTargetPass: number;
  /** [k]: how often position i was drafted / accepted, and their ratio. */
  draftedPerPosition: number[];
  acceptedPerPosition: number[];
  acceptancePerPosition: number[];
  /** Forward passes the draft model ran (0 for prompt lookup). */
  draftSteps: number;
  /** Wall-clock split, milliseconds. prefill = the target's and the draft's prefill of the prompt;
   *  verify = the target pass and the verdict; rollback = truncates. */
  time: { prefillMs: number; draftMs: number; verifyMs: number; rollbackMs: number; totalMs: number };
}

/** Throws EngineError when the drafter's vocabulary is not the target's (ids would mean other text). */
export function checkSameVocabulary(target: Engine, drafter: Drafter): void {
  const tv = target.tokenizer.vocabSize;
  if (drafter.vocabSize !== tv) {
    throw new EngineError(`the drafter "${drafter.name}" has a vocabulary of ${drafter.vocabSize} tokens, the target ${tv}: speculative decoding needs the same vocabulary`);
  }
  const d = drafter.engine;
  if (!d) return;
  const a = target.tokenizer;
  const b = d.tokenizer;
  if (a.bosId !== b.bosId || a.eosId !== b.eosId) {
    throw new EngineError(`the draft model's BOS/EOS ids (${b.bosId}/${b.eosId}) differ from the target's (${a.bosId}/${a.eosId}): not the same vocabulary`);
  }
  for (let id = 0; id < tv; id++) {
    if (a.decode([id]) !== b.decode([id])) {
      throw new EngineError(`the draft model's token ${id} is ${JSON.stringify(b.decode([id]))}, the target's ${JSON.stringify(a.decode([id]))}: not the same vocabulary`);
    }
  }
}

/** Generates up to maxTokens tokens after promptTokens with target verifying drafter's proposals. */
export async function speculativeGenerate(target: Engine, drafter: Drafter, promptTokens: readonly number[], opts: SpeculativeOptions): Promise<SpeculativeResult> {
  const { k, maxTokens, stopAtEos = true } = opts;
  if (!Number.isInteger(k) || k < 1 || k > MAX_K) throw new RangeError(`k must be an integer in [1, ${MAX_K}], got ${k}`);
  if (!Number.isInteger(maxTokens) || maxTokens < 0) throw new RangeError(`maxTokens must be an integer >= 0, got ${maxTokens}`);
  if (promptTokens.length === 0) throw new EngineError("empty prompt: nothing to continue");
  checkSameVocabulary(target, drafter);
  const nVocab = target.tokenizer.vocabSize;
  for (const t of promptTokens) {
    if (!Number.isInteger(t) || t < 0 || t >= nVocab) throw new EngineError(`prompt token ${t} is outside the vocabulary [0, ${nVocab})`);
  }
  if (promptTokens.length + k + 1 > target.contextSize) {
    throw new EngineError(`a prompt of ${promptTokens.length} tokens leaves no room for k + 1 = ${k + 1} tokens in the target's context of ${target.contextSize} positions`);
  }
  const settings = opts.sampler ?? {};
  const temperature = settings.temperature ?? 0;
  const transformOpts = { temperature, topK: settings.topK ?? 0, topP: settings.topP ?? 1 };
  samplerDistribution([0], transformOpts); // checks the settings before anything runs
  const greedy = temperature === 0;
  const random = mulberry32(opts.seed ?? settings.seed ?? 0);
  const sampling: DraftSampling = { greedy, transform: (row) => samplerDistribution(row, transformOpts), random };

  const budget = Math.min(maxTokens, target.contextSize - promptTokens.length);
  const out: number[] = [];
  const context = [...promptTokens];
  const draftedPerPosition = new Array<number>(k).fill(0);
  const acceptedPerPosition = new Array<number>(k).fill(0);
  let drafted = 0, accepted = 0, draftRounds = 0, targetPasses = 0, draftSteps = 0;
  const time = { prefillMs: 0, draftMs: 0, verifyMs: 0, rollbackMs: 0, totalMs: 0 };
  const tStart = performance.now();
  const seq = await target.createSequence();
  try {
    let t0 = performance.now();
    if (context.length > 1) await target.step([{ sequence: seq, tokens: context.slice(0, -1), output: "none" }]);
    if (budget > 1) await drafter.prefill?.(context); // no draft is asked for when only one token is wanted
    time.prefillMs = performance.now() - t0;
    let done = budget === 0;
    while (!done) {
      // Draft no more than the tokens still wanted: a round emits at most kk + 1.
      const kk = Math.min(k, budget - out.length - 1);
      t0 = performance.now();
      const proposal = kk > 0 ? await drafter.propose(context, kk, sampling) : { tokens: [], logprobs: [], steps: 0 };
      time.draftMs += performance.now() - t0;
      const drafts = proposal.tokens;
      if (drafts.length > kk) throw new EngineError(`the drafter "${drafter.name}" proposed ${drafts.length} tokens, at most ${kk} were asked for`);
      for (const d of drafts) {
        if (!Number.isInteger(d) || d < 0 || d >= nVocab) throw new EngineError(`the drafter "${drafter.name}" proposed token id ${d}, outside the vocabulary [0, ${nVocab})`);
      }
      if (!greedy && proposal.logprobs.length !== drafts.length) throw new EngineError(`the drafter "${drafter.name}" gave ${proposal.logprobs.length} distributions for ${drafts.length} tokens`);
      draftSteps += proposal.steps;

      t0 = performance.now();
      const pass = [context[context.length - 1], ...drafts];
      let verdict;
      if (greedy) {
        // Greedy needs only the target's pick after each position, not k+1 full distributions.
        const [r] = await target.step([{ sequence: seq, tokens: pass, output: "argmax" }]);
        verdict = verifyGreedy(r.argmax!, drafts);
      } else {
        const [r] = await target.step([{ sequence: seq, tokens: pass, output: "all" }]);
        const rows = r.logprobs.map((row) => samplerDistribution(row, transformOpts));
        verdict = verifyDraft({ target: rows, draft: proposal.logprobs, tokens: drafts, random });
      }
      time.verifyMs += performance.now() - t0;
      targetPasses++;
      if (drafts.length > 0) draftRounds++;
      drafted += drafts.length;
      accepted += verdict.accepted;
      for (let i = 0; i < drafts.length; i++) {
        draftedPerPosition[i]++;
        if (i < verdict.accepted) acceptedPerPosition[i]++;
      }

      // Roll back: the target keeps the context plus the accepted drafts (the emitted token is
      // the next pending one); the draft model keeps at most the same.
      t0 = performance.now();
      const keep = context.length + verdict.accepted;
      if (seq.length > keep) await seq.truncate(keep);
      await drafter.rollback(keep);
      time.rollbackMs += performance.now() - t0;

      const before = out.length;
      for (const token of [...drafts.slice(0, verdict.accepted), verdict.token]) {
        if (stopAtEos && token === target.tokenizer.eosId) { done = true; break; }
        out.push(token);
        context.push(token);
        if (out.length >= budget) { done = true; break; }
      }
      if (opts.onTokens && out.length > before) opts.onTokens(out.slice(before));
    }
  } finally {
    await seq.free();
  }
  time.totalMs = performance.now() - tStart;
  return {
    tokens: out, drafted, accepted,
    acceptanceRate: drafted > 0 ? accepted / drafted : NaN,
    draftRounds,
    meanAcceptedLength: draftRounds > 0 ? 1 + accepted / draftRounds : 1,
    targetPasses,
    tokensPerTargetPass: targetPasses > 0 ? out.length / targetPasses : 0,
    draftedPerPosition, acceptedPerPosition,
    acceptancePerPosition: draftedPerPosition.map((n, i) => (n > 0 ? acceptedPerPosition[i] / n : NaN)),
    draftSteps, time,
  };
}
