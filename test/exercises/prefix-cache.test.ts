// Graded tests for tasks 3.1–3.3 (prefix caching, notebooks/03-prefix-caching.ipynb). They import the
// implementation through the "@target/" alias: solutions/ by default, exercises/ with LAB_TARGET=exercises.
//
// Every expectation comes from an independent reference, never from lab/prefix-cache (the kit's own
// caches): block hashes worked out with Python's hashlib and an inline node:crypto reference, block ids
// and eviction orders worked by hand, and brute-force models (a Map keyed by the whole token prefix,
// plain arrays, longest common prefix over every stored sequence) for the random tests.
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { blockHash, blockHashChain, createBlockHashIndex, type BlockHashFn } from "@target/serving/block-hash.ts";
import { createBlockPool, createFreeBlockQueue, type QueueNode } from "@target/serving/free-queue.ts";
import { createRadixTree, type RadixDump, type RadixTreeNode } from "@target/serving/radix-tree.ts";
import { mulberry32 } from "../../lab/random.ts";

/** n seeded token ids in [3, 1024). */
function tokens(n: number, seed: number): number[] {
  const r = mulberry32(seed);
  return Array.from({ length: n }, () => 3 + Math.floor(r() * 1021));
}

/** The hash as the task states it, written independently: sha256(utf8(parent ?? "none") ‖ int32le tokens). */
function refHash(parent: string | null, toks: readonly number[]): string {
  const b = Buffer.alloc(4 * toks.length);
  toks.forEach((t, i) => b.writeInt32LE(t, 4 * i));
  return createHash("sha256").update(Buffer.concat([Buffer.from(parent ?? "none", "utf8"), b])).digest("hex");
}

