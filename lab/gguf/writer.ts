// Writing GGUF exactly as ggml's gguf_write does: header, metadata in the order given, tensor
// infos with offsets laid out back to back (each tensor padded to the alignment), zero padding,
// then tensor data. Reading a ggml-written file and writing it back is therefore byte-identical.
// The file appears atomically: written to a temp file next to the target, then renamed.
import { open, rename, unlink } from "node:fs/promises";
import { BLOCK_GEOMETRY, GgmlType, type GgmlTypeName } from "../ggml-types.ts";
import {
  GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GgufError, GgufValueType, ggufStringToBytes, isUtf8Text, showGgufString, valueTypeName,
  type GgufArray, type GgufKv,
} from "./format.ts";
import { alignUp } from "./reader.ts";

export interface GgufTensorToWrite {
  name: string;
  type: GgmlTypeName;
  /** ggml order [in, out, …] */
  ne: number[];
  /** row-major bytes in `type`, exactly the tensor's byte size */
  data: Uint8Array;
}

export interface GgufDocument {
  version?: 2 | 3;
  /** must agree with a `general.alignment` entry if there is one */
  alignment?: number;
  metadata: GgufKv[];
  tensors: GgufTensorToWrite[];
}

// ---------------------------------------------------------------------------------------------
// A growable little-endian byte buffer

class ByteWriter {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private reserve(n: number): number {
    if (this.length + n > this.buf.length) {
      const bigger = new Uint8Array(Math.max(2 * this.buf.length, this.length + n));
      bigger.set(this.buf.subarray(0, this.length));
      this.buf = bigger;
      this.view = new DataView(bigger.buffer);
    }
    const at = this.length;
    this.length += n;
    return at;
  }
  // reserve() may replace buf and view, so it must run before either is read.
  u8(x: number) { const at = this.reserve(1); this.view.setUint8(at, x); }
  i8(x: number) { const at = this.reserve(1); this.view.setInt8(at, x); }
  u16(x: number) { const at = this.reserve(2); this.view.setUint16(at, x, true); }
  i16(x: number) { const at = this.reserve(2); this.view.setInt16(at, x, true); }
  u32(x: number) { const at = this.reserve(4); this.view.setUint32(at, x, true); }
  i32(x: number) { const at = this.reserve(4); this.view.setInt32(at, x, true); }
  f32(x: number) { const at = this.reserve(4); this.view.setFloat32(at, x, true); }
  f64(x: number) { const at = this.reserve(8); this.view.setFloat64(at, x, true); }
  u64(x: bigint) { const at = this.reserve(8); this.view.setBigUint64(at, x, true); }
  i64(x: bigint) { const at = this.reserve(8); this.view.setBigInt64(at, x, true); }
  bytes(b: Uint8Array) { const at = this.reserve(b.length); this.buf.set(b, at); }
  /** A GGUF string: u64 byte length + the bytes it was read from (format.ts, "Strings are bytes"). */
  string(b: Uint8Array) {
    this.u64(BigInt(b.length));
    this.bytes(b);
  }
  zeros(n: number) { const at = this.reserve(n); this.buf.fill(0, at, this.length); }
  result(): Uint8Array { return this.buf.subarray(0, this.length); }
}

// ---------------------------------------------------------------------------------------------
// Metadata values, checked against their declared type (a u32 must be an integer in range)

const INT_RANGE: Partial<Record<number, [number, number]>> = {
  [GgufValueType.UINT8]: [0, 0xff], [GgufValueType.INT8]: [-0x80, 0x7f],
  [GgufValueType.UINT16]: [0, 0xffff], [GgufValueType.INT16]: [-0x8000, 0x7fff],
  [GgufValueType.UINT32]: [0, 0xffffffff], [GgufValueType.INT32]: [-0x80000000, 0x7fffffff],
};

/** A key or tensor name: text only (the reader refuses names that are not valid UTF-8). */
function nameBytes(name: string, where: { key?: string; tensor?: string }, what: string): Uint8Array {
  if (!isUtf8Text(name)) throw new GgufError(`${what} ${showGgufString(name)} is not valid UTF-8 text`, where);
  return ggufStringToBytes(name, where, what);
}

