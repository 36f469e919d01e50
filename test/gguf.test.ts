// GGUF reader and writer: round trips are byte-identical, every value type survives, and our
// reader agrees with node-llama-cpp's independent parser (readGgufFileInfo) on every key and tensor.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  GgufError, GgufValueType, getValue, kv, llamaHparams, openGguf, readTensorBytes, writeGguf,
  type GgufArray, type GgufFile,
} from "../lab/gguf/index.ts";
import { GgmlType } from "../lab/ggml-types.ts";
import { syntheticLlama, writeSyntheticLlama } from "../lab/model/synthetic.ts";
import { everyValueTypeDocument } from "./fuzz/gguf-fixtures.ts";

let dir: string;
let syntheticPath: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "gguf-test-"));
  syntheticPath = join(dir, "synthetic-f32.gguf");
  await writeSyntheticLlama(syntheticPath, { seed: 1 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Writes back exactly what was read: same metadata entries in order, same tensors and bytes. */
async function rewrite(file: GgufFile, path: string): Promise<void> {
  const tensors = [];
  for (const t of file.tensors) tensors.push({ name: t.name, type: t.type, ne: t.ne, data: await readTensorBytes(file, t.name) });
  await writeGguf(path, { version: file.version as 2 | 3, metadata: [...file.metadata.values()], tensors });
}

/** Our value in node-llama-cpp's shape: nested arrays as plain arrays. */
function plain(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === "object" && "itemType" in value) return plain((value as GgufArray).value);
  return value;
}

async function expectAgreesWithNodeLlamaCpp(path: string): Promise<void> {
  const { readGgufFileInfo } = await import("node-llama-cpp");
  const theirs = await readGgufFileInfo(path, { logWarnings: false });
  const ours = await openGguf(path, { validate: false });
  expect(theirs.version).toBe(ours.version);
  for (const entry of ours.metadata.values()) {
    let node: unknown = theirs.metadata;
    for (const part of entry.key.split(".")) node = (node as Record<string, unknown>)?.[part];
    expect(node, entry.key).toEqual(plain(entry.value));
  }
  expect(theirs.tensorInfo!.length).toBe(ours.tensors.length);
  ours.tensors.forEach((t, i) => {
    const info = theirs.tensorInfo![i];
    expect(info.name).toBe(t.name);
    expect(info.dimensions.map(Number)).toEqual(t.ne);
    expect(Number(info.offset)).toBe(t.relativeOffset);
    expect(Number(info.ggmlType)).toBe(GgmlType[t.type]);
  });
  expect(theirs.infoEndOffset).toBeLessThanOrEqual(ours.dataOffset);
}

describe("GGUF reader and writer", () => {
  it("reads the synthetic model's metadata, shapes and offsets", async () => {
    const file = await openGguf(syntheticPath);
    expect(file.version).toBe(3);
    expect(file.alignment).toBe(32);
    expect(getValue<string>(file, "general.architecture")).toBe("llama");
    expect(file.metadata.get("llama.block_count")).toMatchObject({ type: GgufValueType.UINT32, value: 2 });
    expect(llamaHparams(file)).toEqual({
      nVocab: 512, nCtxTrain: 256, nEmbd: 256, nFf: 512, nHead: 4, nKvHead: 2, nLayer: 2, headDim: 64,
      rmsEps: Math.fround(1e-5), ropeFreqBase: 10000,
    });
    const embd = file.tensors.find((t) => t.name === "token_embd.weight")!;
    expect(embd).toMatchObject({ type: "F32", ne: [256, 512], byteSize: 256 * 512 * 4 });
    expect(embd.offset % 32).toBe(0);
    const last = file.tensors[file.tensors.length - 1];
    expect(last.offset + last.byteSize).toBeLessThanOrEqual(file.fileSize);
  });

  it("reads tensor data lazily and exactly as written", async () => {
    const model = syntheticLlama({ seed: 1 });
    const file = await openGguf(syntheticPath);
    for (const name of ["blk.1.ffn_down.weight", "output_norm.weight"]) {
      const bytes = await readTensorBytes(file, name);
      const want = model.tensors.find((t) => t.name === name)!.data;
      expect(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4)).toEqual(want);
    }
    await expect(readTensorBytes(file, "no.such.tensor")).rejects.toBeInstanceOf(GgufError);
  });

  it("round-trips the synthetic model byte for byte", async () => {
    const out = join(dir, "rewritten.gguf");
    await rewrite(await openGguf(syntheticPath), out);
    expect(readFileSync(out).equals(readFileSync(syntheticPath))).toBe(true);
  });

  it.each([[3, 64], [2, 32], [3, 1]] as const)("round-trips every value type (v%i, alignment %i)", async (version, alignment) => {
    const path = join(dir, `sink-v${version}-a${alignment}.gguf`);
    const doc = everyValueTypeDocument(version, alignment);
    await writeGguf(path, doc);
    const file = await openGguf(path, { validate: false });
    expect(file.version).toBe(version);
    expect(file.alignment).toBe(alignment);
    expect([...file.metadata.keys()]).toEqual(doc.metadata.map((e) => e.key));
    for (const entry of doc.metadata) {
      const got = file.metadata.get(entry.key)!;
      expect(got.type, entry.key).toBe(entry.type);
      expect(got.itemType, entry.key).toBe(entry.itemType);
      expect(got.value, entry.key).toEqual(entry.value);
    }
    for (const t of doc.tensors) expect(await readTensorBytes(file, t.name)).toEqual(t.data);
    const again = join(dir, `sink-v${version}-a${alignment}-again.gguf`);
    await rewrite(file, again);
    expect(readFileSync(again).equals(readFileSync(path))).toBe(true);
    expect(file.dataOffset % alignment).toBe(0);
    expect(statSync(path).size % alignment).toBe(0);
  });

  it("agrees with node-llama-cpp's readGgufFileInfo on every key and tensor", async () => {
    const sink = join(dir, "sink-agree.gguf");
    await writeGguf(sink, everyValueTypeDocument(3, 64));
    await expectAgreesWithNodeLlamaCpp(sink);
    await expectAgreesWithNodeLlamaCpp(syntheticPath);
  });

  it("handles headers larger than the reader's first window and the writer's first buffer", async () => {
    // 100k tokens: a ~3 MB header, so the writer's buffer grows many times and the reader
    // re-parses with bigger windows (its first is 256 KiB).
    const tokens = Array.from({ length: 100_000 }, (_, i) => `▁piece${i}`);
    const path = join(dir, "big-vocab.gguf");
    await writeGguf(path, {
      metadata: [kv.str("general.name", "big"), kv.strings("tokenizer.ggml.tokens", tokens), kv.f32s("tokenizer.ggml.scores", tokens.map((_, i) => -i))],
      tensors: [{ name: "x", type: "F32", ne: [4], data: Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16) }],
    });
    const file = await openGguf(path);
    expect(file.dataOffset).toBeGreaterThan(2 << 20);
    expect(getValue<string[]>(file, "tokenizer.ggml.tokens")).toEqual(tokens);
    expect(getValue<number[]>(file, "tokenizer.ggml.scores")![99_999]).toBe(-99_999);
    expect(await readTensorBytes(file, "x")).toEqual(Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16));
    const again = join(dir, "big-vocab-again.gguf");
    await rewrite(file, again);
    expect(readFileSync(again).equals(readFileSync(path))).toBe(true);
    await expectAgreesWithNodeLlamaCpp(path);
  });

  it("writes atomically and refuses bad documents before touching the target", async () => {
    const path = join(dir, "atomic.gguf");
    writeFileSync(path, "previous contents");
    const bad = [
      { metadata: [kv.u32("x.count", -1)], tensors: [] },
      { metadata: [kv.i8("x.small", 300)], tensors: [] },
      { metadata: [kv.u32("x.a", 1), kv.u32("x.a", 2)], tensors: [] },
      { metadata: [], tensors: [{ name: "t", type: "Q8_0" as const, ne: [33], data: new Uint8Array(34) }] },
      { metadata: [], tensors: [{ name: "t", type: "F32" as const, ne: [4], data: new Uint8Array(15) }] },
      { metadata: [], alignment: 64, tensors: [] },
    ];
    for (const doc of bad) await expect(writeGguf(path, doc)).rejects.toBeInstanceOf(GgufError);
    expect(readFileSync(path, "utf8")).toBe("previous contents");
  });

  it("rejects what is not GGUF with a GgufError naming the offset", async () => {
    const cases: [string, Uint8Array, RegExp][] = [
      ["empty", new Uint8Array(0), /not a GGUF file/],
      ["wrong magic", new TextEncoder().encode("GGML\x03\0\0\0"), /magic/],
      ["version 1", Uint8Array.of(0x47, 0x47, 0x55, 0x46, 1, 0, 0, 0), /v1/],
      ["version 9", Uint8Array.of(0x47, 0x47, 0x55, 0x46, 9, 0, 0, 0), /version 9/],
    ];
    for (const [name, bytes, message] of cases) {
      const path = join(dir, `bad-${name.replace(/ /g, "-")}.gguf`);
      writeFileSync(path, bytes);
      const err = await openGguf(path).catch((e: unknown) => e);
      expect(err, name).toBeInstanceOf(GgufError);
      expect((err as GgufError).message, name).toMatch(message);
      expect((err as GgufError).offset, name).toBeTypeOf("number");
    }
  });
});
