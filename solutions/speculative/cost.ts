// Reference solutions for tasks 2.3 and 2.4 — the cost model of speculative decoding.
// The statements are in exercises/speculative/cost.ts.

function checkAlphaK(alpha: number, k: number): void {
  if (!(alpha >= 0 && alpha <= 1)) throw new RangeError(`α must be in [0, 1], got ${alpha}`);
  if (!Number.isInteger(k) || k < 0) throw new RangeError(`k must be an integer >= 0, got ${k}`);
}

/** E(α, k) = 1 + α + … + α^k. */
export function expectedTokensPerPass(alpha: number, k: number): number {
  checkAlphaK(alpha, k);
  if (alpha === 1) return k + 1;
  return (1 - alpha ** (k + 1)) / (1 - alpha);
}

/** E(α, k) / (k·c + v). */
export function predictedSpeedup(alpha: number, k: number, c: number, v: number): number {
  checkAlphaK(alpha, k);
  if (!(c >= 0) || !Number.isFinite(c)) throw new RangeError(`c must be a finite number >= 0, got ${c}`);
  if (!(v > 0) || !Number.isFinite(v)) throw new RangeError(`v must be a finite number > 0, got ${v}`);
  return expectedTokensPerPass(alpha, k) / (k * c + v);
}

/** The k to run, and the speedup the model predicts for it. */
export interface KChoice {
  /** 1 … v.length; 0 = do not speculate (no k beats plain decoding). */
  k: number;
  /** predictedSpeedup at that k; exactly 1 when k = 0. */
  speedup: number;
}

/** argmax over k = 1 … v.length of predictedSpeedup(α, k, c, v[k − 1]); ties → smaller k; none > 1 → k = 0. */
export function bestK(alpha: number, c: number, v: readonly number[]): KChoice {
  if (v.length === 0) throw new RangeError("bestK: no v(k) given");
  let best: KChoice = { k: 0, speedup: 1 };
  for (let k = 1; k <= v.length; k++) {
    const speedup = predictedSpeedup(alpha, k, c, v[k - 1]!);
    if (speedup > best.speedup) best = { k, speedup };
  }
  return best;
}
