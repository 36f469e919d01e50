// llama.cpp-style activation rounding (LabEngine's activations: "llama"). ggml's CPU backend converts
// a matmul's input to the weight type's "vec_dot_type" before its dot products; these functions give
// the values it then works with (x86 build: Q8_0 rounds half to even with id = 127/amax and an fp16
// scale; Q8_K uses iscale = −127/max, nearest int, scale 1/iscale). Kept apart from lab-engine.ts so
// the engine reads top to bottom; it calls roundLikeLlamaCpp and addQ8_1BlockSumRounding from
// `project` when the model was loaded with activations "llama".
import { FP16_TO_F32, bf16ToFp32, fp16ToFp32, fp32ToBf16, fp32ToFp16 } from "../quant/float.ts";
import type { GgmlTypeName } from "../ggml-types.ts";
import type { Matrix } from "./lab-engine.ts";

function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** dst[i] = x[i] rounded as llama.cpp's CPU backend rounds a matmul input for `type` weights.
 *  For Q4_1/Q5_1 weights (Q8_1 inputs) blockSumError[b] also receives, per 32-value block,
 *  fp16(d·Σq) − fp16(d)·Σq: the block sum ggml stores rounded, minus the one dst implies. */
export function roundLikeLlamaCpp(type: GgmlTypeName, x: Float32Array, dst: Float32Array, n: number, blockSumError?: Float64Array): void {
  const f = Math.fround;
  if (type === "F16") {
    for (let i = 0; i < n; i++) dst[i] = fp16ToFp32(fp32ToFp16(x[i]));
  } else if (type === "BF16") {
    for (let i = 0; i < n; i++) dst[i] = bf16ToFp32(fp32ToBf16(x[i]));
  } else if (type === "Q4_0" || type === "Q4_1" || type === "Q5_0" || type === "Q5_1" || type === "Q8_0") {
    for (let b = 0; b < n; b += 32) {
      let amax = 0;
      for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b + j]));
      const id = amax > 0 ? f(127 / amax) : 0;
      const d32 = f(amax / 127), d = fp16ToFp32(fp32ToFp16(d32));
      let sum = 0;
      for (let j = 0; j < 32; j++) {
        const q = roundHalfEven(f(x[b + j] * id));
        dst[b + j] = q * d;
        sum += q;
      }
      if (blockSumError) blockSumError[b / 32] = fp16ToFp32(fp32ToFp16(f(d32 * sum))) - d * sum;
    }
  } else if (type === "Q2_K" || type === "Q3_K" || type === "Q4_K" || type === "Q5_K" || type === "Q6_K") {
    for (let b = 0; b < n; b += 256) {
      let amax = 0;
      let max = 0;
      for (let j = 0; j < 256; j++) if (Math.abs(x[b + j]) > amax) { amax = Math.abs(x[b + j]); max = x[b + j]; }
      if (amax === 0) { dst.fill(0, b, b + 256); continue; }
      const iscale = f(-127 / max);
      const d = f(1 / iscale);
      for (let j = 0; j < 256; j++) dst[b + j] = Math.min(127, roundHalfEven(f(iscale * x[b + j]))) * d;
    }
  } else {
    dst.set(x.subarray(0, n));
  }
}

/** ggml's Q4_1/Q5_1 dot products add m·s for each block, where s, the Q8_1 input block's Σq·d, is
 *  stored as fp16: not quite the m·d_fp16·Σq that the rounded inputs give. Adds m·blockSumError to
 *  out ([nRows][nOut]); blockSumError is [nRows][nIn/32] from roundLikeLlamaCpp. */
export function addQ8_1BlockSumRounding(w: Matrix, blockSumError: Float64Array, nRows: number, out: Float32Array): void {
  const nBlocks = w.nIn / 32, blockBytes = w.rowBytes / nBlocks;
  for (let t = 0; t < nRows; t++) {
    for (let r = 0; r < w.nOut; r++) {
      let correction = 0;
      for (let b = 0; b < nBlocks; b++) {
        const o = r * w.rowBytes + b * blockBytes + 2; // m follows the fp16 d in both layouts
        correction += FP16_TO_F32[w.bytes[o] | (w.bytes[o + 1] << 8)] * blockSumError[t * nBlocks + b];
      }
      out[t * w.nOut + r] += correction;
    }
  }
}

