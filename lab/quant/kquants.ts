// The k-quants: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K. Every format groups 256 weights into a super-block
// that is cut into sub-blocks of 16 or 32 weights; each sub-block has its own small integer scale
// (and, for the "x = a*q + b" formats, a min), and those scales are themselves quantized against one
// or two fp16 super-block scales. The quantizers reproduce ggml's reference quantizers
// (quantize_row_qN_K_ref in ggml/src/ggml-quants.c) bit for bit, which means two things:
//
//  1. The same search. A naive min/max scale wastes levels on outliers; ggml instead tries a few
//     candidate scales per sub-block and keeps the one with the least weighted squared (or absolute)
//     error: makeQxQuants (symmetric, Q6_K), makeQ3Quants (symmetric, iterative, Q3_K) and
//     makeQkx2Quants (scale + min, Q2_K/Q4_K/Q5_K).
//  2. The same arithmetic. ggml computes in float32, so every +, -, *, / and sqrt below is rounded to
//     float32 with `f32` (Math.fround) exactly where C rounds. A missing rounding changes the bytes
//     only rarely (a scale one ulp off usually vanishes in the fp16 and 6-bit roundings), which is
//     exactly why it must not be left to chance. (+ - * / sqrt done in float64 and then rounded to
//     float32 equal the float32 operation, so this emulation is exact.) The shipped libggml-base.so
//     is built without FMA contraction (no vfmadd in it), so no fused multiply-adds need emulating.
//
// Reading order: shared helpers (nearestInt, the three scale searches, the 6-bit scale packing);
// then per format, as in ggml-common.h, a block constant, its byte layout, a size assertion, and its
// quantize / dequantize / dot functions; last, the QuantFormat objects (K_QUANT_FORMATS).
//
// Scratch buffers are module-level and reused: quantizing allocates nothing per block, and dotRow
// allocates nothing per call. (JavaScript runs one call at a time, so sharing them is safe.)

import { BLOCK_GEOMETRY, bitsPerWeight, type GgmlTypeName } from "../ggml-types.ts";
import { readFp16 as readHalf, writeFp16 as writeHalf } from "./float.ts";
import type { QuantFormat } from "./index.ts";

/** Weights per k-quant super-block (QK_K). */
export const QK_K = 256;

/** A sub-block whose largest |x| is below this is treated as all zero (GROUP_MAX_EPS). */
const GROUP_MAX_EPS = Math.fround(1e-15);

const f32 = Math.fround;

/** C's 0.1f: the step between candidate scales in makeQxQuants and makeQkx2Quants. */
const TENTH = Math.fround(0.1);

// ===================================================================================================
// Shared helpers
// ===================================================================================================

const roundScratchF32 = new Float32Array(1); // [1] f32: the biased value whose bits nearestInt reads
const roundScratchI32 = new Int32Array(roundScratchF32.buffer); // [1] i32 view of the same 4 bytes

/**
 * ggml's nearest_int: adds 1.5 * 2^23 in float32 so the FPU rounds half to even into the low mantissa
 * bits, then reads them back. In range (|v| <= 4194304) that is v rounded half to even, computed here
 * without touching memory; beyond it ggml gets a wrapped garbage value, and so do we (same bits),
 * which keeps even degenerate inputs byte-identical.
 */
export function nearestInt(v: number): number {
  const biased = f32(v + 12582912);
  if (biased >= 8388608 && biased < 16777216) return biased - 12582912;
  roundScratchF32[0] = biased;
  return (roundScratchI32[0]! & 0x007fffff) - 0x00400000;
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

/**
 * Symmetric quantization of n values to integers in [-nmax, nmax-1] with weights x² (ggml's
 * make_qx_quants with rmse_type = 1 and no importance matrix). Starts from the scale that maps the
 * largest-magnitude value to -nmax, then tries 18 nearby scales and keeps the one maximizing
 * (Σ w·x·l)² / Σ w·l², i.e. the least weighted squared error. Writes levels + nmax into L and
 * returns the scale (negative when the largest-magnitude value is positive).
 */
function makeQxQuants(n: number, nmax: number, x: Float32Array, xOff: number, L: Uint8Array, lOff: number): number {
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[xOff + i]!);
    if (ax > amax) { amax = ax; max = x[xOff + i]!; }
  }
  if (amax < GROUP_MAX_EPS) {
    L.fill(0, lOff, lOff + n);
    return 0;
  }
  let iscale = f32(-nmax / max);
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[xOff + i]!;
    const l = clamp(nearestInt(f32(iscale * xi)), -nmax, nmax - 1);
    L[lOff + i] = l + nmax;
    const w = f32(xi * xi);
    sumlx = f32(sumlx + f32(f32(w * xi) * l));
    suml2 = f32(suml2 + f32(f32(w * l) * l));
  }
  let scale = suml2 !== 0 ? f32(sumlx / suml2) : 0;
  let best = f32(scale * sumlx);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    iscale = f32(-f32(nmax + f32(TENTH * is)) / max);
    sumlx = 0;
    suml2 = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[xOff + i]!;
      const l = clamp(nearestInt(f32(iscale * xi)), -nmax, nmax - 1);
      const w = f32(xi * xi);
      sumlx = f32(sumlx + f32(f32(w * xi) * l));
      suml2 = f32(suml2 + f32(f32(w * l) * l));
    }
    if (suml2 > 0 && f32(sumlx * sumlx) > f32(best * suml2)) {
      for (let i = 0; i < n; i++) {
        L[lOff + i] = nmax + clamp(nearestInt(f32(iscale * x[xOff + i]!)), -nmax, nmax - 1);
      }
      scale = f32(sumlx / suml2);
      best = f32(scale * sumlx);
    }
  }
  return scale;
}

/**
 * Symmetric 3-bit-style quantization (ggml's make_q3_quants with do_rmse): start from the max-mapped
 * scale, then for up to 5 sweeps move single values to the level that most improves
 * (Σ w·x·l)² / Σ w·l² with w = x². Writes levels + nmax into L (signed scratch) and returns the
 * least-squares scale for the final levels.
 */
