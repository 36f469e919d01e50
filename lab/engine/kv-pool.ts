// The paged KV pool (PagedAttention's design, as in vLLM and nano-vllm's block manager): the keys and
// values of every sequence live in ONE pool of fixed-size blocks instead of one contiguous
// contextSize-long slot per sequence. A sequence owns a block table — position p is in block
// table[p / blockSize] at slot p % blockSize — so
//   - memory is taken a block at a time as a sequence grows (no slot sized for the worst case),
//   - several sequences can hold the same block (a forked prefix, a cached system prompt) and a
//     reference count says when it may be reused,
//   - attention reads keys and values through the table, wherever the blocks are in the pool.
//
// Reading order: the pool (storage, reference counts, the free queue), then block tables (what
// appending, forking, truncating and freeing do to a table), then the report. Paged attention
// itself is in lab-engine.ts (section 4), beside the rest of the forward pass.
import { EngineError, KvCacheFullError, type KvReport } from "./engine.ts";

export interface KvShape {
  nLayer: number;
  nKvHead: number;
  headDim: number;
}

// =============================================================================================
// 1. The pool

/**
 * Blocks of K and V for every layer, a reference count per block, and the queue of free blocks.
 *
 * Why the free blocks form a FIFO queue (a ring of ids) and not a stack: allocation order is then
 * deterministic and easy to state — blocks are handed out oldest-freed first, and a freed block goes
 * to the back — which is the order vLLM's free queue gives and the order a prefix cache wants (the
 * most recently freed blocks, the likeliest to be asked for again, are reused last). A ring needs no
 * removal from the middle: a block leaves the queue only at the front. (A prefix cache that must
 * pull a cached block out of the middle of its own LRU queue keeps a doubly linked list; the pool
 * never does, because a block held by a cache has a reference and is not free.)
 */
export class KvPool {
  readonly blockSize: number;
  readonly nBlocks: number;
  /** Floats of K (or V) per block, all layers and heads. */
  readonly blockFloats: number;
  /** [nBlocks][nLayer][nKvHead][blockSize][headDim] f32 keys, RoPE applied. */
  readonly k: Float32Array;
  /** [nBlocks][nLayer][nKvHead][headDim][blockSize] f32 values, TRANSPOSED within a block: one
   *  block's V^T for one head is a [headDim][blockSize] matrix, so P·V is a matrix product. */
  readonly v: Float32Array;
  /** [nBlocks] i32 references: block-table entries plus retain() calls. */
  readonly refCount: Int32Array;
  private readonly freeRing: Int32Array; // [nBlocks] i32 ids of free blocks, FIFO from `freeHead`
  private freeHead = 0;
  private freeCount: number;

  /** `storage` lets the arrays live elsewhere (LabEngine puts them in its WebAssembly memory). */
  constructor(readonly shape: KvShape, blockSize: number, nBlocks: number, storage?: { k: Float32Array; v: Float32Array }) {
    if (!Number.isInteger(blockSize) || blockSize < 1 || (blockSize & (blockSize - 1)) !== 0) {
      throw new EngineError(`kvBlockSize must be a power of two >= 1, got ${blockSize}`);
    }
    if (!Number.isInteger(nBlocks) || nBlocks < 1) throw new EngineError(`kvBlocks must be an integer >= 1, got ${nBlocks}`);
    this.blockSize = blockSize;
    this.nBlocks = nBlocks;
    this.blockFloats = shape.nLayer * shape.nKvHead * blockSize * shape.headDim;
    const floats = nBlocks * this.blockFloats;
    this.k = storage?.k ?? new Float32Array(floats);
    this.v = storage?.v ?? new Float32Array(floats);
    if (this.k.length !== floats || this.v.length !== floats) throw new EngineError("KvPool: storage of the wrong size");
    this.refCount = new Int32Array(nBlocks);
    this.freeRing = new Int32Array(nBlocks);
    for (let i = 0; i < nBlocks; i++) this.freeRing[i] = i;
    this.freeCount = nBlocks;
  }

  get blocksFree(): number {
    return this.freeCount;
  }

  /** Takes the block at the front of the free queue (reference count 1). */
  allocate(): number {
    if (this.freeCount === 0) throw new KvCacheFullError(1, 0);
    const id = this.freeRing[this.freeHead];
    this.freeHead = (this.freeHead + 1) % this.nBlocks;
    this.freeCount--;
    this.refCount[id] = 1;
    return id;
  }

  retain(id: number): void {
    this.checkId(id);
    if (this.refCount[id] === 0) throw new EngineError(`KV block ${id} is free: only a block in use can be retained`);
    this.refCount[id]++;
  }

