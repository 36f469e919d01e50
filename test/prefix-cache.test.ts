// Prefix caches on LabEngine's paged KV pool (and the slot cache on llama.cpp): exact block ids,
// reference counts and eviction order in the style of vLLM's tests/v1/core/test_prefix_caching.py,
// radix insert/match/split/lock/eviction in the style of SGLang's radix cache tests, exactness of
// cached generation, and a random property test of the pool's accounting.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import { EngineError, KvCacheFullError, openEngine, type Engine, type EngineOptions, type Sequence } from "../lab/engine/engine.ts";
import type { LabEngine } from "../lab/engine/lab-engine.ts";
import { mulberry32 } from "../lab/random.ts";
import { BlockHashCache, LruBlockQueue, blockHashFunction, blockHashes, sha256BlockHash, xxh64BlockHash } from "../lab/prefix-cache/block-cache.ts";
import { prefillCached, stepEvicting, type PrefixCache } from "../lab/prefix-cache/cache.ts";
import { RadixCache } from "../lab/prefix-cache/radix-cache.ts";
import { SLOT_MIN_REUSE_TOKENS, SlotCache } from "../lab/prefix-cache/slot-cache.ts";
import { openPrefixCache } from "../lab/prefix-cache/index.ts";
import { TARGET_GGUF, hasTarget } from "./engine-fixtures.ts";
import { runPrefixBench, workloadPrompts } from "../lab/prefix-cache/bench.ts";
import { prefixBenchCommand } from "../lab/cli/commands/prefix-bench.ts";
import { randomTokens, syntheticLabEngines } from "./engine-fixtures.ts";

const fixture = syntheticLabEngines("prefix-cache-");
const open = (opts: EngineOptions = {}) => fixture.open(opts);
beforeAll(() => fixture.setup());
afterAll(() => fixture.cleanup());
const engines: Engine[] = []; // opened outside the fixture (llama.cpp)
afterAll(async () => { for (const e of engines) await e.dispose(); });

const tokens = randomTokens;

/** Pool accounting from the outside: every count == the live tables holding the block + the cache's
 *  references; free ⇔ count 0; no block both free and referenced; used + free == total. */
function checkPool(e: LabEngine, live: Sequence[], cacheHeld: readonly number[]): void {
  const kv = e.kv;
  const { blocksTotal, blocksUsed, blocksFree } = e.memory().kv;
  const free = new Set(kv.freeQueue());
  expect(free.size).toBe(kv.freeQueue().length);
  const expected = new Array(blocksTotal).fill(0);
  for (const s of live) for (const id of kv.blockIds(s)) expected[id]++;
  for (const id of cacheHeld) expected[id]++;
  let used = 0;
  for (let id = 0; id < blocksTotal; id++) {
    expect(kv.refCount(id)).toBeGreaterThanOrEqual(0);
    expect(kv.refCount(id)).toBe(expected[id]);
    expect(free.has(id)).toBe(expected[id] === 0);
    if (expected[id] > 0) used++;
  }
  expect(blocksUsed).toBe(used);
  expect(blocksUsed + blocksFree).toBe(blocksTotal);
}

