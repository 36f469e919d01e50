// Inside a quantized block: take real weights, quantize them with lab/quant (ggml's bytes), then read
// the bytes back FIELD BY FIELD — scales, mins, the small integers — and rebuild every weight from
// them, so "4.5 bits per weight" becomes something you can point at.
//
//   Q8_0  (32 weights, 34 bytes)   d: fp16 | 32 int8                      w = d · q
//   Q4_0  (32 weights, 18 bytes)   d: fp16 | 16 bytes of nibbles         w = d · (q − 8)
//   Q4_K  (256 weights, 144 bytes) d, dmin: fp16 | 12 bytes of 6-bit (scale, min) × 8 sub-blocks |
//                                  128 bytes of nibbles                  w = d·scale_j · q − dmin·min_j
//
// The field decoding here is written out for reading; the tests check that it rebuilds exactly what
// lab/quant's dequantizeRow (bit-exact with ggml) gives.
import { dequantizeTensor, quantFormat } from "../quant/index.ts";
import { fp16ToFp32 } from "../quant/float.ts";
import { openGguf, readTensorBytes } from "../gguf/index.ts";

export interface BlockError {
  /** max |w − ŵ| */
  maxAbs: number;
  /** sqrt(mean (w − ŵ)²) */
  rms: number;
  /** rms / sqrt(mean w²): the error relative to the weights' own size */
  relativeRms: number;
}

function errorOf(original: Float32Array, rebuilt: Float32Array): BlockError {
  let maxAbs = 0, se = 0, sw = 0;
  for (let i = 0; i < original.length; i++) {
    const e = original[i] - rebuilt[i];
    maxAbs = Math.max(maxAbs, Math.abs(e));
    se += e * e;
    sw += original[i] * original[i];
  }
  const rms = Math.sqrt(se / original.length);
  return { maxAbs, rms, relativeRms: sw > 0 ? rms / Math.sqrt(sw / original.length) : 0 };
}

/** Where every bit of a block goes. */
export interface BitBudget {
  field: string;
  bits: number;
}

// =============================================================================================
// Q8_0

export interface Q80Anatomy {
  type: "Q8_0";
  /** the block's 34 bytes as ggml stores them */
  bytes: Uint8Array;
  /** the fp16 scale, as a float: max|w| / 127 */
  d: number;
  /** the 32 stored integers, −127..127 */
  q: number[];
  original: Float32Array; // [32] f32
  rebuilt: Float32Array; // [32] f32: d · q
  error: BlockError;
  bits: BitBudget[];
  bitsPerWeight: number;
}

/** Quantizes 32 weights to one Q8_0 block and takes it apart. */
export function q8_0Anatomy(weights: Float32Array): Q80Anatomy {
  if (weights.length !== 32) throw new RangeError(`a Q8_0 block holds 32 weights, got ${weights.length}`);
  const format = quantFormat("Q8_0");
  const bytes = new Uint8Array(format.typeSize);
  format.quantizeRow(weights, bytes, 0);
  const d = fp16ToFp32(bytes[0] | (bytes[1] << 8));
  const q = Array.from(new Int8Array(bytes.buffer, 2, 32));
  const rebuilt = Float32Array.from(q, (v) => d * v);
  const bits = [{ field: "d (fp16 scale)", bits: 16 }, { field: "32 × 8-bit q", bits: 256 }];
  return { type: "Q8_0", bytes, d, q, original: Float32Array.from(weights), rebuilt, error: errorOf(weights, rebuilt), bits, bitsPerWeight: 272 / 32 };
}

// =============================================================================================
// Q4_0

export interface Q40Anatomy {
  type: "Q4_0";
  /** the block's 18 bytes as ggml stores them */
  bytes: Uint8Array;
  /** the fp16 scale, as a float */
  d: number;
  /** the 32 stored integers, 0..15, in weight order */
  q: number[];
  original: Float32Array; // [32] f32
  rebuilt: Float32Array; // [32] f32: d · (q − 8)
  error: BlockError;
  bits: BitBudget[];
  bitsPerWeight: number;
}

