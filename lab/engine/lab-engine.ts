// LabEngine: a llama-architecture inference engine in TypeScript, read top to bottom like
// llama2.c's run.c.
//
//   1. Weights   — every matrix stays in its GGUF type (F32, F16, Q8_0, Q4_K, …); nothing is
//                  dequantized at load. Norm vectors (tiny) are widened to F32.
//   2. KV cache  — one preallocated slot of typed arrays per live sequence.
//   3. Kernels   — matrix × many-vectors products. Plain TypeScript first (the readable version):
//                  F32 weights read in place; quantized weights through lab/quant — one vector →
//                  `dotRow` on the packed bytes, several vectors → each weight row decoded ONCE and
//                  dotted with all of them. With kernels "simd" (the default) the weights live in
//                  one WebAssembly memory and F32, Q8_0, Q4_K and Q6_K products run in the SIMD
//                  kernels of simd.ts (same rule: several vectors → each block decoded once);
//                  other types keep their dotRow for one vector and decoded F32 tiles for several.
//                  Then RMSNorm, RoPE (NORM: adjacent pairs), SiLU, attention with GQA.
//   4. Forward   — one pass over a batch of rows, each row = (sequence slot, position, token).
//                  A prefill is a batch of consecutive positions of one sequence; a batched decode
//                  is one row from each of N sequences. Same code, same matrix–matrix products.
//   5. Engine    — sequences (evaluate / truncate / fork / free), batched decode, memory report.
//
// Single-threaded: JavaScript runs this on one core whatever `threads` says.
import { stat } from "node:fs/promises";
import { openGguf, readTensorBytes, llamaHparams, type GgufFile, type LlamaHparams } from "../gguf/index.ts";
import { quantFormat, type QuantFormat } from "../quant/index.ts";
import { FP16_TO_F32, bf16ToFp32, fp16ToFp32, fp32ToBf16, fp32ToFp16 } from "../quant/float.ts";
import { rowBytes, type GgmlTypeName } from "../ggml-types.ts";
import { SpmTokenizer } from "../tokenizer.ts";
import {
  EngineError, checkTokens, kvBytesPerTokenFormula, peakRssBytes,
  type DecodeStep, type Engine, type EngineOptions, type EngineTokenizer, type MemoryReport, type Sequence,
} from "./engine.ts";
import { logSoftmaxInPlace } from "./sampler.ts";
import { SimdArena, simdModule, simdSupports, type SimdType } from "./simd.ts";

// =============================================================================================
// 1. Weights

/** One weight matrix ne=[nIn, nOut], kept in its file type. Rows are outputs, row-major. */
export interface Matrix {
  name: string;
  type: GgmlTypeName;
  nIn: number;
  nOut: number;
  /** [nOut][rowBytes] packed bytes of `type`, exactly as in the GGUF */
  bytes: Uint8Array;
  /** bytes per output row */
  rowBytes: number;
  format: QuantFormat;
  /** [nOut][nIn] f32 — a view of `bytes` (no copy) when type is F32, else undefined */
  f32?: Float32Array;
  /** [nOut][rowBytes] i8 — a signed view of `bytes` (no copy) when type is Q8_0, else undefined */
  q8?: Int8Array;
  /** Set when `bytes` lives in a SIMD arena and a WebAssembly kernel handles this type and shape. */
  simd?: { arena: SimdArena; ptr: number; type: SimdType };
  /** The SIMD arena `bytes` lives in (any type): several vectors go through decoded F32 tiles. */
  arena?: SimdArena;
}

interface LayerWeights {
  attnNorm: Float32Array; // [nEmbd] f32
  wq: Matrix; // [nEmbd → nHead*headDim]
  wk: Matrix; // [nEmbd → nKvHead*headDim]
  wv: Matrix; // [nEmbd → nKvHead*headDim]
  wo: Matrix; // [nHead*headDim → nEmbd]
  ffnNorm: Float32Array; // [nEmbd] f32
  wGate: Matrix; // [nEmbd → nFf]
  wUp: Matrix; // [nEmbd → nFf]
  wDown: Matrix; // [nFf → nEmbd]
}

interface ModelWeights {
  tokenEmbd: Matrix; // [nEmbd → nVocab]: row t is token t's embedding
  layers: LayerWeights[];
  outputNorm: Float32Array; // [nEmbd] f32
  output: Matrix; // [nEmbd → nVocab]; token_embd itself when the file ties them
}

