// lab/quant float + legacy formats: layouts by hand, error bounds, stability, dot products, and
// bit-exactness against ggml itself (test/oracle: ggml_quantize_chunk and to_float of the libggml
// that node-llama-cpp ships).
import { describe, expect, it } from "vitest";
import { bitsPerWeight, BLOCK_GEOMETRY, type GgmlTypeName } from "../lab/ggml-types.ts";
import { bf16ToFp32, fp16ToFp32, fp32ToBf16, fp32ToFp16 } from "../lab/quant/float.ts";
import { dequantizeTensor, quantFormat, quantizeTensor, UnsupportedTypeError } from "../lab/quant/index.ts";
import { ggmlDequantize, ggmlQuantize, ggmlRowSize } from "./oracle/ggml.ts";
import { mulberry32 } from "../lab/random.ts";

const OURS: GgmlTypeName[] = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"];

/** A seeded PRNG (mulberry32) so every run sees the same "random" data. */
const rng = mulberry32;

/** llama.cpp tests/test-quantize-fns.cpp's generator: 0.1 + 2·cos(i + offset). */
function ggmlTestData(n: number, offset = 0): Float32Array {
  return new Float32Array(n).map((_, i) => 0.1 + 2 * Math.cos(i + offset));
}

/** Rows that stress a quantizer: gaussian-ish weights with zero blocks, constant blocks, outliers, one-signed blocks, tiny and huge scales. */
function nastyRows(nPerRow: number, nRows: number, seed: number, { tinyBlocks = true } = {}): Float32Array {
  const r = rng(seed);
  const x = new Float32Array(nPerRow * nRows);
  for (let i = 0; i < x.length; i++) x[i] = (r() + r() + r() - 1.5) * 0.8;
  for (let b = 0; b < x.length; b += 32) {
    const kind = Math.floor(r() * 10);
    const block = x.subarray(b, b + 32);
    if (kind === 0) block.fill(0);
    else if (kind === 1) block.fill(r() - 0.5);
    else if (kind === 2) block[Math.floor(r() * 32)] = (r() - 0.5) * 200; // outlier
    else if (kind === 3) block.forEach((v, j) => (block[j] = -Math.abs(v))); // negative only
    else if (kind === 4) block.forEach((v, j) => (block[j] = Math.abs(v))); // positive only
    else if (kind === 5 && tinyBlocks) block.forEach((v, j) => (block[j] = v * 1e-6)); // fp16 scale goes subnormal
    else if (kind === 6) block.forEach((v, j) => (block[j] = v * 3e4)); // large scales
  }
  return x;
}

function rmse(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s / a.length);
}

function firstDifference(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

function bits(f: Float32Array): Uint32Array {
  return new Uint32Array(f.buffer, f.byteOffset, f.length);
}

describe("format table", () => {
  const expectedBpw: Record<string, number> = { F32: 32, F16: 16, BF16: 16, Q8_0: 8.5, Q4_0: 4.5, Q4_1: 5, Q5_0: 5.5, Q5_1: 6 };
  it.each(OURS)("%s: geometry agrees with ggml-types and with ggml_row_size", (type) => {
    const f = quantFormat(type);
    expect([f.blockSize, f.typeSize]).toEqual([BLOCK_GEOMETRY[type].blockSize, BLOCK_GEOMETRY[type].typeSize]);
    expect(f.bitsPerWeight).toBe(expectedBpw[type]);
    expect(f.bitsPerWeight).toBe(bitsPerWeight(type));
    expect((4096 / f.blockSize) * f.typeSize).toBe(ggmlRowSize(type, 4096));
  });

  it("rejects types we do not implement, and rows that are not whole blocks", () => {
    expect(() => quantFormat("IQ4_NL")).toThrow(UnsupportedTypeError);
    expect(() => quantizeTensor("Q4_0", new Float32Array(48), [48])).toThrow(/multiple of/);
    expect(() => quantizeTensor("Q4_0", new Float32Array(64), [32, 3])).toThrow(RangeError);
    expect(() => dequantizeTensor("Q8_0", new Uint8Array(33), [32])).toThrow(/needs 34/);
  });
});

describe("fp16 / bf16 scalar conversions (bit-exact with ggml-impl.h)", () => {
  // Special values, every rounding boundary class, and many random bit patterns.
  const r = rng(7);
  const u = new Uint32Array(200_000);
  const special = [0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00001, 0x7f800001, 0x7fbfffff,
    0x477fe000, 0x477fefff, 0x477ff000, 0x477fffff, 0x47800000, // around 65504..65536: max half, halfway, overflow
    0x38800000, 0x387fffff, 0x33800000, 0x33000000, 0x33000001, 0x32ffffff, 0x00000001, 0x3f800000, 0x3f801000, 0x3f803000,
    0x3f808000, 0x3f818000, 0x3f817fff];
  special.forEach((v, i) => (u[i] = v));
  for (let i = special.length; i < u.length; i++) {
    // half the patterns anywhere, half in the exponent range where fp16 is normal or subnormal
    u[i] = i % 2 ? (r() * 2 ** 32) >>> 0 : (((r() * 2 ** 32) >>> 0) & 0x87ffffff) | 0x30000000;
  }
  const f = new Float32Array(u.buffer);

  it("fp32 → fp16 rounds like GGML_FP32_TO_FP16 (ties to even, overflow to inf, NaN → 0x7e00)", () => {
    const ref = new Uint16Array(ggmlQuantize("F16", f, f.length).slice().buffer);
    let mismatches = 0;
    for (let i = 0; i < f.length; i++) if (fp32ToFp16(f[i]) !== ref[i]) mismatches++;
    expect(mismatches).toBe(0);
    expect(fp32ToFp16(1)).toBe(0x3c00);
    expect(fp32ToFp16(65504)).toBe(0x7bff);
    expect(fp32ToFp16(65520)).toBe(0x7c00); // halfway to 2^16 rounds to even = inf
    expect(fp32ToFp16(2 ** -24)).toBe(1);
    expect(fp32ToFp16(2 ** -25)).toBe(0); // halfway between 0 and the smallest subnormal → even (0)
  });

  it("fp32 → bf16 rounds like ggml_compute_fp32_to_bf16 (ties to even, NaN quieted)", () => {
    const ref = new Uint16Array(ggmlQuantize("BF16", f, f.length).slice().buffer);
    let mismatches = 0;
    for (let i = 0; i < f.length; i++) if (fp32ToBf16(f[i]) !== ref[i]) mismatches++;
    expect(mismatches).toBe(0);
    expect(fp32ToBf16(1)).toBe(0x3f80);
    expect(bf16ToFp32(0x3f80)).toBe(1);
  });

  it("F16 and BF16 rows (the formats, not just the scalars) match ggml on the same bit patterns, NaN payloads included", () => {
    for (const type of ["F16", "BF16"] as const) {
      expect(firstDifference(quantizeTensor(type, f, [f.length]), ggmlQuantize(type, f, f.length))).toBe(-1);
    }
  });

  it("fp16 → fp32 decodes every half exactly like ggml's to_float", () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const ref = ggmlDequantize("F16", new Uint8Array(all.buffer), 65536);
    for (let h = 0; h < 65536; h++) {
      const ours = fp16ToFp32(h);
      if (Number.isNaN(ref[h])) expect(ours).toBeNaN();
      else expect(ours).toBe(ref[h]);
    }
  });
});

