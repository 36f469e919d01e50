// lab/capacity and `lab capacity`: the memory arithmetic the interview answer rests on, sources on
// every table entry, the roofline crossover, the queue simulation against closed forms, autoscaling
// policies on a fixed bursty trace, and the CLI's --json shape and errors.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  averageBitsPerWeight, burstyArrivals, checkTensorParallel, crossoverBatch, DEFAULTS, estimateLatency, exponential, findFormat,
  findGpu, findKvFormat, findModel, GPUS, KV_FORMATS, kvBytesPerToken, loadGgufModel, measuredMachine, mmcMeanWait, MODELS,
  parameterCount, planMemory, poissonArrivals, PUBLISHED_70B, reproduce, inflightThroughput, simulateAutoscaling, simulateQueue, WEIGHT_FORMATS, type ScalingPolicy,
} from "../lab/capacity/index.ts";
import { mulberry32 } from "../lab/random.ts";

const GB = 1e9;
const fp16 = findKvFormat("fp16");

describe("tables: every entry has a source", () => {
  const entries: [string, { source?: { url?: string; says?: string } }][] = [
    ...GPUS.map((g) => [`GPU ${g.key}`, g] as [string, typeof g]),
    ...MODELS.map((m) => [`model ${m.key}`, m] as [string, typeof m]),
    ...WEIGHT_FORMATS.map((f) => [`format ${f.key}`, f] as [string, typeof f]),
    ...KV_FORMATS.map((k) => [`KV ${k.key}`, k] as [string, typeof k]),
    ...Object.entries(DEFAULTS).map(([k, v]) => [`default ${k}`, v] as [string, typeof v]),
  ];
  it.each(entries)("%s cites a URL and what it says", (_, entry) => {
    expect(entry.source?.url, "source.url").toMatch(/^(https:\/\/|lab\/)/);
    expect((entry.source?.says ?? "").length, "source.says").toBeGreaterThan(20);
  });

  // GPU specs, model configs and efficiency defaults were re-read after they were entered: each says
  // which copy of its source confirmed it, or that none could be re-read.
  const verified: [string, { source: { checked?: string } }][] = [
    ...GPUS.map((g) => [`GPU ${g.key}`, g] as [string, typeof g]),
    ...MODELS.map((m) => [`model ${m.key}`, m] as [string, typeof m]),
    ...Object.entries(DEFAULTS).map(([k, v]) => [`default ${k}`, v] as [string, typeof v]),
  ];
  it.each(verified)("%s says how it was checked", (_, entry) => {
    expect(entry.source.checked ?? "").toMatch(/^(re-read: |NOT re-read: ).{40,}/);
  });

  it("the target model comes from data/models/target.gguf through llamaHparams", async () => {
    const t = await loadGgufModel("data/models/target.gguf");
    expect(t.source.url).toBe("data/models/target.gguf");
    expect(t.layers).toBeGreaterThan(0);
    expect(t.heads % t.kvHeads).toBe(0);
    // parameters counted from the file's own tensor table
    expect(parameterCount(t)).toBe(t.tensors!.reduce((s, x) => s + x.ne.reduce((a, b) => a * b, 1), 0));
  });

  it("parameter counts follow from the configs (Llama-2-70B: 68,976,648,192)", async () => {
    expect(parameterCount(await findModel("llama-2-70b"))).toBe(68_976_648_192);
    expect(parameterCount(await findModel("llama-2-7b"))).toBe(6_738_415_616);
    expect(parameterCount(await findModel("llama-3-8b"))).toBe(8_030_261_248);
    expect(parameterCount(await findModel("llama-3-70b"))).toBe(70_553_706_496);
  });

  it("bits per weight: 16 / 8 / 4 + 20/128 for linear layers; GGUF mixes from lab/quant's block geometry", async () => {
    const m = await findModel("llama-2-70b");
    expect(averageBitsPerWeight(m, findFormat("fp16"))).toBe(16);
    expect(findFormat("awq-int4").linearBits).toBeCloseTo(4.15625, 10);
    expect(averageBitsPerWeight(m, findFormat("q8_0"))).toBeCloseTo(8.5, 3); // norms (F32) are a rounding error
    const q4km = averageBitsPerWeight(m, findFormat("q4_k_m"));
    expect(q4km).toBeGreaterThan(4.5); // Q4_K base plus Q6_K attn_v/ffn_down/output
    expect(q4km).toBeLessThan(5.0);
  });

  it("this machine is built from measured inputs only, and refuses missing ones", () => {
    const me = measuredMachine({ memoryBytes: 16 * GB, memoryBandwidth: 20 * GB, flops: 1e11, how: "test input" });
    expect(me.source.says).toBe("test input");
    expect(() => measuredMachine({ memoryBytes: 16 * GB, memoryBandwidth: 0, flops: 1e11, how: "x" })).toThrow(/memoryBandwidth/);
  });
});

