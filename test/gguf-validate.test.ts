// The validator rejects exactly what llama.cpp cannot load, naming the key or tensor, and accepts
// the variants llama.cpp accepts. Files that make llama.cpp abort the whole process are only ever
// shown to our validator; files llama.cpp rejects with an ordinary error are also shown to
// llama.cpp, to prove the two agree.
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  GgufError, GgufValueType, kv, openGguf, parseGgufBytes, writeGguf, type GgufDocument, type GgufKv,
} from "../lab/gguf/index.ts";
import { tinyLlamaDocument } from "./fuzz/gguf-fixtures.ts";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "gguf-validate-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// ---------------------------------------------------------------------------------------------
// Document surgery

type Mutation = (doc: GgufDocument) => void;
const drop = (key: string): Mutation => (doc) => {
  doc.metadata = doc.metadata.filter((e) => e.key !== key);
};
const replace = (entry: GgufKv): Mutation => (doc) => {
  const i = doc.metadata.findIndex((e) => e.key === entry.key);
  if (i < 0) doc.metadata.push(entry);
  else doc.metadata[i] = entry;
};
const editTokens = (edit: (tokens: string[]) => void): Mutation => (doc) => {
  const entry = doc.metadata.find((e) => e.key === "tokenizer.ggml.tokens")!;
  const tokens = [...(entry.value as string[])];
  edit(tokens);
  entry.value = tokens;
};
const dropTensor = (name: string): Mutation => (doc) => {
  doc.tensors = doc.tensors.filter((t) => t.name !== name);
};
const N_VOCAB = 512;

let counter = 0;
async function build(...mutations: Mutation[]): Promise<string> {
  const doc = tinyLlamaDocument();
  for (const m of mutations) m(doc);
  const path = join(dir, `case-${counter++}.gguf`);
  await writeGguf(path, doc);
  return path;
}

async function rejection(path: string): Promise<GgufError> {
  const err = await openGguf(path).then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(GgufError);
  return err as GgufError;
}

// ---------------------------------------------------------------------------------------------
// Cases

interface Rejected {
  name: string;
  mutate: Mutation[];
  key?: string;
  tensor?: string;
  message?: RegExp;
  /** what llama.cpp 3.21.1 does with the file: an error we can observe, or a process abort */
  llamaCpp: "error" | "abort" | "accepts (we are stricter)";
}

