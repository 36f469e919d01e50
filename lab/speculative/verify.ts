// The rejection-sampling step of speculative decoding (Leviathan et al. 2023, arXiv 2211.17192;
// Chen et al. 2023, arXiv 2302.01318): given k draft tokens x_1..x_k drawn from the draft
// distributions q_1..q_k, and the target distributions p_1..p_{k+1} computed in ONE target pass
// over [last, x_1..x_k], emit tokens whose distribution is exactly the target's.
//
//   for i = 1..k:  accept x_i with probability min(1, p_i(x_i) / q_i(x_i))
//                  on the first rejection: emit y ~ norm(max(0, p_i − q_i)) and stop
//   all accepted:  emit a bonus token y ~ p_{k+1}
//
// Why it is exact, in one line per case: the chance of emitting y at position i is
// q(y)·min(1, p(y)/q(y)) + P(reject)·r(y), where min(q, p) is the accepted part and
// P(reject) = Σ max(0, p − q) = 1 − Σ min(p, q), so the rejected part is exactly max(0, p − q);
// the two add up to min(p, q) + max(0, p − q) = p(y).
//
// Reading order: the sampler's transform (what p and q are), drawing from a row, verifyDraft.
//
// Rows are the distributions AFTER the sampler's transform: temperature, top-k and top-p change
// the distribution we are sampling from, so they must be applied to p and q with the same settings
// before the ratio is taken (otherwise the output follows the raw p, not the sampled one).
import { argmax, type SamplerOptions } from "../engine/sampler.ts";

// ---------------------------------------------------------------------------------------------
// The sampler's transform, as a distribution

/**
 * The distribution lab/engine/sampler.ts's Sampler draws from, as log-probabilities: Float64Array
 * [nVocab], natural log, −∞ outside the kept set, summing to 1 in probability. It mirrors Sampler's
 * order exactly: drop −∞ entries, sort by likelihood (ties: lower id first), keep the top-k, apply
 * the temperature (weights exp((lp − top) / T), float64), then keep the smallest prefix whose mass
 * reaches topP × total (at least one token). temperature 0 (greedy) is a point mass on the argmax.
 * (Sampler keeps this inside sample(); the kit's rule is that lab/engine is the lead's file, so
 * the transform is re-stated here and tested against Sampler's own draws.)
 */
export function samplerDistribution(logProbs: ArrayLike<number>, opts: Pick<SamplerOptions, "temperature" | "topK" | "topP"> = {}): Float64Array {
  const { temperature = 0, topK = 0, topP = 1 } = opts;
  if (!(temperature >= 0) || !Number.isFinite(temperature)) throw new RangeError(`temperature must be >= 0, got ${temperature}`);
  if (!Number.isInteger(topK) || topK < 0) throw new RangeError(`topK must be an integer >= 0, got ${topK}`);
  if (!(topP > 0 && topP <= 1)) throw new RangeError(`topP must be in (0, 1], got ${topP}`);
  const n = logProbs.length;
  const out = new Float64Array(n).fill(-Infinity);
  if (n === 0) throw new RangeError("samplerDistribution: empty row");
  if (temperature === 0) {
    out[argmax(logProbs)] = 0;
    return out;
  }
  let ids: number[] = [];
  for (let i = 0; i < n; i++) if (logProbs[i] > -Infinity) ids.push(i);
  if (ids.length === 0) throw new RangeError("samplerDistribution: every entry is −∞ (no token has any probability)");
  ids.sort((a, b) => logProbs[b] - logProbs[a] || a - b);
  if (topK > 0 && ids.length > topK) ids = ids.slice(0, topK);
  const top = logProbs[ids[0]];
  const weights = ids.map((i) => Math.exp((logProbs[i] - top) / temperature));
  let total = weights.reduce((s, w) => s + w, 0);
  if (topP < 1) {
    let kept = 0;
    let mass = 0;
    while (kept < ids.length && mass < topP * total) mass += weights[kept++];
    kept = Math.max(1, kept);
    ids = ids.slice(0, kept);
    total = weights.slice(0, kept).reduce((s, w) => s + w, 0);
  }
  for (let j = 0; j < ids.length; j++) out[ids[j]] = Math.log(weights[j] / total);
  return out;
}

/** A point mass on `token` as a log-probability row (a drafter that proposes without a
 *  distribution, such as prompt lookup, has q = 1 on its token: accept iff u < p(x)). */
export function pointMass(token: number, nVocab: number): Float64Array {
  if (!Number.isInteger(token) || token < 0 || token >= nVocab) throw new RangeError(`pointMass: token ${token} is outside the vocabulary [0, ${nVocab})`);
  const row = new Float64Array(nVocab).fill(-Infinity);
  row[token] = 0;
  return row;
}

// ---------------------------------------------------------------------------------------------
// Drawing from a row

/** Draws an index from non-negative weights (need not sum to 1) with one uniform u in [0, 1):
 *  inverse CDF, float64. Only an index with positive weight can come out (rounding at the top end
 *  falls back to the last positive one). */
