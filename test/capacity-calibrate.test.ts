// lab/capacity/calibrate.ts: the machine benchmarks return plausible, self-checked numbers, and the
// prediction for our model follows from them by the roofline's arithmetic.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  estimateLatency, findFormat, findKvFormat, kernelBenchShape, loadGgufModel, machineSpec, measureLlamaKernels, measureSimdMatmul, measureTriad,
  predictOurService, stepCost, type LlamaKernels, type ThisMachine,
} from "../lab/capacity/index.ts";

describe("this machine's benchmarks", () => {
  it("triad: 12 bytes per element, a positive rate", () => {
    const r = measureTriad(1 << 20, 2);
    expect(r.bytesPerArray).toBe(1 << 20);
    expect(r.bytesPerSecond).toBeGreaterThan(1e7);
  });

  it("matmul: LabEngine's SIMD kernel, checked against a dot product", () => {
    const r = measureSimdMatmul(64, 32, 4, 2);
    if (r === null) return; // no WebAssembly SIMD here: the notebook says so
    expect(r).toMatchObject({ nIn: 64, nOut: 32, rows: 4 });
    expect(r.flops).toBeGreaterThan(1e6);
  });
});

describe("the prediction for our model", () => {
  // fixed machine numbers, so the arithmetic can be checked exactly
  const machine: ThisMachine = {
    dram: { bytesPerArray: 1 << 26, bytesPerSecond: 5e9 },
    modelSized: { bytesPerArray: 1 << 21, bytesPerSecond: 20e9 },
    matmul: [{ nIn: 1, nOut: 1, rows: 1, flops: 2e9 }, { nIn: 1, nOut: 1, rows: 16, flops: 8e9 }, { nIn: 1, nOut: 1, rows: 64, flops: 10e9 }],
  };

  it("uses the weights-sized bandwidth and the product at the step's rows, at MFU = MBU = 1", async () => {
    const model = await loadGgufModel("data/models/target.gguf");
    const format = findFormat("f32"), kv = findKvFormat("f32");
    const p = predictOurService({ model, format, kv, machine, memoryBytes: 8e9, promptTokens: 100, outputTokens: 32, concurrency: 16, prefillRows: 64 });
    const spec16 = machineSpec(machine, 8e9, 16);
    expect(spec16.memoryBandwidth).toBe(20e9);
    expect(spec16.denseBf16Flops).toBe(8e9);
    const decode = estimateLatency({ model, gpu: spec16, format, kv, tp: 1, promptTokens: 100, outputTokens: 32, concurrency: 16, mfu: 1, mbu: 1 });
    expect(p.tpotMs).toBe(decode.tpotMs);
    const prefill = estimateLatency({ model, gpu: machineSpec(machine, 8e9, 64), format, kv, tp: 1, promptTokens: 100, outputTokens: 32, concurrency: 1, mfu: 1, mbu: 1 });
    expect(p.prefillMs).toBe(prefill.prefillMs);
    // the median of a wave of 16 waits for 8.5 prefills
    expect(p.ttftMs).toBeCloseTo(8.5 * prefill.prefillMs, 9);
    expect(machineSpec(machine, 8e9, 16, "dram").memoryBandwidth).toBe(5e9);
    expect(() => machineSpec({ ...machine, matmul: [] }, 8e9, 16)).toThrow(/no matmul/);
  });
});

describe("llama.cpp's kernels: the arithmetic of one benchmark call", () => {
  // one layer of the target's shape: hidden 256, FFN 512, 4 heads × 64, 2 KV heads
  const layer = (types: Record<string, string>) => [
    { name: "token_embd.weight", type: "F32", ne: [256, 1024] }, // a row lookup: not counted
    { name: "blk.0.attn_norm.weight", type: "F32", ne: [256] },
    { name: "blk.0.attn_q.weight", type: types.attn ?? "F32", ne: [256, 256] },
    { name: "blk.0.attn_k.weight", type: types.attn ?? "F32", ne: [256, 128] },
    { name: "blk.0.attn_v.weight", type: types.v ?? types.attn ?? "F32", ne: [256, 128] },
    { name: "blk.0.attn_output.weight", type: types.attn ?? "F32", ne: [256, 256] },
    { name: "blk.0.ffn_norm.weight", type: "F32", ne: [256] },
    { name: "blk.0.ffn_gate.weight", type: types.ffn ?? "F32", ne: [256, 512] },
    { name: "blk.0.ffn_up.weight", type: types.ffn ?? "F32", ne: [256, 512] },
    { name: "blk.0.ffn_down.weight", type: types.down ?? types.ffn ?? "F32", ne: [512, 256] },
    { name: "output.weight", type: "F32", ne: [256, 1024] }, // output "none": not evaluated
  ];
  // matrices: 65,536 + 32,768 + 32,768 + 65,536 + 3 × 131,072 = 589,824 weights; norms 512

  it("F32: 4 bytes per weight; FLOPs = 2 × 589,824 × rows", () => {
    expect(stepCost(layer({}), 1)).toEqual({ bytes: 589_824 * 4 + 512 * 4, flops: 1_179_648 });
    expect(stepCost(layer({}), 16)).toEqual({ bytes: 2_361_344, flops: 18_874_368 });
  });

  it("Q8_0: 34 bytes per 32 weights (8.5 bits)", () => {
    // 589,824 / 32 × 34 = 626,688, plus the F32 norms' 2,048
    expect(stepCost(layer({ attn: "Q8_0", ffn: "Q8_0" }), 1).bytes).toBe(628_736);
  });

  it("Q4_K_M's tensors: Q4_K 144 bytes per 256 weights (4.5 bits), Q6_K 210 per 256 (6.5625 bits)", () => {
    // attn_v and ffn_down Q6_K (as Q4_K_M's mix picks them in a 1-layer model): 32,768 + 131,072 = 163,840
    // weights × 210/256 = 134,400; the other 425,984 × 144/256 = 239,616; norms 2,048
    const c = stepCost(layer({ attn: "Q4_K", ffn: "Q4_K", v: "Q6_K", down: "Q6_K" }), 64);
    expect(c.bytes).toBe(134_400 + 239_616 + 2_048);
    expect(c.flops).toBe(2 * 589_824 * 64); // the format changes bytes, not the arithmetic
  });

  it("the benchmark model keeps the target's layer shape and changes only the depth", () => {
    const target = { nVocab: 1024, nCtxTrain: 2048, nEmbd: 256, nFf: 512, nHead: 4, nKvHead: 2, nLayer: 2, headDim: 64, rmsEps: 1e-5, ropeFreqBase: 10000 };
    expect(kernelBenchShape(target, 16)).toEqual({ ...target, nLayer: 16 });
    expect(() => kernelBenchShape(target, 0)).toThrow(/layers/);
  });
});