const rejected: Rejected[] = [
  { name: "missing feed_forward_length", mutate: [drop("llama.feed_forward_length")], key: "llama.feed_forward_length", llamaCpp: "abort" },
  { name: "missing head_count", mutate: [drop("llama.attention.head_count")], key: "llama.attention.head_count", llamaCpp: "abort" },
  { name: "missing byte token <0x41>", mutate: [editTokens((t) => { t[3 + 0x41] = "<0x41>?"; })], key: "tokenizer.ggml.tokens", message: /<0x41>/, llamaCpp: "abort" },
  { name: "duplicate token", mutate: [editTokens((t) => { t[400] = t[399]; })], key: "tokenizer.ggml.tokens", message: /duplicates/, llamaCpp: "abort" },
  { name: "tokens equal up to a NUL byte", mutate: [editTokens((t) => { t[400] = `${t[399]}\0x`; })], key: "tokenizer.ggml.tokens", message: /NUL/, llamaCpp: "abort" },
  { name: "architecture with a NUL byte", mutate: [replace(kv.str("general.architecture", "llama\0x"))], key: "general.architecture", message: /NUL/, llamaCpp: "accepts (we are stricter)" },
  {
    name: "tensor name with a NUL byte", tensor: "output.weight\0x", message: /NUL/, llamaCpp: "accepts (we are stricter)",
    mutate: [(doc) => { doc.tensors.find((t) => t.name === "output.weight")!.name = "output.weight\0x"; }],
  },
  { name: "unknown rope scaling type", mutate: [replace(kv.str("llama.rope.scaling.type", "sideways"))], key: "llama.rope.scaling.type", llamaCpp: "abort" },
  { name: "expert_used_count without experts", mutate: [replace(kv.u32("llama.expert_used_count", 2))], key: "llama.expert_used_count", llamaCpp: "abort" },
  { name: "block_count 0", mutate: [replace(kv.u32("llama.block_count", 0))], key: "llama.block_count", llamaCpp: "abort" },
  { name: "context_length as i32", mutate: [replace(kv.i32("llama.context_length", 64))], key: "llama.context_length", message: /INT32.*UINT32/, llamaCpp: "error" },
  { name: "embedding_length as u64", mutate: [replace(kv.u64("llama.embedding_length", 32))], key: "llama.embedding_length", llamaCpp: "error" },
  { name: "missing block_count", mutate: [drop("llama.block_count")], key: "llama.block_count", llamaCpp: "error" },
  { name: "missing rms epsilon", mutate: [drop("llama.attention.layer_norm_rms_epsilon")], key: "llama.attention.layer_norm_rms_epsilon", llamaCpp: "error" },
  { name: "rms epsilon as f64", mutate: [replace(kv.f64("llama.attention.layer_norm_rms_epsilon", 1e-5))], key: "llama.attention.layer_norm_rms_epsilon", llamaCpp: "error" },
  { name: "rope freq_base as u32", mutate: [replace(kv.u32("llama.rope.freq_base", 10000))], key: "llama.rope.freq_base", llamaCpp: "error" },
  { name: "rope dimension_count != head size", mutate: [replace(kv.u32("llama.rope.dimension_count", 4))], key: "llama.rope.dimension_count", llamaCpp: "error" },
  { name: "per-layer head_count of the wrong length", mutate: [replace(kv.u32s("llama.attention.head_count", [4, 4, 4]))], key: "llama.attention.head_count", llamaCpp: "error" },
  { name: "per-layer head_count_kv as f32", mutate: [replace(kv.f32s("llama.attention.head_count_kv", [2, 2]))], key: "llama.attention.head_count_kv", llamaCpp: "error" },
  { name: "missing tokenizer model", mutate: [drop("tokenizer.ggml.model")], key: "tokenizer.ggml.model", llamaCpp: "error" },
  { name: "unknown tokenizer model", mutate: [replace(kv.str("tokenizer.ggml.model", "morse"))], key: "tokenizer.ggml.model", llamaCpp: "error" },
  { name: "missing tokens", mutate: [drop("tokenizer.ggml.tokens")], key: "tokenizer.ggml.tokens", llamaCpp: "error" },
  { name: "scores shorter than tokens", mutate: [replace(kv.f32s("tokenizer.ggml.scores", new Array(N_VOCAB - 1).fill(0)))], key: "tokenizer.ggml.scores", llamaCpp: "error" },
  { name: "token_type as u32", mutate: [replace(kv.u32s("tokenizer.ggml.token_type", new Array(N_VOCAB).fill(1)))], key: "tokenizer.ggml.token_type", llamaCpp: "error" },
  { name: "bos id as i32", mutate: [replace(kv.i32("tokenizer.ggml.bos_token_id", 1))], key: "tokenizer.ggml.bos_token_id", llamaCpp: "error" },
  { name: "missing tensor", mutate: [dropTensor("blk.1.ffn_up.weight")], tensor: "blk.1.ffn_up.weight", llamaCpp: "error" },
  { name: "missing token embedding", mutate: [dropTensor("token_embd.weight")], tensor: "token_embd.weight", llamaCpp: "error" },
  {
    name: "wrong tensor shape", tensor: "blk.0.attn_k.weight", llamaCpp: "error", message: /\[32, 16\]/,
    mutate: [(doc) => { doc.tensors.find((t) => t.name === "blk.0.attn_k.weight")!.ne = [32, 8, 2]; }],
  },
  {
    name: "extra tensor", tensor: "blk.0.mystery.weight", llamaCpp: "error",
    mutate: [(doc) => { doc.tensors.push({ name: "blk.0.mystery.weight", type: "F32", ne: [4], data: new Uint8Array(16) }); }],
  },
  {
    name: "head_count not a multiple of head_count_kv", key: "llama.attention.head_count_kv", llamaCpp: "error",
    mutate: [replace(kv.u32("llama.attention.head_count_kv", 3))],
  },
  { name: "special token id out of vocabulary", mutate: [replace(kv.u32("tokenizer.ggml.eos_token_id", N_VOCAB))], key: "tokenizer.ggml.eos_token_id", llamaCpp: "accepts (we are stricter)" },
  { name: "file_type as u16", mutate: [replace(kv.u16("general.file_type", 0))], key: "general.file_type", llamaCpp: "error" },
  {
    name: "a norm weight stored as F16", tensor: "blk.0.attn_norm.weight", message: /must be F32/, llamaCpp: "abort",
    mutate: [(doc) => { const t = doc.tensors.find((x) => x.name === "blk.0.attn_norm.weight")!; t.type = "F16"; t.data = new Uint8Array(64); }],
  },
  {
    name: "a weight matrix stored as Q8_1", tensor: "output.weight", message: /Q8_1/, llamaCpp: "abort",
    mutate: [(doc) => { const t = doc.tensors.find((x) => x.name === "output.weight")!; t.type = "Q8_1"; t.data = new Uint8Array(512 * 36); }],
  },
  { name: "architecture as a number", mutate: [replace(kv.u32("general.architecture", 1))], key: "general.architecture", llamaCpp: "error" },
];

