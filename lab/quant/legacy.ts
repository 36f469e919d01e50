// The "legacy" block formats of ggml: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1. A row is cut into blocks of 32
// weights; each block stores one fp16 scale d (and for the _1 kinds an fp16 offset m) plus one small
// integer per weight:  weight ≈ q·d  (symmetric, _0)   or   weight ≈ q·d + m  (asymmetric, _1).
//
// The quantizers reproduce ggml's reference quantizers (quantize_row_qX_Y_ref in ggml-quants.c, what
// llama-quantize runs when there is no importance matrix) bit for bit. ggml computes in float32, so
// every arithmetic step below that C does in float is rounded with Math.fround; one correctly rounded
// double operation on f32 inputs, rounded to f32, equals the f32 operation.
//
// Nibble order, the thing students get wrong: in byte j of qs, the LOW nibble is weight j and the HIGH
// nibble is weight j+16 (the two halves of the block, not neighbours). For the 5-bit kinds the fifth
// bit of weight j is bit j of the 32-bit little-endian qh.
import { BLOCK_GEOMETRY, type GgmlTypeName } from "../ggml-types.ts";
import { readFp16, writeFp16 } from "./float.ts";
import type { QuantFormat } from "./index.ts";

const fround = Math.fround;
const QK = 32; // weights per block in every legacy format
const HALF = QK / 2;

/** The layout constants below must agree with ggml's block sizes (lab/ggml-types.ts): checked at load. */
function assertBlock(name: GgmlTypeName, typeSize: number): void {
  const g = BLOCK_GEOMETRY[name];
  if (g.blockSize !== QK || g.typeSize !== typeSize) {
    throw new Error(`${name}: layout says ${QK} weights in ${typeSize} bytes, ggml says ${g.blockSize} in ${g.typeSize}`);
  }
}

function checkRow(name: string, n: number): void {
  if (n % QK !== 0) throw new RangeError(`${name}: row length ${n} is not a multiple of ${QK}`);
}

/** C's roundf: halves away from zero (Math.round sends -2.5 to -2). |x| + 0.5 is exact in double for an f32 x. */
function roundAwayFromZero(x: number): number {
  const a = Math.floor(Math.abs(x) + 0.5);
  return x < 0 ? -a : a;
}

/** The signed value of largest magnitude in a block (the first one on ties), as ggml's _0 quantizers pick it. */
function signedAbsMax(src: Float32Array, o: number): number {
  let amax = 0;
  let max = 0;
  for (let j = 0; j < QK; j++) {
    const v = src[o + j];
    if (amax < Math.abs(v)) {
      amax = Math.abs(v);
      max = v;
    }
  }
  return max;
}

// ---------------------------------------------------------------------------------------------
// Q8_0 — 34 bytes / 32 weights = 8.5 bits per weight
//   [0..2)   d   fp16      scale = absmax / 127
//   [2..34)  qs  int8[32]  weight j = qs[j]·d

const Q8_0_SIZE = 34;
assertBlock("Q8_0", Q8_0_SIZE);

export const Q8_0: QuantFormat = {
  name: "Q8_0", blockSize: QK, typeSize: Q8_0_SIZE, bitsPerWeight: (8 * Q8_0_SIZE) / QK,
  quantizeRow(src, dst, dstOffset = 0) {
    checkRow("Q8_0", src.length);
    for (let b = 0, o = dstOffset; b < src.length; b += QK, o += Q8_0_SIZE) {
      let amax = 0;
      for (let j = 0; j < QK; j++) {
        const a = Math.abs(src[b + j]);
        amax = amax > a ? amax : a;
      }
      const d = fround(amax / 127);
      const id = d !== 0 ? fround(1 / d) : 0;
      writeFp16(dst, o, d);
      for (let j = 0; j < QK; j++) dst[o + 2 + j] = roundAwayFromZero(fround(src[b + j] * id)) & 0xff;
    }
  },
  dequantizeRow(src, srcOffset, dst) {
    checkRow("Q8_0", dst.length);
    for (let b = 0, o = srcOffset; b < dst.length; b += QK, o += Q8_0_SIZE) {
      const d = readFp16(src, o);
      for (let j = 0; j < QK; j++) dst[b + j] = ((src[o + 2 + j] << 24) >> 24) * d;
    }
  },
  dotRow(src, srcOffset, x, xOffset, n) {
    let sum = 0;
    for (let b = 0, o = srcOffset; b < n; b += QK, o += Q8_0_SIZE) {
      const xb = xOffset + b;
      const qs = o + 2;
      let acc = 0;
      for (let j = 0; j < QK; j++) acc += ((src[qs + j] << 24) >> 24) * x[xb + j];
      sum += readFp16(src, o) * acc;
    }
    return sum;
  },
};

