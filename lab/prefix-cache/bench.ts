// The prefix-cache benchmark behind `lab prefix-bench` and bench/prefix-cache.ts: four workloads from
// data/corpus and data/eval, every method plus "none" on its own engine over the same model, the
// requests interleaved (request i runs under every method before request i+1, in a rotating method
// order) so a loaded machine slows all methods alike and the ratios stay fair.
//
// Per method: hit rate in tokens (hitTokens / queryTokens over this run's lookups), TTFT p50/p90
// (lookup + prefill of the uncached rest + the first greedy token), prompt tokens computed,
// evictions (blocks given back), blocks held at the end, TTFT of the requests that hit ÷ TTFT of the
// same requests without a cache, and whether every greedy token equals the no-cache run's.
import { openEngine, type Engine, type EngineName } from "../engine/engine.ts";
import { argmax } from "../engine/sampler.ts";
import { loadCorpus, loadEvalSet, Rng } from "../data/index.ts";
import { median, quantile } from "../measure/stats.ts";
import { prefillCached, stepEvicting, type PrefixCache } from "./cache.ts";
import { openPrefixCache } from "./index.ts";
import { BLOCK_HASHES, blockHashFunction, type BlockHashName } from "./block-cache.ts";

export type Workload = "system-prompt" | "multi-turn" | "few-shot" | "unique";
export const WORKLOADS: readonly Workload[] = ["system-prompt", "multi-turn", "few-shot", "unique"];
export type BenchMethod = "none" | "block" | "radix" | "slot";

// =============================================================================================
// 1. Workloads: prompts as text, in the order they arrive

/** The chat transcripts: line 0 is the shared system prompt (919 tokens), then User:/Assistant: lines. */
function chatTranscripts(): string[][] {
  return loadCorpus("chat", "val").map((doc) => doc.split("\n"));
}

/**
 * (a) system-prompt: the system prompt + one varied user turn each;
 * (b) multi-turn: conversations whose every turn extends the previous prompt (interleaved: turn 1
 *     of each conversation, then turn 2 of each, …, so slots are contended);
 * (c) few-shot: 4 of 5 Q/A examples in a seeded order + a question (shared prefixes of any length:
 *     where token-granular radix matches and block-aligned hashing differ);
 * (d) unique: different documents, nothing shared (the overhead check).
 */
export function workloadPrompts(workload: Workload, requests: number, seed = 1): string[] {
  if (!Number.isInteger(requests) || requests < 1) throw new RangeError(`requests must be an integer >= 1, got ${requests}`);
  const rng = Rng.stream(seed, `prefix-bench:${workload}`);
  if (workload === "system-prompt") {
    const chats = chatTranscripts();
    return Array.from({ length: requests }, (_, i) => `${chats[i % chats.length][0]}\n${chats[i % chats.length][1]}\nAssistant:`);
  }
  if (workload === "multi-turn") {
    const chats = chatTranscripts();
    const conversations = Math.max(1, Math.min(chats.length, Math.ceil(requests / 3)));
    const out: string[] = [];
    for (let turn = 0; out.length < requests; turn++) {
      for (let c = 0; c < conversations && out.length < requests; c++) {
        const lines = chats[c];
        const userLine = 1 + 2 * (turn % Math.floor((lines.length - 1) / 2)); // wraps for very long runs
        out.push(`${lines.slice(0, userLine + 1).join("\n")}\nAssistant:`);
      }
    }
    return out;
  }
  if (workload === "few-shot") {
    const items = loadEvalSet("facts");
    const examples = items.slice(0, 5).map((x) => `${x.prompt} ${x.answer}`);
    return Array.from({ length: requests }, (_, i) => {
      const order = rng.shuffle([...examples]).slice(0, 4);
      return `${order.join("\n")}\n${items[5 + i].prompt}`;
    });
  }
  if (workload === "unique") {
    // ~3,000 characters (~700 tokens, as long as the chat prompts) of consecutive documents each,
    // starting 9 documents apart, so no two requests share more than the BOS token and chance words.
    const docs = loadCorpus("prose", "val");
    return Array.from({ length: requests }, (_, i) => {
      let text = "";
      for (let d = 9 * i; text.length < 3000; d++) text += docs[d % docs.length] + "\n";
      return `${text}(${i})`;
    });
  }
  throw new RangeError(`unknown workload "${workload}" (expected one of: ${WORKLOADS.join(", ")})`);
}

