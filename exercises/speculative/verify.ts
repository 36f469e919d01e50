// Task 2.2 — verify k draft tokens in one go, with the bonus token.
// Read notebooks/02-speculative-decoding.ipynb §2.2 first. Hints: exercises/speculative/HINTS.md.
// Grade with `npm run grade -- 2.2`: chi-square tests of every emitted position against the exact
// target distributions, and greedy cases in the style of vLLM's test_rejection_sampler.py.
import { NotImplementedError } from "../../lab/errors.ts";
// Your task 2.1 functions are yours to use here (the grader grades 2.2 with them).
import { acceptProbability, drawFromWeights, residualDistribution, type Distribution } from "./accept.ts";

void acceptProbability; void drawFromWeights; void residualDistribution; // imported for you; remove once you use them

export interface VerifyInput {
  /** k+1 target distributions: p_1 after the prefix, then p_{i+1} after each draft token x_i. */
  target: Distribution[];
  /** k draft distributions: q_i, the one x_i was drawn from. May be empty when greedy. */
  draft: Distribution[];
  /** The k draft tokens x_1 … x_k. */
  tokens: readonly number[];
  /** Uniform numbers in [0, 1). Greedy verification must not call it. */
  random: () => number;
  /** Greedy decoding: accept while x_i is the argmax of p_i (ties: the lowest id). */
  greedy?: boolean;
}

export interface VerifyResult {
  /** How many draft tokens were accepted, 0 … k. */
  accepted: number;
  /** The one token emitted after them. The output is tokens.slice(0, accepted) then token. */
  token: number;
}

/**
 * Task 2.2 — speculative sampling (Leviathan et al. 2023; Chen et al. 2023) for k draft tokens:
 *   for i = 1 … k:  accept x_i with probability min(1, p_i(x_i) / q_i(x_i)) (one random() call);
 *                   at the first rejection emit a draw from norm(max(0, p_i − q_i)) and stop;
 *   all accepted:   emit a BONUS token drawn from p_{k+1} (drawFromWeights(p_{k+1}, random())).
 * greedy: accept while x_i === argmax(p_i); the emitted token is argmax(p_{accepted+1}).
 * k = 0 is allowed: one token from p_1.
 * Throw a RangeError if there are not k+1 target rows, or (when not greedy) not k draft rows.
 */
export function verifyDraft(input: VerifyInput): VerifyResult {
  throw new NotImplementedError("Task 2.2 — see notebooks/02-speculative-decoding.ipynb §2.2");
}
