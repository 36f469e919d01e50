// The three float storage types: F32 (as is), F16 (IEEE binary16) and BF16 (the top half of an f32).
// They are "quant formats" with a block of one weight, so the engine and `lab quantize` treat every
// tensor type the same way. The scalar conversions here are also what every block format uses to
// store its scales (ggml keeps d and m as fp16), so they must round exactly like ggml-impl.h:
//   fp32 → fp16: round to nearest, ties to even; overflow → ±inf; NaN → sign | 0x7e00
//   fp32 → bf16: round to nearest, ties to even on the bits; NaN → top half with the quiet bit forced
// All byte layouts are little-endian, as GGUF files are.
import type { QuantFormat } from "./index.ts";

// ---------------------------------------------------------------------------------------------
// 1. Scalar conversions (no allocation: one shared 4-byte scratch reinterprets f32 <-> u32 bits)

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** The IEEE bits of x rounded to f32. */
export function f32Bits(x: number): number {
  scratchF32[0] = x;
  return scratchU32[0];
}

/** The f32 whose bits are u. */
export function f32FromBits(u: number): number {
  scratchU32[0] = u;
  return scratchF32[0];
}

/** fp32 → fp16 bits, bit-exact with ggml's GGML_FP32_TO_FP16. */
export function fp32ToFp16(x: number): number {
  return fp16FromF32Bits(f32Bits(x));
}

/** The same conversion, from the f32's IEEE bits (lets a row be converted through one Uint32Array view). */
export function fp16FromF32Bits(u: number): number {
  const sign = (u >>> 16) & 0x8000;
  const abs = u & 0x7fffffff;
  if (abs > 0x7f800000) return sign | 0x7e00; // NaN: ggml returns one canonical quiet NaN
  const exp = (abs >>> 23) - 127; // unbiased f32 exponent
  if (exp >= 16) return sign | 0x7c00; // |x| >= 65536 (or inf): beyond the largest half
  if (exp >= -14) {
    // A normal half: keep 10 of the 23 mantissa bits, round the 13 dropped ones to nearest even.
    // A carry out of the mantissa bumps the exponent, and 65520.. rounds up into inf: both are right.
    const mant = abs & 0x7fffff;
    let half = ((exp + 15) << 10) | (mant >>> 13);
    const dropped = mant & 0x1fff;
    if (dropped > 0x1000 || (dropped === 0x1000 && (half & 1) === 1)) half++;
    return sign | half;
  }
  if (exp < -25) return sign; // below half the smallest subnormal (2^-25): rounds to ±0
  // A subnormal half counts units of 2^-24: shift the full 24-bit significand right and round.
  const significand = (abs & 0x7fffff) | 0x800000; // value = significand × 2^(exp-23)
  const shift = -exp - 1; // 14..24
  let half = significand >>> shift;
  const dropped = significand & ((1 << shift) - 1);
  const halfway = 1 << (shift - 1);
  if (dropped > halfway || (dropped === halfway && (half & 1) === 1)) half++;
  return sign | half;
}

/** fp16 bits → f32, the exact value (a table of all 65536 halves: decoding is one load). */
export const FP16_TO_F32: Float32Array = (() => {
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) table[h] = sign * mant * 2 ** -24;
    else if (exp === 31) table[h] = mant ? NaN : sign * Infinity;
    else table[h] = sign * (1024 + mant) * 2 ** (exp - 25);
  }
  return table;
})();

export function fp16ToFp32(h: number): number {
  return FP16_TO_F32[h & 0xffff];
}

/** fp32 → bf16 bits, bit-exact with ggml_compute_fp32_to_bf16. */
export function fp32ToBf16(x: number): number {
  return bf16FromF32Bits(f32Bits(x));
}

export function bf16FromF32Bits(u: number): number {
  if ((u & 0x7fffffff) > 0x7f800000) return (u >>> 16) | 64; // NaN: keep the payload, force quiet
  return Math.floor((u + 0x7fff + ((u >>> 16) & 1)) / 65536) & 0xffff; // plain numbers: no 32-bit wrap
}

export function bf16ToFp32(h: number): number {
  return f32FromBits((h & 0xffff) << 16 >>> 0);
}

/** Reads the little-endian fp16 at bytes[o] as an f32 value. */
export function readFp16(bytes: Uint8Array, o: number): number {
  return FP16_TO_F32[bytes[o] | (bytes[o + 1] << 8)];
}

/** Writes x as a little-endian fp16 at bytes[o]; returns the stored value, as ggml would read it back. */
export function writeFp16(bytes: Uint8Array, o: number, x: number): number {
  const h = fp32ToFp16(x);
  bytes[o] = h & 0xff;
  bytes[o + 1] = h >>> 8;
  return FP16_TO_F32[h];
}