function makeQ3Quants(n: number, nmax: number, x: Float32Array, xOff: number, L: Int8Array, lOff: number): number {
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[xOff + i]!);
    if (ax > amax) { amax = ax; max = x[xOff + i]!; }
  }
  if (amax < GROUP_MAX_EPS) {
    L.fill(0, lOff, lOff + n);
    return 0;
  }
  const iscale = f32(-nmax / max);
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[xOff + i]!;
    const l = clamp(nearestInt(f32(iscale * xi)), -nmax, nmax - 1);
    L[lOff + i] = l;
    const w = f32(xi * xi);
    sumlx = f32(sumlx + f32(f32(w * xi) * l));
    suml2 = f32(suml2 + f32(f32(w * l) * l));
  }
  for (let itry = 0; itry < 5; itry++) {
    let nChanged = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[xOff + i]!;
      const li = L[lOff + i]!;
      const w = f32(xi * xi);
      let slx = f32(sumlx - f32(f32(w * xi) * li));
      if (slx > 0) {
        let sl2 = f32(suml2 - f32(f32(w * li) * li));
        const newL = clamp(nearestInt(f32(f32(xi * sl2) / slx)), -nmax, nmax - 1);
        if (newL !== li) {
          slx = f32(slx + f32(f32(w * xi) * newL));
          sl2 = f32(sl2 + f32(f32(w * newL) * newL));
          if (sl2 > 0 && f32(f32(slx * slx) * suml2) > f32(f32(sumlx * sumlx) * sl2)) {
            L[lOff + i] = newL;
            sumlx = slx;
            suml2 = sl2;
            nChanged++;
          }
        }
      }
    }
    if (nChanged === 0) break;
  }
  for (let i = 0; i < n; i++) L[lOff + i] = L[lOff + i]! + nmax;
  return suml2 > 0 ? f32(sumlx / suml2) : 0;
}

/**
 * Asymmetric quantization x ≈ scale·l - min with l in [0, nmax] (ggml's make_qkx2_quants). The min is
 * clamped so that zero stays representable. Starts from the plain min/max fit, then for nstep+1
 * candidate level spacings solves the weighted least-squares (scale, min) for the resulting levels
 * and keeps the candidate with the least weighted error (|err| if useMad, else err²).
 * Writes levels into L, the (positive) min into mins[minIndex], and returns the scale.
 */
