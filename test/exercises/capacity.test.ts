// Graded tests for tasks 3.6–3.10 (capacity planning for a 70B model,
// notebooks/05-serving-a-70b-model.ipynb). They import the implementation through the "@target/"
// alias: solutions/ by default, exercises/ with LAB_TARGET=exercises.
//
// Every expected number is worked by hand from the published shapes and datasheets (the arithmetic is
// in the comments), never from lab/capacity, the kit's own planner.
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  checkTensorParallel, chooseDeployment, crossoverBatch, decodeStepTime, prefillTime, requestLatency, smallestTensorParallel, tpMemoryPlan,
  type DeploymentOption, type ModelShape, type Roofline, type TpConfig,
} from "@target/serving/capacity.ts";
import { desiredReplicas, runQueueDepthAutoscaler, type AutoscalerInput } from "@target/serving/autoscaler.ts";
import { capacityQuizAnswers, type CapacityQuizAnswers } from "@target/serving/capacity-quiz.ts";

// Llama-2-70B's config.json: 80 layers, 64 heads, 8 KV heads of 128, 4,096 tokens; 68,976,648,192 parameters.
const LLAMA2_70B: ModelShape = { parameters: 68_976_648_192, layers: 80, attentionHeads: 64, kvHeads: 8, headDim: 128, maxContext: 4096 };
const fp16On80GB = (tensorParallel: number, context = 4096, sequences = 8): TpConfig => ({
  bitsPerWeight: 16, kvBytesPerElement: 2, tensorParallel, gpuMemoryGB: 80, headroom: 0.1, context, sequences,
});

