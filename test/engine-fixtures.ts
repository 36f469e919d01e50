// Model files for the engine and measurement tests: the seeded synthetic llama from
// lab/model/synthetic.ts, written as F32 or with every weight matrix quantized to one type
// (norm vectors stay F32, as llama.cpp's quantizer leaves them).
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { syntheticLlama, type SyntheticLlamaOptions } from "../lab/model/synthetic.ts";
import { kv, openGguf, readTensorBytes, writeGguf } from "../lab/gguf/index.ts";
import { mulberry32 } from "../lab/random.ts";
import { dequantizeTensor, isSupportedType, quantizeTensor } from "../lab/quant/index.ts";
import type { GgmlTypeName } from "../lab/ggml-types.ts";
import { openEngine, type Engine, type EngineOptions } from "../lab/engine/engine.ts";
import type { LabEngine } from "../lab/engine/lab-engine.ts";

/** The committed target model (LAB_TARGET_GGUF overrides, e.g. to try another trained model). */
export const TARGET_GGUF = process.env.LAB_TARGET_GGUF ?? fileURLToPath(new URL("../data/models/target.gguf", import.meta.url));
export const hasTarget = existsSync(TARGET_GGUF);

export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Writes the synthetic model with every 2-D weight in `type`; returns the path. */
export async function writeSyntheticVariant(path: string, type: GgmlTypeName, opts: SyntheticLlamaOptions = { seed: 1 }): Promise<string> {
  const model = syntheticLlama(opts);
  await writeGguf(path, {
    metadata: model.metadata,
    tensors: model.tensors.map((t) => {
      const tensorType: GgmlTypeName = t.ne.length === 2 ? type : "F32";
      const data = tensorType === "F32"
        ? new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)
        : quantizeTensor(tensorType, t.data, t.ne);
      return { name: t.name, type: tensorType, ne: t.ne, data };
    }),
  });
  return path;
}

/** The quant types the lab can write right now (k-quants appear once lab/quant registers them). */
export function writableTypes(candidates: GgmlTypeName[]): GgmlTypeName[] {
  return candidates.filter((t) => isSupportedType(t));
}

/** The same model with every 2-D weight quantized to `type` and dequantized back, stored as F32:
 *  the exact weights a quantized file holds, for an engine that computes in F32 throughout. */
export async function writeDequantizedVariant(path: string, type: GgmlTypeName, opts: SyntheticLlamaOptions = { seed: 1 }): Promise<string> {
  const model = syntheticLlama(opts);
  await writeGguf(path, {
    metadata: model.metadata,
    tensors: model.tensors.map((t) => {
      const data = t.ne.length === 2 ? dequantizeTensor(type, quantizeTensor(type, t.data, t.ne), t.ne) : t.data;
      return { name: t.name, type: "F32" as const, ne: t.ne, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
    }),
  });
  return path;
}

/** Any GGUF with every tensor dequantized to F32 (metadata unchanged): the exact weights, in F32. */
export async function writeDequantizedCopy(src: string, dst: string): Promise<string> {
  const file = await openGguf(src);
  const tensors = [];
  for (const t of file.tensors) {
    const data = dequantizeTensor(t.type, await readTensorBytes(file, t.name), t.ne);
    tensors.push({ name: t.name, type: "F32" as const, ne: t.ne, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) });
  }
  const metadata = [...file.metadata.values()].filter((m) => m.key !== "general.file_type" && m.key !== "general.quantization_version");
  await writeGguf(dst, { metadata, tensors });
  return dst;
}

/**
 * A "third-party" shape: the synthetic model resized to nVocab tokens (the SPM vocabulary padded
 * with plain pieces "tokN", fresh seeded embedding/output rows), with any head size the options
 * give, every 2-D weight stored as `type` (F16 by default, as many downloaded models are);
 * `tied` drops output.weight so the output head reuses token_embd (as llama.cpp does then).
 */
export async function writeWideVocabVariant(path: string, nVocab: number, opts: SyntheticLlamaOptions, type: GgmlTypeName = "F16",
  { tied = false } = {}): Promise<string> {
  const model = syntheticLlama(opts);
  const tokens = model.metadata.find((m) => m.key === "tokenizer.ggml.tokens")!.value as string[];
  const scores = model.metadata.find((m) => m.key === "tokenizer.ggml.scores")!.value as number[];
  const types = model.metadata.find((m) => m.key === "tokenizer.ggml.token_type")!.value as number[];
  const base = tokens.length;
  const padded = {
    tokens: [...tokens, ...Array.from({ length: nVocab - base }, (_, i) => `tok${i}`)],
    scores: [...Array.from(scores), ...new Array(nVocab - base).fill(-1000)],
    types: [...Array.from(types), ...new Array(nVocab - base).fill(1)],
  };
  const metadata = model.metadata.map((m) =>
    m.key === "tokenizer.ggml.tokens" ? kv.strings(m.key, padded.tokens)
      : m.key === "tokenizer.ggml.scores" ? kv.f32s(m.key, padded.scores)
        : m.key === "tokenizer.ggml.token_type" ? kv.i32s(m.key, padded.types) : m);
  const rand = mulberry32(opts.seed + 1000);
  await writeGguf(path, {
    metadata,
    tensors: model.tensors.filter((t) => !(tied && t.name === "output.weight")).map((t) => {
      let { ne, data } = t;
      if (t.name === "token_embd.weight" || t.name === "output.weight") {
        ne = [ne[0], nVocab];
        const grown = new Float32Array(ne[0] * nVocab);
        grown.set(data);
        const scale = t.name === "output.weight" ? 1 / Math.sqrt(ne[0]) : 1;
        for (let i = data.length; i < grown.length; i++) grown[i] = (2 * rand() - 1) * scale;
        data = grown;
      }
      const tensorType: GgmlTypeName = ne.length === 2 ? type : "F32";
      const bytes = tensorType === "F32" ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : quantizeTensor(tensorType, data, ne);
      return { name: t.name, type: tensorType, ne, data: bytes };
    }),
  });
  return path;
}

/** n token ids from a seeded RNG, in [3, nVocab) (past the tokenizer's special ids). */
export function randomTokens(n: number, seed: number, nVocab: number): number[] {
  const r = mulberry32(seed);
  return Array.from({ length: n }, () => 3 + Math.floor(r() * (nVocab - 3)));
}

/** Largest |a[i] − b[i]| over two rows (equal entries, infinities included, count as 0). */
export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === b[i]) continue;
    m = Math.max(m, Math.abs(a[i] - b[i]));
  }
  return m;
}

/** The synthetic F32 llama (seed 3, context 256) in a temp dir, and LabEngines opened on it; call
 *  setup() in beforeAll and cleanup() in afterAll (it disposes every engine opened). */
export function syntheticLabEngines(prefix: string) {
  const tmp = tempDir(prefix);
  const engines: Engine[] = [];
  let model = "";
  return {
    get model(): string { return model; },
    get dir(): string { return tmp.dir; },
    async setup(): Promise<void> {
      model = await writeSyntheticVariant(join(tmp.dir, "f32.gguf"), "F32", { seed: 3, nCtx: 256 });
    },
    async open(opts: EngineOptions = {}): Promise<LabEngine> {
      const e = (await openEngine("lab", model, { contextSize: 256, ...opts })) as LabEngine;
      engines.push(e);
      return e;
    },
    async cleanup(): Promise<void> {
      for (const e of engines) await e.dispose();
      tmp.cleanup();
    },
  };
}
