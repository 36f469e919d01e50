// Files the GGUF tests share: a document exercising every metadata value type (nested arrays
// included) and a tiny valid llama model small enough to mutate a thousand times.
import { GgufValueType, ggufStringFromBytes, kv, type GgufKv } from "../../lab/gguf/index.ts";
import type { GgufDocument } from "../../lab/gguf/index.ts";
import { syntheticLlama, type SyntheticLlamaOptions } from "../../lab/model/synthetic.ts";

function seededBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

/** Every scalar type, an array of every type, nested arrays three deep, unicode, empty values. */
export function everyValueTypeDocument(version: 2 | 3 = 3, alignment = 64): GgufDocument {
  const metadata: GgufKv[] = [
    kv.str("general.architecture", "kitchen-sink"),
    kv.u32("general.alignment", alignment),
    kv.u8("sink.scalar.u8", 250), kv.i8("sink.scalar.i8", -120),
    kv.u16("sink.scalar.u16", 65000), kv.i16("sink.scalar.i16", -32000),
    kv.u32("sink.scalar.u32", 4_000_000_000), kv.i32("sink.scalar.i32", -2_000_000_000),
    kv.f32("sink.scalar.f32", Math.fround(-1.25e-3)), kv.f64("sink.scalar.f64", Math.PI),
    kv.bool("sink.scalar.bool_true", true), kv.bool("sink.scalar.bool_false", false),
    kv.str("sink.scalar.string", "héllo ▁wörld ✓ 😀"), kv.str("sink.scalar.empty_string", ""),
    kv.u64("sink.scalar.u64", 2n ** 64n - 1n), kv.i64("sink.scalar.i64", -(2n ** 63n)),
    kv.u8s("sink.array.u8", [0, 1, 255]), kv.i8s("sink.array.i8", [-128, 0, 127]),
    kv.u16s("sink.array.u16", [0, 65535]), kv.i16s("sink.array.i16", [-32768, 32767]),
    kv.u32s("sink.array.u32", [0, 4294967295]), kv.i32s("sink.array.i32", [-2147483648, 2147483647]),
    kv.f32s("sink.array.f32", [0, -0.5, Math.fround(3.4e38)]), kv.f64s("sink.array.f64", [1e-300, -2.5]),
    kv.bools("sink.array.bool", [true, false, true]),
    kv.strings("sink.array.string", ["a", "", "▁the", "<0x0A>", "日本語"]),
    kv.u64s("sink.array.u64", [0n, 2n ** 64n - 1n]), kv.i64s("sink.array.i64", [-(2n ** 63n), 2n ** 63n - 1n]),
    kv.u32s("sink.array.empty", []),
    kv.arrays("sink.array.nested", [
      { itemType: GgufValueType.UINT32, value: [1, 2, 3] },
      { itemType: GgufValueType.STRING, value: ["x", "yz"] },
      { itemType: GgufValueType.ARRAY, value: [{ itemType: GgufValueType.INT64, value: [-1n, 5n] }] },
      { itemType: GgufValueType.FLOAT32, value: [] },
    ]),
  ];
  const tensors: GgufDocument["tensors"] = [
    { name: "sink.f32", type: "F32", ne: [7, 3], data: seededBytes(7 * 3 * 4, 1) },
    { name: "sink.f16", type: "F16", ne: [5], data: seededBytes(10, 2) },
    { name: "sink.q8_0", type: "Q8_0", ne: [64, 2], data: seededBytes(2 * 2 * 34, 3) },
    { name: "sink.q4_k", type: "Q4_K", ne: [256, 1, 2], data: seededBytes(2 * 144, 4) },
  ];
  return { version, alignment, metadata, tensors };
}

/** A valid llama file a few tens of KB large: 2 layers of width 32 over the 512-piece vocabulary. */
export function tinyLlamaDocument(seed = 3): GgufDocument {
  const model = syntheticLlama({ seed, nEmbd: 32, nFf: 64, nHead: 4, nKvHead: 2, nLayer: 2, nCtx: 64 });
  return {
    metadata: model.metadata,
    tensors: model.tensors.map((t) => ({ name: t.name, type: "F32" as const, ne: t.ne, data: new Uint8Array(t.data.buffer) })),
  };
}

// ---------------------------------------------------------------------------------------------
// Strings that are bytes: what real vocabularies hold and a default TextDecoder would change
// (Llama-2's token 30143 is a lone U+FEFF), as [name, bytes].

const bytesOf = (...parts: (number | string)[]) =>
  Uint8Array.from(parts.flatMap((p) => (typeof p === "string" ? [...Buffer.from(p, "utf8")] : [p])));

/** Pieces llama.cpp keeps as they are; none contains NUL. */
export const TRICKY_PIECES: [string, Uint8Array][] = [
  ["BOM only", bytesOf(0xef, 0xbb, 0xbf)],
  ["BOM then text", bytesOf(0xef, 0xbb, 0xbf, "hi")],
  ["BOM inside", bytesOf("a", 0xef, 0xbb, 0xbf, "b")],
  ["space + BOM", bytesOf("\u2581", 0xef, 0xbb, 0xbf)],
  ["empty", bytesOf()],
  ["U+FFFD itself (valid)", bytesOf(0xef, 0xbf, 0xbd)],
  ["lone continuation byte", bytesOf(0x80)],
  ["text + lone continuation byte", bytesOf("x", 0x80)],
  ["truncated 3-byte sequence", bytesOf(0xe2, 0x82)],
  ["text + truncated 4-byte sequence", bytesOf("e", 0xf0, 0x9f, 0x98)],
  ["overlong 2-byte '/'", bytesOf(0xc0, 0xaf)],
  ["overlong 3-byte '/'", bytesOf(0xe0, 0x80, 0xaf)],
  ["encoded surrogate U+D800", bytesOf(0xed, 0xa0, 0x80)],
  ["past U+10FFFF", bytesOf(0xf4, 0x90, 0x80, 0x80)],
  ["byte FF", bytesOf(0xff)],
];

/** Pieces with a NUL byte: valid GGUF, but llama.cpp reads them cut at the NUL. */
export const NUL_PIECES: [string, Uint8Array][] = [
  ["NUL inside", bytesOf("a", 0x00, "b")],
  ["NUL only", bytesOf(0x00)],
];

/**
 * The synthetic llama model (F32) with its last vocabulary pieces replaced by `pieces`, in order
 * from the end (ids nVocab-1, nVocab-2, …). Returns the document and each piece's id.
 */
export function trickyLlamaDocument(shape: SyntheticLlamaOptions, pieces: [string, Uint8Array][] = TRICKY_PIECES):
  { doc: GgufDocument; ids: Map<string, number> } {
  const model = syntheticLlama(shape);
  const metadata = model.metadata.map((e) => ({ ...e }));
  const entry = metadata.find((e) => e.key === "tokenizer.ggml.tokens")!;
  const tokens = [...(entry.value as string[])];
  const ids = new Map<string, number>();
  pieces.forEach(([name, bytes], k) => {
    const id = tokens.length - 1 - k;
    tokens[id] = ggufStringFromBytes(bytes);
    ids.set(name, id);
  });
  entry.value = tokens;
  const doc: GgufDocument = {
    metadata,
    tensors: model.tensors.map((t) => ({ name: t.name, type: "F32" as const, ne: t.ne, data: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) })),
  };
  return { doc, ids };
}