function writeValue(w: ByteWriter, type: number, value: unknown, key: string, index?: number): void {
  const bad = (expected: string) =>
    new GgufError(`value ${typeof value === "bigint" ? value + "n" : JSON.stringify(value)} is not ${expected}`, { key });
  const range = INT_RANGE[type];
  if (range) {
    if (typeof value !== "number" || !Number.isInteger(value) || value < range[0] || value > range[1]) {
      throw bad(`a ${valueTypeName(type)} (integer in [${range[0]}, ${range[1]}])`);
    }
  }
  switch (type) {
    case GgufValueType.UINT8: return w.u8(value as number);
    case GgufValueType.INT8: return w.i8(value as number);
    case GgufValueType.UINT16: return w.u16(value as number);
    case GgufValueType.INT16: return w.i16(value as number);
    case GgufValueType.UINT32: return w.u32(value as number);
    case GgufValueType.INT32: return w.i32(value as number);
    case GgufValueType.FLOAT32:
    case GgufValueType.FLOAT64:
      if (typeof value !== "number") throw bad("a number");
      return type === GgufValueType.FLOAT32 ? w.f32(value) : w.f64(value);
    case GgufValueType.BOOL:
      if (typeof value !== "boolean") throw bad("a boolean");
      return w.u8(value ? 1 : 0);
    case GgufValueType.STRING:
      if (typeof value !== "string") throw bad("a string");
      return w.string(ggufStringToBytes(value, { key }, index === undefined ? "string" : `item ${index}`));
    case GgufValueType.UINT64:
    case GgufValueType.INT64: {
      const lo = type === GgufValueType.UINT64 ? 0n : -(1n << 63n);
      const hi = type === GgufValueType.UINT64 ? (1n << 64n) - 1n : (1n << 63n) - 1n;
      const v = typeof value === "number" && Number.isSafeInteger(value) ? BigInt(value) : value;
      if (typeof v !== "bigint" || v < lo || v > hi) throw bad(`a ${valueTypeName(type)}`);
      return type === GgufValueType.UINT64 ? w.u64(v) : w.i64(v);
    }
    case GgufValueType.ARRAY: {
      const arr = value as GgufArray;
      if (typeof arr !== "object" || arr === null || !Array.isArray(arr.value)) throw bad("a nested array { itemType, value }");
      return writeArray(w, arr.itemType, arr.value, key);
    }
    default:
      throw new GgufError(`invalid value type ${type}`, { key });
  }
}

function writeArray(w: ByteWriter, itemType: number | undefined, items: unknown, key: string): void {
  if (itemType === undefined || itemType < 0 || itemType > GgufValueType.FLOAT64) {
    throw new GgufError(`array needs a valid itemType, got ${String(itemType)}`, { key });
  }
  if (!Array.isArray(items) && !ArrayBuffer.isView(items)) throw new GgufError("array value is not an array", { key });
  const list = items as ArrayLike<unknown>;
  w.u32(itemType);
  w.u64(BigInt(list.length));
  for (let i = 0; i < list.length; i++) writeValue(w, itemType, list[i], key, i);
}

// ---------------------------------------------------------------------------------------------
// The file

function tensorByteSize(t: GgufTensorToWrite): number {
  const geometry = BLOCK_GEOMETRY[t.type];
  if (!geometry) throw new GgufError(`unknown ggml type ${String(t.type)}`, { tensor: t.name });
  if (t.ne.length < 1 || t.ne.length > 4 || t.ne.some((n) => !Number.isSafeInteger(n) || n < 1)) {
    throw new GgufError(`shape [${t.ne.join(", ")}] must be 1 to 4 positive integers`, { tensor: t.name });
  }
  if (t.ne[0] % geometry.blockSize !== 0) {
    throw new GgufError(`row length ${t.ne[0]} is not a multiple of ${t.type}'s block size ${geometry.blockSize}`, { tensor: t.name });
  }
  return (t.ne.reduce((a, b) => a * b, 1) / geometry.blockSize) * geometry.typeSize;
}