async function loadMatrix(file: GgufFile, name: string, nIn: number, nOut: number): Promise<Matrix> {
  const info = file.tensors.find((t) => t.name === name);
  if (!info) throw new EngineError(`${file.path}: missing tensor ${name}`);
  if (info.ne.length !== 2 || info.ne[0] !== nIn || info.ne[1] !== nOut) {
    throw new EngineError(`${file.path}: tensor ${name} has ne=[${info.ne}], expected [${nIn}, ${nOut}]`);
  }
  let format: QuantFormat;
  try {
    format = quantFormat(info.type);
  } catch (err) {
    throw new EngineError(`${file.path}: tensor ${name} has type ${info.type}, which LabEngine cannot compute with (${(err as Error).message})`);
  }
  let bytes = await readTensorBytes(file, name);
  // Own exactly these bytes (resident size is honest) and keep them 4-byte aligned for F32 views.
  if (bytes.byteOffset !== 0 || bytes.buffer.byteLength !== bytes.byteLength) bytes = bytes.slice();
  const matrix: Matrix = { name, type: info.type, nIn, nOut, bytes, rowBytes: rowBytes(info.type, nIn), format };
  if (info.type === "F32") matrix.f32 = new Float32Array(bytes.buffer, 0, nIn * nOut);
  if (info.type === "Q8_0") matrix.q8 = new Int8Array(bytes.buffer, 0, bytes.byteLength);
  return matrix;
}

async function loadVector(file: GgufFile, name: string, n: number): Promise<Float32Array> {
  const m = await loadMatrixLike(file, name, n);
  const out = new Float32Array(n);
  m.format.dequantizeRow(m.bytes, 0, out);
  return out;
}

async function loadMatrixLike(file: GgufFile, name: string, n: number) {
  const info = file.tensors.find((t) => t.name === name);
  if (!info) throw new EngineError(`${file.path}: missing tensor ${name}`);
  if (info.ne.reduce((a, b) => a * b, 1) !== n) throw new EngineError(`${file.path}: tensor ${name} has ne=[${info.ne}], expected [${n}]`);
  return { format: quantFormat(info.type), bytes: await readTensorBytes(file, name) };
}

async function loadWeights(file: GgufFile, hp: LlamaHparams): Promise<ModelWeights> {
  const { nEmbd, nFf, nHead, nKvHead, headDim, nVocab, nLayer } = hp;
  const qDim = nHead * headDim;
  const kvDim = nKvHead * headDim;
  const tokenEmbd = await loadMatrix(file, "token_embd.weight", nEmbd, nVocab);
  const layers: LayerWeights[] = [];
  for (let l = 0; l < nLayer; l++) {
    const p = `blk.${l}.`;
    layers.push({
      attnNorm: await loadVector(file, p + "attn_norm.weight", nEmbd),
      wq: await loadMatrix(file, p + "attn_q.weight", nEmbd, qDim),
      wk: await loadMatrix(file, p + "attn_k.weight", nEmbd, kvDim),
      wv: await loadMatrix(file, p + "attn_v.weight", nEmbd, kvDim),
      wo: await loadMatrix(file, p + "attn_output.weight", qDim, nEmbd),
      ffnNorm: await loadVector(file, p + "ffn_norm.weight", nEmbd),
      wGate: await loadMatrix(file, p + "ffn_gate.weight", nEmbd, nFf),
      wUp: await loadMatrix(file, p + "ffn_up.weight", nEmbd, nFf),
      wDown: await loadMatrix(file, p + "ffn_down.weight", nFf, nEmbd),
    });
  }
  const outputNorm = await loadVector(file, "output_norm.weight", nEmbd);
  const tied = !file.tensors.some((t) => t.name === "output.weight");
  const output = tied ? tokenEmbd : await loadMatrix(file, "output.weight", nEmbd, nVocab);
  return { tokenEmbd, layers, outputNorm, output };
}

function allMatrices(w: ModelWeights): Set<Matrix> {
  const matrices = new Set<Matrix>([w.tokenEmbd, w.output]);
  for (const l of w.layers) for (const m of [l.wq, l.wk, l.wv, l.wo, l.wGate, l.wUp, l.wDown]) matrices.add(m);
  return matrices;
}

/** Weights beyond this stay in JavaScript arrays (wasm32 memories stop at 4 GiB, buffers included). */
const MAX_ARENA_WEIGHT_BYTES = 3.5 * 2 ** 30;

/**
 * Moves every weight matrix into one WebAssembly memory (the file's bytes, copied once; the engine
 * keeps views) so the SIMD kernels can read F32 and Q8_0 weights in place. Other types keep using
 * their lab/quant dotRow on the same bytes.
 */
function moveWeightsToSimdArena(w: ModelWeights, maxRows: number, hp: LlamaHparams): SimdArena | undefined {
  const matrices = allMatrices(w);
  let bytes = 0;
  for (const m of matrices) bytes += Math.ceil(m.bytes.byteLength / 16) * 16;
  if (bytes > MAX_ARENA_WEIGHT_BYTES) return undefined; // a 32-bit wasm memory cannot hold them
  const maxIn = Math.max(hp.nEmbd, hp.nFf, hp.nHead * hp.headDim);
  const maxOut = Math.max(hp.nVocab, hp.nFf, hp.nHead * hp.headDim, hp.nEmbd);
  const arena = new SimdArena(bytes, maxRows, maxIn, maxOut);
  for (const m of matrices) {
    const { ptr, view } = arena.place(m.bytes);
    m.bytes = view;
    if (m.f32) m.f32 = new Float32Array(view.buffer, view.byteOffset, m.nIn * m.nOut);
    if (m.q8) m.q8 = new Int8Array(view.buffer, view.byteOffset, view.byteLength);
    m.arena = arena;
    if (simdSupports(m.type, m.nIn, m.nOut)) m.simd = { arena, ptr, type: m.type };
  }
  return arena;
}

