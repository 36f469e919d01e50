// Task 3.1 — the block hash chain and lookup: vLLM's automatic prefix caching, on paper.
// Read notebooks/03-prefix-caching.ipynb §3.1 first. Hints (progressive): exercises/serving/HINTS.md.
// Grade with `npm run grade -- 3.1`. The grader refuses a file that imports the kit's own caches
// (lab/prefix-cache/) or engines (lab/engine/). node:crypto is yours to use.
//
// The KV cache lives in blocks of B positions (B a power of two). A FULL block j of a prompt is
// named by a hash of its whole prefix, computed as a chain:
//
//   hash(block 0) = H(null, tokens[0 .. B))
//   hash(block j) = H(hash(block j − 1), tokens[jB .. (j+1)B))
//
// so two prompts get the same hash for block j only if all their tokens up to (j+1)B are the same.
// The partial last block (fewer than B tokens) gets no hash: it is never shared.
import { NotImplementedError } from "../../lab/errors.ts";

/** (parent block's hash, or null for block 0; the block's tokens) → this block's hash. */
export type BlockHashFn = (parentHash: string | null, tokens: readonly number[]) => string;

/**
 * Task 3.1a — H, the kit's block hash: the lower-case hex sha256 digest of these bytes, in order:
 *   1. the parent's hash as UTF-8 text (its 64 hex characters), or the 4 characters "none" for block 0;
 *   2. every token id as a 32-bit signed integer, little-endian (4 bytes per token).
 * Example: block 0 = [1, 2] hashes the 12 bytes 6e 6f 6e 65 01 00 00 00 02 00 00 00.
 */
export function blockHash(parentHash: string | null, tokens: readonly number[]): string {
  throw new NotImplementedError("Task 3.1 — see notebooks/03-prefix-caching.ipynb §3.1");
}

/**
 * Task 3.1b — the hashes of every FULL block of `tokens`, in order, each chained on the one before
 * (55 tokens with B = 16 → 3 hashes). Uses `hash` (default blockHash) for H.
 * RangeError if blockSize is not a power of two >= 1.
 */
export function blockHashChain(tokens: readonly number[], blockSize: number, hash: BlockHashFn = blockHash): string[] {
  throw new NotImplementedError("Task 3.1 — see notebooks/03-prefix-caching.ipynb §3.1");
}

/** One indexed block: which pool block holds the keys and values of this chain's block. */
export interface IndexedBlock {
  blockId: number;
  hash: string;
  /** the block's blockSize tokens */
  tokens: readonly number[];
  /** the entry of the block before it in its chain (null for block 0) */
  parent: IndexedBlock | null;
}

/**
 * Task 3.1c — the index a block-hash cache keeps: hash → cached blocks.
 *
 * A hash is only a hint. Two different blocks CAN have the same hash (the tests force it with a
 * hash that always collides), and handing out another prompt's keys and values would silently give
 * wrong output. So an entry matches block j of a prompt only if ALL of these hold:
 *   - its hash equals H(parent's hash, block j's tokens);
 *   - its tokens equal block j's tokens;
 *   - its parent IS the entry matched for block j − 1 (the same object; null for block 0).
 * Several entries may share one hash.
 */
export interface BlockHashIndex {
  readonly blockSize: number;
  /** indexed blocks */
  readonly size: number;
  /**
   * A request's sequence holds `tokens` in pool blocks blockIds[0], blockIds[1], … (block j holds
   * tokens[jB .. (j+1)B)). Index each FULL block, walking the chain from block 0:
   *   - if block j's chain is already indexed (a matching entry exists, maybe in ANOTHER pool block:
   *     two requests computed it at once), keep that entry and continue from it;
   *   - otherwise index blockIds[j] for it.
   * Returns the block ids newly indexed, in order. RangeError if blockIds has fewer ids than there
   * are full blocks, or if a block id that is indexed already would be indexed for other tokens.
   */
  insert(tokens: readonly number[], blockIds: readonly number[]): number[];
  /**
   * The pool block ids of the longest chain of indexed blocks that starts `prompt`, stopping at the
   * first block that does not match. At most floor((prompt.length − 1) / B) blocks: at least one
   * prompt token is always left to compute, because the request needs the next-token distribution
   * after its whole prompt. (48 tokens, B = 16, all cached → 2 blocks.)
   */
  lookup(prompt: readonly number[]): number[];
  /**
   * The cache evicts a block: forget it AND every indexed block chained below it (they can never be
   * matched again without it). Returns the ids removed, each parent before its children.
   * RangeError if the block is not indexed.
   */
  remove(blockId: number): number[];
  /** The entry of an indexed block, or undefined. */
  entry(blockId: number): IndexedBlock | undefined;
}

/**
 * An empty index over blocks of `blockSize` tokens (RangeError if not a power of two >= 1),
 * hashing with `hash`. Write a class implementing BlockHashIndex and return an instance; two Maps
 * (hash → entries, block id → entry) are all it needs.
 */
export function createBlockHashIndex(blockSize: number, hash: BlockHashFn = blockHash): BlockHashIndex {
  throw new NotImplementedError("Task 3.1 — see notebooks/03-prefix-caching.ipynb §3.1");
}
