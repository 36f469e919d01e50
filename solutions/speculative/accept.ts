// Reference solution for task 2.1 — accept or reject one draft token, and the residual distribution.
// The statement of the task is in exercises/speculative/accept.ts.

/** Probabilities over the vocabulary: [nVocab], each >= 0, summing to 1. */
export type Distribution = ArrayLike<number>;

/** Given: draws an index from non-negative weights with one uniform u in [0, 1) (inverse CDF). */
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

/** min(1, p / q), 0 when q = 0. */
export function acceptProbability(p: number, q: number): number {
  if (!(p >= 0) || !Number.isFinite(p)) throw new RangeError(`acceptProbability: p must be a finite number >= 0, got ${p}`);
  if (!(q >= 0) || !Number.isFinite(q)) throw new RangeError(`acceptProbability: q must be a finite number >= 0, got ${q}`);
  if (q === 0) return 0;
  return Math.min(1, p / q);
}

/** norm(max(0, p − q)); a copy of p when that is all zeros. */
export function residualDistribution(p: Distribution, q: Distribution): Float64Array {
  if (p.length !== q.length) throw new RangeError(`residualDistribution: p has ${p.length} entries, q ${q.length}`);
  const r = new Float64Array(p.length);
  let mass = 0;
  for (let y = 0; y < p.length; y++) {
    r[y] = Math.max(0, p[y]! - q[y]!);
    mass += r[y]!;
  }
  if (!(mass > 0)) return Float64Array.from(p);
  for (let y = 0; y < r.length; y++) r[y]! /= mass;
  return r;
}

/** What verifying one draft token gives: whether it was accepted, and the token emitted. */
export interface OneTokenVerdict {
  accepted: boolean;
  /** x itself when accepted; a draw from residualDistribution(p, q) when rejected. */
  token: number;
}

/** Accept x with min(1, p(x)/q(x)) (one uniform), else draw from the residual (a second uniform). */
export function verifyOneToken(p: Distribution, q: Distribution, x: number, random: () => number): OneTokenVerdict {
  if (!Number.isInteger(x) || x < 0 || x >= p.length) throw new RangeError(`verifyOneToken: token ${x} is not an index of p (0 … ${p.length - 1})`);
  if (random() < acceptProbability(p[x]!, q[x]!)) return { accepted: true, token: x };
  return { accepted: false, token: drawFromWeights(residualDistribution(p, q), random()) };
}
