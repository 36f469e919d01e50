// Reference answers for task 2.6 — the quiz on speculative decoding's claims. The questions are
// written out in exercises/speculative/quiz.ts; the grader checks choices exactly and numbers at 3
// significant figures.

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
  const e = (1 - 0.8 ** 5) / (1 - 0.8); // 3.3616
  return {
    q1: "c",
    q2: e,
    q3: e / (4 * 0.1 + 1.2), // 2.101
    q4: "a",
    q5: "b",
    q6: "b",
    q7: Math.min(1, 0.35 / 1),
  };
}
