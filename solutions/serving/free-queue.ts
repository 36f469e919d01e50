// Reference solution, task 3.2 — the LRU free queue with O(1) removal and the exact eviction order
// (vLLM's FreeKVCacheBlockQueue and BlockPool). The task is stated in exercises/serving/free-queue.ts;
// notebooks/03-prefix-caching.ipynb §3.2.

/** A queued block: a node of the doubly linked list (prev/next null at the ends). */
export interface QueueNode {
  readonly blockId: number;
  prev: QueueNode | null;
  next: QueueNode | null;
}

export interface FreeBlockQueue {
  readonly size: number;
  has(blockId: number): boolean;
  /** Appends a block at the back (evicted last). Error if it is already queued. */
  pushBack(blockId: number): void;
  /** Unlinks a block wherever it is, in O(1). Error if it is not queued. */
  remove(blockId: number): void;
  /** Takes the block at the front (the least recently freed), or undefined when empty. */
  popFront(): number | undefined;
  /** Front to back. */
  ids(): number[];
  /** The first node, or null when empty. */
  front(): QueueNode | null;
  /** The node of a queued block, or undefined. */
  node(blockId: number): QueueNode | undefined;
}

class LinkedQueue implements FreeBlockQueue {
  private head: QueueNode | null = null;
  private tail: QueueNode | null = null;
  private readonly nodes = new Map<number, QueueNode>();

  get size(): number {
    return this.nodes.size;
  }

  has(blockId: number): boolean {
    return this.nodes.has(blockId);
  }

  pushBack(blockId: number): void {
    if (this.nodes.has(blockId)) throw new RangeError(`block ${blockId} is already queued`);
    const node: QueueNode = { blockId, prev: this.tail, next: null };
    if (this.tail) this.tail.next = node;
    else this.head = node;
    this.tail = node;
    this.nodes.set(blockId, node);
  }

  remove(blockId: number): void {
    const node = this.nodes.get(blockId);
    if (!node) throw new RangeError(`block ${blockId} is not queued`);
    if (node.prev) node.prev.next = node.next;
    else this.head = node.next;
    if (node.next) node.next.prev = node.prev;
    else this.tail = node.prev;
    node.prev = node.next = null;
    this.nodes.delete(blockId);
  }

  popFront(): number | undefined {
    if (!this.head) return undefined;
    const id = this.head.blockId;
    this.remove(id);
    return id;
  }

  ids(): number[] {
    const out: number[] = [];
    for (let n = this.head; n; n = n.next) out.push(n.blockId);
    return out;
  }

  front(): QueueNode | null {
    return this.head;
  }

  node(blockId: number): QueueNode | undefined {
    return this.nodes.get(blockId);
  }
}

/** A queue holding `blockIds` front to back (empty by default). */
export function createFreeBlockQueue(blockIds: readonly number[] = []): FreeBlockQueue {
  const q = new LinkedQueue();
  for (const id of blockIds) q.pushBack(id);
  return q;
}

export interface BlockPool {
  readonly nBlocks: number;
  refCount(blockId: number): number;
  /** The free blocks in the order allocate() hands them out (= the eviction order of cached ones). */
  freeIds(): number[];
  /** n blocks from the front of the free queue, each now with reference count 1. RangeError if fewer are free. */
  allocate(n: number): number[];
  /** A cache hit: one more reference on each block; a block that was free leaves the free queue. */
  touch(blockIds: readonly number[]): void;
  /** A request finished: one reference less on each block, TAIL FIRST; blocks reaching 0 join the back of the queue. */
  free(blockIds: readonly number[]): void;
}

class Pool implements BlockPool {
  private readonly refs: Int32Array; // [nBlocks] references per block
  private readonly queue: FreeBlockQueue;

  constructor(readonly nBlocks: number) {
    if (!Number.isInteger(nBlocks) || nBlocks < 0) throw new RangeError(`a pool needs an integer number of blocks >= 0, got ${nBlocks}`);
    this.refs = new Int32Array(nBlocks);
    this.queue = createFreeBlockQueue(Array.from({ length: nBlocks }, (_, i) => i));
  }

  private check(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.nBlocks) throw new RangeError(`no block ${id} in a pool of ${this.nBlocks}`);
  }

  refCount(blockId: number): number {
    this.check(blockId);
    return this.refs[blockId]!;
  }

  freeIds(): number[] {
    return this.queue.ids();
  }

  allocate(n: number): number[] {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`allocate: n must be an integer >= 0, got ${n}`);
    if (n > this.queue.size) throw new RangeError(`allocate: ${n} blocks asked, ${this.queue.size} free`);
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const id = this.queue.popFront()!;
      this.refs[id] = 1;
      out.push(id);
    }
    return out;
  }

  touch(blockIds: readonly number[]): void {
    for (const id of blockIds) this.check(id);
    for (const id of blockIds) {
      if (this.refs[id] === 0) this.queue.remove(id);
      this.refs[id]!++;
    }
  }

  free(blockIds: readonly number[]): void {
    const uses = new Map<number, number>();
    for (const id of blockIds) {
      this.check(id);
      uses.set(id, (uses.get(id) ?? 0) + 1);
      if (uses.get(id)! > this.refs[id]!) throw new RangeError(`free: block ${id} is not in use (reference count ${this.refs[id]})`);
    }
    // Tail first: a chain's last block joins the queue first and is evicted before its parents.
    for (let i = blockIds.length - 1; i >= 0; i--) {
      const id = blockIds[i]!;
      if (--this.refs[id]! === 0) this.queue.pushBack(id);
    }
  }
}

/** A pool of nBlocks KV blocks, all free, queued 0, 1, …, nBlocks − 1. */
export function createBlockPool(nBlocks: number): BlockPool {
  return new Pool(nBlocks);
}
