// Checked against ourselves: this machine's memory bandwidth and FLOP/s from small benchmarks, then
// the roofline's TTFT and TPOT for the kit's own model, to compare with what `lab serve` measures
// (the notebook drives the service with lab/loadtest), for each of the kit's two engines.
//
// The benchmarks:
//   triad   a[i] = b[i] + s·c[i] over Float32Arrays (STREAM's triad: two reads and one write per
//           element, 12 bytes), best of `repeats` passes. At a working set far past the caches it
//           measures DRAM; at the size of our model's weights (a few MB) what decoding it streams
//           from — mostly the caches.
//   matmul  LabEngine's own WebAssembly SIMD F32 kernel (SimdArena.matmul, the product every F32
//           layer runs) on a weight matrix of the model's FFN shape times `rows` activation vectors:
//           2 × nIn × nOut × rows FLOPs per call, best of `repeats`.
//   llama   llama.cpp's kernels (the second engine, LlamaCppEngine over node-llama-cpp). node-llama-cpp
//           exposes no single ggml op, so the benchmark is a purpose-built GGUF: random weights,
//           llama architecture, the target's layer shapes (hidden, FFN, heads; the FFN is 2/3 of
//           each layer's weights) repeated over `layers` layers, written as F32 and quantized by
//           lab/quant to Q8_0 and Q4_K_M. Every call is one engine.step with output "none", so no
//           logits are asked for and llama.cpp skips the output head: the time is the layers'
//           matrix products (plus norms, RoPE and attention over a few positions, which are small)
//           and one node-llama-cpp round trip. With many layers that round trip is a small share;
//           it is not subtracted. Per weight format, at 1 thread:
//             1 row    one sequence decoding one token: bytes streamed per second = the layers'
//                      weight bytes ÷ step time (what decode runs at);
//             N rows   a prefill chunk of N tokens of one sequence, and N sequences decoding one
//                      token each in one step: FLOP/s = 2 × multiply-adds ÷ step time.
//           Best of `repeats` calls after a warm-up call.
// LabEngine computes on one thread and the kit runs llama.cpp at 1 thread here, so one core's numbers
// are the right ones. The machine is shared: every rate is what one run measured, best of a few calls.
import { existsSync } from "node:fs";
import { mkdir, rename } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SimdArena } from "../engine/simd.ts";
import type { Engine, Sequence } from "../engine/engine.ts";
import { llamaHparams, llamaMetadata, openGguf, writeGguf, type GgufKv, type LlamaHparams } from "../gguf/index.ts";
import { quantFormat } from "../quant/index.ts";
import { quantizeGgufFile } from "../quant/file.ts";
import { mulberry32 } from "../random.ts";
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

// ─── llama.cpp's kernels, through a purpose-built GGUF ─────────────────────────────────────────

/** One tensor as the cost arithmetic needs it: GGUF name, ggml type, ggml shape [in, out]. */
export interface TensorCostInput {
  name: string;
  type: string;
  ne: number[];
}

export interface StepCost {
  /** weight bytes one step reads: every blk.* tensor once (block scales included), bytes */
  bytes: number;
  /** 2 × multiply-adds of the blk.* matrices × rows, FLOPs */
  flops: number;
}

/**
 * Bytes and FLOPs of one step over `rows` rows of a model whose output head is not evaluated (output
 * "none") and whose embedding is a row lookup: only the layers' (blk.*) tensors count. Bytes follow
 * ggml's block geometry (typeSize per blockSize weights: F32 4 per 1, Q8_0 34 per 32, Q4_K 144 per
 * 256, Q6_K 210 per 256); FLOPs count the 2-D tensors (matrices), 2 per multiply-add.
 */
export function stepCost(tensors: readonly TensorCostInput[], rows: number): StepCost {
  let bytes = 0, macs = 0;
  for (const t of tensors) {
    if (!t.name.startsWith("blk.")) continue;
    const n = t.ne.reduce((a, b) => a * b, 1);
    const q = quantFormat(t.type);
    bytes += (n / q.blockSize) * q.typeSize;
    if (t.ne.length === 2) macs += n;
  }
  return { bytes, flops: 2 * macs * rows };
}

/** The benchmark model's shape: the target's layers, `layers` of them (vocabulary and context kept). */
export function kernelBenchShape(target: LlamaHparams, layers: number): LlamaHparams {
  if (!Number.isInteger(layers) || layers < 1) throw new RangeError(`layers must be an integer >= 1, got ${layers}`);
  return { ...target, nLayer: layers };
}

