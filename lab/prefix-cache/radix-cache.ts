// Radix prefix cache: SGLang's RadixAttention, on LabEngine's paged KV pool.
//
// Cached prompts form a radix tree over TOKENS: each edge (node) holds a run of tokens, children are
// keyed by their first token, and a prompt's cached prefix is the path it walks from the root. A
// match that ends inside an edge splits it there, so every cached prefix boundary is a node.
// - lock references: every running request locks the nodes on its path (inc/dec walk to the root);
//   a locked node is never evicted;
// - eviction: unlocked leaves in LRU order (a min-heap on last access); removing a leaf can make its
//   parent an unlocked leaf, which is then pushed onto the heap — so a shared prefix outlives the
//   tails hanging off it.
//
// How token-granular matches map onto the engine's blocks of B positions (B = kvBlockSize): a node
// covering positions [start, end) records the pool blocks of the sequence that inserted it for block
// indices floor(start/B) .. ceil(end/B)-1, and holds one cache reference on each. That sequence's
// tokens agree with the path up to `end`, so its block j holds correct keys and values for every
// position of block j before `end`. A match of m tokens builds the table block j = the block recorded
// by the DEEPEST path node covering block j, and adopts it for tokens 0..m-1 — m need not be a
// multiple of B. The costs of not being block-aligned:
// - the last adopted block is usually partial and shared, so the request's first append copies it
//   (copy-on-write: one block of K and V, all layers) — cheap next to recomputing up to B-1 tokens;
// - a block straddling a split is held by both nodes (two cache references, one pool block), and an
//   inserted prompt's partial last block is held by the cache, so the running request copies it once
//   on its next append;
// - splitting at any token makes more, shorter nodes than a block-aligned tree (SGLang with
//   page_size > 1 rounds matches down to a page instead, losing up to B-1 tokens per hit; with
//   kvBlockSize 1 the two are the same).
// At least one prompt token is always recomputed (matches are capped at prompt.length - 1).
import { EngineError, type Engine, type PagedKv, type Sequence } from "../engine/engine.ts";
import { StatsCounter, checkCapacity, checkPrompt, commonPrefix, type CacheHit, type PrefixCache, type PrefixCacheStats } from "./cache.ts";

export class RadixNode {
  /** The tokens of this edge (empty for the root). */
  key: number[];
  /** Position of key[0] in every sequence through this node. */
  start: number;
  /** Pool blocks for block indices floor(start/B) .. ceil((start+key.length)/B)-1 (one cache reference each). */
  blocks: number[];
  readonly children = new Map<number, RadixNode>();
  parent: RadixNode | null;
  /** Running requests whose path passes through this node. */
  lockRef = 0;
  /** Logical clock of the last lookup or insert that touched it (LRU). */
  lastAccess = 0;

  constructor(key: number[], start: number, blocks: number[], parent: RadixNode | null) {
    this.key = key;
    this.start = start;
    this.blocks = blocks;
    this.parent = parent;
  }

  get end(): number {
    return this.start + this.key.length;
  }
}

export interface RadixCacheOptions {
  /** Most distinct KV blocks the cache may hold references on (0 = off). Default: no limit but the pool. */
  capacityBlocks?: number;
}

export class RadixCache implements PrefixCache {
  readonly method = "radix" as const;
  readonly capacityBlocks: number;
  readonly root = new RadixNode([], 0, [], null);
  private readonly kv: PagedKv;
  private readonly heldRefs = new Map<number, number>(); // block id → cache references on it
  private readonly locked = new Map<Sequence, RadixNode>(); // running request → deepest locked node
  private readonly counter = new StatsCounter();
  private clock = 0;

  constructor(readonly engine: Engine, opts: RadixCacheOptions = {}) {
    if (!engine.kv) throw new EngineError(`the radix cache needs shared paged KV (engine.kv); the ${engine.name} engine has none — use the slot cache`);
    this.kv = engine.kv;
    this.capacityBlocks = opts.capacityBlocks ?? Infinity;
    checkCapacity(this.capacityBlocks);
  }

  // -------------------------------------------------------------------------------------------
  // The tree: match (splitting where a match ends inside an edge) and insert

  /** Walks the longest cached prefix of tokens[0..limit) → the path (root excluded) and its length. */
  match(tokens: readonly number[], limit = tokens.length): { path: RadixNode[]; length: number } {
    const path: RadixNode[] = [];
    let node = this.root, pos = 0;
    while (pos < limit) {
      const child = node.children.get(tokens[pos]);
      if (!child) break;
      const k = commonPrefix(child.key, tokens.slice(pos, limit));
      const reached = k < child.key.length ? this.split(child, k) : child;
      path.push(reached);
      pos += k;
      if (reached !== child) break;
      node = child;
    }
    return { path, length: pos };
  }