export function drawFromWeights(weights: ArrayLike<number>, u: number): number {
  let total = 0;
  let lastPositive = -1;
  for (let i = 0; i < weights.length; i++) {
    if (weights[i] > 0) { total += weights[i]; lastPositive = i; }
  }
  if (lastPositive < 0) throw new RangeError("drawFromWeights: no entry has positive weight");
  let x = u * total;
  for (let i = 0; i < weights.length; i++) {
    if (!(weights[i] > 0)) continue;
    x -= weights[i];
    if (x < 0) return i;
  }
  return lastPositive;
}

/** exp of a log-probability row into float64 probabilities (−∞ → 0). */
function probabilities(row: ArrayLike<number>): Float64Array {
  const p = new Float64Array(row.length);
  for (let i = 0; i < row.length; i++) p[i] = Math.exp(row[i]);
  return p;
}

// ---------------------------------------------------------------------------------------------
// verifyDraft

export interface VerifyInput {
  /** k+1 rows of target log-probabilities [nVocab]: after the prefix, then after each draft token. */
  target: ArrayLike<number>[];
  /** k rows of draft log-probabilities [nVocab]: the distribution each draft token was drawn from.
   *  Ignored (may be empty) when greedy. */
  draft: ArrayLike<number>[];
  /** The k draft tokens. */
  tokens: readonly number[];
  /** Uniform numbers in [0, 1). Greedy verification draws none. */
  random: () => number;
  /** Accept while the draft token is the target's argmax; then emit the target's argmax. */
  greedy?: boolean;
}

export interface VerifyResult {
  /** How many draft tokens were accepted (0..k). */
  accepted: number;
  /** The token emitted after them: the residual draw at the first rejection, or the bonus token. */
  token: number;
}

/**
 * One verification: the emitted tokens are tokens.slice(0, accepted) followed by token, distributed
 * exactly as sampling them one by one from the target rows would be.
 * Edge cases: q(x) = 0 rejects (vLLM does the same: a proposal the draft could not have drawn is
 * not evidence for anything); p == q gives acceptance 1, and if rounding still rejects, the residual
 * is all zeros and we draw from p (p ≤ q everywhere with equal sums means p == q); −∞ entries are
 * probability 0; k = 0 draws one token from p_1.
 */
export function verifyDraft({ target, draft, tokens, random, greedy = false }: VerifyInput): VerifyResult {
  const k = tokens.length;
  if (target.length !== k + 1) throw new RangeError(`verifyDraft: ${k} draft tokens need ${k + 1} target rows, got ${target.length}`);
  if (!greedy && draft.length !== k) throw new RangeError(`verifyDraft: ${k} draft tokens need ${k} draft rows, got ${draft.length}`);
  const nVocab = target[0].length;
  for (const [i, row] of target.entries()) {
    if (row.length !== nVocab) throw new RangeError(`verifyDraft: target row ${i} has ${row.length} entries, row 0 has ${nVocab}`);
  }
  if (!greedy) {
    for (const [i, row] of draft.entries()) {
      if (row.length !== nVocab) throw new RangeError(`verifyDraft: draft row ${i} has ${row.length} entries, the target's have ${nVocab}`);
    }
  }
  for (const [i, t] of tokens.entries()) {
    if (!Number.isInteger(t) || t < 0 || t >= nVocab) throw new RangeError(`verifyDraft: draft token ${i} = ${t} is outside the vocabulary [0, ${nVocab})`);
  }

  if (greedy) {
    for (let i = 0; i < k; i++) {
      const best = argmax(target[i]);
      if (tokens[i] !== best) return { accepted: i, token: best };
    }
    return { accepted: k, token: argmax(target[k]) };
  }

  for (let i = 0; i < k; i++) {
    const x = tokens[i];
    const p = Math.exp(target[i][x]);
    const q = Math.exp(draft[i][x]);
    // u < p/q happens with probability min(1, p/q); q = 0 rejects, p = 0 always rejects.
    if (q > 0 && random() * q < p) continue;
    const pRow = probabilities(target[i]);
    const qRow = probabilities(draft[i]);
    const residual = new Float64Array(nVocab);
    let mass = 0;
    for (let y = 0; y < nVocab; y++) {
      residual[y] = Math.max(0, pRow[y] - qRow[y]);
      mass += residual[y];
    }
    const token = mass > 0 ? drawFromWeights(residual, random()) : drawFromWeights(pRow, random());
    return { accepted: i, token };
  }
  return { accepted: k, token: drawFromWeights(probabilities(target[k]), random()) };
}

/**
 * Greedy verification from the target's argmax after each position (engine step output "argmax":
 * [last, d1..dk] gives k+1 tokens, no rows): accept while d_i equals the target's pick at its
 * position, then emit the target's pick there. The same verdict as verifyDraft({ greedy: true }) on
 * the rows those argmaxes come from.
 */
export function verifyGreedy(targetArgmax: readonly number[], tokens: readonly number[]): VerifyResult {
  if (targetArgmax.length !== tokens.length + 1) throw new RangeError(`verifyGreedy: ${tokens.length} draft tokens need ${tokens.length + 1} target picks, got ${targetArgmax.length}`);
  let accepted = 0;
  while (accepted < tokens.length && tokens[accepted] === targetArgmax[accepted]) accepted++;
  return { accepted, token: targetArgmax[accepted]! };
}