const accepted: { name: string; mutate: Mutation[] }[] = [
  { name: "the tiny model as written", mutate: [] },
  { name: "per-layer head_count as an i32 array", mutate: [replace(kv.i32s("llama.attention.head_count", [4, 4]))] },
  { name: "per-layer head_count_kv and feed_forward_length as u32 arrays", mutate: [replace(kv.u32s("llama.attention.head_count_kv", [2, 2])), replace(kv.u32s("llama.feed_forward_length", [64, 64]))] },
  { name: "no head_count_kv (defaults to head_count)", mutate: [drop("llama.attention.head_count_kv"), (doc) => {
    for (const t of doc.tensors) if (/attn_[kv]\.weight$/.test(t.name)) { t.ne = [32, 32]; t.data = new Uint8Array(32 * 32 * 4); }
  }] },
  { name: "tied output (no output.weight)", mutate: [dropTensor("output.weight")] },
  { name: "no scores, no token types, no special ids", mutate: [drop("tokenizer.ggml.scores"), drop("tokenizer.ggml.token_type"), drop("tokenizer.ggml.bos_token_id"), drop("tokenizer.ggml.eos_token_id"), drop("tokenizer.ggml.unknown_token_id")] },
  { name: "scores as i32, longer than the vocabulary", mutate: [replace(kv.i32s("tokenizer.ggml.scores", new Array(N_VOCAB + 5).fill(-1)))] },
  { name: "RoPE frequency factors (rope_freqs.weight)", mutate: [(doc) => {
    doc.tensors.push({ name: "rope_freqs.weight", type: "F32", ne: [4], data: new Uint8Array(new Float32Array([1, 1, 1, 1]).buffer) });
  }] },
  { name: "extra unknown metadata keys", mutate: [replace(kv.str("kit.note", "hello")), replace(kv.u64s("kit.numbers", [1n, 2n]))] },
];

describe("validateGguf on llama files", () => {
  it.each(rejected.map((c) => [c.name, c] as const))("rejects %s", async (_name, c) => {
    const err = await rejection(await build(...c.mutate));
    if (c.key) expect(err.key).toBe(c.key);
    if (c.tensor) expect(err.tensor).toBe(c.tensor);
    if (c.message) expect(err.message).toMatch(c.message);
    expect(err.message).toContain(c.key ?? c.tensor);
  });

  it.each(accepted.map((c) => [c.name, c] as const))("accepts %s", async (_name, c) => {
    await expect(openGguf(await build(...c.mutate))).resolves.toBeDefined();
  });

  it("agrees with llama.cpp: it loads what we accept and errors on what we reject", async () => {
    const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
    const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.disabled });
    for (const c of accepted) {
      const model = await llama.loadModel({ modelPath: await build(...c.mutate) });
      expect(model.tokenize("the one").length, c.name).toBeGreaterThan(0);
      await model.dispose();
    }
    // Only the cases where llama.cpp fails with an error; the "abort" ones would kill this process.
    for (const c of rejected.filter((r) => r.llamaCpp === "error")) {
      const path = await build(...c.mutate);
      await expect(llama.loadModel({ modelPath: path }), c.name).rejects.toThrow();
    }
  });

  it("rejects nested arrays only when validating (they are valid GGUF that ggml refuses)", async () => {
    const path = await build(replace(kv.arrays("kit.nested", [{ itemType: GgufValueType.UINT8, value: [1] }])));
    const err = await rejection(path);
    expect(err.key).toBe("kit.nested");
    await expect(openGguf(path, { validate: false })).resolves.toBeDefined();
  });
});