function residentWeightBytes(w: ModelWeights): number {
  const matrices = new Set<Matrix>([w.tokenEmbd, w.output]);
  let vectors = w.outputNorm.byteLength;
  for (const l of w.layers) {
    for (const m of [l.wq, l.wk, l.wv, l.wo, l.wGate, l.wUp, l.wDown]) matrices.add(m);
    vectors += l.attnNorm.byteLength + l.ffnNorm.byteLength;
  }
  let bytes = vectors;
  for (const m of matrices) bytes += m.bytes.byteLength;
  return bytes;
}

// =============================================================================================
// 2. KV cache

/** The keys and values of one sequence, for every layer and every position it can hold. */
interface KvSlot {
  index: number;
  k: Float32Array; // [nLayer][nCtx][nKvHead*headDim] f32, RoPE already applied
  v: Float32Array; // [nLayer][nCtx][nKvHead*headDim] f32
}

// =============================================================================================
// 3. Kernels

/**
 * out[t][o] = Σ_i W[o][i] · x[t][i] for t < nRows.  x: [nRows][nIn] f32, out: [nRows][nOut] f32.
 * rowScratch: [nIn] f32, where a quantized row is decoded once and reused for all nRows vectors.
 * Order of preference: a SIMD kernel; the F32 / Q8_0 TypeScript loops; dotRow (one vector);
 * decoded F32 tiles through the SIMD F32 kernel; decoded rows through the TypeScript loop.
 */
function matmul(w: Matrix, x: Float32Array, nRows: number, out: Float32Array, rowScratch: Float32Array): void {
  const { nIn, nOut } = w;
  if (w.simd && (nRows === 1 || w.simd.type === "F32" || w.simd.type === "Q8_0" || nOut % 4 === 0)) {
    w.simd.arena.matmul(w.simd.type, w.simd.ptr, x, nRows, nIn, nOut, out);
    return;
  }
  if (w.f32) {
    if (nRows === 1) matvecF32(w.f32, x, nIn, nOut, out);
    else for (let o = 0; o < nOut; o++) rowTimesVectors(w.f32, o * nIn, x, nIn, nRows, out, o, nOut);
    return;
  }
  const { format, bytes, rowBytes: rb } = w;
  if (nRows === 1) {
    if (w.q8) matvecQ8_0(bytes, w.q8, rb, x, nIn, nOut, out);
    else for (let o = 0; o < nOut; o++) out[o] = format.dotRow(bytes, o * rb, x, 0, nIn);
    return;
  }
  if (w.arena && nIn % 4 === 0 && nOut % 4 === 0) {
    w.arena.matmulDecoded((o, dst) => format.dequantizeRow(bytes, o * rb, dst), x, nRows, nIn, nOut, out);
    return;
  }
  const row = rowScratch.subarray(0, nIn);
  for (let o = 0; o < nOut; o++) {
    format.dequantizeRow(bytes, o * rb, row);
    rowTimesVectors(row, 0, x, nIn, nRows, out, o, nOut);
  }
}

/** One F32 matrix times one vector, four output rows at a time (x[i] loaded once per four rows). */
function matvecF32(w: Float32Array, x: Float32Array, nIn: number, nOut: number, out: Float32Array): void {
  let o = 0;
  for (; o + 4 <= nOut; o += 4) {
    const a0 = o * nIn, a1 = a0 + nIn, a2 = a1 + nIn, a3 = a2 + nIn;
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (let i = 0; i < nIn; i++) {
      const xi = x[i];
      s0 += w[a0 + i] * xi;
      s1 += w[a1 + i] * xi;
      s2 += w[a2 + i] * xi;
      s3 += w[a3 + i] * xi;
    }
    out[o] = s0; out[o + 1] = s1; out[o + 2] = s2; out[o + 3] = s3;
  }
  for (; o < nOut; o++) {
    const a = o * nIn;
    let s = 0;
    for (let i = 0; i < nIn; i++) s += w[a + i] * x[i];
    out[o] = s;
  }
}

/**
 * Q8_0 matrix times one vector, four output rows at a time: the same arithmetic as Q8_0.dotRow
 * (per block: Σ q·x, then × the block's fp16 scale) but each x[i] is loaded once for four rows and
 * the int8 weights are read through an Int8Array view (no sign-extension shifts). Q8_0 is the
 * format the decode-speed goal names; every other format goes through its dotRow.
 */
