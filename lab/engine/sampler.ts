// Choosing the next token from a distribution: greedy, temperature, top-k, top-p, with a seeded RNG.
// Both engines hand the sampler log-probabilities (see engine.ts), so the same sampler, with the same
// seed, picks the same tokens from the same distributions whichever engine computed them.
//
// Order of operations (as in llama.cpp's common sampler chain): top-k, then temperature, then
// top-p (nucleus) on the tempered distribution, then a draw. temperature 0 means greedy (argmax;
// ties go to the lowest id).
import { mulberry32 } from "../random.ts";

export interface SamplerOptions {
  /** 0 = greedy. Default 0. */
  temperature?: number;
  /** Keep the k most likely tokens; 0 = all. Default 0. */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose mass reaches p; 1 = all. Default 1. */
  topP?: number;
  /** RNG seed; the same seed gives the same draws. Default 0. */
  seed?: number;
}

// ---------------------------------------------------------------------------------------------
// Small helpers on distributions

/** Index of the largest entry; ties go to the lowest index. */
export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let i = 0; i < row.length; i++) {
    if (row[i] > bestValue) { bestValue = row[i]; best = i; }
  }
  return best;
}

/** In-place log-softmax of logits (float64 accumulation), returns the same array. */
export function logSoftmaxInPlace(row: Float32Array): Float32Array {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i] > max) max = row[i];
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i] - max);
  const logZ = max + Math.log(sum);
  for (let i = 0; i < row.length; i++) row[i] -= logZ;
  return row;
}

// ---------------------------------------------------------------------------------------------
// The sampler

export class Sampler {
  readonly temperature: number;
  readonly topK: number;
  readonly topP: number;
  readonly seed: number;
  private readonly random: () => number;

  constructor(opts: SamplerOptions = {}) {
    const { temperature = 0, topK = 0, topP = 1, seed = 0 } = opts;
    if (!(temperature >= 0) || !Number.isFinite(temperature)) throw new RangeError(`temperature must be >= 0, got ${temperature}`);
    if (!Number.isInteger(topK) || topK < 0) throw new RangeError(`topK must be an integer >= 0, got ${topK}`);
    if (!(topP > 0 && topP <= 1)) throw new RangeError(`topP must be in (0, 1], got ${topP}`);
    this.temperature = temperature;
    this.topK = topK;
    this.topP = topP;
    this.seed = seed;
    this.random = mulberry32(seed);
  }

  get greedy(): boolean {
    return this.temperature === 0;
  }

  /** Picks a token id from one row of log-probabilities (or logits: only differences matter). */
  sample(logProbs: Float32Array): number {
    if (this.greedy) return argmax(logProbs);
    // Candidates sorted by likelihood, best first (stable on ties: lower id first).
    let ids = Array.from(logProbs.keys()).filter((i) => logProbs[i] > -Infinity);
    ids.sort((a, b) => logProbs[b] - logProbs[a] || a - b);
    if (this.topK > 0 && ids.length > this.topK) ids = ids.slice(0, this.topK);
    // Temperature, then renormalise (float64).
    const top = logProbs[ids[0]];
    const weights = ids.map((i) => Math.exp((logProbs[i] - top) / this.temperature));
    let total = weights.reduce((s, w) => s + w, 0);
    if (this.topP < 1) {
      let kept = 0;
      let mass = 0;
      while (kept < ids.length && mass < this.topP * total) mass += weights[kept++];
      ids = ids.slice(0, Math.max(1, kept));
      weights.length = ids.length;
      total = mass;
    }
    let u = this.random() * total;
    for (let j = 0; j < ids.length; j++) {
      u -= weights[j];
      if (u < 0) return ids[j];
    }
    return ids[ids.length - 1];
  }
}
