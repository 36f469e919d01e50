// The Engine interface: what every inference engine in the lab offers, so that the measurement
// harness, speculative decoding, the prefix cache, the batcher and the service can be written once
// and run on our TypeScript engine (LabEngine) or on llama.cpp (LlamaCppEngine) alike.
//
// Reading order: the options to open an engine, the tokenizer and memory figures an engine exposes,
// the Sequence (one stream of tokens with its own KV state), one mixed batch step, paged KV blocks
// (how a prefix cache keeps keys and values alive past a sequence), the Engine itself, the errors.
//
// Distributions are log-probabilities, never raw logits: llama.cpp (through node-llama-cpp) hands
// out normalised probabilities only, and log-softmax loses nothing a sampler, a perplexity or a KL
// divergence needs (softmax(log p / T) == softmax(logits / T)). Every row is a Float32Array of
// nVocab natural-log probabilities.
import { readFileSync } from "node:fs";
import type { LlamaHparams } from "../gguf/index.ts";
import type { Sampler } from "./sampler.ts";

// ---------------------------------------------------------------------------------------------
// Opening an engine

export type EngineName = "lab" | "llama";
export const ENGINE_NAMES: readonly EngineName[] = ["lab", "llama"];

export interface EngineOptions {
  /** Token positions each sequence can hold. Default: min(the model's training context, 2048). */
  contextSize?: number;
  /** Sequences that can be alive at once. Default 4. */
  maxSequences?: number;
  /** LabEngine: token positions per KV block (a power of two, at most contextSize). Default 16.
   *  llama.cpp keeps KV in cells of one token; its memory report says so. */
  kvBlockSize?: number;
  /** LabEngine: KV blocks in the pool shared by every sequence (and a prefix cache).
   *  Default: enough for maxSequences × contextSize, ceil(contextSize / kvBlockSize) × maxSequences. */
  kvBlocks?: number;
  /** CPU threads. llama.cpp's own default (>= 4) is ~100x slower on 2 cores, so we always set it.
   *  LabEngine computes on one thread whatever this says. Default 1. */
  threads?: number;
  /** llama.cpp only: F32 KV cache and flash attention off, for bit-level comparisons. Default true. */
  exact?: boolean;
  /** LabEngine only: "simd" runs F32 and Q8_0 products in WebAssembly SIMD (default where
   *  available); "js" keeps every product in plain TypeScript (the readable baseline). */
  kernels?: "simd" | "js";
  /** LabEngine only: "f32" (default) keeps activations in F32, so a quantized file gives exactly
   *  its dequantized weights' results; "llama" rounds each matrix's input the way llama.cpp's CPU
   *  backend does first (fp16 for F16 weights, bf16 for BF16, 8-bit blocks of 32 for Q4_0…Q8_0,
   *  8-bit blocks of 256 (Q8_K) for k-quants), to show what that rounding costs. */
  activations?: "f32" | "llama";
}

// ---------------------------------------------------------------------------------------------
// What an engine exposes besides sequences

export interface EngineTokenizer {
  readonly vocabSize: number;
  readonly bosId: number;
  readonly eosId: number;
  /** Text → token ids; `bos: true` (default) prepends the BOS token. */
  encode(text: string, opts?: { bos?: boolean }): number[];
  decode(ids: number[]): string;
}

export interface MemoryReport {
  /** Bytes of the GGUF file on disk. */
  fileBytes: number;
  /** Bytes of all tensors as stored in the GGUF (the lower bound on resident weights). */
  tensorBytes: number;
  /** Weight bytes the engine actually keeps resident (LabEngine: sum of its typed arrays;
   *  llama.cpp: the model's reported size). */
  weightBytes: number;
  /** Weight bits per parameter: 8 × tensorBytes / parameters. */
  bitsPerWeight: number;
  /** KV cache bytes for one token position of one sequence, as allocated by the engine. */
  kvBytesPerToken: number;
  /** The textbook formula: 2 (K and V) × layers × kvHeads × headDim × bytes per element. */
  kvBytesPerTokenFormula: number;
  /** KV bytes held right now: blocks in use × bytesPerBlock, a block shared by several sequences
   *  (or a cache) counted once. llama.cpp: cells holding a token × bytes per cell. */
  kvBytesInUse: number;
  /** KV bytes allocated for the whole pool (LabEngine) or context (llama.cpp). */
  kvBytesAllocated: number;
  /** The KV pool in blocks. */
  kv: KvReport;
  /** process.memoryUsage().rss now, and the process's peak RSS so far (whole process). */
  rssBytes: number;
  peakRssBytes: number;
}

