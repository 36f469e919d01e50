// Block-hash prefix cache: vLLM's automatic prefix caching (APC), on LabEngine's paged KV pool.
//
// Every FULL block of a sequence gets an identity that covers the whole prefix up to its end:
//   hash(block j) = H(hash(block j-1), the block's blockSize tokens)       (block 0: parent = none)
// so equal hashes mean "same tokens from position 0 to here", and a prompt's cached prefix is found
// by hashing its blocks in order and stopping at the first miss. H is sha256 (node:crypto) of the
// parent hash and the tokens as little-endian int32, or xxh64 (xxhash-wasm) of the same bytes: vLLM
// offers both, because sha256 costs more per block than a 64-bit non-cryptographic hash, and a lookup
// hashes every full block of the prompt. A hash is only a hint: each cached block keeps
// its tokens and its parent entry, and a lookup accepts a block only when both are equal, so a
// collision (tests force one with a stub hash) costs a miss, never another prompt's keys and values.
//
// Rules, as in vLLM:
// - only full blocks are cached; the partial last block is never shared (it is still being written);
// - at most floor((prompt.length - 1) / blockSize) blocks are reused, so at least one prompt token
//   is recomputed and the caller gets the next-token distribution after the whole prompt;
// - the cache holds ONE reference (engine.kv.retain) on each block it indexes; a block nobody else
//   holds (pool refCount 1) is evictable and sits in an LRU queue; a hit takes it back out;
// - a finished request's blocks enter that queue tail first, so a chain's last blocks are evicted
//   before its first ones (a tail is useless without its parents; a parent serves many tails);
// - the cache evicts only blocks in the queue, i.e. blocks no running sequence holds.
//
// Why the LRU queue is a doubly linked list and not an array: a hit removes a block from the MIDDLE
// of the queue (it is in use again), and eviction pops the front. A linked list with a node per block
// (found through a Map) does both in O(1); an array splice is O(n) per hit (nano-vllm's deque.remove
// is), which is n = thousands of blocks on every lookup of a long shared prompt.
import { createHash } from "node:crypto";
import xxhash from "xxhash-wasm";
import { EngineError, type Engine, type PagedKv, type Sequence } from "../engine/engine.ts";
import { StatsCounter, checkCapacity, checkPrompt, type CacheHit, type PrefixCache, type PrefixCacheStats } from "./cache.ts";

// =============================================================================================
// 1. The chained block hash

/** (parent block's hash or null for block 0, the block's tokens) → this block's hash. */
export type BlockHashFn = (parentHash: string | null, tokens: readonly number[]) => string;

export const sha256BlockHash: BlockHashFn = (parentHash, tokens) => {
  const h = createHash("sha256");
  h.update(parentHash ?? "none");
  h.update(new Uint8Array(Int32Array.from(tokens).buffer));
  return h.digest("hex");
};

/** The same bytes as sha256BlockHash (the parent's hex, or "none", then int32 LE tokens) through xxh64
 *  (seed 0), as 16 hex digits. 64 bits collide sooner than 256 (about one pair in 2^32 blocks), which
 *  the cache's token check makes harmless: a collision costs a miss, never wrong KV. */
export async function xxh64BlockHash(): Promise<BlockHashFn> {
  xxhApi ??= xxhash();
  const { h64Raw } = await xxhApi;
  // One buffer, one call into WebAssembly: for 80 bytes the per-call cost is most of the time.
  return (parentHash, tokens) => {
    const head = parentHash ?? "none"; // ASCII (hex digits), 4 or 16 bytes: the tokens stay 4-byte aligned
    const bytes = new Uint8Array(head.length + 4 * tokens.length);
    for (let i = 0; i < head.length; i++) bytes[i] = head.charCodeAt(i);
    if (head.length % 4 === 0) new Int32Array(bytes.buffer, head.length, tokens.length).set(tokens); // little-endian, as sha256BlockHash
    else tokens.forEach((t, i) => new DataView(bytes.buffer).setInt32(head.length + 4 * i, t, true));
    return h64Raw(bytes, 0n).toString(16).padStart(16, "0");
  };
}
let xxhApi: ReturnType<typeof xxhash> | undefined; // the WebAssembly module, compiled once

export type BlockHashName = "sha256" | "xxh64";
export const BLOCK_HASHES: readonly BlockHashName[] = ["sha256", "xxh64"];

/** The named block hash (xxh64 loads its WebAssembly module on first use). */
export async function blockHashFunction(name: string): Promise<BlockHashFn> {
  if (name === "sha256") return sha256BlockHash;
  if (name === "xxh64") return xxh64BlockHash();
  throw new EngineError(`unknown block hash "${name}" (expected one of: ${BLOCK_HASHES.join(", ")})`);
}