function makeQkx2Quants(
  n: number, nmax: number, x: Float32Array, xOff: number, weights: Float32Array,
  L: Uint8Array, lOff: number, mins: Float32Array, minIndex: number,
  rmin: number, rdelta: number, nstep: number, useMad: boolean,
): number {
  let min = x[xOff]!;
  let max = x[xOff]!;
  let sumW = weights[0]!;
  let sumX = f32(sumW * x[xOff]!);
  for (let i = 1; i < n; i++) {
    const xi = x[xOff + i]!;
    if (xi < min) min = xi;
    if (xi > max) max = xi;
    const w = weights[i]!;
    sumW = f32(sumW + w);
    sumX = f32(sumX + f32(w * xi));
  }
  if (min > 0) min = 0;
  if (max === min) {
    L.fill(0, lOff, lOff + n);
    mins[minIndex] = -min;
    return 0;
  }
  let iscale = f32(nmax / f32(max - min));
  let scale = f32(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[xOff + i]!;
    const l = clamp(nearestInt(f32(iscale * f32(xi - min))), 0, nmax);
    L[lOff + i] = l;
    const diff = f32(f32(f32(scale * l) + min) - xi);
    bestError = f32(bestError + f32(weights[i]! * (useMad ? Math.abs(diff) : f32(diff * diff))));
  }
  if (nstep < 1) {
    mins[minIndex] = -min;
    return scale;
  }
  for (let is = 0; is <= nstep; is++) {
    // (max - min) uses the min of the best candidate so far, as ggml does.
    iscale = f32(f32(f32(rmin + f32(rdelta * is)) + nmax) / f32(max - min));
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[xOff + i]!;
      const l = clamp(nearestInt(f32(iscale * f32(xi - min))), 0, nmax);
      laux[i] = l;
      const wl = f32(weights[i]! * l);
      sumL = f32(sumL + wl);
      sumL2 = f32(sumL2 + f32(wl * l));
      sumXL = f32(sumXL + f32(wl * xi));
    }
    const D = f32(f32(sumW * sumL2) - f32(sumL * sumL));
    if (D > 0) {
      let thisScale = f32(f32(f32(sumW * sumXL) - f32(sumX * sumL)) / D);
      let thisMin = f32(f32(f32(sumL2 * sumX) - f32(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = f32(sumXL / sumL2);
      }
      let curError = 0;
      for (let i = 0; i < n; i++) {
        const diff = f32(f32(f32(thisScale * laux[i]!) + thisMin) - x[xOff + i]!);
        curError = f32(curError + f32(weights[i]! * (useMad ? Math.abs(diff) : f32(diff * diff))));
      }
      if (curError < bestError) {
        for (let i = 0; i < n; i++) L[lOff + i] = laux[i]!;
        bestError = curError;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  mins[minIndex] = -min;
  return scale;
}

// Q4_K and Q5_K store 8 six-bit scales and 8 six-bit mins in 12 bytes (ggml's get_scale_min_k4):
//   bytes 0-3:  scale j (j < 4) in bits 0-5;           bits 6-7 = bits 4-5 of scale j+4
//   bytes 4-7:  min j   (j < 4) in bits 0-5;           bits 6-7 = bits 4-5 of min j+4
//   bytes 8-11: scale j+4 bits 0-3 | min j+4 bits 0-3 << 4

/** Six-bit scale of sub-block j (0..7) from the 12 packed scale bytes at `off`. */
function packedScaleK4(bytes: Uint8Array, off: number, j: number): number {
  return j < 4 ? bytes[off + j]! & 63 : (bytes[off + j + 4]! & 0xf) | ((bytes[off + j - 4]! >> 6) << 4);
}

/** Six-bit min of sub-block j (0..7) from the 12 packed scale bytes at `off`. */
function packedMinK4(bytes: Uint8Array, off: number, j: number): number {
  return j < 4 ? bytes[off + j + 4]! & 63 : (bytes[off + j + 4]! >> 4) | ((bytes[off + j]! >> 6) << 4);
}

/** Packs 8 (scale, min) pairs of 6 bits each into 12 bytes at `off`; every byte is assigned before any |=. */
function packScalesK4(bytes: Uint8Array, off: number, ls: Uint8Array, lm: Uint8Array): void {
  for (let j = 0; j < 8; j++) {
    if (j < 4) {
      bytes[off + j] = ls[j]!;
      bytes[off + j + 4] = lm[j]!;
    } else {
      bytes[off + j + 4] = (ls[j]! & 0xf) | ((lm[j]! & 0xf) << 4);
      bytes[off + j - 4] |= (ls[j]! >> 4) << 6;
      bytes[off + j] |= (lm[j]! >> 4) << 6;
    }
  }
}

// Scratch shared by the quantizers (sized for the largest use).
const levels = new Uint8Array(QK_K); // [256] u8: chosen level of each weight of the block
const levelsSigned = new Int8Array(QK_K); // [256] i8: Q3_K's signed levels during the search
const laux = new Uint8Array(32); // [32] u8: candidate levels inside makeQkx2Quants
const subWeights = new Float32Array(32); // [32] f32: per-weight error weights of one sub-block
const subScales = new Float32Array(16); // [nSub] f32: float scale of each sub-block
const subMins = new Float32Array(16); // [nSub] f32: float min (positive) of each sub-block
const packedScales = new Uint8Array(8); // [8] u8: quantized 6-bit scales (Q4_K/Q5_K)
const packedMins = new Uint8Array(8); // [8] u8: quantized 6-bit mins (Q4_K/Q5_K)

function assertBlockBytes(type: GgmlTypeName, layoutBytes: number): void {
  if (BLOCK_GEOMETRY[type].blockSize !== QK_K || BLOCK_GEOMETRY[type].typeSize !== layoutBytes) {
    throw new Error(`${type}: layout has ${layoutBytes} bytes per block, ggml-types says ${BLOCK_GEOMETRY[type].typeSize}`);
  }
}

// The 2-bit fields of Q2_K and Q3_K: in each half (128 weights) byte l (0..31) of the 32 qs bytes holds
// weights l, l+32, l+64, l+96 in bits 0-1, 2-3, 4-5, 6-7.
function packCrumbs(bytes: Uint8Array, qsOff: number, L: Uint8Array): void {
  for (let half = 0; half < 2; half++) {
    const j = 128 * half;
    for (let l = 0; l < 32; l++) {
      bytes[qsOff + 32 * half + l] = L[j + l]! | (L[j + l + 32]! << 2) | (L[j + l + 64]! << 4) | (L[j + l + 96]! << 6);
    }
  }
}

// ===================================================================================================
// Q2_K: x = d·scale·q - dmin·min, 16 sub-blocks of 16 weights, q in 0..3, 4-bit scale and min
// ===================================================================================================
//   offset  0: scales[16]  u8   sub-block j: scale in bits 0-3, min in bits 4-7
//   offset 16: qs[64]      u8   2-bit levels (packCrumbs order)
//   offset 80: d           f16  super-block scale of the scales
//   offset 82: dmin        f16  super-block scale of the mins
const Q2_K_SCALES = 0, Q2_K_QS = 16, Q2_K_D = 80, Q2_K_DMIN = 82;
export const Q2_K_BLOCK_BYTES = 16 + 64 + 2 + 2; // 84 → 2.625 bits per weight
assertBlockBytes("Q2_K", Q2_K_BLOCK_BYTES);

function quantizeBlockQ2K(x: Float32Array, xOff: number, y: Uint8Array, yOff: number): void {
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 16; j++) {
    for (let l = 0; l < 16; l++) subWeights[l] = Math.abs(x[xOff + 16 * j + l]!);
    subScales[j] = makeQkx2Quants(16, 3, x, xOff + 16 * j, subWeights, levels, 16 * j, subMins, j, -0.5, TENTH, 15, true);
    if (subScales[j]! > maxScale) maxScale = subScales[j]!;
    if (subMins[j]! > maxMin) maxMin = subMins[j]!;
  }
  const q4scale = 15;
  if (maxScale > 0) {
    const iscale = f32(q4scale / maxScale);
    for (let j = 0; j < 16; j++) y[yOff + Q2_K_SCALES + j] = nearestInt(f32(iscale * subScales[j]!));
    writeHalf(y, yOff + Q2_K_D, f32(maxScale / q4scale));
  } else {
    y.fill(0, yOff + Q2_K_SCALES, yOff + Q2_K_SCALES + 16);
    writeHalf(y, yOff + Q2_K_D, 0);
  }
  if (maxMin > 0) {
    const iscale = f32(q4scale / maxMin);
    for (let j = 0; j < 16; j++) y[yOff + Q2_K_SCALES + j] |= nearestInt(f32(iscale * subMins[j]!)) << 4;
    writeHalf(y, yOff + Q2_K_DMIN, f32(maxMin / q4scale));
  } else {
    writeHalf(y, yOff + Q2_K_DMIN, 0);
  }
  // Re-derive the levels against the scales actually stored (rounded to 4 bits and fp16).
  const dAll = readHalf(y, yOff + Q2_K_D);
  const dminAll = readHalf(y, yOff + Q2_K_DMIN);
  for (let j = 0; j < 16; j++) {
    const sc = y[yOff + Q2_K_SCALES + j]!;
    const d = f32(dAll * (sc & 0xf));
    if (d === 0) continue;
    const dm = f32(dminAll * (sc >> 4));
    for (let ii = 0; ii < 16; ii++) {
      levels[16 * j + ii] = clamp(nearestInt(f32(f32(x[xOff + 16 * j + ii]! + dm) / d)), 0, 3);
    }
  }
  packCrumbs(y, yOff + Q2_K_QS, levels);
}

function dequantizeBlockQ2K(y: Uint8Array, yOff: number, out: Float32Array, outOff: number): void {
  const d = readHalf(y, yOff + Q2_K_D);
  const dmin = readHalf(y, yOff + Q2_K_DMIN);
  for (let s = 0; s < 16; s++) {
    const sc = y[yOff + Q2_K_SCALES + s]!;
    const dl = f32(d * (sc & 0xf));
    const ml = f32(dmin * (sc >> 4));
    // Sub-block s = weights 16s..16s+15: half h = s>>3, bit pair (s>>1)&3, bytes 16·(s&1)..+15 of that half.
    const qOff = yOff + Q2_K_QS + 32 * (s >> 3) + 16 * (s & 1);
    const shift = 2 * ((s >> 1) & 3);
    for (let l = 0; l < 16; l++) out[outOff + 16 * s + l] = f32(dl * ((y[qOff + l]! >> shift) & 3)) - ml;
  }
}

function dotBlockQ2K(y: Uint8Array, yOff: number, x: Float32Array, xOff: number): number {
  const d = readHalf(y, yOff + Q2_K_D);
  const dmin = readHalf(y, yOff + Q2_K_DMIN);
  let sum = 0;
  // Each qs byte holds 4 weights 32 apart: read it once, feed four accumulators. Weights l..l+15 of
  // the j-th 32-weight group in half h belong to sub-block 8h + 2j + part.
  for (let h = 0; h < 2; h++) {
    for (let part = 0; part < 2; part++) {
      const qOff = yOff + Q2_K_QS + 32 * h + 16 * part;
      const xb = xOff + 128 * h + 16 * part;
      let q0 = 0, q1 = 0, q2 = 0, q3 = 0, s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let l = 0; l < 16; l++) {
        const q = y[qOff + l]!;
        const x0 = x[xb + l]!, x1 = x[xb + 32 + l]!, x2 = x[xb + 64 + l]!, x3 = x[xb + 96 + l]!;
        q0 += (q & 3) * x0; q1 += ((q >> 2) & 3) * x1; q2 += ((q >> 4) & 3) * x2; q3 += (q >> 6) * x3;
        s0 += x0; s1 += x1; s2 += x2; s3 += x3;
      }
      const sOff = yOff + Q2_K_SCALES + 8 * h + part;
      const c0 = y[sOff]!, c1 = y[sOff + 2]!, c2 = y[sOff + 4]!, c3 = y[sOff + 6]!;
      sum += d * ((c0 & 0xf) * q0 + (c1 & 0xf) * q1 + (c2 & 0xf) * q2 + (c3 & 0xf) * q3)
        - dmin * ((c0 >> 4) * s0 + (c1 >> 4) * s1 + (c2 >> 4) * s2 + (c3 >> 4) * s3);
    }
  }
  return sum;
}

// ===================================================================================================
// Q3_K: x = d·(scale-32)·(q-4), 16 sub-blocks of 16 weights, q in 0..7, 6-bit signed scales
// ===================================================================================================
//   offset   0: hmask[32]   u8   high bit of q: weight w → byte w%32, bit w/32
//   offset  32: qs[64]      u8   low 2 bits of q (packCrumbs order)
//   offset  96: scales[12]  u8   6-bit scale+32 of sub-block j: low 4 bits in byte j%8 (bits 0-3 for
//                                j < 8, bits 4-7 for j >= 8), high 2 bits in byte 8 + j%4, bits 2·(j/4)
//   offset 108: d           f16  super-block scale
const Q3_K_HMASK = 0, Q3_K_QS = 32, Q3_K_SCALES = 96, Q3_K_D = 108;
export const Q3_K_BLOCK_BYTES = 32 + 64 + 12 + 2; // 110 → 3.4375 bits per weight
assertBlockBytes("Q3_K", Q3_K_BLOCK_BYTES);

/** Signed 6-bit scale (-32..31) of sub-block j (0..15) from Q3_K's 12 scale bytes at `off`. */
function scaleQ3K(bytes: Uint8Array, off: number, j: number): number {
  const low = j < 8 ? bytes[off + j]! & 0xf : bytes[off + j - 8]! >> 4;
  const high = (bytes[off + 8 + (j % 4)]! >> (2 * (j >> 2))) & 3;
  return (low | (high << 4)) - 32;
}

function quantizeBlockQ3K(x: Float32Array, xOff: number, y: Uint8Array, yOff: number): void {
  let maxScale = 0;
  let amax = 0;
  for (let j = 0; j < 16; j++) {
    subScales[j] = makeQ3Quants(16, 4, x, xOff + 16 * j, levelsSigned, 16 * j);
    const scale = Math.abs(subScales[j]!);
    if (scale > amax) { amax = scale; maxScale = subScales[j]!; }
  }
  const sOff = yOff + Q3_K_SCALES;
  y.fill(0, sOff, sOff + 12);
  if (maxScale !== 0) {
    const iscale = f32(-32 / maxScale);
    for (let j = 0; j < 16; j++) {
      const l8 = (nearestInt(f32(iscale * subScales[j]!)) << 24) >> 24; // C stores it in an int8_t first
      const l = clamp(l8, -32, 31) + 32;
      if (j < 8) y[sOff + j] = l & 0xf;
      else y[sOff + j - 8] |= (l & 0xf) << 4;
      y[sOff + 8 + (j % 4)] |= (l >> 4) << (2 * (j >> 2));
    }
    writeHalf(y, yOff + Q3_K_D, f32(1 / iscale));
  } else {
    writeHalf(y, yOff + Q3_K_D, 0);
  }
  const dAll = readHalf(y, yOff + Q3_K_D);
  for (let j = 0; j < 16; j++) {
    const d = f32(dAll * scaleQ3K(y, sOff, j));
    if (d === 0) continue;
    for (let ii = 0; ii < 16; ii++) {
      levelsSigned[16 * j + ii] = clamp(nearestInt(f32(x[xOff + 16 * j + ii]! / d)), -4, 3) + 4;
    }
  }
  y.fill(0, yOff + Q3_K_HMASK, yOff + Q3_K_HMASK + 32);
  for (let w = 0; w < QK_K; w++) {
    let l = levelsSigned[w]!;
    if (l > 3) {
      y[yOff + Q3_K_HMASK + (w % 32)] |= 1 << (w >> 5);
      l -= 4;
    }
    levels[w] = l;
  }
  packCrumbs(y, yOff + Q3_K_QS, levels);
}

function dequantizeBlockQ3K(y: Uint8Array, yOff: number, out: Float32Array, outOff: number): void {
  const dAll = readHalf(y, yOff + Q3_K_D);
  for (let s = 0; s < 16; s++) {
    const dl = f32(dAll * scaleQ3K(y, yOff + Q3_K_SCALES, s));
    const qOff = yOff + Q3_K_QS + 32 * (s >> 3) + 16 * (s & 1);
    const hOff = yOff + Q3_K_HMASK + 16 * (s & 1);
    const shift = 2 * ((s >> 1) & 3);
    const hbit = 1 << (s >> 1);
    for (let l = 0; l < 16; l++) {
      const q = ((y[qOff + l]! >> shift) & 3) - (y[hOff + l]! & hbit ? 0 : 4);
      out[outOff + 16 * s + l] = dl * q;
    }
  }
}

function dotBlockQ3K(y: Uint8Array, yOff: number, x: Float32Array, xOff: number): number {
  const dAll = readHalf(y, yOff + Q3_K_D);
  const sOff = yOff + Q3_K_SCALES;
  let sum = 0;
  // As Q2_K: one qs byte and one hmask byte give 4 weights 32 apart (hmask bit 4h + j for group j).
  for (let h = 0; h < 2; h++) {
    for (let part = 0; part < 2; part++) {
      const qOff = yOff + Q3_K_QS + 32 * h + 16 * part;
      const hOff = yOff + Q3_K_HMASK + 16 * part;
      const xb = xOff + 128 * h + 16 * part;
      let a0 = 0, a1 = 0, a2 = 0, a3 = 0;
      for (let l = 0; l < 16; l++) {
        const q = y[qOff + l]!;
        const hm = y[hOff + l]! >> (4 * h);
        a0 += (((q & 3) | ((hm & 1) << 2)) - 4) * x[xb + l]!;
        a1 += ((((q >> 2) & 3) | ((hm & 2) << 1)) - 4) * x[xb + 32 + l]!;
        a2 += ((((q >> 4) & 3) | (hm & 4)) - 4) * x[xb + 64 + l]!;
        a3 += (((q >> 6) | ((hm & 8) >> 1)) - 4) * x[xb + 96 + l]!;
      }
      const s = 8 * h + part;
      sum += scaleQ3K(y, sOff, s) * a0 + scaleQ3K(y, sOff, s + 2) * a1 + scaleQ3K(y, sOff, s + 4) * a2 + scaleQ3K(y, sOff, s + 6) * a3;
    }
  }
  return dAll * sum;
}

// ===================================================================================================
// Q4_K: x = d·scale·q - dmin·min, 8 sub-blocks of 32 weights, q in 0..15, 6-bit scales and mins
// ===================================================================================================
//   offset  0: d           f16  super-block scale of the scales
//   offset  2: dmin        f16  super-block scale of the mins
//   offset  4: scales[12]  u8   8 six-bit scales + 8 six-bit mins (packScalesK4)
//   offset 16: qs[128]     u8   4-bit levels: 64-weight chunk c = bytes 32c..32c+31,
//                               weight 64c+l in the low nibble, weight 64c+32+l in the high nibble
const Q4_K_D = 0, Q4_K_DMIN = 2, Q4_K_SCALES = 4, Q4_K_QS = 16;
export const Q4_K_BLOCK_BYTES = 2 + 2 + 12 + 128; // 144 → 4.5 bits per weight
assertBlockBytes("Q4_K", Q4_K_BLOCK_BYTES);

/**
 * The part Q4_K and Q5_K share: per 32-weight sub-block, weights av|x| + |x| and makeQkx2Quants,
 * then 6-bit scales/mins against fp16 d/dmin, then levels re-derived against the stored scales.
 * Leaves the levels (0..nmax) in `levels`.
 */
function quantizeScalesAndLevelsK4(
  x: Float32Array, xOff: number, y: Uint8Array, yOff: number, nmax: number, rmin: number, nstep: number,
): void {
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 8; j++) {
    const sOff = xOff + 32 * j;
    let sumX2 = 0;
    for (let l = 0; l < 32; l++) sumX2 = f32(sumX2 + f32(x[sOff + l]! * x[sOff + l]!));
    const avX = f32(Math.sqrt(f32(sumX2 / 32)));
    for (let l = 0; l < 32; l++) subWeights[l] = f32(avX + Math.abs(x[sOff + l]!));
    subScales[j] = makeQkx2Quants(32, nmax, x, sOff, subWeights, levels, 32 * j, subMins, j, rmin, TENTH, nstep, false);
    if (subScales[j]! > maxScale) maxScale = subScales[j]!;
    if (subMins[j]! > maxMin) maxMin = subMins[j]!;
  }
  const invScale = maxScale > 0 ? f32(63 / maxScale) : 0;
  const invMin = maxMin > 0 ? f32(63 / maxMin) : 0;
  for (let j = 0; j < 8; j++) {
    // C stores nearest_int into a uint8_t before taking MIN(63, ·).
    packedScales[j] = Math.min(63, nearestInt(f32(invScale * subScales[j]!)) & 0xff);
    packedMins[j] = Math.min(63, nearestInt(f32(invMin * subMins[j]!)) & 0xff);
  }
  packScalesK4(y, yOff + Q4_K_SCALES, packedScales, packedMins);
  const dAll = writeHalf(y, yOff + Q4_K_D, f32(maxScale / 63));
  const dminAll = writeHalf(y, yOff + Q4_K_DMIN, f32(maxMin / 63));
  for (let j = 0; j < 8; j++) {
    const d = f32(dAll * packedScaleK4(y, yOff + Q4_K_SCALES, j));
    if (d === 0) continue;
    const dm = f32(dminAll * packedMinK4(y, yOff + Q4_K_SCALES, j));
    for (let ii = 0; ii < 32; ii++) {
      levels[32 * j + ii] = clamp(nearestInt(f32(f32(x[xOff + 32 * j + ii]! + dm) / d)), 0, nmax);
    }
  }
}

function quantizeBlockQ4K(x: Float32Array, xOff: number, y: Uint8Array, yOff: number): void {
  quantizeScalesAndLevelsK4(x, xOff, y, yOff, 15, -1, 20);
  for (let c = 0; c < 4; c++) {
    for (let l = 0; l < 32; l++) y[yOff + Q4_K_QS + 32 * c + l] = levels[64 * c + l]! | (levels[64 * c + 32 + l]! << 4);
  }
}

function dequantizeBlockQ4K(y: Uint8Array, yOff: number, out: Float32Array, outOff: number): void {
  const d = readHalf(y, yOff + Q4_K_D);
  const dmin = readHalf(y, yOff + Q4_K_DMIN);
  for (let c = 0; c < 4; c++) {
    const d1 = f32(d * packedScaleK4(y, yOff + Q4_K_SCALES, 2 * c));
    const m1 = f32(dmin * packedMinK4(y, yOff + Q4_K_SCALES, 2 * c));
    const d2 = f32(d * packedScaleK4(y, yOff + Q4_K_SCALES, 2 * c + 1));
    const m2 = f32(dmin * packedMinK4(y, yOff + Q4_K_SCALES, 2 * c + 1));
    const qOff = yOff + Q4_K_QS + 32 * c;
    const o = outOff + 64 * c;
    for (let l = 0; l < 32; l++) out[o + l] = f32(d1 * (y[qOff + l]! & 0xf)) - m1;
    for (let l = 0; l < 32; l++) out[o + 32 + l] = f32(d2 * (y[qOff + l]! >> 4)) - m2;
  }
}

function dotBlockQ4K(y: Uint8Array, yOff: number, x: Float32Array, xOff: number): number {
  const d = readHalf(y, yOff + Q4_K_D);
  const dmin = readHalf(y, yOff + Q4_K_DMIN);
  let sum = 0;
  for (let c = 0; c < 4; c++) {
    const qOff = yOff + Q4_K_QS + 32 * c;
    const xs = xOff + 64 * c;
    let qx1 = 0, qx2 = 0, sx1 = 0, sx2 = 0;
    for (let l = 0; l < 32; l++) {
      const q = y[qOff + l]!;
      const xa = x[xs + l]!;
      const xb = x[xs + 32 + l]!;
      qx1 += (q & 0xf) * xa;
      qx2 += (q >> 4) * xb;
      sx1 += xa;
      sx2 += xb;
    }
    const sOff = yOff + Q4_K_SCALES;
    sum += d * (packedScaleK4(y, sOff, 2 * c) * qx1 + packedScaleK4(y, sOff, 2 * c + 1) * qx2)
      - dmin * (packedMinK4(y, sOff, 2 * c) * sx1 + packedMinK4(y, sOff, 2 * c + 1) * sx2);
  }
  return sum;
}

// ===================================================================================================
// Q5_K: x = d·scale·q - dmin·min, 8 sub-blocks of 32 weights, q in 0..31, 6-bit scales and mins
// ===================================================================================================
//   offset  0: d           f16  super-block scale of the scales
//   offset  2: dmin        f16  super-block scale of the mins
//   offset  4: scales[12]  u8   8 six-bit scales + 8 six-bit mins (packScalesK4)
//   offset 16: qh[32]      u8   bit 4 of q: weight 64c+l → byte l, bit 2c; weight 64c+32+l → bit 2c+1
//   offset 48: qs[128]     u8   low 4 bits of q, laid out as Q4_K's qs
const Q5_K_D = 0, Q5_K_DMIN = 2, Q5_K_SCALES = 4, Q5_K_QH = 16, Q5_K_QS = 48;
export const Q5_K_BLOCK_BYTES = 2 + 2 + 12 + 32 + 128; // 176 → 5.5 bits per weight
assertBlockBytes("Q5_K", Q5_K_BLOCK_BYTES);

function quantizeBlockQ5K(x: Float32Array, xOff: number, y: Uint8Array, yOff: number): void {
  quantizeScalesAndLevelsK4(x, xOff, y, yOff, 31, -0.5, 15);
  y.fill(0, yOff + Q5_K_QH, yOff + Q5_K_QH + 32);
  for (let c = 0; c < 4; c++) {
    for (let l = 0; l < 32; l++) {
      const lo = levels[64 * c + l]!;
      const hi = levels[64 * c + 32 + l]!;
      y[yOff + Q5_K_QS + 32 * c + l] = (lo & 0xf) | ((hi & 0xf) << 4);
      y[yOff + Q5_K_QH + l] |= ((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1));
    }
  }
}

function dequantizeBlockQ5K(y: Uint8Array, yOff: number, out: Float32Array, outOff: number): void {
  const d = readHalf(y, yOff + Q5_K_D);
  const dmin = readHalf(y, yOff + Q5_K_DMIN);
  for (let c = 0; c < 4; c++) {
    const d1 = f32(d * packedScaleK4(y, yOff + Q5_K_SCALES, 2 * c));
    const m1 = f32(dmin * packedMinK4(y, yOff + Q5_K_SCALES, 2 * c));
    const d2 = f32(d * packedScaleK4(y, yOff + Q5_K_SCALES, 2 * c + 1));
    const m2 = f32(dmin * packedMinK4(y, yOff + Q5_K_SCALES, 2 * c + 1));
    const qOff = yOff + Q5_K_QS + 32 * c;
    const o = outOff + 64 * c;
    for (let l = 0; l < 32; l++) {
      const h = y[yOff + Q5_K_QH + l]! >> (2 * c);
      out[o + l] = f32(d1 * ((y[qOff + l]! & 0xf) | ((h & 1) << 4))) - m1;
      out[o + 32 + l] = f32(d2 * ((y[qOff + l]! >> 4) | ((h & 2) << 3))) - m2;
    }
  }
}

function dotBlockQ5K(y: Uint8Array, yOff: number, x: Float32Array, xOff: number): number {
  const d = readHalf(y, yOff + Q5_K_D);
  const dmin = readHalf(y, yOff + Q5_K_DMIN);
  let sum = 0;
  for (let c = 0; c < 4; c++) {
    const qOff = yOff + Q5_K_QS + 32 * c;
    const xs = xOff + 64 * c;
    let qx1 = 0, qx2 = 0, sx1 = 0, sx2 = 0;
    for (let l = 0; l < 32; l++) {
      const q = y[qOff + l]!;
      const h = y[yOff + Q5_K_QH + l]! >> (2 * c);
      const xa = x[xs + l]!;
      const xb = x[xs + 32 + l]!;
      qx1 += ((q & 0xf) | ((h & 1) << 4)) * xa;
      qx2 += ((q >> 4) | ((h & 2) << 3)) * xb;
      sx1 += xa;
      sx2 += xb;
    }
    const sOff = yOff + Q5_K_SCALES;
    sum += d * (packedScaleK4(y, sOff, 2 * c) * qx1 + packedScaleK4(y, sOff, 2 * c + 1) * qx2)
      - dmin * (packedMinK4(y, sOff, 2 * c) * sx1 + packedMinK4(y, sOff, 2 * c + 1) * sx2);
  }
  return sum;
}

// ===================================================================================================
// Q6_K: x = d·scale·(q-32), 16 sub-blocks of 16 weights, q in 0..63, 8-bit signed scales
// ===================================================================================================
//   offset   0: ql[128]     u8   low 4 bits of q. In half h (128 weights), byte 64h+l (l < 64) holds
//                                weight 128h+l in the low nibble and weight 128h+64+l in the high one
//   offset 128: qh[64]      u8   high 2 bits of q: byte 32h+l holds weights 128h+l, +32, +64, +96
//                                in bits 0-1, 2-3, 4-5, 6-7
//   offset 192: scales[16]  i8   scale of sub-block j (16 weights)
//   offset 208: d           f16  super-block scale
const Q6_K_QL = 0, Q6_K_QH = 128, Q6_K_SCALES = 192, Q6_K_D = 208;
export const Q6_K_BLOCK_BYTES = 128 + 64 + 16 + 2; // 210 → 6.5625 bits per weight
assertBlockBytes("Q6_K", Q6_K_BLOCK_BYTES);

function quantizeBlockQ6K(x: Float32Array, xOff: number, y: Uint8Array, yOff: number): void {
  let maxScale = 0;
  let maxAbsScale = 0;
  for (let j = 0; j < 16; j++) {
    const scale = makeQxQuants(16, 32, x, xOff + 16 * j, levels, 16 * j);
    subScales[j] = scale;
    const absScale = Math.abs(scale);
    if (absScale > maxAbsScale) { maxAbsScale = absScale; maxScale = scale; }
  }
  if (maxAbsScale < GROUP_MAX_EPS) {
    y.fill(0, yOff, yOff + Q6_K_BLOCK_BYTES);
    return;
  }
  const iscale = f32(-128 / maxScale);
  const dAll = writeHalf(y, yOff + Q6_K_D, f32(1 / iscale));
  for (let j = 0; j < 16; j++) y[yOff + Q6_K_SCALES + j] = Math.min(127, nearestInt(f32(iscale * subScales[j]!)));
  for (let j = 0; j < 16; j++) {
    const sc = (y[yOff + Q6_K_SCALES + j]! << 24) >> 24;
    const d = f32(dAll * sc);
    if (d === 0) continue;
    for (let ii = 0; ii < 16; ii++) {
      levels[16 * j + ii] = clamp(nearestInt(f32(x[xOff + 16 * j + ii]! / d)), -32, 31) + 32;
    }
  }
  for (let h = 0; h < 2; h++) {
    const j = 128 * h;
    const ql = yOff + Q6_K_QL + 64 * h;
    const qh = yOff + Q6_K_QH + 32 * h;
    for (let l = 0; l < 32; l++) {
      const q1 = levels[j + l]!, q2 = levels[j + l + 32]!, q3 = levels[j + l + 64]!, q4 = levels[j + l + 96]!;
      y[ql + l] = (q1 & 0xf) | ((q3 & 0xf) << 4);
      y[ql + l + 32] = (q2 & 0xf) | ((q4 & 0xf) << 4);
      y[qh + l] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6);
    }
  }
}

