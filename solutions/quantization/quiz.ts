// Reference answers for task 1.5 — the quiz on quantization trade-offs. The questions are written
// out in exercises/quantization/quiz.ts; the grader checks multiple choice exactly and numbers at 3 significant figures.

export type Choice = "a" | "b" | "c" | "d";

export interface QuizAnswers {
  /** Q1 (choice): which tensors does llama.cpp's Q4_K_M mix keep above Q4_K? */
  q1: Choice;
  /** Q2 (number): bits per weight of Q4_0 (32 weights, one fp16 scale). */
  q2: number;
  /** Q3 (number): KV-cache bytes per token of Llama-2-7B (32 layers, 32 KV heads, head dim 128, F16 cache). */
  q3: number;
  /** Q4 (choice): why does a 4-bit model decode faster than F16 on the same GPU at batch size 1? */
  q4: Choice;
  /** Q5 (number): gigabytes (10^9 bytes) of weights for a 70B-parameter model at 4.5 bits per weight. */
  q5: number;
  /** Q6 (choice): why do RMSNorm weights stay F32 in every mix? */
  q6: Choice;
}

export function quizAnswers(): QuizAnswers {
  return {
    q1: "b",
    q2: (8 * (2 + 16)) / 32, // 4.5
    q3: 2 * 32 * 32 * 128 * 2, // 524,288 bytes = 0.5 MiB
    q4: "c",
    q5: (70e9 * 4.5) / 8 / 1e9, // 39.375
    q6: "a",
  };
}
