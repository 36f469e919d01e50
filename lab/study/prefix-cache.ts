// The measurements behind notebooks/03-prefix-caching.ipynb, one function per question the notebook
// asks. Reading order:
//   1. models       the model under study, and a stand-in for the pure accounting experiments
//   2. exactness    a cached prompt gives the cold prompt's distributions and greedy tokens
//   3. block size   what block alignment costs: partial blocks, and shared runs shorter than a block
//   4. capacity     hit rate against cache capacity under LRU eviction
//   5. TTFT         cold vs cached against the shared prefix length, and what the arithmetic predicts
//   6. memory       KV bytes per token, and chat sessions per KV budget with and without sharing
//   7. timings      TTFT is a timing: it never goes into committed files unless asked for
//
// Why a stand-in model: which tokens a cache reuses, how many blocks it holds and what it evicts
// depend only on the prompts' token ids and the pool's block accounting, never on the weights. The
// stand-in has the studied model's vocabulary and tokenizer but 1 layer of width 32 and random
// weights, so sweeps over many configurations cost seconds; the notebook runs one configuration on
// both models and shows the counts are equal.
import { existsSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { KvCacheFullError, openEngine, type Engine, type EngineOptions, type Sequence } from "../engine/engine.ts";
import { argmax } from "../engine/sampler.ts";
import { loadCorpus } from "../data/index.ts";
import { mulberry32 } from "../random.ts";
import { openGguf, writeGguf, type LlamaHparams } from "../gguf/index.ts";
import { kv, type GgufKv } from "../gguf/format.ts";
import { syntheticLlama } from "../model/synthetic.ts";
import { median } from "../measure/stats.ts";
import { prefillCached, type PrefixCache } from "../prefix-cache/cache.ts";
import { openPrefixCache } from "../prefix-cache/index.ts";
import { BlockHashCache } from "../prefix-cache/block-cache.ts";
import { saveFigure } from "../plot/index.ts";
import { writeCsv } from "../table.ts";
import { REPO_ROOT, TIMINGS_DIR, timingPolicy, writingResults } from "./quantization.ts";
import { MODELS, findKvFormat } from "../capacity/tables.ts";
import { kvBytesPerToken as capacityKvBytesPerToken } from "../capacity/memory.ts";

export const PREFIX_FIGURE_NAMES = {
  ttft: "prefix-ttft-vs-shared-prefix",
  capacity: "prefix-hit-rate-vs-capacity",
  blockSize: "prefix-block-size",
  sessions: "prefix-sessions-per-budget",
} as const;

export const PREFIX_CACHE_DIR = join(REPO_ROOT, "data", "cache", "prefix-cache");
export const PREFIX_BENCH_JSON = join(REPO_ROOT, "data", "results", "prefix-cache.json");

// =============================================================================================
// 1. Models

/**
 * Writes (once per studied model's tokenizer) a 1-layer, width-32 random llama with the studied
 * model's tokenizer and vocabulary: data/cache/prefix-cache/stand-in-<vocab>.gguf. → its path.
 */
export async function prefixStandIn(modelPath: string, dir = PREFIX_CACHE_DIR): Promise<string> {
  const file = await openGguf(modelPath);
  const tokenizerKvs = [...file.metadata.values()].filter((m) => m.key.startsWith("tokenizer."));
  const tokens = file.metadata.get("tokenizer.ggml.tokens")?.value as string[] | undefined;
  if (!tokens) throw new Error(`${modelPath} has no tokenizer.ggml.tokens: cannot build a stand-in with its vocabulary`);
  const nVocab = tokens.length;
  const stamp = createStamp(tokens);
  const path = join(dir, `stand-in-${nVocab}-${stamp}.gguf`);
  if (existsSync(path)) return path;
  await mkdir(dir, { recursive: true });
  const nEmbd = 32;
  const small = syntheticLlama({ seed: 7, nEmbd, nFf: 64, nHead: 2, nKvHead: 1, nLayer: 1, nCtx: 4096 });
  const metadata: GgufKv[] = small.metadata
    .filter((m) => !m.key.startsWith("tokenizer."))
    .map((m) => (m.key === "llama.vocab_size" ? kv.u32(m.key, nVocab) : m))
    .concat(tokenizerKvs);
  const rand = mulberry32(7);
  const tensors = small.tensors.map((t) => {
    if (t.name !== "token_embd.weight" && t.name !== "output.weight") return t;
    const data = Float32Array.from({ length: nEmbd * nVocab }, () => (rand() * 2 - 1) / Math.sqrt(nEmbd));
    return { name: t.name, ne: [nEmbd, nVocab], data };
  });
  await writeGguf(path, {
    metadata,
    tensors: tensors.map((t) => ({ name: t.name, type: "F32" as const, ne: t.ne, data: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) })),
  });
  return path;
}

