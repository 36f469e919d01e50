// Reference solutions for tasks 3.6–3.8 — capacity planning for a 70B model
// (notebooks/05-serving-a-70b-model.ipynb §3.6–§3.8). The formulas are written out in
// exercises/serving/capacity.ts; this file is what `npm test` and `npm run check:kit` grade.

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

function positiveInteger(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${v}`);
}

function positive(name: string, v: number): void {
  if (!(v > 0) || !Number.isFinite(v)) throw new RangeError(`${name} must be a positive number, got ${v}`);
}

/** Throws a RangeError unless `tp` GPUs can split the model's heads. */
export function checkTensorParallel(model: ModelShape, tp: number): void {
  positiveInteger("tensorParallel", tp);
  if (model.attentionHeads % tp !== 0) throw new RangeError(`tensorParallel ${tp} does not divide the ${model.attentionHeads} attention heads`);
  if (model.kvHeads % tp !== 0 && tp % model.kvHeads !== 0) {
    throw new RangeError(`tensorParallel ${tp} and the ${model.kvHeads} KV heads do not divide one another`);
  }
}

export function tpMemoryPlan(model: ModelShape, c: TpConfig): TpMemoryPlan {
  checkTensorParallel(model, c.tensorParallel);
  positive("parameters", model.parameters);
  positive("bitsPerWeight", c.bitsPerWeight);
  positive("kvBytesPerElement", c.kvBytesPerElement);
  positive("gpuMemoryGB", c.gpuMemoryGB);
  if (!(c.headroom >= 0 && c.headroom < 1)) throw new RangeError(`headroom must be in [0, 1), got ${c.headroom}`);
  positiveInteger("context", c.context);
  if (c.context > model.maxContext) throw new RangeError(`context ${c.context} exceeds the model's maxContext ${model.maxContext}`);
  positiveInteger("sequences", c.sequences);

  const weightBytesPerGpu = (model.parameters * c.bitsPerWeight) / 8 / c.tensorParallel;
  const kvHeadsPerGpu = Math.max(1, model.kvHeads / c.tensorParallel);
  const kvBytesPerTokenPerGpu = 2 * model.layers * kvHeadsPerGpu * model.headDim * c.kvBytesPerElement;
  const kvBytesPerGpu = kvBytesPerTokenPerGpu * c.context * c.sequences;
  const usableBytesPerGpu = c.gpuMemoryGB * 1e9 * (1 - c.headroom);
  const totalBytesPerGpu = weightBytesPerGpu + kvBytesPerGpu;
  return {
    weightBytesPerGpu, kvHeadsPerGpu, kvBytesPerTokenPerGpu, kvBytesPerGpu, usableBytesPerGpu, totalBytesPerGpu,
    fits: totalBytesPerGpu <= usableBytesPerGpu,
    maxSequences: Math.max(0, Math.floor((usableBytesPerGpu - weightBytesPerGpu) / (kvBytesPerTokenPerGpu * c.context))),
  };
}

