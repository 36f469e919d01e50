// lab/capacity/calibrate.ts: the machine benchmarks return plausible, self-checked numbers, and the
// prediction for our model follows from them by the roofline's arithmetic.
import { describe, expect, it } from "vitest";
import {
  estimateLatency, findFormat, findKvFormat, loadGgufModel, machineSpec, measureSimdMatmul, measureTriad, predictOurService, type ThisMachine,
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