  /** Drops one reference; at 0 the block goes to the back of the free queue. */
  release(id: number): void {
    this.checkId(id);
    if (this.refCount[id] === 0) throw new EngineError(`KV block ${id} is already free (released once too often)`);
    if (--this.refCount[id] === 0) {
      this.freeRing[(this.freeHead + this.freeCount) % this.nBlocks] = id;
      this.freeCount++;
    }
  }

  /** Copies every layer's keys and values of block `from` into block `to`. */
  copyBlock(from: number, to: number): void {
    const n = this.blockFloats;
    this.k.copyWithin(to * n, from * n, (from + 1) * n);
    this.v.copyWithin(to * n, from * n, (from + 1) * n);
  }

  /** Index in `k` of (block, layer, kvHead, slot 0, dim 0); V's block/layer/head base is the same index. */
  base(block: number, layer: number, kvHead: number): number {
    const { nLayer, nKvHead, headDim } = this.shape;
    return ((block * nLayer + layer) * nKvHead + kvHead) * this.blockSize * headDim;
  }

  /** Writes one position's keys and values (kvDim = nKvHead·headDim floats each) for one layer. */
  write(block: number, slot: number, layer: number, k: Float32Array, kOff: number, v: Float32Array, vOff: number): void {
    const { nKvHead, headDim } = this.shape;
    const bs = this.blockSize;
    for (let h = 0; h < nKvHead; h++) {
      const b = this.base(block, layer, h), src = h * headDim, kAt = b + slot * headDim;
      // Plain loops, no subarray views: this runs for every row of every layer of every step.
      for (let d = 0; d < headDim; d++) this.k[kAt + d] = k[kOff + src + d];
      for (let d = 0; d < headDim; d++) this.v[b + d * bs + slot] = v[vOff + src + d];
    }
  }

  /** The ids currently free, front of the queue first (the order they will be handed out). */
  freeQueue(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.freeCount; i++) out.push(this.freeRing[(this.freeHead + i) % this.nBlocks]);
    return out;
  }

  report(): KvReport {
    let used = 0, shared = 0;
    for (let i = 0; i < this.nBlocks; i++) {
      if (this.refCount[i] > 0) used++;
      if (this.refCount[i] > 1) shared++;
    }
    return {
      blockSize: this.blockSize, blocksTotal: this.nBlocks, blocksUsed: used, blocksShared: shared,
      blocksFree: this.freeCount, bytesPerBlock: 2 * 4 * this.blockFloats,
    };
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.nBlocks) throw new EngineError(`KV block id ${id} is outside the pool [0, ${this.nBlocks})`);
  }
}

// =============================================================================================
// 2. Block tables: what growing, forking, truncating and freeing a sequence do to its blocks.
// A table is a plain array of block ids; `length` is the number of positions it holds.

/** Blocks appendBlocks will take from the pool to grow a table of `length` positions by `n`:
 *  new blocks, plus one when the partial last block is shared and must be copied first. */
export function blocksToAppend(pool: KvPool, table: readonly number[], length: number, n: number): number {
  const bs = pool.blockSize;
  const fresh = Math.max(0, Math.ceil((length + n) / bs) - table.length);
  const copyOnWrite = n > 0 && length % bs !== 0 && pool.refCount[table[table.length - 1]] > 1 ? 1 : 0;
  return fresh + copyOnWrite;
}

/** Makes room for n more positions: copy-on-write of a shared partial last block, then new blocks.
 *  The caller checked blocksToAppend against pool.blocksFree, so nothing here can run out. */
export function appendBlocks(pool: KvPool, table: number[], length: number, n: number): void {
  const bs = pool.blockSize;
  if (n > 0 && length % bs !== 0) {
    const last = table[table.length - 1];
    if (pool.refCount[last] > 1) {
      const copy = pool.allocate();
      pool.copyBlock(last, copy);
      pool.release(last);
      table[table.length - 1] = copy;
    }
  }
  while (table.length * bs < length + n) table.push(pool.allocate());
}

/** The table of a fork holding the first n positions: full blocks shared, the partial one copied. */
export function forkBlocks(pool: KvPool, table: readonly number[], n: number): number[] {
  const bs = pool.blockSize;
  const full = Math.floor(n / bs);
  const partial = n % bs !== 0;
  if (partial && pool.blocksFree < 1) throw new KvCacheFullError(1, pool.blocksFree);
  const child = table.slice(0, full);
  for (const id of child) pool.retain(id);
  if (partial) {
    const copy = pool.allocate();
    pool.copyBlock(table[full], copy);
    child.push(copy);
  }
  return child;
}

/** Drops the blocks past position n, last block first (chain tails go back to the pool first). */
export function truncateBlocks(pool: KvPool, table: number[], n: number): void {
  const keep = Math.ceil(n / pool.blockSize);
  while (table.length > keep) pool.release(table.pop()!);
}
