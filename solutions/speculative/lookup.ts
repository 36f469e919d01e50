// Reference solution for task 2.5 — vLLM's n-gram proposer (prompt lookup).
// The statement of the task is in exercises/speculative/lookup.ts.

export interface NgramOptions {
  /** Shortest suffix worth matching. Default 1. */
  minN?: number;
  /** Longest suffix, tried first. Default 3. */
  maxN?: number;
}

export function proposeNgram(context: readonly number[], k: number, { minN = 1, maxN = 3 }: NgramOptions = {}): number[] {
  if (!Number.isInteger(minN) || minN < 1) throw new RangeError(`proposeNgram: minN must be an integer >= 1, got ${minN}`);
  if (!Number.isInteger(maxN) || maxN < minN) throw new RangeError(`proposeNgram: maxN must be an integer >= minN (${minN}), got ${maxN}`);
  if (!Number.isInteger(k) || k < 0) throw new RangeError(`proposeNgram: k must be an integer >= 0, got ${k}`);
  const L = context.length;
  for (let n = Math.min(maxN, L - 1); n >= minN; n--) {
    const suffixStart = L - n;
    for (let i = 0; i < suffixStart; i++) {
      let j = 0;
      while (j < n && context[i + j] === context[suffixStart + j]) j++;
      if (j === n) return context.slice(i + n, Math.min(L, i + n + k));
    }
  }
  return [];
}