describe("memory", () => {
  it("Llama-2-70B's KV cache is 327,680 bytes per token in FP16 (2 × 80 × 8 × 128 × 2), half in FP8", async () => {
    const m = await findModel("llama-2-70b");
    expect(kvBytesPerToken(m, fp16)).toBe(327_680);
    expect(kvBytesPerToken(m, findKvFormat("fp8"))).toBe(163_840);
  });

  it("FP16 70B weights (~138 GB) do not fit one 80 GB GPU; they fit two", async () => {
    const model = await findModel("llama-2-70b");
    const base = { model, gpu: findGpu("h100-sxm"), format: findFormat("fp16"), kv: fp16, context: 4096, concurrency: 1 };
    const one = planMemory({ ...base, tp: 1 });
    expect(one.weightsBytes / GB).toBeCloseTo(137.95, 1);
    expect(one.fits).toBe(false);
    expect(one.maxConcurrency).toBe(0);
    expect(planMemory({ ...base, tp: 2 }).fits).toBe(true);
  });

  it("4-bit weights plus 4,096 tokens × 16 sequences fit one 80 GB GPU", async () => {
    const plan = planMemory({ model: await findModel("llama-2-70b"), gpu: findGpu("a100-80gb"), format: findFormat("awq-int4"), kv: fp16, tp: 1, context: 4096, concurrency: 16 });
    expect(plan.kvBytes).toBe(327_680 * 4096 * 16);
    expect(plan.fits).toBe(true);
    expect(plan.maxConcurrency).toBeGreaterThanOrEqual(16);
    // weights + KV + headroom add up
    expect(plan.totalBytes).toBeCloseTo(plan.weightsBytes + plan.kvBytes + plan.headroomBytes, -3);
  });

  it("tensor parallelism splits KV heads until each GPU holds one, then replicates", async () => {
    const m = await findModel("llama-2-70b");
    const at = (tp: number) => planMemory({ model: m, gpu: findGpu("h100-sxm"), format: findFormat("fp16"), kv: fp16, tp, context: 1000, concurrency: 1 }).perGpu.kvBytes;
    expect(at(2)).toBe(at(1) / 2);
    expect(at(8)).toBe(at(1) / 8);
    expect(at(16)).toBe(at(8)); // 8 KV heads: a 16-way split replicates them
  });

  it("impossible configurations are clear errors", async () => {
    const m = await findModel("llama-2-70b");
    expect(() => checkTensorParallel(m, 3)).toThrow(/3 GPUs do not divide its 64 attention heads; tensor parallelism can use 1, 2, 4, 8/);
    expect(() => planMemory({ model: m, gpu: findGpu("h100-sxm"), format: findFormat("fp16"), kv: fp16, tp: 8, context: 8192, concurrency: 1 }))
      .toThrow(/context 8192 exceeds its maximum of 4096/);
    await expect(findModel("gpt-5")).rejects.toThrow(/known: llama-2-70b, llama-3-70b, llama-3-8b, llama-2-7b, target/);
    expect(() => findGpu("b200")).toThrow(/known: a100-40gb, a100-80gb, h100-sxm, h200, l4/);
  });
});