describe("task 3.6 — memory fit with tensor parallelism", () => {
  it("accepts TPs that split the heads and refuses others", () => {
    for (const tp of [1, 2, 4, 8, 16, 64]) expect(() => checkTensorParallel(LLAMA2_70B, tp), `TP ${tp}`).not.toThrow();
    for (const tp of [0, 3, 6, 1.5, -2]) expect(() => checkTensorParallel(LLAMA2_70B, tp), `TP ${tp}`).toThrow(RangeError);
    // 12 heads and 3 KV heads: TP 6 divides the heads, and 3 divides 6 (each KV head copied to two GPUs)
    const odd: ModelShape = { ...LLAMA2_70B, attentionHeads: 12, kvHeads: 3 };
    expect(() => checkTensorParallel(odd, 6)).not.toThrow();
    // TP 4 divides 12 heads, but 4 and 3 KV heads do not divide one another
    expect(() => checkTensorParallel(odd, 4)).toThrow(/tensorParallel/);
  });

  it("FP16 70B: 137.95 GB of weights do not fit one 80 GB GPU; at TP 2 they do, but not with 8 × 4,096 tokens", () => {
    const one = tpMemoryPlan(LLAMA2_70B, fp16On80GB(1, 4096, 1));
    expect(one.weightBytesPerGpu).toBe(137_953_296_384); // 68,976,648,192 × 2
    expect(one.kvBytesPerTokenPerGpu).toBe(327_680); // 2 × 80 × 8 × 128 × 2
    expect(one.usableBytesPerGpu).toBeCloseTo(72e9, 0);
    expect(one.fits).toBe(false);
    expect(one.maxSequences).toBe(0);
    const two = tpMemoryPlan(LLAMA2_70B, fp16On80GB(2));
    expect(two.weightBytesPerGpu).toBe(68_976_648_192);
    expect(two.kvHeadsPerGpu).toBe(4);
    expect(two.kvBytesPerTokenPerGpu).toBe(163_840); // 2 × 80 × 4 × 128 × 2
    expect(two.kvBytesPerGpu).toBe(163_840 * 4096 * 8); // 5,368,709,120
    expect(two.totalBytesPerGpu).toBe(68_976_648_192 + 5_368_709_120);
    expect(two.fits).toBe(false); // 74.35 GB > 72 GB
    // (72e9 − 68,976,648,192) ÷ (163,840 × 4,096) = 3,023,351,808 ÷ 671,088,640 = 4.5 → 4 sequences
    expect(two.maxSequences).toBe(4);
    const four = tpMemoryPlan(LLAMA2_70B, fp16On80GB(4));
    expect(four.weightBytesPerGpu).toBe(34_488_324_096);
    expect(four.kvBytesPerGpu).toBe(81_920 * 4096 * 8); // 2 × 80 × 2 × 128 × 2 per token
    expect(four.fits).toBe(true);
    // (72e9 − 34,488,324,096) ÷ (81,920 × 4,096) = 37,511,675,904 ÷ 335,544,320 = 111.8 → 111
    expect(four.maxSequences).toBe(111);
  });

  it("past 8 GPUs the 8 KV heads are copied: KV memory per GPU stops shrinking", () => {
    const at = (tp: number) => tpMemoryPlan(LLAMA2_70B, fp16On80GB(tp, 1000, 1));
    expect(at(8).kvHeadsPerGpu).toBe(1);
    expect(at(16).kvHeadsPerGpu).toBe(1);
    expect(at(16).kvBytesPerTokenPerGpu).toBe(40_960); // 2 × 80 × 1 × 128 × 2
    expect(at(16).kvBytesPerTokenPerGpu).toBe(at(8).kvBytesPerTokenPerGpu);
    expect(at(16).weightBytesPerGpu).toBe(at(8).weightBytesPerGpu / 2);
  });

  it("4-bit weights (4.15625 bpw) fit one 80 GB GPU with 16 sequences of 4,096 tokens", () => {
    const plan = tpMemoryPlan(LLAMA2_70B, { ...fp16On80GB(1, 4096, 16), bitsPerWeight: 4.15625 });
    expect(plan.weightBytesPerGpu).toBe(35_835_524_256); // 68,976,648,192 × 4.15625 ÷ 8
    expect(plan.kvBytesPerGpu).toBe(21_474_836_480); // 327,680 × 4,096 × 16
    expect(plan.fits).toBe(true);
    // (72e9 − 35,835,524,256) ÷ 1,342,177,280 = 26.9 → 26
    expect(plan.maxSequences).toBe(26);
    // an FP8 cache halves the bytes per token and doubles the sequences: 53.9 → 53
    expect(tpMemoryPlan(LLAMA2_70B, { ...fp16On80GB(1, 4096, 16), bitsPerWeight: 4.15625, kvBytesPerElement: 1 }).maxSequences).toBe(53);
  });

  it("the smallest TP that fits, skipping TPs the heads cannot be split over", () => {
    const { tensorParallel: _, ...rest } = fp16On80GB(1);
    expect(smallestTensorParallel(LLAMA2_70B, rest)).toBe(4); // TP 2 holds 4 sequences, not 8
    expect(smallestTensorParallel(LLAMA2_70B, { ...rest, sequences: 4 })).toBe(2);
    expect(smallestTensorParallel(LLAMA2_70B, rest, [8, 3, 4])).toBe(4); // 3 is skipped, order does not matter
    expect(smallestTensorParallel(LLAMA2_70B, { ...rest, gpuMemoryGB: 24 }, [1, 2, 4])).toBeNull();
    expect(smallestTensorParallel(LLAMA2_70B, { ...rest, gpuMemoryGB: 24 })).toBe(8); // 17.2 GB + 1.3 GB per L4-sized GPU
  });

  it("refuses impossible configurations with a RangeError", () => {
    expect(() => tpMemoryPlan(LLAMA2_70B, fp16On80GB(3))).toThrow(RangeError);
    expect(() => tpMemoryPlan(LLAMA2_70B, fp16On80GB(2, 8192))).toThrow(/context/);
    expect(() => tpMemoryPlan(LLAMA2_70B, fp16On80GB(2, 0))).toThrow(/context/);
    expect(() => tpMemoryPlan(LLAMA2_70B, fp16On80GB(2, 4096, 0))).toThrow(/sequences/);
    expect(() => tpMemoryPlan(LLAMA2_70B, { ...fp16On80GB(2), headroom: 1 })).toThrow(/headroom/);
    expect(() => tpMemoryPlan(LLAMA2_70B, { ...fp16On80GB(2), gpuMemoryGB: 0 })).toThrow(/gpuMemoryGB/);
    expect(() => tpMemoryPlan(LLAMA2_70B, { ...fp16On80GB(2), bitsPerWeight: Number.NaN })).toThrow(/bitsPerWeight/);
  });
});

