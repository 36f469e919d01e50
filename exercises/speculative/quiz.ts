// Task 2.6 — a quiz on the usual claims about speculative decoding. Graded; no hints for this one.
// Answer by returning your answers from quizAnswers(). Multiple choice must match exactly; numbers
// are compared at 3 significant figures (1234.5 and 1230 both count as 1.23e+3). Grade with
// `npm run grade -- 2.6`. notebooks/02-speculative-decoding.ipynb §2.6 checks the claims against
// our own measurements.
//
// Q1. "Speculative decoding does not change the output distribution." Why is that true for the
//     rejection-sampling rule (accept x with min(1, p(x)/q(x)), else sample norm(max(0, p − q)))?
//     (a) because the draft model is trained to imitate the target, so q ≈ p
//     (b) because a rejected position is always re-decoded by the target with greedy decoding
//     (c) because P(emit y) = q(y)·min(1, p(y)/q(y)) + P(reject)·r(y) = min(p(y), q(y)) + max(0, p(y) − q(y)) = p(y)
//     (d) it is only true at temperature 0
// Q2. Each draft token is accepted with probability α = 0.8, independently, and k = 4 tokens are
//     drafted per round. How many tokens does one target pass emit on average, E(α, k)?
// Q3. Same α = 0.8 and k = 4; one draft step costs c = 0.1 target steps and the verification pass over
//     k + 1 = 5 tokens costs v = 1.2 target steps. What wall-clock speedup does the cost model predict?
// Q4. "The speedup is roughly k times the acceptance rate." With the numbers of Q3, that rule says
//     4 × 0.8 = 3.2×. Why is it wrong?
//     (a) acceptance compounds: the i-th draft counts only if all before it were accepted, so a round
//         yields 1 + α + … + α^k tokens, and the rounds cost k·c + v(k) target steps, not 1
//     (b) it is right whenever the draft model is small enough
//     (c) it undercounts: every round also emits a bonus token, so the speedup is k·α + 1
//     (d) it is right on GPUs and wrong on CPUs
// Q5. "Speculative decoding cuts time-to-first-token (TTFT) by 40–60%." What happens to TTFT?
//     (a) it falls by about the acceptance rate, because the first tokens are drafted
//     (b) it does not fall: TTFT is dominated by the prompt's prefill, which speculation does not
//         shorten; the draft must prefill the prompt too and the first round does k draft steps
//         before the first verification, so TTFT stays the same or grows
//     (c) it falls by 40–60% exactly when α > 0.5
//     (d) it falls because the target skips the prompt's prefill
// Q6. Why does the speedup shrink when a server batches many sequences per step?
//     (a) the draft model's acceptance rate drops with batch size
//     (b) a big batch makes each step compute-bound: verifying k+1 tokens of every sequence then costs
//         close to k+1 times a decode step (v(k) → k+1), so the spare compute that made verification
//         nearly free at batch size 1 is gone
//     (c) rejected tokens cannot be rolled back in a batch
//     (d) the KV cache of a batch cannot hold draft tokens
// Q7. Prompt lookup proposes a token x with no distribution of its own (q is a point mass: q(x) = 1).
//     Sampling at temperature 1, the target gives x probability p(x) = 0.35. With what probability is
//     x accepted?
import { NotImplementedError } from "../../lab/errors.ts";

export type Choice = "a" | "b" | "c" | "d";

export interface QuizAnswers {
  /** Q1 (choice): why the rejection-sampling rule leaves the output distribution unchanged. */
  q1: Choice;
  /** Q2 (number): E(α = 0.8, k = 4), tokens per target pass. */
  q2: number;
  /** Q3 (number): predicted speedup for α = 0.8, k = 4, c = 0.1, v = 1.2. */
  q3: number;
  /** Q4 (choice): why "k times the acceptance rate" is wrong. */
  q4: Choice;
  /** Q5 (choice): what speculative decoding does to TTFT. */
  q5: Choice;
  /** Q6 (choice): why the speedup shrinks at large batch sizes. */
  q6: Choice;
  /** Q7 (number): acceptance probability of a prompt-lookup token with p(x) = 0.35. */
  q7: number;
}

export function quizAnswers(): QuizAnswers {
  throw new NotImplementedError("Task 2.6 — see notebooks/02-speculative-decoding.ipynb §2.6");
}
