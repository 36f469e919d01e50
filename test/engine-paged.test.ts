// The serving core of LabEngine: the paged KV pool (exact block ids, reference counts, free-queue
// order, copy-on-write, exhaustion), paged attention against a contiguous reference, one mixed
// step against separate calls, bad input, and a random property test of the pool's invariants.
// In the style of vLLM's tests/v1/core: deterministic, every id and count asserted.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import { EngineError, KvCacheFullError, openEngine, type EngineOptions, type Sequence } from "../lab/engine/engine.ts";
import { KvPool } from "../lab/engine/kv-pool.ts";
import { MAX_ROWS, attendSimd, attendTs, createKvPool, kvArenaFloats, type LabEngine } from "../lab/engine/lab-engine.ts";
import { Sampler } from "../lab/engine/sampler.ts";
import { SimdArena } from "../lab/engine/simd.ts";
import { writeGguf } from "../lab/gguf/writer.ts";
import { mulberry32 } from "../lab/random.ts";
import { syntheticLlama } from "../lab/model/synthetic.ts";
import { maxAbsDiff, randomTokens, syntheticLabEngines } from "./engine-fixtures.ts";

const fixture = syntheticLabEngines("engine-paged-");
const open = (opts: EngineOptions = {}) => fixture.open(opts);
beforeAll(() => fixture.setup());
afterAll(() => fixture.cleanup());

const tokens = randomTokens;


/** Every invariant of the pool, from the outside: counts ≥ 0, free ⇔ count 0, used + free == total,
 *  and each count == the tables holding the block + the references retained by the test. */
function checkPool(e: LabEngine, live: Sequence[], retained: Map<number, number>): void {
  const kv = e.kv;
  const { blocksTotal, blocksUsed, blocksFree, blocksShared } = e.memory().kv;
  const free = new Set(kv.freeQueue());
  expect(free.size).toBe(kv.freeQueue().length); // no block twice in the queue
  const expected = new Array(blocksTotal).fill(0);
  for (const s of live) for (const id of kv.blockIds(s)) expected[id]++;
  for (const [id, n] of retained) expected[id] += n;
  let used = 0, shared = 0;
  for (let id = 0; id < blocksTotal; id++) {
    const c = kv.refCount(id);
    expect(c).toBeGreaterThanOrEqual(0);
    expect(c).toBe(expected[id]);
    expect(free.has(id)).toBe(c === 0);
    if (c > 0) used++;
    if (c > 1) shared++;
  }
  expect(blocksUsed).toBe(used);
  expect(blocksShared).toBe(shared);
  expect(blocksUsed + blocksFree).toBe(blocksTotal);
  for (const s of live) expect(kv.blockIds(s).length).toBe(Math.ceil(s.length / kv.blockSize));
}