/** The smallest candidate TP that can split the heads and fits; null when none does. */
export function smallestTensorParallel(model: ModelShape, c: Omit<TpConfig, "tensorParallel">, candidates: number[] = [1, 2, 4, 8]): number | null {
  for (const tp of [...candidates].sort((a, b) => a - b)) {
    try {
      checkTensorParallel(model, tp);
    } catch {
      continue; // a TP the heads cannot be split over is not a candidate
    }
    if (tpMemoryPlan(model, { ...c, tensorParallel: tp }).fits) return tp;
  }
  return null;
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

function checkRoofline(r: Roofline): void {
  for (const k of ["parameters", "bytesPerParameter", "peakFlops", "memoryBandwidth"] as const) positive(k, r[k]);
  if (!(r.kvBytesPerToken >= 0)) throw new RangeError(`kvBytesPerToken must be ≥ 0, got ${r.kvBytesPerToken}`);
  if (!(r.mfu > 0 && r.mfu <= 1)) throw new RangeError(`mfu must be in (0, 1], got ${r.mfu}`);
  if (!(r.mbu > 0 && r.mbu <= 1)) throw new RangeError(`mbu must be in (0, 1], got ${r.mbu}`);
  positiveInteger("tensorParallel", r.tensorParallel);
}

function phase(computeS: number, memoryS: number): PhaseTime {
  return { computeS, memoryS, seconds: Math.max(computeS, memoryS), bound: computeS > memoryS ? "compute" : "memory" };
}

export function prefillTime(r: Roofline, promptTokens: number): PhaseTime {
  checkRoofline(r);
  positive("promptTokens", promptTokens);
  return phase(
    (2 * r.parameters * promptTokens) / (r.tensorParallel * r.peakFlops * r.mfu),
    (r.parameters * r.bytesPerParameter) / (r.tensorParallel * r.memoryBandwidth * r.mbu),
  );
}

export function decodeStepTime(r: Roofline, batch: number, contextTokens: number): PhaseTime {
  checkRoofline(r);
  positiveInteger("batch", batch);
  if (!(contextTokens >= 0)) throw new RangeError(`contextTokens must be ≥ 0, got ${contextTokens}`);
  return phase(
    (2 * r.parameters * batch) / (r.tensorParallel * r.peakFlops * r.mfu),
    (r.parameters * r.bytesPerParameter + batch * contextTokens * r.kvBytesPerToken) / (r.tensorParallel * r.memoryBandwidth * r.mbu),
  );
}

export function crossoverBatch(r: Roofline): number {
  checkRoofline(r);
  return ((r.peakFlops * r.mfu) / (r.memoryBandwidth * r.mbu)) * (r.bytesPerParameter / 2);
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

export function requestLatency(r: Roofline, q: LatencyRequest): RequestLatency {
  const queueWaitS = q.queueWaitS ?? 0;
  const cachedShare = q.cachedShare ?? 0;
  const speedup = q.speculativeSpeedup ?? 1;
  if (!(queueWaitS >= 0)) throw new RangeError(`queueWaitS must be ≥ 0, got ${queueWaitS}`);
  if (!(cachedShare >= 0 && cachedShare < 1)) throw new RangeError(`cachedShare must be in [0, 1), got ${cachedShare}`);
  if (!(speedup >= 1)) throw new RangeError(`speculativeSpeedup must be ≥ 1, got ${speedup}`);
  positive("outputTokens", q.outputTokens);
  const ttftS = queueWaitS + prefillTime(r, q.promptTokens * (1 - cachedShare)).seconds;
  const tpotS = decodeStepTime(r, q.batch, q.promptTokens + q.outputTokens / 2).seconds / speedup;
  return { ttftS, tpotS, e2eS: ttftS + (q.outputTokens - 1) * tpotS };
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

export function chooseDeployment(options: DeploymentOption[], slo: Slo, load: Load): DeploymentChoice {
  positive("requestsPerSecond", load.requestsPerSecond);
  if (!(load.maxUtilisation > 0 && load.maxUtilisation <= 1)) throw new RangeError(`maxUtilisation must be in (0, 1], got ${load.maxUtilisation}`);
  if (options.length === 0) return { ok: false, reason: "no options to choose from" };
  const fitting = options.filter((o) => o.fits);
  if (fitting.length === 0) return { ok: false, reason: "none fits in memory: add GPUs per replica or quantize" };
  const fastFirst = fitting.filter((o) => o.ttftS <= slo.ttftS);
  if (fastFirst.length === 0) {
    const best = fitting.reduce((a, b) => (b.ttftS < a.ttftS ? b : a));
    return { ok: false, reason: `no option meets the TTFT SLO of ${slo.ttftS} s; the fastest is ${best.name} at ${best.ttftS} s` };
  }
  const meeting = fastFirst.filter((o) => o.tpotS <= slo.tpotS);
  if (meeting.length === 0) {
    const best = fastFirst.reduce((a, b) => (b.tpotS < a.tpotS ? b : a));
    return { ok: false, reason: `no option that meets the TTFT SLO meets the TPOT SLO of ${slo.tpotS} s; the fastest is ${best.name} at ${best.tpotS} s` };
  }
  const priced = meeting.map((o) => {
    const replicas = Math.ceil(load.requestsPerSecond / (load.maxUtilisation * o.requestsPerSecond) - 1e-12);
    const gpus = replicas * o.gpusPerReplica;
    return { o, replicas, gpus, usdPerHour: gpus * o.gpuHourUsd };
  });
  priced.sort((a, b) => a.usdPerHour - b.usdPerHour || a.gpus - b.gpus || a.o.ttftS - b.o.ttftS);
  const best = priced[0]!;
  return { ok: true, name: best.o.name, replicas: best.replicas, gpus: best.gpus, usdPerHour: best.usdPerHour };
}