/** A short stable tag of a vocabulary (so a retrained tokenizer gets its own stand-in). */
function createStamp(tokens: readonly string[]): string {
  let h = 2166136261;
  for (const t of tokens) for (let i = 0; i < t.length; i++) h = Math.imul(h ^ t.charCodeAt(i), 16777619) >>> 0;
  return h.toString(16).padStart(8, "0");
}

/** LabEngine on `path`, one thread, a 2,048-position context unless told otherwise. */
export function openLab(path: string, opts: EngineOptions = {}): Promise<Engine> {
  return openEngine("lab", path, { threads: 1, contextSize: 2048, maxSequences: 4, ...opts });
}

/** Token ids of each text, BOS first. */
export function encodeAll(engine: Engine, texts: readonly string[]): number[][] {
  return texts.map((t) => engine.tokenizer.encode(t, { bos: true }));
}

/** Runs each prompt through the cache in order (prefill only, released at once) → the cache's stats. */
export async function replay(engine: Engine, cache: PrefixCache, prompts: readonly number[][]): Promise<ReturnType<PrefixCache["stats"]> & { perRequest: number[] }> {
  const perRequest: number[] = [];
  for (const p of prompts) {
    const r = await prefillCached(engine, cache, p);
    perRequest.push(r.cachedTokens);
    await cache.release(r.sequence);
  }
  return { ...cache.stats(), perRequest };
}

// =============================================================================================
// 2. Exactness: cached and cold runs of one prompt

export interface ExactnessRow {
  method: string;
  promptTokens: number;
  cachedTokens: number;
  /** largest |log p(cached) − log p(cold)| over every vocabulary entry of every generated position */
  maxAbsLogprobDiff: number;
  sameGreedyTokens: boolean;
  greedyTokens: number;
}

/** Greedy `n` tokens after the prompt, with every distribution. */
async function greedyRows(engine: Engine, cache: PrefixCache | undefined, prompt: readonly number[], n: number) {
  const req = await prefillCached(engine, cache, prompt);
  const rows = [req.logprobs];
  const tokens = [argmax(req.logprobs)];
  for (let i = 1; i < n; i++) {
    const [row] = await req.sequence.evaluate([tokens[i - 1]!]);
    rows.push(row!);
    tokens.push(argmax(row!));
  }
  if (cache) await cache.release(req.sequence);
  else await req.sequence.free();
  return { rows, tokens, cachedTokens: req.cachedTokens };
}

/**
 * `warm` goes through each cache first; then `probe` (sharing a prefix with it) runs cached and
 * cold on the same engine, and every distribution of `n` greedy steps is compared.
 */
export async function cachedVersusCold(engine: Engine, warm: readonly number[], probe: readonly number[], n = 8,
  methods: readonly ("block" | "radix" | "slot")[] = ["block", "radix", "slot"]): Promise<ExactnessRow[]> {
  const cold = await greedyRows(engine, undefined, probe, n);
  const out: ExactnessRow[] = [];
  for (const method of methods) {
    const cache = openPrefixCache(method, engine, { slots: 1 });
    const w = await prefillCached(engine, cache, warm);
    await cache.release(w.sequence);
    const hot = await greedyRows(engine, cache, probe, n);
    let diff = 0;
    hot.rows.forEach((row, r) => {
      for (let v = 0; v < row.length; v++) if (row[v] !== cold.rows[r]![v]) diff = Math.max(diff, Math.abs(row[v]! - cold.rows[r]![v]!));
    });
    out.push({ method, promptTokens: probe.length, cachedTokens: hot.cachedTokens, maxAbsLogprobDiff: diff,
      sameGreedyTokens: hot.tokens.join() === cold.tokens.join(), greedyTokens: n });
    await cache.dispose();
  }
  return out;
}

