// Task 1.5 — a quiz on quantization trade-offs. Graded; no hints for this one.
// Answer by returning your answers from quizAnswers(). Multiple choice must match exactly; numbers
// are compared at 3 significant figures (1234.5 and 1230 both count as 1.23e+3). Grade with
// `npm run grade -- 1.5`.
//
// Q1. llama.cpp's Q4_K_M mix stores most weight matrices as Q4_K. Which tensors does it keep at a
//     HIGHER precision (Q6_K) for a llama model?
//     (a) every attention matrix (q, k, v, output), because attention is the most sensitive
//     (b) output.weight, plus attn_v and ffn_down in the first and last eighth of the layers and every
//         third layer in between
//     (c) only token_embd.weight, because embeddings are looked up, not multiplied
//     (d) none: "_M" means a medium block size, not a mix
// Q2. Q4_0 stores 32 weights as 32 four-bit integers and one fp16 scale. How many bits per weight?
// Q3. Llama-2-7B has 32 layers, 32 KV heads of dimension 128, and an F16 KV cache. How many BYTES of
//     KV cache does each token of context take?
// Q4. At batch size 1, why does a 4-bit model generate tokens faster than the F16 model on the same GPU?
//     (a) 4-bit integer multiplications need fewer tensor-core cycles than F16 ones
//     (b) the model has fewer layers after quantization
//     (c) decoding is memory-bandwidth bound: each token must stream every weight from memory once,
//         and 4-bit weights are ~4× fewer bytes
//     (d) quantized models use a smaller KV cache by default
// Q5. How many gigabytes (10^9 bytes) do the weights of a 70B-parameter model take at 4.5 bits per weight?
// Q6. Why do the RMSNorm weight vectors stay F32 in every llama.cpp mix?
//     (a) they are 1-D and tiny (nEmbd values per layer), so quantizing saves nothing, and every
//         activation is multiplied by them, so their error would touch everything
//     (b) ggml cannot store 1-D tensors in a quantized type
//     (c) they are recomputed from the data at load time
//     (d) F32 is faster than any quantized type on GPUs
import { NotImplementedError } from "../../lab/errors.ts";

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
  throw new NotImplementedError("Task 1.5 — see notebooks/01-quantization.ipynb §1.5");
}
