// The Engine interface: what every inference engine in the lab offers, so that the measurement
// harness, speculative decoding, the prefix cache, the batcher and the service can be written once
// and run on our TypeScript engine (LabEngine) or on llama.cpp (LlamaCppEngine) alike.
//
// Reading order: the options to open an engine, the tokenizer and memory figures an engine exposes,
// the Sequence (one stream of tokens with its own KV state), the Engine itself, then the errors.
//
// Distributions are log-probabilities, never raw logits: llama.cpp (through node-llama-cpp) hands
// out normalised probabilities only, and log-softmax loses nothing a sampler, a perplexity or a KL
// divergence needs (softmax(log p / T) == softmax(logits / T)). Every row is a Float32Array of
// nVocab natural-log probabilities.
import type { LlamaHparams } from "../gguf/index.ts";

// ---------------------------------------------------------------------------------------------
// Opening an engine

export type EngineName = "lab" | "llama";
export const ENGINE_NAMES: readonly EngineName[] = ["lab", "llama"];

export interface EngineOptions {
  /** Token positions each sequence can hold. Default: min(the model's training context, 2048). */
  contextSize?: number;
  /** Sequences that can be alive at once (each owns a KV cache of contextSize positions). Default 4. */
  maxSequences?: number;
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
  /** KV bytes holding live positions right now (all sequences). */
  kvBytesInUse: number;
  /** KV bytes allocated (all sequence slots created so far). */
  kvBytesAllocated: number;
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
  /** A new sequence holding the same prefix (positions 0..n-1, default all). LabEngine copies the KV
   *  rows; llama.cpp (no copy API in node-llama-cpp) re-evaluates the prefix in the new sequence. */
  fork(n?: number): Promise<Sequence>;
  /** Releases the KV slot; the sequence cannot be used afterwards. Idempotent. */
  free(): Promise<void>;
}

export interface DecodeStep {
  sequence: Sequence;
  token: number;
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
   * One decode step for a batch: appends steps[i].token to steps[i].sequence (all distinct
   * sequences) in ONE forward pass and returns each sequence's next-token distribution, in order.
   */
  decode(steps: DecodeStep[]): Promise<Float32Array[]>;
  memory(): MemoryReport;
  /** Frees every sequence and the model. Idempotent. */
  dispose(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Errors: bad input is reported in words, and nothing is left half-loaded.

export class EngineError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EngineError";
  }
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

/** Peak resident set size of this process in bytes (Linux reports maxRSS in KiB). */
export function peakRssBytes(): number {
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