// =============================================================================================
// 3. Block size: alignment losses

/** Σ over requests of the longest prefix shared with ANY earlier request (capped at length − 1): what
 *  an unbounded token-granular cache can reuse. Brute force over pairs. */
export function reusableTokens(prompts: readonly number[][]): number {
  let total = 0;
  prompts.forEach((p, i) => {
    let best = 0;
    for (let j = 0; j < i; j++) {
      const q = prompts[j]!;
      let k = 0;
      while (k < p.length && k < q.length && p[k] === q[k]) k++;
      best = Math.max(best, k);
    }
    total += Math.min(best, p.length - 1);
  });
  return total;
}

export interface BlockSizeRow {
  workload: string;
  blockSize: number;
  method: "block" | "radix";
  queryTokens: number;
  hitTokens: number;
  hitRate: number;
  /** the same for a token-granular, unbounded cache (the most any method can reuse here) */
  reusableRate: number;
  /** mean unused positions in a sequence's last block: (B − len mod B) mod B */
  partialSlotsPerPrompt: number;
}

/** Every workload under block and radix caches on engines of each block size (unbounded capacity). */
export async function blockSizeStudy(modelPath: string, workloads: Record<string, number[][]>, blockSizes: readonly number[] = [16, 64, 256]): Promise<BlockSizeRow[]> {
  const rows: BlockSizeRow[] = [];
  for (const B of blockSizes) {
    const engine = await openLab(modelPath, { kvBlockSize: B, maxSequences: 2 });
    try {
      for (const [workload, prompts] of Object.entries(workloads)) {
        const reusable = reusableTokens(prompts);
        const queryTokens = prompts.reduce((s, p) => s + p.length, 0);
        const partial = prompts.reduce((s, p) => s + ((B - (p.length % B)) % B), 0) / prompts.length;
        for (const method of ["block", "radix"] as const) {
          const cache = openPrefixCache(method, engine);
          const stats = await replay(engine, cache, prompts);
          rows.push({ workload, blockSize: B, method, queryTokens, hitTokens: stats.hitTokens, hitRate: stats.hitRate,
            reusableRate: reusable / queryTokens, partialSlotsPerPrompt: partial });
          await cache.dispose();
        }
      }
    } finally {
      await engine.dispose();
    }
  }
  return rows;
}

// =============================================================================================
// 4. Hit rate against capacity, under eviction

/**
 * Document QA: `docs` prose documents of ~`docChars` characters each, asked about with Zipf(1)
 * popularity (document d with probability ∝ 1/(d+1)), one short question each: a working set the
 * cache can hold fully, partly or not at all. Seeded.
 */
export function documentWorkload(requests: number, docs = 8, seed = 3, docChars = 1200): string[] {
  const prose = loadCorpus("prose", "val");
  const texts = Array.from({ length: docs }, (_, d) => {
    let t = "";
    for (let i = 5 * d; t.length < docChars; i++) t += prose[i % prose.length] + "\n";
    return t;
  });
  const weights = texts.map((_, d) => 1 / (d + 1));
  const total = weights.reduce((a, b) => a + b, 0);
  const rng = mulberry32(seed);
  return Array.from({ length: requests }, (_, i) => {
    let u = rng() * total, d = 0;
    while (u >= weights[d]! && d < docs - 1) u -= weights[d++]!;
    return `${texts[d]}Q${i}: What happened next?`;
  });
}

export interface CapacityRow {
  method: "block" | "radix";
  capacityBlocks: number;
  hitRate: number;
  hitTokens: number;
  evictedBlocks: number;
}

