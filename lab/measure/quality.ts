// Quality of a model, measured through the Engine interface:
//   - perplexity on a text set: exp(mean negative log-likelihood of each next token);
//   - KL divergence of a model against a reference model's distributions, position by position
//     (mean, median, p99, max, like llama-perplexity --kl-divergence), and the same-top-1 rate;
//   - exact-match accuracy on {prompt, answer} task sets with greedy decoding.
// Texts are tokenized once, by the model under test, and both engines see the same token ids.
import type { Engine } from "../engine/engine.ts";
import { generate } from "../engine/generate.ts";
import { argmax } from "../engine/sampler.ts";
import { exactMatch } from "../data/index.ts";
import { mean, median, quantile } from "./stats.ts";

// ---------------------------------------------------------------------------------------------
// Helpers

/** Token ids of a text with BOS, cut to what fits one sequence (the last position is only a target). */
export function tokensForScoring(engine: Engine, text: string): number[] {
  return engine.tokenizer.encode(text, { bos: true }).slice(0, engine.contextSize);
}

/** The next-token distributions after positions 0..n-2 of ids (n-1 rows). */
export async function nextTokenDistributions(engine: Engine, ids: number[]): Promise<Float32Array[]> {
  const seq = await engine.createSequence();
  try {
    return await seq.evaluate(ids.slice(0, -1), { all: true });
  } finally {
    await seq.free();
  }
}

// ---------------------------------------------------------------------------------------------
// Perplexity

export interface PerplexityResult {
  perplexity: number;
  /** mean negative log-likelihood per token, nats */
  nll: number;
  /** scored tokens */
  tokens: number;
}

export async function perplexity(engine: Engine, texts: string[]): Promise<PerplexityResult> {
  let nll = 0;
  let count = 0;
  for (const text of texts) {
    const ids = tokensForScoring(engine, text);
    if (ids.length < 2) continue;
    const rows = await nextTokenDistributions(engine, ids);
    for (let i = 0; i < rows.length; i++) nll -= rows[i][ids[i + 1]];
    count += rows.length;
  }
  if (count === 0) throw new Error("perplexity: no text had two or more tokens to score");
  return { perplexity: Math.exp(nll / count), nll: nll / count, tokens: count };
}

// ---------------------------------------------------------------------------------------------
// KL divergence against a reference

export interface KlResult {
  /** KL(reference ‖ model) per position, nats */
  kl: { mean: number; median: number; p99: number; max: number };
  /** fraction of positions where both put the most probability on the same token */
  top1: number;
  /** max |log p_model − log p_ref| over all positions and all tokens with finite values */
  maxAbsLogProbDiff: number;
  positions: number;
}

/** KL(P‖Q) = Σ p (log p − log q) for two rows of log-probabilities (float64 accumulation). */
export function klDivergence(logP: Float32Array, logQ: Float32Array): number {
  let kl = 0;
  for (let i = 0; i < logP.length; i++) {
    const lp = logP[i];
    if (lp === -Infinity) continue;
    kl += Math.exp(lp) * (lp - logQ[i]);
  }
  return Math.max(0, kl);
}

/** Compares two sets of rows position by position. */
export function compareDistributions(model: Float32Array[], reference: Float32Array[]): KlResult {
  if (model.length !== reference.length) throw new Error(`compareDistributions: ${model.length} rows vs ${reference.length}`);
  const kls: number[] = [];
  let same = 0;
  let maxAbs = 0;
  for (let r = 0; r < model.length; r++) {
    kls.push(klDivergence(reference[r], model[r]));
    if (argmax(model[r]) === argmax(reference[r])) same++;
    const a = model[r], b = reference[r];
    for (let i = 0; i < a.length; i++) {
      if (!Number.isFinite(a[i]) || !Number.isFinite(b[i])) continue;
      const d = Math.abs(a[i] - b[i]);
      if (d > maxAbs) maxAbs = d;
    }
  }
  return {
    kl: { mean: mean(kls), median: median(kls), p99: quantile(kls, 0.99), max: kls.length ? Math.max(...kls) : NaN },
    top1: model.length ? same / model.length : NaN,
    maxAbsLogProbDiff: maxAbs,
    positions: model.length,
  };
}

/** KL of `engine`'s distributions against `reference`'s on the same token ids of each text. */
export async function klAgainst(engine: Engine, reference: Engine, texts: string[]): Promise<KlResult> {
  if (engine.hparams.nVocab !== reference.hparams.nVocab) {
    throw new Error(`KL needs one vocabulary: the model has ${engine.hparams.nVocab} tokens, the reference ${reference.hparams.nVocab}`);
  }
  const mine: Float32Array[] = [];
  const theirs: Float32Array[] = [];
  for (const text of texts) {
    const ids = tokensForScoring(engine, text);
    if (ids.length < 2) continue;
    mine.push(...(await nextTokenDistributions(engine, ids)));
    theirs.push(...(await nextTokenDistributions(reference, ids)));
  }
  return compareDistributions(mine, theirs);
}

// ---------------------------------------------------------------------------------------------
// Task accuracy

export interface TaskItem {
  prompt: string;
  answer: string;
}

/**
 * Exact match with greedy decoding, by lab/data's rule (`exactMatch`): the continuation up to its
 * first newline, trimmed, must equal the answer. Generation stops at EOS, a newline, or
 * max(10, answer tokens + 4) new tokens (10 is what the trainer's model card uses).
 */
export async function taskAccuracy(engine: Engine, items: TaskItem[]): Promise<{ accuracy: number; correct: number; total: number }> {
  let correct = 0;
  for (const item of items) {
    const prompt = engine.tokenizer.encode(item.prompt, { bos: true });
    const budget = Math.max(10, engine.tokenizer.encode(item.answer, { bos: false }).length + 4);
    const ids = await generate(engine, prompt, {
      maxTokens: budget, temperature: 0,
      stop: (gen) => engine.tokenizer.decode(gen).includes("\n"),
    });
    if (exactMatch(engine.tokenizer.decode(ids), item.answer)) correct++;
  }
  return { accuracy: items.length ? correct / items.length : NaN, correct, total: items.length };
}
