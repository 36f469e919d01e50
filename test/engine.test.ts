// LabEngine against llama.cpp (LlamaCppEngine) on the same files: exact agreement in F32, bounded
// divergence on every quantized variant, and the sequence operations (batched decode, truncate,
// fork) that speculative decoding and the prefix cache rely on. Bad input fails in words.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { openEngine, EngineError, type Engine } from "../lab/engine/engine.ts";
import { generate } from "../lab/engine/generate.ts";
import { compareDistributions } from "../lab/measure/quality.ts";
import { syntheticLlama } from "../lab/model/synthetic.ts";
import { writeGguf, GgufError } from "../lab/gguf/index.ts";
import { tempDir, writeSyntheticVariant, writeDequantizedVariant, writeDequantizedCopy, writeWideVocabVariant, writableTypes, hasTarget, TARGET_GGUF } from "./engine-fixtures.ts";
import { quantizeGgufFile } from "../lab/quant/file.ts";
import { loadProse } from "../lab/measure/evalsets.ts";
import type { GgmlTypeName } from "../lab/ggml-types.ts";

const PROMPTS = [
  "the quick brown fox jumps over the lazy dog and then the cat sat on the mat by the door",
  "Once upon a time there was a small model that could count: 1 2 3 4 5 6 7 8 9 10 and more",
  "héllo wörld, what is 12 + 30? the answer is",
];

const tmp = tempDir("engine-test-");
let f32Path = "";
let lab: Engine;
let llama: Engine;

beforeAll(async () => {
  f32Path = await writeSyntheticVariant(join(tmp.dir, "f32.gguf"), "F32");
  lab = await openEngine("lab", f32Path, { contextSize: 256, maxSequences: 4 });
  llama = await openEngine("llama", f32Path, { contextSize: 256, maxSequences: 4, threads: 1 });
});

afterAll(async () => {
  await lab?.dispose();
  await llama?.dispose();
  tmp.cleanup();
});