// ---------------------------------------------------------------------------------------------
// Q4_0 — 18 bytes / 32 weights = 4.5 bits per weight
//   [0..2)   d   fp16      scale = (signed absmax) / -8, so the extreme weight lands on q = 0
//   [2..18)  qs  u8[16]    byte j: low nibble q[j], high nibble q[j+16];  weight = (q − 8)·d

const Q4_0_SIZE = 18;
assertBlock("Q4_0", Q4_0_SIZE);

export const Q4_0: QuantFormat = {
  name: "Q4_0", blockSize: QK, typeSize: Q4_0_SIZE, bitsPerWeight: (8 * Q4_0_SIZE) / QK,
  quantizeRow(src, dst, dstOffset = 0) {
    checkRow("Q4_0", src.length);
    for (let b = 0, o = dstOffset; b < src.length; b += QK, o += Q4_0_SIZE) {
      const d = fround(signedAbsMax(src, b) / -8);
      const id = d !== 0 ? fround(1 / d) : 0;
      writeFp16(dst, o, d);
      for (let j = 0; j < HALF; j++) {
        // (int8_t)(x·id + 8.5f) truncates toward zero, then clamps to 15
        const q0 = Math.min(15, Math.trunc(fround(fround(src[b + j] * id) + 8.5)));
        const q1 = Math.min(15, Math.trunc(fround(fround(src[b + HALF + j] * id) + 8.5)));
        dst[o + 2 + j] = q0 | (q1 << 4);
      }
    }
  },
  dequantizeRow(src, srcOffset, dst) {
    checkRow("Q4_0", dst.length);
    for (let b = 0, o = srcOffset; b < dst.length; b += QK, o += Q4_0_SIZE) {
      const d = readFp16(src, o);
      for (let j = 0; j < HALF; j++) {
        const byte = src[o + 2 + j];
        dst[b + j] = ((byte & 15) - 8) * d;
        dst[b + HALF + j] = ((byte >> 4) - 8) * d;
      }
    }
  },
  dotRow(src, srcOffset, x, xOffset, n) {
    let sum = 0;
    for (let b = 0, o = srcOffset; b < n; b += QK, o += Q4_0_SIZE) {
      const xb = xOffset + b;
      const qs = o + 2;
      let acc = 0;
      for (let j = 0; j < HALF; j++) {
        const byte = src[qs + j];
        acc += ((byte & 15) - 8) * x[xb + j] + ((byte >> 4) - 8) * x[xb + HALF + j];
      }
      sum += readFp16(src, o) * acc;
    }
    return sum;
  },
};

// ---------------------------------------------------------------------------------------------
// Q4_1 — 20 bytes / 32 weights = 5 bits per weight
//   [0..2)   d   fp16      scale = (max − min) / 15
//   [2..4)   m   fp16      offset = min
//   [4..20)  qs  u8[16]    byte j: low nibble q[j], high nibble q[j+16];  weight = q·d + m

const Q4_1_SIZE = 20;
assertBlock("Q4_1", Q4_1_SIZE);

/** min and max of one block, as ggml's _1 quantizers scan it (FLT_MAX start, strict comparisons). */
const blockRange = new Float64Array(2); // [min, max]
function minMax(src: Float32Array, o: number): void {
  let min = 3.4028234663852886e38;
  let max = -3.4028234663852886e38;
  for (let j = 0; j < QK; j++) {
    const v = src[o + j];
    if (v < min) min = v;
    if (v > max) max = v;
  }
  blockRange[0] = min;
  blockRange[1] = max;
}