describe("block-hash cache (vLLM APC), block size 16", () => {
  it("LRU queue: O(1) removal from the middle keeps the order of the rest", () => {
    const q = new LruBlockQueue();
    for (const id of [5, 3, 9, 1]) q.pushBack(id);
    q.remove(9);
    expect(q.ids()).toEqual([5, 3, 1]);
    expect(q.popFront()).toBe(5);
    q.pushBack(9);
    expect(q.ids()).toEqual([3, 1, 9]);
    expect(() => q.remove(42)).toThrow(/not queued/);
    expect(() => q.pushBack(3)).toThrow(/already queued/);
  });

  it("55 tokens hash exactly 3 chained blocks; the same prefix hits those 3 with 2 users; after both finish the eviction order is exact and a miss receives blocks in that order", async () => {
    const e = await open({ kvBlockSize: 16, kvBlocks: 11, maxSequences: 4 });
    const cache = new BlockHashCache(e);
    const common = tokens(48, 1, e.hparams.nVocab);
    const p0 = [...common, ...tokens(7, 2, e.hparams.nVocab)]; // 48 + 7 = 55 tokens
    const hashes = blockHashes(p0, 16);
    expect(hashes).toHaveLength(3); // the partial 4th block (7 tokens) is never hashed
    expect(hashes[1]).toBe(sha256BlockHash(hashes[0], p0.slice(16, 32))); // chained on the parent
    expect(hashes[0]).not.toBe(sha256BlockHash(null, p0.slice(16, 32)));

    const r0 = await prefillCached(e, cache, p0);
    expect(r0.cachedTokens).toBe(0);
    expect(e.kv.blockIds(r0.sequence)).toEqual([0, 1, 2, 3]);
    expect(cache.heldBlocks()).toEqual([0, 1, 2]); // full blocks only
    expect([0, 1, 2].map((id) => cache.hashOf(id))).toEqual(hashes);

    const p1 = [...common, ...tokens(3, 3, e.hparams.nVocab)]; // 51 tokens, same 48-token prefix
    const r1 = await prefillCached(e, cache, p1);
    expect(r1.cachedTokens).toBe(48);
    expect(r1.computedTokens).toBe(3);
    expect(e.kv.blockIds(r1.sequence)).toEqual([0, 1, 2, 4]);
    // Pool count 3 = two running sequences + the cache's own reference (vLLM's ref_cnt 2 = the two requests).
    expect([0, 1, 2].map((id) => e.kv.refCount(id))).toEqual([3, 3, 3]);
    checkPool(e, [r0.sequence, r1.sequence], cache.heldBlocks());

    await cache.release(r0.sequence);
    expect(e.kv.freeQueue()).toEqual([5, 6, 7, 8, 9, 10, 3]); // r0's partial block: not cached, freed
    expect(cache.evictionQueue()).toEqual([]); // r1 still holds 0, 1, 2
    await cache.release(r1.sequence);
    expect(e.kv.freeQueue()).toEqual([5, 6, 7, 8, 9, 10, 3, 4]);
    expect(cache.evictionQueue()).toEqual([2, 1, 0]); // tail first
    checkPool(e, [], cache.heldBlocks());

    // A 10-block miss: the 8 free blocks, then the cache evicts 2 then 1 (0 stays cached).
    const miss = await prefillCached(e, cache, tokens(16 * 9 + 5, 4, e.hparams.nVocab));
    expect(miss.cachedTokens).toBe(0);
    expect(e.kv.blockIds(miss.sequence)).toEqual([5, 6, 7, 8, 9, 10, 3, 4, 2, 1]);
    // Block 0 survives the eviction; the miss's own 9 full blocks are cached in turn.
    expect(cache.heldBlocks()).toEqual([0, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(cache.stats()).toMatchObject({ queries: 3, queryTokens: 55 + 51 + 149, hitTokens: 48, evictedBlocks: 2, blocksHeld: 10 });
    await cache.release(miss.sequence);
    // The stale entries of the evicted blocks are gone: p1 now hits block 0 only.
    const again = await cache.lookup(p1);
    expect(again.cachedTokens).toBe(16);
    expect(e.kv.blockIds(again.sequence)).toEqual([0]);
    await cache.release(again.sequence);
    await cache.dispose();
    checkPool(e, [], []);
  });

  it("at least one prompt token is recomputed: a 48-token prompt fully cached reuses 2 blocks, not 3", async () => {
    const e = await open({ kvBlockSize: 16, kvBlocks: 16, maxSequences: 4 });
    const cache = new BlockHashCache(e);
    const p = tokens(48, 5, e.hparams.nVocab);
    const r0 = await prefillCached(e, cache, p);
    await cache.release(r0.sequence);
    const r1 = await prefillCached(e, cache, p);
    expect(r1.cachedTokens).toBe(32);
    expect(r1.computedTokens).toBe(16);
    await cache.release(r1.sequence);
    await cache.dispose();
  });

  it("blocks held by a running sequence are never evicted: a pool full of them still throws KvCacheFullError", async () => {
    const e = await open({ kvBlockSize: 16, kvBlocks: 6, maxSequences: 4 });
    const cache = new BlockHashCache(e);
    const running = await prefillCached(e, cache, tokens(64, 6, e.hparams.nVocab)); // blocks 0..3, all cached
    expect(cache.heldBlocks()).toEqual([0, 1, 2, 3]);
    expect(await cache.evict(4)).toBe(0);
    await expect(prefillCached(e, cache, tokens(40, 7, e.hparams.nVocab))).rejects.toBeInstanceOf(KvCacheFullError);
    expect(e.kv.blockIds(running.sequence)).toEqual([0, 1, 2, 3]);
    expect([0, 1, 2, 3].map((id) => e.kv.refCount(id))).toEqual([2, 2, 2, 2]);
    checkPool(e, [running.sequence], cache.heldBlocks());
    await cache.release(running.sequence);
    await cache.dispose();
  });

  it("capacity 0 is off: nothing is retained, nothing hits; capacity 2 keeps at most 2 blocks", async () => {
    const e = await open({ kvBlockSize: 16, kvBlocks: 16, maxSequences: 4 });
    const off = new BlockHashCache(e, { capacityBlocks: 0 });
    const p = tokens(70, 8, e.hparams.nVocab);
    await off.release((await prefillCached(e, off, p)).sequence);
    const r = await prefillCached(e, off, p);
    expect(r.cachedTokens).toBe(0);
    expect(off.heldBlocks()).toEqual([]);
    await off.release(r.sequence);
    checkPool(e, [], []);
    const two = new BlockHashCache(e, { capacityBlocks: 2 });
    await two.release((await prefillCached(e, two, p)).sequence);
    expect(two.heldBlocks()).toHaveLength(2);
    expect((await prefillCached(e, two, p)).cachedTokens).toBe(32);
    expect(() => new BlockHashCache(e, { capacityBlocks: -1 })).toThrow(RangeError);
  });

  it("a forced hash collision never returns another prompt's KV (token and parent checks), and both prompts stay cached", async () => {
    const e = await open({ kvBlockSize: 16, kvBlocks: 20, maxSequences: 4 });
    const cache = new BlockHashCache(e, { hash: () => "same" }); // every block collides
    const a = tokens(40, 9, e.hparams.nVocab);
    const b = [...tokens(16, 10, e.hparams.nVocab), ...a.slice(16)]; // same block 1 tokens, different parent
    await cache.release((await prefillCached(e, cache, a)).sequence);
    const rb = await prefillCached(e, cache, b);
    expect(rb.cachedTokens).toBe(0); // block 0 differs → no hit, though every hash is equal
    await cache.release(rb.sequence);
    expect(cache.heldBlocks()).toHaveLength(4);
    const ra = await cache.lookup(a);
    const rb2 = await cache.lookup(b);
    expect([ra.cachedTokens, rb2.cachedTokens]).toEqual([32, 32]);
    expect(e.kv.blockIds(ra.sequence)).not.toEqual(e.kv.blockIds(rb2.sequence));
    // Each hit continues exactly like a cold run of its own prompt.
    for (const [hit, p] of [[ra, a], [rb2, b]] as const) {
      const got = await hit.sequence.evaluate(p.slice(32));
      const cold = await e.createSequence();
      const want = await cold.evaluate(p);
      expect(Array.from(got[0])).toEqual(Array.from(want[0]));
      await cold.free();
      await cache.release(hit.sequence);
    }
  });

  it("the collision test fails on a wrong implementation: a cache that trusts the hash alone hands b block 0 of a", async () => {
    const e = await open({ kvBlockSize: 16, kvBlocks: 20, maxSequences: 4 });
    const broken = new BlockHashCache(e, { hash: () => "same" });
    // Replace the token-and-parent check by "first entry under this hash" (what a careless cache does).
    const inner = broken as unknown as { byHash: Map<string, unknown[]>; find: (h: string) => unknown };
    inner.find = (h: string) => inner.byHash.get(h)?.[0];
    const a = tokens(40, 9, e.hparams.nVocab);
    const b = [...tokens(16, 10, e.hparams.nVocab), ...a.slice(16)];
    await broken.release((await prefillCached(e, broken, a)).sequence);
    const rb = await broken.lookup(b);
    expect(rb.cachedTokens).toBeGreaterThan(0); // the previous test's `toBe(0)` would catch this
    await broken.release(rb.sequence);
    await broken.dispose();
  });

  it("bad input: empty prompt, ids outside the vocabulary, an engine without paged KV", async () => {
    const e = await open({ kvBlockSize: 16, kvBlocks: 8, maxSequences: 2 });
    const cache = new BlockHashCache(e);
    await expect(cache.lookup([])).rejects.toThrow(/empty prompt/);
    await expect(cache.lookup([1, e.hparams.nVocab])).rejects.toThrow(/outside the vocabulary/);
    await expect(cache.lookup([1, -1])).rejects.toBeInstanceOf(EngineError);
    expect(() => new BlockHashCache({ ...e, name: "llama", kv: undefined } as unknown as Engine)).toThrow(/slot cache/);
    // Block sizes are the pool's: not a power of two, or larger than the context, is refused on opening.
    await expect(open({ kvBlockSize: 12 })).rejects.toThrow(/power of two/);
    await expect(open({ kvBlockSize: 512, contextSize: 256 })).rejects.toThrow(/power of two between 1 and contextSize/);
  });
});


describe("a full pool is recognised across two copies of lab/engine/engine.ts (a notebook kernel loads it twice)", () => {
  it("a KvCacheFullError from another module instance is instanceof this copy's classes, and stepEvicting evicts on it", async () => {
    const specifier = "../lab/engine/engine.ts?second-copy"; // a query makes vite load a second instance
    const other = (await import(/* @vite-ignore */ specifier)) as typeof import("../lab/engine/engine.ts");
    expect(other.KvCacheFullError).not.toBe(KvCacheFullError); // really two classes
    const foreign = new other.KvCacheFullError(3, 1);
    expect(foreign).toBeInstanceOf(KvCacheFullError);
    expect(foreign).toBeInstanceOf(EngineError);
    expect(new other.EngineError("x")).not.toBeInstanceOf(KvCacheFullError);
    expect(new Error("x")).not.toBeInstanceOf(EngineError);
    // The cache loop catches it: an engine whose step throws the foreign error once gets an eviction and a retry.
    const e = await open({ kvBlockSize: 16, kvBlocks: 8, maxSequences: 2 });
    const cache = new BlockHashCache(e);
    let thrown = false, evicted = 0;
    const wrapped = Object.create(e, { step: { value: async (items: Parameters<Engine["step"]>[0]) => {
      if (!thrown) { thrown = true; throw new other.KvCacheFullError(1, 0); }
      return e.step(items);
    } } }) as Engine;
    const spy = Object.create(cache, { evict: { value: async (n: number) => { evicted += n; return 1; } } }) as PrefixCache;
    const seq = await e.createSequence();
    await stepEvicting(wrapped, spy, seq, tokens(5, 80, e.hparams.nVocab));
    expect([thrown, evicted, seq.length]).toEqual([true, 1, 5]);
    await seq.free();
  });
});

/** XXH64 (seed 0) written out from the spec with BigInt, independent of xxhash-wasm. */
function refXxh64(bytes: Uint8Array): bigint {
  const M = (1n << 64n) - 1n;
  const [P1, P2, P3, P4, P5] = [0x9E3779B185EBCA87n, 0xC2B2AE3D27D4EB4Fn, 0x165667B19E3779F9n, 0x85EBCA77C2B2AE63n, 0x27D4EB2F165667C5n];
  const rotl = (x: bigint, r: bigint) => ((x << r) | (x >> (64n - r))) & M;
  const u64 = (i: number) => { let v = 0n; for (let k = 7; k >= 0; k--) v = (v << 8n) | BigInt(bytes[i + k]!); return v; };
  const u32 = (i: number) => BigInt(bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16)) + (BigInt(bytes[i + 3]!) << 24n);
  const round = (acc: bigint, lane: bigint) => (rotl((acc + lane * P2) & M, 31n) * P1) & M;
  const n = bytes.length;
  let i = 0, h: bigint;
  if (n >= 32) {
    const v = [(P1 + P2) & M, P2, 0n, (M + 1n - P1) & M];
    for (; i + 32 <= n; i += 32) for (let k = 0; k < 4; k++) v[k] = round(v[k]!, u64(i + 8 * k));
    h = (rotl(v[0]!, 1n) + rotl(v[1]!, 7n) + rotl(v[2]!, 12n) + rotl(v[3]!, 18n)) & M;
    for (const x of v) h = (((h ^ round(0n, x)) * P1) + P4) & M;
  } else {
    h = P5;
  }
  h = (h + BigInt(n)) & M;
  for (; i + 8 <= n; i += 8) h = ((rotl(h ^ round(0n, u64(i)), 27n) * P1) + P4) & M;
  if (i + 4 <= n) { h = ((rotl(h ^ ((u32(i) * P1) & M), 23n) * P2) + P3) & M; i += 4; }
  for (; i < n; i++) h = (rotl(h ^ ((BigInt(bytes[i]!) * P5) & M), 11n) * P1) & M;
  h ^= h >> 33n; h = (h * P2) & M; h ^= h >> 29n; h = (h * P3) & M; h ^= h >> 32n;
  return h;
}

describe("xxh64 block hashing (xxhash-wasm)", () => {
  it("hashes the same bytes as sha256 (parent hex or \"none\", then int32 LE tokens) through XXH64, checked against a reference written from the spec", async () => {
    const enc = new TextEncoder();
    expect(refXxh64(new Uint8Array()).toString(16)).toBe("ef46db3751d8e999"); // XXH64's published test vectors
    expect(refXxh64(enc.encode("abc")).toString(16)).toBe("44bc2cf5ad770999");
    const xxh = await xxh64BlockHash();
    const bytesOf = (parent: string | null, toks: number[]) => {
      const b = Buffer.alloc(4 * toks.length);
      toks.forEach((t, i) => b.writeInt32LE(t, 4 * i));
      return new Uint8Array(Buffer.concat([Buffer.from(parent ?? "none"), b]));
    };
    const h0 = xxh(null, [1, 2]);
    expect(h0).toBe(refXxh64(bytesOf(null, [1, 2])).toString(16).padStart(16, "0"));
    expect(h0).toMatch(/^[0-9a-f]{16}$/);
    const block = tokens(16, 70, 1024); // 16 hex + 64 bytes: the 32-byte stripe path of XXH64
    expect(xxh(h0, block)).toBe(refXxh64(bytesOf(h0, block)).toString(16).padStart(16, "0"));
    expect(await blockHashFunction("sha256")).toBe(sha256BlockHash);
    await expect(blockHashFunction("md5")).rejects.toThrow(/unknown block hash "md5"/);
  });

  it("a block cache on xxh64 hits exactly what it hits on sha256", async () => {
    const e = await open({ kvBlockSize: 16, kvBlocks: 20, maxSequences: 4 });
    const cache = new BlockHashCache(e, { hash: await xxh64BlockHash() });
    const common = tokens(48, 1, e.hparams.nVocab);
    const r0 = await prefillCached(e, cache, [...common, ...tokens(7, 2, e.hparams.nVocab)]);
    await cache.release(r0.sequence);
    const r1 = await prefillCached(e, cache, [...common, ...tokens(3, 3, e.hparams.nVocab)]);
    expect(r1.cachedTokens).toBe(48);
    expect(e.kv.blockIds(r1.sequence).slice(0, 3)).toEqual([0, 1, 2]);
    expect(cache.hashOf(0)).toMatch(/^[0-9a-f]{16}$/);
    await cache.release(r1.sequence);
    await cache.dispose();
  });
});

describe("radix cache (SGLang RadixAttention), block size 4", () => {
  it("insert, match with a split inside an edge, lock/unlock along the path, LRU eviction of unlocked leaves then their parent", async () => {
    const e = await open({ kvBlockSize: 4, kvBlocks: 64, maxSequences: 4 });
    const cache = new RadixCache(e);
    const a = tokens(10, 20, e.hparams.nVocab);
    const b = [...a.slice(0, 6), ...tokens(4, 21, e.hparams.nVocab)];
    expect(b[6]).not.toBe(a[6]);

    const ra = await prefillCached(e, cache, a);
    expect(e.kv.blockIds(ra.sequence)).toEqual([0, 1, 2]);
    expect(cache.dump().children.map((c) => [c.key.length, c.lockRef])).toEqual([[10, 1]]); // locked while running
    await cache.release(ra.sequence);
    expect(cache.dump().children[0].lockRef).toBe(0);
    expect(cache.heldBlocks()).toEqual([0, 1, 2]); // the partial block too: radix matches are token-granular

    const rb = await prefillCached(e, cache, b);
    expect(rb.cachedTokens).toBe(6); // not rounded down to a block: 6 tokens of blocks [0, 1]
    // The match ended inside a's edge: split into [a0..a5] → {[a6..a9], [b6..b9]}.
    const tree = cache.dump();
    expect(tree.children).toHaveLength(1);
    expect(tree.children[0].key).toEqual(a.slice(0, 6));
    expect(tree.children[0].lockRef).toBe(1); // b runs through the shared part
    expect(tree.children[0].children.map((c) => [c.key, c.lockRef])).toEqual([[a.slice(6), 0], [b.slice(6), 1]]);
    // b appended into the shared partial block 1: copy-on-write gave it block 3, then block 4.
    expect(e.kv.blockIds(rb.sequence)).toEqual([0, 3, 4]);
    expect(cache.heldBlocks()).toEqual([0, 1, 1, 2, 3, 4]); // block 1 straddles the split: held by both halves
    checkPool(e, [rb.sequence], cache.heldBlocks());

    // Locked leaves are never evicted: only a's tail can go while b runs.
    expect(await cache.evict(100)).toBe(1); // a's tail: block 2 freed, block 1 still held by the top half
    expect(cache.evictedKeys).toEqual([a.slice(6)]);
    await cache.release(rb.sequence);
    expect(e.kv.freeQueue().slice(-1)).toEqual([2]);
    expect(await cache.evict(100)).toBe(4); // b's tail (3, 4), then its parent became an unlocked leaf (0, 1)
    expect(cache.evictedKeys).toEqual([a.slice(6), b.slice(6), a.slice(0, 6)]);
    expect(e.kv.freeQueue().slice(-5)).toEqual([2, 3, 4, 0, 1]);
    expect(cache.heldBlocks()).toEqual([]);
    checkPool(e, [], []);
    expect(cache.stats()).toMatchObject({ queries: 2, queryTokens: 20, hitTokens: 6, evictedBlocks: 5, blocksHeld: 0 });
  });

  it("eviction is least recently used: a leaf touched by a later lookup outlives an older one", async () => {
    const e = await open({ kvBlockSize: 4, kvBlocks: 64, maxSequences: 4 });
    const cache = new RadixCache(e);
    const x = tokens(8, 22, e.hparams.nVocab), y = tokens(8, 23, e.hparams.nVocab), z = tokens(8, 24, e.hparams.nVocab);
    for (const p of [x, y, z]) await cache.release((await prefillCached(e, cache, p)).sequence);
    await cache.release((await prefillCached(e, cache, x)).sequence); // x is now the most recently used (all of it)
    await cache.evict(2);
    expect(cache.evictedKeys).toEqual([y]);
    await cache.evict(2);
    expect(cache.evictedKeys).toEqual([y, z]);
    await cache.dispose();
    checkPool(e, [], []);
  });

  it("capacity 0 is off; a capacity of 4 blocks evicts old leaves to admit new ones", async () => {
    const e = await open({ kvBlockSize: 4, kvBlocks: 64, maxSequences: 4 });
    const off = new RadixCache(e, { capacityBlocks: 0 });
    const p = tokens(12, 25, e.hparams.nVocab);
    await off.release((await prefillCached(e, off, p)).sequence);
    expect((await prefillCached(e, off, p)).cachedTokens).toBe(0);
    expect(off.heldBlocks()).toEqual([]);
    const small = new RadixCache(e, { capacityBlocks: 4 });
    const q = tokens(8, 26, e.hparams.nVocab), r = tokens(8, 27, e.hparams.nVocab), t = tokens(8, 28, e.hparams.nVocab);
    for (const x of [q, r, t]) await small.release((await prefillCached(e, small, x)).sequence);
    expect(small.evictedKeys).toEqual([q]);
    expect(small.stats().blocksHeld).toBe(4);
    expect(() => new RadixCache(e, { capacityBlocks: 1.5 })).toThrow(RangeError);
  });
});

/** Greedy generation of n tokens after the prompt through a cache (or none) → tokens and log-probs. */
async function greedy(e: Engine, cache: PrefixCache | undefined, prompt: number[], n: number): Promise<{ tokens: number[]; rows: Float32Array[]; cached: number }> {
  const req = await prefillCached(e, cache, prompt);
  const rows = [req.logprobs];
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const row = rows[rows.length - 1];
    let best = 0;
    for (let v = 1; v < row.length; v++) if (row[v] > row[best]) best = v;
    out.push(best);
    if (i < n - 1) rows.push((await stepEvicting(e, cache, req.sequence, [best])).logprobs[0]);
  }
  if (cache) await cache.release(req.sequence);
  else await req.sequence.free();
  return { tokens: out, rows, cached: req.cachedTokens };
}

