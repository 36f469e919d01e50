// lab/capacity's notebook-05 machinery: the p99 M/M/c wait, the deployment search, and the KV-policy
// simulation (static / contiguous reservation / paged blocks), on hand-checkable cases.
import { describe, expect, it } from "vitest";
import {
  bestPerGpu, erlangC, estimateLatency, exponential, findFormat, findGpu, findKvFormat, findModel, lognormalRequests, mmcWaitQuantile,
  poissonArrivals, quantile, searchDeployments, simulateKvPolicy, simulateQueue, sizeConfiguration, type RequestShape,
} from "../lab/capacity/index.ts";
import { mulberry32 } from "../lab/random.ts";

describe("p99 wait of M/M/c", () => {
  it("M/M/1: P(W > t) = ρ e^{−(μ−λ)t}, so the p99 is ln(ρ ÷ 0.01) ÷ (μ − λ)", () => {
    expect(mmcWaitQuantile(0.7, 1, 1, 0.99)).toBeCloseTo(Math.log(70) / 0.3, 12);
    // fewer than 1% wait at all: the p99 wait is 0
    expect(erlangC(16, 4)).toBeLessThan(0.01);
    expect(mmcWaitQuantile(4, 1, 16, 0.99)).toBe(0);
    expect(() => mmcWaitQuantile(1, 1, 1, 0.99)).toThrow(/offered load/);
    expect(() => mmcWaitQuantile(0.5, 1, 1, 1)).toThrow(/quantile/);
  });

  it("agrees with the simulation's p99 wait (λ=3, μ=1, c=4; seeds 7 and 11)", () => {
    const arrivals = poissonArrivals(3, 100_000 / 3, 7);
    const random = mulberry32(11);
    const sim = simulateQueue(arrivals, 4, () => exponential(random, 1));
    const exact = mmcWaitQuantile(3, 1, 4, 0.99);
    expect(Math.abs(quantile(sim.waits, 0.99) - exact) / exact).toBeLessThan(0.05);
  });
});

describe("deployment search", () => {
  const workload = { requestsPerSecond: 5, promptTokens: 1000, outputTokens: 250 };
  const slo = { ttftP99S: 1, tpotS: 0.05 };

  it("sizes one configuration: TPOT stretched by the prefill stalls, TTFT = prefill + p99 wait", async () => {
    const model = await findModel("llama-2-70b");
    const c = { gpu: "h100-sxm", format: "fp8", kv: "fp16", tp: 2, batch: 64 };
    const d = sizeConfiguration(model, c, workload, slo);
    if (!("replicas" in d)) throw new Error(d.reason);
    const lat = estimateLatency({ model, gpu: findGpu("h100-sxm"), format: findFormat("fp8"), kv: findKvFormat("fp16"), tp: 2, promptTokens: 1000, outputTokens: 250, concurrency: 64 });
    const prefill = lat.prefillMs / 1e3;
    const rate = 5 / d.replicas;
    expect(d.prefillS).toBeCloseTo(prefill, 12);
    expect(d.tpotS).toBeCloseTo(lat.tpotMs / 1e3 / (1 - rate * prefill), 12);
    expect(d.e2eS).toBeCloseTo(prefill + 249 * d.tpotS, 12);
    expect(d.ttftP99S).toBeCloseTo(prefill + mmcWaitQuantile(rate, 1 / d.e2eS, 64, 0.99), 12);
    expect(d.gpus).toBe(2 * d.replicas);
    // fewer replicas would break the SLO (or is impossible)
    expect(d.replicas).toBe(1);
  });

  it("says why a configuration cannot serve", async () => {
    const model = await findModel("llama-2-70b");
    expect(sizeConfiguration(model, { gpu: "h100-sxm", format: "fp16", kv: "fp16", tp: 1, batch: 1 }, workload, slo)).toEqual({ reason: "does not fit" });
    expect(sizeConfiguration(model, { gpu: "h100-sxm", format: "fp16", kv: "fp16", tp: 3, batch: 1 }, workload, slo)).toMatchObject({ reason: expect.stringMatching(/do not divide/) });
    expect(sizeConfiguration(model, { gpu: "a100-80gb", format: "awq-int4", kv: "fp16", tp: 1, batch: 1 }, workload, { ttftP99S: 0.01, tpotS: 1 }))
      .toMatchObject({ reason: expect.stringMatching(/prefill alone takes/) });
    expect(sizeConfiguration(model, { gpu: "a100-80gb", format: "awq-int4", kv: "fp16", tp: 1, batch: 1 }, workload, { ttftP99S: 1, tpotS: 0.001 }))
      .toMatchObject({ reason: expect.stringMatching(/TPOT at batch 1/) });
  });

  it("every result meets the SLO, cheapest first; more traffic never needs fewer GPUs", async () => {
    const model = await findModel("llama-2-70b");
    const space = { gpus: ["a100-80gb", "h100-sxm"], formats: ["fp16", "fp8", "awq-int4"], kvs: ["fp16"], tps: [1, 2, 4], batches: [8, 32, 128] };
    const found = searchDeployments(model, workload, slo, space);
    expect(found.length).toBeGreaterThan(3);
    for (const d of found) {
      expect(d.ttftP99S).toBeLessThanOrEqual(1);
      expect(d.tpotS).toBeLessThanOrEqual(0.05);
    }
    for (let i = 1; i < found.length; i++) expect(found[i]!.gpus).toBeGreaterThanOrEqual(found[i - 1]!.gpus);
    const per = bestPerGpu(found);
    expect(new Set(per.map((d) => d.gpu)).size).toBe(per.length);
    const busier = searchDeployments(model, { ...workload, requestsPerSecond: 20 }, slo, space);
    expect(busier[0]!.gpus).toBeGreaterThanOrEqual(found[0]!.gpus);
  });
});