export const Q4_1: QuantFormat = {
  name: "Q4_1", blockSize: QK, typeSize: Q4_1_SIZE, bitsPerWeight: (8 * Q4_1_SIZE) / QK,
  quantizeRow(src, dst, dstOffset = 0) {
    checkRow("Q4_1", src.length);
    for (let b = 0, o = dstOffset; b < src.length; b += QK, o += Q4_1_SIZE) {
      minMax(src, b);
      const min = blockRange[0];
      const d = fround(fround(blockRange[1] - min) / 15);
      const id = d !== 0 ? fround(1 / d) : 0;
      writeFp16(dst, o, d);
      writeFp16(dst, o + 2, min);
      for (let j = 0; j < HALF; j++) {
        const q0 = Math.min(15, Math.trunc(fround(fround(fround(src[b + j] - min) * id) + 0.5)));
        const q1 = Math.min(15, Math.trunc(fround(fround(fround(src[b + HALF + j] - min) * id) + 0.5)));
        dst[o + 4 + j] = q0 | (q1 << 4);
      }
    }
  },
  dequantizeRow(src, srcOffset, dst) {
    checkRow("Q4_1", dst.length);
    for (let b = 0, o = srcOffset; b < dst.length; b += QK, o += Q4_1_SIZE) {
      const d = readFp16(src, o);
      const m = readFp16(src, o + 2);
      for (let j = 0; j < HALF; j++) {
        const byte = src[o + 4 + j];
        dst[b + j] = fround((byte & 15) * d) + m;
        dst[b + HALF + j] = fround((byte >> 4) * d) + m;
      }
    }
  },
  dotRow(src, srcOffset, x, xOffset, n) {
    // Σ (q·d + m)·x = d·Σ q·x + m·Σ x: the offset costs one extra sum, not a multiply per weight.
    let sum = 0;
    for (let b = 0, o = srcOffset; b < n; b += QK, o += Q4_1_SIZE) {
      const xb = xOffset + b;
      const qs = o + 4;
      let acc = 0;
      let xsum = 0;
      for (let j = 0; j < HALF; j++) {
        const byte = src[qs + j];
        const x0 = x[xb + j];
        const x1 = x[xb + HALF + j];
        acc += (byte & 15) * x0 + (byte >> 4) * x1;
        xsum += x0 + x1;
      }
      sum += readFp16(src, o) * acc + readFp16(src, o + 2) * xsum;
    }
    return sum;
  },
};

// ---------------------------------------------------------------------------------------------
// Q5_0 — 22 bytes / 32 weights = 5.5 bits per weight
//   [0..2)   d   fp16      scale = (signed absmax) / -16
//   [2..6)   qh  u32 LE    bit j = fifth bit (value 16) of q[j]
//   [6..22)  qs  u8[16]    byte j: low 4 bits of q[j] | low 4 bits of q[j+16] << 4;  weight = (q − 16)·d

const Q5_0_SIZE = 22;
assertBlock("Q5_0", Q5_0_SIZE);

function readU32(bytes: Uint8Array, o: number): number {
  return (bytes[o] | (bytes[o + 1] << 8) | (bytes[o + 2] << 16) | (bytes[o + 3] << 24)) >>> 0;
}

function writeU32(bytes: Uint8Array, o: number, v: number): void {
  bytes[o] = v & 0xff;
  bytes[o + 1] = (v >>> 8) & 0xff;
  bytes[o + 2] = (v >>> 16) & 0xff;
  bytes[o + 3] = v >>> 24;
}

/** Packs 32 five-bit values (q0[j] for weight j, q1[j] for weight j+16) into qh and qs at o. */
function packFiveBit(dst: Uint8Array, qhAt: number, qsAt: number, q: Uint8Array): void {
  let qh = 0;
  for (let j = 0; j < HALF; j++) {
    const q0 = q[j];
    const q1 = q[HALF + j];
    dst[qsAt + j] = (q0 & 15) | ((q1 & 15) << 4);
    qh |= ((q0 >> 4) & 1) << j;
    qh |= ((q1 >> 4) & 1) << (j + HALF);
  }
  writeU32(dst, qhAt, qh >>> 0);
}

const q5 = new Uint8Array(QK); // scratch: the 5-bit values of one block, in weight order

