// Graded tests for tasks 3.4–3.5 (batching and serving, notebooks/04-batching-and-serving.ipynb). They
// import the implementation through the "@target/" alias: solutions/ by default, exercises/ with
// LAB_TARGET=exercises.
//
// Every expectation comes from an independent reference, never from lab/serve/scheduler.ts or
// lab/capacity (the kit's own scheduler and queueing models): steps worked by hand, a brute force
// over every token allocation (the plan is the lexicographically largest allocation in priority
// order), a multi-step simulation that checks every request ends with exactly its prompt and output,
// a millisecond-grid integral of queue depth, and a FCFS queue simulated here for Little's law.
import { describe, expect, it } from "vitest";
import { scheduleStep, type StepInput, type StepPlan, type StepRequest } from "@target/serving/scheduler-step.ts";
import {
  bestOperatingPoint, inSystemAt, littlesLaw, peakInSystem, replicasNeeded, timeAverageInSystem, type TraceRequest,
} from "@target/serving/scale-out.ts";
import { mulberry32 } from "../../lab/random.ts";

const req = (id: string, totalTokens: number, computedTokens = 0): StepRequest => ({ id, totalTokens, computedTokens });
const base = { maxRunning: 16, freeBlocks: 1000, blockSize: 16 };
/** [id, tokens, kind, sample, admitted, blocks] per scheduled request: one line per row in a failure message. */
/** a > b in lexicographic order (same length). */
function lexGreater(a: readonly number[], b: readonly number[]): boolean {
  const i = a.findIndex((x, k) => x !== b[k]);
  return i >= 0 && a[i]! > b[i]!;
}
const rows = (p: StepPlan) => p.scheduled.map((s) => [s.id, s.tokens, s.kind, s.sample, s.admitted, s.blocks]);