describe("task 3.1 — block hash chain and lookup", () => {
  it("blockHash: sha256 of the parent's hex (\"none\" for block 0) then each token as int32 little-endian (digests from Python's hashlib)", () => {
    // python3: hashlib.sha256(b"none" + struct.pack("<ii", 1, 2)).hexdigest(), then chained on that hex
    const h0 = "431c05ab7e9bf809b25b666260e8d95cfe0de0f27a147fa97b9b11e56a76edd4";
    expect(blockHash(null, [1, 2]), "block 0 = [1, 2]").toBe(h0);
    expect(blockHash(h0, [3, 4]), "block 1 = [3, 4] chained on block 0").toBe("3a151e8018dd7adff89976a48d8f5f4038c6b24a346f2430be8a2f0b383c5633");
    expect(blockHash(null, [1000, 70000]), "ids above 255 and 65535 take 4 bytes each").toBe("52312aac8afcdd191cb1b814b0cc80c7a3f1ad8c6d56b9f3e5e8ae633a52fa0d");
  });

  it("a 55-token prompt with block size 16 hashes exactly 3 blocks, each chained on its parent", () => {
    const p = tokens(55, 1);
    const chain = blockHashChain(p, 16);
    expect(chain).toHaveLength(3); // 3 full blocks; the 7-token tail is never hashed
    let parent: string | null = null;
    chain.forEach((h, j) => {
      const want = refHash(parent, p.slice(16 * j, 16 * j + 16));
      expect(h, `block ${j}`).toBe(want);
      parent = want;
    });
    // The same tokens under another parent hash differently: a block's hash names its whole prefix.
    expect(blockHashChain([...tokens(16, 2), ...p.slice(16, 32)], 16)[1]).not.toBe(chain[1]);
    expect(blockHashChain(p.slice(0, 15), 16)).toEqual([]);
    expect(blockHashChain(p.slice(0, 48), 16)).toHaveLength(3);
  });

  it("blockHashChain calls the given hash with (null, block 0), then (previous hash, block j)", () => {
    const calls: [string | null, number[]][] = [];
    const spy: BlockHashFn = (parent, toks) => {
      calls.push([parent, [...toks]]);
      return `h${calls.length}`;
    };
    expect(blockHashChain([5, 6, 7, 8, 9, 10, 11], 2, spy)).toEqual(["h1", "h2", "h3"]);
    expect(calls).toEqual([[null, [5, 6]], ["h1", [7, 8]], ["h2", [9, 10]]]);
  });

  it("a block size that is not a power of two >= 1 is a RangeError", () => {
    for (const bad of [0, 3, 12, -4, 1.5, NaN]) {
      expect(() => blockHashChain([1, 2, 3], bad), `block size ${bad}`).toThrow(RangeError);
      expect(() => createBlockHashIndex(bad), `block size ${bad}`).toThrow(RangeError);
    }
    expect(createBlockHashIndex(1).blockSize).toBe(1);
  });

  it("hand-worked: a second request with the same 48-token prefix hits exactly blocks 0, 1, 2; one token is always left to compute", () => {
    const index = createBlockHashIndex(16);
    const common = tokens(48, 3);
    const p0 = [...common, ...tokens(7, 4)]; // 55 tokens in pool blocks 0..3 (3 is partial)
    expect(index.insert(p0, [0, 1, 2, 3])).toEqual([0, 1, 2]); // the partial block is never indexed
    expect(index.size).toBe(3);
    const p1 = [...common, ...tokens(3, 5)];
    expect(index.lookup(p1)).toEqual([0, 1, 2]);
    expect(index.lookup(p0)).toEqual([0, 1, 2]);
    expect(index.lookup(common), "48 tokens, all cached: reuse 2 blocks so the last token is computed").toEqual([0, 1]);
    expect(index.lookup([...common, 7])).toEqual([0, 1, 2]);
    expect(index.lookup(common.slice(0, 31))).toEqual([0]);
    const otherBlock1 = [...common.slice(0, 16), ...tokens(32, 6), 1];
    expect(index.lookup(otherBlock1), "block 1 differs: the chain stops at block 0").toEqual([0]);
    expect(index.lookup([...tokens(16, 7), ...common.slice(16)]), "block 0 differs: no hit, though blocks 1–2 match").toEqual([]);
    expect(index.lookup([])).toEqual([]);
    // p1 finished in blocks [0, 1, 2, 4]: its 3 full blocks are the same chain, nothing new.
    expect(index.insert(p1, [0, 1, 2, 4])).toEqual([]);
    // A request that computed p0 at the same time in other blocks: the first copy stays indexed.
    expect(index.insert(p0, [5, 6, 7, 8])).toEqual([]);
    expect(index.lookup(p0)).toEqual([0, 1, 2]);
    expect(index.entry(1)).toMatchObject({ blockId: 1, hash: refHash(refHash(null, common.slice(0, 16)), common.slice(16, 32)), tokens: common.slice(16, 32) });
    expect(index.entry(1)!.parent).toBe(index.entry(0));
    expect(index.entry(0)!.parent).toBeNull();
    expect(index.entry(3)).toBeUndefined();
  });

  it("remove(block) forgets it and every block chained below it, parents first; its id can then hold other tokens", () => {
    const index = createBlockHashIndex(4);
    const a = tokens(17, 8); // blocks 10, 11, 12, 13 (+ 1 token)
    expect(index.insert(a, [10, 11, 12, 13, 14])).toEqual([10, 11, 12, 13]);
    const b = [...a.slice(0, 8), ...tokens(9, 9)]; // shares blocks 10, 11; then 20, 21
    expect(index.insert(b, [10, 11, 20, 21])).toEqual([20, 21]);
    const removed = index.remove(11);
    expect(new Set(removed)).toEqual(new Set([11, 12, 13, 20, 21]));
    expect(removed[0]).toBe(11);
    expect(removed.indexOf(12)).toBeLessThan(removed.indexOf(13));
    expect(removed.indexOf(20)).toBeLessThan(removed.indexOf(21));
    expect(index.size).toBe(1);
    expect(index.lookup(a)).toEqual([10]);
    expect(index.lookup(b)).toEqual([10]);
    const c = [...a.slice(0, 4), ...tokens(5, 10)];
    expect(index.insert(c, [10, 11, 30])).toEqual([11]); // block 11 now holds c's second block
    expect(index.lookup(c)).toEqual([10, 11]);
    expect(index.lookup(a)).toEqual([10]);
    expect(() => index.remove(12)).toThrow(RangeError);
  });

  it("a forced hash collision never returns another prompt's blocks: the tokens and the parent entry decide", () => {
    const same: BlockHashFn = () => "same"; // every block of every prompt collides
    const index = createBlockHashIndex(4, same);
    const a = tokens(13, 11);
    const b = [...tokens(4, 12), ...a.slice(4)]; // different block 0, then a's blocks 1 and 2
    index.insert(a, [0, 1, 2, 3]);
    expect(index.lookup(b), "b's block 0 differs: nothing to reuse, even though every hash matches").toEqual([]);
    expect(index.insert(b, [4, 5, 6, 7])).toEqual([4, 5, 6]);
    expect(index.lookup(a)).toEqual([0, 1, 2]);
    expect(index.lookup(b)).toEqual([4, 5, 6]);
    const c = [...a.slice(0, 4), ...tokens(9, 13)];
    expect(index.lookup(c)).toEqual([0]);
  });

  it("bad input: too few block ids, or an indexed block id given for other tokens, is a RangeError", () => {
    const index = createBlockHashIndex(4);
    expect(() => index.insert(tokens(9, 14), [0])).toThrow(RangeError);
    index.insert(tokens(8, 15), [0, 1]);
    expect(() => index.insert(tokens(8, 16), [1, 2])).toThrow(RangeError);
  });

  for (const [label, hash] of [["sha256", undefined], ["a hash that collides constantly", ((_p, t) => String(t[0]! % 2)) as BlockHashFn]] as const) {
    it(`random inserts, lookups and removals agree with a brute-force index keyed by the whole prefix (${label})`, () => {
      const B = 2;
      const index = createBlockHashIndex(B, hash);
      const ref = new Map<string, number>(); // tokens[0, (j+1)·B) joined → the pool block indexed for it
      const keyOf = (t: readonly number[], j: number) => t.slice(0, (j + 1) * B).join(",");
      const rand = mulberry32(label.length);
      const pick = (n: number) => Math.floor(rand() * n);
      let nextId = 0;
      for (let op = 0; op < 400; op++) {
        const prompt = Array.from({ length: pick(9) }, () => 3 + pick(2)); // tokens 3 and 4 only: much sharing
        const r = rand();
        if (r < 0.45) {
          // The blocks the request holds: the cached chain's ids where it hits, fresh ids after (sometimes fresh everywhere).
          const fresh = rand() < 0.2;
          const ids: number[] = [];
          for (let j = 0; (j + 1) * B <= prompt.length; j++) ids.push(!fresh && ref.has(keyOf(prompt, j)) && (j === 0 || ids[j - 1] === ref.get(keyOf(prompt, j - 1))) ? ref.get(keyOf(prompt, j))! : nextId++);
          const want: number[] = [];
          for (let j = 0; j < ids.length; j++) if (!ref.has(keyOf(prompt, j))) { ref.set(keyOf(prompt, j), ids[j]!); want.push(ids[j]!); }
          expect(index.insert(prompt, ids), `op ${op}: insert [${prompt}] in [${ids}]`).toEqual(want);
        } else if (r < 0.85) {
          const want: number[] = [];
          for (let j = 0; (j + 1) * B <= prompt.length - 1 && ref.has(keyOf(prompt, j)); j++) want.push(ref.get(keyOf(prompt, j))!);
          expect(index.lookup(prompt), `op ${op}: lookup [${prompt}]`).toEqual(want);
        } else if (ref.size > 0) {
          const keys = [...ref.keys()];
          const victim = keys[pick(keys.length)]!;
          const victimId = ref.get(victim)!;
          const gone = keys.filter((k) => k === victim || k.startsWith(victim + ","));
          const want = new Set(gone.map((k) => ref.get(k)!));
          for (const k of gone) ref.delete(k);
          expect(new Set(index.remove(victimId)), `op ${op}: remove block ${victimId} and its descendants`).toEqual(want);
        }
        expect(index.size).toBe(ref.size);
      }
    });
  }
});