  /** Cuts `node` after k tokens: a new parent holds key[0..k), `node` keeps the rest. A block that
   *  straddles the cut is recorded by both (one more cache reference). */
  private split(node: RadixNode, k: number): RadixNode {
    const B = this.kv.blockSize;
    const cut = node.start + k;
    const first = Math.floor(node.start / B);
    const top = new RadixNode(node.key.slice(0, k), node.start, node.blocks.slice(0, Math.ceil(cut / B) - first), node.parent);
    top.lockRef = node.lockRef; // every lock through node passes through top
    top.lastAccess = node.lastAccess;
    node.parent!.children.set(top.key[0], top);
    node.key = node.key.slice(k);
    node.blocks = node.blocks.slice(Math.floor(cut / B) - first);
    node.start = cut;
    node.parent = top;
    top.children.set(node.key[0], node);
    if (cut % B !== 0) this.hold(top.blocks[top.blocks.length - 1]);
    return top;
  }

  /** The block table for the first m tokens of a matched path: block j from the deepest node covering it. */
  private tableFor(path: readonly RadixNode[], m: number): number[] {
    const B = this.kv.blockSize;
    const table: number[] = [];
    for (const node of path) {
      const first = Math.floor(node.start / B);
      node.blocks.forEach((id, i) => { table[first + i] = id; });
    }
    table.length = Math.ceil(m / B);
    return table;
  }

  /** Adds the sequence's tokens to the tree (a new leaf for the part not cached yet) → its deepest node. */
  private insertTokens(tokens: readonly number[], table: readonly number[]): RadixNode {
    const B = this.kv.blockSize;
    const { path, length } = this.match(tokens);
    let node = path.length > 0 ? path[path.length - 1] : this.root;
    for (const n of path) n.lastAccess = this.clock;
    if (length < tokens.length) {
      const blocks = table.slice(Math.floor(length / B), Math.ceil(tokens.length / B));
      const need = () => blocks.filter((id) => !this.heldRefs.has(id)).length;
      if (this.heldRefs.size + need() > this.capacityBlocks) {
        for (const n of path) n.lockRef++; // the path being extended must survive the room-making
        this.evictLeaves(() => this.heldRefs.size + need() > this.capacityBlocks);
        for (const n of path) n.lockRef--;
        if (this.heldRefs.size + need() > this.capacityBlocks) return node; // full of locked KV: cache no more of it
      }
      const leaf = new RadixNode(tokens.slice(length), length, blocks, node);
      leaf.lastAccess = this.clock;
      for (const id of blocks) this.hold(id);
      node.children.set(leaf.key[0], leaf);
      node = leaf;
    }
    return node;
  }

  // -------------------------------------------------------------------------------------------
  // The PrefixCache interface

  async lookup(prompt: readonly number[]): Promise<CacheHit> {
    checkPrompt(prompt, this.engine);
    this.clock++;
    const { path, length } = this.capacityBlocks === 0 ? { path: [], length: 0 } : this.match(prompt, prompt.length - 1);
    const sequence = length === 0 ? await this.engine.createSequence() : await this.kv.adopt(this.tableFor(path, length), prompt.slice(0, length));
    for (const n of path) n.lastAccess = this.clock;
    if (path.length > 0) this.lock(sequence, path[path.length - 1]);
    this.counter.recordLookup(prompt.length, length);
    return { sequence, cachedTokens: length };
  }

  insert(sequence: Sequence): void {
    if (this.capacityBlocks === 0) return;
    this.clock++;
    const deepest = this.insertTokens(sequence.tokens, this.kv.blockIds(sequence));
    if (deepest !== this.root) this.lock(sequence, deepest);
    this.shrinkToCapacity();
  }

  async release(sequence: Sequence): Promise<void> {
    this.insert(sequence);
    this.unlock(sequence);
    await sequence.free();
    this.shrinkToCapacity();
  }

  private lock(sequence: Sequence, node: RadixNode): void {
    this.unlock(sequence);
    for (let n: RadixNode | null = node; n && n !== this.root; n = n.parent) n.lockRef++;
    this.locked.set(sequence, node);
  }