describe("caching is exact (F32): identical greedy tokens, log-probs within 1e-5", () => {
  for (const method of ["block", "radix"] as const) {
    it(`${method}: three requests sharing a 37-token prefix generate what cold requests generate`, async () => {
      const e = await open({ kvBlockSize: 8, kvBlocks: 40, maxSequences: 4 });
      const cache: PrefixCache = method === "block" ? new BlockHashCache(e) : new RadixCache(e);
      const shared = tokens(37, 30, e.hparams.nVocab);
      let cachedTotal = 0;
      for (let i = 0; i < 3; i++) {
        const prompt = [...shared, ...tokens(5 + i, 31 + i, e.hparams.nVocab)];
        const cold = await greedy(e, undefined, prompt, 6);
        const warm = await greedy(e, cache, prompt, 6);
        cachedTotal += warm.cached;
        expect(warm.tokens).toEqual(cold.tokens);
        for (let r = 0; r < cold.rows.length; r++) {
          let d = 0;
          for (let v = 0; v < cold.rows[r].length; v++) d = Math.max(d, Math.abs(cold.rows[r][v] - warm.rows[r][v]));
          expect(d).toBeLessThanOrEqual(1e-5);
        }
      }
      // Request 1 hits the shared prefix (and request 0's own prompt tokens beyond it, for radix none).
      expect(cachedTotal).toBe(method === "block" ? 2 * 32 : 2 * 37);
      await cache.dispose();
    });
  }
});

