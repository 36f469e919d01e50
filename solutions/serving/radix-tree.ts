// Reference solution, task 3.3 — radix-tree match and insert with node splits (SGLang's RadixAttention
// tree, without the KV bookkeeping). The task is stated in exercises/serving/radix-tree.ts;
// notebooks/03-prefix-caching.ipynb §3.3.

export interface RadixTreeNode {
  /** the edge's tokens (empty only for the root) */
  key: number[];
  /** children keyed by the first token of their key */
  children: Map<number, RadixTreeNode>;
  parent: RadixTreeNode | null;
}

/** A node as plain data: its key and its children ordered by first token. */
export interface RadixDump {
  key: number[];
  children: RadixDump[];
}

export interface RadixTree {
  readonly root: RadixTreeNode;
  /** Length of the longest prefix of `tokens` stored in the tree. Does not change the tree. */
  match(tokens: readonly number[]): number;
  /** Stores `tokens`, splitting the edge where they leave it; returns how many were already stored. */
  insert(tokens: readonly number[]): number;
  /** The tree from the root, children ordered by first token. */
  dump(): RadixDump;
}

function commonPrefix(a: readonly number[], b: readonly number[], bStart: number): number {
  let i = 0;
  while (i < a.length && bStart + i < b.length && a[i] === b[bStart + i]) i++;
  return i;
}

class Tree implements RadixTree {
  readonly root: RadixTreeNode = { key: [], children: new Map(), parent: null };

  match(tokens: readonly number[]): number {
    let node = this.root, pos = 0;
    for (;;) {
      const child = pos < tokens.length ? node.children.get(tokens[pos]!) : undefined;
      if (!child) return pos;
      const k = commonPrefix(child.key, tokens, pos);
      pos += k;
      if (k < child.key.length) return pos;
      node = child;
    }
  }

  /** Cuts `node` after k tokens (0 < k < key length): a new node holds key[0..k) and becomes its parent. */
  private split(node: RadixTreeNode, k: number): RadixTreeNode {
    const top: RadixTreeNode = { key: node.key.slice(0, k), children: new Map(), parent: node.parent };
    node.parent!.children.set(top.key[0]!, top);
    node.key = node.key.slice(k);
    node.parent = top;
    top.children.set(node.key[0]!, node);
    return top;
  }

  insert(tokens: readonly number[]): number {
    let node = this.root, pos = 0;
    while (pos < tokens.length) {
      const child = node.children.get(tokens[pos]!);
      if (!child) {
        const leaf: RadixTreeNode = { key: tokens.slice(pos), children: new Map(), parent: node };
        node.children.set(leaf.key[0]!, leaf);
        return pos;
      }
      const k = commonPrefix(child.key, tokens, pos);
      pos += k;
      node = k < child.key.length ? this.split(child, k) : child;
    }
    return pos;
  }

  dump(node: RadixTreeNode = this.root): RadixDump {
    return { key: [...node.key], children: [...node.children.values()].sort((a, b) => a.key[0]! - b.key[0]!).map((c) => this.dump(c)) };
  }
}

/** An empty tree: just the root. */
export function createRadixTree(): RadixTree {
  return new Tree();
}