// ---------------------------------------------------------------------------------------------
// Sequences: one stream of tokens with its own KV state

export interface Sequence {
  /** Small integer, unique among live sequences of its engine. */
  readonly id: number;
  /** Tokens whose keys and values are in the cache, in order (position i holds tokens[i]). */
  readonly tokens: readonly number[];
  /** Same as tokens.length: the position the next token goes to. */
  readonly length: number;
  /**
   * Appends tokens (one forward pass, blocked matrix–matrix products) and returns the next-token
   * distribution after each of them when `all` is set, else only after the last one.
   * Verifying k draft tokens: evaluate([last, d1..dk], { all: true }) gives the k+1 distributions.
   */
  evaluate(tokens: number[], opts?: { all?: boolean }): Promise<Float32Array[]>;
  /** Shorthand for evaluate(tokens) → the distribution after the last token. */
  prefill(tokens: number[]): Promise<Float32Array>;
  /** Drops every position >= n (n <= length); speculative decoding rolls rejected tokens back. */
  truncate(n: number): Promise<void>;
  /** A new sequence holding the same prefix (positions 0..n-1, default all). LabEngine shares the
   *  prefix's KV blocks; llama.cpp (no KV copy API in node-llama-cpp) copies the sequence's state
   *  through a state file on tmpfs, then truncates to n. */
  fork(n?: number): Promise<Sequence>;
  /** Releases the KV slot; the sequence cannot be used afterwards. Idempotent. */
  free(): Promise<void>;
}

export interface DecodeStep {
  sequence: Sequence;
  token: number;
}

// ---------------------------------------------------------------------------------------------
// One mixed step: prefill chunks, single decode tokens and k-token verifications of many sequences
// in ONE forward pass (the matrix products run over every row of every item together; attention
// runs per sequence over its own positions). A scheduler builds one step per iteration.

/** Which next-token distributions an item wants back: none (a prefill chunk: the output head is
 *  skipped for its rows), the one after its last token, or one after each of its tokens (verifying
 *  k draft tokens: [last, d1..dk] gives k+1 rows). "argmax": no distributions, but the greedy next
 *  token after EACH of its tokens (StepResult.argmax) — all that greedy verification needs, without
 *  building k+1 full rows (llama.cpp then picks every token natively, no probability Map at all). */
export type StepOutput = "none" | "last" | "all" | "argmax";

export interface StepItem {
  sequence: Sequence;
  /** Tokens appended to the sequence, in order (at least one). */
  tokens: number[];
  /** Default "last". */
  output?: StepOutput;
  /** Draws the next token after the last one with this sampler (the caller keeps one per stream,
   *  so a seeded sampler's draws continue across steps). With a greedy sampler and output "none",
   *  llama.cpp picks the token natively and no distribution is built at all. */
  sample?: Sampler;
}

export interface StepResult {
  /** The rows `output` asked for, in token order: [] for "none", 1 for "last", tokens.length for "all". */
  logprobs: Float32Array[];
  /** The sampled next token, when the item gave a sampler. */
  token?: number;
  /** output "argmax": the highest-scoring next token after each of the item's tokens, in token
   *  order (ties: the lowest id). The logits' argmax: log-softmax is monotonic, so it is the rows'
   *  argmax up to float rounding of exact near-ties. */
  argmax?: number[];
}

