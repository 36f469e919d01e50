// Task 2.1 — accept or reject ONE draft token, and the residual distribution.
// Read notebooks/02-speculative-decoding.ipynb §2.1 first. Hints (progressive): exercises/speculative/HINTS.md.
// Grade with `npm run grade -- 2.1`. The grader draws hundreds of thousands of tokens through your
// code and checks by a chi-square test that what comes out follows the TARGET distribution p exactly;
// it refuses a file that imports the kit's own implementation (lab/speculative/).
//
// Distributions here are plain probabilities (not logarithms): p[y] >= 0, summing to 1 over the
// vocabulary y = 0 … nVocab − 1.
import { NotImplementedError } from "../../lab/errors.ts";

/** Probabilities over the vocabulary: [nVocab], each >= 0, summing to 1. */
export type Distribution = ArrayLike<number>;

/**
 * Given (not part of the task): draws an index from non-negative weights with ONE uniform number
 * u in [0, 1), by the inverse CDF: the first i whose running sum of weights exceeds u × (sum of all
 * weights). The weights need not sum to 1. Only an index with positive weight can come out.
 */
export function drawFromWeights(weights: ArrayLike<number>, u: number): number {
  let total = 0;
  let lastPositive = -1;
  for (let i = 0; i < weights.length; i++) if (weights[i]! > 0) { total += weights[i]!; lastPositive = i; }
  if (lastPositive < 0) throw new RangeError("drawFromWeights: no entry has positive weight");
  let x = u * total;
  for (let i = 0; i < weights.length; i++) {
    if (!(weights[i]! > 0)) continue;
    x -= weights[i]!;
    if (x < 0) return i;
  }
  return lastPositive; // rounding at the very top end
}

/**
 * Task 2.1a — the probability of accepting a draft token x that the draft drew with probability
 * q = q(x), when the target gives it p = p(x):
 *   min(1, p / q)         and 0 when q = 0 (the draft could not have drawn x: reject it).
 * Throw a RangeError if p or q is negative or not a finite number.
 */
export function acceptProbability(p: number, q: number): number {
  throw new NotImplementedError("Task 2.1 — see notebooks/02-speculative-decoding.ipynb §2.1");
}

/**
 * Task 2.1b — the distribution to sample from after a rejection:
 *   r(y) = max(0, p(y) − q(y)) / Σ_z max(0, p(z) − q(z))
 * as a new Float64Array [nVocab] of probabilities. When every p(y) − q(y) <= 0 (p == q: a rejection
 * then never happens, but rounding can), return a copy of p instead.
 * Throw a RangeError if p and q have different lengths.
 */
export function residualDistribution(p: Distribution, q: Distribution): Float64Array {
  throw new NotImplementedError("Task 2.1 — see notebooks/02-speculative-decoding.ipynb §2.1");
}

/** What verifying one draft token gives: whether it was accepted, and the token emitted. */
export interface OneTokenVerdict {
  accepted: boolean;
  /** x itself when accepted; a draw from residualDistribution(p, q) when rejected. */
  token: number;
}

/**
 * Task 2.1c — verify one draft token x (drawn from q) against the target distribution p:
 *   u = random();   accept iff u < acceptProbability(p[x], q[x])   → { accepted: true, token: x }
 *   otherwise       token = drawFromWeights(residualDistribution(p, q), random())
 * Exactly one call to random() when accepted, two when rejected, in that order (the grader also
 * replays fixed random numbers through your function). Then, whatever q is, P(token = y) = p(y).
 * Throw a RangeError if x is not an index of p.
 */
export function verifyOneToken(p: Distribution, q: Distribution, x: number, random: () => number): OneTokenVerdict {
  throw new NotImplementedError("Task 2.1 — see notebooks/02-speculative-decoding.ipynb §2.1");
}
