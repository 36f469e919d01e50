// lab/quant: every tensor storage type the kit can compute with, behind one interface. A format knows
// its block geometry, how to turn a row of f32 weights into bytes (bit-exact with ggml's reference
// quantizers, so our files equal llama-quantize's), how to turn bytes back into f32, and how to take
// the dot product of a stored row with an f32 vector without decoding it first — the inner loop of
// the engine's matrix-vector products.
//
//   float.ts    F32, F16, BF16 and the fp16/bf16 scalar conversions every format uses for scales
//   legacy.ts   Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 (blocks of 32)
//   kquants.ts  Q2_K, Q3_K, Q4_K, Q5_K, Q6_K (super-blocks of 256)
//   mixes.ts    which type each tensor gets for a llama-quantize file type (Q4_K_M, …)
import { rowBytes, type GgmlTypeName } from "../ggml-types.ts";
import { FLOAT_FORMATS } from "./float.ts";
import { LEGACY_FORMATS } from "./legacy.ts";
import { K_QUANT_FORMATS } from "./kquants.ts";

export interface QuantFormat {
  name: GgmlTypeName;
  /** weights per block */
  blockSize: number;
  /** bytes per block */
  typeSize: number;
  /** 8 × typeSize / blockSize */
  bitsPerWeight: number;
  /** Quantizes one row (src.length % blockSize == 0) into dst at dstOffset. */
  quantizeRow(src: Float32Array, dst: Uint8Array, dstOffset?: number): void;
  /** Decodes dst.length weights from src at srcOffset. */
  dequantizeRow(src: Uint8Array, srcOffset: number, dst: Float32Array): void;
  /** Σ_i w_i · x[xOffset + i] over the n weights stored at src[srcOffset..]; allocates nothing. */
  dotRow(src: Uint8Array, srcOffset: number, x: Float32Array, xOffset: number, n: number): number;
}

/** Thrown for a type the kit cannot quantize or compute with (e.g. the IQ formats). */
export class UnsupportedTypeError extends Error {
  constructor(readonly type: string) {
    super(`tensor type ${type} is not supported by lab/quant (supported: ${supportedTypes().join(", ")})`);
    this.name = "UnsupportedTypeError";
  }
}

const FORMATS = new Map<GgmlTypeName, QuantFormat>();

/** Adds a format to the registry. */
export function registerFormat(format: QuantFormat): void {
  FORMATS.set(format.name, format);
}

for (const f of [...FLOAT_FORMATS, ...LEGACY_FORMATS, ...K_QUANT_FORMATS]) registerFormat(f);

/** The format of a type; throws UnsupportedTypeError for types we do not implement. */
export function quantFormat(type: GgmlTypeName | string): QuantFormat {
  const f = FORMATS.get(type as GgmlTypeName);
  if (!f) throw new UnsupportedTypeError(type);
  return f;
}

export function isSupportedType(type: string): type is GgmlTypeName {
  return FORMATS.has(type as GgmlTypeName);
}

export function supportedTypes(): GgmlTypeName[] {
  return [...FORMATS.keys()];
}

function rowsOf(ne: number[]): { nPerRow: number; nRows: number } {
  if (ne.length === 0 || ne.some((d) => !Number.isInteger(d) || d < 0)) throw new RangeError(`bad tensor shape [${ne.join(", ")}]`);
  return { nPerRow: ne[0], nRows: ne.slice(1).reduce((a, b) => a * b, 1) };
}

/** Quantizes a whole tensor (ggml order ne = [in, out, …]) row by row. */
export function quantizeTensor(type: GgmlTypeName, data: Float32Array, ne: number[]): Uint8Array {
  const f = quantFormat(type);
  const { nPerRow, nRows } = rowsOf(ne);
  if (data.length !== nPerRow * nRows) throw new RangeError(`quantizeTensor: ${data.length} values for shape [${ne.join(", ")}]`);
  const bytesPerRow = rowBytes(type, nPerRow);
  const out = new Uint8Array(bytesPerRow * nRows);
  for (let r = 0; r < nRows; r++) f.quantizeRow(data.subarray(r * nPerRow, (r + 1) * nPerRow), out, r * bytesPerRow);
  return out;
}

/** Dequantizes a whole tensor back to f32, row by row. */
export function dequantizeTensor(type: GgmlTypeName, bytes: Uint8Array, ne: number[]): Float32Array {
  const f = quantFormat(type);
  const { nPerRow, nRows } = rowsOf(ne);
  const bytesPerRow = rowBytes(type, nPerRow);
  if (bytes.length !== bytesPerRow * nRows) {
    throw new RangeError(`dequantizeTensor: ${bytes.length} bytes, but ${type} [${ne.join(", ")}] needs ${bytesPerRow * nRows}`);
  }
  const out = new Float32Array(nPerRow * nRows);
  for (let r = 0; r < nRows; r++) f.dequantizeRow(bytes, r * bytesPerRow, out.subarray(r * nPerRow, (r + 1) * nPerRow));
  return out;
}