function dequantizeBlockQ6K(y: Uint8Array, yOff: number, out: Float32Array, outOff: number): void {
  const d = readHalf(y, yOff + Q6_K_D);
  for (let h = 0; h < 2; h++) {
    const ql = yOff + Q6_K_QL + 64 * h;
    const qh = yOff + Q6_K_QH + 32 * h;
    const sc = yOff + Q6_K_SCALES + 8 * h;
    const o = outOff + 128 * h;
    for (let l = 0; l < 32; l++) {
      const is = l >> 4;
      const hb = y[qh + l]!;
      const q1 = ((y[ql + l]! & 0xf) | ((hb & 3) << 4)) - 32;
      const q2 = ((y[ql + l + 32]! & 0xf) | (((hb >> 2) & 3) << 4)) - 32;
      const q3 = ((y[ql + l]! >> 4) | (((hb >> 4) & 3) << 4)) - 32;
      const q4 = ((y[ql + l + 32]! >> 4) | (((hb >> 6) & 3) << 4)) - 32;
      out[o + l] = f32(d * ((y[sc + is]! << 24) >> 24)) * q1;
      out[o + l + 32] = f32(d * ((y[sc + is + 2]! << 24) >> 24)) * q2;
      out[o + l + 64] = f32(d * ((y[sc + is + 4]! << 24) >> 24)) * q3;
      out[o + l + 96] = f32(d * ((y[sc + is + 6]! << 24) >> 24)) * q4;
    }
  }
}

