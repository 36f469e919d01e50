// Reading GGUF: the header, metadata and tensor descriptions, without touching tensor data.
// Tensor data is read later, one tensor at a time, with positional reads (files may be larger
// than memory). Every count and length is checked against the bytes left in the file before
// anything is allocated, so a hostile count (2^60 strings) fails at once with a GgufError.
//
// The header is parsed from a window over the file's first bytes; when the parser runs past it,
// the window grows (doubling, with synchronous positional reads) up to the header's 1 GiB limit.
// Headers are small (a few MB even for 150k-token vocabularies), so this reads little beyond them.
//
// Strings, decided per place (format.ts, "Strings are bytes", has the encoding):
//   - string VALUES (scalars and array items: vocabulary pieces, merges, names, templates) are kept
//     losslessly, whatever their bytes: llama.cpp keeps a vocabulary entry as raw bytes, so a piece
//     that is a lone U+FEFF, half a character or an overlong form is still that piece, and writing
//     the file back reproduces it byte for byte. (The validator refuses a NUL inside the strings of
//     a llama file: llama.cpp reads those as C strings, cut at the NUL.)
//   - metadata KEYS and tensor NAMES are identifiers the kit looks things up by: they must be valid
//     UTF-8, else GgufError naming the entry's index and byte offset.
import { readSync } from "node:fs";
import { open } from "node:fs/promises";
import { BLOCK_GEOMETRY, ggmlTypeName } from "../ggml-types.ts";
import {
  GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GgufError, GgufValueType, fixedValueSize, ggufStringFromBytes, isUtf8Text, showGgufString, valueTypeName,
  type GgufArray, type GgufFile, type GgufKv, type GgufTensorInfo, type GgufValue, type GgufValueTypeId,
} from "./format.ts";
import { validateGguf } from "./validate.ts";

const FIRST_WINDOW = 1 << 18; // bytes read up front; most headers fit
const MAX_STRING_BYTES = 1 << 30; // ggml's GGUF_MAX_STRING_LENGTH
// Headers (metadata + tensor infos) of real models are a few MB. Capping them keeps a corrupt count
// in a many-GB file from making us read gigabytes before failing, and every array within what a JS
// array can hold.
export const MAX_HEADER_BYTES = 1 << 30;
const MAX_ARRAY_DEPTH = 64; // nesting beyond this is an attack, not a file

// ---------------------------------------------------------------------------------------------
// Cursor over the window

/** Returns a window holding at least the file's first `upTo` bytes (the old window's bytes included). */
type GrowWindow = (window: Uint8Array, upTo: number) => Uint8Array;