/** Walks a queue's list from front() by next, checking every prev link → the ids, front to back. */
function walk(front: QueueNode | null): number[] {
  const out: number[] = [];
  let prev: QueueNode | null = null;
  for (let n = front; n; n = n.next) {
    expect(n.prev, `node ${n.blockId}: prev`).toBe(prev);
    out.push(n.blockId);
    prev = n;
    if (out.length > 1e6) throw new Error("the list has a cycle");
  }
  return out;
}

describe("task 3.2 — LRU free queue and eviction order", () => {
  it("a doubly linked list: push at the back, pop at the front, remove from the middle keeping the others' order", () => {
    const q = createFreeBlockQueue([5, 3, 9, 1]);
    expect(q.ids()).toEqual([5, 3, 9, 1]);
    expect(walk(q.front())).toEqual([5, 3, 9, 1]);
    expect(q.node(9)).toMatchObject({ blockId: 9 });
    expect(q.node(9)!.prev!.blockId).toBe(3);
    expect(q.node(9)!.next!.blockId).toBe(1);
    expect(q.node(5)!.prev).toBeNull();
    expect(q.node(1)!.next).toBeNull();
    q.remove(9);
    expect(walk(q.front())).toEqual([5, 3, 1]);
    expect(q.node(3)!.next!.blockId).toBe(1);
    expect(q.has(9)).toBe(false);
    expect(q.node(9)).toBeUndefined();
    expect(q.popFront()).toBe(5);
    q.pushBack(9);
    expect(walk(q.front())).toEqual([3, 1, 9]);
    expect(q.size).toBe(3);
    q.remove(9); // the back
    q.remove(3); // the front
    expect(walk(q.front())).toEqual([1]);
    expect(q.popFront()).toBe(1);
    expect(q.popFront()).toBeUndefined();
    expect(q.front()).toBeNull();
    expect(q.size).toBe(0);
    expect(createFreeBlockQueue().ids()).toEqual([]);
  });

  it("removing a block that is not queued, or queueing one twice, is a RangeError", () => {
    const q = createFreeBlockQueue([1, 2]);
    expect(() => q.remove(42)).toThrow(RangeError);
    expect(() => q.pushBack(2)).toThrow(RangeError);
    expect(() => createFreeBlockQueue([7, 7])).toThrow(RangeError);
    expect(q.ids()).toEqual([1, 2]);
  });

  it("remove is O(1): 100,000 removals from the middle of a 200,000-block queue take well under 5 s (a scan or an array splice takes far longer)", () => {
    const n = 200_000;
    const q = createFreeBlockQueue(Array.from({ length: n }, (_, i) => i));
    const rand = mulberry32(7);
    const middle = Array.from({ length: n / 2 }, (_, i) => n / 4 + i);
    for (let i = middle.length - 1; i > 0; i--) { const j = Math.floor(rand() * (i + 1)); [middle[i], middle[j]] = [middle[j]!, middle[i]!]; }
    const t0 = performance.now();
    let done = 0;
    for (const id of middle) {
      q.remove(id);
      // Stop early on a slow queue (a test cannot interrupt a synchronous loop).
      if (++done % 1000 === 0 && performance.now() - t0 > 5000) break;
    }
    const ms = performance.now() - t0;
    expect(done, `only ${done} of 100,000 removals in ${ms.toFixed(0)} ms: remove must unlink the block's node, not search or shift the queue`).toBe(middle.length);
    expect(ms, `100,000 removals took ${ms.toFixed(0)} ms: remove must unlink the block's node, not search or shift the queue`).toBeLessThan(5000);
    const ids = q.ids();
    expect(ids).toHaveLength(n / 2);
    expect(ids.slice(n / 4 - 2, n / 4 + 2)).toEqual([n / 4 - 2, n / 4 - 1, (3 * n) / 4, (3 * n) / 4 + 1]);
  }, 60_000);

  it("hand-worked: two requests sharing 3 blocks finish; the free queue is exactly [unused…, tails…, shared chain tail first] and a miss receives blocks in that order", () => {
    const pool = createBlockPool(10);
    expect(pool.freeIds()).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const a = pool.allocate(4); // request A: 55 tokens in blocks of 16 → 4 blocks
    expect(a).toEqual([0, 1, 2, 3]);
    pool.touch([0, 1, 2]); // request B hits A's 3 full blocks…
    const b = [0, 1, 2, ...pool.allocate(1)]; // …and computes its tail in a new block
    expect(b).toEqual([0, 1, 2, 4]);
    expect([0, 1, 2, 3, 4].map((id) => pool.refCount(id))).toEqual([2, 2, 2, 1, 1]);
    pool.free(a);
    expect(pool.freeIds()).toEqual([5, 6, 7, 8, 9, 3]); // only A's own tail reached 0
    pool.free(b);
    expect(pool.freeIds(), "tail first: 4, then 2, 1, 0").toEqual([5, 6, 7, 8, 9, 3, 4, 2, 1, 0]);
    expect(pool.allocate(8), "a miss takes never-used blocks, then evicts tails before their parents").toEqual([5, 6, 7, 8, 9, 3, 4, 2]);
    expect(pool.freeIds()).toEqual([1, 0]);
    pool.touch([0]); // a hit on a cached block that sat in the free queue: out of the middle
    expect(pool.freeIds()).toEqual([1]);
    expect(pool.refCount(0)).toBe(1);
    expect(() => pool.allocate(2)).toThrow(RangeError);
    expect(pool.allocate(0)).toEqual([]);
  });

  it("bad input: freeing a block not in use (or more times than it is held), unknown ids, bad sizes are RangeErrors that change nothing", () => {
    const pool = createBlockPool(4);
    const [x] = pool.allocate(1);
    expect(() => pool.free([x!, x!])).toThrow(RangeError);
    expect(pool.refCount(x!)).toBe(1);
    expect(pool.freeIds()).toEqual([1, 2, 3]);
    expect(() => pool.free([2])).toThrow(RangeError);
    expect(() => pool.touch([4])).toThrow(RangeError);
    expect(() => pool.refCount(-1)).toThrow(RangeError);
    expect(() => pool.allocate(-1)).toThrow(RangeError);
    expect(() => createBlockPool(-2)).toThrow(RangeError);
    expect(createBlockPool(0).freeIds()).toEqual([]);
  });

  it("random allocations, hits and frees agree with a brute-force model (an array queue and a count per block)", () => {
    const N = 24;
    const pool = createBlockPool(N);
    const queue = Array.from({ length: N }, (_, i) => i);
    const refs = new Array(N).fill(0);
    const live: number[][] = [];
    const rand = mulberry32(99);
    const pick = (n: number) => Math.floor(rand() * n);
    for (let op = 0; op < 600; op++) {
      const r = rand();
      if (r < 0.4) {
        const n = 1 + pick(5);
        if (n > queue.length) {
          expect(() => pool.allocate(n)).toThrow(RangeError);
        } else {
          const want = queue.splice(0, n);
          for (const id of want) refs[id] = 1;
          expect(pool.allocate(n), `op ${op}: allocate ${n}`).toEqual(want);
          live.push(want);
        }
      } else if (r < 0.65) {
        const ids = [...new Set(Array.from({ length: 1 + pick(4) }, () => pick(N)))];
        for (const id of ids) {
          if (refs[id] === 0) queue.splice(queue.indexOf(id), 1);
          refs[id]++;
        }
        pool.touch(ids);
        live.push(ids);
      } else if (live.length > 0) {
        const [ids] = live.splice(pick(live.length), 1);
        for (const id of [...ids!].reverse()) if (--refs[id] === 0) queue.push(id);
        pool.free(ids!);
      }
      expect(pool.freeIds(), `op ${op}: free queue`).toEqual(queue);
      expect(Array.from({ length: N }, (_, id) => pool.refCount(id)), `op ${op}: reference counts`).toEqual(refs);
    }
  });
});

