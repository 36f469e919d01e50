// Task 3.10 — a quiz on the usual answer to "serve a 70B model with sub-second latency". Graded; no
// hints for this one. Return your answers from capacityQuizAnswers(). Multiple choice must match
// exactly; numbers are compared at 3 significant figures (137.95 and 138 both count as 138). Grade
// with `npm run grade -- 3.10`.
//
// Q1. Llama-2-70B has 68,976,648,192 parameters. How many GB (10^9 bytes) do its weights take in FP16?
// Q2. The claim "4-bit AWQ (~35 GB) fits one A100 with room for the KV cache": with all 68,976,648,192
//     parameters at 4.15625 bits (4-bit weights, an FP16 scale and a 4-bit zero per group of 128),
//     an FP16 KV cache (80 layers, 8 KV heads of dimension 128) and 10% of an 80 GB GPU kept free, how
//     many sequences of 4,096 tokens fit?
// Q3. "A draft model cuts time-to-first-token by 40–60%." Which is right?
//     (a) true: the draft model prefills the prompt faster, and the target reuses its KV cache
//     (b) false: speculative decoding lets the target verify several OUTPUT tokens per forward pass,
//         which shortens the time per output token; the first token still waits for the target's
//         prefill of the whole prompt (plus the draft's own prefill), so TTFT stays the same or grows
//     (c) true, but only at batch size 1
//     (d) false, because at temperature 0 every draft token is rejected
// Q4. At what batch size does a decode step of a model with BF16 weights (2 bytes per parameter) turn
//     compute-bound on an H100 SXM (989.5 dense TFLOP/s, 3.35 TB/s), with MFU equal to MBU and the KV
//     cache reads left out?
// Q5. Why autoscale an LLM service on queue depth rather than on GPU utilisation?
//     (a) GPUs do not report their utilisation
//     (b) utilisation cannot exceed 100%: during a burst a utilisation target can ask for at most
//         current ÷ target replicas per decision however long the queue grows, while queue depth
//         measures the backlog itself and asks for all the capacity it needs at once
//     (c) queue depth is cheaper to compute
//     (d) queue depth counts only the requests in service, not those waiting
// Q6. A request's prompt is 2,100 tokens, the first 2,000 of them a system prompt. Prefill is
//     compute-bound at 0.1 ms per token; the request also waits 40 ms in the queue and pays 10 ms of
//     fixed overhead (tokenizing, scheduling, the first decode step) before its first token. With the
//     system prompt's KV cached, by how many PERCENT does TTFT drop?
import { NotImplementedError } from "../../lab/errors.ts";

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
  throw new NotImplementedError("Task 3.10 — see notebooks/05-serving-a-70b-model.ipynb §3.10");
}