describe("KV policies on a saturated replica", () => {
  const base = async (requests: RequestShape[], kvTokens: number, maxLen: number) => ({
    model: await findModel("llama-2-70b"), gpu: findGpu("h100-sxm"), format: findFormat("fp8"), kv: findKvFormat("fp16"), tp: 2,
    requests, kvTokens, maxLen, blockSize: 16, maxBatch: 64,
  });
  const same = (n: number, promptTokens: number, outputTokens: number) => Array.from({ length: n }, () => ({ promptTokens, outputTokens }));

  it("paged blocks hold more sequences than max-length reservation; every output token is emitted once", async () => {
    // 256 KV tokens; maxLen 128 reserves 2 slots; each request is 8 + 8 tokens: 1 block of 16 → 16 fit
    const input = await base(same(32, 8, 8), 256, 128);
    const contiguous = simulateKvPolicy("contiguous", input);
    const paged = simulateKvPolicy("paged", input);
    expect(contiguous.meanBatch).toBeCloseTo(2, 9);
    expect(paged.meanBatch).toBeCloseTo(16, 9);
    expect(paged.preemptions).toBe(0);
    for (const r of [contiguous, paged]) expect(r.outputTokensPerSecond * r.seconds).toBeCloseTo(32 * 8, 6);
    expect(paged.steps).toBe(16); // two waves of 16 sequences × 8 steps
    expect(contiguous.steps).toBe(128); // 16 waves of 2 × 8 steps
    expect(paged.outputTokensPerSecond).toBeGreaterThan(4 * contiguous.outputTokensPerSecond);
  });

  it("static batching waits for the longest output before admitting anyone", async () => {
    // 2 slots; outputs 1 and 9 alternate: a static batch runs 9 steps for 10 tokens, continuous refills
    const requests = Array.from({ length: 8 }, (_, i) => ({ promptTokens: 4, outputTokens: i % 2 ? 9 : 1 }));
    const input = await base(requests, 64, 32);
    const stat = simulateKvPolicy("static", input);
    const cont = simulateKvPolicy("contiguous", input);
    expect(stat.steps).toBe(4 * 9);
    expect(cont.steps).toBeLessThan(stat.steps);
    expect(stat.outputTokensPerSecond * stat.seconds).toBeCloseTo(4 * 10, 6);
  });

  it("paged preempts the newest sequence when blocks run out, and still finishes every request", async () => {
    // 64 KV tokens = 4 blocks; requests of 1 + 40 tokens grow to 3 blocks each
    const input = await base(same(4, 1, 40), 64, 64);
    const paged = simulateKvPolicy("paged", input);
    expect(paged.preemptions).toBeGreaterThan(0);
    expect(paged.outputTokensPerSecond * paged.seconds).toBeCloseTo(4 * 40, 6);
  });

  it("refuses requests longer than maxLen and caches too small for one", async () => {
    await expect(base(same(1, 100, 100), 1024, 128).then((i) => simulateKvPolicy("paged", i))).rejects.toThrow(/longer than maxLen/);
    await expect(base(same(1, 10, 10), 100, 128).then((i) => simulateKvPolicy("paged", i))).rejects.toThrow(/cannot hold one/);
  });

  it("lognormal request shapes: seeded, within bounds", () => {
    const o = { n: 500, promptMedian: 600, promptSigma: 0.8, outputMedian: 150, outputSigma: 1, maxLen: 4096, seed: 1 };
    const a = lognormalRequests(o);
    expect(lognormalRequests(o)).toEqual(a);
    for (const r of a) {
      expect(r.promptTokens).toBeGreaterThanOrEqual(1);
      expect(r.outputTokens).toBeGreaterThanOrEqual(1);
      expect(r.promptTokens + r.outputTokens).toBeLessThanOrEqual(4096);
    }
    const median = [...a.map((r) => r.promptTokens)].sort((x, y) => x - y)[250]!;
    expect(median / 600).toBeGreaterThan(0.85);
    expect(median / 600).toBeLessThan(1.15);
  });
});
