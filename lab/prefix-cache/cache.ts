// The prefix cache interface shared by the three methods (block hashing, a radix tree, slots), and the
// one loop every caller runs: look the prompt up, evaluate only what is not cached, let the cache
// evict and retry when the KV pool is full, then hand the sequence back.
//
// Why reusing keys and values is exact: attention is causal, so position i's keys and values depend
// only on tokens 0..i. A later prompt that starts with the same tokens needs exactly the same K and V
// for those positions; only the rest has to be computed.
//
// Stats are in TOKENS over a stated window (since the cache was made or since resetStats()):
// hitRate = hitTokens / queryTokens. Counting requests instead would call a 1-token match on a
// 900-token prompt a hit.
import { EngineError, KvCacheFullError, type Engine, type Sequence, type StepResult } from "../engine/engine.ts";

export type PrefixCacheMethod = "block" | "radix" | "slot";

export interface CacheHit {
  /** A live sequence holding the first `cachedTokens` tokens of the prompt (K and V already computed). */
  sequence: Sequence;
  /** Prompt tokens whose KV is reused: always <= prompt.length - 1, so at least one token is
   *  evaluated and the caller gets the next-token distribution after the whole prompt. */
  cachedTokens: number;
}

export interface PrefixCacheStats {
  /** lookup() calls in the window. */
  queries: number;
  /** Prompt tokens asked for / found cached, summed over the window's lookups. */
  queryTokens: number;
  hitTokens: number;
  /** hitTokens / queryTokens (0 when nothing was asked). */
  hitRate: number;
  /** KV blocks (slot cache on llama.cpp: token cells) the cache gave back to the pool. */
  evictedBlocks: number;
  /** Tokens whose KV the cache dropped. */
  evictedTokens: number;
  /** Distinct KV blocks (slot cache on llama.cpp: token cells) the cache holds right now. */
  blocksHeld: number;
  /** What the window is, in words. */
  window: string;
}

export interface PrefixCache {
  readonly method: PrefixCacheMethod;
  readonly engine: Engine;
  /** A sequence already holding the longest cached prefix of `prompt` (a fresh one on a miss). */
  lookup(prompt: readonly number[]): Promise<CacheHit>;
  /** Offers the sequence's tokens so far to later lookups while it keeps running (vLLM caches a
   *  request's full blocks as soon as they are computed, so a concurrent request can share them). */
  insert(sequence: Sequence): void;
  /** The request is done: the cache keeps what it may of its KV, then frees (or parks) the sequence. */
  release(sequence: Sequence): Promise<void>;
  /** Gives back KV no running sequence holds, least recently used first, until `blocks` pool blocks
   *  are free again or nothing is left to evict; returns the blocks that became free. */
  evict(blocks: number): Promise<number>;
  stats(): PrefixCacheStats;
  resetStats(): void;
  /** Releases everything the cache holds (sequences, block references). */
  dispose(): Promise<void>;
}

/** Counters every method keeps the same way. */
export class StatsCounter {
  queries = 0;
  queryTokens = 0;
  hitTokens = 0;
  evictedBlocks = 0;
  evictedTokens = 0;
  private since = new Date().toISOString();

  recordLookup(promptTokens: number, cachedTokens: number): void {
    this.queries++;
    this.queryTokens += promptTokens;
    this.hitTokens += cachedTokens;
  }

  snapshot(blocksHeld: number): PrefixCacheStats {
    return {
      queries: this.queries, queryTokens: this.queryTokens, hitTokens: this.hitTokens,
      hitRate: this.queryTokens === 0 ? 0 : this.hitTokens / this.queryTokens,
      evictedBlocks: this.evictedBlocks, evictedTokens: this.evictedTokens, blocksHeld,
      window: `lookups since ${this.since}`,
    };
  }

  reset(): void {
    this.queries = this.queryTokens = this.hitTokens = this.evictedBlocks = this.evictedTokens = 0;
    this.since = new Date().toISOString();
  }
}

/** Bad prompts are refused in words before the cache touches anything. */
export function checkPrompt(prompt: readonly number[], engine: Engine): void {
  if (!Array.isArray(prompt) || prompt.length === 0) throw new EngineError("prefix cache: empty prompt (nothing to look up)");
  const nVocab = engine.hparams.nVocab;
  for (const t of prompt) {
    if (!Number.isInteger(t) || t < 0 || t >= nVocab) throw new EngineError(`prefix cache: token id ${t} is outside the vocabulary [0, ${nVocab})`);
  }
  if (prompt.length > engine.contextSize) {
    throw new EngineError(`prefix cache: a ${prompt.length}-token prompt does not fit the context of ${engine.contextSize}`);
  }
}

export function checkCapacity(capacityBlocks: number): void {
  if (!(capacityBlocks === Infinity || (Number.isInteger(capacityBlocks) && capacityBlocks >= 0))) {
    throw new RangeError(`prefix cache capacity must be an integer >= 0 blocks (0 = off), got ${capacityBlocks}`);
  }
}

/** Longest common prefix of two token arrays. */
export function commonPrefix(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/** engine.step for one item; on KvCacheFullError the cache evicts what the step lacks and the step
 *  is retried (all or nothing: the failed step wrote nothing). A pool full of running sequences'
 *  blocks, which no cache may evict, still throws. */
export async function stepEvicting(engine: Engine, cache: PrefixCache | undefined, sequence: Sequence, tokens: number[],
  output: "none" | "last" | "all" = "last"): Promise<StepResult> {
  for (;;) {
    try {
      const [result] = await engine.step([{ sequence, tokens, output }]);
      return result;
    } catch (err) {
      if (!(err instanceof KvCacheFullError) || cache === undefined) throw err;
      const freed = await cache.evict(err.blocksNeeded - err.blocksFree);
      if (freed === 0) throw err;
    }
  }
}

export interface PrefilledRequest {
  sequence: Sequence;
  cachedTokens: number;
  /** Prompt tokens evaluated now (prompt.length - cachedTokens). */
  computedTokens: number;
  /** The next-token distribution after the whole prompt. */
  logprobs: Float32Array;
}

/** What a request does with a cache (or none): look up, evaluate the rest, offer it to the cache. */
export async function prefillCached(engine: Engine, cache: PrefixCache | undefined, prompt: readonly number[]): Promise<PrefilledRequest> {
  let hit: CacheHit;
  if (cache) hit = await cache.lookup(prompt);
  else {
    checkPrompt(prompt, engine);
    hit = { sequence: await engine.createSequence(), cachedTokens: 0 };
  }
  const rest = prompt.slice(hit.cachedTokens);
  try {
    const result = await stepEvicting(engine, cache, hit.sequence, rest, "last");
    cache?.insert(hit.sequence);
    return { sequence: hit.sequence, cachedTokens: hit.cachedTokens, computedTokens: rest.length, logprobs: result.logprobs[0] };
  } catch (err) {
    if (cache) await cache.release(hit.sequence);
    else await hit.sequence.free();
    throw err;
  }
}