/** The hashes of every full block of `tokens` (a 55-token prompt with blocks of 16 → 3 hashes). */
export function blockHashes(tokens: readonly number[], blockSize: number, hash: BlockHashFn = sha256BlockHash): string[] {
  const out: string[] = [];
  for (let j = 0; (j + 1) * blockSize <= tokens.length; j++) {
    out.push(hash(j === 0 ? null : out[j - 1], tokens.slice(j * blockSize, (j + 1) * blockSize)));
  }
  return out;
}

// =============================================================================================
// 2. The LRU queue of evictable blocks: a doubly linked list with sentinels, O(1) remove

interface QueueNode {
  blockId: number;
  prev: QueueNode | null;
  next: QueueNode | null;
}

export class LruBlockQueue {
  private readonly head: QueueNode = { blockId: -1, prev: null, next: null }; // sentinel before the front
  private readonly tail: QueueNode = { blockId: -1, prev: null, next: null }; // sentinel after the back
  private readonly nodes = new Map<number, QueueNode>();

  constructor() {
    this.head.next = this.tail;
    this.tail.prev = this.head;
  }

  get size(): number {
    return this.nodes.size;
  }

  has(blockId: number): boolean {
    return this.nodes.has(blockId);
  }

  /** The most recently released block goes to the back: evicted last. */
  pushBack(blockId: number): void {
    if (this.nodes.has(blockId)) throw new EngineError(`LRU queue: block ${blockId} is already queued`);
    const node: QueueNode = { blockId, prev: this.tail.prev, next: this.tail };
    node.prev!.next = node;
    this.tail.prev = node;
    this.nodes.set(blockId, node);
  }

  /** Unlinks a block wherever it is (a hit on an evictable block): O(1). */
  remove(blockId: number): void {
    const node = this.nodes.get(blockId);
    if (!node) throw new EngineError(`LRU queue: block ${blockId} is not queued`);
    node.prev!.next = node.next;
    node.next!.prev = node.prev;
    this.nodes.delete(blockId);
  }

  /** The least recently released block, or undefined when empty. */
  popFront(): number | undefined {
    const node = this.head.next!;
    if (node === this.tail) return undefined;
    this.remove(node.blockId);
    return node.blockId;
  }

  /** Front (evicted first) to back. */
  ids(): number[] {
    const out: number[] = [];
    for (let n = this.head.next!; n !== this.tail; n = n.next!) out.push(n.blockId);
    return out;
  }
}

// =============================================================================================
// 3. The cache

interface CachedBlock {
  hash: string;
  blockId: number;
  /** The block's tokens, checked on every lookup (a hash collision must never hand out wrong KV). */
  tokens: readonly number[];
  /** The entry of the block before it (null for block 0): the chain is checked by identity, so an
   *  entry whose parent was evicted can never be reached through a new block that reuses its id. */
  parent: CachedBlock | null;
}

export interface BlockCacheOptions {
  /** Most KV blocks the cache may hold references on (0 = off). Default: no limit but the pool. */
  capacityBlocks?: number;
  /** The chained hash (tests pass a stub that collides). Default sha256. */
  hash?: BlockHashFn;
}

export class BlockHashCache implements PrefixCache {
  readonly method = "block" as const;
  readonly capacityBlocks: number;
  private readonly kv: PagedKv;
  private readonly hash: BlockHashFn;
  private readonly byHash = new Map<string, CachedBlock[]>(); // a bucket per hash: colliding blocks coexist
  private readonly byBlock = new Map<number, CachedBlock>(); // blocks the cache holds a reference on
  private readonly lru = new LruBlockQueue(); // cached blocks only the cache holds (pool refCount 1)
  private readonly counter = new StatsCounter();

  constructor(readonly engine: Engine, opts: BlockCacheOptions = {}) {
    if (!engine.kv) throw new EngineError(`the block-hash cache needs shared paged KV (engine.kv); the ${engine.name} engine has none — use the slot cache`);
    this.kv = engine.kv;
    this.capacityBlocks = opts.capacityBlocks ?? Infinity;
    checkCapacity(this.capacityBlocks);
    this.hash = opts.hash ?? sha256BlockHash;
  }

  get blockSize(): number {
    return this.kv.blockSize;
  }

  /** The longest chain of cached blocks that starts `prompt`, leaving at least one token to compute. */
  private match(prompt: readonly number[]): CachedBlock[] {
    const bs = this.kv.blockSize;
    const out: CachedBlock[] = [];
    let parent: CachedBlock | null = null;
    for (let j = 0; (j + 1) * bs <= prompt.length - 1; j++) {
      const tokens = prompt.slice(j * bs, (j + 1) * bs);
      const found = this.find(this.hash(parent?.hash ?? null, tokens), parent, tokens);
      if (!found) break;
      out.push(found);
      parent = found;
    }
    return out;
  }