function matvecQ8_0(bytes: Uint8Array, q8: Int8Array, rb: number, x: Float32Array, nIn: number, nOut: number, out: Float32Array): void {
  const blocks = nIn >>> 5;
  let o = 0;
  for (; o + 4 <= nOut; o += 4) {
    const p0 = o * rb, p1 = p0 + rb, p2 = p1 + rb, p3 = p2 + rb;
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (let b = 0, k = 0; b < blocks; b++, k += 34) {
      const c0 = p0 + k + 2, c1 = p1 + k + 2, c2 = p2 + k + 2, c3 = p3 + k + 2, xb = b << 5;
      let a0 = 0, a1 = 0, a2 = 0, a3 = 0;
      for (let j = 0; j < 32; j++) {
        const xj = x[xb + j];
        a0 += q8[c0 + j] * xj;
        a1 += q8[c1 + j] * xj;
        a2 += q8[c2 + j] * xj;
        a3 += q8[c3 + j] * xj;
      }
      s0 += FP16_TO_F32[bytes[p0 + k] | (bytes[p0 + k + 1] << 8)] * a0;
      s1 += FP16_TO_F32[bytes[p1 + k] | (bytes[p1 + k + 1] << 8)] * a1;
      s2 += FP16_TO_F32[bytes[p2 + k] | (bytes[p2 + k + 1] << 8)] * a2;
      s3 += FP16_TO_F32[bytes[p3 + k] | (bytes[p3 + k + 1] << 8)] * a3;
    }
    out[o] = s0; out[o + 1] = s1; out[o + 2] = s2; out[o + 3] = s3;
  }
  for (; o < nOut; o++) {
    let s = 0;
    for (let b = 0, p = o * rb; b < blocks; b++, p += 34) {
      let a = 0;
      for (let j = 0; j < 32; j++) a += q8[p + 2 + j] * x[(b << 5) + j];
      s += FP16_TO_F32[bytes[p] | (bytes[p + 1] << 8)] * a;
    }
    out[o] = s;
  }
}

/** One weight row (w[wOff..wOff+nIn)) dotted with nRows vectors, four at a time; writes column o. */
function rowTimesVectors(w: Float32Array, wOff: number, x: Float32Array, nIn: number, nRows: number,
  out: Float32Array, o: number, nOut: number): void {
  let t = 0;
  for (; t + 4 <= nRows; t += 4) {
    const b0 = t * nIn, b1 = b0 + nIn, b2 = b1 + nIn, b3 = b2 + nIn;
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (let i = 0; i < nIn; i++) {
      const wi = w[wOff + i];
      s0 += wi * x[b0 + i];
      s1 += wi * x[b1 + i];
      s2 += wi * x[b2 + i];
      s3 += wi * x[b3 + i];
    }
    out[t * nOut + o] = s0; out[(t + 1) * nOut + o] = s1; out[(t + 2) * nOut + o] = s2; out[(t + 3) * nOut + o] = s3;
  }
  for (; t < nRows; t++) {
    const b = t * nIn;
    let s = 0;
    for (let i = 0; i < nIn; i++) s += w[wOff + i] * x[b + i];
    out[t * nOut + o] = s;
  }
}

/** out[t] = x[t] / sqrt(mean(x[t]²) + eps) · weight, for nRows rows of n. */
function rmsNorm(out: Float32Array, x: Float32Array, weight: Float32Array, n: number, nRows: number, eps: number): void {
  for (let t = 0; t < nRows; t++) {
    const b = t * n;
    let ss = 0;
    for (let i = 0; i < n; i++) ss += x[b + i] * x[b + i];
    const scale = 1 / Math.sqrt(ss / n + eps);
    for (let i = 0; i < n; i++) out[b + i] = x[b + i] * scale * weight[i];
  }
}

/**
 * RoPE, NORM variant (llama): rotates the adjacent pairs (2i, 2i+1) of each head by pos·θ_i,
 * θ_i = base^(−2i/headDim). Tables are built the way ggml does (float32 running product) so the
 * angles match llama.cpp's to the last bit at long positions.
 */
function ropeTables(nCtx: number, headDim: number, base: number): { cos: Float32Array; sin: Float32Array } {
  const half = headDim / 2;
  const cos = new Float32Array(nCtx * half); // [nCtx][headDim/2] f32
  const sin = new Float32Array(nCtx * half); // [nCtx][headDim/2] f32
  const thetaScale = Math.fround(Math.pow(base, -2 / headDim));
  for (let p = 0; p < nCtx; p++) {
    let theta = Math.fround(p);
    for (let i = 0; i < half; i++) {
      cos[p * half + i] = Math.cos(theta);
      sin[p * half + i] = Math.sin(theta);
      theta = Math.fround(theta * thetaScale);
    }
  }
  return { cos, sin };
}