describe("the prediction with llama.cpp's rates", () => {
  const kernels: LlamaKernels = {
    engine: "llama", threads: 1, layers: 16, shape: { nEmbd: 256, nFf: 512, nLayer: 16 },
    results: [
      { level: "Q8_0", call: "decode", rows: 1, bytesPerCall: 1e7, flopsPerCall: 2e7, seconds: 2e-3, bytesPerSecond: 5e9, flops: 1e10 },
      { level: "Q8_0", call: "sequences", rows: 16, bytesPerCall: 1e7, flopsPerCall: 3.2e8, seconds: 16e-3, bytesPerSecond: 6.25e8, flops: 2e10 },
      { level: "Q8_0", call: "prefill", rows: 256, bytesPerCall: 1e7, flopsPerCall: 5.12e9, seconds: 0.17, bytesPerSecond: 5.9e7, flops: 3e10 },
    ],
  };
  const machine: ThisMachine = {
    dram: { bytesPerArray: 1 << 26, bytesPerSecond: 5e9 }, modelSized: { bytesPerArray: 1 << 21, bytesPerSecond: 20e9 },
    matmul: [{ nIn: 1, nOut: 1, rows: 16, flops: 8e9 }], llama: kernels,
  };

  it("decode bandwidth from the 1-row call, FLOP/s from the call at the step's rows", async () => {
    const q8 = { engine: "llama" as const, level: "Q8_0" };
    expect(machineSpec(machine, 8e9, 16, "modelSized", q8)).toMatchObject({ memoryBandwidth: 5e9, denseBf16Flops: 2e10 });
    expect(machineSpec(machine, 8e9, 256, "modelSized", q8, "prefill").denseBf16Flops).toBe(3e10);
    expect(machineSpec(machine, 8e9, 1, "modelSized", q8).denseBf16Flops).toBe(1e10);
    expect(() => machineSpec(machine, 8e9, 16, "modelSized", { engine: "llama", level: "F32" })).toThrow(/no llama.cpp kernel measurement at level F32/);
    expect(() => machineSpec({ ...machine, llama: undefined }, 8e9, 16, "modelSized", q8)).toThrow(/no llama.cpp kernel/);
    const model = await loadGgufModel("data/models/target.gguf");
    const format = findFormat("q8_0"), kv = findKvFormat("f32");
    const p = predictOurService({ model, format, kv, machine, memoryBytes: 8e9, promptTokens: 100, outputTokens: 32, concurrency: 16, prefillRows: 256, kernels: q8 });
    const base = { model, format, kv, tp: 1, promptTokens: 100, outputTokens: 32, mfu: 1, mbu: 1 };
    expect(p.tpotMs).toBe(estimateLatency({ ...base, gpu: machineSpec(machine, 8e9, 16, "modelSized", q8), concurrency: 16 }).tpotMs);
    expect(p.prefillMs).toBe(estimateLatency({ ...base, gpu: machineSpec(machine, 8e9, 256, "modelSized", q8, "prefill"), concurrency: 1 }).prefillMs);
  });
});

describe("llama.cpp's kernel benchmark, run small", () => {
  const dir = mkdtempSync(join(tmpdir(), "kernel-bench-test-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("builds the benchmark GGUFs and times every call (2 layers, Q8_0 and F32, 1 thread)", async () => {
    const k = await measureLlamaKernels({ targetPath: "data/models/target.gguf", levels: ["F32", "Q8_0"], layers: 2, sequences: [4], prefill: [8], repeats: 2, threads: 1, dir });
    if (k === null) return; // node-llama-cpp cannot load here
    expect(k).toMatchObject({ engine: "llama", threads: 1, layers: 2, shape: { nEmbd: 256, nFf: 512, nLayer: 2 } });
    expect(k.results.map((r) => `${r.level} ${r.call} ${r.rows}`)).toEqual(["F32 decode 1", "F32 sequences 4", "F32 prefill 8", "Q8_0 decode 1", "Q8_0 sequences 4", "Q8_0 prefill 8"]);
    const f32 = k.results[0]!, q8 = k.results[3]!;
    expect(f32.bytesPerCall).toBe(2 * 2_361_344); // two layers of the F32 arithmetic above
    expect(q8.bytesPerCall).toBe(2 * 628_736);
    for (const r of k.results) {
      expect(r.flopsPerCall).toBe(2 * 2 * 589_824 * r.rows);
      expect(r.seconds).toBeGreaterThan(0);
      expect(r.bytesPerSecond).toBeCloseTo(r.bytesPerCall / r.seconds, 0);
      expect(r.flops).toBeGreaterThan(1e7);
    }
  }, 20_000);
});