describe("paged KV: block accounting (block size 16)", () => {
  it("a 55-token sequence holds 4 blocks; fork() shares 3 and copies the partial one; free returns exactly the unreferenced blocks, tail first", async () => {
    const e = await open({ kvBlockSize: 16, kvBlocks: 11, maxSequences: 4 });
    const a = await e.createSequence();
    await a.evaluate(tokens(55, 1, e.hparams.nVocab));
    expect(e.kv.blockIds(a)).toEqual([0, 1, 2, 3]);
    const b = await a.fork();
    expect(e.kv.blockIds(b)).toEqual([0, 1, 2, 4]);
    expect([0, 1, 2, 3, 4].map((id) => e.kv.refCount(id))).toEqual([2, 2, 2, 1, 1]);
    expect(e.memory().kv).toMatchObject({ blockSize: 16, blocksTotal: 11, blocksUsed: 5, blocksShared: 3, blocksFree: 6 });
    expect(e.memory().kvBytesInUse).toBe(5 * e.memory().kv.bytesPerBlock); // shared blocks counted once
    checkPool(e, [a, b], new Map());

    await a.free();
    expect(e.kv.freeQueue()).toEqual([5, 6, 7, 8, 9, 10, 3]);
    expect([0, 1, 2, 4].map((id) => e.kv.refCount(id))).toEqual([1, 1, 1, 1]);
    await b.free();
    expect(e.kv.freeQueue()).toEqual([5, 6, 7, 8, 9, 10, 3, 4, 2, 1, 0]);
    // A request that misses receives blocks in exactly that order.
    const c = await e.createSequence();
    await c.evaluate(tokens(16 * 3 + 1, 2, e.hparams.nVocab));
    expect(e.kv.blockIds(c)).toEqual([5, 6, 7, 8]);
    await c.free();
  });

  it("the forked sequence continues exactly like the original (shared blocks hold the prefix)", async () => {
    const e = await open({ kvBlockSize: 16, maxSequences: 4 });
    const prompt = tokens(55, 3, e.hparams.nVocab);
    const a = await e.createSequence();
    await a.evaluate(prompt);
    const b = await a.fork(40);
    expect(e.kv.blockIds(b).slice(0, 2)).toEqual(e.kv.blockIds(a).slice(0, 2));
    const fresh = await e.createSequence();
    const next = tokens(3, 4, e.hparams.nVocab);
    const want = await fresh.evaluate([...prompt.slice(0, 40), ...next], { all: true });
    const got = await b.evaluate(next, { all: true });
    for (let i = 0; i < 3; i++) expect(maxAbsDiff(got[i], want[40 + i])).toBe(0);
    for (const s of [a, b, fresh]) await s.free();
  });

  it("appending into a shared partial block copies it first (copy-on-write); the other holder is untouched", async () => {
    const e = await open({ kvBlockSize: 16, kvBlocks: 12, maxSequences: 4 });
    const prompt = tokens(40, 5, e.hparams.nVocab);
    const a = await e.createSequence();
    await a.evaluate(prompt);
    const b = await a.fork(32); // shares blocks 0 and 1 (full)
    expect(e.kv.blockIds(b)).toEqual([0, 1]);
    await a.truncate(20); // a's block 1 is now its partial last block, and still shared with b
    expect(e.kv.blockIds(a)).toEqual([0, 1]);
    expect(e.kv.refCount(1)).toBe(2);
    const probe = await b.fork(); // b's next distribution, read through a throwaway fork
    const before = await probe.evaluate([prompt[0]]);
    await probe.free();
    await a.evaluate(tokens(5, 6, e.hparams.nVocab));
    const tableA = e.kv.blockIds(a);
    expect(tableA[0]).toBe(0);
    expect(tableA[1]).not.toBe(1); // copied before the write
    expect(e.kv.refCount(1)).toBe(1); // only b holds it now
    const bFork = await b.fork();
    const after = await bFork.evaluate([prompt[0]]);
    await bFork.free();
    expect(maxAbsDiff(before[0], after[0])).toBe(0);
    // a's copy holds a's own positions 16..19 as they were: a continues like a fresh sequence.
    const fresh = await e.createSequence();
    const want = await fresh.evaluate([...prompt.slice(0, 20), ...tokens(5, 6, e.hparams.nVocab), 7]);
    const got = await a.evaluate([7]);
    expect(maxAbsDiff(got[0], want[0])).toBe(0);
  });

  it("out of blocks: KvCacheFullError before anything is written; every sequence bit-identical afterwards", async () => {
    const e = await open({ kvBlockSize: 16, kvBlocks: 8, maxSequences: 4 });
    const a = await e.createSequence(), b = await e.createSequence();
    await a.evaluate(tokens(50, 7, e.hparams.nVocab)); // 4 blocks
    await b.evaluate(tokens(40, 8, e.hparams.nVocab)); // 3 blocks; 1 free
    const snapshot = () => [a, b].map((s) => ({ tokens: [...s.tokens], length: s.length, blocks: [...e.kv.blockIds(s)] }));
    const before = snapshot();
    const kvBefore = e.memory().kv;
    const attempt = e.step([
      { sequence: a, tokens: tokens(20, 9, e.hparams.nVocab) }, // needs 1 more block
      { sequence: b, tokens: tokens(30, 10, e.hparams.nVocab) }, // needs 2 more
    ]);
    await expect(attempt).rejects.toBeInstanceOf(KvCacheFullError);
    await expect(e.step([{ sequence: b, tokens: tokens(30, 10, e.hparams.nVocab) }])).rejects.toThrow(/needs 2 more block\(s\), 1 free/);
    expect(snapshot()).toEqual(before);
    expect(e.memory().kv).toEqual(kvBefore);
    // And their KV is intact: their next distributions equal a fresh engine's.
    const ref = await open({ kvBlockSize: 16, maxSequences: 4 });
    for (const s of [a, b]) {
      const r = await ref.createSequence();
      const want = await r.evaluate([...s.tokens, 11]);
      const got = await s.evaluate([11]);
      expect(maxAbsDiff(got[0], want[0])).toBe(0);
      await s.truncate(s.length - 1);
      await r.free();
    }
  });
});

