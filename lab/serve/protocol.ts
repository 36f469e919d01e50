// The messages between the HTTP thread (server.ts) and the engine worker (worker.ts).
//
// Why a worker: LabEngine computes on the JavaScript thread, and even llama.cpp's calls come back to
// it once per step, so an engine on the HTTP thread would make every request — /health included —
// wait for the step in flight. The worker owns the engines, the schedulers, the tokenizers and the
// prefix caches; the HTTP thread owns sockets, validation, SSE framing and the Prometheus registry.
// Text crosses the boundary, never tensors: a request goes in as a prompt (text or token ids) and
// comes back as text deltas, one message per scheduler step for every request that step touched.
//
// Reading order: what the worker is started with, HTTP → worker messages, worker → HTTP messages.
import type { EngineName } from "../engine/engine.ts";
import type { SchedulingMode } from "./scheduler.ts";

// ---------------------------------------------------------------------------------------------
// Starting the worker

export type PrefixCacheChoice = "block" | "radix" | "slot" | "off";
export const PREFIX_CACHE_CHOICES: readonly PrefixCacheChoice[] = ["block", "radix", "slot", "off"];

/** One model the service serves: a GGUF at one quantization level, under its OpenAI model id. */
export interface ModelEntry {
  /** The id clients put in `model`, e.g. "target-q4_k_m". */
  id: string;
  /** The GGUF file (a quantized copy from data/cache/quantization, or the source itself). */
  path: string;
  /** The llama-quantize name of the level ("Q4_K_M"), or "as stored". */
  level: string;
  /** The file it was made from. */
  source: string;
}

export interface WorkerConfig {
  models: ModelEntry[];
  engine: EngineName;
  /** Positions per sequence. */
  contextSize: number;
  /** Requests running at once per model (= the engine's sequences). */
  maxRunning: number;
  maxBatchTokens: number;
  /** LabEngine's KV pool, in blocks of kvBlockSize positions; undefined = room for maxRunning full contexts. */
  kvBlocks?: number;
  kvBlockSize: number;
  prefixCache: PrefixCacheChoice;
  mode: SchedulingMode;
  chunkedPrefill: boolean;
  /** Speculative decoding: a draft model entry (same vocabulary), or "ngram" (prompt lookup). */
  draft?: ModelEntry | "ngram";
  /** Draft tokens per step of a decoding request. */
  specK: number;
  threads: number;
  /** Testing hook: a request whose `user` is "lab-fault:throw-on-token" has its token callback throw. */
  faultInjection: boolean;
}

// ---------------------------------------------------------------------------------------------
// HTTP → worker

export interface SubmitMessage {
  type: "submit";
  /** Unique per request (the response id). */
  id: string;
  model: string;
  /** Text is tokenized with BOS in front; token ids are taken as they are. */
  prompt: { text: string } | { tokens: number[] };
  /** undefined: as many as the context leaves. */
  maxTokens?: number;
  temperature: number;
  topP: number;
  topK: number;
  seed: number;
  /** Generation stops when the text contains one of these; the stop string is not returned. */
  stop: string[];
  /** false: the end-of-sequence token does not end the request (vLLM's ignore_eos). */
  stopAtEos: boolean;
  /** Drop one leading space of the output (chat: "Assistant:" is followed by " text"). */
  trimLeadingSpace: boolean;
  fault?: "throw-on-token";
}

export type ToWorker =
  | SubmitMessage
  | { type: "cancel"; id: string }
  /** Stop taking requests; the worker answers "drained" once nothing is running, then exits on "exit". */
  | { type: "drain" }
  | { type: "exit" };

// ---------------------------------------------------------------------------------------------
// Worker → HTTP

export interface LoadedModel extends ModelEntry {
  engine: EngineName;
  contextSize: number;
  /** Bytes of weights the engine keeps resident, and of the GGUF file. */
  weightBytes: number;
  fileBytes: number;
  bitsPerWeight: number;
  kvBlocksTotal: number;
  kvBlockSize: number;
  kvBytesPerBlock: number;
  nVocab: number;
}

export type FinishReason = "stop" | "length" | "cancelled" | "error";

/** What happened to one request in one step. */
export interface RequestEvent {
  id: string;
  /** New text (may be empty: a token whose bytes are not yet a whole character, or a held-back
   *  possible start of a stop string). */
  text: string;
  /** Tokens generated in this step (more than one with speculative decoding). */
  tokens: number;
  finish?: FinishReason;
  error?: string;
  /** With `finish`: the usage the response reports. */
  usage?: { promptTokens: number; completionTokens: number; cachedTokens: number };
}

/** Per model, after each of its steps. */
export interface StepReport {
  model: string;
  running: number;
  waiting: number;
  kvBlocksUsed: number;
  kvBlocksFree: number;
  kvBlocksTotal: number;
  /** Counters since the last report (the HTTP thread adds them to Prometheus counters). */
  prefixQueryTokens: number;
  prefixHitTokens: number;
  preemptions: number;
  specDrafts: number;
  specDraftTokens: number;
  specAcceptedTokens: number;
  prefillTokens: number;
  decodeTokens: number;
  rows: number;
  stepMs: number;
}

export type FromWorker =
  | { type: "ready"; models: LoadedModel[] }
  | { type: "fatal"; message: string }
  | { type: "accepted"; id: string; promptTokens: number }
  | { type: "rejected"; id: string; status: number; message: string; param?: string; code?: string }
  | { type: "step"; report: StepReport; events: RequestEvent[]; memory: WorkerMemory }
  | { type: "drained" };

export interface WorkerMemory {
  /** Whole process. */
  rssBytes: number;
  /** The worker's own V8 heap. */
  heapUsedBytes: number;
}
