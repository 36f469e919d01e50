// Tasks 3.6–3.8 — plan a 70B deployment before buying GPUs: memory under tensor parallelism, the
// roofline's TTFT and TPOT, and the cheapest deployment that meets an SLO.
// Read notebooks/05-serving-a-70b-model.ipynb §3.6–§3.8 first. Hints: exercises/serving/HINTS.md.
// Grade with `npm run grade -- 3.6` (or 3.7, 3.8). Do not import lab/capacity (the kit's own planner):
// the grader refuses it.
import { NotImplementedError } from "../../lab/errors.ts";

// ─── Task 3.6: memory fit with tensor parallelism ────────────────────────────────────────────────

/** A llama-style decoder's shape, as its config.json gives it. */
export interface ModelShape {
  /** total parameters, e.g. 68.98e9 for Llama-2-70B */
  parameters: number;
  layers: number;
  attentionHeads: number;
  /** key/value heads (grouped-query attention: fewer than attentionHeads) */
  kvHeads: number;
  headDim: number;
  /** the longest context the model supports, tokens */
  maxContext: number;
}

export interface TpConfig {
  /** average bits per weight of the format (FP16 16, FP8 8, AWQ 4-bit with group-128 scales ≈ 4.156) */
  bitsPerWeight: number;
  /** bytes per KV-cache element (FP16 2, FP8 1) */
  kvBytesPerElement: number;
  /** GPUs one replica is split over (tensor parallelism) */
  tensorParallel: number;
  /** memory of ONE GPU, in GB (10^9 bytes) */
  gpuMemoryGB: number;
  /** fraction of each GPU's memory kept free for activations and the runtime, in [0, 1) */
  headroom: number;
  /** tokens of KV cache per sequence */
  context: number;
  /** sequences resident at once */
  sequences: number;
}

export interface TpMemoryPlan {
  /** parameters × bitsPerWeight / 8 / tensorParallel */
  weightBytesPerGpu: number;
  /** max(1, kvHeads / tensorParallel): past kvHeads GPUs every GPU keeps a copy of one KV head */
  kvHeadsPerGpu: number;
  /** 2 × layers × kvHeadsPerGpu × headDim × kvBytesPerElement */
  kvBytesPerTokenPerGpu: number;
  /** kvBytesPerTokenPerGpu × context × sequences */
  kvBytesPerGpu: number;
  /** gpuMemoryGB × 1e9 × (1 − headroom) */
  usableBytesPerGpu: number;
  /** weightBytesPerGpu + kvBytesPerGpu */
  totalBytesPerGpu: number;
  /** totalBytesPerGpu ≤ usableBytesPerGpu */
  fits: boolean;
  /** floor((usable − weights) / (kvBytesPerTokenPerGpu × context)), never below 0 */
  maxSequences: number;
}

/**
 * Task 3.6a — can `tp` GPUs split this model's attention? Each GPU takes attentionHeads / tp query
 * heads and whole KV heads, so throw a RangeError (naming "tensorParallel") unless
 *   tp is a positive integer, tp divides attentionHeads, and tp divides kvHeads or kvHeads divides tp.
 * Llama-2-70B (64 heads, 8 KV heads): 1, 2, 4, 8, 16, 32, 64 pass; 3 fails (64 % 3 ≠ 0).
 */
export function checkTensorParallel(model: ModelShape, tp: number): void {
  throw new NotImplementedError("Task 3.6 — see notebooks/05-serving-a-70b-model.ipynb §3.6");
}

/**
 * Task 3.6b — memory per GPU of one replica split over `tensorParallel` GPUs:
 *   weightBytesPerGpu     = parameters × bitsPerWeight / 8 / tensorParallel
 *   kvHeadsPerGpu         = max(1, kvHeads / tensorParallel)       (past kvHeads GPUs, KV heads are copied)
 *   kvBytesPerTokenPerGpu = 2 × layers × kvHeadsPerGpu × headDim × kvBytesPerElement
 *   kvBytesPerGpu         = kvBytesPerTokenPerGpu × context × sequences
 *   usableBytesPerGpu     = gpuMemoryGB × 1e9 × (1 − headroom)
 *   totalBytesPerGpu      = weightBytesPerGpu + kvBytesPerGpu;  fits ⇔ totalBytesPerGpu ≤ usableBytesPerGpu
 *   maxSequences          = floor((usableBytesPerGpu − weightBytesPerGpu) / (kvBytesPerTokenPerGpu × context)), at least 0
 * Throw a RangeError (naming the field) for a TP checkTensorParallel refuses, a context that is not a
 * positive integer or exceeds model.maxContext, sequences not a positive integer, headroom ∉ [0, 1),
 * or a non-positive parameters / bitsPerWeight / kvBytesPerElement / gpuMemoryGB.
 * Check: Llama-2-70B in FP16 at TP 2 holds 68.98 GB of weights per GPU, and 163,840 B of KV per token.
 */