/** Random lookups, steps, releases and evictions; the pool's accounting is checked after each one. */
async function propertyRun(e: LabEngine, cache: PrefixCache, seed: number, ops: number): Promise<void> {
      const rand = mulberry32(seed);
      const stems = [tokens(9, 40, e.hparams.nVocab), tokens(14, 41, e.hparams.nVocab), tokens(5, 42, e.hparams.nVocab)];
      const live: Sequence[] = [];
      const held = () => (cache as BlockHashCache | RadixCache).heldBlocks();
      for (let op = 0; op < ops; op++) {
        const r = rand();
        if (r < 0.45 && live.length < 3) {
          const stem = stems[Math.floor(rand() * stems.length)];
          const prompt = [...stem.slice(0, 1 + Math.floor(rand() * stem.length)), ...tokens(1 + Math.floor(rand() * 6), op, e.hparams.nVocab)];
          try {
            const req = await prefillCached(e, cache, prompt);
            expect(req.sequence.tokens).toEqual(prompt); // the cache never hands out other tokens
            live.push(req.sequence);
          } catch (err) {
            expect(err).toBeInstanceOf(KvCacheFullError); // only when running sequences fill the pool
          }
        } else if (r < 0.65 && live.length > 0) {
          const s = live[Math.floor(rand() * live.length)];
          try {
            await stepEvicting(e, cache, s, tokens(1 + Math.floor(rand() * 3), 1000 + op, e.hparams.nVocab), "none");
            cache.insert(s);
          } catch (err) {
            expect(err).toBeInstanceOf(KvCacheFullError);
          }
        } else if (r < 0.9 && live.length > 0) {
          const i = Math.floor(rand() * live.length);
          await cache.release(live[i]);
          live.splice(i, 1);
        } else {
          await cache.evict(1 + Math.floor(rand() * 4));
        }
        checkPool(e, live, held());
      }
      for (const s of live) await cache.release(s);
      await cache.dispose();
      checkPool(e, [], []);
}