describe("hand-built blocks: nibble and bit order", () => {
  it("Q4_0: byte j holds weight j in the low nibble and weight j+16 in the high nibble", () => {
    // x[0] = -8 is the signed absmax → d = -8/-8 = 1; weight j → q = j for j < 16, weight 16+j → q = 15 − j
    const x = new Float32Array(32);
    for (let j = 0; j < 16; j++) x[j] = j - 8;
    for (let j = 0; j < 16; j++) x[16 + j] = 7 - j;
    const q = quantizeTensor("Q4_0", x, [32]);
    const expected = [0x00, 0x3c, ...Array.from({ length: 16 }, (_, j) => j | ((15 - j) << 4))];
    expect(Array.from(q)).toEqual(expected);
    expect(Array.from(dequantizeTensor("Q4_0", q, [32]))).toEqual(Array.from(x));
  });

  it("Q4_1: scale (max−min)/15 and offset min as two fp16, then the nibbles", () => {
    const x = new Float32Array(32).map((_, j) => 2 + (j % 16)); // min 2, max 17 → d = 1, m = 2
    const q = quantizeTensor("Q4_1", x, [32]);
    expect(Array.from(q.subarray(0, 4))).toEqual([0x00, 0x3c, 0x00, 0x40]); // fp16 1.0, fp16 2.0
    expect(Array.from(q.subarray(4))).toEqual(Array.from({ length: 16 }, (_, j) => j | (j << 4)));
  });

  it("Q5_0: the fifth bit of weight j is bit j of the little-endian u32 qh", () => {
    const x = new Float32Array(32).map((_, j) => j - 16); // x[0] = -16 → d = 1; q = j
    const q = quantizeTensor("Q5_0", x, [32]);
    // weights 16..31 have q ≥ 16 → qh bits 16..31 set; qs byte j = (q[j] & 15) | (q[j+16] & 15) << 4 = j | j << 4
    expect(Array.from(q.subarray(0, 6))).toEqual([0x00, 0x3c, 0x00, 0x00, 0xff, 0xff]);
    expect(Array.from(q.subarray(6))).toEqual(Array.from({ length: 16 }, (_, j) => j | (j << 4)));
  });

  it("Q5_1: d, m, qh, qs in that order", () => {
    const x = new Float32Array(32).map((_, j) => (j % 2 ? 31 : 0)); // min 0, max 31 → d = 1; odd weights have bit 4
    const q = quantizeTensor("Q5_1", x, [32]);
    expect(Array.from(q.subarray(0, 8))).toEqual([0x00, 0x3c, 0x00, 0x00, 0xaa, 0xaa, 0xaa, 0xaa]);
    expect(Array.from(q.subarray(8))).toEqual(Array.from({ length: 16 }, (_, j) => (j % 2 ? 0xff : 0x00)));
  });

  it("Q8_0: d = absmax/127, rounding halves away from zero like C roundf", () => {
    const x = new Float32Array(32);
    x[0] = 127; // d = 1
    x[1] = -2.5;
    x[2] = 2.5;
    x[3] = -0.5;
    x[4] = -127;
    const q = quantizeTensor("Q8_0", x, [32]);
    expect(Array.from(q.subarray(0, 7))).toEqual([0x00, 0x3c, 127, 0xfd /* -3 */, 3, 0xff /* -1 */, 0x81 /* -127 */]);
  });
});