  private find(hash: string, parent: CachedBlock | null, tokens: readonly number[]): CachedBlock | undefined {
    return this.byHash.get(hash)?.find((e) => e.parent === parent && sameTokens(e.tokens, tokens));
  }

  async lookup(prompt: readonly number[]): Promise<CacheHit> {
    checkPrompt(prompt, this.engine);
    const matched = this.match(prompt);
    const cachedTokens = matched.length * this.kv.blockSize;
    const ids = matched.map((e) => e.blockId);
    const sequence = matched.length === 0 ? await this.engine.createSequence() : await this.kv.adopt(ids, prompt.slice(0, cachedTokens));
    for (const id of ids) if (this.lru.has(id)) this.lru.remove(id); // in use again: not evictable
    this.counter.recordLookup(prompt.length, cachedTokens);
    return { sequence, cachedTokens };
  }

  /** Indexes the sequence's full blocks not cached yet (a block already cached under the same chain
   *  in another block — two requests computed it at once — is left to its sequence, as vLLM does). */
  insert(sequence: Sequence): void {
    const bs = this.kv.blockSize;
    const table = this.kv.blockIds(sequence);
    const tokens = sequence.tokens;
    let parent: CachedBlock | null = null;
    for (let j = 0; (j + 1) * bs <= tokens.length; j++) {
      const own = this.byBlock.get(table[j]);
      if (own) {
        parent = own;
        continue;
      }
      const blockTokens = tokens.slice(j * bs, (j + 1) * bs);
      const hash = this.hash(parent?.hash ?? null, blockTokens);
      const twin = this.find(hash, parent, blockTokens);
      if (twin) {
        parent = twin;
        continue;
      }
      if (this.byBlock.size >= this.capacityBlocks && !this.evictOne()) return; // full of blocks in use
      const entry: CachedBlock = { hash, blockId: table[j], tokens: blockTokens, parent };
      this.kv.retain([entry.blockId]);
      this.byBlock.set(entry.blockId, entry);
      const bucket = this.byHash.get(hash);
      if (bucket) bucket.push(entry);
      else this.byHash.set(hash, [entry]);
      parent = entry;
    }
  }

  async release(sequence: Sequence): Promise<void> {
    this.insert(sequence);
    const table = this.kv.blockIds(sequence);
    await sequence.free();
    // Tail first: the back of the queue is evicted last, so the chain's first block goes in last.
    for (let j = table.length - 1; j >= 0; j--) this.queueIfOnlyCached(table[j]);
  }

  private queueIfOnlyCached(id: number): void {
    if (this.byBlock.has(id) && this.kv.refCount(id) === 1 && !this.lru.has(id)) this.lru.pushBack(id);
  }

  async evict(blocks: number): Promise<number> {
    if (this.lru.size === 0) {
      // Blocks whose last sequence was freed without release() (a fork, a direct free): queue them now.
      for (const id of this.byBlock.keys()) this.queueIfOnlyCached(id);
    }
    let freed = 0;
    while (freed < blocks && this.evictOne()) freed++;
    return freed;
  }

  /** Drops the least recently used evictable block: its index entry and the cache's reference. */
  private evictOne(): boolean {
    const id = this.lru.popFront();
    if (id === undefined) return false;
    const entry = this.byBlock.get(id)!;
    this.byBlock.delete(id);
    const bucket = this.byHash.get(entry.hash)!;
    bucket.splice(bucket.indexOf(entry), 1); // a bucket holds the (rare) colliding entries only
    if (bucket.length === 0) this.byHash.delete(entry.hash);
    this.kv.release([id]); // refCount 1 → 0: back to the pool's free queue
    this.counter.evictedBlocks++;
    this.counter.evictedTokens += this.kv.blockSize;
    return true;
  }

  /** Cached blocks only the cache holds, in the order they will be evicted. */
  evictionQueue(): number[] {
    return this.lru.ids();
  }

  /** Block ids the cache holds a reference on, ascending. */
  heldBlocks(): number[] {
    return [...this.byBlock.keys()].sort((a, b) => a - b);
  }

  /** The hash the cache filed a block under (undefined when the block is not cached). */
  hashOf(blockId: number): string | undefined {
    return this.byBlock.get(blockId)?.hash;
  }

  stats(): PrefixCacheStats {
    return this.counter.snapshot(this.byBlock.size);
  }

  resetStats(): void {
    this.counter.reset();
  }

  async dispose(): Promise<void> {
    for (const id of this.byBlock.keys()) this.kv.release([id]);
    this.byBlock.clear();
    this.byHash.clear();
    while (this.lru.popFront() !== undefined);
  }
}

function sameTokens(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
