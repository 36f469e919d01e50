// Tasks 1.1 and 1.2 — the two simplest ggml block formats, byte for byte.
// Read notebooks/01-quantization.ipynb §1.1–§1.2 first. Hints (progressive): exercises/quantization/HINTS.md.
// Grade with `npm run grade -- 1.1` (or 1.2). The grader compares your bytes with
// ggml's own (recorded from llama.cpp's library), and refuses a file that imports lab/quant's quantizers.
import { NotImplementedError } from "../../lab/errors.ts";
// fp32ToFp16(x) → the IEEE half-precision bit pattern (round to nearest even) as a number 0..65535;
// fp16ToFp32(h) → its value. Use them: the scale of every block is stored as fp16.
import { fp16ToFp32, fp32ToFp16 } from "../../lab/quant/float.ts";

export const QK8_0 = 32; // weights per Q8_0 block
export const Q8_0_BLOCK_BYTES = 2 + QK8_0; // fp16 scale d, then 32 × int8
export const QK4_0 = 32; // weights per Q4_0 block
export const Q4_0_BLOCK_BYTES = 2 + QK4_0 / 2; // fp16 scale d, then 16 bytes of packed nibbles

void fp16ToFp32; void fp32ToFp16; // imported for you; remove these two once you use them

/**
 * Task 1.1a — quantize a row to Q8_0 (8.5 bits per weight).
 *
 * Math, per block of 32 weights x[0..31]:
 *   amax = max_j |x_j|,   d = amax / 127,   id = (d ≠ 0) ? 1/d : 0,   q_j = round(x_j · id)
 * where round sends halves away from zero (C's roundf: 2.5 → 3, −2.5 → −3), computed in float32
 * (use Math.fround on d, id and each product to match C bit for bit).
 *
 * Layout, per block (34 bytes, little-endian):
 *   bytes 0..1   d as IEEE fp16
 *   bytes 2..33  q_0 … q_31 as int8 (two's complement)
 * Blocks follow each other; a row of n weights is n/32 blocks. Throw a RangeError if n % 32 ≠ 0.
 */
export function quantizeQ8_0Row(x: Float32Array): Uint8Array {
  throw new NotImplementedError("Task 1.1 — see notebooks/01-quantization.ipynb §1.1");
}

/** Task 1.1b — dequantize n weights of Q8_0: x_j = d · q_j (d read back from fp16). RangeError if n % 32 ≠ 0 or bytes are too few. */
export function dequantizeQ8_0Row(bytes: Uint8Array, n: number): Float32Array {
  throw new NotImplementedError("Task 1.1 — see notebooks/01-quantization.ipynb §1.1");
}

/**
 * Task 1.2a — quantize a row to Q4_0 (4.5 bits per weight).
 *
 * Math, per block of 32 weights: find m, the weight with the largest |x_j| (keep its sign; the first
 * one wins a tie), then
 *   d = m / −8,   id = (d ≠ 0) ? 1/d : 0,   q_j = min(15, trunc(x_j · id + 8.5))   ∈ 0..15
 * so m itself maps to q = 0 (value −8·d = m) and the grid is d·(q − 8). All in float32.
 *
 * Layout, per block (18 bytes):
 *   bytes 0..1   d as IEEE fp16, little-endian
 *   bytes 2..17  16 bytes of nibbles: byte 2+j holds q_j in its LOW nibble and q_{j+16} in its HIGH
 *                nibble (not q_{2j}, q_{2j+1}: ggml splits the block in halves).
 * Throw a RangeError if n % 32 ≠ 0.
 */
export function quantizeQ4_0Row(x: Float32Array): Uint8Array {
  throw new NotImplementedError("Task 1.2 — see notebooks/01-quantization.ipynb §1.2");
}

/** Task 1.2b — dequantize n weights of Q4_0: x = d · (q − 8), nibble order as above. */
export function dequantizeQ4_0Row(bytes: Uint8Array, n: number): Float32Array {
  throw new NotImplementedError("Task 1.2 — see notebooks/01-quantization.ipynb §1.2");
}