describe("random property test: ref counts >= 0, pool accounting exact, no block both free and referenced", () => {
  for (const method of ["block", "radix"] as const) {
    it(`${method}: 120 random lookups, inserts, releases and evictions on a small pool`, async () => {
      const e = await open({ kvBlockSize: 4, kvBlocks: 30, maxSequences: 4, contextSize: 64 });
      await propertyRun(e, method === "block" ? new BlockHashCache(e) : new RadixCache(e), 77, 120);
    });
  }

  it("the property test fails on a wrong implementation: a block cache that indexes blocks without taking a reference", async () => {
    const e = await open({ kvBlockSize: 4, kvBlocks: 30, maxSequences: 4, contextSize: 64 });
    const broken = new BlockHashCache(e);
    // The bug: insert() forgets kv.retain, so a cached block returns to the pool when its sequence ends.
    const inner = broken as unknown as { kv: typeof e.kv };
    inner.kv = { ...e.kv, blockSize: e.kv.blockSize, retain: () => {} };
    const err = await propertyRun(e, broken, 77, 120).then(() => undefined, (x: Error) => x);
    expect(err?.name).toBe("AssertionError"); // caught by the accounting check, not by a crash
  });
});

/** The slot cache's behaviour, the same on both engines. */
async function slotScenario(e: Engine): Promise<void> {
  const cache = new SlotCache(e, { slots: 2 });
  const sys = tokens(20, 50, e.hparams.nVocab);
  const p1 = [...sys, ...tokens(4, 51, e.hparams.nVocab)];
  const p2 = [...sys, ...tokens(6, 52, e.hparams.nVocab)];
  const other = tokens(10, 53, e.hparams.nVocab);
  const cold1 = await greedy(e, undefined, p1, 4);
  const r1 = await greedy(e, cache, p1, 4);
  expect(r1.cached).toBe(0);
  const rOther = await greedy(e, cache, other, 2); // shares nothing: opens the second slot, keeps slot 0
  expect(rOther.cached).toBe(0);
  expect(cache.slotTokens().map((s) => s.tokens.length)).toEqual([24 + 3, 10 + 1]);
  // p2 routes to slot 0 (common prefix 20 with p1's tokens), truncated to it: 20 tokens reused.
  const cold2 = await greedy(e, undefined, p2, 4);
  const r2 = await greedy(e, cache, p2, 4);
  expect(r2.cached).toBe(20);
  expect(r2.tokens).toEqual(cold2.tokens);
  for (let r = 0; r < cold2.rows.length; r++) {
    let d = 0;
    for (let v = 0; v < cold2.rows[r].length; v++) d = Math.max(d, Math.abs(cold2.rows[r][v] - r2.rows[r][v]));
    expect(d).toBeLessThanOrEqual(1e-5);
  }
  expect(r1.tokens).toEqual(cold1.tokens);
  // The same prompt again: everything but its last token is reused.
  const r3 = await greedy(e, cache, p2, 1);
  expect(r3.cached).toBe(p2.length - 1);
  const s = cache.stats();
  expect(s).toMatchObject({ queries: 4, queryTokens: 24 + 10 + 26 + 26, hitTokens: 20 + 25 });
  // Dropped by truncation: slot 0 held p1 + 3 generated (27) → cut to 20 (7); then p2 + 3 generated (29) → cut to 25 (4).
  expect(s.evictedTokens).toBe(7 + 4);
  // Both slots busy → a clear error, not a silent overwrite.
  const a = await cache.lookup(p1);
  const b = await cache.lookup(other);
  await expect(cache.lookup(p2)).rejects.toThrow(/all 2 slots are busy/);
  await cache.release(a.sequence);
  await cache.release(b.sequence);
  await expect(cache.release(a.sequence)).rejects.toThrow(/released twice/);
  await cache.dispose();
}