// A round-number replica: 70e9 parameters at 2 bytes, 1 PFLOP/s and 2 TB/s per GPU, both at 50%, TP 2,
// and Llama-2-70B's 327,680 KV bytes per token.
const ROUND: Roofline = { parameters: 70e9, bytesPerParameter: 2, kvBytesPerToken: 327_680, peakFlops: 1e15, memoryBandwidth: 2e12, mfu: 0.5, mbu: 0.5, tensorParallel: 2 };

describe("task 3.7 — TTFT and TPOT from the roofline", () => {
  it("prefill: a 1,000-token prompt is compute-bound, a 100-token one memory-bound", () => {
    const long = prefillTime(ROUND, 1000);
    expect(long.computeS).toBeCloseTo(0.14, 12); // 2 × 70e9 × 1000 ÷ (2 × 1e15 × 0.5)
    expect(long.memoryS).toBeCloseTo(0.07, 12); // 140e9 ÷ (2 × 2e12 × 0.5)
    expect(long).toMatchObject({ bound: "compute" });
    expect(long.seconds).toBeCloseTo(0.14, 12);
    const short = prefillTime(ROUND, 100);
    expect(short.computeS).toBeCloseTo(0.014, 12);
    expect(short).toMatchObject({ bound: "memory" });
    expect(short.seconds).toBeCloseTo(0.07, 12);
  });

  it("decode: weights once per step for the whole batch, plus every sequence's KV cache", () => {
    const one = decodeStepTime(ROUND, 1, 1000);
    expect(one.memoryS).toBeCloseTo((140e9 + 327_680_000) / 2e12, 12); // 70.16 ms
    expect(one.computeS).toBeCloseTo(1.4e-4, 12);
    expect(one.bound).toBe("memory");
    const many = decodeStepTime(ROUND, 64, 1000);
    expect(many.memoryS).toBeCloseTo((140e9 + 64 * 327_680_000) / 2e12, 12);
    expect(many.computeS).toBeCloseTo(64 * 1.4e-4, 12);
    // batch 64 costs (140 + 20.97) ÷ 140.33 = 1.147× batch 1 per step, and emits 64 tokens
    expect(many.seconds / one.seconds).toBeCloseTo(1.1471, 4);
  });

  it("the crossover batch is FLOP/s ÷ bandwidth × bytes per parameter ÷ 2, and decode turns compute-bound past it", () => {
    expect(crossoverBatch(ROUND)).toBeCloseTo(500, 9); // 1e15 × 0.5 ÷ (2e12 × 0.5) × 2 ÷ 2
    expect(crossoverBatch({ ...ROUND, bytesPerParameter: 0.5 })).toBeCloseTo(125, 9); // 4-bit weights: 4× sooner
    const h100: Roofline = { ...ROUND, peakFlops: 989.5e12, memoryBandwidth: 3.35e12, mfu: 1, mbu: 1 };
    expect(crossoverBatch(h100)).toBeCloseTo(295.37, 2);
    const noKv: Roofline = { ...ROUND, kvBytesPerToken: 0 };
    expect(decodeStepTime(noKv, 499, 0).bound).toBe("memory");
    expect(decodeStepTime(noKv, 501, 0).bound).toBe("compute");
  });

  it("TTFT = queue wait + prefill of the uncached share; speculative decoding divides TPOT only", () => {
    const req = { promptTokens: 2000, outputTokens: 201, batch: 8 };
    const plain = requestLatency(ROUND, req);
    expect(plain.ttftS).toBeCloseTo(0.28, 12); // 2 × 70e9 × 2000 ÷ 1e15
    // context 2000 + 201/2 = 2100.5 tokens: (140e9 + 8 × 2100.5 × 327,680) ÷ 2e12
    expect(plain.tpotS).toBeCloseTo((140e9 + 8 * 2100.5 * 327_680) / 2e12, 12);
    expect(plain.e2eS).toBeCloseTo(plain.ttftS + 200 * plain.tpotS, 12);
    const cached = requestLatency(ROUND, { ...req, cachedShare: 0.9, queueWaitS: 0.05 });
    // 200 uncached tokens: compute 0.028 s < memory 0.07 s — a cached prompt is memory-bound
    expect(cached.ttftS).toBeCloseTo(0.05 + 0.07, 12);
    expect(cached.tpotS).toBeCloseTo(plain.tpotS, 12);
    const spec = requestLatency(ROUND, { ...req, speculativeSpeedup: 2 });
    expect(spec.ttftS).toBeCloseTo(plain.ttftS, 12);
    expect(spec.tpotS).toBeCloseTo(plain.tpotS / 2, 12);
  });

  it("refuses nonsense with a RangeError", () => {
    expect(() => prefillTime(ROUND, 0)).toThrow(RangeError);
    expect(() => prefillTime({ ...ROUND, mfu: 0 }, 10)).toThrow(/mfu/);
    expect(() => prefillTime({ ...ROUND, mbu: 1.5 }, 10)).toThrow(/mbu/);
    expect(() => decodeStepTime(ROUND, 0, 10)).toThrow(/batch/);
    expect(() => decodeStepTime({ ...ROUND, tensorParallel: 0 }, 1, 10)).toThrow(/tensorParallel/);
    expect(() => requestLatency(ROUND, { promptTokens: 10, outputTokens: 10, batch: 1, cachedShare: 1 })).toThrow(/cachedShare/);
    expect(() => requestLatency(ROUND, { promptTokens: 10, outputTokens: 10, batch: 1, speculativeSpeedup: 0.5 })).toThrow(/speculativeSpeedup/);
    expect(() => requestLatency(ROUND, { promptTokens: 10, outputTokens: 10, batch: 1, queueWaitS: -1 })).toThrow(/queueWaitS/);
  });
});

