// Prefix caches: one interface (cache.ts), three methods, one file each. Reading order: cache.ts,
// block-cache.ts (vLLM), radix-cache.ts (SGLang), slot-cache.ts (llama-server).
import { EngineError, type Engine } from "../engine/engine.ts";
import { BlockHashCache } from "./block-cache.ts";
import type { PrefixCache, PrefixCacheMethod } from "./cache.ts";
import { RadixCache } from "./radix-cache.ts";
import { SlotCache } from "./slot-cache.ts";

export * from "./cache.ts";
export { BlockHashCache, LruBlockQueue, blockHashes, sha256BlockHash, type BlockHashFn } from "./block-cache.ts";
export { RadixCache, RadixNode } from "./radix-cache.ts";
export { SlotCache } from "./slot-cache.ts";

export const PREFIX_CACHE_METHODS: readonly PrefixCacheMethod[] = ["block", "radix", "slot"];

/** A cache of the named method on `engine`; `capacityBlocks` bounds block/radix (0 = off), `slots` the slot cache. */
export function openPrefixCache(method: string, engine: Engine, opts: { capacityBlocks?: number; slots?: number } = {}): PrefixCache {
  if (method === "block") return new BlockHashCache(engine, { capacityBlocks: opts.capacityBlocks });
  if (method === "radix") return new RadixCache(engine, { capacityBlocks: opts.capacityBlocks });
  if (method === "slot") return new SlotCache(engine, { slots: opts.slots });
  throw new EngineError(`unknown prefix cache method "${method}" (expected one of: ${PREFIX_CACHE_METHODS.join(", ")})`);
}
