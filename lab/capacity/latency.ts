// How fast? A roofline: each phase takes the longer of its compute time and its memory time.
//
//   prefill FLOPs  = 2 × matmul params × promptTokens  +  attention 2 × layers × promptTokens² × heads × headDim
//                    (QKᵀ and PV, 2 FLOPs per multiply-add, causal: half the square)
//   prefill time   = max(FLOPs ÷ (TP × FLOP/s × MFU), weight bytes ÷ TP ÷ (bandwidth × MBU)) + TP communication
//   decode step    = max((weight bytes ÷ TP + KV bytes read per GPU) ÷ (bandwidth × MBU),
//                        2 × matmul params × batch ÷ TP ÷ (FLOP/s × MFU)) + TP communication
//   TPOT           = decode step ÷ speculative speedup
//   TTFT           = queue wait + prefill × (1 − prefix-cached share)
//
// A decode step reads every weight once for the whole batch, so it is memory-bound until the batch
// does enough arithmetic per byte: the crossover batch is FLOP/s ÷ bandwidth × bytes per parameter ÷ 2
// (H100 SXM, BF16: 989.5e12 ÷ 3.35e12 × 2 ÷ 2 ≈ 295 sequences; 4-bit weights cut it by 4×).
//
// "weight bytes" here are the bytes a pass streams: all but the embedding table (only its rows are read).
//
// TP communication: two all-reduces per layer (after attention and after the FFN) of the activations
// (tokens × hidden × 2 bytes). A ring all-reduce sends 2 × (TP−1)/TP of the buffer over each GPU's
// link; a fixed latency per all-reduce is an input (default 0: we found no source to cite for it).
import type { GpuSpec, KvFormat, ModelSpec, WeightFormat } from "./tables.ts";
import { DEFAULTS, matmulParameters, streamedWeightBytes } from "./tables.ts";
import { CapacityError, checkTensorParallel, kvBytesPerTokenPerGpu } from "./memory.ts";

/** Peak tensor FLOP/s for a format's matmuls: FP8/INT8 where the GPU has them, else BF16 (weight-only dequantization). */
export function peakFlops(gpu: GpuSpec, format: WeightFormat): { flops: number; math: string } {
  if (format.compute === "fp8" && gpu.denseFp8Flops) return { flops: gpu.denseFp8Flops, math: "FP8" };
  if (format.compute === "int8" && gpu.denseInt8Ops) return { flops: gpu.denseInt8Ops, math: "INT8" };
  return { flops: gpu.denseBf16Flops, math: format.compute === "bf16" ? "BF16" : `BF16 (no ${format.compute.toUpperCase()} on ${gpu.name})` };
}

/** The batch at which a decode step turns compute-bound: FLOP/s ÷ bandwidth × bytes per parameter ÷ 2 (scaled by MFU/MBU when given). */
export function crossoverBatch(flops: number, bandwidth: number, bytesPerParameter: number, mfu = 1, mbu = 1): number {
  return ((flops * mfu) / (bandwidth * mbu)) * (bytesPerParameter / 2);
}

export function prefillFlops(m: ModelSpec, promptTokens: number): number {
  return 2 * matmulParameters(m) * promptTokens + 2 * m.layers * promptTokens * promptTokens * m.heads * m.headDim;
}

/** Seconds of tensor-parallel all-reduces for one forward pass over `tokens` tokens. */
export function tpCommunicationSeconds(m: ModelSpec, gpu: GpuSpec, tp: number, tokens: number, allReduceLatencyS = 0): number {
  if (tp === 1) return 0;
  if (!gpu.interconnectBandwidth) throw new CapacityError(`${gpu.name}: no interconnect bandwidth in the table, cannot model ${tp}-way tensor parallelism`);
  const bytes = tokens * m.hidden * 2; // FP16 activations
  const perAllReduce = (2 * (tp - 1) / tp) * bytes / gpu.interconnectBandwidth + allReduceLatencyS;
  return 2 * m.layers * perAllReduce;
}

export interface LatencyInput {
  model: ModelSpec;
  gpu: GpuSpec;
  format: WeightFormat;
  kv: KvFormat;
  tp: number;
  promptTokens: number;
  outputTokens: number;
  /** sequences decoding together (continuous batching) */
  concurrency: number;
  mfu?: number;
  mbu?: number;
  /** seconds a request waits before its prefill starts (from the queueing model) */
  queueWaitS?: number;
  /** share of the prompt found in a prefix cache, in [0, 1) */
  cachedShare?: number;
  /** measured speculative-decoding speedup of TPOT (≥ 1; 1 = none) */
  speculativeSpeedup?: number;
  allReduceLatencyS?: number;
}

