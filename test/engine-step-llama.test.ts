// LlamaCppEngine.step on the committed target model (F32, 1 thread): one llama_decode batch per step,
// each item getting what separate calls give it, llama.cpp's native greedy token equal to the argmax
// of the distributions, bad input refused before anything is sent, the KV cell report, and fork by
// state copy. The batch count is read off node-llama-cpp's native context (initBatch is called once
// per llama_decode batch), the one place this file looks inside node-llama-cpp.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readdirSync, existsSync } from "node:fs";
import { EngineError, openEngine, type Sequence, type StepItem } from "../lab/engine/engine.ts";
import type { LlamaCppEngine } from "../lab/engine/llama-engine.ts";
import { Sampler, argmax } from "../lab/engine/sampler.ts";
import { hasTarget, TARGET_GGUF } from "./engine-fixtures.ts";

const TEXTS = [
  "The quick brown fox jumps over the lazy dog. The dog sleeps",
  "x = 3\ny = x + 4\nprint(y)",
  "Q: What is 12 + 7?\nA:",
  "Once upon a time there was a small model",
  "the cat sat on the mat and then the cat",
  "5 + 3 = 8. 9 + 4 = 13. 6 + 6 =",
  "In the morning the sun rises over the hills and",
  "a b c d e f g h",
];

// A multiple of 256, so node-llama-cpp pads nothing: the full-context test reaches its real limit.
const CONTEXT = 256;
let engine: LlamaCppEngine;

beforeAll(async () => {
  if (!hasTarget) return;
  engine = await openEngine("llama", TARGET_GGUF, { contextSize: CONTEXT, maxSequences: 16, threads: 1 }) as LlamaCppEngine;
});

afterAll(async () => {
  await engine?.dispose();
});

function prompt(i: number): number[] {
  return engine.tokenizer.encode(TEXTS[i % TEXTS.length]);
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === b[i]) continue; // equal infinities too
    m = Math.max(m, Math.abs(a[i] - b[i]));
  }
  return m;
}

/** A fresh sequence holding `ids` (evaluated in one call). */
async function sequenceWith(ids: number[]): Promise<Sequence> {
  const s = await engine.createSequence();
  if (ids.length > 0) await s.evaluate(ids);
  return s;
}

async function freeAll(seqs: Sequence[]): Promise<void> {
  for (const s of seqs) await s.free();
}