describe("task 3.4 — one scheduler step: token budget, chunked prefill", () => {
  it("splits the budget FCFS: 3 × 80-token prompts, budget 100 → a gets 80 and samples, b a 20-token chunk, c waits", () => {
    const p = scheduleStep({ ...base, running: [], waiting: [req("a", 80), req("b", 80), req("c", 80)], maxBatchTokens: 100 });
    // a: 80 tokens = 5 blocks of 16; b: 20 tokens = 2 blocks.
    expect(rows(p)).toEqual([["a", 80, "prefill", true, true, 5], ["b", 20, "prefill", false, true, 2]]);
    expect(p).toMatchObject({ budgetLeft: 0, blocksUsed: 7, stillWaiting: ["c"] });
  });

  it("decodes first, then the running prefill's chunk, then waiting requests", () => {
    // p was admitted first and is 50 tokens into a 200-token prompt; d1 and d2 decode.
    const running = [req("p", 200, 50), req("d1", 31, 30), req("d2", 17, 16)];
    const small = scheduleStep({ ...base, running, waiting: [req("w", 40)], maxBatchTokens: 64 });
    // d1: 30 → 31 stays in block 2 (0 new); d2: 16 → 17 opens block 2 (1 new); p: 50 → 112 = 7 − 4 = 3 new.
    expect(rows(small)).toEqual([["d1", 1, "decode", true, false, 0], ["d2", 1, "decode", true, false, 1], ["p", 62, "prefill", false, false, 3]]);
    expect(small).toMatchObject({ budgetLeft: 0, blocksUsed: 4, stillWaiting: ["w"] });
    const big = scheduleStep({ ...base, running, waiting: [req("w", 40)], maxBatchTokens: 300 });
    // p: 50 → 200 = 13 − 4 = 9 new blocks and samples; w: 40 tokens = 3 blocks.
    expect(rows(big)).toEqual([["d1", 1, "decode", true, false, 0], ["d2", 1, "decode", true, false, 1], ["p", 150, "prefill", true, false, 9], ["w", 40, "prefill", true, true, 3]]);
    expect(big).toMatchObject({ budgetLeft: 108, blocksUsed: 13, stillWaiting: [] });
  });

  it("a budget smaller than the decoders serves the first ones in running order; a prefill with 1 token left is a decode", () => {
    const p = scheduleStep({ ...base, running: [req("x", 20, 19), req("y", 9, 8), req("z", 5, 4)], waiting: [req("w", 3)], maxBatchTokens: 2 });
    expect(rows(p)).toEqual([["x", 1, "decode", true, false, 0], ["y", 1, "decode", true, false, 0]]);
    const last = scheduleStep({ ...base, running: [req("long", 100, 10), req("almost", 64, 63)], waiting: [], maxBatchTokens: 10 });
    expect(rows(last)).toEqual([["almost", 1, "decode", true, false, 0], ["long", 9, "prefill", false, false, 1]]); // 63 → 64 fills block 4; 10 → 19 opens block 2
  });

  it("admits no more than maxRunning requests in all", () => {
    const p = scheduleStep({ ...base, running: [req("d1", 5, 4), req("d2", 5, 4)], waiting: [req("x", 10), req("y", 10)], maxBatchTokens: 100, maxRunning: 3 });
    expect(p.scheduled.map((s) => s.id)).toEqual(["d1", "d2", "x"]);
    expect(p.stillWaiting).toEqual(["y"]);
  });

  it("admits a waiting request only if its chunk's KV blocks are free, and never skips ahead of one that does not fit", () => {
    const running = [req("d", 33, 32)]; // 32 → 33 opens block 3: 1 new block
    const waiting = [req("a", 64), req("b", 10), req("c", 24, 20)]; // a: 4 blocks, b: 1, c: 20 → 24 stays in block 2: 0
    const p = scheduleStep({ ...base, running, waiting, maxBatchTokens: 256, freeBlocks: 5 });
    expect(rows(p)).toEqual([["d", 1, "decode", true, false, 1], ["a", 64, "prefill", true, true, 4]]);
    expect(p).toMatchObject({ blocksUsed: 5, budgetLeft: 191, stillWaiting: ["b", "c"] }); // c would fit in 0 blocks: still waits behind b
    const tight = scheduleStep({ ...base, running, waiting, maxBatchTokens: 256, freeBlocks: 4 });
    expect(rows(tight)).toEqual([["d", 1, "decode", true, false, 1]]);
    expect(tight.stillWaiting).toEqual(["a", "b", "c"]);
    // The running decode is scheduled even with no block free (the real scheduler would preempt).
    expect(rows(scheduleStep({ ...base, running, waiting: [], maxBatchTokens: 8, freeBlocks: 0 }))).toEqual([["d", 1, "decode", true, false, 1]]);
  });

  it("with chunked prefill off a waiting prompt runs whole or waits; one longer than the budget is refused", () => {
    const waiting = [req("a", 80), req("b", 50)];
    const off = scheduleStep({ ...base, running: [], waiting, maxBatchTokens: 100, chunkedPrefill: false });
    expect(rows(off)).toEqual([["a", 80, "prefill", true, true, 5]]);
    expect(off).toMatchObject({ budgetLeft: 20, stillWaiting: ["b"] });
    const on = scheduleStep({ ...base, running: [], waiting, maxBatchTokens: 100 });
    expect(rows(on)).toEqual([["a", 80, "prefill", true, true, 5], ["b", 20, "prefill", false, true, 2]]);
    expect(() => scheduleStep({ ...base, running: [], waiting: [req("huge", 120)], maxBatchTokens: 100, chunkedPrefill: false })).toThrow(/huge/);
    // A running prefill is still chunked (it was admitted whole only when it had to be: a recompute).
    expect(rows(scheduleStep({ ...base, running: [req("r", 120, 10)], waiting: [], maxBatchTokens: 100, chunkedPrefill: false }))).toEqual([["r", 100, "prefill", false, false, 6]]);
  });

  it("a prefix-cache hit makes a waiting request need only its uncached tokens", () => {
    const p = scheduleStep({ ...base, running: [], waiting: [req("hit", 50, 48), req("miss", 50)], maxBatchTokens: 20 });
    // hit: 48 → 50 opens block 4 (1 new) and samples; miss: 18-token chunk = 2 blocks.
    expect(rows(p)).toEqual([["hit", 2, "prefill", true, true, 1], ["miss", 18, "prefill", false, true, 2]]);
  });

  it("rejects bad input with a RangeError naming it", () => {
    const ok: StepInput = { ...base, running: [], waiting: [req("a", 4)], maxBatchTokens: 8 };
    expect(() => scheduleStep({ ...ok, maxBatchTokens: 0 })).toThrow(RangeError);
    expect(() => scheduleStep({ ...ok, maxBatchTokens: 0 })).toThrow(/maxBatchTokens/);
    expect(() => scheduleStep({ ...ok, blockSize: 2.5 })).toThrow(/blockSize/);
    expect(() => scheduleStep({ ...ok, freeBlocks: -1 })).toThrow(/freeBlocks/);
    expect(() => scheduleStep({ ...ok, maxRunning: 1, running: [req("r1", 5, 4), req("r2", 5, 4)] })).toThrow(/maxRunning/);
    expect(() => scheduleStep({ ...ok, waiting: [req("bad", 4, 4)] })).toThrow(/bad/);
    expect(() => scheduleStep({ ...ok, waiting: [req("neg", 4, -1)] })).toThrow(/neg/);
    expect(() => scheduleStep({ ...ok, running: [req("twice", 5, 4)], waiting: [req("twice", 3)] })).toThrow(/twice/);
  });

  it("brute force: with blocks to spare the plan is the lexicographically largest allocation in priority order (200 random steps)", () => {
    const r = mulberry32(34);
    const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
    for (let trial = 0; trial < 200; trial++) {
      const running: StepRequest[] = Array.from({ length: int(0, 3) }, (_, i) => {
        const total = int(2, 6);
        return r() < 0.5 ? req(`r${i}`, total, total - 1) : req(`r${i}`, total, int(0, total - 2));
      });
      const waiting: StepRequest[] = Array.from({ length: int(0, 3) }, (_, i) => { const total = int(1, 5); return req(`w${i}`, total, int(0, total - 1)); });
      const maxBatchTokens = int(1, 12);
      const maxRunning = Math.max(1, running.length + int(0, 3));
      const input: StepInput = { running, waiting, maxBatchTokens, maxRunning, freeBlocks: 1000, blockSize: 4 };
      // Priority order: decoders, running prefills, then the waiting queue.
      const need = (x: StepRequest) => x.totalTokens - x.computedTokens;
      const order = [...running.filter((x) => need(x) === 1), ...running.filter((x) => need(x) > 1), ...waiting];
      const nRunning = running.length;
      let best: number[] | undefined;
      const alloc = new Array<number>(order.length).fill(0);
      const feasible = () => {
        if (alloc.reduce((a, b) => a + b, 0) > maxBatchTokens) return false;
        const w = alloc.slice(nRunning);
        const admitted = w.filter((n) => n > 0).length;
        if (nRunning + admitted > maxRunning) return false;
        return w.every((n, i) => n === 0 || w.slice(0, i).every((m) => m > 0)); // admitted = a prefix of the queue
      };
      const visit = (k: number) => {
        if (k === order.length) {
          if (feasible() && (!best || lexGreater(alloc, best))) best = [...alloc];
          return;
        }
        for (let n = 0; n <= need(order[k]!); n++) { alloc[k] = n; visit(k + 1); }
        alloc[k] = 0;
      };
      visit(0);
      const want = order.map((x, i) => [x.id, best![i]] as const).filter(([, n]) => n > 0);
      const plan = scheduleStep(input);
      const shown = JSON.stringify(input);
      expect(plan.scheduled.map((s) => [s.id, s.tokens]), shown).toEqual(want);
      for (const s of plan.scheduled) {
        const x = order.find((o) => o.id === s.id)!;
        expect(s.sample, `${shown}: ${s.id} sample`).toBe(s.tokens === need(x));
        expect(s.admitted, `${shown}: ${s.id} admitted`).toBe(waiting.includes(x));
        expect(s.kind, `${shown}: ${s.id} kind`).toBe(running.includes(x) && need(x) === 1 ? "decode" : "prefill");
      }
      expect(plan.budgetLeft, shown).toBe(maxBatchTokens - want.reduce((a, [, n]) => a + n, 0));
      expect(plan.stillWaiting, shown).toEqual(waiting.filter((x) => !want.some(([id]) => id === x.id)).map((x) => x.id));
    }
  });

  it("simulated to the end, steps respect budget and blocks and every request gets exactly its prompt, then its output one token a step", () => {
    const r = mulberry32(7);
    for (let trial = 0; trial < 30; trial++) {
      const blockSize = 4, pool = 200, maxBatchTokens = 3 + Math.floor(r() * 30);
      interface Sim { id: string; prompt: number; outputs: number; total: number; computed: number; generated: number; samples: number[] }
      const sims: Sim[] = Array.from({ length: 6 }, (_, i) => ({ id: `q${i}`, prompt: 1 + Math.floor(r() * 40), outputs: 1 + Math.floor(r() * 5), total: 0, computed: 0, generated: 0, samples: [] }));
      for (const s of sims) s.total = s.prompt;
      let waiting = [...sims];
      let running: Sim[] = [];
      let used = 0;
      for (let step = 0; (waiting.length || running.length) && step < 2000; step++) {
        const plan = scheduleStep({
          running: running.map((s) => req(s.id, s.total, s.computed)), waiting: waiting.map((s) => req(s.id, s.total, s.computed)),
          maxBatchTokens, maxRunning: 3, freeBlocks: pool - used, blockSize,
        });
        expect(plan.scheduled.reduce((a, s) => a + s.tokens, 0)).toBeLessThanOrEqual(maxBatchTokens);
        expect(plan.scheduled.length, "something runs every step").toBeGreaterThan(0);
        for (const s of plan.scheduled) {
          const sim = sims.find((x) => x.id === s.id)!;
          const blocks = Math.ceil((sim.computed + s.tokens) / blockSize) - Math.ceil(sim.computed / blockSize);
          expect(s.blocks).toBe(blocks);
          used += blocks;
          sim.computed += s.tokens;
          if (s.admitted) { waiting = waiting.filter((x) => x !== sim); running.push(sim); }
          if (s.sample) {
            sim.samples.push(step);
            sim.generated++;
            if (sim.generated === sim.outputs) { running = running.filter((x) => x !== sim); used -= Math.ceil(sim.computed / blockSize); }
            else sim.total++;
          }
        }
        expect(used).toBeLessThanOrEqual(pool);
      }
      for (const s of sims) {
        expect(s.generated, `${s.id} finished`).toBe(s.outputs);
        expect(s.computed).toBe(s.prompt + s.outputs - 1); // the last sampled token is never fed back
        // After the first sample, one token per step (decodes always fit: budget ≥ maxRunning).
        expect(s.samples.slice(1).map((t, i) => t - s.samples[i]!)).toEqual(new Array(s.outputs - 1).fill(1));
      }
    }
  });
});