export function tpMemoryPlan(model: ModelShape, c: TpConfig): TpMemoryPlan {
  throw new NotImplementedError("Task 3.6 — see notebooks/05-serving-a-70b-model.ipynb §3.6");
}

/**
 * Task 3.6c — the smallest TP among `candidates` (default 1, 2, 4, 8; any order) that can split the
 * heads (skip, do not throw for, one checkTensorParallel refuses) and whose plan fits; null if none.
 */
export function smallestTensorParallel(model: ModelShape, c: Omit<TpConfig, "tensorParallel">, candidates: number[] = [1, 2, 4, 8]): number | null {
  throw new NotImplementedError("Task 3.6 — see notebooks/05-serving-a-70b-model.ipynb §3.6");
}

// ─── Task 3.7: TTFT and TPOT from the roofline ───────────────────────────────────────────────────

/** One replica: a model's streamed bytes and FLOPs against its GPUs' peaks. */
export interface Roofline {
  /** parameters every token multiplies with (all but the embedding table) */
  parameters: number;
  /** bytes per parameter of the weights a forward pass streams (FP16 2, FP8 1, 4-bit ≈ 0.52) */
  bytesPerParameter: number;
  /** KV-cache bytes per token of context for the whole model (all layers, all KV heads) */
  kvBytesPerToken: number;
  /** dense tensor FLOP/s of ONE GPU */
  peakFlops: number;
  /** memory bandwidth of ONE GPU, bytes/s */
  memoryBandwidth: number;
  /** fraction of peak FLOP/s reached, in (0, 1] */
  mfu: number;
  /** fraction of peak bandwidth reached, in (0, 1] */
  mbu: number;
  /** GPUs the work and the bytes are split over */
  tensorParallel: number;
}

export interface PhaseTime {
  computeS: number;
  memoryS: number;
  /** max(computeS, memoryS) */
  seconds: number;
  /** "compute" when computeS > memoryS, else "memory" */
  bound: "compute" | "memory";
}

/**
 * Task 3.7a — one prompt's prefill on one replica, the longer of compute and memory:
 *   computeS = 2 × parameters × promptTokens / (tensorParallel × peakFlops × mfu)
 *   memoryS  = parameters × bytesPerParameter / (tensorParallel × memoryBandwidth × mbu)
 *   seconds = max(computeS, memoryS); bound = "compute" if computeS > memoryS, else "memory".
 * (Attention FLOPs and tensor-parallel communication are left out here; lab/capacity adds them.)
 * RangeError for promptTokens ≤ 0, mfu or mbu ∉ (0, 1], tensorParallel not a positive integer, or
 * non-positive parameters / bytesPerParameter / peakFlops / memoryBandwidth, or kvBytesPerToken < 0.
 */
export function prefillTime(r: Roofline, promptTokens: number): PhaseTime {
  throw new NotImplementedError("Task 3.7 — see notebooks/05-serving-a-70b-model.ipynb §3.7");
}

/**
 * Task 3.7b — one decode step of `batch` sequences whose KV caches hold `contextTokens` tokens each:
 *   computeS = 2 × parameters × batch / (tensorParallel × peakFlops × mfu)
 *   memoryS  = (parameters × bytesPerParameter + batch × contextTokens × kvBytesPerToken)
 *              / (tensorParallel × memoryBandwidth × mbu)
 * Every step streams all the weights once for the whole batch: that is why batching is nearly free
 * until the step turns compute-bound. RangeError as in prefillTime, and for a batch that is not a
 * positive integer or contextTokens < 0.
 */
export function decodeStepTime(r: Roofline, batch: number, contextTokens: number): PhaseTime {
  throw new NotImplementedError("Task 3.7 — see notebooks/05-serving-a-70b-model.ipynb §3.7");
}

