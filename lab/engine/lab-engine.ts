// LabEngine: a llama-architecture inference engine in TypeScript, read top to bottom like
// llama2.c's run.c.
//
//   1. Weights   — every matrix stays in its GGUF type (F32, F16, Q8_0, Q4_K, …); nothing is
//                  dequantized at load. Norm vectors (tiny) are widened to F32.
//   2. KV cache  — one pool of fixed-size blocks shared by every sequence (kv-pool.ts): a block
//                  table per sequence, reference counts, copy-on-write; in the WebAssembly memory
//                  when the SIMD kernels run, so attention reads keys and values in place.
//   3. Kernels   — matrix × many-vectors products. Plain TypeScript first (the readable version):
//                  F32 weights read in place; quantized weights through lab/quant — one vector →
//                  `dotRow` on the packed bytes, several vectors → each weight row decoded ONCE and
//                  dotted with all of them. With kernels "simd" (the default) the weights live in
//                  one WebAssembly memory and F32, Q8_0, Q4_K and Q6_K products run in the SIMD
//                  kernels of simd.ts (same rule: several vectors → each block decoded once);
//                  other types keep their dotRow for one vector and decoded F32 tiles for several.
//                  Then RMSNorm, RoPE (NORM: adjacent pairs), SiLU. (llama.cpp's activation
//                  rounding, activations "llama", is in llama-activations.ts.)
//   4. Forward   — one pass over the rows of a mixed step: each item (a prefill chunk, one decode
//                  token, k draft tokens to verify) is a span of consecutive positions of one
//                  sequence. Every matrix product runs over all rows of all spans together;
//                  attention runs per span through its sequence's block table (paged attention,
//                  blocked over key blocks: a plain TypeScript version and one on the SIMD kernels).
//   5. Engine    — step (and decode / evaluate over it), sequences (truncate / fork / free), the
//                  KV pool a prefix cache can share (engine.kv), memory report.
//
// Single-threaded: JavaScript runs this on one core whatever `threads` says.
import { stat } from "node:fs/promises";
import { openGguf, readTensorBytes, llamaHparams, type GgufFile, type LlamaHparams } from "../gguf/index.ts";
import { quantFormat, type QuantFormat } from "../quant/index.ts";
import { FP16_TO_F32 } from "../quant/float.ts";
import { rowBytes, type GgmlTypeName } from "../ggml-types.ts";
import { SpmTokenizer } from "../tokenizer.ts";
import {
  EngineError, KvCacheFullError, checkStepItems, kvBytesPerTokenFormula, peakRssBytes,
  type DecodeStep, type Engine, type EngineOptions, type EngineTokenizer, type MemoryReport, type PagedKv, type Sequence,
  type StepItem, type StepResult,
} from "./engine.ts";
import { KvPool, appendBlocks, blocksToAppend, forkBlocks, truncateBlocks } from "./kv-pool.ts";
import { addQ8_1BlockSumRounding, roundLikeLlamaCpp } from "./llama-activations.ts";
import { argmax, logSoftmaxInPlace } from "./sampler.ts";
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
/** Weights beyond this stay in JavaScript arrays (wasm32 memories stop at 4 GiB, buffers included). */
const MAX_ARENA_WEIGHT_BYTES = 3.5 * 2 ** 30;

/**
 * Moves every weight matrix into one WebAssembly memory (the file's bytes, copied once; the engine
 * keeps views) so the SIMD kernels can read F32 and Q8_0 weights in place, and sizes the memory for
 * `extraFloats` more (the KV pool and attention buffers, reserved by the caller). Other types keep
 * using their lab/quant dotRow on the same bytes.
 */
