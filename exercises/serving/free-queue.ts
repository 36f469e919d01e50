// Task 3.2 — the LRU free queue with O(1) removal, and the exact eviction order: vLLM's
// FreeKVCacheBlockQueue and BlockPool. Read notebooks/03-prefix-caching.ipynb §3.2 first.
// Hints (progressive): exercises/serving/HINTS.md. Grade with `npm run grade -- 3.2`. The grader
// refuses a file that imports the kit's own caches (lab/prefix-cache/) or engines (lab/engine/).
//
// A block-hash cache keeps blocks that no running request holds (reference count 0) in ONE queue
// with the never-used blocks: allocation takes the front, so the front is what gets evicted. A
// finished request's blocks join the back, tail first, so a chain's last block is evicted before
// its parents (a tail is useless without them; a parent may serve many tails). A cache hit on a
// block that is in the queue takes it out of the MIDDLE: with thousands of blocks and a lookup per
// request, that must be O(1) — a doubly linked list with a node per block, found through a Map, not
// an array (indexOf + splice is O(n) per hit).
import { NotImplementedError } from "../../lab/errors.ts";

/** A queued block: a node of the doubly linked list (prev is null at the front, next at the back). */
export interface QueueNode {
  readonly blockId: number;
  prev: QueueNode | null;
  next: QueueNode | null;
}

/** Task 3.2a — the queue. Errors are RangeErrors. */
export interface FreeBlockQueue {
  readonly size: number;
  has(blockId: number): boolean;
  /** Appends a block at the back (evicted last). RangeError if it is already queued. */
  pushBack(blockId: number): void;
  /** Unlinks a block wherever it is, in O(1). RangeError if it is not queued. */
  remove(blockId: number): void;
  /** Takes the block at the front (the least recently freed), or undefined when empty. */
  popFront(): number | undefined;
  /** The block ids, front to back. */
  ids(): number[];
  /** The first node, or null when empty (the tests walk your list through next and check prev). */
  front(): QueueNode | null;
  /** The node of a queued block, or undefined. */
  node(blockId: number): QueueNode | undefined;
}

/** A queue holding `blockIds` front to back (empty by default); RangeError on a repeated id. */
export function createFreeBlockQueue(blockIds: readonly number[] = []): FreeBlockQueue {
  throw new NotImplementedError("Task 3.2 — see notebooks/03-prefix-caching.ipynb §3.2");
}

/**
 * Task 3.2b — the pool of KV blocks 0 … nBlocks − 1 over that queue: a reference count per block
 * (how many running requests hold it), and the free queue of every block whose count is 0 — at
 * first all of them, in id order. Errors are RangeErrors and change nothing (check, then act).
 */
export interface BlockPool {
  readonly nBlocks: number;
  /** RangeError for an id outside the pool. */
  refCount(blockId: number): number;
  /** The free blocks in the order allocate() hands them out: for cached blocks, the eviction order. */
  freeIds(): number[];
  /** A miss: n blocks from the front of the free queue, each now with count 1. RangeError if fewer are free. */
  allocate(n: number): number[];
  /** A cache hit: one more reference on each block; a block whose count was 0 leaves the free queue. */
  touch(blockIds: readonly number[]): void;
  /**
   * A request finished with its block table: one reference less on each block, walking the table
   * from its LAST block to its first; each block reaching 0 joins the back of the free queue.
   * RangeError if a block is not held (as many times as it appears).
   */
  free(blockIds: readonly number[]): void;
}

/** A pool of nBlocks blocks (an integer >= 0, else RangeError), all free, queued 0, 1, …, nBlocks − 1. */
export function createBlockPool(nBlocks: number): BlockPool {
  throw new NotImplementedError("Task 3.2 — see notebooks/03-prefix-caching.ipynb §3.2");
}
