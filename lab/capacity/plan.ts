// The deployment search: for a workload (request rate, prompt and output lengths) and an SLO (p99
// time to first token, time per output token), every GPU × weight format × KV format × tensor
// parallelism × batch cap is sized to the fewest replicas that meet the SLO, and the cheapest in
// GPU-hours wins. One replica of `batch` decode slots is modelled as:
//
//   memory   planMemory at batch sequences of prompt + output tokens (must fit)
//   service  estimateLatency at concurrency = batch: TPOT at a full batch (the worst case), the
//            prefill of one request alone, e2e = prefill + (output − 1) × TPOT
//   prefill  without chunked prefill a prefill pauses every sequence's decode, so at λ_r requests/s
//   stalls   per replica decode runs only 1 − λ_r × prefill of the time:
//            TPOT_eff = TPOT ÷ (1 − λ_r × prefill)      (must stay below 1)
//   queue    M/M/c with c = batch slots, service time = e2e at TPOT_eff: TTFT p99 = prefill + the
//            p99 M/M/c wait (mmcWaitQuantile)
//
// GPU-hours are per hour of traffic (replicas × GPUs per replica). An L4-hour is not an H100-hour in
// money; the search compares GPU-hours within a GPU type and reports every type's best.
import { findFormat, findGpu, findKvFormat, GPUS, type ModelSpec } from "./tables.ts";
import { CapacityError, checkTensorParallel, planMemory } from "./memory.ts";
import { estimateLatency } from "./latency.ts";
import { mmcWaitQuantile } from "./queueing.ts";

export interface Workload {
  requestsPerSecond: number;
  promptTokens: number;
  outputTokens: number;
  /** share of each prompt served from a prefix cache (default 0) */
  cachedShare?: number;
  /** TPOT speedup from speculative decoding (default 1) */
  speculativeSpeedup?: number;
}

export interface SloSpec {
  /** the 99th percentile of time to first token, seconds */
  ttftP99S: number;
  tpotS: number;
}

export interface Configuration {
  gpu: string;
  format: string;
  kv: string;
  tp: number;
  /** decode slots per replica (the continuous-batching cap) */
  batch: number;
}

export interface SizedDeployment extends Configuration {
  replicas: number;
  gpus: number;
  /** GPU-hours per hour of traffic (= gpus) */
  gpuHoursPerHour: number;
  ttftP99S: number;
  tpotS: number;
  e2eS: number;
  prefillS: number;
  /** requests/s each replica carries */
  perReplicaRate: number;
}

export const SEARCH_SPACE = {
  gpus: GPUS.map((g) => g.key),
  formats: ["fp16", "fp8", "int8", "awq-int4"],
  kvs: ["fp16", "fp8"],
  tps: [1, 2, 4, 8],
  batches: [1, 2, 4, 8, 16, 32, 64, 128, 256],
};

const MAX_REPLICAS = 4096;

/** The fewest replicas of one configuration that meet the SLO, or why none do. */
export function sizeConfiguration(model: ModelSpec, c: Configuration, w: Workload, slo: SloSpec): SizedDeployment | { reason: string } {
  const gpu = findGpu(c.gpu);
  const format = findFormat(c.format);
  const kv = findKvFormat(c.kv);
  try {
    checkTensorParallel(model, c.tp);
  } catch (err) {
    if (err instanceof CapacityError) return { reason: err.message };
    throw err;
  }
  const context = w.promptTokens + w.outputTokens;
  if (context > model.maxContext) return { reason: `prompt + output ${context} exceeds the model's ${model.maxContext} tokens` };
  if (!planMemory({ model, gpu, format, kv, tp: c.tp, context, concurrency: c.batch }).fits) return { reason: "does not fit" };
  if (c.tp > 1 && !gpu.interconnectBandwidth) return { reason: "no interconnect" };
  const lat = estimateLatency({
    model, gpu, format, kv, tp: c.tp, promptTokens: w.promptTokens, outputTokens: w.outputTokens, concurrency: c.batch,
    cachedShare: w.cachedShare, speculativeSpeedup: w.speculativeSpeedup,
  });
  const prefillS = lat.prefillMs / 1e3;
  if (prefillS > slo.ttftP99S) return { reason: `prefill alone takes ${(prefillS * 1e3).toFixed(0)} ms` };
  if (lat.tpotMs / 1e3 > slo.tpotS) return { reason: `TPOT at batch ${c.batch} is ${lat.tpotMs.toFixed(1)} ms` };
  for (let replicas = 1; replicas <= MAX_REPLICAS; replicas++) {
    const rate = w.requestsPerSecond / replicas;
    const stall = rate * prefillS;
    if (stall >= 1) continue;
    const tpotS = lat.tpotMs / 1e3 / (1 - stall);
    if (tpotS > slo.tpotS) continue;
    const e2eS = prefillS + (w.outputTokens - 1) * tpotS;
    const mu = 1 / e2eS;
    if (rate >= c.batch * mu) continue;
    const ttftP99S = prefillS + mmcWaitQuantile(rate, mu, c.batch, 0.99);
    if (ttftP99S > slo.ttftP99S) continue;
    const gpus = replicas * c.tp;
    return { ...c, replicas, gpus, gpuHoursPerHour: gpus, ttftP99S, tpotS, e2eS, prefillS, perReplicaRate: rate };
  }
  return { reason: `more than ${MAX_REPLICAS} replicas` };
}

const better = (a: SizedDeployment, b: SizedDeployment) => a.gpus - b.gpus || a.ttftP99S - b.ttftP99S;

/** Every configuration's best batch (fewest GPUs, then lowest TTFT p99), sorted cheapest first. */
export function searchDeployments(model: ModelSpec, w: Workload, slo: SloSpec, space: Partial<typeof SEARCH_SPACE> = {}): SizedDeployment[] {
  const s = { ...SEARCH_SPACE, ...space };
  if (!(w.requestsPerSecond > 0)) throw new CapacityError(`requests per second must be > 0, got ${w.requestsPerSecond}`);
  const out: SizedDeployment[] = [];
  for (const gpu of s.gpus) for (const format of s.formats) for (const kv of s.kvs) for (const tp of s.tps) {
    let best: SizedDeployment | undefined;
    for (const batch of s.batches) {
      const r = sizeConfiguration(model, { gpu, format, kv, tp, batch }, w, slo);
      if ("replicas" in r && (!best || better(r, best) < 0)) best = r;
    }
    if (best) out.push(best);
  }
  return out.sort(better);
}

/** The cheapest deployment per GPU type (GPU-hours are only comparable within a type). */
export function bestPerGpu(found: SizedDeployment[]): SizedDeployment[] {
  const seen = new Map<string, SizedDeployment>();
  for (const d of found) if (!seen.has(d.gpu) || better(d, seen.get(d.gpu)!) < 0) seen.set(d.gpu, d);
  return [...seen.values()].sort(better);
}