class Cursor {
  pos = 0;
  private view: DataView;
  constructor(
    private bytes: Uint8Array, // the file's first bytes.length bytes
    readonly fileSize: number,
    private readonly grow?: GrowWindow,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get remaining(): number {
    return this.fileSize - this.pos;
  }

  /** Makes sure n bytes at pos exist in the file (else GgufError) and in the window (else grows it). */
  private need(n: number, what: string): number {
    const at = this.pos;
    if (n > this.fileSize - at) {
      throw new GgufError(`file truncated: ${what} needs ${n} bytes but only ${this.fileSize - at} remain`, { offset: at });
    }
    if (at + n > MAX_HEADER_BYTES) throw new GgufError(`${what} lies past the first 1 GiB: the header cannot be that large`, { offset: at });
    if (at + n > this.bytes.length) {
      if (!this.grow) throw new GgufError(`header truncated: ${what} needs bytes past the ${this.bytes.length} given`, { offset: at });
      this.bytes = this.grow(this.bytes, at + n);
      this.view = new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
    }
    this.pos += n;
    return at;
  }

  // need() may grow the window and replace view, so it runs before view is read.
  u8(what: string): number { const at = this.need(1, what); return this.view.getUint8(at); }
  i8(what: string): number { const at = this.need(1, what); return this.view.getInt8(at); }
  u16(what: string): number { const at = this.need(2, what); return this.view.getUint16(at, true); }
  i16(what: string): number { const at = this.need(2, what); return this.view.getInt16(at, true); }
  u32(what: string): number { const at = this.need(4, what); return this.view.getUint32(at, true); }
  i32(what: string): number { const at = this.need(4, what); return this.view.getInt32(at, true); }
  f32(what: string): number { const at = this.need(4, what); return this.view.getFloat32(at, true); }
  f64(what: string): number { const at = this.need(8, what); return this.view.getFloat64(at, true); }
  u64(what: string): bigint { const at = this.need(8, what); return this.view.getBigUint64(at, true); }
  i64(what: string): bigint { const at = this.need(8, what); return this.view.getBigInt64(at, true); }

  /** A u64 count or size that must fit in the header: at least minBytesEach bytes per item must remain. */
  count(what: string, minBytesEach: number, where: { key?: string; tensor?: string } = {}): number {
    const at = this.pos;
    const n = this.u64(what);
    const left = Math.min(this.remaining, MAX_HEADER_BYTES - this.pos);
    const room = BigInt(Math.floor(left / Math.max(minBytesEach, 1)));
    if (n > room) {
      const space = left < this.remaining ? `the header's 1 GiB limit leaves room for at most ${room}` :
        `the ${this.remaining} bytes left in the file hold at most ${room}: the file is truncated or corrupt`;
      throw new GgufError(`${what} is ${n}, but ${space}`, { offset: at, ...where });
    }
    return Number(n);
  }

  string(what: string, where: { key?: string; tensor?: string } = {}): string {
    const at = this.pos;
    const length = this.count(`${what} length`, 1, where);
    if (length > MAX_STRING_BYTES) throw new GgufError(`${what} length ${length} exceeds 1 GiB`, { offset: at, ...where });
    const start = this.need(length, what);
    return ggufStringFromBytes(this.bytes.subarray(start, start + length));
  }

  /** A key or tensor name (the index-th): a string that must be text (valid UTF-8). */
  name(what: string, index: number): string {
    const at = this.pos;
    const s = this.string(what);
    if (!isUtf8Text(s)) throw new GgufError(`${what} #${index} ${showGgufString(s)} is not valid UTF-8`, { offset: at });
    return s;
  }
}

// ---------------------------------------------------------------------------------------------
// Metadata values

function readValue(c: Cursor, type: number, key: string, depth: number): GgufValue {
  const what = `value of "${key}"`;
  switch (type) {
    case GgufValueType.UINT8: return c.u8(what);
    case GgufValueType.INT8: return c.i8(what);
    case GgufValueType.UINT16: return c.u16(what);
    case GgufValueType.INT16: return c.i16(what);
    case GgufValueType.UINT32: return c.u32(what);
    case GgufValueType.INT32: return c.i32(what);
    case GgufValueType.FLOAT32: return c.f32(what);
    case GgufValueType.BOOL: return c.u8(what) !== 0;
    case GgufValueType.STRING: return c.string(what, { key });
    case GgufValueType.UINT64: return c.u64(what);
    case GgufValueType.INT64: return c.i64(what);
    case GgufValueType.FLOAT64: return c.f64(what);
    case GgufValueType.ARRAY: {
      const { itemType, value } = readArray(c, key, depth + 1);
      return { itemType, value };
    }
    default:
      throw new GgufError(`invalid value type ${type}`, { offset: c.pos - 4, key });
  }
}

/** Smallest encoding of one item: fixed size, 8 for a string's length, 12 for a nested array header. */
function minItemBytes(itemType: number): number {
  return fixedValueSize(itemType) ?? (itemType === GgufValueType.STRING ? 8 : 12);
}

function readArray(c: Cursor, key: string, depth: number): GgufArray {
  if (depth > MAX_ARRAY_DEPTH) throw new GgufError(`arrays nested deeper than ${MAX_ARRAY_DEPTH}`, { offset: c.pos, key });
  const typeAt = c.pos;
  const itemType = c.u32(`array item type of "${key}"`);
  if (itemType > GgufValueType.FLOAT64) throw new GgufError(`invalid array item type ${itemType}`, { offset: typeAt, key });
  const n = c.count(`item count of "${key}"`, minItemBytes(itemType), { key });
  const value = new Array<GgufValue>(n);
  for (let i = 0; i < n; i++) value[i] = readValue(c, itemType, key, depth);
  return { itemType: itemType as GgufValueTypeId, value };
}

function readKv(c: Cursor, index: number): GgufKv {
  const entryOffset = c.pos;
  const key = c.name("metadata key", index);
  const typeAt = c.pos;
  const type = c.u32(`value type of "${key}"`);
  if (type > GgufValueType.FLOAT64) throw new GgufError(`invalid value type ${type}`, { offset: typeAt, key });
  if (type === GgufValueType.ARRAY) {
    const { itemType, value } = readArray(c, key, 1);
    return { key, type, itemType, value, entryOffset };
  }
  return { key, type: type as GgufValueTypeId, value: readValue(c, type, key, 0), entryOffset };
}

// ---------------------------------------------------------------------------------------------
// Tensor descriptions

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function readTensorInfo(c: Cursor, index: number): Omit<GgufTensorInfo, "offset"> {
  const infoOffset = c.pos;
  const name = c.name("tensor name", index);
  const dimsAt = c.pos;
  const nDims = c.u32(`dimension count of "${name}"`);
  if (nDims > 8 || nDims * 8 > c.remaining) {
    throw new GgufError(`tensor has ${nDims} dimensions`, { offset: dimsAt, tensor: name });
  }
  const ne: number[] = [];
  let elements = 1n;
  for (let d = 0; d < nDims; d++) {
    const at = c.pos;
    const n = c.u64(`dimension ${d} of "${name}"`);
    if (n > MAX_SAFE) throw new GgufError(`dimension ${d} is ${n}, too large`, { offset: at, tensor: name });
    ne.push(Number(n));
    elements *= n;
  }
  const typeAt = c.pos;
  const typeId = c.u32(`type of "${name}"`);
  const type = ggmlTypeName(typeId);
  if (type === undefined) throw new GgufError(`unknown ggml type id ${typeId}`, { offset: typeAt, tensor: name });
  const { blockSize, typeSize } = BLOCK_GEOMETRY[type];
  if (ne.length > 0 && ne[0] % blockSize !== 0) {
    throw new GgufError(`row length ${ne[0]} is not a multiple of ${type}'s block size ${blockSize}`, { offset: dimsAt, tensor: name });
  }
  const byteSize = (elements / BigInt(blockSize)) * BigInt(typeSize);
  if (byteSize > MAX_SAFE) throw new GgufError(`tensor of ${elements} elements is too large`, { offset: dimsAt, tensor: name });
  const offsetAt = c.pos;
  const relativeOffset = c.u64(`data offset of "${name}"`);
  if (relativeOffset > MAX_SAFE) throw new GgufError(`data offset ${relativeOffset} is too large`, { offset: offsetAt, tensor: name });
  return { name, type, ne, byteSize: Number(byteSize), relativeOffset: Number(relativeOffset), infoOffset };
}

// ---------------------------------------------------------------------------------------------
// The whole header

export function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

function parseHeader(bytes: Uint8Array, fileSize: number, path: string, grow?: GrowWindow): GgufFile {
  const c = new Cursor(bytes, fileSize, grow);
  if (fileSize < 4) throw new GgufError(`not a GGUF file: only ${fileSize} bytes`, { offset: 0 });
  const magic = c.u32("magic");
  if (magic !== GGUF_MAGIC) throw new GgufError(`not a GGUF file: magic is 0x${magic.toString(16).padStart(8, "0")}, expected "GGUF"`, { offset: 0 });
  const version = c.u32("version");
  if (version === 1) throw new GgufError("GGUF v1 is not supported (llama.cpp dropped it); convert the file to v3", { offset: 4 });
  if (version !== 2 && version !== 3) throw new GgufError(`unsupported GGUF version ${version} (expected 2 or 3)`, { offset: 4 });
  const nTensors = c.count("tensor count", 8 + 4 + 4 + 8);
  const nKv = c.count("metadata count", 8 + 4 + 1);

  const metadata = new Map<string, GgufKv>();
  for (let i = 0; i < nKv; i++) {
    const entry = readKv(c, i);
    if (metadata.has(entry.key)) throw new GgufError("duplicate metadata key", { offset: entry.entryOffset, key: entry.key });
    metadata.set(entry.key, entry);
  }

  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const alignKv = metadata.get("general.alignment");
  if (alignKv) {
    const a = alignKv.value;
    if (alignKv.type !== GgufValueType.UINT32 || typeof a !== "number" || a === 0 || (a & (a - 1)) !== 0) {
      throw new GgufError(`general.alignment must be a u32 power of two, got ${valueTypeName(alignKv.type)} ${String(a)}`,
        { offset: alignKv.entryOffset, key: "general.alignment" });
    }
    alignment = a;
  }

  const infos: Omit<GgufTensorInfo, "offset">[] = [];
  for (let i = 0; i < nTensors; i++) infos.push(readTensorInfo(c, i));
  const dataOffset = alignUp(c.pos, alignment);
  const tensors = infos.map((t) => ({ ...t, offset: dataOffset + t.relativeOffset }));
  return { path, version, alignment, fileSize, metadata, tensors, dataOffset };
}

// ---------------------------------------------------------------------------------------------
// Public entry points

/** Reads and (unless validate:false) validates a GGUF file's header. Tensor data is not read. */
export async function openGguf(path: string, opts: { validate?: boolean } = {}): Promise<GgufFile> {
  const handle = await open(path, "r");
  try {
    const fileSize = (await handle.stat()).size;
    const readPrefix = (into: Uint8Array, from: number) => {
      for (let done = from; done < into.length;) {
        const n = readSync(handle.fd, into, done, into.length - done, done);
        if (n === 0) throw new GgufError(`short read: the file ended at ${done} bytes`, { offset: done });
        done += n;
      }
    };
    const grow: GrowWindow = (window, upTo) => {
      const bigger = new Uint8Array(Math.min(fileSize, MAX_HEADER_BYTES, Math.max(2 * window.length, upTo + (1 << 16))));
      bigger.set(window);
      readPrefix(bigger, window.length);
      return bigger;
    };
    const first = new Uint8Array(Math.min(fileSize, FIRST_WINDOW));
    readPrefix(first, 0);
    const file = parseHeader(first, fileSize, path, grow);
    if (opts.validate !== false) validateGguf(file);
    return file;
  } finally {
    await handle.close();
  }
}

/** Parses a header held in memory: the whole file, or (for the header alone) at least its header. */
export function parseGgufBytes(bytes: Uint8Array, opts: { validate?: boolean; path?: string; fileSize?: number } = {}): GgufFile {
  const file = parseHeader(bytes, opts.fileSize ?? bytes.length, opts.path ?? "<memory>");
  if (opts.validate !== false) validateGguf(file);
  return file;
}

function findTensor(file: GgufFile, name: string): GgufTensorInfo {
  const info = file.tensors.find((t) => t.name === name);
  if (!info) throw new GgufError(`no tensor named "${name}" in ${file.path}`, { tensor: name });
  if (info.offset + info.byteSize > file.fileSize) {
    throw new GgufError(`tensor data [${info.offset}, ${info.offset + info.byteSize}) lies past the end of the file (${file.fileSize} bytes)`,
      { offset: info.offset, tensor: name });
  }
  return info;
}

/** The raw bytes of one tensor (row-major [ne[n-1]]…[ne[0]] in its ggml type). */
export async function readTensorBytes(file: GgufFile, name: string): Promise<Uint8Array> {
  const info = findTensor(file, name);
  const out = new Uint8Array(info.byteSize);
  const handle = await open(file.path, "r");
  try {
    let done = 0;
    while (done < out.length) {
      const { bytesRead } = await handle.read(out, done, out.length - done, info.offset + done);
      if (bytesRead === 0) throw new GgufError("file shrank while reading tensor data", { offset: info.offset + done, tensor: name });
      done += bytesRead;
    }
  } finally {
    await handle.close();
  }
  return out;
}