/**
 * Task 3.7c — the batch at which a decode step turns compute-bound (KV reads left out):
 *   peakFlops × mfu / (memoryBandwidth × mbu) × bytesPerParameter / 2
 * H100 SXM, BF16 weights, mfu = mbu: 989.5e12 / 3.35e12 × 2 / 2 ≈ 295.
 */
export function crossoverBatch(r: Roofline): number {
  throw new NotImplementedError("Task 3.7 — see notebooks/05-serving-a-70b-model.ipynb §3.7");
}

export interface LatencyRequest {
  promptTokens: number;
  outputTokens: number;
  /** sequences decoding together */
  batch: number;
  /** seconds waited before the prefill starts (default 0) */
  queueWaitS?: number;
  /** share of the prompt served from a prefix cache, in [0, 1) (default 0) */
  cachedShare?: number;
  /** measured TPOT speedup of speculative decoding, ≥ 1 (default 1) */
  speculativeSpeedup?: number;
}

export interface RequestLatency {
  ttftS: number;
  tpotS: number;
  e2eS: number;
}

/**
 * Task 3.7d — one request's latency; each optimization of notebooks 01–04 is one term:
 *   ttftS = queueWaitS + prefillTime(r, promptTokens × (1 − cachedShare)).seconds   (prefix cache)
 *   tpotS = decodeStepTime(r, batch, promptTokens + outputTokens / 2).seconds / speculativeSpeedup
 *   e2eS  = ttftS + (outputTokens − 1) × tpotS
 * (the average sequence is halfway through its output). Defaults: queueWaitS 0, cachedShare 0,
 * speculativeSpeedup 1. RangeError for queueWaitS < 0, cachedShare ∉ [0, 1), speculativeSpeedup < 1,
 * outputTokens ≤ 0 (and what prefillTime / decodeStepTime refuse).
 */
export function requestLatency(r: Roofline, q: LatencyRequest): RequestLatency {
  throw new NotImplementedError("Task 3.7 — see notebooks/05-serving-a-70b-model.ipynb §3.7");
}

// ─── Task 3.8: the cheapest deployment that meets the SLO ────────────────────────────────────────

export interface DeploymentOption {
  name: string;
  /** GPUs in one replica */
  gpusPerReplica: number;
  /** price of one GPU for one hour */
  gpuHourUsd: number;
  /** does one replica hold its weights and KV cache? */
  fits: boolean;
  /** time to first token and time per output token of one replica at its batch */
  ttftS: number;
  tpotS: number;
  /** requests per second one replica completes at that batch */
  requestsPerSecond: number;
}

export interface Slo {
  ttftS: number;
  tpotS: number;
}

export interface Load {
  requestsPerSecond: number;
  /** the highest share of a replica's throughput we plan to use (queueing headroom), in (0, 1] */
  maxUtilisation: number;
}

export type DeploymentChoice =
  | { ok: true; name: string; replicas: number; gpus: number; usdPerHour: number }
  | { ok: false; reason: string };

/**
 * Task 3.8 — the cheapest deployment meeting the SLO at the offered load:
 *   (1) keep the options that fit, then those with ttftS ≤ slo.ttftS, then those with tpotS ≤ slo.tpotS;
 *   (2) for each, replicas = ceil(load.requestsPerSecond / (load.maxUtilisation × requestsPerSecond))
 *       (a ratio within 1e-12 of an integer counts as that integer), gpus = replicas × gpusPerReplica,
 *       usdPerHour = gpus × gpuHourUsd;
 *   (3) return the lowest usdPerHour; ties go to fewer GPUs, then to the lower ttftS.
 * When nothing qualifies return { ok: false, reason } saying which filter emptied the list:
 *   - no options at all → a reason containing "no options";
 *   - none fits → a reason containing "memory";
 *   - none meets the TTFT SLO → a reason containing "TTFT" and the name of the fitting option with the lowest ttftS;
 *   - none of those meets the TPOT SLO → a reason containing "TPOT" and the name of the lowest-tpotS option among them.
 * RangeError for requestsPerSecond ≤ 0 or maxUtilisation ∉ (0, 1].
 */
export function chooseDeployment(options: DeploymentOption[], slo: Slo, load: Load): DeploymentChoice {
  throw new NotImplementedError("Task 3.8 — see notebooks/05-serving-a-70b-model.ipynb §3.8");
}