export type KernelCall = "decode" | "sequences" | "prefill";

export interface LlamaKernelResult {
  /** GGUF level: F32, Q8_0, Q4_K_M */
  level: string;
  /** decode: 1 sequence × 1 token; sequences: `rows` sequences × 1 token; prefill: 1 sequence × `rows` tokens */
  call: KernelCall;
  rows: number;
  /** from stepCost over the file's own tensor types */
  bytesPerCall: number;
  flopsPerCall: number;
  /** best call, s */
  seconds: number;
  /** bytesPerCall ÷ seconds, bytes/s */
  bytesPerSecond: number;
  /** flopsPerCall ÷ seconds, FLOP/s */
  flops: number;
}

export interface LlamaKernels {
  engine: "llama";
  threads: number;
  layers: number;
  /** the benchmark model: hidden × FFN, layers */
  shape: { nEmbd: number; nFf: number; nLayer: number };
  results: LlamaKernelResult[];
}

/** Random weights (seeded, uniform ±0.05) in the target's layout with `shape.nLayer` layers, and the
 *  target's tokenizer, as an F32 GGUF. */
export async function writeKernelBenchGguf(targetPath: string, layers: number, path: string, seed = 1): Promise<LlamaHparams> {
  const target = await openGguf(targetPath);
  const shape = kernelBenchShape(llamaHparams(target), layers);
  const tokenizer: GgufKv[] = [...target.metadata.values()].filter((k) => k.key.startsWith("tokenizer."))
    .map(({ key, type, value, itemType }) => (itemType === undefined ? { key, type, value } : { key, type, value, itemType }));
  const rand = mulberry32(seed);
  const qDim = shape.nHead * shape.headDim, kvDim = shape.nKvHead * shape.headDim;
  const tensor = (name: string, ne: number[], norm = false) => {
    const v = new Float32Array(ne.reduce((a, b) => a * b, 1));
    for (let i = 0; i < v.length; i++) v[i] = norm ? 1 : (rand() - 0.5) / 10;
    return { name, type: "F32" as const, ne, data: new Uint8Array(v.buffer) };
  };
  const tensors = [tensor("token_embd.weight", [shape.nEmbd, shape.nVocab])];
  for (let l = 0; l < layers; l++) {
    tensors.push(tensor(`blk.${l}.attn_norm.weight`, [shape.nEmbd], true), tensor(`blk.${l}.attn_q.weight`, [shape.nEmbd, qDim]),
      tensor(`blk.${l}.attn_k.weight`, [shape.nEmbd, kvDim]), tensor(`blk.${l}.attn_v.weight`, [shape.nEmbd, kvDim]),
      tensor(`blk.${l}.attn_output.weight`, [qDim, shape.nEmbd]), tensor(`blk.${l}.ffn_norm.weight`, [shape.nEmbd], true),
      tensor(`blk.${l}.ffn_gate.weight`, [shape.nEmbd, shape.nFf]), tensor(`blk.${l}.ffn_up.weight`, [shape.nEmbd, shape.nFf]),
      tensor(`blk.${l}.ffn_down.weight`, [shape.nFf, shape.nEmbd]));
  }
  tensors.push(tensor("output_norm.weight", [shape.nEmbd], true), tensor("output.weight", [shape.nEmbd, shape.nVocab]));
  const tmp = `${path}.${process.pid}.tmp`;
  await writeGguf(tmp, { metadata: [...llamaMetadata(shape, "inference-lab-kernel-bench"), ...tokenizer], tensors });
  await rename(tmp, path);
  return shape;
}

/** The benchmark GGUFs, one per level, cached under `dir` by shape and seed (F32 written, the others quantized from it). */
export async function kernelBenchFiles(targetPath: string, layers: number, levels: readonly string[], dir = join(tmpdir(), "inference-lab-kernel-bench")): Promise<Map<string, string>> {
  await mkdir(dir, { recursive: true });
  const hp = llamaHparams(await openGguf(targetPath));
  const stem = join(dir, `bench-${hp.nEmbd}x${hp.nFf}-h${hp.nHead}-kv${hp.nKvHead}-v${hp.nVocab}-L${layers}`);
  const f32 = `${stem}-F32.gguf`;
  if (!existsSync(f32)) await writeKernelBenchGguf(targetPath, layers, f32);
  const out = new Map<string, string>();
  for (const level of levels) {
    if (level === "F32") { out.set(level, f32); continue; }
    const path = `${stem}-${level}.gguf`;
    if (!existsSync(path)) {
      const tmp = `${path}.${process.pid}.tmp`;
      await quantizeGgufFile(f32, tmp, level);
      await rename(tmp, path);
    }
    out.set(level, path);
  }
  return out;
}