describe("paged attention equals a contiguous reference", () => {
  // Today's (pre-paging) algorithm on contiguous [pos][kvDim] rows, in float64: the oracle.
  function contiguousAttention(q: Float32Array, k: Float64Array[], v: Float64Array[], start: number, n: number,
    nHead: number, nKvHead: number, headDim: number): Float64Array {
    const out = new Float64Array(n * nHead * headDim);
    const group = nHead / nKvHead, scale = 1 / Math.sqrt(headDim);
    for (let i = 0; i < n; i++) {
      const pos = start + i;
      for (let h = 0; h < nHead; h++) {
        const kvh = Math.floor(h / group);
        const scores = [];
        for (let j = 0; j <= pos; j++) {
          let dot = 0;
          for (let d = 0; d < headDim; d++) dot += q[(i * nHead + h) * headDim + d] * k[j][kvh * headDim + d];
          scores.push(dot * scale);
        }
        const max = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - max));
        const sum = e.reduce((a, b) => a + b, 0);
        for (let j = 0; j <= pos; j++) {
          for (let d = 0; d < headDim; d++) out[(i * nHead + h) * headDim + d] += (e[j] / sum) * v[j][kvh * headDim + d];
        }
      }
    }
    return out;
  }

  for (const blockSize of [4, 16, 64]) {
    it(`block size ${blockSize}, blocks placed at random in the pool: TypeScript and SIMD attention ≤ 1e-6 of the reference`, () => {
      const hp = { nVocab: 8, nCtxTrain: 256, nEmbd: 256, nFf: 512, nHead: 4, nKvHead: 2, nLayer: 2, headDim: 64, rmsEps: 1e-5, ropeFreqBase: 1e4 };
      const nCtx = 256, nBlocks = 64;
      const arena = new SimdArena(4 * kvArenaFloats(hp, blockSize, nBlocks, nCtx) + 256, MAX_ROWS, 512, 1024);
      const { pool, simdAttention } = createKvPool(hp, blockSize, nBlocks, nCtx, arena);
      expect(simdAttention).toBeDefined();
      // Scramble the free queue: take every block, give them back in a random order.
      const r = mulberry32(blockSize);
      const all = Array.from({ length: nBlocks }, () => pool.allocate());
      for (let i = all.length - 1; i > 0; i--) { const j = Math.floor(r() * (i + 1)); [all[i], all[j]] = [all[j], all[i]]; }
      for (const id of all) pool.release(id);
      const start = 150, n = 37, kvDim = hp.nKvHead * hp.headDim, qDim = hp.nHead * hp.headDim, layer = 1;
      const table: number[] = [];
      while (table.length * blockSize < start + n) table.push(pool.allocate());
      expect(table).not.toEqual([...table].sort((x, y) => x - y)); // really scattered
      const k: Float64Array[] = [], v: Float64Array[] = [];
      const kr = new Float32Array(kvDim), vr = new Float32Array(kvDim);
      for (let p = 0; p < start + n; p++) {
        for (let d = 0; d < kvDim; d++) { kr[d] = 2 * r() - 1; vr[d] = 2 * r() - 1; }
        k.push(Float64Array.from(kr)); v.push(Float64Array.from(vr));
        pool.write(table[Math.floor(p / blockSize)], p % blockSize, layer, kr, 0, vr, 0);
      }
      const q = Float32Array.from({ length: n * qDim }, () => 4 * r() - 2);
      const want = contiguousAttention(q, k, v, start, n, hp.nHead, hp.nKvHead, hp.headDim);
      const span = { table, start, tokens: new Array(n).fill(0), want: [] };
      for (const attend of ["ts", "simd"] as const) {
        const scratch = { q, att: new Float32Array(n * qDim), scores: new Float32Array(nCtx) };
        if (attend === "ts") attendTs({ hp, pool, scratch }, layer, span, 0);
        else attendSimd({ hp, pool, scratch }, simdAttention!, layer, span, 0);
        let worst = 0;
        for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(scratch.att[i] - want[i]));
        expect(worst, attend).toBeLessThanOrEqual(1e-6);
      }
    });
  }

  it("a whole model gives bit-identical distributions whatever blocks its sequence lands in", async () => {
    const ordered = await open({ kvBlockSize: 4, kvBlocks: 64, maxSequences: 64 });
    const scattered = await open({ kvBlockSize: 4, kvBlocks: 64, maxSequences: 64 });
    const fillers: Sequence[] = [];
    for (let i = 0; i < 64; i++) { const s = await scattered.createSequence(); await s.evaluate([5]); fillers.push(s); }
    const r = mulberry32(9);
    while (fillers.length) await fillers.splice(Math.floor(r() * fillers.length), 1)[0].free();
    const prompt = tokens(61, 12, ordered.hparams.nVocab);
    const [sa, sb] = [await ordered.createSequence(), await scattered.createSequence()];
    const da = await sa.evaluate(prompt, { all: true }), db = await sb.evaluate(prompt, { all: true });
    expect(ordered.kv.blockIds(sa)).toEqual([...Array(16).keys()]);
    expect(scattered.kv.blockIds(sb)).not.toEqual([...Array(16).keys()]);
    for (let i = 0; i < da.length; i++) expect(maxAbsDiff(da[i], db[i])).toBe(0);
    // The plain TypeScript kernels and attention agree with the SIMD ones to float32 rounding.
    const js = await open({ kvBlockSize: 4, kernels: "js" });
    const dj = await (await js.createSequence()).evaluate(prompt, { all: true });
    for (let i = 0; i < da.length; i++) expect(maxAbsDiff(da[i], dj[i])).toBeLessThan(1e-4);
  });
});