function moveWeightsToSimdArena(w: ModelWeights, maxRows: number, hp: LlamaHparams, extraFloats: number): SimdArena | undefined {
  const matrices = allMatrices(w);
  let bytes = 0;
  for (const m of matrices) bytes += Math.ceil(m.bytes.byteLength / 16) * 16;
  const extraBytes = 4 * extraFloats + 16 * 8; // + alignment of a few reservations
  if (bytes + extraBytes > MAX_ARENA_WEIGHT_BYTES) return undefined; // a 32-bit wasm memory cannot hold them
  const maxIn = Math.max(hp.nEmbd, hp.nFf, hp.nHead * hp.headDim);
  const maxOut = Math.max(hp.nVocab, hp.nFf, hp.nHead * hp.headDim, hp.nEmbd);
  const arena = new SimdArena(bytes + extraBytes, maxRows, maxIn, maxOut);
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

/** The GGUF types LabEngine computes with (lab/quant's formats); IQ*, TQ* and others are refused
 *  when the engine opens, before any weight is read. */
export const LAB_ENGINE_TYPES: readonly GgmlTypeName[] = [
  "F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
];

function checkSupportedTypes(file: GgufFile): void {
  const bad = file.tensors.filter((t) => !LAB_ENGINE_TYPES.includes(t.type));
  if (bad.length === 0) return;
  const types = [...new Set(bad.map((t) => t.type))].join(", ");
  throw new EngineError(`${file.path}: LabEngine cannot compute with tensor type(s) ${types} (e.g. ${bad[0].name}); ` +
    `it supports ${LAB_ENGINE_TYPES.join(", ")} — use the llama engine for this file, or requantize it with lab quantize`);
}

// =============================================================================================
// 2. KV cache
//
// One KvPool (kv-pool.ts) of blocks of kvBlockSize positions for every sequence: keys
// [block][layer][kvHead][slot][headDim], values transposed per block [block][layer][kvHead][headDim][slot].
// A sequence holds a block table; attention (section 4) reads through it. With the SIMD kernels
// the pool's arrays are views into the same WebAssembly memory as the weights.

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
// 4. Forward pass over the rows of a step

/** One item of a step inside one forward pass: `tokens` at positions start, start+1, … of the
 *  sequence whose block table is `table` (already grown to hold them). want[i]: return the
 *  next-token distribution after tokens[i]. raw: the wanted rows are only sampled from, so they
 *  come back as logits, without the log-softmax (a sampler needs only differences). */
export interface Span {
  table: readonly number[];
  start: number;
  tokens: number[];
  want: boolean[];
  raw?: boolean;
}

/** Rows per forward pass: activations for this many rows are allocated once; a larger step (a long
 *  prompt, many sequences) runs as several passes in order, which gives the same result because a
 *  row only reads keys and values of earlier positions, already written by then. */
export const MAX_ROWS = 64;

/** Activations for up to MAX_ROWS rows, allocated once. */
class Scratch {
  x: Float32Array; // [T][nEmbd] f32 residual stream
  xb: Float32Array; // [T][nEmbd] f32 normed input / attention output projection
  q: Float32Array; // [T][nHead*headDim] f32
  k: Float32Array; // [T][nKvHead*headDim] f32
  v: Float32Array; // [T][nKvHead*headDim] f32
  att: Float32Array; // [T][nHead*headDim] f32 attention output before wo
  gate: Float32Array; // [T][nFf] f32
  up: Float32Array; // [T][nFf] f32
  rounded: Float32Array; // [T][max nIn] f32 matmul input rounded like llama.cpp (activations "llama")
  blockSumError: Float64Array; // [T][max nIn/32] f64 Q8_1 block-sum rounding of `rounded` (Q4_1/Q5_1 weights)
  scores: Float32Array; // [nCtx] f32 attention weights of one head (the TypeScript attention)
  row: Float32Array; // [max nIn] f32 one decoded weight row

  constructor(hp: LlamaHparams, nCtx: number) {
    const { nEmbd, nHead, nKvHead, headDim, nFf } = hp;
    const t = MAX_ROWS, maxIn = Math.max(nEmbd, nFf, nHead * headDim);
    this.x = new Float32Array(t * nEmbd);
    this.xb = new Float32Array(t * nEmbd);
    this.q = new Float32Array(t * nHead * headDim);
    this.k = new Float32Array(t * nKvHead * headDim);
    this.v = new Float32Array(t * nKvHead * headDim);
    this.att = new Float32Array(t * nHead * headDim);
    this.gate = new Float32Array(t * nFf);
    this.up = new Float32Array(t * nFf);
    this.rounded = new Float32Array(t * maxIn);
    this.blockSumError = new Float64Array(t * Math.ceil(maxIn / 32));
    this.scores = new Float32Array(nCtx);
    this.row = new Float32Array(maxIn);
  }
}

/**
 * Buffers of the SIMD attention, in the WebAssembly memory (pointers are byte offsets): the query
 * rows of one KV head's group, the attention weights block by block, and the output rows.
 * R = (nHead / nKvHead) · MAX_ROWS rows at most.
 */
export interface SimdAttention {
  arena: SimdArena;
  kPtr: number; // the pool's k array
  vPtr: number; // the pool's v array
  qPtr: number; q: Float32Array; // [R][headDim] f32 queries (scaled by 1/√headDim), row = head-in-group · n + i
  pPtr: number; p: Float32Array; // [nCtx/blockSize][R][blockSize] f32 scores, then softmax weights, per key block
  oPtr: number; o: Float32Array; // [R][headDim] f32 Σ over blocks of P·V
}

interface LabModel {
  /** Round each matmul input like llama.cpp's CPU backend (EngineOptions.activations "llama"). */
  llamaActivations: boolean;
  hp: LlamaHparams;
  weights: ModelWeights;
  scratch: Scratch;
  nCtx: number;
  rope: { cos: Float32Array; sin: Float32Array };
  pool: KvPool;
  /** Set when attention runs on the SIMD kernels (blockSize ≥ 4, headDim % 4 == 0, weights in a wasm memory). */
  simdAttention?: SimdAttention;
}

/** What attention reads and writes: the pool, the queries (scratch.q, rows of nHead·headDim, RoPE
 *  applied) and the output rows (scratch.att). */
export interface AttentionContext {
  hp: LlamaHparams;
  pool: KvPool;
  scratch: { q: Float32Array; att: Float32Array; scores: Float32Array };
}

/** Runs the spans in passes of at most MAX_ROWS rows (a long span is split, in order). Returns the
 *  distributions the spans want, in span order then token order. */
function forward(m: LabModel, spans: Span[]): Float32Array[] {
  const out: Float32Array[] = [];
  let pass: Span[] = [];
  let rows = 0;
  for (const span of spans) {
    for (let i = 0; i < span.tokens.length;) {
      const n = Math.min(span.tokens.length - i, MAX_ROWS - rows);
      pass.push({ ...span, start: span.start + i, tokens: span.tokens.slice(i, i + n), want: span.want.slice(i, i + n) });
      rows += n;
      i += n;
      if (rows === MAX_ROWS) {
        out.push(...forwardPass(m, pass));
        pass = [];
        rows = 0;
      }
    }
  }
  if (rows > 0) out.push(...forwardPass(m, pass));
  return out;
}

/**
 * One pass of the transformer over ≤ MAX_ROWS rows: writes each row's keys and values into its
 * block, and returns the log-probabilities of the wanted rows. Within a span, row i attends to
 * positions 0..start+i of its sequence: earlier passes and earlier rows of this span wrote them.
 */
function forwardPass(m: LabModel, spans: Span[]): Float32Array[] {
  const { hp, weights: w, scratch: s, rope: rp, pool } = m;
  const { nEmbd, nHead, nKvHead, headDim, nFf, rmsEps } = hp;
  const T = spans.reduce((n, sp) => n + sp.tokens.length, 0);
  const qDim = nHead * headDim;
  const kvDim = nKvHead * headDim;
  const shift = Math.log2(pool.blockSize), mask = pool.blockSize - 1;

  // Embedding lookup: decode token rows of token_embd.
  const e = w.tokenEmbd;
  let r = 0;
  for (const sp of spans) {
    for (const token of sp.tokens) e.format.dequantizeRow(e.bytes, token * e.rowBytes, s.x.subarray(r * nEmbd, (r + 1) * nEmbd)), r++;
  }

  for (let l = 0; l < hp.nLayer; l++) {
    const L = w.layers[l];
    // Attention: norm, projections, RoPE, keys and values into the sequences' blocks.
    rmsNorm(s.xb, s.x, L.attnNorm, nEmbd, T, rmsEps);
    project(m, L.wq, s.xb, T, s.q);
    project(m, L.wk, s.xb, T, s.k);
    project(m, L.wv, s.xb, T, s.v);
    r = 0;
    for (const sp of spans) {
      for (let i = 0; i < sp.tokens.length; i++, r++) {
        const pos = sp.start + i;
        rope(s.q, r * qDim, nHead, headDim, pos, rp.cos, rp.sin);
        rope(s.k, r * kvDim, nKvHead, headDim, pos, rp.cos, rp.sin);
        pool.write(sp.table[pos >> shift], pos & mask, l, s.k, r * kvDim, s.v, r * kvDim);
      }
    }
    // Causal attention of each span over its own sequence, through its block table.
    r = 0;
    for (const sp of spans) {
      if (m.simdAttention) attendSimd(m, m.simdAttention, l, sp, r);
      else attendTs(m, l, sp, r);
      r += sp.tokens.length;
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
  const picked: number[] = [], raw: boolean[] = [];
  r = 0;
  for (const sp of spans) for (const want of sp.want) { if (want) picked.push(r), raw.push(sp.raw === true); r++; }
  if (picked.length === 0) return [];
  const normed = new Float32Array(picked.length * nEmbd); // [P][nEmbd] f32
  for (let p = 0; p < picked.length; p++) normed.set(s.x.subarray(picked[p] * nEmbd, (picked[p] + 1) * nEmbd), p * nEmbd);
  rmsNorm(normed, normed, w.outputNorm, nEmbd, picked.length, rmsEps);
  const nVocab = hp.nVocab;
  const logits = new Float32Array(picked.length * nVocab); // [P][nVocab] f32
  project(m, w.output, normed, picked.length, logits);
  const out: Float32Array[] = [];
  for (let p = 0; p < picked.length; p++) {
    const row = logits.subarray(p * nVocab, (p + 1) * nVocab);
    out.push(raw[p] ? row : logSoftmaxInPlace(row));
  }
  return out;
}

/**
 * Paged attention in plain TypeScript (the readable version, and the one kernels "js" run): for
 * each row and query head h, softmax(q·k_j / √headDim) over positions j ≤ pos, then Σ_j p_j·v_j,
 * with k_j and v_j read from block table[j / blockSize], slot j % blockSize. Query head h reads
 * KV head h / (nHead / nKvHead) (grouped-query attention). Writes rows r0.. of scratch.att.
 */
export function attendTs(m: AttentionContext, l: number, sp: Span, r0: number): void {
  const { hp, scratch: s, pool } = m;
  const { nHead, nKvHead, headDim } = hp;
  const qDim = nHead * headDim, group = nHead / nKvHead, scale = 1 / Math.sqrt(headDim);
  const bs = pool.blockSize, shift = Math.log2(bs), mask = bs - 1;
  const { k, v } = pool;
  const sc = s.scores;
  for (let i = 0; i < sp.tokens.length; i++) {
    const pos = sp.start + i, row = r0 + i;
    for (let h = 0; h < nHead; h++) {
      const kvh = Math.floor(h / group);
      const qOff = row * qDim + h * headDim;
      let max = -Infinity;
      for (let j = 0; j <= pos; j++) {
        const kOff = pool.base(sp.table[j >> shift], l, kvh) + (j & mask) * headDim;
        let dot = 0;
        for (let d = 0; d < headDim; d++) dot += s.q[qOff + d] * k[kOff + d];
        sc[j] = dot * scale;
        if (sc[j] > max) max = sc[j];
      }
      let sum = 0;
      for (let j = 0; j <= pos; j++) {
        sc[j] = Math.exp(sc[j] - max);
        sum += sc[j];
      }
      const outOff = row * qDim + h * headDim;
      s.att.fill(0, outOff, outOff + headDim);
      for (let j = 0; j <= pos; j++) {
        const p = sc[j] / sum;
        const vOff = pool.base(sp.table[j >> shift], l, kvh) + (j & mask); // V is [headDim][blockSize] per block
        for (let d = 0; d < headDim; d++) s.att[outOff + d] += p * v[vOff + d * bs];
      }
    }
  }
}

/**
 * The same attention on the SIMD matrix kernel, blocked over key blocks: for each KV head, the
 * span's queries of every query head in its group form R = group·n rows; then per key block b
 *   scores_b [R][bs] = Q [R][headDim] · K_b^T     (matmul_f32: K_b is [bs][headDim] in the pool)
 * a softmax per row over its visible positions (TypeScript: exp has no wasm instruction), and
 *   O [R][headDim] += P_b [R][bs] · V_b           (matmul_f32_acc: V_b^T is [headDim][bs] in the pool)
 * Each key and value block is read once for all R rows: this is what makes a 1,024-token prefill
 * cost matrix products instead of one query at a time.
 */
export function attendSimd(m: AttentionContext, a: SimdAttention, l: number, sp: Span, r0: number): void {
  const { hp, scratch: s, pool } = m;
  const { nHead, nKvHead, headDim } = hp;
  const qDim = nHead * headDim, group = nHead / nKvHead, scale = 1 / Math.sqrt(headDim);
  const n = sp.tokens.length, R = group * n;
  const bs = pool.blockSize, shift = Math.log2(bs);
  const nb = ((sp.start + n - 1) >> shift) + 1; // key blocks the last row can see
  const { q, p, o, arena } = a;
  for (let kvh = 0; kvh < nKvHead; kvh++) {
    for (let g = 0; g < group; g++) {
      const h = kvh * group + g;
      for (let i = 0; i < n; i++) {
        const src = (r0 + i) * qDim + h * headDim, dst = (g * n + i) * headDim;
        for (let d = 0; d < headDim; d++) q[dst + d] = s.q[src + d] * scale;
      }
    }
    for (let b = 0; b < nb; b++) {
      arena.f32Kernel(a.kPtr + 4 * pool.base(sp.table[b], l, kvh), a.qPtr, a.pPtr + 4 * b * R * bs, headDim, bs, R, bs);
    }
    for (let g = 0; g < group; g++) {
      for (let i = 0; i < n; i++) {
        // Row `row` sees positions 0..pos: blocks 0..last, the last one up to slot pos % bs.
        const row = g * n + i, pos = sp.start + i, last = pos >> shift, lastEnd = (pos & (bs - 1)) + 1;
        let max = -Infinity;
        for (let b = 0; b <= last; b++) {
          const base = (b * R + row) * bs, end = b < last ? bs : lastEnd;
          for (let j = 0; j < end; j++) if (p[base + j] > max) max = p[base + j];
        }
        let sum = 0;
        for (let b = 0; b <= last; b++) {
          const base = (b * R + row) * bs, end = b < last ? bs : lastEnd;
          for (let j = 0; j < end; j++) {
            const e = Math.exp(p[base + j] - max);
            p[base + j] = e;
            sum += e;
          }
        }
        const inv = 1 / sum;
        for (let b = 0; b < nb; b++) {
          const base = (b * R + row) * bs, end = b < last ? bs : b === last ? lastEnd : 0;
          for (let j = 0; j < end; j++) p[base + j] *= inv;
          for (let j = end; j < bs; j++) p[base + j] = 0; // positions after pos (the causal mask) weigh nothing
        }
      }
    }
    o.fill(0, 0, R * headDim);
    for (let b = 0; b < nb; b++) {
      arena.f32AccKernel(a.vPtr + 4 * pool.base(sp.table[b], l, kvh), a.pPtr + 4 * b * R * bs, a.oPtr, bs, headDim, R, headDim);
    }
    for (let g = 0; g < group; g++) {
      const h = kvh * group + g;
      for (let i = 0; i < n; i++) {
        const src = (g * n + i) * headDim, dst = (r0 + i) * qDim + h * headDim;
        for (let d = 0; d < headDim; d++) s.att[dst + d] = o[src + d];
      }
    }
  }
}

/** Floats the KV pool and the SIMD attention buffers take in a wasm memory. */
export function kvArenaFloats(hp: LlamaHparams, blockSize: number, nBlocks: number, nCtx: number): number {
  const poolFloats = nBlocks * hp.nLayer * hp.nKvHead * blockSize * hp.headDim;
  const rows = (hp.nHead / hp.nKvHead) * MAX_ROWS;
  return 2 * poolFloats + 2 * rows * hp.headDim + Math.ceil(nCtx / blockSize) * blockSize * rows;
}

/** The KV pool, in `arena` when there is one (its weight region sized with kvArenaFloats), and the
 *  SIMD attention buffers when the kernels can run it (blockSize ≥ 4, headDim % 4 == 0). */
export function createKvPool(hp: LlamaHparams, blockSize: number, nBlocks: number, nCtx: number, arena?: SimdArena):
  { pool: KvPool; simdAttention?: SimdAttention } {
  const shape = { nLayer: hp.nLayer, nKvHead: hp.nKvHead, headDim: hp.headDim };
  if (!arena) return { pool: new KvPool(shape, blockSize, nBlocks) };
  const poolFloats = nBlocks * hp.nLayer * hp.nKvHead * blockSize * hp.headDim;
  const k = arena.reserveFloats(poolFloats), v = arena.reserveFloats(poolFloats);
  const pool = new KvPool(shape, blockSize, nBlocks, { k: k.view, v: v.view });
  if (blockSize < 4 || hp.headDim % 4 !== 0) return { pool };
  const rows = (hp.nHead / hp.nKvHead) * MAX_ROWS;
  const q = arena.reserveFloats(rows * hp.headDim), o = arena.reserveFloats(rows * hp.headDim);
  const p = arena.reserveFloats(Math.ceil(nCtx / blockSize) * blockSize * rows);
  return { pool, simdAttention: { arena, kPtr: k.ptr, vPtr: v.ptr, qPtr: q.ptr, q: q.view, pPtr: p.ptr, p: p.view, oPtr: o.ptr, o: o.view } };
}

// =============================================================================================
// 5. The engine

export class LabEngine implements Engine {
  readonly name = "lab" as const;
  readonly kv: PagedKv;
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
  ) {
    this.kv = labPagedKv(this, model.pool);
  }

  static async load(path: string, opts: EngineOptions = {}): Promise<LabEngine> {
    const file = await openGguf(path); // validated: bad files are a GgufError here
    checkSupportedTypes(file);
    const hp = llamaHparams(file);
    const contextSize = opts.contextSize ?? Math.min(hp.nCtxTrain, 2048);
    const maxSequences = opts.maxSequences ?? 4;
    if (!Number.isInteger(contextSize) || contextSize < 1) throw new EngineError(`contextSize must be an integer >= 1, got ${contextSize}`);
    if (!Number.isInteger(maxSequences) || maxSequences < 1) throw new EngineError(`maxSequences must be an integer >= 1, got ${maxSequences}`);
    if (hp.nHead % hp.nKvHead !== 0) throw new EngineError(`nHead ${hp.nHead} is not a multiple of nKvHead ${hp.nKvHead}`);
    if (hp.headDim % 2 !== 0) throw new EngineError(`headDim ${hp.headDim} must be even for RoPE`);
    const blockSize = opts.kvBlockSize ?? Math.min(16, 2 ** Math.floor(Math.log2(contextSize)));
    if (!Number.isInteger(blockSize) || blockSize < 1 || (blockSize & (blockSize - 1)) !== 0 || blockSize > contextSize) {
      throw new EngineError(`kvBlockSize must be a power of two between 1 and contextSize (${contextSize}), got ${blockSize}`);
    }
    const nBlocks = opts.kvBlocks ?? Math.ceil(contextSize / blockSize) * maxSequences;
    if (!Number.isInteger(nBlocks) || nBlocks < 1) throw new EngineError(`kvBlocks must be an integer >= 1, got ${nBlocks}`);
    const activations = opts.activations ?? "f32";
    if (activations !== "f32" && activations !== "llama") throw new EngineError(`activations must be "f32" or "llama", got "${activations}"`);
    const weights = await loadWeights(file, hp);
    const kernels = opts.kernels ?? (simdModule() ? "simd" : "js");
    if (kernels !== "simd" && kernels !== "js") throw new EngineError(`kernels must be "simd" or "js", got "${kernels}"`);

    let arena: SimdArena | undefined;
    if (kernels === "simd") {
      if (!simdModule()) throw new EngineError("kernels: \"simd\" asked for, but this Node has no WebAssembly SIMD");
      arena = moveWeightsToSimdArena(weights, MAX_ROWS, hp, kvArenaFloats(hp, blockSize, nBlocks, contextSize));
      if (!arena && opts.kernels === "simd") throw new EngineError("kernels: \"simd\" asked for, but the weights and KV pool exceed what one wasm memory holds");
    }
    const { pool, simdAttention } = createKvPool(hp, blockSize, nBlocks, contextSize, arena);
    const model: LabModel = {
      llamaActivations: activations === "llama", hp, weights, nCtx: contextSize, scratch: new Scratch(hp, contextSize),
      rope: ropeTables(contextSize, hp.headDim, hp.ropeFreqBase), pool, simdAttention,
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
    return this.newSequence([], []);
  }

  /** @internal */ newSequence(table: number[], tokens: readonly number[]): LabSequence {
    this.assertOpen();
    if (this.live.size >= this.maxSequences) {
      throw new EngineError(`all ${this.maxSequences} sequences are in use; free one or load with a larger maxSequences`);
    }
    const seq = new LabSequence(this, this.nextId++, this.model.pool, table, tokens);
    this.live.add(seq);
    return seq;
  }

  /** @internal */ forget(seq: LabSequence): void {
    this.live.delete(seq);
  }

  // -------------------------------------------------------------------------------------------
  // One mixed step: every item's tokens in one forward pass.

  async step(items: StepItem[]): Promise<StepResult[]> {
    this.assertOpen();
    const seqs = checkStepItems(items, this.hparams.nVocab, this.contextSize, (s) => this.own(s));
    // All or nothing: count the blocks every item needs (new ones and copy-on-write copies) first.
    const pool = this.model.pool;
    const needed = seqs.reduce((n, seq, i) => n + blocksToAppend(pool, seq.table, seq.length, items[i].tokens.length), 0);
    if (needed > pool.blocksFree) throw new KvCacheFullError(needed, pool.blocksFree);
    const spans: Span[] = items.map((item, i) => {
      const seq = seqs[i];
      appendBlocks(pool, seq.table, seq.length, item.tokens.length);
      const output = item.output ?? "last";
      const last = item.tokens.length - 1;
      const want = item.tokens.map((_, t) => output === "all" || output === "argmax" || (t === last && (output === "last" || item.sample !== undefined)));
      // "none" and "argmax" only sample from / take the argmax of their rows: logits suffice.
      return { table: seq.table, start: seq.length, tokens: item.tokens, want, raw: output === "none" || output === "argmax" };
    });
    const rows = forward(this.model, spans);
    let r = 0;
    return items.map((item, i) => {
      seqs[i].pushTokens(item.tokens);
      const output = item.output ?? "last";
      const n = spans[i].want.filter(Boolean).length;
      const mine = rows.slice(r, r + n);
      r += n;
      const result: StepResult = { logprobs: output === "none" || output === "argmax" ? [] : mine };
      if (output === "argmax") result.argmax = mine.map((row) => argmax(row));
      if (item.sample) result.token = item.sample.sample(mine[mine.length - 1]);
      return result;
    });
  }

  async decode(steps: DecodeStep[]): Promise<Float32Array[]> {
    const results = await this.step(steps.map(({ sequence, token }) => ({ sequence, tokens: [token], output: "last" as const })));
    return results.map((r) => r.logprobs[0]);
  }

  memory(): MemoryReport {
    const perToken = kvBytesPerTokenFormula(this.hparams, 4);
    const kv = this.model.pool.report();
    return {
      fileBytes: this.fileFacts.fileBytes,
      tensorBytes: this.fileFacts.tensorBytes,
      weightBytes: residentWeightBytes(this.model.weights),
      bitsPerWeight: (8 * this.fileFacts.tensorBytes) / this.fileFacts.parameters,
      // Measured from the pool: bytes of one block / the positions it holds.
      kvBytesPerToken: kv.bytesPerBlock / kv.blockSize,
      kvBytesPerTokenFormula: perToken,
      kvBytesInUse: kv.blocksUsed * kv.bytesPerBlock,
      kvBytesAllocated: kv.blocksTotal * kv.bytesPerBlock,
      kv,
      rssBytes: process.memoryUsage().rss,
      peakRssBytes: peakRssBytes(),
    };
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    for (const s of [...this.live]) await s.free();
    this.disposed = true;
  }

  /** @internal */ own(sequence: Sequence): LabSequence {
    if (!(sequence instanceof LabSequence) || sequence.engine !== this) throw new EngineError("step: sequence belongs to another engine");
    sequence.assertUsable();
    return sequence;
  }

  /** @internal */ assertOpen(): void {
    if (this.disposed) throw new EngineError("the engine has been disposed");
  }
}

/** engine.kv: the pool's blocks as a prefix cache sees them (see PagedKv in engine.ts). */
function labPagedKv(engine: LabEngine, pool: KvPool): PagedKv {
  const check = (ids: readonly number[]) => {
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= pool.nBlocks) throw new EngineError(`KV block id ${id} is outside the pool [0, ${pool.nBlocks})`);
      if (pool.refCount[id] === 0) throw new EngineError(`KV block ${id} is free: its contents are gone`);
    }
  };
  return {
    blockSize: pool.blockSize,
    blockIds: (sequence) => [...engine.own(sequence).table],
    refCount: (id) => pool.refCount[id],
    freeQueue: () => pool.freeQueue(),
    retain(ids) {
      check(ids);
      for (const id of ids) pool.retain(id);
    },
    release(ids) {
      check(ids);
      for (const id of ids) pool.release(id);
    },
    async adopt(ids, tokens) {
      if (ids.length !== Math.ceil(tokens.length / pool.blockSize)) {
        throw new EngineError(`adopt: ${tokens.length} tokens need ${Math.ceil(tokens.length / pool.blockSize)} blocks of ${pool.blockSize}, got ${ids.length}`);
      }
      if (tokens.length > engine.contextSize) throw new EngineError(`adopt: ${tokens.length} tokens do not fit the context of ${engine.contextSize}`);
      check(ids);
      for (const t of tokens) {
        if (!Number.isInteger(t) || t < 0 || t >= engine.hparams.nVocab) throw new EngineError(`adopt: token id ${t} is outside the vocabulary [0, ${engine.hparams.nVocab})`);
      }
      const seq = engine.newSequence([...ids], tokens);
      for (const id of ids) pool.retain(id);
      return seq;
    },
  };
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
  private readonly history: number[];
  private freed = false;

  /** `table` holds the blocks of positions 0..tokens.length-1 (this sequence owns a reference to each). */
  constructor(readonly engine: LabEngine, readonly id: number, private readonly pool: KvPool,
    readonly table: number[], tokens: readonly number[]) {
    this.history = [...tokens];
  }

  get tokens(): readonly number[] {
    return this.history;
  }

  get length(): number {
    return this.history.length;
  }

  async evaluate(tokens: number[], opts: { all?: boolean } = {}): Promise<Float32Array[]> {
    const [result] = await this.engine.step([{ sequence: this, tokens, output: opts.all === true ? "all" : "last" }]);
    return result.logprobs;
  }

  async prefill(tokens: number[]): Promise<Float32Array> {
    return (await this.evaluate(tokens))[0];
  }

  async truncate(n: number): Promise<void> {
    this.assertUsable();
    if (!Number.isInteger(n) || n < 0 || n > this.length) throw new EngineError(`truncate(${n}): must be an integer in [0, ${this.length}]`);
    truncateBlocks(this.pool, this.table, n);
    this.history.length = n;
  }

  async fork(n: number = this.length): Promise<Sequence> {
    this.assertUsable();
    if (!Number.isInteger(n) || n < 0 || n > this.length) throw new EngineError(`fork(${n}): must be an integer in [0, ${this.length}]`);
    this.engine.assertOpen();
    const table = forkBlocks(this.pool, this.table, n);
    try {
      return this.engine.newSequence(table, this.history.slice(0, n));
    } catch (err) {
      truncateBlocks(this.pool, table, 0); // no sequence to hold them: give the references back
      throw err;
    }
  }

  async free(): Promise<void> {
    if (this.freed) return;
    this.freed = true;
    truncateBlocks(this.pool, this.table, 0);
    this.engine.forget(this);
  }

  /** @internal */ pushTokens(tokens: number[]): void {
    for (const t of tokens) this.history.push(t);
  }

  /** @internal */ assertUsable(): void {
    this.engine.assertOpen();
    if (this.freed) throw new EngineError("this sequence has been freed");
  }
}
