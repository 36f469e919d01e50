// Prefix caches: one interface (cache.ts), three methods, one file each. Reading order: cache.ts,
// block-cache.ts (vLLM), radix-cache.ts (SGLang), slot-cache.ts (llama-server).
import { EngineError, type Engine } from "../engine/engine.ts";
import { BlockHashCache, type BlockHashFn } from "./block-cache.ts";
import type { PrefixCache, PrefixCacheMethod } from "./cache.ts";
import { RadixCache } from "./radix-cache.ts";
import { SlotCache } from "./slot-cache.ts";

export * from "./cache.ts";
export {
  BLOCK_HASHES, BlockHashCache, LruBlockQueue, blockHashFunction, blockHashes, sha256BlockHash, xxh64BlockHash,
  type BlockHashFn, type BlockHashName,
} from "./block-cache.ts";
export { RadixCache, RadixNode } from "./radix-cache.ts";
export { SlotCache } from "./slot-cache.ts";

export const PREFIX_CACHE_METHODS: readonly PrefixCacheMethod[] = ["block", "radix", "slot"];

/** A cache of the named method on `engine`; `capacityBlocks` bounds block/radix (0 = off), `slots` the
 *  slot cache, `hash` is the block cache's chained hash (default sha256; see blockHashFunction). */
export function openPrefixCache(method: string, engine: Engine, opts: { capacityBlocks?: number; slots?: number; hash?: BlockHashFn } = {}): PrefixCache {
  if (method === "block") return new BlockHashCache(engine, { capacityBlocks: opts.capacityBlocks, hash: opts.hash });
  if (method === "radix") return new RadixCache(engine, { capacityBlocks: opts.capacityBlocks });
  if (method === "slot") return new SlotCache(engine, { slots: opts.slots });
  throw new EngineError(`unknown prefix cache method "${method}" (expected one of: ${PREFIX_CACHE_METHODS.join(", ")})`);
}