/** Times one kind of call on an open engine: best of `repeats` after one warm-up, s. Sequences are
 *  cleared (truncate to 0) outside the timing, so attention never spans more than `rows` positions. */
async function timeCall(engine: Engine, call: KernelCall, rows: number, repeats: number): Promise<number> {
  const nSeq = call === "sequences" ? rows : 1;
  const tokensPerSeq = call === "prefill" ? rows : 1;
  const seqs: Sequence[] = [];
  for (let i = 0; i < nSeq; i++) seqs.push(await engine.createSequence());
  try {
    const tokens = Array.from({ length: tokensPerSeq }, (_, i) => 3 + ((i * 37) % (engine.hparams.nVocab - 3)));
    // decode calls run at the end of an 8-token context, as a short conversation would
    for (const s of seqs) if (call !== "prefill") await engine.step([{ sequence: s, tokens: tokens.concat(tokens, tokens, tokens, tokens, tokens, tokens, tokens).slice(0, 8), output: "none" }]);
    const start = seqs.map((s) => s.length);
    let best = Infinity;
    for (let r = 0; r < repeats + 1; r++) {
      for (let i = 0; i < seqs.length; i++) if (seqs[i].length > start[i]) await seqs[i].truncate(start[i]);
      const t0 = performance.now();
      await engine.step(seqs.map((sequence) => ({ sequence, tokens, output: "none" as const })));
      const dt = (performance.now() - t0) / 1e3;
      if (r > 0) best = Math.min(best, dt);
    }
    return best;
  } finally {
    for (const s of seqs) await s.free();
  }
}

/**
 * llama.cpp's kernels on this machine: for each level, the benchmark GGUF (see the top of the file)
 * timed at 1 row (decode), N sequences × 1 token (each of `sequences`) and 1 sequence × N tokens (each of `prefill`), at `threads`
 * threads (always set; 1 for the kit). Null where node-llama-cpp cannot load here.
 */
export async function measureLlamaKernels(o: {
  targetPath: string; levels?: readonly string[]; layers?: number; sequences?: number[]; prefill?: number[]; repeats?: number; threads?: number; dir?: string;
}): Promise<LlamaKernels | null> {
  const levels = o.levels ?? ["F32", "Q8_0", "Q4_K_M"];
  const layers = o.layers ?? 16, repeats = o.repeats ?? 5, threads = o.threads ?? 1;
  // 16 sequences: the notebook's wave; 256 tokens: lab serve's prefill chunk (maxBatchTokens)
  const sequences = o.sequences ?? [16], prefill = o.prefill ?? [256];
  let LlamaCppEngine: typeof import("../engine/llama-engine.ts").LlamaCppEngine;
  try {
    ({ LlamaCppEngine } = await import("../engine/llama-engine.ts"));
  } catch {
    return null;
  }
  const files = await kernelBenchFiles(o.targetPath, layers, levels, o.dir);
  const maxSeqs = Math.max(1, ...sequences), maxTokens = Math.max(1, ...prefill);
  const results: LlamaKernelResult[] = [];
  let shape: LlamaKernels["shape"] | undefined;
  for (const level of levels) {
    const path = files.get(level)!;
    const file = await openGguf(path);
    const hp = llamaHparams(file);
    shape = { nEmbd: hp.nEmbd, nFf: hp.nFf, nLayer: hp.nLayer };
    let engine: Engine;
    try {
      engine = await LlamaCppEngine.load(path, { threads, maxSequences: maxSeqs, contextSize: Math.max(16, maxTokens + 8) });
    } catch (err) {
      if (results.length === 0 && /node-llama-cpp|binding|prebuilt|\.node\b/i.test(String(err))) return null;
      throw err;
    }
    try {
      const calls: [KernelCall, number][] = [["decode", 1], ...sequences.map((r): [KernelCall, number] => ["sequences", r]), ...prefill.map((r): [KernelCall, number] => ["prefill", r])];
      for (const [call, n] of calls) {
        const seconds = await timeCall(engine, call, n, repeats);
        const cost = stepCost(file.tensors, n);
        results.push({ level, call, rows: n, bytesPerCall: cost.bytes, flopsPerCall: cost.flops, seconds,
          bytesPerSecond: cost.bytes / seconds, flops: cost.flops / seconds });
      }
    } finally {
      await engine.dispose();
    }
  }
  return { engine: "llama", threads, layers, shape: shape!, results };
}