  private unlock(sequence: Sequence): void {
    const node = this.locked.get(sequence);
    if (!node) return;
    for (let n: RadixNode | null = node; n && n !== this.root; n = n.parent) {
      if (n.lockRef <= 0) throw new EngineError("radix cache: lock reference below zero (unlocked twice)");
      n.lockRef--;
    }
    this.locked.delete(sequence);
  }

  // -------------------------------------------------------------------------------------------
  // Eviction: unlocked leaves, least recently used first

  async evict(blocks: number): Promise<number> {
    return this.evictLeaves(() => this.freedSoFar < blocks);
  }

  private freedSoFar = 0;

  /** Pops unlocked leaves oldest first while `more()`; → pool blocks that became free. */
  private evictLeaves(more: () => boolean): number {
    this.freedSoFar = 0;
    const heap = new MinHeap<RadixNode>((a, b) => a.lastAccess - b.lastAccess);
    for (const leaf of this.leaves()) if (leaf.lockRef === 0) heap.push(leaf);
    while (more()) {
      const leaf = heap.pop();
      if (!leaf) break;
      const parent = leaf.parent!;
      parent.children.delete(leaf.key[0]);
      for (const id of leaf.blocks) this.freedSoFar += this.drop(id);
      this.counter.evictedTokens += leaf.key.length;
      this.evictedKeys.push(leaf.key);
      if (parent !== this.root && parent.children.size === 0 && parent.lockRef === 0) heap.push(parent);
    }
    return this.freedSoFar;
  }

  /** Keys of evicted nodes, in eviction order (tests read it). */
  readonly evictedKeys: number[][] = [];

  private shrinkToCapacity(): void {
    if (this.heldRefs.size > this.capacityBlocks) this.evictLeaves(() => this.heldRefs.size > this.capacityBlocks);
  }

  private leaves(): RadixNode[] {
    const out: RadixNode[] = [];
    const walk = (n: RadixNode) => {
      if (n !== this.root && n.children.size === 0) out.push(n);
      for (const c of n.children.values()) walk(c);
    };
    walk(this.root);
    return out;
  }

  private hold(id: number): void {
    this.kv.retain([id]);
    this.heldRefs.set(id, (this.heldRefs.get(id) ?? 0) + 1);
  }

  /** Drops one cache reference; → 1 when the block went back to the pool's free queue. */
  private drop(id: number): number {
    const n = this.heldRefs.get(id)!;
    if (n === 1) this.heldRefs.delete(id);
    else this.heldRefs.set(id, n - 1);
    this.kv.release([id]);
    if (this.kv.refCount(id) !== 0) return 0;
    this.counter.evictedBlocks++;
    return 1;
  }

  // -------------------------------------------------------------------------------------------
  // Reports

  /** Cache references per block id (a block straddling a split has 2). */
  heldBlocks(): number[] {
    const out: number[] = [];
    for (const [id, n] of this.heldRefs) for (let i = 0; i < n; i++) out.push(id);
    return out.sort((a, b) => a - b);
  }

  /** The tree as nested [key, lockRef, children] for tests and notebooks. */
  dump(node: RadixNode = this.root): { key: number[]; lockRef: number; children: ReturnType<RadixCache["dump"]>[] } {
    return { key: node.key, lockRef: node.lockRef, children: [...node.children.values()].map((c) => this.dump(c)) };
  }

  stats(): PrefixCacheStats {
    return this.counter.snapshot(this.heldRefs.size);
  }

  resetStats(): void {
    this.counter.reset();
  }

  async dispose(): Promise<void> {
    for (const [id, n] of this.heldRefs) for (let i = 0; i < n; i++) this.kv.release([id]);
    this.heldRefs.clear();
    this.root.children.clear();
    this.locked.clear();
  }
}

/** A binary min-heap (SGLang's heapq over leaves). */
class MinHeap<T> {
  private readonly items: T[] = [];
  constructor(private readonly less: (a: T, b: T) => number) {}

  push(x: T): void {
    const a = this.items;
    a.push(x);
    for (let i = a.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (this.less(a[i], a[p]) >= 0) break;
      [a[i], a[p]] = [a[p], a[i]];
      i = p;
    }
  }

  pop(): T | undefined {
    const a = this.items;
    if (a.length === 0) return undefined;
    const top = a[0];
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < a.length && this.less(a[l], a[m]) < 0) m = l;
        if (r < a.length && this.less(a[r], a[m]) < 0) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m], a[i]];
        i = m;
      }
    }
    return top;
  }
}