/** Runs fn and counts the llama_decode batches node-llama-cpp builds meanwhile (one initBatch each). */
async function countBatches<T>(fn: () => Promise<T>): Promise<{ result: T; batches: number[] }> {
  const context = engine.context as unknown as { _ctx: object };
  const native = context._ctx;
  const batches: number[] = [];
  context._ctx = new Proxy(native, {
    get(target, key) {
      const value = Reflect.get(target, key) as unknown;
      if (key === "initBatch") return (n: number) => { batches.push(n); return (value as (n: number) => unknown).call(target, n); };
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  try {
    return { result: await fn(), batches };
  } finally {
    context._ctx = native;
  }
}

describe.skipIf(!hasTarget)("LlamaCppEngine.step (target model, F32, 1 thread)", () => {
  it("greedy tokens sampled natively in batched steps equal evaluate/decode one sequence at a time, over 20 steps", async () => {
    const n = 6, steps = 20;
    // Reference: each sequence alone, distributions through evaluate/decode, argmax.
    const reference: number[][] = [];
    for (let i = 0; i < n; i++) {
      const s = await engine.createSequence();
      const out: number[] = [];
      let row = await s.prefill(prompt(i));
      for (let k = 0; k < steps; k++) {
        out.push(argmax(row));
        [row] = await engine.decode([{ sequence: s, token: out[k] }]);
      }
      reference.push(out);
      await s.free();
    }
    // Batched: prefill chunks with a native greedy draw, then one-token steps, no distribution at all.
    const seqs = await Promise.all(Array.from({ length: n }, () => engine.createSequence()));
    const samplers = seqs.map(() => new Sampler({ temperature: 0 }));
    try {
      const got: number[][] = seqs.map(() => []);
      let items: StepItem[] = seqs.map((sequence, i) => ({ sequence, tokens: prompt(i), output: "none", sample: samplers[i] }));
      for (let k = 0; k < steps; k++) {
        const results = await engine.step(items);
        for (const [i, r] of results.entries()) {
          expect(r.logprobs).toEqual([]);
          expect(r.token).toBeTypeOf("number");
          got[i].push(r.token!);
        }
        items = seqs.map((sequence, i) => ({ sequence, tokens: [got[i][k]], output: "none", sample: samplers[i] }));
      }
      expect(got).toEqual(reference);
      for (const [i, s] of seqs.entries()) expect(s.tokens).toEqual([...prompt(i), ...got[i].slice(0, -1)]);
    } finally {
      await freeAll(seqs);
    }
  });

  it("one step mixing a 37-token prefill chunk, 5 decode rows and a 4-token verification is one llama_decode batch and gives each item what separate calls give (≤ 1e-5)", async () => {
    const long = engine.tokenizer.encode(TEXTS.join(" ")).slice(0, 37);
    expect(long).toHaveLength(37);
    const decodeHistories = [1, 2, 3, 4, 5].map((i) => prompt(i));
    const decodeTokens = [300, 301, 302, 303, 304];
    const verifyHistory = prompt(6);
    const draft = engine.tokenizer.encode(" the sun is", { bos: false }).slice(0, 4);
    while (draft.length < 4) draft.push(400 + draft.length);

    // Separate calls, each sequence alone.
    const ref: Float32Array[][] = [];
    {
      const a = await sequenceWith([]);
      ref.push([await a.prefill(long)]);
      for (const [i, h] of decodeHistories.entries()) {
        const s = await sequenceWith(h);
        ref.push(await engine.decode([{ sequence: s, token: decodeTokens[i] }]));
        await s.free();
      }
      const v = await sequenceWith(verifyHistory);
      ref.push(await v.evaluate(draft, { all: true }));
      await freeAll([a, v]);
    }

    // The same work as one step.
    const prefillSeq = await sequenceWith([]);
    const decodeSeqs = await Promise.all(decodeHistories.map((h) => sequenceWith(h)));
    const verifySeq = await sequenceWith(verifyHistory);
    try {
      const items: StepItem[] = [
        { sequence: prefillSeq, tokens: long, output: "last" },
        ...decodeSeqs.map((sequence, i): StepItem => ({ sequence, tokens: [decodeTokens[i]], output: "last" })),
        { sequence: verifySeq, tokens: draft, output: "all" },
      ];
      const { result, batches } = await countBatches(() => engine.step(items));
      expect(batches).toEqual([37 + 5 + 4]);
      expect(result.map((r) => r.logprobs.length)).toEqual([1, 1, 1, 1, 1, 1, 4]);
      for (const [i, r] of result.entries()) {
        expect(r.token).toBeUndefined();
        for (const [j, row] of r.logprobs.entries()) expect(maxAbsDiff(row, ref[i][j])).toBeLessThanOrEqual(1e-5);
      }
      expect(prefillSeq.tokens).toEqual(long);
      for (const [i, s] of decodeSeqs.entries()) expect(s.tokens).toEqual([...decodeHistories[i], decodeTokens[i]]);
      expect(verifySeq.tokens).toEqual([...verifyHistory, ...draft]);
    } finally {
      await freeAll([prefillSeq, ...decodeSeqs, verifySeq]);
    }
  });

  it("a 16-way one-token step is one batch of 16 and equals 16 single decodes (≤ 1e-5)", async () => {
    const seqs = await Promise.all(Array.from({ length: 16 }, () => engine.createSequence()));
    try {
      for (const [i, s] of seqs.entries()) await s.evaluate(prompt(i).slice(0, 6 + (i % 5)));
      const tokens = seqs.map((_, i) => 500 + i);
      const { result, batches } = await countBatches(() => engine.decode(seqs.map((sequence, i) => ({ sequence, token: tokens[i] }))));
      expect(batches).toEqual([16]);
      for (const [i, s] of seqs.entries()) {
        await s.truncate(s.length - 1);
        const [alone] = await engine.decode([{ sequence: s, token: tokens[i] }]);
        expect(maxAbsDiff(result[i], alone)).toBeLessThanOrEqual(1e-5);
      }
    } finally {
      await freeAll(seqs);
    }
  });

  it("output \"none\" returns no rows; a greedy sampler takes llama.cpp's own token, a seeded one draws from the row with our Sampler", async () => {
    const ids = prompt(0);
    const row = await (async () => {
      const s = await sequenceWith([]);
      const r = await s.prefill(ids);
      await s.free();
      return r;
    })();
    const seqs = await Promise.all([0, 1, 2, 3].map(() => engine.createSequence()));
    try {
      const opts = { temperature: 0.9, topK: 40, topP: 0.95, seed: 7 };
      const [plain, greedy, seeded, last] = await engine.step([
        { sequence: seqs[0], tokens: ids, output: "none" },
        { sequence: seqs[1], tokens: ids, output: "none", sample: new Sampler({ temperature: 0 }) },
        { sequence: seqs[2], tokens: ids, output: "none", sample: new Sampler(opts) },
        { sequence: seqs[3], tokens: ids, sample: new Sampler(opts) },
      ]);
      expect(plain).toEqual({ logprobs: [] });
      expect(greedy.logprobs).toEqual([]);
      expect(greedy.token).toBe(argmax(row));
      const expected = new Sampler(opts).sample(row);
      expect(seeded.logprobs).toEqual([]);
      expect(seeded.token).toBe(expected);
      expect(last.token).toBe(expected);
      expect(last.logprobs).toHaveLength(1);
      expect(maxAbsDiff(last.logprobs[0], row)).toBeLessThanOrEqual(1e-5);
      for (const s of seqs) expect(s.tokens).toEqual(ids);
    } finally {
      await freeAll(seqs);
    }
  });

  it("bad input of each kind throws EngineError naming the reason, sends nothing, and every sequence keeps its tokens", async () => {
    const other = await openEngine("llama", TARGET_GGUF, { contextSize: 32, maxSequences: 1, threads: 1 });
    const a = await sequenceWith(prompt(0));
    const b = await sequenceWith(prompt(1));
    const freed = await sequenceWith(prompt(2));
    await freed.free();
    const foreign = await other.createSequence();
    const before = () => [a, b].map((s) => ({ tokens: [...s.tokens], length: s.length }));
    const snapshot = before();
    const used = engine.memory().kv.blocksUsed;
    const good: StepItem = { sequence: a, tokens: [300], output: "last" };
    const cases: [string, StepItem[], RegExp][] = [
      ["a freed sequence", [good, { sequence: freed, tokens: [5] }], /freed/],
      ["a sequence of another engine", [good, { sequence: foreign, tokens: [5] }], /another engine/],
      ["the same sequence twice", [good, { sequence: b, tokens: [5] }, { sequence: b, tokens: [6] }], /appears twice/],
      ["an id equal to the vocabulary size", [good, { sequence: b, tokens: [5, engine.hparams.nVocab] }], /outside the vocabulary/],
      ["a negative id", [good, { sequence: b, tokens: [-1] }], /outside the vocabulary/],
      ["a fractional id", [good, { sequence: b, tokens: [2.5] }], /outside the vocabulary/],
      ["no tokens", [good, { sequence: b, tokens: [] }], /empty/],
      ["a context overflow", [good, { sequence: b, tokens: new Array(CONTEXT - b.length + 1).fill(5) }], /do not fit the context/],
      ["an unknown output", [good, { sequence: b, tokens: [5], output: "every" as never }], /output "every"/],
    ];
    try {
      for (const [what, items, reason] of cases) {
        const { result, batches } = await countBatches(() => engine.step(items).then(() => "ran", (err: unknown) => err));
        expect(result, what).toBeInstanceOf(EngineError);
        expect((result as Error).message, what).toMatch(reason);
        expect(batches, what).toEqual([]);
        expect(before(), what).toEqual(snapshot);
        expect(engine.memory().kv.blocksUsed, what).toBe(used);
      }
      // Nothing was lost: the good item still runs and gives what a fresh sequence gives.
      const [row] = await engine.decode([{ sequence: a, token: 300 }]);
      const fresh = await sequenceWith([]);
      const [ref] = await fresh.evaluate([...prompt(0), 300]);
      expect(maxAbsDiff(row, ref)).toBeLessThanOrEqual(1e-5);
      await fresh.free();
    } finally {
      await freeAll([a, b]);
      await other.dispose();
    }
  });

  it("a sequence holds all contextSize tokens (no silent context shift) and refuses one more", async () => {
    const ids = Array.from({ length: CONTEXT }, (_, i) => 5 + ((i * 7) % 200));
    const s = await engine.createSequence();
    try {
      await engine.step([{ sequence: s, tokens: ids.slice(0, 100), output: "none" }]);
      await engine.step([{ sequence: s, tokens: ids.slice(100), output: "none" }]);
      expect(s.length).toBe(CONTEXT);
      expect(s.tokens).toEqual(ids);
      await expect(engine.decode([{ sequence: s, token: 5 }])).rejects.toThrow(/do not fit the context/);
      expect(s.tokens).toEqual(ids);
    } finally {
      await s.free();
    }
  });

  it("memory().kv: cells of one token, used == Σ lengths, used + free == total, nothing shared, bytes consistent", async () => {
    const check = (expectedUsed: number) => {
      const m = engine.memory();
      const kv = m.kv;
      expect(kv.blockSize).toBe(1);
      expect(kv.blocksShared).toBe(0);
      expect(kv.blocksUsed).toBe(expectedUsed);
      expect(kv.blocksUsed + kv.blocksFree).toBe(kv.blocksTotal);
      expect(kv.blocksTotal).toBeGreaterThanOrEqual((CONTEXT + 1) * engine.maxSequences);
      expect(kv.bytesPerBlock).toBe(m.kvBytesPerToken);
      expect(m.kvBytesInUse).toBe(kv.blocksUsed * kv.bytesPerBlock);
      expect(m.kvBytesAllocated).toBe(kv.blocksTotal * kv.bytesPerBlock);
      expect(kv.note).toMatch(/cells/);
    };
    check(0);
    const a = await sequenceWith(prompt(0));
    const b = await sequenceWith(prompt(1));
    check(a.length + b.length);
    await engine.step([{ sequence: a, tokens: [300, 301, 302], output: "none" }, { sequence: b, tokens: [303] }]);
    check(a.length + b.length);
    await a.truncate(4);
    check(4 + b.length);
    const c = await a.fork(2);
    check(4 + b.length + 2);
    await b.free();
    check(4 + 2);
    await freeAll([a, c]);
    check(0);
  });

  it("fork copies the state exactly (fork() and fork(n)), leaves the parent as it was and no state file behind", async () => {
    const ids = [...prompt(0), ...prompt(3).slice(1)];
    const parent = await sequenceWith(ids);
    const shmBefore = existsSync("/dev/shm") ? readdirSync("/dev/shm").filter((f) => f.startsWith("inference-lab-fork-")) : [];
    try {
      for (const n of [ids.length, 9]) {
        const child = await parent.fork(n);
        expect(child.length).toBe(n);
        expect(child.tokens).toEqual(ids.slice(0, n));
        expect(parent.tokens).toEqual(ids);
        // The child's next distributions equal the parent's after the same tokens at position n.
        const next = [310, 311];
        const fromChild = await child.evaluate(next, { all: true });
        await parent.truncate(n);
        const fromParent = await parent.evaluate(next, { all: true });
        for (let i = 0; i < next.length; i++) expect(maxAbsDiff(fromChild[i], fromParent[i])).toBe(0);
        await parent.truncate(n);
        if (n < ids.length) await parent.evaluate(ids.slice(n));
        expect(parent.tokens).toEqual(ids);
        await child.free();
      }
      const shmAfter = existsSync("/dev/shm") ? readdirSync("/dev/shm").filter((f) => f.startsWith("inference-lab-fork-")) : [];
      expect(shmAfter).toEqual(shmBefore);
      const empty = await parent.fork(0);
      expect(empty.length).toBe(0);
      await empty.free();
    } finally {
      await parent.free();
    }
  });

  it("greedyLoop (node-llama-cpp's own loop, the decode baseline) gives the same greedy tokens as native steps, on several sequences at once", async () => {
    const viaLoop = await Promise.all([0, 1, 2].map((i) => sequenceWith(prompt(i))));
    const viaStep = await Promise.all([0, 1, 2].map((i) => sequenceWith(prompt(i))));
    try {
      const first = [0, 1, 2].map((i) => prompt(i)[prompt(i).length - 1]);
      const loop = await engine.greedyLoop(viaLoop.map((sequence, i) => ({ sequence, token: first[i] })), 12);
      const greedy = new Sampler({ temperature: 0 });
      let tokens = first;
      const stepped: number[][] = [[], [], []];
      for (let k = 0; k < 12; k++) {
        const r = await engine.step(viaStep.map((sequence, i) => ({ sequence, tokens: [tokens[i]], output: "none" as const, sample: greedy })));
        tokens = r.map((x) => x.token!);
        tokens.forEach((t, i) => stepped[i].push(t));
      }
      expect(loop).toEqual(stepped);
      await expect(engine.greedyLoop([{ sequence: viaLoop[0], token: engine.hparams.nVocab }], 2)).rejects.toThrow(/outside the vocabulary/);
    } finally {
      await freeAll([...viaLoop, ...viaStep]);
    }
  });
});