function dotBlockQ6K(y: Uint8Array, yOff: number, x: Float32Array, xOff: number): number {
  const d = readHalf(y, yOff + Q6_K_D);
  let sum = 0;
  // Bytes ql[l], ql[l+32] and qh[l] of half h give the 4 weights 128h + l + {0, 32, 64, 96}; weights
  // l..l+15 of group j belong to sub-block 8h + 2j + part.
  for (let h = 0; h < 2; h++) {
    for (let part = 0; part < 2; part++) {
      const ql = yOff + Q6_K_QL + 64 * h + 16 * part;
      const qh = yOff + Q6_K_QH + 32 * h + 16 * part;
      const xb = xOff + 128 * h + 16 * part;
      let a0 = 0, a1 = 0, a2 = 0, a3 = 0;
      for (let l = 0; l < 16; l++) {
        const lo = y[ql + l]!, hi = y[ql + 32 + l]!, hb = y[qh + l]!;
        a0 += (((lo & 0xf) | ((hb & 3) << 4)) - 32) * x[xb + l]!;
        a1 += (((hi & 0xf) | ((hb & 0xc) << 2)) - 32) * x[xb + 32 + l]!;
        a2 += (((lo >> 4) | (hb & 0x30)) - 32) * x[xb + 64 + l]!;
        a3 += (((hi >> 4) | ((hb & 0xc0) >> 2)) - 32) * x[xb + 96 + l]!;
      }
      const sc = yOff + Q6_K_SCALES + 8 * h + part;
      sum += ((y[sc]! << 24) >> 24) * a0 + ((y[sc + 2]! << 24) >> 24) * a1
        + ((y[sc + 4]! << 24) >> 24) * a2 + ((y[sc + 6]! << 24) >> 24) * a3;
    }
  }
  return d * sum;
}