export interface LatencyEstimate {
  prefillMs: number;
  ttftMs: number;
  tpotMs: number;
  e2eMs: number;
  /** output tokens per second of one replica with `concurrency` sequences decoding */
  decodeTokensPerSecond: number;
  /** requests per second one replica completes, each slot serving one request per (e2e − queue wait) */
  requestsPerSecond: number;
  decodeBound: "memory" | "compute";
  crossoverBatch: number;
  math: string;
  terms: { prefillComputeMs: number; prefillMemoryMs: number; decodeMemoryMs: number; decodeComputeMs: number; prefillCommMs: number; decodeCommMs: number };
}

function fraction(name: string, v: number, lo: number, hiOpen: number): number {
  if (!(v >= lo && v < hiOpen) || !Number.isFinite(v)) throw new CapacityError(`${name} must be in [${lo}, ${hiOpen}), got ${v}`);
  return v;
}

export function estimateLatency(input: LatencyInput): LatencyEstimate {
  const { model, gpu, format, kv, tp, promptTokens, outputTokens, concurrency } = input;
  checkTensorParallel(model, tp);
  const mfu = input.mfu ?? DEFAULTS.mfu.value;
  const mbu = input.mbu ?? DEFAULTS.mbu.value;
  if (!(mfu > 0 && mfu <= 1) || !(mbu > 0 && mbu <= 1)) throw new CapacityError(`MFU and MBU must be in (0, 1], got ${mfu} and ${mbu}`);
  const cached = fraction("cachedShare", input.cachedShare ?? 0, 0, 1);
  const speedup = input.speculativeSpeedup ?? 1;
  if (!(speedup >= 1)) throw new CapacityError(`speculative speedup must be ≥ 1, got ${speedup}`);
  const queueWaitS = input.queueWaitS ?? 0;
  if (!(promptTokens >= 1) || !(outputTokens >= 1)) throw new CapacityError(`prompt and output tokens must be ≥ 1`);

  const { flops, math } = peakFlops(gpu, format);
  const weights = streamedWeightBytes(model, format); // bytes each forward pass reads
  const bandwidth = gpu.memoryBandwidth * mbu;
  const compute = flops * mfu;

  // Prefill of one request, alone (the cached share is simply not recomputed).
  const prefillTokens = Math.max(1, Math.round(promptTokens * (1 - cached)));
  const prefillComputeS = prefillFlops(model, prefillTokens) / tp / compute;
  const prefillMemoryS = weights / tp / bandwidth;
  const prefillCommS = tpCommunicationSeconds(model, gpu, tp, prefillTokens, input.allReduceLatencyS);
  const prefillS = Math.max(prefillComputeS, prefillMemoryS) + prefillCommS;

  // Decode: the average sequence is halfway through its output.
  const meanContext = promptTokens + outputTokens / 2;
  const kvReadBytes = concurrency * meanContext * kvBytesPerTokenPerGpu(model, kv, tp);
  const decodeMemoryS = (weights / tp + kvReadBytes) / bandwidth;
  const attentionFlops = 4 * model.layers * meanContext * model.heads * model.headDim * concurrency;
  const decodeComputeS = (2 * matmulParameters(model) * concurrency + attentionFlops) / tp / compute;
  const decodeCommS = tpCommunicationSeconds(model, gpu, tp, concurrency, input.allReduceLatencyS);
  const stepS = Math.max(decodeMemoryS, decodeComputeS) + decodeCommS;
  const tpotS = stepS / speedup;

  const ttftS = queueWaitS + prefillS;
  const e2eS = ttftS + tpotS * (outputTokens - 1);
  const bytesPerParameter = weights / matmulParameters(model);
  return {
    prefillMs: prefillS * 1e3,
    ttftMs: ttftS * 1e3,
    tpotMs: tpotS * 1e3,
    e2eMs: e2eS * 1e3,
    decodeTokensPerSecond: concurrency / tpotS,
    requestsPerSecond: concurrency / (e2eS - queueWaitS), // a slot is busy from prefill to last token, not while the request waits
    decodeBound: decodeComputeS > decodeMemoryS ? "compute" : "memory",
    crossoverBatch: crossoverBatch(flops, gpu.memoryBandwidth, bytesPerParameter, mfu, mbu),
    math,
    terms: {
      prefillComputeMs: prefillComputeS * 1e3, prefillMemoryMs: prefillMemoryS * 1e3, prefillCommMs: prefillCommS * 1e3,
      decodeMemoryMs: decodeMemoryS * 1e3, decodeComputeMs: decodeComputeS * 1e3, decodeCommMs: decodeCommS * 1e3,
    },
  };
}