// ---------------------------------------------------------------------------------------------
// 2. Reading f32 weights straight out of a byte buffer. A Float32Array view needs 4-byte alignment;
// the engine calls dotRow millions of times on the same tensor buffer, so we keep one whole-buffer
// view and reuse it (no allocation per call). Unaligned rows fall back to a DataView read.

let viewBuffer: ArrayBufferLike | undefined;
let viewF32: Float32Array<ArrayBufferLike> = new Float32Array(0);
let viewData: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0));

function useBuffer(buffer: ArrayBufferLike): void {
  if (buffer === viewBuffer) return;
  viewBuffer = buffer;
  viewF32 = new Float32Array(buffer, 0, buffer.byteLength >>> 2);
  viewData = new DataView(buffer);
}

// ---------------------------------------------------------------------------------------------
// 3. The formats. Block = 1 weight, so rows of any length are valid.

/** F32: 4 bytes per weight, IEEE binary32 little-endian. 32 bits/weight. */
export const F32: QuantFormat = {
  name: "F32", blockSize: 1, typeSize: 4, bitsPerWeight: 32,
  quantizeRow(src, dst, dstOffset = 0) {
    dst.set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength), dstOffset);
  },
  dequantizeRow(src, srcOffset, dst) {
    new Uint8Array(dst.buffer, dst.byteOffset, dst.byteLength).set(src.subarray(srcOffset, srcOffset + 4 * dst.length));
  },
  dotRow(src, srcOffset, x, xOffset, n) {
    useBuffer(src.buffer);
    const byte = src.byteOffset + srcOffset;
    let sum = 0;
    if ((byte & 3) === 0) {
      const w = byte >>> 2;
      for (let i = 0; i < n; i++) sum += viewF32[w + i] * x[xOffset + i];
    } else {
      for (let i = 0; i < n; i++) sum += viewData.getFloat32(byte + 4 * i, true) * x[xOffset + i];
    }
    return sum;
  },
};

/** F16: 2 bytes per weight, IEEE binary16 little-endian. 16 bits/weight. */
export const F16: QuantFormat = {
  name: "F16", blockSize: 1, typeSize: 2, bitsPerWeight: 16,
  quantizeRow(src, dst, dstOffset = 0) {
    const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
    for (let i = 0; i < src.length; i++) {
      const h = fp16FromF32Bits(bits[i]);
      dst[dstOffset + 2 * i] = h & 0xff;
      dst[dstOffset + 2 * i + 1] = h >>> 8;
    }
  },
  dequantizeRow(src, srcOffset, dst) {
    for (let i = 0; i < dst.length; i++) dst[i] = FP16_TO_F32[src[srcOffset + 2 * i] | (src[srcOffset + 2 * i + 1] << 8)];
  },
  dotRow(src, srcOffset, x, xOffset, n) {
    let sum = 0;
    for (let i = 0, o = srcOffset; i < n; i++, o += 2) sum += FP16_TO_F32[src[o] | (src[o + 1] << 8)] * x[xOffset + i];
    return sum;
  },
};

/** BF16: 2 bytes per weight, the upper 16 bits of the f32 (same exponent range, 8-bit mantissa). 16 bits/weight. */
export const BF16: QuantFormat = {
  name: "BF16", blockSize: 1, typeSize: 2, bitsPerWeight: 16,
  quantizeRow(src, dst, dstOffset = 0) {
    const bits = new Uint32Array(src.buffer, src.byteOffset, src.length); // exact NaN payloads, no f64 detour
    for (let i = 0; i < src.length; i++) {
      const h = bf16FromF32Bits(bits[i]);
      dst[dstOffset + 2 * i] = h & 0xff;
      dst[dstOffset + 2 * i + 1] = h >>> 8;
    }
  },
  dequantizeRow(src, srcOffset, dst) {
    const bits = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
    for (let i = 0; i < dst.length; i++) bits[i] = ((src[srcOffset + 2 * i] | (src[srcOffset + 2 * i + 1] << 8)) << 16) >>> 0;
  },
  dotRow(src, srcOffset, x, xOffset, n) {
    let sum = 0;
    for (let i = 0, o = srcOffset; i < n; i++, o += 2) {
      scratchU32[0] = ((src[o] | (src[o + 1] << 8)) << 16) >>> 0;
      sum += scratchF32[0] * x[xOffset + i];
    }
    return sum;
  },
};

export const FLOAT_FORMATS: QuantFormat[] = [F32, F16, BF16];