// =============================================================================================
// 2. Running one request under one method

interface RequestRun {
  ttftMs: number;
  promptTokens: number;
  cachedTokens: number;
  computedTokens: number;
  tokens: number[];
}

async function runRequest(engine: Engine, cache: PrefixCache | undefined, prompt: number[], decodeTokens: number): Promise<RequestRun> {
  const t0 = performance.now();
  const req = await prefillCached(engine, cache, prompt);
  const tokens = [argmax(req.logprobs)];
  const ttftMs = performance.now() - t0;
  try {
    for (let i = 1; i < decodeTokens && req.sequence.length < engine.contextSize; i++) {
      const r = await stepEvicting(engine, cache, req.sequence, [tokens[tokens.length - 1]]);
      tokens.push(argmax(r.logprobs[0]));
    }
  } finally {
    if (cache) await cache.release(req.sequence);
    else await req.sequence.free();
  }
  return { ttftMs, promptTokens: prompt.length, cachedTokens: req.cachedTokens, computedTokens: req.computedTokens, tokens };
}

// =============================================================================================
// 3. The benchmark

export interface PrefixBenchOptions {
  model: string;
  engine?: EngineName;
  workload?: Workload;
  requests?: number;
  /** Most blocks a block/radix cache holds (default: bounded by the pool only). */
  cacheBlocks?: number;
  blockSize?: number;
  /** Greedy tokens per request, the first included (default 4). */
  decodeTokens?: number;
  /** Live sequences per engine = the slot cache's slots (default 4). */
  slots?: number;
  /** The block cache's chained hash (default sha256). */
  hash?: BlockHashName;
  onProgress?: (line: string) => void;
}

export interface MethodReport {
  hitRate: number;
  ttftMs: { p50: number; p90: number };
  /** p50 TTFT of the requests this method served from cache ÷ p50 TTFT of the same requests with no cache. */
  ttftHitOverCold: number | null;
  /** Median over requests of this method's TTFT ÷ no cache's TTFT for the same prompt (paired: each
   *  request's length and moment cancel out, so it reads overhead more tightly than a ratio of p50s). */
  ttftOverNone: number;
  /** Requests with at least one cached token. */
  hitRequests: number;
  prefillTokens: number;
  cachedTokens: number;
  evictions: number;
  blocksHeld: number;
  /** Every greedy token equal to the no-cache run's. */
  sameTokensAsNone: boolean;
}

