// Reference solution, task 3.1 — the block hash chain and lookup (vLLM's automatic prefix caching).
// The task is stated in exercises/serving/block-hash.ts; notebooks/03-prefix-caching.ipynb §3.1.
import { createHash } from "node:crypto";

/** (parent block's hash, or null for block 0; the block's tokens) → this block's hash. */
export type BlockHashFn = (parentHash: string | null, tokens: readonly number[]) => string;

/** sha256 over the UTF-8 bytes of the parent's hex hash ("none" for block 0), then each token as a little-endian int32. */
export function blockHash(parentHash: string | null, tokens: readonly number[]): string {
  const bytes = new Uint8Array(4 * tokens.length);
  const view = new DataView(bytes.buffer);
  tokens.forEach((t, i) => view.setInt32(4 * i, t, true));
  return createHash("sha256").update(parentHash ?? "none", "utf8").update(bytes).digest("hex");
}

function checkBlockSize(blockSize: number): void {
  if (!Number.isInteger(blockSize) || blockSize < 1 || (blockSize & (blockSize - 1)) !== 0) {
    throw new RangeError(`block size must be a power of two >= 1, got ${blockSize}`);
  }
}

/** The hashes of every FULL block of `tokens`, each chained on the one before; the partial tail gets none. */
export function blockHashChain(tokens: readonly number[], blockSize: number, hash: BlockHashFn = blockHash): string[] {
  checkBlockSize(blockSize);
  const out: string[] = [];
  for (let j = 0; (j + 1) * blockSize <= tokens.length; j++) {
    out.push(hash(j === 0 ? null : out[j - 1]!, tokens.slice(j * blockSize, (j + 1) * blockSize)));
  }
  return out;
}

/** One indexed block: which pool block holds the KV of this chain's block. */
export interface IndexedBlock {
  blockId: number;
  hash: string;
  /** the block's blockSize tokens */
  tokens: readonly number[];
  /** the entry of the block before it in its chain (null for block 0) */
  parent: IndexedBlock | null;
}

export interface BlockHashIndex {
  readonly blockSize: number;
  /** indexed blocks */
  readonly size: number;
  /** Indexes the full blocks of `tokens`, block j held in pool block blockIds[j]; returns the ids newly indexed. */
  insert(tokens: readonly number[], blockIds: readonly number[]): number[];
  /** Pool block ids of the longest indexed chain that starts `prompt`, leaving at least one token uncached. */
  lookup(prompt: readonly number[]): number[];
  /** Forgets a block and every indexed block chained below it; returns the ids removed, parents before children. */
  remove(blockId: number): number[];
  /** The entry of an indexed block, or undefined. */
  entry(blockId: number): IndexedBlock | undefined;
}

class Index implements BlockHashIndex {
  private readonly byHash = new Map<string, IndexedBlock[]>(); // a bucket per hash: colliding entries coexist
  private readonly byBlock = new Map<number, IndexedBlock>();

  constructor(readonly blockSize: number, private readonly hash: BlockHashFn) {
    checkBlockSize(blockSize);
  }

  get size(): number {
    return this.byBlock.size;
  }

  /** The entry for (hash, parent, tokens): the hash narrows the search, identity and tokens decide. */
  private find(hash: string, parent: IndexedBlock | null, tokens: readonly number[]): IndexedBlock | undefined {
    return this.byHash.get(hash)?.find((e) => e.parent === parent && e.tokens.length === tokens.length && e.tokens.every((t, i) => t === tokens[i]));
  }

  insert(tokens: readonly number[], blockIds: readonly number[]): number[] {
    const B = this.blockSize;
    const full = Math.floor(tokens.length / B);
    if (blockIds.length < full) throw new RangeError(`${tokens.length} tokens fill ${full} blocks of ${B}, but only ${blockIds.length} block ids were given`);
    const added: number[] = [];
    let parent: IndexedBlock | null = null;
    for (let j = 0; j < full; j++) {
      const blockTokens = tokens.slice(j * B, (j + 1) * B);
      const hash = this.hash(parent?.hash ?? null, blockTokens);
      const twin = this.find(hash, parent, blockTokens);
      if (twin) {
        parent = twin; // already cached (maybe in another pool block): keep the first copy
        continue;
      }
      const id = blockIds[j]!;
      if (this.byBlock.has(id)) throw new RangeError(`block ${id} is already indexed for other tokens`);
      const entry: IndexedBlock = { blockId: id, hash, tokens: blockTokens, parent };
      this.byBlock.set(id, entry);
      const bucket = this.byHash.get(hash);
      if (bucket) bucket.push(entry);
      else this.byHash.set(hash, [entry]);
      added.push(id);
      parent = entry;
    }
    return added;
  }

  lookup(prompt: readonly number[]): number[] {
    const B = this.blockSize;
    const out: number[] = [];
    let parent: IndexedBlock | null = null;
    for (let j = 0; (j + 1) * B <= prompt.length - 1; j++) {
      const blockTokens = prompt.slice(j * B, (j + 1) * B);
      const found = this.find(this.hash(parent?.hash ?? null, blockTokens), parent, blockTokens);
      if (!found) break;
      out.push(found.blockId);
      parent = found;
    }
    return out;
  }

  remove(blockId: number): number[] {
    const root = this.byBlock.get(blockId);
    if (!root) throw new RangeError(`block ${blockId} is not indexed`);
    // Breadth first from the block: parents before children.
    const removed: IndexedBlock[] = [root];
    for (let i = 0; i < removed.length; i++) {
      for (const e of this.byBlock.values()) if (e.parent === removed[i]) removed.push(e);
    }
    for (const e of removed) {
      this.byBlock.delete(e.blockId);
      const bucket = this.byHash.get(e.hash)!;
      bucket.splice(bucket.indexOf(e), 1);
      if (bucket.length === 0) this.byHash.delete(e.hash);
    }
    return removed.map((e) => e.blockId);
  }

  entry(blockId: number): IndexedBlock | undefined {
    return this.byBlock.get(blockId);
  }
}

/** An empty index over blocks of `blockSize` tokens (a power of two), hashing with `hash`. */
export function createBlockHashIndex(blockSize: number, hash: BlockHashFn = blockHash): BlockHashIndex {
  return new Index(blockSize, hash);
}