describe("error bounds (llama.cpp test-quantize-fns data: 0.1 + 2·cos(i), 4096 weights)", () => {
  // Named bounds: true RMSE over the test vector. The signal's RMS is ≈ 1.42. ggml's own test checks
  // sqrt(Σ err²)/n < 0.002 for every format ≥ 4 bits; we check that too.
  const RMSE_TOLERANCE: Record<string, number> = {
    F32: 0, F16: 4e-4, BF16: 3e-3, Q8_0: 6e-3, Q4_0: 0.08, Q4_1: 0.08, Q5_0: 0.042, Q5_1: 0.04,
  };
  const MAX_QUANTIZATION_TOTAL_ERROR = 0.002; // ggml's name and value
  const x = ggmlTestData(4096);
  it.each(OURS)("%s", (type) => {
    const y = dequantizeTensor(type, quantizeTensor(type, x, [4096]), [4096]);
    const e = rmse(x, y);
    expect(e).toBeLessThanOrEqual(RMSE_TOLERANCE[type]);
    expect((e * Math.sqrt(4096)) / 4096).toBeLessThan(MAX_QUANTIZATION_TOTAL_ERROR);
  });
});

describe("stability and dot products", () => {
  const x = nastyRows(1024, 8, 11);
  // Stable only while each block's scale is a normal fp16: when d underflows to a subnormal or to 0
  // (blocks of ~1e-6 weights), the stored q's were computed with the unrounded d, so decoding and
  // re-encoding changes them. ggml behaves identically there (the bit-exact tests include such blocks).
  const normalScales = nastyRows(1024, 8, 11, { tinyBlocks: false });
  it.each(OURS)("%s: quantize → dequantize → quantize gives the same bytes (normal-range scales)", (type) => {
    const q = quantizeTensor(type, normalScales, [1024, 8]);
    const again = quantizeTensor(type, dequantizeTensor(type, q, [1024, 8]), [1024, 8]);
    expect(firstDifference(q, again)).toBe(-1);
  });

  it.each(OURS)("%s: dotRow equals dequantize-then-dot (and works at any row/x offset)", (type) => {
    const f = quantFormat(type);
    const n = 1024;
    const q = quantizeTensor(type, x, [n, 8]);
    const w = dequantizeTensor(type, q, [n, 8]);
    const v = nastyRows(n + 64, 1, 12).map((t) => t * 0.5); // x offset 64 below
    const bytesPerRow = (n / f.blockSize) * f.typeSize;
    for (let row = 0; row < 8; row++) {
      let ref = 0;
      let mag = 0;
      for (let i = 0; i < n; i++) {
        ref += w[row * n + i] * v[64 + i];
        mag += Math.abs(w[row * n + i] * v[64 + i]);
      }
      const dot = f.dotRow(q, row * bytesPerRow, v, 64, n);
      expect(Math.abs(dot - ref)).toBeLessThanOrEqual(1e-9 * mag + 1e-12);
    }
  });

  it("F32 dotRow reads unaligned rows too", () => {
    const f = quantFormat("F32");
    const w = new Float32Array([1, 2, 3, 4]);
    const bytes = new Uint8Array(17);
    f.quantizeRow(w, bytes, 1);
    expect(f.dotRow(bytes, 1, new Float32Array([1, 1, 1, 1]), 0, 4)).toBe(10);
    expect(f.dotRow(bytes, 5, new Float32Array([9, 0, 2, 0]), 1, 3)).toBe(6); // w[1..3] = 2, 3, 4
  });
});

describe("bit-exact against ggml (ggml_quantize_chunk, imatrix = NULL; to_float)", () => {
  for (const nPerRow of [32, 256, 4096]) {
    it.each(OURS)(`%s, rows of ${nPerRow}`, (type) => {
      const nRows = Math.max(4, 16384 / nPerRow);
      const x = nastyRows(nPerRow, nRows, nPerRow);
      const ours = quantizeTensor(type, x, [nPerRow, nRows]);
      const theirs = ggmlQuantize(type, x, nPerRow);
      expect(firstDifference(ours, theirs)).toBe(-1);
      const back = dequantizeTensor(type, theirs, [nPerRow, nRows]);
      const ggmlBack = ggmlDequantize(type, theirs, nPerRow * nRows);
      let differ = 0;
      const a = bits(back);
      const b = bits(ggmlBack);
      for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) differ++;
      expect(differ).toBe(0);
    });
  }
});
