// Quality of a model, measured through the Engine interface:
//   - perplexity on a text set: exp(mean negative log-likelihood of each next token);
//   - KL divergence of a model against a reference model's distributions, position by position
//     (mean, median, p99, max, like llama-perplexity --kl-divergence), and the same-top-1 rate;
//   - exact-match accuracy on {prompt, answer} task sets with greedy decoding.
// Texts are tokenized once, by the model under test, and both engines see the same token ids.
import type { Engine } from "../engine/engine.ts";
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
// Loss by position: does quality hold up deep into the context?

/** Position buckets `lab eval --by-position` reports: [edges[k], edges[k+1]). */
export const POSITION_BUCKETS = [0, 128, 256, 512, 1024];

export interface PositionLoss {
  /** bucket edges actually used (cut to the window length) */
  edges: number[];
  /** mean next-token loss (nats) of the positions in each bucket */
  loss: number[];
  /** scored positions per bucket */
  tokens: number[];
  windows: number;
  windowTokens: number;
}

/**
 * Mean next-token loss per position bucket over `windows` evenly spaced windows of a token stream,
 * each min(contextSize, last edge) + 1 tokens long, scored position by position (the loss at
 * position t predicts token t+1 from tokens 0..t of the window).
 */
export async function lossByPosition(engine: Engine, stream: ArrayLike<number>, opts: { windows?: number; edges?: number[] } = {}): Promise<PositionLoss> {
  const allEdges = opts.edges ?? POSITION_BUCKETS;
  const T = Math.min(engine.contextSize, allEdges.at(-1)!);
  const edges = [...allEdges.filter((e) => e < T), T];
  const width = T + 1, n = Math.min(opts.windows ?? 8, Math.floor(stream.length / width));
  if (n < 1) throw new Error(`lossByPosition: the stream has ${stream.length} tokens, fewer than one window of ${width}`);
  const stride = n > 1 ? Math.floor((stream.length - width) / (n - 1)) : 0;
  const sums = new Float64Array(edges.length - 1), counts = new Float64Array(edges.length - 1);
  for (let w = 0; w < n; w++) {
    const ids = Array.from({ length: width }, (_, i) => stream[w * stride + i]);
    const rows = await nextTokenDistributions(engine, ids);
    for (let t = 0; t < T; t++) {
      let k = 0;
      while (t >= edges[k + 1]) k++;
      sums[k] -= rows[t][ids[t + 1]];
      counts[k]++;
    }
  }
  return { edges, loss: Array.from(sums, (x, k) => x / counts[k]), tokens: Array.from(counts), windows: n, windowTokens: T };
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
 *
 * Prompts that open with the same long prefix (every chat item starts with the 919-token system
 * prompt) share it: the prefix is prefilled once and each item forks it (LabEngine shares the KV
 * blocks; llama.cpp copies the state), so a chat set costs about what a Q/A set does.
 */
export async function taskAccuracy(engine: Engine, items: TaskItem[]): Promise<{ accuracy: number; correct: number; total: number }> {
  const { hits } = await taskResults(engine, items);
  const correct = hits.filter(Boolean).length;
  return { accuracy: items.length ? correct / items.length : NaN, correct, total: items.length };
}

/** Prefixes shorter than this are re-evaluated per item: a fork is not worth it. */
export const SHARED_PREFIX_MIN_TOKENS = 64;

/** Per item: whether it was answered exactly, and the first line of what the model said. */
export async function taskResults(engine: Engine, items: TaskItem[]): Promise<{ hits: boolean[]; said: string[] }> {
  const tok = engine.tokenizer;
  const prompts = items.map((it) => tok.encode(it.prompt, { bos: true }));
  let shared = commonPrefixLength(prompts);
  if (shared < SHARED_PREFIX_MIN_TOKENS || items.length < 2 || engine.maxSequences < 2) shared = 0;
  const base = shared > 0 ? await engine.createSequence() : undefined;
  const hits: boolean[] = [], said: string[] = [];
  try {
    if (base) await base.prefill(prompts[0].slice(0, shared));
    for (let i = 0; i < items.length; i++) {
      const prompt = prompts[i];
      const budget = Math.min(Math.max(10, tok.encode(items[i].answer, { bos: false }).length + 4), engine.contextSize - prompt.length);
      const seq = base ? await base.fork() : await engine.createSequence();
      const generated: number[] = [];
      try {
        let dist = await seq.prefill(prompt.slice(shared));
        for (let n = 0; n < budget; n++) {
          const token = argmax(dist);
          if (token === tok.eosId) break;
          generated.push(token);
          if (tok.decode(generated).includes("\n") || n + 1 === budget) break;
          [dist] = await engine.decode([{ sequence: seq, token }]);
        }
      } finally {
        await seq.free();
      }
      const text = tok.decode(generated);
      hits.push(exactMatch(text, items[i].answer));
      said.push(text.split("\n", 1)[0].trim());
    }
  } finally {
    await base?.free();
  }
  return { hits, said };
}

/** Tokens every prompt starts with, keeping at least one token of each prompt to evaluate. */
function commonPrefixLength(prompts: number[][]): number {
  if (prompts.length === 0) return 0;
  let n = Math.min(...prompts.map((p) => p.length)) - 1;
  for (const p of prompts) {
    let i = 0;
    while (i < n && p[i] === prompts[0][i]) i++;
    n = i;
  }
  return Math.max(0, n);
}
