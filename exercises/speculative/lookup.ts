// Task 2.5 — prompt lookup: drafting with no draft model at all.
// Read notebooks/02-speculative-decoding.ipynb §2.3 first. Hints: exercises/speculative/HINTS.md.
// Grade with `npm run grade -- 2.5`. The notebook runs your proposer as the drafter of the real
// target model once this task passes.
import { NotImplementedError } from "../../lab/errors.ts";

export interface NgramOptions {
  /** Shortest suffix worth matching. Default 1. */
  minN?: number;
  /** Longest suffix, tried first. Default 3. */
  maxN?: number;
}

/**
 * Task 2.5 — vLLM's n-gram proposer. For n = maxN down to minN (never longer than
 * context.length − 1): take the last n tokens of the context (its suffix) and look for an EARLIER
 * occurrence of the same n tokens, one that starts before the suffix itself starts (it may overlap
 * it); the earliest occurrence wins. Propose the (at most k) tokens that followed that occurrence in
 * the context — fewer if the context ends first. The first n that has an occurrence decides; if no n
 * does, propose nothing ([]).
 *   context [5, 6, 7, 8, 9, 1, 6, 7], k = 2, maxN 3: the suffix [1, 6, 7] never occurred before;
 *   [6, 7] did, at index 1 → propose [8, 9].
 * Throw a RangeError if minN is not an integer >= 1, maxN not an integer >= minN, or k not an integer >= 0.
 */
export function proposeNgram(context: readonly number[], k: number, options: NgramOptions = {}): number[] {
  throw new NotImplementedError("Task 2.5 — see notebooks/02-speculative-decoding.ipynb §2.3");
}
