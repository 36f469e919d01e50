// Pearson's chi-square tests, for checking that sampled tokens follow a distribution: the proof
// a student can run that speculative decoding does not change what is sampled.
//
// goodnessOfFit: do counts over categories follow probabilities p?   X² = Σ (O − E)² / E
// homogeneity:   do two samples come from the same distribution?      (a 2 × m contingency table)
// Categories whose expected count is under 5 are pooled into one (the usual validity rule; a
// category with p = 0 and a non-zero count makes X² infinite: impossible under the hypothesis).
// The p-value is the chi-square upper tail Q(df/2, X²/2), the regularized incomplete gamma.

export interface ChiSquareResult {
  statistic: number;
  /** Degrees of freedom after pooling. */
  df: number;
  /** P(X² >= statistic) under the hypothesis. */
  pValue: number;
}

/** Counts [m] (non-negative integers) against probabilities [m] (summing to 1). */
export function goodnessOfFit(counts: ArrayLike<number>, probs: ArrayLike<number>, minExpected = 5): ChiSquareResult {
  if (counts.length !== probs.length) throw new RangeError(`goodnessOfFit: ${counts.length} counts but ${probs.length} probabilities`);
  let n = 0;
  for (let i = 0; i < counts.length; i++) n += counts[i];
  if (n === 0) throw new RangeError("goodnessOfFit: no observations");
  let statistic = 0;
  let categories = 0;
  let pooledObserved = 0;
  let pooledExpected = 0;
  for (let i = 0; i < counts.length; i++) {
    const expected = n * probs[i];
    if (expected === 0) {
      if (counts[i] > 0) return { statistic: Infinity, df: Math.max(1, counts.length - 1), pValue: 0 };
      continue;
    }
    if (expected < minExpected) { pooledObserved += counts[i]; pooledExpected += expected; continue; }
    statistic += (counts[i] - expected) ** 2 / expected;
    categories++;
  }
  if (pooledExpected > 0) {
    statistic += (pooledObserved - pooledExpected) ** 2 / pooledExpected;
    categories++;
  }
  const df = Math.max(1, categories - 1);
  return { statistic, df, pValue: chiSquareUpperTail(statistic, df) };
}

/** Two samples' counts [m] over the same categories: the chi-square test of homogeneity. */
export function homogeneity(a: ArrayLike<number>, b: ArrayLike<number>, minExpected = 5): ChiSquareResult {
  if (a.length !== b.length) throw new RangeError(`homogeneity: ${a.length} and ${b.length} categories`);
  let na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) { na += a[i]; nb += b[i]; }
  if (na === 0 || nb === 0) throw new RangeError("homogeneity: a sample is empty");
  const n = na + nb;
  // Pool small columns (by the smaller expected count of the two rows) into one.
  const cols: [number, number][] = [];
  let pool: [number, number] = [0, 0];
  for (let i = 0; i < a.length; i++) {
    const total = a[i] + b[i];
    if (total === 0) continue;
    if (Math.min(na, nb) * total / n < minExpected) { pool[0] += a[i]; pool[1] += b[i]; } else cols.push([a[i], b[i]]);
  }
  if (pool[0] + pool[1] > 0) cols.push(pool);
  let statistic = 0;
  for (const [x, y] of cols) {
    const t = x + y;
    const ea = na * t / n;
    const eb = nb * t / n;
    statistic += (x - ea) ** 2 / ea + (y - eb) ** 2 / eb;
  }
  const df = Math.max(1, cols.length - 1);
  return { statistic, df, pValue: chiSquareUpperTail(statistic, df) };
}

/** P(X >= x) for X ~ chi-square with df degrees of freedom. */
export function chiSquareUpperTail(x: number, df: number): number {
  if (!(df > 0)) throw new RangeError(`chi-square: df must be > 0, got ${df}`);
  if (x === Infinity) return 0;
  if (!(x > 0)) return 1;
  return regularizedGammaQ(df / 2, x / 2);
}

/** Q(a, x) = Γ(a, x) / Γ(a): series for x < a + 1, Lentz's continued fraction otherwise
 *  (Numerical Recipes §6.2), to about 1e-14 relative. */
function regularizedGammaQ(a: number, x: number): number {
  const lnPrefix = a * Math.log(x) - x - logGamma(a);
  if (x < a + 1) {
    let term = 1 / a;
    let sum = term;
    for (let n = 1; n < 10_000; n++) {
      term *= x / (a + n);
      sum += term;
      if (Math.abs(term) < Math.abs(sum) * 1e-15) break;
    }
    return Math.max(0, 1 - sum * Math.exp(lnPrefix));
  }
  const tiny = 1e-300;
  let b = x + 1 - a;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 10_000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b; if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c; if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-15) break;
  }
  return Math.exp(lnPrefix) * h;
}

/** ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms). */
function logGamma(x: number): number {
  const g = 7;
  const coef = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
    -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  x -= 1;
  let s = coef[0];
  for (let i = 1; i < g + 2; i++) s += coef[i] / (x + i);
  const t = x + g + 0.5;
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(s);
}
