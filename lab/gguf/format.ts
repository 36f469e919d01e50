// The GGUF container in types: the value-type ids, what a key/value and a tensor description look
// like once read, typed constructors for metadata, and the one error every GGUF problem becomes.
//
// File layout (little endian; v2 and v3 are identical on disk, v3 only allowed big-endian files):
//   magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv
//   n_kv × { string key | u32 value_type | value }
//   n_tensors × { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset }
//   zero padding up to `general.alignment` (default 32)
//   tensor data: each tensor at data_start + offset, each padded to the alignment
// where string = u64 byte length + UTF-8 bytes (no terminator) and an ARRAY value is
// u32 item_type + u64 count + count items (arrays may nest).
import type { GgmlTypeName } from "../ggml-types.ts";

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_DEFAULT_ALIGNMENT = 32;

export const GgufValueType = {
  UINT8: 0, INT8: 1, UINT16: 2, INT16: 3, UINT32: 4, INT32: 5, FLOAT32: 6, BOOL: 7,
  STRING: 8, ARRAY: 9, UINT64: 10, INT64: 11, FLOAT64: 12,
} as const;
export type GgufValueTypeName = keyof typeof GgufValueType;
export type GgufValueTypeId = (typeof GgufValueType)[GgufValueTypeName];

const VALUE_TYPE_NAMES = Object.keys(GgufValueType) as GgufValueTypeName[];

/** "UINT32" for 4, or `type 99` for an id GGUF does not define. */
export function valueTypeName(id: number): string {
  return VALUE_TYPE_NAMES.find((n) => GgufValueType[n] === id) ?? `type ${id}`;
}

/** Bytes of one fixed-size value, or undefined for STRING and ARRAY (variable length). */
export function fixedValueSize(type: number): number | undefined {
  switch (type) {
    case GgufValueType.UINT8: case GgufValueType.INT8: case GgufValueType.BOOL: return 1;
    case GgufValueType.UINT16: case GgufValueType.INT16: return 2;
    case GgufValueType.UINT32: case GgufValueType.INT32: case GgufValueType.FLOAT32: return 4;
    case GgufValueType.UINT64: case GgufValueType.INT64: case GgufValueType.FLOAT64: return 8;
    default: return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Values. Integers up to 32 bits and floats are numbers, 64-bit integers are bigints (a u64
// cannot round-trip through a double), BOOL is boolean, STRING is a JS string. An ARRAY value is
// a plain JS array of its items; an array nested inside an array is a GgufArray so its item type
// survives a round trip.

export interface GgufArray {
  itemType: GgufValueTypeId;
  value: GgufValue[];
}
export type GgufValue = number | bigint | boolean | string | GgufValue[] | GgufArray;

export interface GgufKv {
  key: string;
  type: GgufValueTypeId;
  value: unknown;
  /** item type, for ARRAY values */
  itemType?: GgufValueTypeId;
  /** byte offset of this entry (its key length) in the file it was read from */
  entryOffset?: number;
}

export interface GgufTensorInfo {
  name: string;
  type: GgmlTypeName;
  /** ggml order: ne[0] is the row length (inputs), ne[1] the number of rows (outputs), … */
  ne: number[];
  /** absolute byte offset of the tensor's data in the file */
  offset: number;
  byteSize: number;
  /** offset as stored: relative to the start of the data section */
  relativeOffset: number;
  /** byte offset of this tensor's info record (its name length) in the file */
  infoOffset: number;
}

export interface GgufFile {
  path: string;
  version: number;
  alignment: number;
  fileSize: number;
  /** in file order */
  metadata: Map<string, GgufKv>;
  tensors: GgufTensorInfo[];
  /** absolute byte offset where tensor data starts (end of header + padding) */
  dataOffset: number;
}

/** Any problem with a GGUF file. Names the byte offset, key or tensor where it was found. */
export class GgufError extends Error {
  readonly offset?: number;
  readonly key?: string;
  readonly tensor?: string;
  constructor(message: string, where: { offset?: number; key?: string; tensor?: string } = {}) {
    const at = [
      where.key !== undefined ? `key "${where.key}"` : "",
      where.tensor !== undefined ? `tensor "${where.tensor}"` : "",
      where.offset !== undefined ? `at byte ${where.offset}` : "",
    ].filter(Boolean).join(", ");
    super(at ? `${message} (${at})` : message);
    this.name = "GgufError";
    this.offset = where.offset;
    this.key = where.key;
    this.tensor = where.tensor;
  }
}

export function getValue<T>(file: GgufFile, key: string): T | undefined {
  return file.metadata.get(key)?.value as T | undefined;
}

// ---------------------------------------------------------------------------------------------
// Typed constructors: the type is part of the contract with llama.cpp (it checks u32 vs i32), so
// every metadata entry the kit writes names its type here.

const T = GgufValueType;
const scalar = (type: GgufValueTypeId) => (key: string, value: number): GgufKv => ({ key, type, value });
const big = (type: GgufValueTypeId) => (key: string, value: number | bigint): GgufKv => ({ key, type, value: BigInt(value) });
const array = <V>(itemType: GgufValueTypeId, map: (v: V) => unknown = (v) => v) =>
  (key: string, values: readonly V[]): GgufKv => ({ key, type: T.ARRAY, itemType, value: values.map(map) });

export const kv = {
  u8: scalar(T.UINT8), i8: scalar(T.INT8), u16: scalar(T.UINT16), i16: scalar(T.INT16),
  u32: scalar(T.UINT32), i32: scalar(T.INT32), f32: scalar(T.FLOAT32), f64: scalar(T.FLOAT64),
  u64: big(T.UINT64), i64: big(T.INT64),
  bool: (key: string, value: boolean): GgufKv => ({ key, type: T.BOOL, value }),
  str: (key: string, value: string): GgufKv => ({ key, type: T.STRING, value }),
  strings: array<string>(T.STRING),
  f32s: array<number>(T.FLOAT32), f64s: array<number>(T.FLOAT64),
  i32s: array<number>(T.INT32), u32s: array<number>(T.UINT32),
  u8s: array<number>(T.UINT8), i8s: array<number>(T.INT8), u16s: array<number>(T.UINT16), i16s: array<number>(T.INT16),
  u64s: array<number | bigint>(T.UINT64, (v) => BigInt(v)), i64s: array<number | bigint>(T.INT64, (v) => BigInt(v)),
  bools: array<boolean>(T.BOOL),
  /** an array of arrays: each inner array carries its own item type */
  arrays: array<GgufArray>(T.ARRAY),
};