/** Longest common prefix of a query with any stored sequence: the brute-force answer of match(). */
function bruteMatch(stored: readonly number[][], q: readonly number[]): number {
  let best = 0;
  for (const s of stored) {
    let i = 0;
    while (i < s.length && i < q.length && s[i] === q[i]) i++;
    best = Math.max(best, i);
  }
  return best;
}

/** Every node's key is non-empty (but the root's), its children are keyed by their key's first token, and parent links point back. */
function checkStructure(node: RadixTreeNode, isRoot = true): number {
  if (isRoot) expect(node.key).toEqual([]);
  else expect(node.key.length, "a non-root node with an empty key").toBeGreaterThan(0);
  let tokens = node.key.length;
  for (const [first, child] of node.children) {
    expect(child.key[0], "child keyed by its first token").toBe(first);
    expect(child.parent, "child's parent link").toBe(node);
    tokens += checkStructure(child, false);
  }
  return tokens;
}

const d = (key: number[], ...children: RadixDump[]): RadixDump => ({ key, children });

describe("task 3.3 — radix tree match and insert with node splits", () => {
  it("hand-worked: inserts that diverge inside an edge split it; a prefix of an edge splits it without a new leaf", () => {
    const t = createRadixTree();
    expect(t.dump()).toEqual(d([]));
    expect(t.insert([1, 2, 3, 4, 5])).toBe(0);
    expect(t.dump()).toEqual(d([], d([1, 2, 3, 4, 5])));
    expect(t.insert([1, 2, 3, 9, 9])).toBe(3); // diverges after 3 tokens: split [1,2,3] | [4,5], new leaf [9,9]
    expect(t.dump()).toEqual(d([], d([1, 2, 3], d([4, 5]), d([9, 9]))));
    expect(t.insert([1, 2])).toBe(2); // ends inside [1,2,3]: split into [1,2] → [3], no new leaf
    expect(t.dump()).toEqual(d([], d([1, 2], d([3], d([4, 5]), d([9, 9])))));
    expect(t.insert([1, 2, 3, 4, 5])).toBe(5); // already stored: nothing changes
    expect(t.insert([7])).toBe(0);
    expect(t.insert([])).toBe(0);
    expect(t.insert([1, 2, 3, 4, 5, 6, 7])).toBe(5); // extends a leaf with a child
    expect(t.dump()).toEqual(d([], d([1, 2], d([3], d([4, 5], d([6, 7])), d([9, 9]))), d([7])));
    expect(t.insert([1, 5])).toBe(1);
    expect(t.dump()).toEqual(d([], d([1], d([2], d([3], d([4, 5], d([6, 7])), d([9, 9]))), d([5])), d([7])));
    checkStructure(t.root);
  });

  it("match: the longest stored prefix, also when it ends inside an edge, without changing the tree", () => {
    const t = createRadixTree();
    t.insert([1, 2, 3, 4, 5]);
    t.insert([1, 2, 3, 9, 9]);
    const before = JSON.stringify(t.dump());
    expect(t.match([1, 2, 3, 4, 6])).toBe(4); // ends inside the [4, 5] edge
    expect(t.match([1, 2, 3, 9, 9, 9])).toBe(5);
    expect(t.match([1, 2])).toBe(2);
    expect(t.match([8, 1])).toBe(0);
    expect(t.match([])).toBe(0);
    expect(JSON.stringify(t.dump()), "match must not split").toBe(before);
  });

  it("random inserts agree with brute force: what insert says was stored, match = longest common prefix with any stored sequence, no token stored twice", () => {
    const rand = mulberry32(2024);
    const pick = (n: number) => Math.floor(rand() * n);
    const seq = () => Array.from({ length: pick(9) }, () => 1 + pick(3));
    const t = createRadixTree();
    const stored: number[][] = [];
    const prefixes = new Set<string>();
    for (let op = 0; op < 300; op++) {
      const s = seq();
      expect(t.insert(s), `op ${op}: insert [${s}]`).toBe(bruteMatch(stored, s));
      stored.push(s);
      for (let i = 1; i <= s.length; i++) prefixes.add(s.slice(0, i).join(","));
      const q = seq();
      expect(t.match(q), `op ${op}: match [${q}]`).toBe(bruteMatch(stored, q));
      // A radix tree stores each distinct prefix once: its edges hold exactly that many tokens.
      expect(checkStructure(t.root), `op ${op}: tokens on all edges = distinct non-empty prefixes`).toBe(prefixes.size);
    }
  });
});
