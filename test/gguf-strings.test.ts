// GGUF strings are bytes (lab/gguf/format.ts, "Strings are bytes"): every string value survives a
// read and a write byte for byte — a BOM at the start or inside, NUL, and bytes that are not UTF-8
// (lone continuation byte, truncated sequence, overlong form, encoded surrogate, past U+10FFFF, FF).
// Keys and tensor names must be text; NUL is refused where llama.cpp would read a C string.
// (llama.cpp's side: test/quant-mixes.test.ts, test/tokenizer.test.ts, test/gguf-llama.test.ts.)
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  GgufError, encodeGgufHeader, ggufStringFromBytes, ggufStringToBytes, isUtf8Text, kv, openGguf, parseGgufBytes, showGgufString,
  writeGguf, type GgufDocument, type GgufKv,
} from "../lab/gguf/index.ts";
import { inspectJson, inspectReport } from "../lab/gguf/inspect.ts";
import { mulberry32 } from "../lab/random.ts";
import { NUL_PIECES, TRICKY_PIECES, trickyLlamaDocument } from "./fuzz/gguf-fixtures.ts";

const dir = mkdtempSync(join(tmpdir(), "gguf-strings-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ALL_PIECES = [...TRICKY_PIECES, ...NUL_PIECES];
const TINY = { seed: 4, nEmbd: 32, nFf: 64, nHead: 4, nKvHead: 2, nLayer: 1, nCtx: 64 };
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const errorOf = (f: () => unknown): GgufError => {
  try {
    f();
  } catch (err) {
    if (err instanceof GgufError) return err;
    throw err;
  }
  throw new Error("expected a GgufError");
};

describe("the string codec (bytes ↔ JS string)", () => {
  it("decodes valid UTF-8 to its exact text: a leading BOM stays, NUL stays", () => {
    const strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
    for (const text of ["", "a", "\uFEFF", "\uFEFFhello", "a\uFEFFb", "\0", "a\0b", "\uFFFD", "▁the", "日本語", "😀", "\u{10FFFF}"]) {
      const bytes = new TextEncoder().encode(text);
      expect(ggufStringFromBytes(bytes)).toBe(text);
      expect(ggufStringFromBytes(bytes)).toBe(strict.decode(bytes));
      expect(isUtf8Text(text)).toBe(true);
      expect(hex(ggufStringToBytes(text))).toBe(hex(bytes));
    }
    // What the old reader did: a default TextDecoder drops the BOM, so token 30143 became "".
    expect(new TextDecoder().decode(Uint8Array.of(0xef, 0xbb, 0xbf))).toBe("");
  });

  it("keeps each byte outside a well-formed sequence as U+DC00 + byte", () => {
    const cases: [number[], string][] = [
      [[0x80], "\uDC80"],
      [[0x78, 0x80], "x\uDC80"],
      [[0xe2, 0x82], "\uDCE2\uDC82"],
      [[0xe2, 0x82, 0x41], "\uDCE2\uDC82A"],
      [[0xc0, 0xaf], "\uDCC0\uDCAF"],
      [[0xe0, 0x80, 0xaf], "\uDCE0\uDC80\uDCAF"],
      [[0xed, 0xa0, 0x80], "\uDCED\uDCA0\uDC80"],
      [[0xf4, 0x90, 0x80, 0x80], "\uDCF4\uDC90\uDC80\uDC80"],
      [[0xff, 0xef, 0xbb, 0xbf], "\uDCFF\uFEFF"],
      [[0xf0, 0x9f, 0x98, 0x80, 0xf0, 0x9f, 0x98], "😀\uDCF0\uDC9F\uDC98"],
    ];
    for (const [bytes, text] of cases) {
      const s = ggufStringFromBytes(Uint8Array.from(bytes));
      expect(s).toBe(text);
      expect(isUtf8Text(s)).toBe(false);
      expect([...ggufStringToBytes(s)]).toEqual(bytes);
    }
    expect(showGgufString("x\uDC80\uFEFF\uD800\uDC80")).toBe('"x\\x80\\uFEFF\u{10080}"'); // a real pair is a character
  });

  it("round-trips every 1- and 2-byte string and 20,000 seeded random byte strings exactly", () => {
    const check = (bytes: Uint8Array) => {
      const back = ggufStringToBytes(ggufStringFromBytes(bytes));
      if (hex(back) !== hex(bytes)) throw new Error(`${hex(bytes)} came back as ${hex(back)}`);
    };
    for (let a = 0; a < 256; a++) {
      check(Uint8Array.of(a));
      for (let b = 0; b < 256; b++) check(Uint8Array.of(a, b));
    }
    const rng = mulberry32(19);
    // Biased towards lead and continuation bytes, where the decoder's decisions are.
    const alphabet = [0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff, 0xbb];
    for (let i = 0; i < 20_000; i++) {
      const bytes = Uint8Array.from({ length: Math.floor(rng() * 12) }, () => (rng() < 0.8 ? alphabet[Math.floor(rng() * alphabet.length)] : Math.floor(rng() * 256)));
      check(bytes);
    }
  });

  it("refuses JS strings that no bytes map to, naming the key", () => {
    expect(errorOf(() => ggufStringToBytes("a\uD800", { key: "k" })).message).toMatch(/lone surrogate U\+D800.*key "k"/);
    expect(errorOf(() => ggufStringToBytes("\uDC41", { key: "k" })).message).toMatch(/lone surrogate U\+DC41/);
    // The escapes of C3 A9 would read back as "é", not as this string.
    expect(errorOf(() => ggufStringToBytes("\uDCC3\uDCA9", { key: "k" })).message).toMatch(/form valid UTF-8/);
  });
});

/** A plain container (no architecture): every tricky string as a scalar and as array items. */
function containerDocument(): GgufDocument {
  const strings = ALL_PIECES.map(([, bytes]) => ggufStringFromBytes(bytes));
  return {
    metadata: [
      ...ALL_PIECES.map(([, bytes], i): GgufKv => kv.str(`strings.scalar.${i}`, ggufStringFromBytes(bytes))),
      kv.strings("strings.array", strings),
      kv.str("strings.\uFEFFkey.with.bom", "\uFEFF"),
    ],
    tensors: [{ name: "t", type: "F32", ne: [4], data: new Uint8Array(16) }],
  };
}

describe("reading and writing strings", () => {
  it("a container holding every tricky string round-trips byte for byte, values included", async () => {
    const path = join(dir, "container.gguf");
    await writeGguf(path, containerDocument());
    const bytes = readFileSync(path);
    // The bytes on disk are the pieces' bytes, not their UTF-8 re-encoding.
    for (const [, piece] of ALL_PIECES) if (piece.length > 0) expect(bytes.includes(Buffer.from(piece))).toBe(true);
    const file = await openGguf(path);
    const items = file.metadata.get("strings.array")!.value as string[];
    ALL_PIECES.forEach(([name, piece], i) => {
      expect(hex(ggufStringToBytes(items[i])), name).toBe(hex(piece));
      expect(hex(ggufStringToBytes(file.metadata.get(`strings.scalar.${i}`)!.value as string)), name).toBe(hex(piece));
    });
    expect(file.metadata.get("strings.\uFEFFkey.with.bom")!.value).toBe("\uFEFF");
    // `lab gguf inspect` shows bytes that are not text as \xNN, the invisible BOM as \uFEFF; --json
    // keeps them as lone surrogates, which JSON carries losslessly.
    const report = inspectReport(file);
    expect(report).toContain('strings.scalar.0 = "\\uFEFF"');
    expect(report).toContain('strings.scalar.6 = "\\x80"');
    expect(report).toContain('strings.scalar.10 = "\\xC0\\xAF"');
    expect(JSON.stringify(inspectJson(file).metadata["strings.scalar.6"])).toBe('"\\udc80"');
    const again = join(dir, "container-again.gguf");
    await writeGguf(again, { metadata: [...file.metadata.values()], tensors: [{ name: "t", type: "F32", ne: [4], data: new Uint8Array(16) }] });
    expect(Buffer.compare(readFileSync(again), bytes)).toBe(0);
  });

  it("a llama model with the tricky pieces in its vocabulary validates and round-trips byte for byte", async () => {
    const { doc, ids } = trickyLlamaDocument(TINY);
    const path = join(dir, "tricky-llama.gguf");
    await writeGguf(path, doc);
    const file = await openGguf(path); // validates: none of these pieces is refused
    const tokens = file.metadata.get("tokenizer.ggml.tokens")!.value as string[];
    for (const [name, piece] of TRICKY_PIECES) expect(hex(ggufStringToBytes(tokens[ids.get(name)!])), name).toBe(hex(piece));
    const header = encodeGgufHeader({ alignment: file.alignment, metadata: [...file.metadata.values()], tensors: doc.tensors }).header;
    expect(Buffer.compare(Buffer.from(header), readFileSync(path).subarray(0, file.dataOffset))).toBe(0);
    expect(showGgufString(tokens[ids.get("text + lone continuation byte")!])).toBe('"x\\x80"');
  });

  it("refuses a NUL in a llama file's vocabulary or other strings, naming key and index; a container keeps them", async () => {
    for (const [name, piece] of NUL_PIECES) {
      const { doc, ids } = trickyLlamaDocument(TINY, [[name, piece]]);
      const bytes = serialize(doc);
      const err = errorOf(() => parseGgufBytes(bytes));
      expect(err.key).toBe("tokenizer.ggml.tokens");
      expect(err.message).toContain(`token ${ids.get(name)} `);
      expect(err.message).toContain("NUL");
      // Without validation the file reads, and writes back byte for byte.
      const file = parseGgufBytes(bytes, { validate: false });
      const again = encodeGgufHeader({ alignment: file.alignment, metadata: [...file.metadata.values()], tensors: doc.tensors }).header;
      expect(Buffer.compare(Buffer.from(again), Buffer.from(bytes.subarray(0, file.dataOffset)))).toBe(0);
    }
    const named = trickyLlamaDocument(TINY, []).doc;
    named.metadata.push(kv.str("general.description", "cut\0here"), kv.strings("kit.list", ["ok", "no\0"]));
    expect(errorOf(() => parseGgufBytes(serialize(named))).key).toBe("general.description");
    named.metadata = named.metadata.filter((e) => e.key !== "general.description");
    const err = errorOf(() => parseGgufBytes(serialize(named)));
    expect(err.key).toBe("kit.list");
    expect(err.message).toContain("item 1 ");
  });

  it("keys and tensor names must be UTF-8 text without NUL: the reader and writer name the entry", () => {
    const doc: GgufDocument = { metadata: [kv.str("general.aaaa", "v"), kv.u32("x.y", 1)], tensors: [{ name: "tens", type: "F32", ne: [4], data: new Uint8Array(16) }] };
    const good = serialize(doc);
    const patch = (needle: string, byte: number) => {
      const out = good.slice();
      out[Buffer.from(good).indexOf(needle) + needle.length - 1] = byte;
      return out;
    };
    let err = errorOf(() => parseGgufBytes(patch("general.aaaa", 0x80), { validate: false }));
    expect(err.message).toMatch(/metadata key #0 "general.aaa\\x80" is not valid UTF-8/);
    expect(err.offset).toBe(24);
    err = errorOf(() => parseGgufBytes(patch("tens", 0xc0), { validate: false }));
    expect(err.message).toMatch(/tensor name #0 "ten\\xC0" is not valid UTF-8/);
    err = errorOf(() => parseGgufBytes(patch("general.aaaa", 0x00)));
    expect(err.message).toMatch(/metadata key "general.aaa\\u0000" contains a NUL/);
    expect(errorOf(() => encodeGgufHeader({ ...doc, metadata: [kv.str("k\uDC80", "v")] })).message).toMatch(/metadata key "k\\x80" is not valid UTF-8/);
    expect(errorOf(() => encodeGgufHeader({ ...doc, tensors: [{ ...doc.tensors[0], name: "t\uDCFF" }] })).message).toMatch(/tensor name/);
    expect(errorOf(() => encodeGgufHeader({ ...doc, metadata: [kv.strings("k", ["fine", "\uD83D"])] })).message).toMatch(/item 1 .*lone surrogate.*key "k"/);
  });
});

function serialize(doc: GgufDocument): Uint8Array {
  const { header, alignment } = encodeGgufHeader(doc);
  const size = header.length + doc.tensors.reduce((n, t) => n + Math.ceil(t.data.length / alignment) * alignment, 0);
  const out = new Uint8Array(size);
  out.set(header);
  let at = header.length;
  for (const t of doc.tensors) {
    out.set(t.data, at);
    at += Math.ceil(t.data.length / alignment) * alignment;
  }
  return out;
}