const option = (name: string, o: Partial<DeploymentOption>): DeploymentOption => ({
  name, gpusPerReplica: 1, gpuHourUsd: 2, fits: true, ttftS: 0.2, tpotS: 0.03, requestsPerSecond: 1, ...o,
});
const OPTIONS: DeploymentOption[] = [
  option("2×H100 FP16", { gpusPerReplica: 2, gpuHourUsd: 4, ttftS: 0.35, tpotS: 0.045, requestsPerSecond: 2 }),
  option("1×H100 FP8", { gpusPerReplica: 1, gpuHourUsd: 4, ttftS: 0.6, tpotS: 0.04, requestsPerSecond: 1.25 }),
  option("1×A100 AWQ", { gpusPerReplica: 1, gpuHourUsd: 2, ttftS: 1.4, tpotS: 0.035, requestsPerSecond: 0.5 }),
  option("4×L4 AWQ", { gpusPerReplica: 4, gpuHourUsd: 0.8, ttftS: 0.9, tpotS: 0.08, requestsPerSecond: 0.6 }),
  option("1×L4 FP16", { fits: false, gpuHourUsd: 0.8, ttftS: 0.1, tpotS: 0.01, requestsPerSecond: 100 }),
];

describe("task 3.8 — the cheapest deployment meeting an SLO", () => {
  it("filters by memory, TTFT and TPOT, then prices replicas × GPUs", () => {
    // 8 req/s at 80%: 2×H100 needs ceil(8 ÷ 1.6) = 5 replicas = 10 GPUs = $40/h;
    // 1×H100 FP8 ceil(8 ÷ 1.0) = 8 replicas = 8 GPUs = $32/h; A100 misses TTFT, 4×L4 misses TPOT
    expect(chooseDeployment(OPTIONS, { ttftS: 1, tpotS: 0.05 }, { requestsPerSecond: 8, maxUtilisation: 0.8 }))
      .toEqual({ ok: true, name: "1×H100 FP8", replicas: 8, gpus: 8, usdPerHour: 32 });
  });

  it("a looser SLO lets a cheaper option in; a tighter one changes the pick", () => {
    // TTFT ≤ 1.5 s admits the A100: ceil(8 ÷ 0.4) = 20 replicas = $40/h, still above $32/h
    expect(chooseDeployment(OPTIONS, { ttftS: 1.5, tpotS: 0.05 }, { requestsPerSecond: 8, maxUtilisation: 0.8 })).toMatchObject({ name: "1×H100 FP8" });
    // TPOT ≤ 0.1 s admits 4×L4: ceil(8 ÷ 0.48) = 17 replicas × 4 GPUs × $0.8 = $54.4/h: not chosen
    expect(chooseDeployment(OPTIONS, { ttftS: 1, tpotS: 0.1 }, { requestsPerSecond: 8, maxUtilisation: 0.8 })).toMatchObject({ name: "1×H100 FP8" });
    // TTFT ≤ 0.5 s leaves only 2×H100 FP16
    expect(chooseDeployment(OPTIONS, { ttftS: 0.5, tpotS: 0.05 }, { requestsPerSecond: 8, maxUtilisation: 0.8 }))
      .toEqual({ ok: true, name: "2×H100 FP16", replicas: 5, gpus: 10, usdPerHour: 40 });
  });

  it("the price decides, not the number of GPUs", () => {
    const cheapMany = option("4 cheap GPUs", { gpusPerReplica: 4, gpuHourUsd: 0.5 }); // $2/h
    const dearOne = option("1 dear GPU", { gpusPerReplica: 1, gpuHourUsd: 3 }); // $3/h
    expect(chooseDeployment([dearOne, cheapMany], { ttftS: 1, tpotS: 1 }, { requestsPerSecond: 1, maxUtilisation: 1 }))
      .toEqual({ ok: true, name: "4 cheap GPUs", replicas: 1, gpus: 4, usdPerHour: 2 });
  });

  it("an exact ratio needs no extra replica; ties go to fewer GPUs, then lower TTFT", () => {
    // 4 req/s at 100% of 2×H100's 2 req/s: exactly 2 replicas; 1.1 ÷ (0.1 × 1) is 11.000000000000002 in
    // floating point and must count as 11 replicas, not 12
    expect(chooseDeployment([OPTIONS[0]!], { ttftS: 1, tpotS: 1 }, { requestsPerSecond: 4, maxUtilisation: 1 })).toMatchObject({ replicas: 2 });
    expect(chooseDeployment([option("x", { requestsPerSecond: 1 })], { ttftS: 1, tpotS: 1 }, { requestsPerSecond: 1.1, maxUtilisation: 0.1 })).toMatchObject({ replicas: 11 });
    const tie = [
      option("two half-price GPUs", { gpusPerReplica: 2, gpuHourUsd: 1, ttftS: 0.1 }),
      option("one GPU, slower", { gpusPerReplica: 1, gpuHourUsd: 2, ttftS: 0.3 }),
      option("one GPU, faster", { gpusPerReplica: 1, gpuHourUsd: 2, ttftS: 0.2 }),
    ];
    expect(chooseDeployment(tie, { ttftS: 1, tpotS: 1 }, { requestsPerSecond: 1, maxUtilisation: 1 })).toMatchObject({ name: "one GPU, faster", usdPerHour: 2 });
  });

  it("says which constraint nothing meets", () => {
    const load = { requestsPerSecond: 1, maxUtilisation: 0.8 };
    const none = chooseDeployment([], { ttftS: 1, tpotS: 1 }, load);
    expect(none.ok).toBe(false);
    if (!none.ok) expect(none.reason).toMatch(/no options/);
    const memory = chooseDeployment([OPTIONS[4]!], { ttftS: 1, tpotS: 1 }, load);
    if (memory.ok) throw new Error("expected no choice");
    expect(memory.reason).toMatch(/memory/);
    const ttft = chooseDeployment(OPTIONS, { ttftS: 0.3, tpotS: 1 }, load);
    if (ttft.ok) throw new Error("expected no choice");
    expect(ttft.reason).toMatch(/TTFT/);
    expect(ttft.reason).toContain("2×H100 FP16"); // the fastest first token among those that fit (not the 1×L4)
    const tpot = chooseDeployment(OPTIONS, { ttftS: 1, tpotS: 0.02 }, load);
    if (tpot.ok) throw new Error("expected no choice");
    expect(tpot.reason).toMatch(/TPOT/);
    expect(tpot.reason).toContain("1×H100 FP8"); // lowest TPOT among those meeting TTFT ≤ 1 s (not the A100)
    expect(() => chooseDeployment(OPTIONS, { ttftS: 1, tpotS: 1 }, { requestsPerSecond: 0, maxUtilisation: 0.8 })).toThrow(RangeError);
    expect(() => chooseDeployment(OPTIONS, { ttftS: 1, tpotS: 1 }, { requestsPerSecond: 1, maxUtilisation: 1.2 })).toThrow(RangeError);
  });
});

