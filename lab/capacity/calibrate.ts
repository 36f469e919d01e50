// Checked against ourselves: this machine's memory bandwidth and FLOP/s from two small benchmarks,
// then the roofline's TTFT and TPOT for the kit's own model, to compare with what `lab serve`
// measures (the notebook drives the service with lab/loadtest).
//
// The benchmarks:
//   triad   a[i] = b[i] + s·c[i] over Float32Arrays (STREAM's triad: two reads and one write per
//           element, 12 bytes), best of `repeats` passes. At a working set far past the caches it
//           measures DRAM; at the size of our model's weights (a few MB) what decoding it streams
//           from — mostly the caches.
//   matmul  LabEngine's own WebAssembly SIMD F32 kernel (SimdArena.matmul, the product every F32
//           layer runs) on a weight matrix of the model's FFN shape times `rows` activation vectors:
//           2 × nIn × nOut × rows FLOPs per call, best of `repeats`.
// LabEngine computes on one thread, so one core's numbers are the right ones.
import { SimdArena } from "../engine/simd.ts";
import { measuredMachine, type GpuSpec, type KvFormat, type ModelSpec, type WeightFormat } from "./tables.ts";
import { estimateLatency, type LatencyEstimate } from "./latency.ts";

export interface TriadResult {
  /** bytes per array */
  bytesPerArray: number;
  /** best of the passes, bytes/s (12 bytes per element) */
  bytesPerSecond: number;
}

export function measureTriad(bytesPerArray: number, repeats = 5): TriadResult {
  const n = Math.max(1024, Math.floor(bytesPerArray / 4));
  const a = new Float32Array(n), b = new Float32Array(n), c = new Float32Array(n);
  for (let i = 0; i < n; i++) { b[i] = i % 7; c[i] = i % 5; }
  const s = 3;
  // passes short enough to be timed coarsely get repeated inside one timing
  const inner = Math.max(1, Math.ceil(8e6 / n));
  let best = Infinity;
  for (let r = 0; r < repeats + 1; r++) { // the first pass warms up (page faults, JIT)
    const t0 = performance.now();
    for (let k = 0; k < inner; k++) for (let i = 0; i < n; i++) a[i] = b[i]! + s * c[i]!;
    const dt = (performance.now() - t0) / 1e3 / inner;
    if (r > 0) best = Math.min(best, dt);
  }
  if (a[n - 1] !== b[n - 1]! + s * c[n - 1]!) throw new Error("triad: wrong result");
  return { bytesPerArray: 4 * n, bytesPerSecond: (12 * n) / best };
}

export interface MatmulResult {
  nIn: number;
  nOut: number;
  rows: number;
  /** best of the calls, FLOP/s */
  flops: number;
}