describe("task 3.5 — queue depth, Little's law and a scale-out rule", () => {
  it("Little's law: any two of λ, W, L give the third", () => {
    expect(littlesLaw({ arrivalRate: 4, timeInSystemS: 0.5 })).toEqual({ arrivalRate: 4, timeInSystemS: 0.5, inSystem: 2 });
    expect(littlesLaw({ inSystem: 6, arrivalRate: 3 })).toEqual({ arrivalRate: 3, timeInSystemS: 2, inSystem: 6 });
    expect(littlesLaw({ inSystem: 6, timeInSystemS: 1.5 })).toEqual({ arrivalRate: 4, timeInSystemS: 1.5, inSystem: 6 });
    expect(littlesLaw({ arrivalRate: 0, timeInSystemS: 3 }).inSystem).toBe(0);
  });

  it("Little's law refuses one, three, negative, non-finite and undefined quantities", () => {
    expect(() => littlesLaw({ arrivalRate: 4 })).toThrow(RangeError);
    expect(() => littlesLaw({ arrivalRate: 4, timeInSystemS: 1, inSystem: 4 })).toThrow(RangeError);
    expect(() => littlesLaw({ arrivalRate: -1, timeInSystemS: 1 })).toThrow(/arrivalRate/);
    expect(() => littlesLaw({ arrivalRate: 1, timeInSystemS: Infinity })).toThrow(/timeInSystemS/);
    expect(() => littlesLaw({ inSystem: 2, arrivalRate: 0 })).toThrow(RangeError);
    expect(() => littlesLaw({ inSystem: 2, timeInSystemS: 0 })).toThrow(RangeError);
  });

  // Requests in the system on [arrival, departure): at t = 2 the first leaves as the third arrives.
  const trace: TraceRequest[] = [{ arrivalS: 0, departureS: 2 }, { arrivalS: 1, departureS: 3 }, { arrivalS: 2, departureS: 5 }, { arrivalS: 2, departureS: 2 }];

  it("queue depth at an instant and its peak, on half-open intervals (worked by hand)", () => {
    expect([0, 0.5, 1, 1.99, 2, 2.5, 3, 4.9, 5].map((t) => inSystemAt(trace, t))).toEqual([1, 1, 2, 2, 2, 2, 1, 1, 0]);
    expect(peakInSystem(trace)).toBe(2); // not 3: the first request has left when the third arrives
    expect(peakInSystem([])).toBe(0);
    expect(peakInSystem([{ arrivalS: 0, departureS: 10 }, { arrivalS: 1, departureS: 2 }, { arrivalS: 1.5, departureS: 3 }])).toBe(3);
  });

  it("time-averaged queue depth is the area under N(t) over the window (worked by hand)", () => {
    expect(timeAverageInSystem(trace, 0, 5)).toBeCloseTo(7 / 5, 12); // 2 + 2 + 3 + 0 request-seconds
    expect(timeAverageInSystem(trace, 1, 4)).toBeCloseTo(5 / 3, 12); // 1 + 2 + 2
    expect(timeAverageInSystem(trace, 10, 20)).toBe(0);
    expect(() => timeAverageInSystem(trace, 3, 3)).toThrow(RangeError);
    expect(() => inSystemAt([{ arrivalS: 2, departureS: 1 }], 0)).toThrow(RangeError);
    expect(() => peakInSystem([{ arrivalS: NaN, departureS: 1 }])).toThrow(RangeError);
  });

  it("random traces: the time average equals a millisecond-grid integral, and the peak the largest count at any event", () => {
    const r = mulberry32(12);
    for (let trial = 0; trial < 40; trial++) {
      const t: TraceRequest[] = Array.from({ length: 1 + Math.floor(r() * 12) }, () => {
        const a = Math.floor(r() * 2000) / 1000;
        return { arrivalS: a, departureS: a + Math.floor(r() * 1500) / 1000 };
      });
      const [start, end] = [Math.floor(r() * 1000) / 1000, 1 + Math.floor(r() * 3000) / 1000];
      let area = 0;
      for (let ms = Math.round(start * 1000); ms < Math.round(end * 1000); ms++) {
        const mid = (ms + 0.5) / 1000; // N(t) is constant on every millisecond: its midpoint counts it exactly
        area += t.filter((x) => x.arrivalS <= mid && mid < x.departureS).length / 1000;
      }
      expect(timeAverageInSystem(t, start, end), JSON.stringify(t)).toBeCloseTo(area / (end - start), 9);
      const events = t.flatMap((x) => [x.arrivalS, x.departureS]);
      expect(peakInSystem(t), JSON.stringify(t)).toBe(Math.max(0, ...events.map((e) => t.filter((x) => x.arrivalS <= e && e < x.departureS).length)));
    }
  });

  it("Little's law holds on a simulated FCFS queue: time-averaged depth = arrival rate × mean time in system", () => {
    // One server, Poisson arrivals at 8/s, exponential service at 10/s (utilisation 0.8), 20,000 requests.
    const r = mulberry32(99);
    const exp = (rate: number) => -Math.log(1 - r()) / rate;
    const t: TraceRequest[] = [];
    let arrival = 0, free = 0;
    for (let i = 0; i < 20_000; i++) {
      arrival += exp(8);
      const start = Math.max(arrival, free);
      free = start + exp(10);
      t.push({ arrivalS: arrival, departureS: free });
    }
    const end = free;
    const meanW = t.reduce((a, x) => a + x.departureS - x.arrivalS, 0) / t.length;
    const L = timeAverageInSystem(t, 0, end);
    expect(L).toBeCloseTo((t.length / end) * meanW, 9); // exact on a trace that starts and ends empty
    const { inSystem } = littlesLaw({ arrivalRate: t.length / end, timeInSystemS: meanW });
    expect(L).toBeCloseTo(inSystem, 9);
    expect(L).toBeGreaterThan(3.2); // M/M/1 at ρ = 0.8: L = ρ / (1 − ρ) = 4
    expect(L).toBeLessThan(4.8);
  });

  it("the best operating point: highest throughput whose Little's-law latency C / X meets the SLO", () => {
    const points = [
      { concurrency: 1, throughput: 5 }, { concurrency: 2, throughput: 9 }, { concurrency: 4, throughput: 15 },
      { concurrency: 8, throughput: 20 }, { concurrency: 12, throughput: 19.5 }, { concurrency: 16, throughput: 22 },
    ];
    expect(bestOperatingPoint(points, 0.5)).toEqual({ concurrency: 8, throughput: 20, latencyS: 0.4 });
    expect(bestOperatingPoint(points, 0.8)).toEqual({ concurrency: 16, throughput: 22, latencyS: 16 / 22 });
    expect(bestOperatingPoint(points, 0.25)).toEqual({ concurrency: 2, throughput: 9, latencyS: 2 / 9 });
    expect(bestOperatingPoint(points, 0.1)).toBeNull();
    expect(bestOperatingPoint([{ concurrency: 8, throughput: 20 }, { concurrency: 6, throughput: 20 }], 1)).toEqual({ concurrency: 6, throughput: 20, latencyS: 0.3 });
    expect(bestOperatingPoint([], 1)).toBeNull();
    expect(() => bestOperatingPoint(points, 0)).toThrow(RangeError);
    expect(() => bestOperatingPoint([{ concurrency: 0, throughput: 1 }], 1)).toThrow(RangeError);
    expect(() => bestOperatingPoint([{ concurrency: 1, throughput: 0 }], 1)).toThrow(RangeError);
  });

  it("replicas: the smallest n with n × throughput × (1 − headroom) ≥ arrival rate", () => {
    expect(replicasNeeded(30, 8, 0.2)).toBe(5); // 30 / 6.4 = 4.69
    expect(replicasNeeded(16, 8)).toBe(2);
    expect(replicasNeeded(16.5, 8)).toBe(3);
    expect(replicasNeeded(1.1, 0.1)).toBe(11); // 1.1 / 0.1 = 11.000000000000002 in floating point
    expect(replicasNeeded(0, 5)).toBe(1);
    expect(replicasNeeded(0, 5, 0, 0)).toBe(0);
    expect(replicasNeeded(3, 5, 0, 4)).toBe(4);
    const bads: [number, number, number?, number?][] = [[-1, 5], [1, 0], [1, 5, 1], [1, 5, -0.1], [1, 5, 0, 1.5], [NaN, 5]];
    for (const bad of bads) {
      expect(() => replicasNeeded(...bad), JSON.stringify(bad)).toThrow(RangeError);
    }
    const r = mulberry32(5);
    for (let i = 0; i < 200; i++) {
      const [rate, x, h] = [Math.round(r() * 1000) / 10, 0.5 + Math.round(r() * 200) / 10, Math.round(r() * 9) / 10];
      let n = 1; // by counting: add replicas until the capacity (with its headroom) covers the rate
      while (n * x * (1 - h) < rate * (1 - 1e-12)) n++;
      expect(replicasNeeded(rate, x, h), `${rate} req/s, ${x} per replica, headroom ${h}`).toBe(n);
    }
  });
});