/** The prompts under block and radix caches bounded to each capacity (in KV blocks). */
export async function capacitySweep(modelPath: string, prompts: readonly number[][], capacities: readonly number[], blockSize = 16): Promise<CapacityRow[]> {
  const engine = await openLab(modelPath, { kvBlockSize: blockSize, maxSequences: 2 });
  const rows: CapacityRow[] = [];
  try {
    for (const method of ["block", "radix"] as const) {
      for (const capacityBlocks of capacities) {
        const cache = openPrefixCache(method, engine, { capacityBlocks });
        const s = await replay(engine, cache, prompts);
        rows.push({ method, capacityBlocks, hitRate: s.hitRate, hitTokens: s.hitTokens, evictedBlocks: s.evictedBlocks });
        await cache.dispose();
      }
    }
  } finally {
    await engine.dispose();
  }
  return rows;
}

// =============================================================================================
// 5. TTFT against the shared prefix length

/**
 * Multiply-adds to prefill `computed` tokens after `cached` ones: the weight matrices per token
 * (q, k, v, o, gate, up, down in every layer), attention over every earlier position (QKᵀ and
 * the weighted sum of V, per query head), and the output head once, for the last token.
 */
export function prefillMultiplyAdds(hp: LlamaHparams, cached: number, computed: number): number {
  const q = hp.nHead * hp.headDim, kvDim = hp.nKvHead * hp.headDim;
  const perToken = hp.nLayer * (hp.nEmbd * q + 2 * hp.nEmbd * kvDim + q * hp.nEmbd + 3 * hp.nEmbd * hp.nFf);
  // Σ_{p=cached}^{cached+computed−1} (p + 1) earlier-or-same positions, 2 products each, per head and layer.
  const positions = computed * cached + (computed * (computed + 1)) / 2;
  return computed * perToken + 2 * hp.nLayer * hp.nHead * hp.headDim * positions + hp.nEmbd * hp.nVocab;
}

export interface TtftRow {
  sharedTokens: number;
  promptTokens: number;
  /** prompt tokens evaluated on a hit (the rest of the last shared block, plus the suffix) */
  computedOnHit: number;
  /** share of the prompt a hit reuses */
  cachedShare: number;
  /** 1 − multiply-adds on a hit ÷ multiply-adds cold: the saving the arithmetic predicts */
  predictedSaving: number;
  /** medians over the repeats (NaN when not measured) */
  coldMs: number;
  cachedMs: number;
}

/**
 * For each shared prefix length L: prompts of L shared tokens (text from the corpus, so realistic
 * ids) and a `suffixTokens`-token private suffix. Cold = prefill of the whole prompt on a fresh
 * sequence; cached = a block-cache hit on the prefix (another request with that prefix went first)
 * and prefill of the rest. Times are medians of `repeats` interleaved runs; with measure false only
 * the arithmetic columns are filled.
 */