export const Q5_0: QuantFormat = {
  name: "Q5_0", blockSize: QK, typeSize: Q5_0_SIZE, bitsPerWeight: (8 * Q5_0_SIZE) / QK,
  quantizeRow(src, dst, dstOffset = 0) {
    checkRow("Q5_0", src.length);
    for (let b = 0, o = dstOffset; b < src.length; b += QK, o += Q5_0_SIZE) {
      const d = fround(signedAbsMax(src, b) / -16);
      const id = d !== 0 ? fround(1 / d) : 0;
      writeFp16(dst, o, d);
      for (let j = 0; j < QK; j++) q5[j] = Math.min(31, Math.trunc(fround(fround(src[b + j] * id) + 16.5)));
      packFiveBit(dst, o + 2, o + 6, q5);
    }
  },
  dequantizeRow(src, srcOffset, dst) {
    checkRow("Q5_0", dst.length);
    for (let b = 0, o = srcOffset; b < dst.length; b += QK, o += Q5_0_SIZE) {
      const d = readFp16(src, o);
      const qh = readU32(src, o + 2);
      for (let j = 0; j < HALF; j++) {
        const byte = src[o + 6 + j];
        dst[b + j] = (((byte & 15) | (((qh >>> j) & 1) << 4)) - 16) * d;
        dst[b + HALF + j] = (((byte >> 4) | (((qh >>> (j + HALF)) & 1) << 4)) - 16) * d;
      }
    }
  },
  dotRow(src, srcOffset, x, xOffset, n) {
    let sum = 0;
    for (let b = 0, o = srcOffset; b < n; b += QK, o += Q5_0_SIZE) {
      const xb = xOffset + b;
      const qh = readU32(src, o + 2);
      const qs = o + 6;
      let acc = 0;
      for (let j = 0; j < HALF; j++) {
        const byte = src[qs + j];
        acc += (((byte & 15) | (((qh >>> j) & 1) << 4)) - 16) * x[xb + j]
             + (((byte >> 4) | (((qh >>> (j + HALF)) & 1) << 4)) - 16) * x[xb + HALF + j];
      }
      sum += readFp16(src, o) * acc;
    }
    return sum;
  },
};

// ---------------------------------------------------------------------------------------------
// Q5_1 — 24 bytes / 32 weights = 6 bits per weight
//   [0..2)   d   fp16      scale = (max − min) / 31
//   [2..4)   m   fp16      offset = min
//   [4..8)   qh  u32 LE    bit j = fifth bit of q[j]
//   [8..24)  qs  u8[16]    as Q5_0;  weight = q·d + m

const Q5_1_SIZE = 24;
assertBlock("Q5_1", Q5_1_SIZE);

export const Q5_1: QuantFormat = {
  name: "Q5_1", blockSize: QK, typeSize: Q5_1_SIZE, bitsPerWeight: (8 * Q5_1_SIZE) / QK,
  quantizeRow(src, dst, dstOffset = 0) {
    checkRow("Q5_1", src.length);
    for (let b = 0, o = dstOffset; b < src.length; b += QK, o += Q5_1_SIZE) {
      minMax(src, b);
      const min = blockRange[0];
      const d = fround(fround(blockRange[1] - min) / 31);
      const id = d !== 0 ? fround(1 / d) : 0;
      writeFp16(dst, o, d);
      writeFp16(dst, o + 2, min);
      // (uint8_t)(x + 0.5f): truncation, no clamp (x never exceeds 31.5 here)
      for (let j = 0; j < QK; j++) q5[j] = Math.trunc(fround(fround(fround(src[b + j] - min) * id) + 0.5)) & 0xff;
      packFiveBit(dst, o + 4, o + 8, q5);
    }
  },
  dequantizeRow(src, srcOffset, dst) {
    checkRow("Q5_1", dst.length);
    for (let b = 0, o = srcOffset; b < dst.length; b += QK, o += Q5_1_SIZE) {
      const d = readFp16(src, o);
      const m = readFp16(src, o + 2);
      const qh = readU32(src, o + 4);
      for (let j = 0; j < HALF; j++) {
        const byte = src[o + 8 + j];
        dst[b + j] = fround(((byte & 15) | (((qh >>> j) & 1) << 4)) * d) + m;
        dst[b + HALF + j] = fround(((byte >> 4) | (((qh >>> (j + HALF)) & 1) << 4)) * d) + m;
      }
    }
  },
  dotRow(src, srcOffset, x, xOffset, n) {
    let sum = 0;
    for (let b = 0, o = srcOffset; b < n; b += QK, o += Q5_1_SIZE) {
      const xb = xOffset + b;
      const qh = readU32(src, o + 4);
      const qs = o + 8;
      let acc = 0;
      let xsum = 0;
      for (let j = 0; j < HALF; j++) {
        const byte = src[qs + j];
        const x0 = x[xb + j];
        const x1 = x[xb + HALF + j];
        acc += ((byte & 15) | (((qh >>> j) & 1) << 4)) * x0 + ((byte >> 4) | (((qh >>> (j + HALF)) & 1) << 4)) * x1;
        xsum += x0 + x1;
      }
      sum += readFp16(src, o) * acc + readFp16(src, o + 2) * xsum;
    }
    return sum;
  },
};

export const LEGACY_FORMATS: QuantFormat[] = [Q8_0, Q4_0, Q4_1, Q5_0, Q5_1];