describe("one mixed step", () => {
  it("a 37-token prefill chunk, 5 decode rows and a 4-token verification in one step give what separate calls give (≤ 1e-5)", async () => {
    const e = await open({ maxSequences: 16 });
    const ref = await open({ maxSequences: 16 });
    const V = e.hparams.nVocab;
    const prompts = Array.from({ length: 6 }, (_, i) => tokens(10 + 7 * i, 20 + i, V));
    const [mine, theirs] = [[], []] as Sequence[][];
    for (const p of prompts) {
      const s = await e.createSequence(); await s.evaluate(p); mine.push(s);
      const t = await ref.createSequence(); await t.evaluate(p); theirs.push(t);
    }
    const fresh = await e.createSequence(), freshRef = await ref.createSequence();
    const chunk = tokens(37, 30, V), verify = tokens(4, 31, V);
    const items = [
      { sequence: fresh, tokens: chunk, output: "last" as const },
      ...mine.slice(0, 5).map((s, i) => ({ sequence: s, tokens: [40 + i], output: "last" as const })),
      { sequence: mine[5], tokens: verify, output: "all" as const },
    ];
    const results = await e.step(items);
    const separate = [
      await freshRef.evaluate(chunk),
      ...(await Promise.all(theirs.slice(0, 5).map((t, i) => t.evaluate([40 + i])))),
      await theirs[5].evaluate(verify, { all: true }),
    ];
    expect(results.map((r) => r.logprobs.length)).toEqual([1, 1, 1, 1, 1, 1, 4]);
    results.forEach((r, i) => r.logprobs.forEach((row, j) => expect(maxAbsDiff(row, separate[i][j])).toBeLessThanOrEqual(1e-5)));
    expect(fresh.length).toBe(37);
    expect(mine[5].length).toBe(prompts[5].length + 4);
  });

  it("a 16-way decode step equals 16 single decodes; output none returns no rows; a greedy sampler picks the argmax", async () => {
    const e = await open({ maxSequences: 32 });
    const V = e.hparams.nVocab;
    const batch: Sequence[] = [], single: Sequence[] = [];
    for (let i = 0; i < 16; i++) {
      const p = tokens(5 + i, 50 + i, V);
      const a = await e.createSequence(); await a.evaluate(p); batch.push(a);
      const b = await e.createSequence(); await b.evaluate(p); single.push(b);
    }
    const greedy = new Sampler({ temperature: 0 });
    for (let step = 0; step < 3; step++) {
      const next = batch.map((_, i) => 60 + step * 16 + i);
      const together = await e.decode(batch.map((sequence, i) => ({ sequence, token: next[i] })));
      for (let i = 0; i < 16; i++) {
        const [alone] = await e.decode([{ sequence: single[i], token: next[i] }]);
        expect(maxAbsDiff(together[i], alone)).toBe(0);
      }
    }
    const sampled = await e.step(batch.map((sequence) => ({ sequence, tokens: [7], output: "none" as const, sample: greedy })));
    const rows = await e.step(single.map((sequence) => ({ sequence, tokens: [7], output: "last" as const })));
    sampled.forEach((s, i) => {
      expect(s.logprobs).toEqual([]);
      expect(s.token).toBe(greedy.sample(rows[i].logprobs[0]));
    });
  });

  it("a step longer than one pass (MAX_ROWS rows) gives the same rows as one long evaluate", async () => {
    const e = await open({ maxSequences: 4 });
    const p = tokens(150, 70, e.hparams.nVocab);
    const a = await e.createSequence(), b = await e.createSequence();
    const whole = await a.evaluate(p, { all: true });
    const parts = [...(await b.evaluate(p.slice(0, 64), { all: true })), ...(await b.evaluate(p.slice(64), { all: true }))];
    expect(whole.length).toBe(150);
    for (let i = 0; i < 150; i++) expect(maxAbsDiff(whole[i], parts[i])).toBe(0);
  });
});