function rope(x: Float32Array, offset: number, nHeads: number, headDim: number, pos: number,
  cos: Float32Array, sin: Float32Array): void {
  const half = headDim / 2;
  for (let h = 0; h < nHeads; h++) {
    const b = offset + h * headDim;
    for (let i = 0; i < half; i++) {
      const c = cos[pos * half + i], s = sin[pos * half + i];
      const x0 = x[b + 2 * i], x1 = x[b + 2 * i + 1];
      x[b + 2 * i] = x0 * c - x1 * s;
      x[b + 2 * i + 1] = x0 * s + x1 * c;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// llama.cpp-style activation rounding (activations: "llama"). ggml's CPU backend converts a
// matmul's input to the weight type's "vec_dot_type" before its dot products; these functions give
// the values it then works with (x86 build: Q8_0 rounds half to even with id = 127/amax and an fp16
// scale; Q8_K uses iscale = −127/max, nearest int, scale 1/iscale).

function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** dst[i] = x[i] rounded as llama.cpp's CPU backend rounds a matmul input for `type` weights.
 *  For Q4_1/Q5_1 weights (Q8_1 inputs) blockSumError[b] also receives, per 32-value block,
 *  fp16(d·Σq) − fp16(d)·Σq: the block sum ggml stores rounded, minus the one dst implies. */
function roundLikeLlamaCpp(type: GgmlTypeName, x: Float32Array, dst: Float32Array, n: number, blockSumError?: Float64Array): void {
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
function addQ8_1BlockSumRounding(w: Matrix, blockSumError: Float64Array, nRows: number, out: Float32Array): void {
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

/** matmul, with the input first rounded like llama.cpp when the model asks for it. */
function project(m: LabModel, w: Matrix, x: Float32Array, nRows: number, out: Float32Array): void {
  if (m.llamaActivations && w.type !== "F32") {
    const rounded = m.scratch.rounded.subarray(0, nRows * w.nIn);
    const nBlocks = w.nIn / 32;
    const sumError = w.type === "Q4_1" || w.type === "Q5_1" ? m.scratch.blockSumError.subarray(0, nRows * nBlocks) : undefined;
    for (let t = 0; t < nRows; t++) {
      roundLikeLlamaCpp(w.type, x.subarray(t * w.nIn, (t + 1) * w.nIn), rounded.subarray(t * w.nIn, (t + 1) * w.nIn), w.nIn,
        sumError?.subarray(t * nBlocks, (t + 1) * nBlocks));
    }
    matmul(w, rounded, nRows, out, m.scratch.row);
    if (sumError) addQ8_1BlockSumRounding(w, sumError, nRows, out);
    return;
  }
  matmul(w, x, nRows, out, m.scratch.row);
}

// =============================================================================================
// 4. Forward pass over a batch of rows

/** One row of a forward pass: token `token` at position `pos` of the sequence in `slot`. */
interface BatchRow {
  slot: KvSlot;
  pos: number;
  token: number;
}

/** Activations for up to `capacity` rows; grown on demand, reused across calls. */
class Scratch {
  capacity = 0;
  x = new Float32Array(0); // [T][nEmbd] f32 residual stream
  xb = new Float32Array(0); // [T][nEmbd] f32 normed input / attention output projection
  q = new Float32Array(0); // [T][nHead*headDim] f32
  k = new Float32Array(0); // [T][nKvHead*headDim] f32
  v = new Float32Array(0); // [T][nKvHead*headDim] f32
  att = new Float32Array(0); // [T][nHead*headDim] f32 attention output before wo
  gate = new Float32Array(0); // [T][nFf] f32
  up = new Float32Array(0); // [T][nFf] f32
  rounded = new Float32Array(0); // [T][max nIn] f32 matmul input rounded like llama.cpp (activations "llama")
  blockSumError = new Float64Array(0); // [T][max nIn/32] f64 Q8_1 block-sum rounding of `rounded` (Q4_1/Q5_1 weights)
  scores: Float32Array; // [nCtx] f32 attention weights of one head
  row: Float32Array; // [max nIn] f32 one decoded weight row

  constructor(private readonly hp: LlamaHparams, nCtx: number) {
    this.scores = new Float32Array(nCtx);
    this.row = new Float32Array(Math.max(hp.nEmbd, hp.nFf, hp.nHead * hp.headDim));
  }

  ensure(t: number): void {
    if (t <= this.capacity) return;
    const { nEmbd, nHead, nKvHead, headDim, nFf } = this.hp;
    this.capacity = t;
    this.x = new Float32Array(t * nEmbd);
    this.xb = new Float32Array(t * nEmbd);
    this.q = new Float32Array(t * nHead * headDim);
    this.k = new Float32Array(t * nKvHead * headDim);
    this.v = new Float32Array(t * nKvHead * headDim);
    this.att = new Float32Array(t * nHead * headDim);
    this.gate = new Float32Array(t * nFf);
    this.up = new Float32Array(t * nFf);
    this.rounded = new Float32Array(t * Math.max(nEmbd, nFf, nHead * headDim));
    this.blockSumError = new Float64Array(t * Math.ceil(Math.max(nEmbd, nFf, nHead * headDim) / 32));
  }
}

/**
 * Runs the transformer over `rows`, writing their keys/values into their slots, and returns the
 * next-token log-probabilities for the rows flagged in `wantRow` (in row order).
 * Rows of one sequence must come in increasing position order; a row attends to positions
 * 0..pos of its own slot, which by then hold every earlier row's keys and values.
 */
function forward(m: LabModel, rows: BatchRow[], wantRow: boolean[]): Float32Array[] {
  const { hp, weights: w, scratch: s, nCtx, rope: rp } = m;
  const { nEmbd, nHead, nKvHead, headDim, nFf, rmsEps } = hp;
  const T = rows.length;
  const qDim = nHead * headDim;
  const kvDim = nKvHead * headDim;
  const group = nHead / nKvHead;
  const scale = 1 / Math.sqrt(headDim);
  s.ensure(T);

  // Embedding lookup: decode token rows of token_embd.
  for (let t = 0; t < T; t++) {
    const e = w.tokenEmbd;
    e.format.dequantizeRow(e.bytes, rows[t].token * e.rowBytes, s.x.subarray(t * nEmbd, (t + 1) * nEmbd));
  }

  for (let l = 0; l < hp.nLayer; l++) {
    const L = w.layers[l];
    // Attention: norm, projections, RoPE, cache write.
    rmsNorm(s.xb, s.x, L.attnNorm, nEmbd, T, rmsEps);
    project(m, L.wq, s.xb, T, s.q);
    project(m, L.wk, s.xb, T, s.k);
    project(m, L.wv, s.xb, T, s.v);
    for (let t = 0; t < T; t++) {
      const { slot, pos } = rows[t];
      rope(s.q, t * qDim, nHead, headDim, pos, rp.cos, rp.sin);
      rope(s.k, t * kvDim, nKvHead, headDim, pos, rp.cos, rp.sin);
      const at = (l * nCtx + pos) * kvDim;
      slot.k.set(s.k.subarray(t * kvDim, (t + 1) * kvDim), at);
      slot.v.set(s.v.subarray(t * kvDim, (t + 1) * kvDim), at);
    }
    // Causal attention over each row's own sequence, query head h reading KV head h / group.
    const sc = s.scores;
    for (let t = 0; t < T; t++) {
      const { slot, pos } = rows[t];
      const layerBase = l * nCtx * kvDim;
      for (let h = 0; h < nHead; h++) {
        const qOff = t * qDim + h * headDim;
        const kvOff = Math.floor(h / group) * headDim;
        let max = -Infinity;
        for (let j = 0; j <= pos; j++) {
          const kOff = layerBase + j * kvDim + kvOff;
          let dot = 0;
          for (let i = 0; i < headDim; i++) dot += s.q[qOff + i] * slot.k[kOff + i];
          const score = dot * scale;
          sc[j] = score;
          if (score > max) max = score;
        }
        let sum = 0;
        for (let j = 0; j <= pos; j++) {
          const e = Math.exp(sc[j] - max);
          sc[j] = e;
          sum += e;
        }
        const outOff = t * qDim + h * headDim;
        s.att.fill(0, outOff, outOff + headDim);
        for (let j = 0; j <= pos; j++) {
          const p = sc[j] / sum;
          const vOff = layerBase + j * kvDim + kvOff;
          for (let i = 0; i < headDim; i++) s.att[outOff + i] += p * slot.v[vOff + i];
        }
      }
    }
    project(m, L.wo, s.att, T, s.xb);
    for (let i = 0; i < T * nEmbd; i++) s.x[i] += s.xb[i];

    // Feed-forward: SwiGLU.
    rmsNorm(s.xb, s.x, L.ffnNorm, nEmbd, T, rmsEps);
    project(m, L.wGate, s.xb, T, s.gate);
    project(m, L.wUp, s.xb, T, s.up);
    for (let i = 0; i < T * nFf; i++) {
      const g = s.gate[i];
      s.gate[i] = (g / (1 + Math.exp(-g))) * s.up[i];
    }
    project(m, L.wDown, s.gate, T, s.xb);
    for (let i = 0; i < T * nEmbd; i++) s.x[i] += s.xb[i];
  }

  // Output head only for the rows that want a distribution (the vocabulary matmul dominates).
  const picked: number[] = [];
  for (let t = 0; t < T; t++) if (wantRow[t]) picked.push(t);
  if (picked.length === 0) return [];
  const normed = new Float32Array(picked.length * nEmbd); // [P][nEmbd] f32
  for (let r = 0; r < picked.length; r++) normed.set(s.x.subarray(picked[r] * nEmbd, (picked[r] + 1) * nEmbd), r * nEmbd);
  rmsNorm(normed, normed, w.outputNorm, nEmbd, picked.length, rmsEps);
  const nVocab = hp.nVocab;
  const logits = new Float32Array(picked.length * nVocab); // [P][nVocab] f32
  project(m, w.output, normed, picked.length, logits);
  const out: Float32Array[] = [];
  for (let r = 0; r < picked.length; r++) out.push(logSoftmaxInPlace(logits.subarray(r * nVocab, (r + 1) * nVocab)));
  return out;
}

interface LabModel {
  /** Round each matmul input like llama.cpp's CPU backend (EngineOptions.activations "llama"). */
  llamaActivations: boolean;
  hp: LlamaHparams;
  weights: ModelWeights;
  scratch: Scratch;
  nCtx: number;
  rope: { cos: Float32Array; sin: Float32Array };
}

// =============================================================================================
// 5. The engine

/** Prompt rows per forward pass in a prefill: bounds activation memory, keeps blocks cache-sized. */
const PREFILL_CHUNK = 64;

export class LabEngine implements Engine {
  readonly name = "lab" as const;
  private readonly slots: KvSlot[] = []; // every slot ever allocated, reused after free
  private readonly freeSlots: KvSlot[] = [];
  private readonly live = new Set<LabSequence>();
  private nextId = 0;
  private disposed = false;

  private constructor(
    readonly path: string,
    readonly hparams: LlamaHparams,
    readonly tokenizer: EngineTokenizer,
    readonly contextSize: number,
    readonly maxSequences: number,
    readonly threads: number,
    private readonly model: LabModel,
    private readonly fileFacts: { fileBytes: number; tensorBytes: number; parameters: number },
  ) {}

  static async load(path: string, opts: EngineOptions = {}): Promise<LabEngine> {
    const file = await openGguf(path); // validated: bad files are a GgufError here
    const hp = llamaHparams(file);
    const contextSize = opts.contextSize ?? Math.min(hp.nCtxTrain, 2048);
    const maxSequences = opts.maxSequences ?? 4;
    if (!Number.isInteger(contextSize) || contextSize < 1) throw new EngineError(`contextSize must be an integer >= 1, got ${contextSize}`);
    if (!Number.isInteger(maxSequences) || maxSequences < 1) throw new EngineError(`maxSequences must be an integer >= 1, got ${maxSequences}`);
    if (hp.nHead % hp.nKvHead !== 0) throw new EngineError(`nHead ${hp.nHead} is not a multiple of nKvHead ${hp.nKvHead}`);
    if (hp.headDim % 2 !== 0) throw new EngineError(`headDim ${hp.headDim} must be even for RoPE`);
    const weights = await loadWeights(file, hp);
    const kernels = opts.kernels ?? (simdModule() ? "simd" : "js");
    if (kernels === "simd") {
      if (!simdModule()) throw new EngineError("kernels: \"simd\" asked for, but this Node has no WebAssembly SIMD");
      const arena = moveWeightsToSimdArena(weights, Math.max(PREFILL_CHUNK, maxSequences), hp);
      if (!arena && opts.kernels === "simd") throw new EngineError("kernels: \"simd\" asked for, but the weights exceed what one wasm memory holds");
    }
    const activations = opts.activations ?? "f32";
    if (activations !== "f32" && activations !== "llama") throw new EngineError(`activations must be "f32" or "llama", got "${activations}"`);
    const model: LabModel = {
      llamaActivations: activations === "llama", hp, weights, nCtx: contextSize, scratch: new Scratch(hp, contextSize),
      rope: ropeTables(contextSize, hp.headDim, hp.ropeFreqBase),
    };
    const fileFacts = {
      fileBytes: (await stat(path)).size,
      tensorBytes: file.tensors.reduce((s, t) => s + t.byteSize, 0),
      parameters: file.tensors.reduce((s, t) => s + t.ne.reduce((a, b) => a * b, 1), 0),
    };
    const tokenizer = labTokenizer(SpmTokenizer.fromGguf(file), hp.nVocab);
    return new LabEngine(path, hp, tokenizer, contextSize, maxSequences, opts.threads ?? 1, model, fileFacts);
  }

  // -------------------------------------------------------------------------------------------
  // Sequences

  async createSequence(): Promise<Sequence> {
    this.assertOpen();
    const seq = new LabSequence(this, this.nextId++, this.takeSlot());
    this.live.add(seq);
    return seq;
  }

  private takeSlot(): KvSlot {
    const reused = this.freeSlots.pop();
    if (reused) return reused;
    if (this.slots.length >= this.maxSequences) {
      throw new EngineError(`all ${this.maxSequences} sequences are in use; free one or load with a larger maxSequences`);
    }
    const n = this.hparams.nLayer * this.contextSize * this.hparams.nKvHead * this.hparams.headDim;
    const slot: KvSlot = { index: this.slots.length, k: new Float32Array(n), v: new Float32Array(n) };
    this.slots.push(slot);
    return slot;
  }

  /** @internal */ release(seq: LabSequence, slot: KvSlot): void {
    this.live.delete(seq);
    this.freeSlots.push(slot);
  }

  /** @internal */ run(rows: BatchRow[], wantRow: boolean[]): Float32Array[] {
    this.assertOpen();
    return forward(this.model, rows, wantRow);
  }

  // -------------------------------------------------------------------------------------------
  // Batched decode: N sequences, one row each, one forward pass.

  async decode(steps: DecodeStep[]): Promise<Float32Array[]> {
    this.assertOpen();
    if (steps.length === 0) return [];
    const rows: BatchRow[] = [];
    const seen = new Set<Sequence>();
    for (const { sequence, token } of steps) {
      if (!(sequence instanceof LabSequence) || sequence.engine !== this) throw new EngineError("decode: sequence belongs to another engine");
      if (seen.has(sequence)) throw new EngineError("decode: a sequence appears twice in one batch");
      seen.add(sequence);
      sequence.assertUsable();
      checkTokens([token], this.hparams.nVocab, sequence.length, this.contextSize);
      rows.push({ slot: sequence.slot, pos: sequence.length, token });
    }
    const out = forward(this.model, rows, rows.map(() => true));
    steps.forEach((s, i) => (s.sequence as LabSequence).pushTokens([steps[i].token]));
    return out;
  }

  memory(): MemoryReport {
    const perToken = kvBytesPerTokenFormula(this.hparams, 4);
    let inUse = 0;
    for (const s of this.live) inUse += s.length * perToken;
    const allocated = this.slots.reduce((sum, s) => sum + s.k.byteLength + s.v.byteLength, 0);
    return {
      fileBytes: this.fileFacts.fileBytes,
      tensorBytes: this.fileFacts.tensorBytes,
      weightBytes: residentWeightBytes(this.model.weights),
      bitsPerWeight: (8 * this.fileFacts.tensorBytes) / this.fileFacts.parameters,
      // Measured from the arrays: bytes of one slot / positions it holds.
      kvBytesPerToken: this.slots.length ? (this.slots[0].k.byteLength + this.slots[0].v.byteLength) / this.contextSize : perToken,
      kvBytesPerTokenFormula: perToken,
      kvBytesInUse: inUse,
      kvBytesAllocated: allocated,
      rssBytes: process.memoryUsage().rss,
      peakRssBytes: peakRssBytes(),
    };
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.live.clear();
    this.slots.length = 0;
    this.freeSlots.length = 0;
  }

  /** @internal */ assertOpen(): void {
    if (this.disposed) throw new EngineError("the engine has been disposed");
  }
}

/** The GGUF's SPM tokenizer with the Engine convention: BOS is prepended unless bos: false. */
function labTokenizer(spm: SpmTokenizer, nVocab: number): EngineTokenizer {
  return {
    vocabSize: nVocab,
    bosId: spm.bosId,
    eosId: spm.eosId,
    encode: (text, opts = {}) => spm.encode(text, { bos: opts.bos !== false }),
    decode: (ids) => spm.decode(ids),
  };
}

class LabSequence implements Sequence {
  private readonly history: number[] = [];
  private freed = false;

  constructor(readonly engine: LabEngine, readonly id: number, readonly slot: KvSlot) {}

  get tokens(): readonly number[] {
    return this.history;
  }

  get length(): number {
    return this.history.length;
  }

  async evaluate(tokens: number[], opts: { all?: boolean } = {}): Promise<Float32Array[]> {
    this.assertUsable();
    const { hparams, contextSize } = this.engine;
    checkTokens(tokens, hparams.nVocab, this.length, contextSize);
    const out: Float32Array[] = [];
    for (let start = 0; start < tokens.length; start += PREFILL_CHUNK) {
      const chunk = tokens.slice(start, start + PREFILL_CHUNK);
      const rows = chunk.map((token, i) => ({ slot: this.slot, pos: this.length + i, token }));
      const want = chunk.map((_, i) => opts.all === true || start + i === tokens.length - 1);
      out.push(...this.engine.run(rows, want));
      this.pushTokens(chunk);
    }
    return out;
  }

  async prefill(tokens: number[]): Promise<Float32Array> {
    return (await this.evaluate(tokens))[0];
  }

  async truncate(n: number): Promise<void> {
    this.assertUsable();
    if (!Number.isInteger(n) || n < 0 || n > this.length) throw new EngineError(`truncate(${n}): must be an integer in [0, ${this.length}]`);
    // Positions >= n are simply overwritten by the next evaluation; attention never reads past pos.
    this.history.length = n;
  }

  async fork(n: number = this.length): Promise<Sequence> {
    this.assertUsable();
    if (!Number.isInteger(n) || n < 0 || n > this.length) throw new EngineError(`fork(${n}): must be an integer in [0, ${this.length}]`);
    const child = (await this.engine.createSequence()) as LabSequence;
    const { nLayer, nKvHead, headDim } = this.engine.hparams;
    const layerStride = this.engine.contextSize * nKvHead * headDim;
    const prefixFloats = n * nKvHead * headDim;
    for (let l = 0; l < nLayer; l++) {
      const from = l * layerStride;
      child.slot.k.set(this.slot.k.subarray(from, from + prefixFloats), from);
      child.slot.v.set(this.slot.v.subarray(from, from + prefixFloats), from);
    }
    child.pushTokens(this.history.slice(0, n));
    return child;
  }

  async free(): Promise<void> {
    if (this.freed) return;
    this.freed = true;
    this.engine.release(this, this.slot);
  }

  /** @internal */ pushTokens(tokens: number[]): void {
    for (const t of tokens) this.history.push(t);
  }

  /** @internal */ assertUsable(): void {
    this.engine.assertOpen();
    if (this.freed) throw new EngineError("this sequence has been freed");
  }
}