// ---------------------------------------------------------------------------------------------
// Paged KV (LabEngine; PagedAttention's design). Keys and values live in one pool of fixed-size
// blocks of `blockSize` positions. Each sequence has a block table (position p lives in block
// table[p / blockSize] at slot p % blockSize) and every block a reference count: the number of
// sequences whose tables hold it, plus the references taken with retain().
//
// Invariants (the tests check them after every operation):
// - a block is on the free list exactly when its count is 0; blocksUsed + blocksFree == blocksTotal;
// - a block with count > 1 is never written: a sequence about to append into a shared block copies
//   it first (copy-on-write), so a shared block's contents never change;
// - fork(n) shares the n / blockSize full blocks and copies the partial last block, if any;
// - truncate(n) and free() drop the table's references; a block whose count reaches 0 returns to
//   the free list (its contents are garbage from then on).
// A prefix cache keeps a finished request's blocks alive by retain()ing them before the sequence is
// freed, and starts a later request from them with adopt(); it release()s them when it evicts.

export interface KvReport {
  /** Token positions per block (1 for llama.cpp's cells). */
  blockSize: number;
  blocksTotal: number;
  /** Blocks with a reference count > 0. */
  blocksUsed: number;
  /** Blocks with a reference count > 1 (held by several sequences or by a sequence and a cache). */
  blocksShared: number;
  blocksFree: number;
  /** K and V bytes of one block, all layers. */
  bytesPerBlock: number;
  /** What this engine cannot report exactly, in words (llama.cpp), else absent. */
  note?: string;
}

export interface PagedKv {
  readonly blockSize: number;
  /** The block table of a live sequence: ids of the blocks holding its positions, in order. */
  blockIds(sequence: Sequence): readonly number[];
  refCount(blockId: number): number;
  /** The free blocks, in the order they will be handed out (freed blocks join the back). */
  freeQueue(): readonly number[];
  /** Takes one more reference on each block (they must be in use). */
  retain(blockIds: readonly number[]): void;
  /** Drops one reference taken with retain() from each block. */
  release(blockIds: readonly number[]): void;
  /**
   * A new sequence holding `tokens`, whose keys and values are already in `blockIds`
   * (ceil(tokens.length / blockSize) blocks, in order; each gains a reference). The caller vouches
   * that the blocks hold exactly these tokens' keys and values (a cache checks token equality).
   */
  adopt(blockIds: readonly number[], tokens: readonly number[]): Promise<Sequence>;
}

// ---------------------------------------------------------------------------------------------
// The engine

export interface Engine {
  readonly name: EngineName;
  /** The GGUF this engine was loaded from. */
  readonly path: string;
  readonly hparams: LlamaHparams;
  readonly tokenizer: EngineTokenizer;
  /** Positions per sequence. */
  readonly contextSize: number;
  readonly maxSequences: number;
  readonly threads: number;
  createSequence(): Promise<Sequence>;
  /**
   * One forward pass over every item's tokens (distinct sequences; see StepItem). All or nothing: a
   * bad item (freed or foreign sequence, the same sequence twice, ids outside the vocabulary, a
   * context or pool that would overflow) throws EngineError / KvCacheFullError before anything is
   * written, and every sequence keeps its tokens and length.
   */
  step(items: StepItem[]): Promise<StepResult[]>;
  /**
   * One decode step for a batch: appends steps[i].token to steps[i].sequence (all distinct
   * sequences) in ONE forward pass and returns each sequence's next-token distribution, in order.
   * A thin wrapper over step().
   */
  decode(steps: DecodeStep[]): Promise<Float32Array[]>;
  /** Paged KV blocks a prefix cache can share (LabEngine); undefined where the engine cannot share
   *  KV between sequences (llama.cpp through node-llama-cpp has no KV copy). */
  readonly kv?: PagedKv;
  memory(): MemoryReport;
  /** Frees every sequence and the model. Idempotent. */
  dispose(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Errors: bad input is reported in words, and nothing is left half-loaded.

// Errors are matched by a global brand, not by prototype: in a notebook kernel this file is loaded
// twice (require() for the cells and the kit's static imports, import() for the engines openEngine
// loads lazily), so an engine's KvCacheFullError would not be `instanceof` the other copy's class and
// a prefix cache or scheduler catching it would miss a full pool.
const ENGINE_ERROR = Symbol.for("inference-lab/EngineError");
const KV_CACHE_FULL = Symbol.for("inference-lab/KvCacheFullError");
const hasBrand = (x: unknown, brand: symbol) => typeof x === "object" && x !== null && (x as Record<symbol, unknown>)[brand] === true;

export class EngineError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EngineError";
    Object.defineProperty(this, ENGINE_ERROR, { value: true });
  }