export async function runPrefixBench(opts: PrefixBenchOptions) {
  const engineName = opts.engine ?? "lab";
  const workload = opts.workload ?? "system-prompt";
  const requests = opts.requests ?? 8;
  const decodeTokens = opts.decodeTokens ?? 4;
  const slots = opts.slots ?? 4;
  const blockSize = opts.blockSize ?? 16;
  if (!WORKLOADS.includes(workload)) throw new RangeError(`unknown workload "${workload}" (expected one of: ${WORKLOADS.join(", ")})`);
  const hashName = opts.hash ?? "sha256";
  if (!BLOCK_HASHES.includes(hashName)) throw new RangeError(`unknown block hash "${hashName}" (expected one of: ${BLOCK_HASHES.join(", ")})`);
  const hash = await blockHashFunction(hashName);
  const texts = workloadPrompts(workload, requests);
  const methods: BenchMethod[] = engineName === "lab" ? ["none", "block", "radix", "slot"] : ["none", "slot"];
  const engines: Engine[] = [];
  try {
    for (let i = 0; i < methods.length; i++) {
      engines.push(await openEngine(engineName, opts.model, {
        contextSize: 2048, maxSequences: slots, threads: 1, ...(engineName === "lab" ? { kvBlockSize: blockSize } : {}),
      }));
    }
    const prompts = texts.map((t) => engines[0].tokenizer.encode(t, { bos: true }));
    const tooLong = prompts.findIndex((p) => p.length + decodeTokens > engines[0].contextSize);
    if (tooLong >= 0) throw new RangeError(`request ${tooLong} has ${prompts[tooLong].length} tokens: too long for the context of ${engines[0].contextSize}`);
    const caches: (PrefixCache | undefined)[] = methods.map((m, i) =>
      m === "none" ? undefined : openPrefixCache(m, engines[i], { capacityBlocks: opts.cacheBlocks, slots, hash }));
    // Warm each engine up (wasm compilation, first allocations) on a throwaway prompt, uncached.
    const warm = engines[0].tokenizer.encode("A warm-up prompt that no workload uses.", { bos: true });
    for (const e of engines) await runRequest(e, undefined, warm, 2);
    const runs: RequestRun[][] = methods.map(() => []);
    for (let r = 0; r < prompts.length; r++) {
      for (let k = 0; k < methods.length; k++) {
        const i = (r + k) % methods.length; // rotate who goes first: no method always runs on a cold CPU cache
        runs[i][r] = await runRequest(engines[i], caches[i], prompts[r], decodeTokens);
      }
      opts.onProgress?.(`request ${r + 1}/${prompts.length} (${prompts[r].length} tokens): ` +
        methods.map((m, i) => `${m} ${runs[i][r].ttftMs.toFixed(0)} ms${runs[i][r].cachedTokens ? ` (${runs[i][r].cachedTokens} cached)` : ""}`).join(", "));
    }
    const none = runs[0];
    const report: Record<string, MethodReport> = {};
    methods.forEach((m, i) => {
      const rs = runs[i];
      const stats = caches[i]?.stats();
      const hitIdx = rs.map((x, r) => (x.cachedTokens > 0 ? r : -1)).filter((r) => r >= 0);
      const ttfts = rs.map((x) => x.ttftMs);
      report[m] = {
        hitRate: stats ? stats.hitRate : 0,
        ttftMs: { p50: median(ttfts), p90: quantile(ttfts, 0.9) },
        ttftHitOverCold: hitIdx.length === 0 ? null : median(hitIdx.map((r) => rs[r].ttftMs)) / median(hitIdx.map((r) => none[r].ttftMs)),
        ttftOverNone: median(rs.map((x, r) => x.ttftMs / none[r].ttftMs)),
        hitRequests: hitIdx.length,
        prefillTokens: rs.reduce((s, x) => s + x.computedTokens, 0),
        cachedTokens: rs.reduce((s, x) => s + x.cachedTokens, 0),
        evictions: stats ? stats.evictedBlocks : 0,
        blocksHeld: stats ? stats.blocksHeld : 0,
        sameTokensAsNone: rs.every((x, r) => x.tokens.join() === none[r].tokens.join()),
      };
    });
    for (const c of caches) await c?.dispose();
    return {
      model: opts.model, engine: engineName, workload, requests: prompts.length, decodeTokens,
      blockSize: engineName === "lab" ? blockSize : 1, cacheBlocks: opts.cacheBlocks ?? null, slots, hash: hashName,
      promptTokens: { min: Math.min(...prompts.map((p) => p.length)), max: Math.max(...prompts.map((p) => p.length)) },
      node: process.version, date: new Date().toISOString(),
      note: "TTFT = lookup + prefill of the uncached rest + the first greedy token; methods interleaved per request on separate engines over one model; hitRate = cached prompt tokens / prompt tokens looked up in this run",
      methods: report,
      ...(engineName === "llama" ? { unavailable: { block: "llama.cpp shares no KV between sequences here (node-llama-cpp has no KV copy): no block or radix cache", radix: "as block" } } : {}),
    };
  } finally {
    for (const e of engines) await e.dispose();
  }
}

export type PrefixBenchReport = Awaited<ReturnType<typeof runPrefixBench>>;