describe("slot cache (llama-server cache_prompt)", () => {
  it("LabEngine: routes to the longest common prefix, truncates, reuses; exact outputs; busy slots are never overwritten", async () => {
    const e = await open({ kvBlockSize: 8, kvBlocks: 32, maxSequences: 4 });
    await slotScenario(e);
    checkPool(e, [], []);
  });

  it("a miss (fewer than SLOT_MIN_REUSE_TOKENS shared, e.g. only BOS) recycles the least recently used idle slot: freed and reopened empty, 0 tokens cached, its tokens counted as evicted", async () => {
    const e = await open({ kvBlockSize: 8, kvBlocks: 32, maxSequences: 4 });
    const bos = e.tokenizer.bosId;
    const cache = new SlotCache(e, { slots: 2 });
    const a = await prefillCached(e, cache, [bos, ...tokens(11, 70, e.hparams.nVocab)]);
    await cache.release(a.sequence);
    const b = await prefillCached(e, cache, [bos, ...tokens(9, 71, e.hparams.nVocab)]); // opens slot 2: only BOS in common
    expect(b.cachedTokens).toBe(0);
    await cache.release(b.sequence);
    // Both slots full: recycles slot 1 (LRU), even when slot 2 shares more (a few tokens, still a miss).
    const c = await prefillCached(e, cache, [bos, ...tokens(9, 71, e.hparams.nVocab).slice(0, 3), ...tokens(4, 72, e.hparams.nVocab)]);
    expect(c.cachedTokens).toBe(0);
    expect(c.sequence).not.toBe(a.sequence); // a new sequence, not a truncated one
    expect(cache.slotTokens().map((s) => s.tokens.length)).toEqual([8, 10]); // slot 2 (b) kept whole
    expect(cache.stats()).toMatchObject({ queries: 3, hitTokens: 0, evictedTokens: 12 });
    await cache.release(c.sequence);
    // A common prefix of SLOT_MIN_REUSE_TOKENS or more routes to its slot and truncates, as before;
    // one token fewer is a miss.
    const long = [bos, ...tokens(SLOT_MIN_REUSE_TOKENS + 8, 74, e.hparams.nVocab)];
    await cache.release((await prefillCached(e, cache, long)).sequence); // a miss: recycles b's slot
    const d = await prefillCached(e, cache, [...long.slice(0, SLOT_MIN_REUSE_TOKENS), ...tokens(5, 73, e.hparams.nVocab)]);
    expect(d.cachedTokens).toBe(SLOT_MIN_REUSE_TOKENS);
    await cache.release(d.sequence);
    const f = await prefillCached(e, cache, [...long.slice(0, SLOT_MIN_REUSE_TOKENS - 1), ...tokens(5, 75, e.hparams.nVocab)]);
    expect(f.cachedTokens).toBe(0);
    await cache.release(f.sequence);
    await cache.dispose();
    checkPool(e, [], []);
  });

  it("LabEngine: idle slots are evicted (LRU) when the pool is full; 0 slots = off; bad sizes refused", async () => {
    const e = await open({ kvBlockSize: 8, kvBlocks: 8, maxSequences: 4 });
    const cache = new SlotCache(e, { slots: 3 });
    await cache.release((await prefillCached(e, cache, tokens(30, 60, e.hparams.nVocab))).sequence); // 4 blocks
    await cache.release((await prefillCached(e, cache, tokens(20, 61, e.hparams.nVocab))).sequence); // 3 blocks
    const big = await prefillCached(e, cache, tokens(40, 62, e.hparams.nVocab)); // 5 blocks: evicts the oldest slot
    expect(cache.slotTokens().map((s) => s.tokens.length)).toEqual([20, 40]);
    expect(cache.stats().evictedBlocks).toBe(4);
    await cache.release(big.sequence);
    await cache.dispose();
    const off = new SlotCache(e, { slots: 0 });
    const p = tokens(12, 63, e.hparams.nVocab);
    await off.release((await prefillCached(e, off, p)).sequence);
    expect((await prefillCached(e, off, p)).cachedTokens).toBe(0);
    expect(() => new SlotCache(e, { slots: 5 })).toThrow(RangeError);
    expect(() => openPrefixCache("lru", e)).toThrow(/unknown prefix cache method "lru"/);
  });

  it.skipIf(!hasTarget)("llama.cpp (target.gguf, 1 thread): the same routing and exactness", async () => {
    const e = await openEngine("llama", TARGET_GGUF, { contextSize: 128, maxSequences: 3, threads: 1 });
    engines.push(e);
    expect(e.kv).toBeUndefined();
    expect(() => new BlockHashCache(e)).toThrow(/slot cache/);
    expect(() => new RadixCache(e)).toThrow(/slot cache/);
    await slotScenario(e);
  }, 120_000);
});