describe("bad input: an error with the reason, nothing applied", () => {
  it("freed or foreign sequences, duplicates, ids outside the vocabulary, context overflow", async () => {
    const e = await open({ contextSize: 64, maxSequences: 4 });
    const other = await open({ contextSize: 64, maxSequences: 4 });
    const V = e.hparams.nVocab;
    const a = await e.createSequence(), b = await e.createSequence(), dead = await e.createSequence();
    await a.evaluate([1, 5, 6]);
    await b.evaluate([1, 7]);
    await dead.free();
    const foreign = await other.createSequence();
    const state = () => JSON.stringify([[...a.tokens], [...b.tokens], e.kv.blockIds(a), e.kv.blockIds(b), e.memory().kv]);
    const before = state();
    const cases: [string, Promise<unknown>, RegExp][] = [
      ["freed", e.step([{ sequence: a, tokens: [3] }, { sequence: dead, tokens: [3] }]), /freed/],
      ["foreign", e.step([{ sequence: a, tokens: [3] }, { sequence: foreign, tokens: [3] }]), /another engine/],
      ["twice", e.step([{ sequence: a, tokens: [3] }, { sequence: a, tokens: [4] }]), /twice/],
      ["vocab", e.step([{ sequence: a, tokens: [3] }, { sequence: b, tokens: [V] }]), /outside the vocabulary/],
      ["negative", e.step([{ sequence: b, tokens: [-1] }]), /outside the vocabulary/],
      ["empty", e.step([{ sequence: a, tokens: [3] }, { sequence: b, tokens: [] }]), /empty/],
      ["context", e.step([{ sequence: a, tokens: [3] }, { sequence: b, tokens: new Array(63).fill(4) }]), /do not fit the context of 64/],
      ["output", e.step([{ sequence: a, tokens: [3], output: "every" as never }]), /output "every"/],
    ];
    for (const [name, p, message] of cases) {
      await expect(p, name).rejects.toBeInstanceOf(EngineError);
      await expect(p, name).rejects.toThrow(message);
    }
    expect(state()).toBe(before);
    expect(() => e.kv.retain([999])).toThrow(/outside the pool/);
    expect(() => e.kv.release([e.memory().kv.blocksTotal - 1])).toThrow(/free/);
    await expect(e.kv.adopt([e.kv.blockIds(a)[0]], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17])).rejects.toThrow(/need 2 blocks/);
    expect(state()).toBe(before);
  });

  it("kvBlockSize must be a power of two within the context; kvBlocks ≥ 1; IQ*/TQ* weights are refused up front with the supported list", async () => {
    await expect(openEngine("lab", fixture.model, { kvBlockSize: 12 })).rejects.toThrow(/power of two/);
    await expect(openEngine("lab", fixture.model, { contextSize: 8, kvBlockSize: 16 })).rejects.toThrow(/between 1 and contextSize/);
    await expect(openEngine("lab", fixture.model, { kvBlocks: 0 })).rejects.toThrow(/kvBlocks/);
    const m = syntheticLlama({ seed: 1 });
    const iq = join(fixture.dir, "iq4_nl.gguf");
    await writeGguf(iq, {
      metadata: m.metadata,
      tensors: m.tensors.map((t) => t.name === "blk.0.ffn_up.weight"
        ? { name: t.name, type: "IQ4_NL" as const, ne: t.ne, data: new Uint8Array((t.ne[0] / 32) * 18 * t.ne[1]) }
        : { name: t.name, type: "F32" as const, ne: t.ne, data: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) }),
    });
    await expect(openEngine("lab", iq)).rejects.toThrow(/cannot compute with tensor type\(s\) IQ4_NL \(e\.g\. blk\.0\.ffn_up\.weight\); it supports F32, F16, BF16, Q8_0/);
  });
});