  static [Symbol.hasInstance](x: unknown): boolean {
    return hasBrand(x, ENGINE_ERROR);
  }
}

/** Out of KV blocks: nothing was written, every sequence keeps its tokens (a scheduler preempts
 *  a request, or a cache evicts, and tries again). */
export class KvCacheFullError extends EngineError {
  constructor(readonly blocksNeeded: number, readonly blocksFree: number) {
    super(`the KV pool is full: this step needs ${blocksNeeded} more block(s), ${blocksFree} free`);
    this.name = "KvCacheFullError";
    Object.defineProperty(this, KV_CACHE_FULL, { value: true });
  }

  static [Symbol.hasInstance](x: unknown): boolean {
    return hasBrand(x, KV_CACHE_FULL);
  }
}

/** Checks a step's items before anything runs: each sequence passes `own` (belongs to this engine,
 *  not freed), appears once, and its tokens pass checkTokens. */
export function checkStepItems<S extends Sequence>(items: StepItem[], nVocab: number, contextSize: number,
  own: (sequence: Sequence) => S): S[] {
  const seen = new Set<Sequence>();
  return items.map((item, i) => {
    const seq = own(item.sequence);
    if (seen.has(seq)) throw new EngineError(`step: sequence ${seq.id} appears twice in one step (item ${i})`);
    seen.add(seq);
    if (!Array.isArray(item.tokens)) throw new EngineError(`step: item ${i} has no tokens array`);
    const output = item.output ?? "last";
    if (output !== "none" && output !== "last" && output !== "all" && output !== "argmax") throw new EngineError(`step: item ${i} has output "${output}" (expected none, last, all or argmax)`);
    checkTokens(item.tokens, nVocab, seq.length, contextSize);
    return seq;
  });
}

/** Checks a span before it is evaluated: not empty, valid ids, fits the context. */
export function checkTokens(tokens: number[], nVocab: number, used: number, contextSize: number): void {
  if (tokens.length === 0) throw new EngineError("empty prompt: nothing to evaluate");
  for (const t of tokens) {
    if (!Number.isInteger(t) || t < 0 || t >= nVocab) throw new EngineError(`token id ${t} is outside the vocabulary [0, ${nVocab})`);
  }
  if (used + tokens.length > contextSize) {
    throw new EngineError(`${used + tokens.length} tokens do not fit the context of ${contextSize} positions (prompt too long)`);
  }
}

/**
 * Peak resident set size of this process in bytes. On Linux it is /proc/self/status's VmHWM, the
 * high-water mark of this program's own memory: getrusage's maxRSS carries over through fork and
 * exec, so a small process started by a large one (bench/engine.ts measuring each engine alone in
 * a child) would report its parent's peak. Elsewhere maxRSS (KiB).
 */
export function peakRssBytes(): number {
  try {
    const hwm = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync("/proc/self/status", "utf8"));
    if (hwm) return Number(hwm[1]) * 1024;
  } catch {
    // not Linux: fall through
  }
  return process.resourceUsage().maxRSS * 1024;
}

/** 2 × layers × kvHeads × headDim × bytesPerElement. */
export function kvBytesPerTokenFormula(hp: LlamaHparams, bytesPerElement: number): number {
  return 2 * hp.nLayer * hp.nKvHead * hp.headDim * bytesPerElement;
}

/** Opens a model with the named engine. Unknown names are a clear error, not a crash. */
export async function openEngine(name: string, path: string, opts: EngineOptions = {}): Promise<Engine> {
  if (name === "lab") {
    const { LabEngine } = await import("./lab-engine.ts");
    return LabEngine.load(path, opts);
  }
  if (name === "llama") {
    const { LlamaCppEngine } = await import("./llama-engine.ts");
    return LlamaCppEngine.load(path, opts);
  }
  throw new EngineError(`unknown engine "${name}" (expected one of: ${ENGINE_NAMES.join(", ")})`);
}