// ===================================================================================================
// Row functions and the QuantFormat objects
// ===================================================================================================

type BlockQuantizer = (x: Float32Array, xOff: number, y: Uint8Array, yOff: number) => void;
type BlockDequantizer = (y: Uint8Array, yOff: number, out: Float32Array, outOff: number) => void;
type BlockDot = (y: Uint8Array, yOff: number, x: Float32Array, xOff: number) => number;

function checkWholeBlocks(type: GgmlTypeName, n: number): number {
  if (!Number.isInteger(n) || n < 0 || n % QK_K !== 0) {
    throw new RangeError(`${type}: a row of ${n} weights is not a whole number of ${QK_K}-weight super-blocks`);
  }
  return n / QK_K;
}

function checkBytes(type: GgmlTypeName, bytes: Uint8Array, offset: number, nBlocks: number, typeSize: number): void {
  if (!Number.isInteger(offset) || offset < 0 || offset + nBlocks * typeSize > bytes.length) {
    throw new RangeError(`${type}: ${nBlocks} blocks of ${typeSize} bytes at offset ${offset} do not fit in ${bytes.length} bytes`);
  }
}

function kQuantFormat(
  name: GgmlTypeName, quantizeBlock: BlockQuantizer, dequantizeBlock: BlockDequantizer, dotBlock: BlockDot,
): QuantFormat {
  const typeSize = BLOCK_GEOMETRY[name].typeSize;
  return {
    name,
    blockSize: QK_K,
    typeSize,
    bitsPerWeight: bitsPerWeight(name),
    quantizeRow(src: Float32Array, dst: Uint8Array, dstOffset = 0): void {
      const nBlocks = checkWholeBlocks(name, src.length);
      checkBytes(name, dst, dstOffset, nBlocks, typeSize);
      for (let b = 0; b < nBlocks; b++) quantizeBlock(src, b * QK_K, dst, dstOffset + b * typeSize);
    },
    dequantizeRow(src: Uint8Array, srcOffset: number, dst: Float32Array): void {
      const nBlocks = checkWholeBlocks(name, dst.length);
      checkBytes(name, src, srcOffset, nBlocks, typeSize);
      for (let b = 0; b < nBlocks; b++) dequantizeBlock(src, srcOffset + b * typeSize, dst, b * QK_K);
    },
    dotRow(src: Uint8Array, srcOffset: number, x: Float32Array, xOffset: number, n: number): number {
      const nBlocks = checkWholeBlocks(name, n);
      if (xOffset < 0 || xOffset + n > x.length) {
        throw new RangeError(`${name}: dot of ${n} weights needs x[${xOffset}..${xOffset + n}) but x has ${x.length}`);
      }
      checkBytes(name, src, srcOffset, nBlocks, typeSize);
      let sum = 0;
      for (let b = 0; b < nBlocks; b++) sum += dotBlock(src, srcOffset + b * typeSize, x, xOffset + b * QK_K);
      return sum;
    },
  };
}

export const Q2_K = kQuantFormat("Q2_K", quantizeBlockQ2K, dequantizeBlockQ2K, dotBlockQ2K);
export const Q3_K = kQuantFormat("Q3_K", quantizeBlockQ3K, dequantizeBlockQ3K, dotBlockQ3K);
export const Q4_K = kQuantFormat("Q4_K", quantizeBlockQ4K, dequantizeBlockQ4K, dotBlockQ4K);
export const Q5_K = kQuantFormat("Q5_K", quantizeBlockQ5K, dequantizeBlockQ5K, dotBlockQ5K);
export const Q6_K = kQuantFormat("Q6_K", quantizeBlockQ6K, dequantizeBlockQ6K, dotBlockQ6K);

/** The five k-quant formats, registered by lab/quant/index.ts. */
export const K_QUANT_FORMATS: QuantFormat[] = [Q2_K, Q3_K, Q4_K, Q5_K, Q6_K];
