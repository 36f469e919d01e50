// Reference answers for task 3.10 — the quiz on the usual answer to "serve a 70B model with sub-second
// latency". The questions are written out in exercises/serving/capacity-quiz.ts; the grader checks
// multiple choice exactly and numbers at 3 significant figures.

export type CapacityChoice = "a" | "b" | "c" | "d";

export interface CapacityQuizAnswers {
  /** Q1 (number): GB (10^9 bytes) of Llama-2-70B's weights in FP16 (68,976,648,192 parameters). */
  q1: number;
  /** Q2 (number): 4,096-token FP16-KV sequences that fit beside 4.15625-bpw weights on one 80 GB GPU at 10% headroom. */
  q2: number;
  /** Q3 (choice): does a draft model cut time-to-first-token by 40–60%? */
  q3: CapacityChoice;
  /** Q4 (number): the decode crossover batch of BF16 weights on an H100 SXM (989.5 TFLOP/s, 3.35 TB/s, MFU = MBU). */
  q4: number;
  /** Q5 (choice): why scale on queue depth rather than GPU utilisation? */
  q5: CapacityChoice;
  /** Q6 (number): percent of TTFT saved by caching a 2,000-token system prompt in the stated case. */
  q6: number;
}

export function capacityQuizAnswers(): CapacityQuizAnswers {
  return {
    q1: (68_976_648_192 * 2) / 1e9, // 137.95
    q2: Math.floor((80e9 * 0.9 - (68_976_648_192 * 4.15625) / 8) / (2 * 80 * 8 * 128 * 2 * 4096)), // 26
    q3: "b",
    q4: (989.5 / 3.35) * (2 / 2), // 295.4
    q5: "b",
    q6: (100 * (2000 * 0.1)) / (40 + 10 + 2100 * 0.1), // 200 ms of 260 ms: 76.9%
  };
}
