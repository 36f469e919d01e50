// The cost model of speculative decoding (Leviathan et al. 2023, §3.4), in units of one target
// decode step:
//
//   one round = k draft steps (c each) + one target pass over k+1 tokens (v(k))
//   it emits E(α, k) = 1 + α + … + α^k = (1 − α^(k+1)) / (1 − α) tokens on average, when each
//   draft token is accepted with probability α independently of the others
//   speedup = E(α, k) / (k·c + v(k))      (plain decoding: 1 token per 1 unit)
//
// c = draft step ÷ target decode step; v(k) = target pass over k+1 tokens ÷ target decode step.
// On a GPU, v(k) ≈ 1 for small k (decode is memory-bandwidth-bound: k+1 tokens read the weights
// once); on a CPU with weights in cache, v(k) ≈ k+1 (compute-bound) and speculation cannot pay.

/** E(α, k): expected tokens emitted per target pass (accepted drafts + the one the pass adds). */
export function expectedTokensPerPass(alpha: number, k: number): number {
  checkAlphaK(alpha, k);
  if (alpha === 1) return k + 1;
  return (1 - alpha ** (k + 1)) / (1 - alpha);
}

/** Predicted wall-clock speedup over plain decoding: E(α, k) / (k·c + v(k)). */
export function predictedSpeedup(alpha: number, k: number, c: number, v: number): number {
  checkAlphaK(alpha, k);
  if (!(c >= 0) || !Number.isFinite(c)) throw new RangeError(`c (draft step ÷ target step) must be >= 0, got ${c}`);
  if (!(v > 0) || !Number.isFinite(v)) throw new RangeError(`v(k) (verify pass ÷ target step) must be > 0, got ${v}`);
  return expectedTokensPerPass(alpha, k) / (k * c + v);
}

/** The α for which E(α, k) equals a measured mean accepted length (1 + accepted / draft rounds),
 *  by bisection (E is increasing in α). Lengths outside [1, k+1] are clamped to 0 or 1. */
export function alphaFromMeanLength(meanLength: number, k: number): number {
  checkAlphaK(0, k);
  if (!(meanLength > 1)) return 0;
  if (meanLength >= k + 1) return 1;
  let lo = 0;
  let hi = 1;
  for (let it = 0; it < 60; it++) {
    const mid = (lo + hi) / 2;
    if (expectedTokensPerPass(mid, k) < meanLength) lo = mid; else hi = mid;
  }
  return (lo + hi) / 2;
}

function checkAlphaK(alpha: number, k: number): void {
  if (!(alpha >= 0 && alpha <= 1)) throw new RangeError(`acceptance α must be in [0, 1], got ${alpha}`);
  if (!Number.isInteger(k) || k < 0) throw new RangeError(`k must be an integer >= 0, got ${k}`);
}
