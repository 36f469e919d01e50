// ggml tensor types as GGUF stores them: the numeric id, the name llama.cpp prints, and the block
// geometry (weights per block, bytes per block). Ids and sizes follow ggml.h / ggml-common.h; a
// type the kit cannot compute with is still listed so the reader can describe any file.
// The quant formats themselves (layouts, quantize/dequantize, dot products) live in lab/quant.

export const GgmlType = {
  F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q5_0: 6, Q5_1: 7, Q8_0: 8, Q8_1: 9,
  Q2_K: 10, Q3_K: 11, Q4_K: 12, Q5_K: 13, Q6_K: 14, Q8_K: 15,
  IQ2_XXS: 16, IQ2_XS: 17, IQ3_XXS: 18, IQ1_S: 19, IQ4_NL: 20, IQ3_S: 21, IQ2_S: 22, IQ4_XS: 23,
  I8: 24, I16: 25, I32: 26, I64: 27, F64: 28, IQ1_M: 29, BF16: 30, TQ1_0: 34, TQ2_0: 35,
} as const;
export type GgmlTypeName = keyof typeof GgmlType;
export type GgmlTypeId = (typeof GgmlType)[GgmlTypeName];

export interface BlockGeometry {
  /** weights per block */
  blockSize: number;
  /** bytes per block */
  typeSize: number;
}

export const BLOCK_GEOMETRY: Record<GgmlTypeName, BlockGeometry> = {
  F32: { blockSize: 1, typeSize: 4 }, F16: { blockSize: 1, typeSize: 2 }, BF16: { blockSize: 1, typeSize: 2 },
  F64: { blockSize: 1, typeSize: 8 }, I8: { blockSize: 1, typeSize: 1 }, I16: { blockSize: 1, typeSize: 2 },
  I32: { blockSize: 1, typeSize: 4 }, I64: { blockSize: 1, typeSize: 8 },
  Q4_0: { blockSize: 32, typeSize: 18 }, Q4_1: { blockSize: 32, typeSize: 20 },
  Q5_0: { blockSize: 32, typeSize: 22 }, Q5_1: { blockSize: 32, typeSize: 24 },
  Q8_0: { blockSize: 32, typeSize: 34 }, Q8_1: { blockSize: 32, typeSize: 36 },
  Q2_K: { blockSize: 256, typeSize: 84 }, Q3_K: { blockSize: 256, typeSize: 110 },
  Q4_K: { blockSize: 256, typeSize: 144 }, Q5_K: { blockSize: 256, typeSize: 176 },
  Q6_K: { blockSize: 256, typeSize: 210 }, Q8_K: { blockSize: 256, typeSize: 292 },
  IQ2_XXS: { blockSize: 256, typeSize: 66 }, IQ2_XS: { blockSize: 256, typeSize: 74 },
  IQ3_XXS: { blockSize: 256, typeSize: 98 }, IQ1_S: { blockSize: 256, typeSize: 50 },
  IQ4_NL: { blockSize: 32, typeSize: 18 }, IQ3_S: { blockSize: 256, typeSize: 110 },
  IQ2_S: { blockSize: 256, typeSize: 82 }, IQ4_XS: { blockSize: 256, typeSize: 136 },
  IQ1_M: { blockSize: 256, typeSize: 56 }, TQ1_0: { blockSize: 256, typeSize: 54 },
  TQ2_0: { blockSize: 256, typeSize: 66 },
};

const NAME_BY_ID = new Map<number, GgmlTypeName>(
  (Object.entries(GgmlType) as [GgmlTypeName, number][]).map(([name, id]) => [id, name]),
);

/** The name of a type id, or undefined for an id ggml does not define. */
export function ggmlTypeName(id: number): GgmlTypeName | undefined {
  return NAME_BY_ID.get(id);
}

/** Bytes of one row of n weights; throws if n is not a whole number of blocks. */
export function rowBytes(type: GgmlTypeName, n: number): number {
  const { blockSize, typeSize } = BLOCK_GEOMETRY[type];
  if (n % blockSize !== 0) throw new RangeError(`${type}: row length ${n} is not a multiple of the block size ${blockSize}`);
  return (n / blockSize) * typeSize;
}

/** Bits per weight of a type: 8 × bytes per block / weights per block (Q4_0: 4.5, Q4_K: 4.5, Q6_K: 6.5625). */
export function bitsPerWeight(type: GgmlTypeName): number {
  const { blockSize, typeSize } = BLOCK_GEOMETRY[type];
  return (8 * typeSize) / blockSize;
}
