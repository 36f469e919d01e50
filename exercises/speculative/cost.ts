// Tasks 2.3 and 2.4 — the cost model: how many tokens a target pass gives, what that buys in wall
// clock, and which k to run. Read notebooks/02-speculative-decoding.ipynb §2.4 first.
// Hints: exercises/speculative/HINTS.md. Grade with `npm run grade -- 2.3` (or 2.4).
//
// Units: one target decode step (one token through the target) = 1.
//   α     the probability that a draft token is accepted (each position independently)
//   k     draft tokens per round
//   c     one draft step ÷ one target decode step
//   v(k)  one target pass over k+1 tokens (the verification) ÷ one target decode step
import { NotImplementedError } from "../../lab/errors.ts";

/**
 * Task 2.3a — E(α, k): the expected number of tokens one round emits (accepted drafts plus the one
 * token the target pass adds): 1 + α + α² + … + α^k = (1 − α^(k+1)) / (1 − α), and k + 1 when α = 1.
 * Throw a RangeError if α is outside [0, 1] or k is not an integer >= 0.
 */
export function expectedTokensPerPass(alpha: number, k: number): number {
  throw new NotImplementedError("Task 2.3 — see notebooks/02-speculative-decoding.ipynb §2.4");
}

/**
 * Task 2.3b — the wall-clock speedup over plain decoding (one token per unit of time):
 *   E(α, k) / (k·c + v)
 * Throw a RangeError if α, k are invalid as above, c < 0, or v <= 0 (or any is not finite).
 */
export function predictedSpeedup(alpha: number, k: number, c: number, v: number): number {
  throw new NotImplementedError("Task 2.3 — see notebooks/02-speculative-decoding.ipynb §2.4");
}

/** The k to run, and the speedup the model predicts for it. */
export interface KChoice {
  /** 1 … v.length; 0 = do not speculate (no k beats plain decoding). */
  k: number;
  /** predictedSpeedup at that k; exactly 1 when k = 0. */
  speedup: number;
}

/**
 * Task 2.4 — the best k for acceptance α and draft cost c, given the measured verification costs
 * v[i] = v(k = i + 1) for k = 1 … v.length: the k with the highest predicted speedup; on a tie the
 * smaller k (less wasted work). If no k gives a speedup above 1, return { k: 0, speedup: 1 }.
 * Throw a RangeError if v is empty (and, as predictedSpeedup does, on invalid α, c or v entries).
 */
export function bestK(alpha: number, c: number, v: readonly number[]): KChoice {
  throw new NotImplementedError("Task 2.4 — see notebooks/02-speculative-decoding.ipynb §2.4");
}