/** Header bytes (through the padding before tensor data) and each tensor's relative offset. */
export function encodeGgufHeader(doc: GgufDocument): { header: Uint8Array; alignment: number; offsets: number[] } {
  const alignKv = doc.metadata.find((e) => e.key === "general.alignment");
  const declared = alignKv?.type === GgufValueType.UINT32 ? (alignKv.value as number) : undefined;
  if (alignKv && declared === undefined) throw new GgufError("general.alignment must be a u32", { key: "general.alignment" });
  const alignment = doc.alignment ?? declared ?? GGUF_DEFAULT_ALIGNMENT;
  if (!Number.isInteger(alignment) || alignment < 1 || (alignment & (alignment - 1)) !== 0) {
    throw new GgufError(`alignment ${alignment} is not a power of two`, { key: "general.alignment" });
  }
  if ((declared ?? GGUF_DEFAULT_ALIGNMENT) !== alignment) {
    throw new GgufError(`alignment ${alignment} disagrees with the file's general.alignment (${declared ?? "absent, so 32"}); ` +
      `add kv.u32("general.alignment", ${alignment}) to the metadata`, { key: "general.alignment" });
  }

  const w = new ByteWriter();
  w.u32(GGUF_MAGIC);
  w.u32(doc.version ?? 3);
  w.u64(BigInt(doc.tensors.length));
  w.u64(BigInt(doc.metadata.length));

  const keys = new Set<string>();
  for (const entry of doc.metadata) {
    if (!entry.key) throw new GgufError("empty metadata key");
    if (keys.has(entry.key)) throw new GgufError("duplicate metadata key", { key: entry.key });
    keys.add(entry.key);
    w.string(nameBytes(entry.key, { key: entry.key }, "metadata key"));
    w.u32(entry.type);
    if (entry.type === GgufValueType.ARRAY) writeArray(w, entry.itemType, entry.value, entry.key);
    else writeValue(w, entry.type, entry.value, entry.key);
  }

  const names = new Set<string>();
  const offsets: number[] = [];
  let next = 0;
  for (const t of doc.tensors) {
    if (names.has(t.name)) throw new GgufError("duplicate tensor name", { tensor: t.name });
    names.add(t.name);
    const size = tensorByteSize(t);
    if (t.data.length !== size) {
      throw new GgufError(`data has ${t.data.length} bytes but ${t.type} [${t.ne.join(", ")}] needs ${size}`, { tensor: t.name });
    }
    w.string(nameBytes(t.name, { tensor: t.name }, "tensor name"));
    w.u32(t.ne.length);
    for (const n of t.ne) w.u64(BigInt(n));
    w.u32(GgmlType[t.type]);
    w.u64(BigInt(next));
    offsets.push(next);
    next += alignUp(size, alignment);
  }
  w.zeros(alignUp(w.length, alignment) - w.length);
  return { header: w.result(), alignment, offsets };
}

/** Writes a GGUF file atomically (temp file + rename). Throws GgufError before touching `path`. */
export async function writeGguf(path: string, doc: GgufDocument): Promise<void> {
  const { header, alignment } = encodeGgufHeader(doc);
  const temp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const handle = await open(temp, "w");
  try {
    let pos = 0;
    const put = async (bytes: Uint8Array) => {
      let done = 0;
      while (done < bytes.length) {
        const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, pos + done);
        done += bytesWritten;
      }
      pos += bytes.length;
    };
    await put(header);
    for (const t of doc.tensors) {
      await put(t.data);
      const pad = alignUp(t.data.length, alignment) - t.data.length;
      if (pad) await put(new Uint8Array(pad));
    }
    await handle.sync();
    await handle.close();
    await rename(temp, path);
  } catch (err) {
    await handle.close().catch(() => {});
    await unlink(temp).catch(() => {});
    throw err;
  }
}