export async function ttftSweep(modelPath: string, lengths: readonly number[], opts: { suffixTokens?: number; repeats?: number; measure?: boolean; blockSize?: number } = {}): Promise<TtftRow[]> {
  const suffixTokens = opts.suffixTokens ?? 32;
  const repeats = opts.repeats ?? 3;
  const blockSize = opts.blockSize ?? 16;
  const engine = await openLab(modelPath, { kvBlockSize: blockSize, maxSequences: 4 });
  try {
    const hp = engine.hparams;
    const text = loadCorpus("prose", "val").join("\n");
    const pool = engine.tokenizer.encode(text, { bos: true });
    const suffixPool = engine.tokenizer.encode(loadCorpus("prose", "train").slice(0, 200).join("\n"), { bos: false });
    const maxShared = Math.min(engine.contextSize - suffixTokens - 1, pool.length);
    const rows: TtftRow[] = [];
    for (const wanted of lengths) {
      const L = Math.min(wanted, maxShared);
      const prefix = pool.slice(0, L);
      const suffix = (k: number) => suffixPool.slice(k * suffixTokens, (k + 1) * suffixTokens);
      const prompt = (k: number) => (L === 0 ? [pool[0]!, ...suffix(k).slice(1)] : [...prefix, ...suffix(k)]);
      const promptTokens = prompt(0).length;
      const cachedOnHit = L === 0 ? 0 : Math.floor(Math.min(L, promptTokens - 1) / blockSize) * blockSize;
      const computedOnHit = promptTokens - cachedOnHit;
      const predictedSaving = 1 - prefillMultiplyAdds(hp, cachedOnHit, computedOnHit) / prefillMultiplyAdds(hp, 0, promptTokens);
      const cold: number[] = [], hot: number[] = [];
      if (opts.measure) {
        const cache = new BlockHashCache(engine);
        await cache.release((await prefillCached(engine, cache, prompt(0))).sequence);
        for (let r = 0; r < repeats; r++) {
          const p = prompt(r + 1);
          for (const which of r % 2 === 0 ? ["cold", "hot"] : ["hot", "cold"]) {
            const t0 = performance.now();
            const req = await prefillCached(engine, which === "hot" ? cache : undefined, p);
            argmax(req.logprobs);
            (which === "hot" ? hot : cold).push(performance.now() - t0);
            if (which === "hot") await cache.release(req.sequence);
            else await req.sequence.free();
          }
        }
        await cache.dispose();
      }
      rows.push({ sharedTokens: L, promptTokens, computedOnHit, cachedShare: cachedOnHit / promptTokens, predictedSaving,
        coldMs: cold.length ? median(cold) : NaN, cachedMs: hot.length ? median(hot) : NaN });
    }
    return rows;
  } finally {
    await engine.dispose();
  }
}

/** The committed benchmark (bench/prefix-cache.ts → data/results/prefix-cache.json), or undefined. */
export async function committedPrefixBench(path = PREFIX_BENCH_JSON): Promise<PrefixBenchFile | undefined> {
  if (!existsSync(path)) return undefined;
  return JSON.parse(await readFile(path, "utf8")) as PrefixBenchFile;
}

export interface PrefixBenchFile {
  aims: { aim: string; value: number | boolean | null; met: boolean }[];
  runs: { engine: string; workload: string; methods: Record<string, { hitRate: number; ttftHitOverCold: number | null; ttftOverNone: number; ttftMs: { p50: number } }> }[];
  machine?: { cpus: number; loadavg1m: number };
}

// =============================================================================================
// 6. Memory: sessions per KV budget

/** Bytes of K and V per token: 2 × layers × KV heads × head dim × bytes per element. */
export function kvBytesPerToken(hp: LlamaHparams, bytesPerElement = 4): number {
  return 2 * hp.nLayer * hp.nKvHead * hp.headDim * bytesPerElement;
}

export interface SessionCount {
  budgetBlocks: number;
  /** sessions that fit, each holding its own copy of everything */
  withoutSharing: number;
  /** sessions that fit when the shared prefix's full blocks are held once */
  withSharing: number;
}

/** Sessions (taken in order) that fit `budgetBlocks` blocks of `blockSize`: each session needs
 *  ceil(len / B) blocks alone; with sharing, the first floor(shared / B) blocks are paid once. */
export function sessionsInBudget(sessionLengths: readonly number[], sharedTokens: number, blockSize: number, budgetBlocks: number): SessionCount {
  const fit = (cost: (len: number) => number, upfront: number) => {
    let used = upfront, n = 0;
    for (const len of sessionLengths) {
      if (used + cost(len) > budgetBlocks) break;
      used += cost(len);
      n++;
    }
    return n;
  };
  // A hit leaves at least one token to compute, so a session of exactly `shared` tokens shares one block less.
  const sharedBlocks = Math.min(Math.floor(sharedTokens / blockSize), ...sessionLengths.map((len) => Math.floor((len - 1) / blockSize)));
  const own = (len: number) => Math.ceil(len / blockSize);
  const rest = (len: number) => own(len) - sharedBlocks;
  return { budgetBlocks, withoutSharing: fit(own, 0), withSharing: fit(rest, sharedBlocks) };
}