/** Quantizes 32 weights to one Q4_0 block and takes it apart. */
export function q4_0Anatomy(weights: Float32Array): Q40Anatomy {
  if (weights.length !== 32) throw new RangeError(`a Q4_0 block holds 32 weights, got ${weights.length}`);
  const format = quantFormat("Q4_0");
  const bytes = new Uint8Array(format.typeSize);
  format.quantizeRow(weights, bytes, 0);
  const d = fp16ToFp32(bytes[0] | (bytes[1] << 8));
  const q = new Array<number>(32);
  for (let j = 0; j < 16; j++) {
    q[j] = bytes[2 + j] & 0x0f; // low nibble: weight j
    q[j + 16] = bytes[2 + j] >> 4; // high nibble: weight j + 16
  }
  const rebuilt = Float32Array.from(q, (v) => d * (v - 8));
  const bits = [{ field: "d (fp16 scale)", bits: 16 }, { field: "32 × 4-bit q", bits: 128 }];
  return { type: "Q4_0", bytes, d, q, original: Float32Array.from(weights), rebuilt, error: errorOf(weights, rebuilt), bits, bitsPerWeight: 144 / 32 };
}

// =============================================================================================
// Q4_K

export interface Q4KSubBlock {
  /** 6-bit integers stored in the 12 scale bytes */
  scale: number;
  min: number;
  /** what they mean: d · scale and dmin · min */
  effectiveScale: number;
  effectiveMin: number;
  /** this sub-block's 32 stored integers, 0..15 */
  q: number[];
}

export interface Q4KAnatomy {
  type: "Q4_K";
  bytes: Uint8Array;
  /** super-block scale and min scale (fp16) */
  d: number;
  dmin: number;
  subBlocks: Q4KSubBlock[]; // [8]
  original: Float32Array; // [256] f32
  rebuilt: Float32Array; // [256] f32
  error: BlockError;
  bits: BitBudget[];
  bitsPerWeight: number;
}

/** ggml's get_scale_min_k4: sub-block j's 6-bit scale and min, packed into 12 bytes for 8 sub-blocks. */
function scaleMin(j: number, s: Uint8Array): [number, number] {
  if (j < 4) return [s[j] & 63, s[j + 4] & 63];
  return [(s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4), (s[j + 4] >> 4) | ((s[j] >> 6) << 4)];
}

/** Quantizes 256 weights to one Q4_K super-block and takes it apart. */
export function q4_KAnatomy(weights: Float32Array): Q4KAnatomy {
  if (weights.length !== 256) throw new RangeError(`a Q4_K super-block holds 256 weights, got ${weights.length}`);
  const format = quantFormat("Q4_K");
  const bytes = new Uint8Array(format.typeSize);
  format.quantizeRow(weights, bytes, 0);
  const d = fp16ToFp32(bytes[0] | (bytes[1] << 8));
  const dmin = fp16ToFp32(bytes[2] | (bytes[3] << 8));
  const scales = bytes.subarray(4, 16);
  const qs = bytes.subarray(16, 144);
  const subBlocks: Q4KSubBlock[] = [];
  const rebuilt = new Float32Array(256);
  // 4 chunks of 64 weights; chunk c's 32 bytes hold sub-block 2c in low nibbles and 2c+1 in high ones.
  for (let c = 0; c < 4; c++) {
    for (const half of [0, 1]) {
      const j = 2 * c + half;
      const [scale, min] = scaleMin(j, scales);
      const effectiveScale = d * scale;
      const effectiveMin = dmin * min;
      const q = Array.from(qs.subarray(32 * c, 32 * c + 32), (b) => (half === 0 ? b & 0x0f : b >> 4));
      q.forEach((v, l) => { rebuilt[32 * j + l] = effectiveScale * v - effectiveMin; });
      subBlocks.push({ scale, min, effectiveScale, effectiveMin, q });
    }
  }
  const bits = [
    { field: "d, dmin (2 × fp16)", bits: 32 },
    { field: "8 × (6-bit scale, 6-bit min)", bits: 96 },
    { field: "256 × 4-bit q", bits: 1024 },
  ];
  return { type: "Q4_K", bytes, d, dmin, subBlocks, original: Float32Array.from(weights), rebuilt, error: errorOf(weights, rebuilt), bits, bitsPerWeight: 1152 / 256 };
}

// =============================================================================================
// Real weights to look at

/** `count` consecutive weights of row `row` of a tensor (any stored type, returned as f32). */
export async function tensorWeights(path: string, tensor: string, row: number, start: number, count: number): Promise<Float32Array> {
  const file = await openGguf(path);
  const info = file.tensors.find((t) => t.name === tensor);
  if (!info) throw new Error(`${path} has no tensor ${tensor}`);
  const [nIn, nOut = 1] = info.ne;
  if (row < 0 || row >= nOut || start < 0 || start + count > nIn) {
    throw new RangeError(`${tensor} is [${info.ne}]: row ${row}, weights ${start}..${start + count - 1} are outside it`);
  }
  const all = dequantizeTensor(info.type, await readTensorBytes(file, tensor), info.ne);
  return all.slice(row * nIn + start, row * nIn + start + count);
}