const BURST: AutoscalerInput = {
  arrivals: [5, 30, 30, 30, 0, 0], capacityPerReplica: 10, coldStartTicks: 2, minReplicas: 1, maxReplicas: 10, initialReplicas: 1, target: 1, sloTicks: 1,
};

describe("task 3.9 — a queue-depth autoscaler on a trace", () => {
  it("the rule: ceil(outstanding ÷ (capacity × target)), clamped", () => {
    expect(desiredReplicas(0, 10, 0.8, 1, 10)).toBe(1);
    expect(desiredReplicas(8, 10, 0.8, 1, 10)).toBe(1); // 8 ÷ 8 = 1
    expect(desiredReplicas(9, 10, 0.8, 1, 10)).toBe(2);
    expect(desiredReplicas(1000, 10, 0.8, 1, 10)).toBe(10);
    expect(desiredReplicas(30, 10, 1, 4, 10)).toBe(4);
    expect(() => desiredReplicas(-1, 10, 0.8, 1, 10)).toThrow(RangeError);
    expect(() => desiredReplicas(1, 10, 0, 1, 10)).toThrow(/target/);
    expect(() => desiredReplicas(1, 10, 0.8, 3, 2)).toThrow(/maxReplicas/);
  });

  it("a burst, worked by hand tick by tick", () => {
    // t0: 1 ready, 5 arrive, 5 served; outstanding 5 → 1.
    // t1: 30 arrive, 10 served, 20 wait; outstanding 30 → 3: ask for 2 (serving from t3).
    // t2: 1 ready; 30 more; 10 of t1's served (waited 1); 40 wait; outstanding 50 → 5: ask for 2 more.
    // t3: 3 ready; 30 more; serve 30: t1's last 10 (waited 2: violations), 20 of t2's; 40 wait; → 7: ask 2 more.
    // t4: 5 ready; serve 50: t2's last 10 (waited 2: violations), t3's 30 (waited 1); outstanding 40 → 4:
    //     drop 3, the two still starting (asked at t3) and one serving.
    // t5: 4 ready, nothing to do → 1.
    const run = runQueueDepthAutoscaler(BURST);
    expect(run.ready).toEqual([1, 1, 1, 3, 5, 4]);
    expect(run.requested).toEqual([1, 3, 5, 7, 4, 1]);
    expect(run.backlog).toEqual([0, 20, 40, 40, 0, 0]);
    expect(run.violations).toBe(20);
    expect(run.replicaTicks).toBe(21);
    expect(run.peakReplicas).toBe(7);
  });

  it("keeps serving after the last arrival until the queue is empty", () => {
    const run = runQueueDepthAutoscaler({ ...BURST, arrivals: [50], maxReplicas: 1, sloTicks: 2 });
    // one replica, 10 a tick: 50 requests take ticks 0–4; those served at t3 and t4 waited 3 and 4 ticks
    expect(run.backlog).toEqual([40, 30, 20, 10, 0]);
    expect(run.ready).toEqual([1, 1, 1, 1, 1]);
    expect(run.violations).toBe(20);
    expect(run.replicaTicks).toBe(5);
  });

  it("a faster cold start means fewer violations on the same burst", () => {
    const quick = runQueueDepthAutoscaler({ ...BURST, coldStartTicks: 1 });
    // t1: ask for 2 → serving at t2: t2 serves 30 (all of t1's 20 waited 1, and 10 of t2's), no request waits 2 ticks
    expect(quick.violations).toBe(0);
    expect(quick.ready.slice(0, 3)).toEqual([1, 1, 3]);
  });

  it("refuses bad input with a RangeError", () => {
    expect(() => runQueueDepthAutoscaler({ ...BURST, coldStartTicks: 0 })).toThrow(/coldStartTicks/);
    expect(() => runQueueDepthAutoscaler({ ...BURST, arrivals: [1, -1] })).toThrow(/arrivals/);
    expect(() => runQueueDepthAutoscaler({ ...BURST, arrivals: [1.5] })).toThrow(/arrivals/);
    expect(() => runQueueDepthAutoscaler({ ...BURST, initialReplicas: 11 })).toThrow(/initialReplicas/);
    expect(() => runQueueDepthAutoscaler({ ...BURST, capacityPerReplica: 0 })).toThrow(/capacityPerReplica/);
  });
});