async function allRows(engine: Engine, ids: number[]): Promise<Float32Array[]> {
  const seq = await engine.createSequence();
  try {
    return await seq.evaluate(ids, { all: true });
  } finally {
    await seq.free();
  }
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe("F32, F32 KV cache, flash attention off", () => {
  it("both engines tokenize the same way", () => {
    for (const p of PROMPTS) expect(lab.tokenizer.encode(p)).toEqual(llama.tokenizer.encode(p));
  });

  it("max |Δ log p| ≤ 1e-4 at every position of fixed prompts", async () => {
    for (const p of PROMPTS) {
      const ids = lab.tokenizer.encode(p);
      const a = await allRows(lab, ids);
      const b = await allRows(llama, ids);
      expect(a.length).toBe(ids.length);
      const cmp = compareDistributions(a, b);
      expect(cmp.maxAbsLogProbDiff).toBeLessThanOrEqual(1e-4);
      expect(cmp.top1).toBe(1);
    }
  });

  it("identical 64-token greedy continuations", async () => {
    for (const p of PROMPTS.slice(0, 2)) {
      const ids = lab.tokenizer.encode(p);
      const a = await generate(lab, ids, { maxTokens: 64, stopAtEos: false });
      const b = await generate(llama, ids, { maxTokens: 64, stopAtEos: false });
      expect(a).toHaveLength(64);
      expect(a).toEqual(b);
    }
  });

  it("the same seed samples the same tokens on both engines", async () => {
    const ids = lab.tokenizer.encode(PROMPTS[0]);
    const opts = { maxTokens: 32, temperature: 0.9, topK: 40, topP: 0.95, seed: 1234, stopAtEos: false };
    const a = await generate(lab, ids, opts);
    expect(a).toEqual(await generate(llama, ids, opts));
    expect(a).not.toEqual(await generate(lab, ids, { ...opts, seed: 99 }));
  });
});

describe.each(["lab", "llama"] as const)("sequence operations (%s engine)", (name) => {
  const engine = () => (name === "lab" ? lab : llama);
  const tol = name === "lab" ? 0 : 1e-5;

  it("batched decode gives the same tokens (and distributions) as one-at-a-time decode", async () => {
    const e = engine();
    const prompts = PROMPTS.map((p) => e.tokenizer.encode(p));
    const steps = 12;
    // One at a time.
    const single: number[][] = [];
    for (const ids of prompts) single.push(await generate(e, ids, { maxTokens: steps, stopAtEos: false }));
    // All sequences in one batch per step.
    const seqs = await Promise.all(prompts.map(() => e.createSequence()));
    try {
      const dists = [];
      for (const [i, s] of seqs.entries()) dists.push(await s.prefill(prompts[i]));
      const batched: number[][] = prompts.map(() => []);
      let rows = dists;
      for (let k = 0; k < steps; k++) {
        const tokens = rows.map((r) => argmaxOf(r));
        tokens.forEach((t, i) => batched[i].push(t));
        if (k + 1 < steps) rows = await e.decode(seqs.map((sequence, i) => ({ sequence, token: tokens[i] })));
      }
      expect(batched).toEqual(single);
    } finally {
      for (const s of seqs) await s.free();
    }
  });

  it("truncate + re-decode gives the same distributions", async () => {
    const e = engine();
    const ids = e.tokenizer.encode(PROMPTS[0]);
    const seq = await e.createSequence();
    try {
      const first = await seq.evaluate(ids, { all: true });
      await seq.truncate(10);
      expect(seq.length).toBe(10);
      expect(seq.tokens).toEqual(ids.slice(0, 10));
      const again = await seq.evaluate(ids.slice(10), { all: true });
      expect(again).toHaveLength(ids.length - 10);
      for (let i = 0; i < again.length; i++) expect(maxAbsDiff(again[i], first[10 + i])).toBeLessThanOrEqual(tol);
      // Roll back one token and decode a different one: as if it had never been seen.
      await seq.truncate(ids.length - 1);
      const [alt] = await e.decode([{ sequence: seq, token: 300 }]);
      const fresh = await allRows(e, [...ids.slice(0, -1), 300]);
      expect(maxAbsDiff(alt, fresh[fresh.length - 1])).toBeLessThanOrEqual(name === "lab" ? 1e-6 : 1e-4);
    } finally {
      await seq.free();
    }
  });

  it("fork shares the prefix and the branches stay independent", async () => {
    const e = engine();
    const ids = e.tokenizer.encode(PROMPTS[1]);
    const parent = await e.createSequence();
    try {
      await parent.evaluate(ids);
      const child = await parent.fork();
      const half = await parent.fork(20);
      try {
        expect(child.tokens).toEqual(ids);
        expect(half.tokens).toEqual(ids.slice(0, 20));
        const [p, c] = await e.decode([{ sequence: parent, token: 280 }, { sequence: child, token: 281 }]);
        const [h] = await e.decode([{ sequence: half, token: ids[20] }]);
        const refP = await allRows(e, [...ids, 280]);
        const refC = await allRows(e, [...ids, 281]);
        const refH = await allRows(e, ids.slice(0, 21));
        expect(maxAbsDiff(p, refP[refP.length - 1])).toBeLessThanOrEqual(1e-4);
        expect(maxAbsDiff(c, refC[refC.length - 1])).toBeLessThanOrEqual(1e-4);
        expect(maxAbsDiff(h, refH[20])).toBeLessThanOrEqual(1e-4);
        expect(parent.length).toBe(ids.length + 1);
      } finally {
        await child.free();
        await half.free();
      }
    } finally {
      await parent.free();
    }
  });

  it("reports memory: KV bytes per token = 2 × layers × kvHeads × headDim × 4", () => {
    const m = engine().memory();
    const hp = engine().hparams;
    expect(m.kvBytesPerToken).toBe(2 * hp.nLayer * hp.nKvHead * hp.headDim * 4);
    expect(m.kvBytesPerTokenFormula).toBe(m.kvBytesPerToken);
    expect(m.weightBytes).toBeGreaterThanOrEqual(m.tensorBytes * 0.99);
    expect(m.peakRssBytes).toBeGreaterThan(0);
  });
});

function argmaxOf(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

// On the same quantized file the engines differ by design: llama.cpp quantizes activations to 8 bits
// (Q8_0 for the legacy formats, Q8_K for k-quants) before its quantized dot products, and rounds them
// to F16/BF16 for F16/BF16 weights; LabEngine keeps activations in F32. Mean KL(llama ‖ lab) per
// position measured on the synthetic model: F16 1.7e-6, BF16 4.3e-5, legacy 4–8-bit 4–5e-4, k-quants
// 1.0–1.4e-3. The bounds below leave ~4x headroom. Top-1 agreement: the synthetic model's random
// weights leave near-ties (top-2 within 0.01–0.1 nats) that this noise flips at 0–4.5% of positions
// (Q5_K worst), so it is held to ≥ 95% here and to ≥ 99% on the trained target model below.
// That LabEngine's own arithmetic on packed weights is exact is checked against llama.cpp running
// the dequantized weights in F32: max |Δ log p| ≤ 1e-4 (measured ~1e-5 for every format).
export const KL_BOUND: Partial<Record<GgmlTypeName, number>> = {
  F16: 1e-5, BF16: 2e-4,
  Q8_0: 2e-3, Q5_1: 2e-3, Q5_0: 2e-3, Q4_1: 2e-3, Q4_0: 2e-3,
  Q6_K: 5e-3, Q5_K: 5e-3, Q4_K: 5e-3, Q3_K: 5e-3, Q2_K: 5e-3,
};

async function promptRows(e: Engine): Promise<Float32Array[]> {
  const rows: Float32Array[] = [];
  for (const p of PROMPTS) rows.push(...(await allRows(e, e.tokenizer.encode(p))));
  return rows;
}

describe("quantized variants: LabEngine computes on the packed weights", () => {
  const types = writableTypes(Object.keys(KL_BOUND) as GgmlTypeName[]);
  it.each(types)("%s: exact vs llama.cpp on the dequantized weights; top-1 and mean KL vs llama.cpp on the same file; resident ≤ 1.1 × tensors", async (type) => {
    const path = await writeSyntheticVariant(join(tmp.dir, `${type}.gguf`), type);
    const dequantized = await writeDequantizedVariant(join(tmp.dir, `${type}-dequantized.gguf`), type);
    const engines: Engine[] = [];
    try {
      const q = await openEngine("lab", path, { contextSize: 256, maxSequences: 1 });
      engines.push(q);
      const sameFile = await openEngine("llama", path, { contextSize: 256, maxSequences: 1 });
      engines.push(sameFile);
      const f32 = await openEngine("llama", dequantized, { contextSize: 256, maxSequences: 1 });
      engines.push(f32);
      const mine = await promptRows(q);
      const exact = compareDistributions(mine, await promptRows(f32));
      expect(exact.maxAbsLogProbDiff).toBeLessThanOrEqual(1e-4);
      expect(exact.top1).toBe(1);
      const same = compareDistributions(mine, await promptRows(sameFile));
      expect(same.top1).toBeGreaterThanOrEqual(0.95);
      expect(same.kl.mean).toBeLessThan(KL_BOUND[type]!);
      const mem = q.memory();
      expect(mem.weightBytes).toBeLessThanOrEqual(1.1 * mem.tensorBytes);
    } finally {
      for (const e of engines) await e.dispose();
    }
  });
});

describe("mixes from lab quantize (several types in one file)", () => {
  it.each(["Q4_K_M", "Q2_K"])("%s: exact vs llama.cpp on the dequantized file; top-1 ≥ 95% and mean KL < 5e-3 vs llama.cpp on the same file", async (mix) => {
    const path = join(tmp.dir, `mix-${mix}.gguf`);
    await quantizeGgufFile(f32Path, path, mix);
    const dequantized = await writeDequantizedCopy(path, join(tmp.dir, `mix-${mix}-dequantized.gguf`));
    const engines: Engine[] = [];
    try {
      for (const [name, file] of [["lab", path], ["llama", path], ["llama", dequantized]] as const) {
        engines.push(await openEngine(name, file, { contextSize: 256, maxSequences: 1 }));
      }
      const mine = await promptRows(engines[0]);
      const exact = compareDistributions(mine, await promptRows(engines[2]));
      expect(exact.maxAbsLogProbDiff).toBeLessThanOrEqual(1e-4);
      const same = compareDistributions(mine, await promptRows(engines[1]));
      expect(same.top1).toBeGreaterThanOrEqual(0.95);
      expect(same.kl.mean).toBeLessThan(5e-3);
      expect(engines[0].memory().weightBytes).toBeLessThanOrEqual(1.1 * engines[0].memory().tensorBytes);
    } finally {
      for (const e of engines) await e.dispose();
    }
  });
});

describe("other shapes: head dim 4, a 32,000-token vocabulary, F16 weights, tied embeddings", () => {
  it.each([false, true])("tied=%s: exact vs llama.cpp on the dequantized file, KL vs the same file below the F16 bound", async (tied) => {
    const opts = { seed: 4, nEmbd: 32, nFf: 64, nHead: 8, nKvHead: 4, nLayer: 2, nCtx: 128 };
    const path = await writeWideVocabVariant(join(tmp.dir, `wide-${tied}.gguf`), 32000, opts, "F16", { tied });
    const dequantized = await writeDequantizedCopy(path, join(tmp.dir, `wide-${tied}-dq.gguf`));
    const engines: Engine[] = [];
    try {
      for (const [name, file] of [["lab", path], ["llama", path], ["llama", dequantized]] as const) {
        engines.push(await openEngine(name, file, { contextSize: 128, maxSequences: 1 }));
      }
      expect(engines[0].hparams.headDim).toBe(4);
      expect(engines[0].hparams.nVocab).toBe(32000);
      const ids = [1, 300, 20000, 31999, 5, 700, 12345, 40, 41, 42, 2222, 17];
      const [mine, same, exact] = await Promise.all(engines.map((e) => allRows(e, ids)));
      const e = compareDistributions(mine, exact);
      expect(e.maxAbsLogProbDiff).toBeLessThanOrEqual(1e-4);
      expect(e.top1).toBe(1);
      expect(compareDistributions(mine, same).kl.mean).toBeLessThan(KL_BOUND.F16!);
      expect(engines[0].memory().weightBytes).toBeLessThanOrEqual(1.1 * engines[0].memory().tensorBytes);
    } finally {
      for (const e of engines) await e.dispose();
    }
  });
});

// The target is committed (data/models/target.gguf), so a missing file is a failure, not a skip.
describe("the committed target model", () => {
  it("exists", () => expect(hasTarget, `${TARGET_GGUF} is missing: run \`lab train\``).toBe(true));
  it("F32: max |Δ log p| ≤ 1e-4 and identical 64-token greedy continuations", async () => {
    const a = await openEngine("lab", TARGET_GGUF, { contextSize: 256, maxSequences: 1 });
    const b = await openEngine("llama", TARGET_GGUF, { contextSize: 256, maxSequences: 1 });
    try {
      const ids = a.tokenizer.encode(PROMPTS[0]);
      expect(b.tokenizer.encode(PROMPTS[0])).toEqual(ids);
      const cmp = compareDistributions(await allRows(a, ids), await allRows(b, ids));
      expect(cmp.maxAbsLogProbDiff).toBeLessThanOrEqual(1e-4);
      const ga = await generate(a, ids, { maxTokens: 64, stopAtEos: false });
      expect(ga).toEqual(await generate(b, ids, { maxTokens: 64, stopAtEos: false }));
    } finally {
      await a.dispose();
      await b.dispose();
    }
  });

  // On the same quantized file: LabEngine as it is (F32 activations) and LabEngine rounding its
  // matmul inputs like llama.cpp (activations "llama"). The requirement — top-1 ≥ 99% and a
  // named mean-KL bound — is asserted on the llama-style engine, which computes what llama.cpp
  // computes, over every text: on the committed target top-1 99.7–100% and mean KL ≤ 1.1e-5 on these
  // mixes (Q5_1, with LabEngine also mimicking the fp16-rounded block sum of Q8_1 inputs, which alone
  // had put Q5_1 at 2.2e-4 on an earlier target).
  // With F32 activations the remaining gap is llama.cpp's 8-bit rounding of activations, and how much
  // that moves the output depends on the model and the text: on the out-of-distribution prompts the
  // retrained target is so confident that one rounding flips a position (Q3_K_M: KL up to 3.1 on the
  // counting prompt, 5e-9…1e-6 with llama-style activations). So the F32-activation check runs on
  // in-distribution prose (3 eval stories, 308 positions): over all 17 mixes the 2600-step target
  // measured top-1 97.4–100% and mean KL ≤ 6e-4, a 4800-step one 98.7–100% and ≤ 1.1e-3, a
  // 7000-step one 98.0–100% and ≤ 2.5e-3, the committed 9000-step target 98.0–100% and ≤ 4e-4
  // (data/results/engine-agreement.json).
  it.each(["Q8_0", "Q6_K", "Q5_1", "Q4_K_M", "Q4_0", "Q3_K_M", "Q2_K"])("%s from lab quantize: agreement with llama.cpp on the same file", async (mix) => {
    const path = join(tmp.dir, `target-${mix}.gguf`);
    await quantizeGgufFile(TARGET_GGUF, path, mix);
    const engines: Engine[] = [];
    try {
      engines.push(await openEngine("lab", path, { contextSize: 512, maxSequences: 1 }));
      engines.push(await openEngine("lab", path, { contextSize: 512, maxSequences: 1, activations: "llama" }));
      engines.push(await openEngine("llama", path, { contextSize: 512, maxSequences: 1 }));
      const prose = await loadProse(undefined, 3);
      const rows: Float32Array[][] = [[], [], []];
      for (const text of prose.concat(PROMPTS)) {
        const ids = engines[0].tokenizer.encode(text);
        for (const [k, e] of engines.entries()) rows[k].push(...(await allRows(e, ids)));
      }
      const proseRows = prose.reduce((n, t) => n + engines[0]!.tokenizer.encode(t).length, 0);
      const f32 = compareDistributions(rows[0]!.slice(0, proseRows), rows[2]!.slice(0, proseRows));
      const mimic = compareDistributions(rows[1]!, rows[2]!);
      expect(f32.positions).toBeGreaterThan(300);
      expect(mimic.positions).toBeGreaterThan(400);
      const base = mix.includes("_K") ? "Q4_K" : (mix as GgmlTypeName);
      expect(f32.top1).toBeGreaterThanOrEqual(0.97);
      expect(f32.kl.mean).toBeLessThan(KL_BOUND[base]!);
      expect(mimic.top1).toBeGreaterThanOrEqual(0.99);
      expect(mimic.kl.mean).toBeLessThan(3e-5);
    } finally {
      for (const e of engines) await e.dispose();
    }
  });
});

describe("bad input: clear errors, no crash, nothing left behind", () => {
  it.each(["lab", "llama"] as const)("%s: a file that is not a GGUF, a truncated GGUF, a GGUF without head_count", async (name) => {
    const garbage = join(tmp.dir, "garbage.gguf");
    await writeFile(garbage, Buffer.from("this is not a model file at all, just text\n".repeat(10)));
    await expect(openEngine(name, garbage)).rejects.toBeInstanceOf(GgufError);

    const truncated = join(tmp.dir, "truncated.gguf");
    const { readFile } = await import("node:fs/promises");
    await writeFile(truncated, (await readFile(f32Path)).subarray(0, 100_000));
    await expect(openEngine(name, truncated)).rejects.toBeInstanceOf(GgufError);

    // llama.cpp would abort the process on this one; our validator must catch it first.
    const model = syntheticLlama({ seed: 2 });
    const noHeads = join(tmp.dir, "no-heads.gguf");
    await writeGguf(noHeads, {
      metadata: model.metadata.filter((m) => m.key !== "llama.attention.head_count"),
      tensors: model.tensors.map((t) => ({ name: t.name, type: "F32" as const, ne: t.ne, data: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) })),
    });
    await expect(openEngine(name, noHeads)).rejects.toThrow(/head_count/);
    await expect(openEngine(name, join(tmp.dir, "does-not-exist.gguf"))).rejects.toThrow();
  });

  it("an unknown engine name", async () => {
    await expect(openEngine("vllm", f32Path)).rejects.toThrow(/unknown engine "vllm"/);
  });

  it.each(["lab", "llama"] as const)("%s: empty prompt, prompt longer than the context, bad token ids, too many sequences, use after free", async (name) => {
    const e = name === "lab" ? lab : llama;
    const seq = await e.createSequence();
    try {
      await expect(seq.evaluate([])).rejects.toBeInstanceOf(EngineError);
      await expect(seq.evaluate(new Array(e.contextSize + 1).fill(5))).rejects.toThrow(/do not fit the context/);
      await expect(seq.evaluate([1, e.hparams.nVocab])).rejects.toThrow(/outside the vocabulary/);
      expect(seq.length).toBe(0); // nothing was half-evaluated
      await expect(generate(e, [], { maxTokens: 4 })).rejects.toThrow(/empty prompt/);
      const more = [];
      try {
        for (let i = 0; i < e.maxSequences - 1; i++) more.push(await e.createSequence());
        await expect(e.createSequence()).rejects.toThrow(/sequences are in use/);
      } finally {
        for (const s of more) await s.free();
      }
    } finally {
      await seq.free();
    }
    await expect(seq.evaluate([1])).rejects.toThrow(/freed/);
    // The engine still works afterwards.
    const ok = await e.createSequence();
    expect((await ok.prefill([1, 300])).length).toBe(e.hparams.nVocab);
    await ok.free();
  });
});