describe("latency (roofline)", () => {
  it("crossover batch = FLOP/s ÷ bandwidth × bytes per parameter ÷ 2", () => {
    const h100 = findGpu("h100-sxm");
    expect(crossoverBatch(h100.denseBf16Flops, h100.memoryBandwidth, 2)).toBeCloseTo(989.5 / 3.35, 6); // ≈ 295
    expect(crossoverBatch(h100.denseBf16Flops, h100.memoryBandwidth, 0.5)).toBeCloseTo(989.5 / 3.35 / 4, 6);
    expect(crossoverBatch(100, 10, 2, 0.5, 0.5)).toBe(10);
  });

  it("decode turns from memory- to compute-bound at the crossover batch", async () => {
    const model = await findModel("llama-2-70b");
    const base = { model, gpu: findGpu("h100-sxm"), format: findFormat("fp16"), kv: fp16, tp: 1, promptTokens: 1, outputTokens: 1, mfu: 1, mbu: 1 };
    const b = estimateLatency({ ...base, concurrency: 1 }).crossoverBatch;
    expect(b).toBeCloseTo(295.4, 0);
    expect(estimateLatency({ ...base, concurrency: Math.floor(b * 0.9) }).decodeBound).toBe("memory");
    expect(estimateLatency({ ...base, concurrency: Math.ceil(b * 1.1) }).decodeBound).toBe("compute");
    // batch 1: TPOT = bytes ÷ bandwidth, 2 × 68.7e9 parameters ÷ 3.35 TB/s ≈ 41 ms
    expect(estimateLatency({ ...base, concurrency: 1 }).tpotMs).toBeCloseTo((2 * 68_714_504_192 + 327_680 * 1.5) / 3.35e12 * 1e3, 2);
  });

  it("TTFT = queue wait + prefill × (1 − cached share); speculative decoding divides TPOT, not TTFT", async () => {
    const model = await findModel("llama-2-70b");
    const base = { model, gpu: findGpu("h100-sxm"), format: findFormat("fp16"), kv: fp16, tp: 4, promptTokens: 2000, outputTokens: 200, concurrency: 8 };
    const plain = estimateLatency(base);
    expect(plain.terms.prefillComputeMs).toBeGreaterThan(plain.terms.prefillMemoryMs); // a 2,000-token prefill is compute-bound
    const waited = estimateLatency({ ...base, queueWaitS: 0.25 });
    expect(waited.ttftMs - plain.ttftMs).toBeCloseTo(250, 6);
    const cached = estimateLatency({ ...base, cachedShare: 0.5 });
    expect(cached.terms.prefillComputeMs).toBeLessThan(plain.terms.prefillComputeMs * 0.55);
    const spec = estimateLatency({ ...base, speculativeSpeedup: 2 });
    expect(spec.tpotMs).toBeCloseTo(plain.tpotMs / 2, 9);
    expect(spec.ttftMs).toBe(plain.ttftMs);
    expect(plain.e2eMs).toBeCloseTo(plain.ttftMs + plain.tpotMs * 199, 6);
  });

  it("tensor parallelism adds all-reduce time from the interconnect; FP8 uses FP8 tensor cores only where the GPU has them", async () => {
    const model = await findModel("llama-2-70b");
    const base = { model, format: findFormat("fp8"), kv: fp16, promptTokens: 1000, outputTokens: 100, concurrency: 1 };
    const h100 = estimateLatency({ ...base, gpu: findGpu("h100-sxm"), tp: 2 });
    // 2 all-reduces × 80 layers × 2·(1/2) × 1000 tokens × 8192 × 2 bytes ÷ 450 GB/s
    expect(h100.terms.prefillCommMs).toBeCloseTo((2 * 80 * 1 * 1000 * 8192 * 2) / 450e9 * 1e3, 6);
    expect(h100.math).toBe("FP8");
    expect(estimateLatency({ ...base, gpu: findGpu("a100-80gb"), tp: 2 }).math).toMatch(/^BF16 \(no FP8/);
  });
});

describe("queueing", () => {
  const measure = (lambda: number, mu: number, c: number) => {
    const arrivals = poissonArrivals(lambda, 100_000 / lambda, 7); // ~100,000 requests
    const random = mulberry32(11);
    return simulateQueue(arrivals, c, () => exponential(random, mu));
  };
  it.each([
    [0.7, 1, 1],
    [3, 1, 4],
    [12, 1, 16],
  ])("λ=%d, μ=%d, c=%d: mean wait within 5 percent + 2 ms of M/M/c (Erlang C), seed 7 and 11", (lambda, mu, c) => {
    const sim = measure(lambda, mu, c);
    const exact = mmcMeanWait(lambda, mu, c);
    expect(Math.abs(sim.meanWaitS - exact)).toBeLessThan(0.05 * exact + 0.002);
    expect(sim.utilisation).toBeCloseTo(lambda / mu / c, 1);
  });

  it("M/M/1's closed form is ρ ÷ (μ − λ)", () => {
    expect(mmcMeanWait(0.7, 1, 1)).toBeCloseTo(0.7 / 0.3, 12);
    expect(() => mmcMeanWait(2, 1, 2)).toThrow(/offered load 2 must be below the 2 servers/);
  });

  it("the same seed gives the same simulation", () => {
    expect(measure(3, 1, 4).meanWaitS).toBe(measure(3, 1, 4).meanWaitS);
  });
});

describe("autoscaling on a fixed bursty trace", () => {
  // base 1 request/s with a 120 s burst at 8/s every 10 minutes, for 30 minutes; 8 s per request,
  // 16 slots per replica, replicas take 30 s to start; SLO: TTFT ≤ 1 s.
  const arrivals = burstyArrivals({ baseRate: 1, burstRate: 8, periodS: 600, burstS: 120, durationS: 1800, seed: 3 });
  const run = (policy: ScalingPolicy, min = 1, max = 10) => simulateAutoscaling({
    arrivals, serviceS: () => 8, prefillS: () => 0.2, slotsPerReplica: 16, gpusPerReplica: 1, minReplicas: min, maxReplicas: max,
    initialReplicas: min, coldStartS: 30, intervalS: 15, scaleDownWindowS: 300, ttftSloS: 1, policy,
  });
  const byUtilisation = run({ kind: "utilisation", target: 0.7 });
  const byQueue = run({ kind: "queue-depth", targetPerSlot: 0.7 });

  it("the trace is bursty: the burst minutes carry 8× the base rate", () => {
    const inBurst = arrivals.filter((t) => t % 600 >= 480).length;
    expect(inBurst / (3 * 120)).toBeCloseTo(8, 0);
    expect((arrivals.length - inBurst) / (3 * 480)).toBeCloseTo(1, 0);
  });

  it("scaling on queue depth violates the SLO less often than scaling on utilisation, for similar GPU-hours", () => {
    expect(byQueue.sloViolations).toBeLessThan(byUtilisation.sloViolations);
    expect(byQueue.gpuHours).toBeLessThan(byUtilisation.gpuHours * 1.25);
    // utilisation saturates at 100%: each decision grows the fleet by at most 1 ÷ 0.7
    const t = byUtilisation.timeline;
    for (let i = 1; i < t.length; i++) expect(t[i]![1]).toBeLessThanOrEqual(Math.ceil(t[i - 1]![1] / 0.7));
    // queue depth asks for the whole backlog at once: somewhere it more than doubles in one decision
    expect(byQueue.timeline.some(([, n], i, all) => i > 0 && n > 2 * all[i - 1]![1])).toBe(true);
  });

  it("bounds: a fixed fleet of 10 meets the SLO, a fixed single replica does not", () => {
    const ten = run({ kind: "queue-depth", targetPerSlot: 0.7 }, 10, 10);
    expect(ten.sloViolations).toBe(0);
    expect(ten.gpuHours).toBeGreaterThan(byQueue.gpuHours);
    expect(run({ kind: "queue-depth", targetPerSlot: 0.7 }, 1, 1).violationRate).toBeGreaterThan(0.3);
  });
});

describe("lab capacity", () => {
  const BIN = join(import.meta.dirname, "..", "lab", "cli", "bin.mjs");
  const lab = (...args: string[]) => {
    const r = spawnSync(process.execPath, [BIN, "capacity", ...args], { encoding: "utf8", timeout: 120_000 });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const CLI_MS = 180_000;

  it("--json: inputs, memory, latency, throughput, assumptions", () => {
    const r = lab("--model", "llama-2-70b", "--gpu", "h100-sxm", "--format", "awq-int4", "--context", "4096", "--concurrency", "16", "--json");
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.memory).toMatchObject({ kvBytesPerToken: 327_680, kvBytes: 327_680 * 4096 * 16, fits: true });
    for (const k of ["weightsBytes", "totalBytes"]) expect(typeof doc.memory[k]).toBe("number");
    for (const k of ["ttftMs", "tpotMs", "e2eMs"]) expect(doc.latency[k]).toBeGreaterThan(0);
    expect(doc.throughput.decodeTokensPerSecond).toBeGreaterThan(0);
    expect(doc.assumptions.join("\n")).toMatch(/MBU 0\.5 — .*https:\/\//);
  }, CLI_MS);

  it("--arrival-rate adds the M/M/c (Erlang C) wait to TTFT, and refuses a rate the replica cannot serve", () => {
    const args = ["--model", "llama-3-8b", "--gpu", "l4", "--format", "fp8", "--concurrency", "8", "--json"];
    const base = JSON.parse(lab(...args).stdout);
    const r = lab(...args, "--arrival-rate", "0.3");
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    const wait = mmcMeanWait(0.3, 1e3 / base.latency.e2eMs, 8) * 1e3;
    expect(doc.latency.ttftMs - base.latency.ttftMs).toBeCloseTo(wait, 6);
    expect(doc.inputs.queueWaitMs).toBeCloseTo(wait, 6);
    expect(doc.throughput.requestsPerSecond).toBeCloseTo(base.throughput.requestsPerSecond, 9);
    const over = lab(...args, "--arrival-rate", "10");
    expect(over.code).toBe(2);
    expect(over.stderr).toMatch(/overloads this replica: 8 slots .* serve at most 0\.\d+ requests\/s/);
  }, CLI_MS);

  it("unknown model or GPU lists the known ones (exit 2); TP and context errors are explained", () => {
    const model = lab("--model", "gpt-5", "--gpu", "h100-sxm");
    expect(model.code).toBe(2);
    expect(model.stderr).toMatch(/unknown model "gpt-5"; known: llama-2-70b, .*target/);
    const gpu = lab("--model", "llama-2-70b", "--gpu", "b200");
    expect(gpu.code).toBe(2);
    expect(gpu.stderr).toMatch(/unknown GPU "b200"; known: a100-40gb/);
    const tp = lab("--model", "llama-2-70b", "--gpu", "h100-sxm", "--gpus", "3");
    expect(tp.code).toBe(2);
    expect(tp.stderr).toMatch(/do not divide its 64 attention heads/);
    const ctx = lab("--model", "llama-2-70b", "--gpu", "h100-sxm", "--context", "8192");
    expect(ctx.code).toBe(2);
    expect(ctx.stderr).toMatch(/exceeds its maximum of 4096/);
  }, CLI_MS);
});

describe("published 70B measurements (TensorRT-LLM's performance tables)", () => {
  it.each(PUBLISHED_70B.map((p) => [p.id, p] as const))("%s: within 2×, or the miss is documented", async (_, p) => {
    const r = reproduce(await findModel("llama-2-70b"), p);
    // a fixed commit, or the release tag the page itself names as its data's provenance
    expect(p.source.url).toMatch(/^https:\/\/github\.com\/NVIDIA\/TensorRT-LLM\/blob\/([0-9a-f]{40}|v\d+\.\d+\.\d+)\//);
    expect(p.source.checked ?? p.source.says).toBeTruthy();
    expect(r.fits, "the published configuration ran, so it must fit our memory model").toBe(true);
    expect(r.within2x, `predicted ${r.predicted.toFixed(1)} vs published ${p.published} (ratio ${r.ratio.toFixed(2)}); miss note: ${p.miss ?? "none"}`)
      .toBe(p.miss === undefined);
  });

  it("at least three points are reproduced within 2×, on every GPU and for both kinds of benchmark", async () => {
    const model = await findModel("llama-2-70b");
    const hits = PUBLISHED_70B.filter((p) => reproduce(model, p).within2x);
    expect(hits.length).toBeGreaterThanOrEqual(3);
    for (const gpu of ["a100-80gb", "h100-sxm", "h200"]) expect(hits.some((p) => p.gpu === gpu), gpu).toBe(true);
    for (const metric of ["outputTokensPerSecondPerGpu", "outputTokensPerSecond", "ttftMs"]) expect(hits.some((p) => p.metric === metric), metric).toBe(true);
  });

  it("in-flight batching: the steady-state batch follows the run's own limits (token budget, KV cache)", async () => {
    const model = await findModel("llama-2-70b");
    const at = (id: string) => inflightThroughput(model, PUBLISHED_70B.find((p) => p.id === id)!);
    // 2,048 tokens a step shared by decode tokens and the prompts that replace finished sequences:
    // 128/128 → 2048 ÷ (1 + 1) = 1024 sequences; 2048/128 → 2048 ÷ 17 = 120
    expect(at("trtllm-v0.10-h200-fp8-tp1-128-128")).toMatchObject({ batch: 1024, limitedBy: "token budget" });
    expect(at("trtllm-v0.10-h200-fp8-tp1-2048-128")).toMatchObject({ batch: 120, limitedBy: "token budget" });
    // H200, FP8, one GPU. Weights: 68,451,041,280 linear weights at 1 byte + 524,288,000 embedding/head
    // weights and 1,318,912 norm weights at 2 bytes = 69,502,255,104 B. KV: 0.9 × (141e9 − that) ÷ 163,840 B
    // per token = 392,749 tokens, ÷ (128 + 2048/2) tokens per sequence = 340 sequences.
    expect(at("trtllm-v0.10-h200-fp8-tp1-128-2048")).toMatchObject({ batch: 340, limitedBy: "KV cache" });
    expect(() => inflightThroughput(model, PUBLISHED_70B[0]!)).toThrow(/not an in-flight-batching point/);
  });
});