describe("the pool's invariants under any interleaving (random property test)", () => {
  for (const seed of [1, 2, 3]) {
    it(`seed ${seed}: create / step / fork / truncate / free / retain / release / adopt`, async () => {
      const e = await open({ contextSize: 64, kvBlockSize: 4, kvBlocks: 40, maxSequences: 12 });
      const r = mulberry32(seed);
      const pick = <T,>(xs: T[]) => xs[Math.floor(r() * xs.length)];
      const live: Sequence[] = [];
      const retained = new Map<number, number>();
      const cached: { ids: number[]; tokens: number[] }[] = [];
      let full = 0;
      for (let op = 0; op < 300; op++) {
        const choice = r();
        try {
          if (choice < 0.15 && live.length < 12) live.push(await e.createSequence());
          else if (choice < 0.45 && live.length) {
            const items = [...new Set(Array.from({ length: 1 + Math.floor(r() * 3) }, () => pick(live)))]
              .map((sequence) => ({ sequence, tokens: tokens(1 + Math.floor(r() * 9), op, e.hparams.nVocab).slice(0, 64 - sequence.length) }))
              .filter((it) => it.tokens.length > 0);
            if (items.length) await e.step(items.map((it) => ({ ...it, output: "none" as const })));
          } else if (choice < 0.6 && live.length && live.length < 12) {
            const s = pick(live);
            live.push(await s.fork(Math.floor(r() * (s.length + 1))));
          } else if (choice < 0.72 && live.length) {
            const s = pick(live);
            await s.truncate(Math.floor(r() * (s.length + 1)));
          } else if (choice < 0.82 && live.length) {
            const s = live.splice(Math.floor(r() * live.length), 1)[0];
            if (r() < 0.5 && s.length > 0) { // a cache keeps its blocks past the sequence
              const ids = [...e.kv.blockIds(s)];
              e.kv.retain(ids);
              for (const id of ids) retained.set(id, (retained.get(id) ?? 0) + 1);
              cached.push({ ids, tokens: [...s.tokens] });
            }
            await s.free();
          } else if (choice < 0.9 && cached.length && live.length < 12) {
            const c = pick(cached);
            live.push(await e.kv.adopt(c.ids, c.tokens));
          } else if (cached.length) {
            const c = cached.splice(Math.floor(r() * cached.length), 1)[0];
            e.kv.release(c.ids);
            for (const id of c.ids) retained.set(id, retained.get(id)! - 1);
          }
        } catch (err) {
          if (!(err instanceof KvCacheFullError)) throw err;
          full++;
        }
        checkPool(e, live, retained);
      }
      expect(full).toBeGreaterThan(0); // the pool really ran out along the way
      for (const s of live) await s.free();
      for (const c of cached) e.kv.release(c.ids);
      expect(e.memory().kv.blocksFree).toBe(40);
    });
  }
});