// ---------------------------------------------------------------------------------------------
// Container-level damage, made by patching bytes of a valid file

describe("validateGguf on damaged containers", () => {
  let bytes: Uint8Array;
  beforeAll(async () => {
    bytes = new Uint8Array(readFileSync(await build()));
  });
  const patchU64 = (at: number, value: bigint) => {
    const copy = bytes.slice();
    new DataView(copy.buffer).setBigUint64(at, value, true);
    return copy;
  };
  const errorOf = (b: Uint8Array) => {
    try {
      parseGgufBytes(b);
    } catch (e) {
      expect(e).toBeInstanceOf(GgufError);
      return e as GgufError;
    }
    throw new Error("expected a GgufError");
  };
  /** Byte position of a tensor's stored data offset. */
  const offsetField = (name: string) => {
    const file = parseGgufBytes(bytes);
    const t = file.tensors.find((x) => x.name === name)!;
    return t.infoOffset + 8 + Buffer.byteLength(name) + 4 + 8 * t.ne.length + 4;
  };

  it("fails fast on absurd counts and lengths without allocating", () => {
    const file = parseGgufBytes(bytes);
    const tokens = file.metadata.get("tokenizer.ggml.tokens")!;
    const tokenCount = tokens.entryOffset! + 8 + "tokenizer.ggml.tokens".length + 4 + 4;
    for (const [at, field] of [[8, "tensor count"], [16, "metadata count"], [tokenCount, "item count"], [24, "metadata key length"]] as const) {
      for (const huge of [1n << 60n, (1n << 64n) - 1n, 1n << 32n]) {
        const t0 = performance.now();
        const err = errorOf(patchU64(at, huge));
        expect(err.message).toContain(field);
        expect(err.offset).toBe(at);
        expect(performance.now() - t0).toBeLessThan(200);
      }
    }
  });

  it("fails fast on a count a many-GB file could hold but no header needs", async () => {
    // A sparse 6 GiB file: the token count fits the file (6 GiB / 8 bytes per string), not the
    // 1 GiB header limit, so the reader refuses it without reading gigabytes.
    const file = parseGgufBytes(bytes);
    const tokens = file.metadata.get("tokenizer.ggml.tokens")!;
    const tokenCount = tokens.entryOffset! + 8 + "tokenizer.ggml.tokens".length + 4 + 4;
    const path = join(dir, "sparse-6g.gguf");
    writeFileSync(path, patchU64(tokenCount, 600_000_000n));
    truncateSync(path, 6 * 2 ** 30);
    const t0 = performance.now();
    const err = await rejection(path);
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(err.message).toMatch(/item count .* is 600000000, but the header's 1 GiB limit/);
    expect(err.key).toBe("tokenizer.ggml.tokens");
  });

  it("rejects tensor data outside the file, misaligned, overlapping or out of order", () => {
    const name = "blk.0.attn_q.weight";
    const at = offsetField(name);
    const stored = new DataView(bytes.buffer).getBigUint64(at, true);
    const cases: [bigint, RegExp][] = [
      [1n << 40n, /end of the file|back to back/],
      [stored + 4n, /alignment/],
      [stored - 32n, /overlaps/],
      [stored + 32n, /back to back/],
    ];
    for (const [value, message] of cases) {
      const err = errorOf(patchU64(at, value));
      expect(err.tensor).toBe(name);
      expect(err.message).toMatch(message);
    }
    // Truncating the file inside the last tensor's data.
    const err = errorOf(bytes.subarray(0, bytes.length - 100));
    expect(err.message).toMatch(/end of the file/);
  });

  it("treats a truncated header as a GgufError at the cut", () => {
    const file = parseGgufBytes(bytes);
    for (const cut of [3, 7, 20, 100, file.dataOffset - 1]) {
      const err = errorOf(bytes.subarray(0, cut));
      expect(err.message).toMatch(/truncated|not a GGUF|end of the file/);
    }
  });

  it("writes the damaged files it describes: openGguf on disk agrees with parseGgufBytes", async () => {
    const path = join(dir, "damaged.gguf");
    writeFileSync(path, patchU64(16, 1n << 60n));
    const err = await rejection(path);
    expect(err.offset).toBe(16);
  });
});