export interface ScaledSessions {
  model: string;
  kvFormat: string;
  kvBytesPerToken: number;
  budgetBytes: number;
  withoutSharing: number;
  withSharing: number;
}

/**
 * The same arithmetic for a published model (lab/capacity's sourced configs): sessions of
 * `systemTokens` shared + `ownTokens` private tokens in a KV budget of `budgetBytes`, blocks of B.
 */
export function scaledSessions(modelKey: string, kvFormat: "fp16" | "fp8", budgetBytes: number, systemTokens: number, ownTokens: number, blockSize = 16): ScaledSessions {
  const m = MODELS.find((x) => x.key === modelKey);
  if (!m) throw new RangeError(`unknown model "${modelKey}"; known: ${MODELS.map((x) => x.key).join(", ")}`);
  const bpt = capacityKvBytesPerToken(m, findKvFormat(kvFormat));
  const blockBytes = blockSize * bpt;
  const budgetBlocks = Math.floor(budgetBytes / blockBytes);
  const len = systemTokens + ownTokens;
  const shared = Math.min(Math.floor(systemTokens / blockSize), Math.floor((len - 1) / blockSize));
  const own = Math.ceil(len / blockSize);
  return {
    model: m.name, kvFormat, kvBytesPerToken: bpt, budgetBytes,
    withoutSharing: Math.floor(budgetBlocks / own),
    withSharing: budgetBlocks < own ? 0 : Math.floor((budgetBlocks - shared) / (own - shared)),
  };
}

/** The same count measured on a pool of `budgetBlocks` blocks: sessions are prefilled and kept
 *  live, without a cache and then through a block cache, until the pool is full. */
export async function sessionsOnPool(modelPath: string, sessions: readonly number[][], budgetBlocks: number, blockSize = 16): Promise<SessionCount> {
  const count = async (withCache: boolean) => {
    const engine = await openLab(modelPath, { kvBlockSize: blockSize, kvBlocks: budgetBlocks, maxSequences: Math.max(1, sessions.length) });
    const cache = withCache ? new BlockHashCache(engine) : undefined;
    const live: Sequence[] = [];
    try {
      for (const s of sessions) {
        try {
          live.push((await prefillCached(engine, cache, s)).sequence);
        } catch (err) {
          if (err instanceof KvCacheFullError) break;
          throw err;
        }
      }
      return live.length;
    } finally {
      await engine.dispose();
    }
  };
  return { budgetBlocks, withoutSharing: await count(false), withSharing: await count(true) };
}

// =============================================================================================
// 7. Timings stay out of committed files (the policy of lab/study/quantization.ts)

export { timingPolicy };

/** Saves the TTFT figure: data/results/timings/ always (git-ignored, never under vitest), and the
 *  committed notebooks/figures/ copy only when timings were asked for (`npm start -- --with-timings`). */
export function saveTtftFigure(svg: string): string[] {
  if (!writingResults()) return [];
  const written = [saveFigure(PREFIX_FIGURE_NAMES.ttft, svg, { dir: TIMINGS_DIR }).svg];
  if (timingPolicy().saveFigure) written.push(saveFigure(PREFIX_FIGURE_NAMES.ttft, svg, { dir: join(REPO_ROOT, "notebooks", "figures") }).svg);
  return written;
}

/** The TTFT rows as CSV in data/results/timings/prefix-ttft.csv (git-ignored), except under vitest. */
export function writeTtftCsv(rows: readonly TtftRow[]): string | undefined {
  if (!writingResults() || rows.every((r) => Number.isNaN(r.coldMs))) return undefined;
  const path = join(TIMINGS_DIR, "prefix-ttft.csv");
  writeCsv(path, rows.map((r) => ({ shared_tokens: r.sharedTokens, prompt_tokens: r.promptTokens, cold_ms: r.coldMs, cached_ms: r.cachedMs, predicted_saving: r.predictedSaving })));
  return path;
}
