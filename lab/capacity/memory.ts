// Does it fit? GPU memory per GPU = weights ÷ TP + KV cache per GPU + runtime headroom.
//
// KV cache: every token of every sequence keeps a key and a value vector per layer per KV head:
//   kvBytesPerToken = 2 × layers × kvHeads × headDim × bytesPerElement
// (Llama-2-70B, FP16: 2 × 80 × 8 × 128 × 2 = 327,680 bytes), × context × concurrent sequences.
// Tensor parallelism splits attention heads across GPUs: each GPU holds heads/TP query heads and
// kvHeads/TP KV heads; with TP > kvHeads every GPU keeps one KV head (replicated, as vLLM does), so
// KV memory per GPU stops shrinking there.
import type { GpuSpec, KvFormat, ModelSpec, WeightFormat } from "./tables.ts";
import { DEFAULTS, weightBytes } from "./tables.ts";

export class CapacityError extends Error {}

export function kvBytesPerToken(m: ModelSpec, kv: KvFormat): number {
  return 2 * m.layers * m.kvHeads * m.headDim * kv.bytesPerElement;
}

/** Throws unless TP can split this model's heads: TP divides the query heads, and TP and the KV heads divide one another. */
export function checkTensorParallel(m: ModelSpec, tp: number): void {
  if (!Number.isInteger(tp) || tp < 1) throw new CapacityError(`tensor-parallel size must be a positive integer, got ${tp}`);
  if (m.heads % tp !== 0) {
    const ok = divisors(m.heads).filter((d) => m.kvHeads % d === 0 || d % m.kvHeads === 0);
    throw new CapacityError(`${m.name}: ${tp} GPUs do not divide its ${m.heads} attention heads; tensor parallelism can use ${ok.join(", ")}`);
  }
  if (m.kvHeads % tp !== 0 && tp % m.kvHeads !== 0) {
    throw new CapacityError(`${m.name}: ${tp} GPUs and its ${m.kvHeads} KV heads do not divide one another (each GPU must hold whole KV heads)`);
  }
}

function divisors(n: number): number[] {
  const out: number[] = [];
  for (let d = 1; d <= n; d++) if (n % d === 0) out.push(d);
  return out;
}

/** KV heads each GPU holds under TP (replicated once TP exceeds the KV heads). */
export function kvHeadsPerGpu(m: ModelSpec, tp: number): number {
  checkTensorParallel(m, tp);
  return Math.max(1, m.kvHeads / tp);
}

export function kvBytesPerTokenPerGpu(m: ModelSpec, kv: KvFormat, tp: number): number {
  return 2 * m.layers * kvHeadsPerGpu(m, tp) * m.headDim * kv.bytesPerElement;
}

export interface MemoryInput {
  model: ModelSpec;
  gpu: GpuSpec;
  format: WeightFormat;
  kv: KvFormat;
  /** tensor-parallel GPUs in one replica */
  tp: number;
  /** tokens per sequence (prompt + output) the cache must hold */
  context: number;
  /** sequences resident at once */
  concurrency: number;
  /** fraction of each GPU's memory held back for activations and the runtime */
  headroom?: number;
}

export interface MemoryPlan {
  weightsBytes: number;
  kvBytesPerToken: number;
  kvBytes: number;
  headroomBytes: number;
  totalBytes: number;
  perGpu: { weightsBytes: number; kvBytes: number; headroomBytes: number; totalBytes: number; capacityBytes: number };
  fits: boolean;
  /** the most sequences of `context` tokens that fit beside the weights (0 if the weights alone do not) */
  maxConcurrency: number;
  /** the longest context `concurrency` sequences can each have, capped at the model's maximum */
  maxContext: number;
}

/** Checks the context against the model, then adds up memory per GPU and overall. */
export function planMemory(input: MemoryInput): MemoryPlan {
  const { model, gpu, format, kv, tp, context, concurrency } = input;
  const headroom = input.headroom ?? DEFAULTS.headroom.value;
  checkTensorParallel(model, tp);
  if (!Number.isInteger(context) || context < 1) throw new CapacityError(`context must be a positive integer, got ${context}`);
  if (context > model.maxContext) throw new CapacityError(`${model.name}: context ${context} exceeds its maximum of ${model.maxContext} tokens`);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new CapacityError(`concurrency must be a positive integer, got ${concurrency}`);
  if (!(headroom >= 0 && headroom < 1)) throw new CapacityError(`headroom must be a fraction in [0, 1), got ${headroom}`);

  const weights = weightBytes(model, format);
  const perToken = kvBytesPerToken(model, kv);
  const perTokenGpu = kvBytesPerTokenPerGpu(model, kv, tp);
  const headroomGpu = headroom * gpu.memoryBytes;
  const weightsGpu = weights / tp; // every matrix, embeddings included, is sharded (vLLM's VocabParallelEmbedding)
  const kvGpu = perTokenGpu * context * concurrency;
  const totalGpu = weightsGpu + kvGpu + headroomGpu;
  const freeForKv = gpu.memoryBytes - headroomGpu - weightsGpu;
  return {
    weightsBytes: weights,
    kvBytesPerToken: perToken,
    kvBytes: perTokenGpu * tp * context * concurrency,
    headroomBytes: headroomGpu * tp,
    totalBytes: totalGpu * tp,
    perGpu: { weightsBytes: weightsGpu, kvBytes: kvGpu, headroomBytes: headroomGpu, totalBytes: totalGpu, capacityBytes: gpu.memoryBytes },
    fits: totalGpu <= gpu.memoryBytes,
    maxConcurrency: Math.max(0, Math.floor(freeForKv / (perTokenGpu * context))),
    maxContext: Math.max(0, Math.min(model.maxContext, Math.floor(freeForKv / (perTokenGpu * concurrency)))),
  };
}