// The quiz answers are stored as sha256(salt + ":" + answer) with one salt per question, so reading
// this file does not give them away. Choices compare as lower-case letters; numbers at 3 significant
// figures (answer.toPrecision(3)).
const QUIZ: Record<keyof CapacityQuizAnswers, { salt: string; sha256: string }> = {
  q1: { salt: "58820d5a4bd47c7b", sha256: "141e08733043424368c27f6b6cad123fa745830130721c63fa77731be15f32f1" },
  q2: { salt: "1395852c15e64549", sha256: "2d1ae907065b988bbb2823d47c7313f90adc4c1cce3f80ed5af360fb16f5a156" },
  q3: { salt: "2853a83637d6de4a", sha256: "905fe554259b9bad2d850fbf029d8740ed11fff58b96586312e4ee57cd1130ce" },
  q4: { salt: "ea6be950f8894be5", sha256: "d7b838131633f535cb319408171f5ca00225586df7a3b345f3214276a4fd953c" },
  q5: { salt: "f63be2aef8f14810", sha256: "40409b74bcd237b9d545442f77f37919cc84c94b18af7ff119c83b5ef1313e9a" },
  q6: { salt: "5cc20d43b4a3810f", sha256: "99265dcbafb63917fc353261eb4c12f574739eb9f4ce246a0a68895beaf136e0" },
};

function canonicalAnswer(answer: unknown): string {
  return typeof answer === "number" && Number.isFinite(answer) ? answer.toPrecision(3) : String(answer).trim().toLowerCase();
}

function isRight(q: keyof CapacityQuizAnswers, answer: unknown): boolean {
  const { salt, sha256 } = QUIZ[q];
  return createHash("sha256").update(`${salt}:${canonicalAnswer(answer)}`).digest("hex") === sha256;
}

describe("task 3.10 — quiz: the usual answer checked", () => {
  const check = (q: keyof CapacityQuizAnswers) => {
    const a = capacityQuizAnswers()[q];
    expect(isRight(q, a), `${q.toUpperCase()}: ${JSON.stringify(a)} (read as "${canonicalAnswer(a)}") is not the right answer`).toBe(true);
  };
  it("Q1: GB of FP16 70B weights", () => check("q1"));
  it("Q2: 4,096-token sequences beside 4-bit weights on 80 GB", () => check("q2"));
  it("Q3: does a draft model cut TTFT?", () => check("q3"));
  it("Q4: the H100 decode crossover batch", () => check("q4"));
  it("Q5: queue depth vs utilisation", () => check("q5"));
  it("Q6: TTFT saved by a cached system prompt", () => check("q6"));
});
