// Task 3.3 — radix-tree match and insert with node splits: the tree of SGLang's RadixAttention,
// without the KV bookkeeping. Read notebooks/03-prefix-caching.ipynb §3.3 first. Hints
// (progressive): exercises/serving/HINTS.md. Grade with `npm run grade -- 3.3`. The grader refuses
// a file that imports the kit's own caches (lab/prefix-cache/) or engines (lab/engine/).
//
// The tree stores token sequences. Each node but the root holds an edge: a non-empty run of tokens
// (its key). A node's children start with different tokens, so they are kept in a Map keyed by the
// first token of their key. The path from the root to a node spells a stored prefix. Example, after
// inserting [1,2,3,4,5] and then [1,2,3,9,9]:
//
//   root ── [1,2,3] ─┬─ [4,5]
//                    └─ [9,9]
//
// Inserting [1,2] next ends INSIDE the [1,2,3] edge, so that edge is split at the cut:
//
//   root ── [1,2] ── [3] ─┬─ [4,5]
//                         └─ [9,9]
//
// Splitting at any token (not at block boundaries) is what makes radix matches token-granular.
import { NotImplementedError } from "../../lab/errors.ts";

export interface RadixTreeNode {
  /** the edge's tokens (empty only for the root) */
  key: number[];
  /** children keyed by the first token of their key */
  children: Map<number, RadixTreeNode>;
  /** null for the root */
  parent: RadixTreeNode | null;
}

/** A node as plain data: its key and its children ordered by the first token of their keys. */
export interface RadixDump {
  key: number[];
  children: RadixDump[];
}

export interface RadixTree {
  readonly root: RadixTreeNode;
  /**
   * Length of the longest prefix of `tokens` stored in the tree: walk from the root, following the
   * child keyed by the next token and comparing its key token by token; a match may end inside an
   * edge. Does NOT change the tree.
   */
  match(tokens: readonly number[]): number;
  /**
   * Stores `tokens` and returns how many of them were stored already (the match length before the
   * insert). Where the walk leaves an edge after k of its tokens (0 < k < key length), split that
   * node: a new node with key[0 .. k) takes its place under the parent and becomes its parent, the
   * old node keeps key[k ..). Then add the rest of `tokens`, if any, as one new leaf. Inserting a
   * stored sequence changes nothing; inserting [] returns 0.
   */
  insert(tokens: readonly number[]): number;
  /** The tree from the root, children ordered by the first token of their keys. */
  dump(): RadixDump;
}

/** An empty tree: a root with key [] and no children. */
export function createRadixTree(): RadixTree {
  throw new NotImplementedError("Task 3.3 — see notebooks/03-prefix-caching.ipynb §3.3");
}