describe("lab prefix-bench", () => {
  it("workloads: the system prompt is shared, multi-turn prompts extend earlier ones, unique ones share nothing", () => {
    const sys = workloadPrompts("system-prompt", 3);
    expect(sys[1].startsWith(sys[0].split("\n")[0])).toBe(true);
    const turns = workloadPrompts("multi-turn", 6); // 2 conversations, interleaved
    expect(turns[2].startsWith(turns[0].slice(0, -"\nAssistant:".length))).toBe(true);
    const unique = workloadPrompts("unique", 3);
    expect(unique[0].slice(0, 20)).not.toBe(unique[1].slice(0, 20));
    expect(() => workloadPrompts("system-prompt", 0)).toThrow(RangeError);
  });

  it.skipIf(!hasTarget)("few-shot on target.gguf: every method's JSON fields, same greedy tokens as no cache", async () => {
    const report = await runPrefixBench({ model: TARGET_GGUF, workload: "few-shot", requests: 4, decodeTokens: 2 });
    expect(Object.keys(report.methods)).toEqual(["none", "block", "radix", "slot"]);
    for (const m of Object.values(report.methods)) {
      expect(m).toEqual(expect.objectContaining({ hitRate: expect.any(Number), prefillTokens: expect.any(Number), evictions: expect.any(Number) }));
      expect(m.ttftMs.p50).toBeGreaterThan(0);
      expect(m.ttftMs.p90).toBeGreaterThanOrEqual(m.ttftMs.p50);
      expect(m.sameTokensAsNone).toBe(true);
    }
    expect(report.methods.none.hitRate).toBe(0);
    // Token-granular radix reuses at least what block-aligned hashing does.
    expect(report.methods.radix.cachedTokens).toBeGreaterThanOrEqual(report.methods.block.cachedTokens);
    const total = report.methods.none.prefillTokens;
    for (const m of ["block", "radix", "slot"] as const) expect(report.methods[m].prefillTokens + report.methods[m].cachedTokens).toBe(total);
  }, 120_000);

  it("bad flags are usage errors in words", async () => {
    await expect(prefixBenchCommand.run(["m.gguf", "--workload", "chat"])).rejects.toThrow(/unknown workload "chat"/);
    await expect(prefixBenchCommand.run(["m.gguf", "--block-size", "12"])).rejects.toThrow(/power of two/);
    await expect(prefixBenchCommand.run(["m.gguf", "--engine", "vllm"])).rejects.toThrow(/unknown engine "vllm"/);
    await expect(prefixBenchCommand.run(["m.gguf", "--cache-blocks", "-1"])).rejects.toThrow(/--cache-blocks/);
    await expect(prefixBenchCommand.run(["m.gguf", "--hash", "md5"])).rejects.toThrow(/unknown --hash "md5"/);
  });
});