/** LabEngine's F32 SIMD product W[nOut][nIn] · x[rows][nIn]; null where WebAssembly SIMD is missing. */
export function measureSimdMatmul(nIn: number, nOut: number, rows: number, repeats = 5): MatmulResult | null {
  let arena: SimdArena;
  try {
    arena = new SimdArena(4 * nIn * nOut, rows, nIn, nOut);
  } catch {
    return null;
  }
  const w = new Float32Array(nIn * nOut).map((_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
  const { ptr } = arena.place(new Uint8Array(w.buffer));
  const x = new Float32Array(rows * nIn).map((_, i) => ((i * 104729) % 997) / 997 - 0.5);
  const out = new Float32Array(rows * nOut);
  const inner = Math.max(1, Math.ceil(2e8 / (2 * nIn * nOut * rows)));
  let best = Infinity;
  for (let r = 0; r < repeats + 1; r++) {
    const t0 = performance.now();
    for (let k = 0; k < inner; k++) arena.matmul("F32", ptr, x, rows, nIn, nOut, out);
    const dt = (performance.now() - t0) / 1e3 / inner;
    if (r > 0) best = Math.min(best, dt);
  }
  // one output checked against a plain dot product
  let ref = 0;
  for (let i = 0; i < nIn; i++) ref += w[i]! * x[i]!;
  if (Math.abs(out[0]! - ref) > 1e-3 * (1 + Math.abs(ref))) throw new Error(`matmul: kernel gave ${out[0]}, expected ${ref}`);
  return { nIn, nOut, rows, flops: (2 * nIn * nOut * rows) / best };
}

export interface ThisMachine {
  dram: TriadResult;
  modelSized: TriadResult;
  /** the product at the batch sizes a prefill chunk and a decode step use */
  matmul: MatmulResult[];
}

/** Both benchmarks at the sizes our model needs: DRAM and weights-sized triads, the FFN-shaped product at each row count. */
export function measureThisMachine(model: ModelSpec, weightBytes: number, rows: number[] = [1, 16, 64]): ThisMachine {
  const matmul: MatmulResult[] = [];
  for (const r of rows) {
    const m = measureSimdMatmul(model.hidden, model.ffn, r);
    if (m) matmul.push(m);
  }
  return { dram: measureTriad(64 * 2 ** 20), modelSized: measureTriad(Math.max(64 * 1024, weightBytes / 3)), matmul };
}

/** A GpuSpec for this machine from the benchmarks: bandwidth of the weights-sized triad, FLOP/s of the product at `rows`. */
export function machineSpec(m: ThisMachine, memoryBytes: number, rows: number, bandwidth: "modelSized" | "dram" = "modelSized"): GpuSpec {
  const product = m.matmul.find((x) => x.rows === rows) ?? m.matmul[m.matmul.length - 1];
  if (!product) throw new RangeError("no matmul measurement (WebAssembly SIMD unavailable?)");
  const triad = m[bandwidth];
  return measuredMachine({
    memoryBytes, memoryBandwidth: triad.bytesPerSecond, flops: product.flops,
    how: `triad over ${(triad.bytesPerArray / 2 ** 20).toFixed(1)} MiB arrays: ${(triad.bytesPerSecond / 1e9).toFixed(1)} GB/s; ` +
      `LabEngine's F32 SIMD matmul ${product.nIn}×${product.nOut} at ${product.rows} rows: ${(product.flops / 1e9).toFixed(1)} GFLOP/s (one thread)`,
  });
}

export interface ServicePrediction {
  /** the prefill of one request's prompt at the prefill rows' FLOP/s */
  prefillMs: number;
  /**
   * the median first token of a wave of `concurrency` requests sent together: the scheduler prefills
   * them first come, first served, so the k-th first token waits for k prefills and the median for
   * (concurrency + 1) / 2 of them
   */
  ttftMs: number;
  /** one decode step of `concurrency` sequences */
  tpotMs: number;
  bound: LatencyEstimate["decodeBound"];
  terms: LatencyEstimate["terms"];
}

/**
 * The roofline for our model on this machine, at the measured rates (MFU = MBU = 1: the benchmarks
 * are what this machine reaches, not its datasheet peak). Prefill uses the product measured at the
 * prefill's rows, decode the one at `concurrency` rows.
 */
export function predictOurService(o: {
  model: ModelSpec; format: WeightFormat; kv: KvFormat; machine: ThisMachine; memoryBytes: number;
  promptTokens: number; outputTokens: number; concurrency: number; prefillRows: number;
}): ServicePrediction {
  const base = { model: o.model, format: o.format, kv: o.kv, tp: 1, promptTokens: o.promptTokens, outputTokens: o.outputTokens, mfu: 1, mbu: 1 };
  const prefill = estimateLatency({ ...base, gpu: machineSpec(o.machine, o.memoryBytes, o.prefillRows), concurrency: 1 });
  const decode = estimateLatency({ ...base, gpu: machineSpec(o.machine, o.memoryBytes, o.concurrency), concurrency: o.concurrency });
  return { prefillMs: prefill.ttftMs, ttftMs: (prefill.ttftMs * (o.concurrency + 1)) / 2, tpotMs: decode.tpotMs, bound: decode.decodeBound, terms: { ...decode.terms, prefillComputeMs: prefill.terms.prefillComputeMs, prefillMemoryMs: prefill.terms.prefillMemoryMs } };
}
