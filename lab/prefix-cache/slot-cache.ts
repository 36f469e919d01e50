// Slot prefix cache: llama-server's `cache_prompt`, on either engine.
//
// The server keeps N live sequences ("slots") and never frees a finished one: its KV stays as it
// was. A new request goes to the idle slot whose tokens share the longest common prefix with the
// prompt; the slot is truncated to that prefix and only the rest is evaluated. No KV moves between
// sequences, which is why it is the one kind of prefix cache llama.cpp allows here (node-llama-cpp
// exposes no KV copy between sequences) — and why it is weaker than block hashing or a radix tree:
// one cached prefix per slot, two requests cannot share one copy of a prefix at the same time, and
// routing a request to a slot overwrites whatever that slot held past the common prefix.
//
// Routing, as llama-server: the idle slot with the longest common prefix (ties: least recently used);
// when no idle slot shares at least 16 tokens (SLOT_MIN_REUSE_TOKENS), a free slot (fewer than N
// exist) is opened instead of overwriting a cached one, else the least recently used idle slot is
// recycled (freed and reopened empty).
// At least one prompt token is always recomputed (the match is capped at prompt.length - 1).
// Eviction (LabEngine only, when the pool is full): idle slots are freed, least recently used first.
import { EngineError, type Engine, type Sequence } from "../engine/engine.ts";
import { StatsCounter, checkPrompt, commonPrefix, type CacheHit, type PrefixCache, type PrefixCacheStats } from "./cache.ts";

/** The shortest common prefix a slot is reused for: one block, as the block-hash cache (which
 *  shares only full blocks of 16 tokens), so every method ignores a few shared leading words. */
export const SLOT_MIN_REUSE_TOKENS = 16;

interface Slot {
  sequence: Sequence;
  busy: boolean;
  lastUsed: number;
}

export interface SlotCacheOptions {
  /** Live sequences kept (llama-server's --parallel). Default: engine.maxSequences. 0 = off. */
  slots?: number;
}

export class SlotCache implements PrefixCache {
  readonly method = "slot" as const;
  readonly nSlots: number;
  private readonly slots: Slot[] = [];
  private readonly counter = new StatsCounter();
  private clock = 0;

  constructor(readonly engine: Engine, opts: SlotCacheOptions = {}) {
    this.nSlots = opts.slots ?? engine.maxSequences;
    if (!Number.isInteger(this.nSlots) || this.nSlots < 0 || this.nSlots > engine.maxSequences) {
      throw new RangeError(`slot cache: slots must be an integer in [0, maxSequences = ${engine.maxSequences}] (0 = off), got ${opts.slots}`);
    }
  }

  async lookup(prompt: readonly number[]): Promise<CacheHit> {
    checkPrompt(prompt, this.engine);
    this.clock++;
    if (this.nSlots === 0) {
      this.counter.recordLookup(prompt.length, 0);
      return { sequence: await this.engine.createSequence(), cachedTokens: 0 };
    }
    const limit = prompt.length - 1;
    let best: Slot | undefined, bestLcp = -1;
    for (const slot of this.slots) {
      if (slot.busy) continue;
      const lcp = Math.min(limit, commonPrefix(slot.sequence.tokens, prompt));
      if (lcp > bestLcp || (lcp === bestLcp && slot.lastUsed < best!.lastUsed)) {
        best = slot;
        bestLcp = lcp;
      }
    }
    // A slot sharing fewer than SLOT_MIN_REUSE_TOKENS is a miss: no better than a new sequence, and
    // worse on llama.cpp, which prefills into a truncated sequence 10–17% slower than into a fresh
    // one (measured on the target, 850 tokens; bench/prefix-cache.ts's unique workload, whose
    // prompts share their first few words, showed it as cache overhead). A miss opens a slot while
    // fewer than N exist, else recycles the least recently used idle one: freed, reopened empty.
    const miss = bestLcp < SLOT_MIN_REUSE_TOKENS;
    if (miss && this.slots.length < this.nSlots) {
      best = { sequence: await this.engine.createSequence(), busy: false, lastUsed: 0 };
      this.slots.push(best);
    } else if (miss && best) {
      // The longest (too short) match does not matter now: the least recently used idle slot goes.
      for (const slot of this.slots) if (!slot.busy && slot.lastUsed < best.lastUsed) best = slot;
      this.counter.evictedTokens += best.sequence.length;
      await best.sequence.free();
      best.sequence = await this.engine.createSequence();
    }
    if (!best) throw new EngineError(`slot cache: all ${this.nSlots} slots are busy; release one first`);
    if (miss) bestLcp = 0;
    const dropped = best.sequence.length - bestLcp;
    if (dropped > 0) {
      await best.sequence.truncate(bestLcp);
      this.counter.evictedTokens += dropped;
    }
    best.busy = true;
    best.lastUsed = this.clock;
    this.counter.recordLookup(prompt.length, bestLcp);
    return { sequence: best.sequence, cachedTokens: bestLcp };
  }

  insert(_sequence: Sequence): void {
    // Nothing to do: a slot's sequence IS its cache entry.
  }

  async release(sequence: Sequence): Promise<void> {
    const slot = this.slots.find((s) => s.sequence === sequence);
    if (!slot) {
      await sequence.free(); // not one of ours (the cache is off): nothing to keep
      return;
    }
    if (!slot.busy) throw new EngineError(`slot cache: sequence ${sequence.id} was released twice`);
    slot.busy = false;
    slot.lastUsed = ++this.clock;
  }

  /** Frees idle slots, least recently used first, until `blocks` pool blocks came free (LabEngine). */
  async evict(blocks: number): Promise<number> {
    const kv = this.engine.kv;
    if (!kv) return 0; // llama.cpp: each sequence has its own cells; nothing is shared to give back
    let freed = 0;
    const idle = this.slots.filter((s) => !s.busy).sort((a, b) => a.lastUsed - b.lastUsed);
    for (const slot of idle) {
      if (freed >= blocks) break;
      const before = kv.freeQueue().length;
      this.counter.evictedTokens += slot.sequence.length;
      await slot.sequence.free();
      const gained = kv.freeQueue().length - before;
      freed += gained;
      this.counter.evictedBlocks += gained;
      this.slots.splice(this.slots.indexOf(slot), 1);
    }
    return freed;
  }

  /** The tokens each slot holds, in slot order (tests and notebooks). */
  slotTokens(): { tokens: readonly number[]; busy: boolean }[] {
    return this.slots.map((s) => ({ tokens: s.sequence.tokens, busy: s.busy }));
  }

  /** Blocks held (LabEngine: distinct pool blocks of all slots; llama.cpp: token cells). */
  stats(): PrefixCacheStats {
    const kv = this.engine.kv;
    let held = 0;
    if (kv) {
      const ids = new Set<number>();
      for (const s of this.slots) for (const id of kv.blockIds(s.sequence)) ids.add(id);
      held = ids.size;
    } else {
      for (const s of this.slots) held += s.sequence.length;
    }
    return this.counter.snapshot(held);
  }

  resetStats(): void {
    this.counter.reset();
  }

  async dispose(): Promise<void> {
    for (const s of this.slots) await s.sequence.free();
    this.slots.length = 0;
  }
}