// ─── this machine, as a GPU row ────────────────────────────────────────────────────────────────

export interface ThisMachine {
  dram: TriadResult;
  modelSized: TriadResult;
  /** LabEngine's product at the batch sizes a prefill chunk and a decode step use */
  matmul: MatmulResult[];
  /** llama.cpp's kernels per level (measureLlamaKernels); absent where not measured */
  llama?: LlamaKernels;
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

/** Which engine's kernels a prediction uses: LabEngine's (triad bandwidth, SIMD F32 product, the same
 *  for every format) or llama.cpp's (the benchmark GGUF at the format's own level). */
export type KernelChoice = { engine: "lab" } | { engine: "llama"; level: string };

/** llama.cpp's rows-row rate for a level: N sequences × 1 token for decode batches, 1 × N tokens for prefill. */
function llamaRate(k: LlamaKernels, level: string, call: KernelCall, rows: number): LlamaKernelResult {
  const mine = k.results.filter((r) => r.level === level);
  if (mine.length === 0) throw new RangeError(`no llama.cpp kernel measurement at level ${level} (measured: ${[...new Set(k.results.map((r) => r.level))].join(", ")})`);
  if (rows === 1) return mine.find((r) => r.call === "decode")!;
  const same = mine.filter((r) => r.call === call).sort((a, b) => a.rows - b.rows);
  return same.find((r) => r.rows === rows) ?? same.filter((r) => r.rows <= rows).pop() ?? same[0] ?? mine[0];
}

/**
 * A GpuSpec for this machine from the benchmarks. LabEngine: bandwidth of the weights-sized (or DRAM)
 * triad, FLOP/s of the SIMD product at `rows`. llama.cpp: bandwidth of its 1-row decode at the level,
 * FLOP/s of its call at `rows` (`rows` sequences × 1 token, or with `call` "prefill" one sequence's chunk).
 */
export function machineSpec(m: ThisMachine, memoryBytes: number, rows: number, bandwidth: "modelSized" | "dram" = "modelSized",
  kernels: KernelChoice = { engine: "lab" }, call: "sequences" | "prefill" = "sequences"): GpuSpec {
  if (kernels.engine === "llama") {
    if (!m.llama) throw new RangeError("no llama.cpp kernel measurement (measureLlamaKernels was not run or node-llama-cpp did not load)");
    const decode = llamaRate(m.llama, kernels.level, "decode", 1);
    const product = llamaRate(m.llama, kernels.level, call, rows);
    return measuredMachine({
      memoryBytes, memoryBandwidth: decode.bytesPerSecond, flops: product.flops,
      how: `llama.cpp ${kernels.level} on a ${m.llama.shape.nLayer}-layer ${m.llama.shape.nEmbd}×${m.llama.shape.nFf} benchmark GGUF, ${m.llama.threads} thread(s): ` +
        `decode ${(decode.bytesPerSecond / 1e9).toFixed(1)} GB/s; ${product.call} at ${product.rows} rows ${(product.flops / 1e9).toFixed(1)} GFLOP/s`,
    });
  }
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
 * prefill's rows, decode the one at `concurrency` rows; `kernels` picks the engine whose kernels
 * were measured (default LabEngine's).
 */
export function predictOurService(o: {
  model: ModelSpec; format: WeightFormat; kv: KvFormat; machine: ThisMachine; memoryBytes: number;
  promptTokens: number; outputTokens: number; concurrency: number; prefillRows: number; kernels?: KernelChoice;
}): ServicePrediction {
  const kernels = o.kernels ?? { engine: "lab" };
  const base = { model: o.model, format: o.format, kv: o.kv, tp: 1, promptTokens: o.promptTokens, outputTokens: o.outputTokens, mfu: 1, mbu: 1 };
  const prefill = estimateLatency({ ...base, gpu: machineSpec(o.machine, o.memoryBytes, o.prefillRows, "modelSized", kernels, "prefill"), concurrency: 1 });
  const decode = estimateLatency({ ...base, gpu: machineSpec(o.machine, o.memoryBytes, o.concurrency, "modelSized", kernels, "sequences"), concurrency: o.concurrency });
  return { prefillMs: prefill.ttftMs, ttftMs: (prefill.ttftMs * (o.concurrency + 1)) / 2, tpotMs: decode.tpotMs, bound: decode.decodeBound, terms: { ...decode.terms, prefillComputeMs: prefill.terms.prefillComputeMs, prefillMemoryMs: prefill.terms.prefillMemoryMs } };
}
