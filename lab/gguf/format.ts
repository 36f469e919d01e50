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
// Strings are bytes. GGUF stores a length and bytes that are MEANT to be UTF-8, but nothing checks
// it: ggml copies them as they are, and real vocabularies hold pieces that are not text on their
// own (Llama-2's token 30143 is a lone U+FEFF; byte-level pieces can be half a character). So the
// kit reads every string losslessly into a JS string:
//   - valid UTF-8 decodes to its text exactly: a byte-order mark at the start stays U+FEFF (a
//     default TextDecoder would drop it), NUL stays "\0";
//   - each byte that is not part of a well-formed UTF-8 sequence (a lone continuation byte, a
//     truncated sequence, an overlong form, an encoded surrogate, anything past U+10FFFF) becomes
//     the lone surrogate U+DC00 + byte ("surrogateescape", as Python does: PEP 383).
// Decoding valid UTF-8 never yields a lone surrogate, so the mapping is one to one and writing a
// string back gives exactly the bytes it was read from. JS strings with other lone surrogates, or
// escapes that would form valid UTF-8, have no such bytes: encoding them is an error.

const STRICT_UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const UTF8_ENCODER = new TextEncoder();
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const ESCAPED_BYTE = /((?<![\uD800-\uDBFF])[\uDC80-\uDCFF])/;

/** Length of the well-formed UTF-8 sequence starting at bytes[i] (Unicode Table 3-7), or 0. */
function wellFormedLength(bytes: Uint8Array, i: number): number {
  const b0 = bytes[i];
  if (b0 < 0x80) return 1;
  const cont = (k: number, lo = 0x80, hi = 0xbf) => i + k < bytes.length && bytes[i + k] >= lo && bytes[i + k] <= hi;
  if (b0 >= 0xc2 && b0 <= 0xdf) return cont(1) ? 2 : 0;
  if (b0 >= 0xe0 && b0 <= 0xef) {
    const [lo, hi] = b0 === 0xe0 ? [0xa0, 0xbf] : b0 === 0xed ? [0x80, 0x9f] : [0x80, 0xbf];
    return cont(1, lo, hi) && cont(2) ? 3 : 0;
  }
  if (b0 >= 0xf0 && b0 <= 0xf4) {
    const [lo, hi] = b0 === 0xf0 ? [0x90, 0xbf] : b0 === 0xf4 ? [0x80, 0x8f] : [0x80, 0xbf];
    return cont(1, lo, hi) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0; // 80..C1 (continuation or overlong lead) and F5..FF never start a character
}

/** A GGUF string's bytes as a JS string: their text, with each invalid byte as U+DC00 + byte. */
export function ggufStringFromBytes(bytes: Uint8Array): string {
  try {
    return STRICT_UTF8.decode(bytes); // the common case: valid UTF-8
  } catch {
    let out = "";
    for (let i = 0; i < bytes.length;) {
      const n = wellFormedLength(bytes, i);
      if (n === 0) {
        out += String.fromCharCode(0xdc00 + bytes[i]);
        i += 1;
      } else {
        out += STRICT_UTF8.decode(bytes.subarray(i, i + n));
        i += n;
      }
    }
    return out;
  }
}

/** True when the string is plain text (it holds no escaped bytes and no other lone surrogate). */
export function isUtf8Text(s: string): boolean {
  return !LONE_SURROGATE.test(s);
}

/** The bytes a string read by ggufStringFromBytes came from; GgufError for a string no bytes map to. */
export function ggufStringToBytes(s: string, where: { key?: string; tensor?: string } = {}, what = "string"): Uint8Array {
  if (isUtf8Text(s)) return UTF8_ENCODER.encode(s);
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const pair = c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && s.charCodeAt(i + 1) >= 0xdc00 && s.charCodeAt(i + 1) <= 0xdfff;
    if (pair) {
      out.push(...UTF8_ENCODER.encode(s.slice(i, i + 2)));
      i++;
    } else if (c >= 0xdc80 && c <= 0xdcff) {
      out.push(c - 0xdc00); // an escaped byte
    } else if (c >= 0xd800 && c <= 0xdfff) {
      throw new GgufError(`${what} holds the lone surrogate U+${c.toString(16).toUpperCase()}, which has no UTF-8 bytes`, where);
    } else {
      out.push(...UTF8_ENCODER.encode(s[i]));
    }
  }
  const bytes = Uint8Array.from(out);
  // Escapes of bytes that together are valid UTF-8 would read back as that text, not as this string.
  if (ggufStringFromBytes(bytes) !== s) {
    throw new GgufError(`${what} ${showGgufString(s)} escapes bytes that form valid UTF-8; write the characters themselves`, where);
  }
  return bytes;
}

/** For messages and reports: JSON-style quoting, escaped bytes shown as \xNN, an invisible U+FEFF as \uFEFF. */
export function showGgufString(s: string): string {
  const parts = s.split(ESCAPED_BYTE); // the escaped bytes land at odd indices
  const show = (p: string, k: number) =>
    k % 2 ? `\\x${(p.charCodeAt(0) - 0xdc00).toString(16).toUpperCase()}` : JSON.stringify(p).slice(1, -1).replaceAll("\uFEFF", "\\uFEFF");
  return `"${parts.map(show).join("")}"`;
}

// ---------------------------------------------------------------------------------------------
// Values. Integers up to 32 bits and floats are numbers, 64-bit integers are bigints (a u64
// cannot round-trip through a double), BOOL is boolean, STRING is a JS string (see "Strings are
// bytes" above: it may hold escaped bytes). An ARRAY value is
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
