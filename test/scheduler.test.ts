// The continuous-batching scheduler (lab/serve/scheduler.ts), in the style of vLLM's
// tests/v1/core/test_scheduler.py: a fake engine (test/fake-engine.ts) and a fake clock, every
// scheduled token count, admission, preemption and block count asserted exactly. Then one test on the
// real LabEngine with a synthetic model: the scheduler gives every request exactly its greedy tokens
// alone, with and without a pool small enough to force preemption.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import { EngineError, openEngine, type Sequence } from "../lab/engine/engine.ts";
import { generate } from "../lab/engine/generate.ts";
import { Sampler } from "../lab/engine/sampler.ts";
import { mulberry32 } from "../lab/random.ts";
import { Scheduler, requestLatencies, type PrefixCacheHook, type Request, type SchedulerOptions, type StepStats } from "../lab/serve/scheduler.ts";
import { FakeEngine, fakeNextToken, type FakeEngineOptions } from "./fake-engine.ts";
import { tempDir, writeSyntheticVariant } from "./engine-fixtures.ts";

function prompt(n: number, seed: number, nVocab = 32): number[] {
  const r = mulberry32(seed);
  return [1, ...Array.from({ length: n - 1 }, () => 3 + Math.floor(r() * (nVocab - 3)))];
}

function req(id: string, promptLength: number, maxTokens: number, extra: Partial<Request> = {}): Request {
  return { id, prompt: prompt(promptLength, id.charCodeAt(0)), maxTokens, sampler: new Sampler(), ...extra };
}

/** A fake engine whose every step advances a fake clock by 10 ms, and a scheduler on that clock. */
function setup(engineOpts: FakeEngineOptions = {}, schedOpts: SchedulerOptions = {}) {
  const clock = { now: 0 };
  const engine = new FakeEngine({ ...engineOpts, onStep: () => { clock.now += 10; } });
  const scheduler = new Scheduler(engine, { clock: () => clock.now, ...schedOpts });
  return { clock, engine, scheduler };
}

const sched = (s: StepStats | undefined) => s!.scheduled.map((x) => [x.id, x.tokens, x.output]);

/** The greedy continuation the fake engine gives a prompt: fakeNextToken applied repeatedly. */
function fakeGreedy(p: number[], n: number): number[] {
  const all = [...p];
  for (let i = 0; i < n; i++) all.push(fakeNextToken(all));
  return all.slice(p.length);
}

describe("token budget and admission", () => {
  it("budget split across prompts: 3×80-token prompts, budget 100 → 80 + 20 (third waits), then 1 + 60 + 39, then 1 + 1 + 41", async () => {
    const { scheduler, engine } = setup({}, { maxBatchTokens: 100 });
    for (const id of ["a", "b", "c"]) scheduler.submit(req(id, 80, 3));
    const s0 = await scheduler.step();
    expect(sched(s0)).toEqual([["a", 80, "last"], ["b", 20, "none"]]);
    expect(s0).toMatchObject({ rows: 2, prefillTokens: 100, decodeTokens: 0, running: 2, waiting: 1, admitted: ["a", "b"] });
    const s1 = await scheduler.step();
    expect(sched(s1)).toEqual([["a", 1, "last"], ["b", 60, "last"], ["c", 39, "none"]]);
    expect(s1).toMatchObject({ prefillTokens: 99, decodeTokens: 1, running: 3, waiting: 0, admitted: ["c"] });
    const s2 = await scheduler.step();
    expect(sched(s2)).toEqual([["a", 1, "last"], ["b", 1, "last"], ["c", 41, "last"]]);
    expect(s2!.finished).toEqual(["a"]); // a: first token in step 0, then steps 1, 2 → 3 tokens
    // The engine got exactly these chunks, and c's two chunks are its prompt in order.
    const cTokens = engine.log.flatMap((step) => step.filter((i) => i.sequence === 2).map((i) => i.tokens)).slice(0, 2).flat();
    expect(cTokens).toEqual(scheduler.record("c")!.request.prompt);
    await scheduler.runToCompletion();
    for (const id of ["a", "b", "c"]) {
      const r = scheduler.record(id)!;
      expect(r.generated).toEqual(fakeGreedy(r.request.prompt, 3));
      expect(r.finishReason).toBe("length");
    }
    expect(engine.memory().kv.blocksUsed).toBe(0);
    expect(engine.liveSequences).toBe(0);
  });

  it("FCFS without skipping ahead (test_schedule_order): 2×80 + 2×10 with maxRunning 3; without chunking the short ones wait behind the long one", async () => {
    const chunked = setup({}, { maxBatchTokens: 100, maxRunning: 3 });
    for (const [id, n] of [["a", 80], ["b", 80], ["c", 10], ["d", 10]] as const) chunked.scheduler.submit(req(id, n, 4));
    expect(sched(await chunked.scheduler.step())).toEqual([["a", 80, "last"], ["b", 20, "none"]]);
    // c fits; d would fit the budget too but maxRunning is 3.
    const s1 = await chunked.scheduler.step();
    expect(sched(s1)).toEqual([["a", 1, "last"], ["b", 60, "last"], ["c", 10, "last"]]);
    expect(s1!.waiting).toBe(1);

    const whole = setup({}, { maxBatchTokens: 100, maxRunning: 3, chunkedPrefill: false });
    for (const [id, n] of [["a", 80], ["b", 80], ["c", 10], ["d", 10]] as const) whole.scheduler.submit(req(id, n, 4));
    // b's 80 tokens do not fit the 20 left; c and d (10 each) would, but must not skip ahead of b.
    const w0 = await whole.scheduler.step();
    expect(sched(w0)).toEqual([["a", 80, "last"]]);
    expect(w0!.waiting).toBe(3);
    const w1 = await whole.scheduler.step();
    expect(sched(w1)).toEqual([["a", 1, "last"], ["b", 80, "last"], ["c", 10, "last"]]);
    expect(w1!.admitted).toEqual(["b", "c"]);
  });

  it("chunked prefill: a 250-token prompt under a 64-token budget goes in as 63, 63, 63, 61 (none, none, none, last) while a running stream gets a token every step", async () => {
    const { scheduler, engine } = setup({}, { maxBatchTokens: 64 });
    scheduler.submit(req("a", 5, 20));
    await scheduler.step();
    scheduler.submit(req("long", 250, 2));
    const steps = [];
    for (let i = 0; i < 5; i++) steps.push(sched(await scheduler.step()));
    expect(steps).toEqual([
      [["a", 1, "last"], ["long", 63, "none"]],
      [["a", 1, "last"], ["long", 63, "none"]],
      [["a", 1, "last"], ["long", 63, "none"]],
      [["a", 1, "last"], ["long", 61, "last"]],
      [["a", 1, "last"], ["long", 1, "last"]],
    ]);
    // Only the last chunk sampled, and the chunks are the prompt in order.
    const chunks = engine.log.flatMap((s) => s.filter((i) => i.sequence === 1));
    expect(chunks.map((c) => c.sampled)).toEqual([false, false, false, true, true]);
    expect(chunks.slice(0, 4).flatMap((c) => c.tokens)).toEqual(scheduler.record("long")!.request.prompt);
    expect(scheduler.record("a")!.generated.length).toBe(6);
    expect(scheduler.record("long")!.generated).toEqual(fakeGreedy(scheduler.record("long")!.request.prompt, 2));
  });

  it("admission stops at the KV pool: a request whose first chunk needs more blocks than are free waits (and blocks those behind it)", async () => {
    // 10 blocks of 4: a takes 5 (17 positions after its first decode), b needs 4 for 16 tokens.
    const { scheduler } = setup({ blocks: 10, blockSize: 4 }, { maxBatchTokens: 100 });
    scheduler.submit(req("a", 20, 2));
    scheduler.submit(req("b", 24, 2)); // 6 blocks: with a's 5, 11 > 10
    scheduler.submit(req("c", 4, 2)); // 1 block: would fit, but may not skip b
    const s0 = await scheduler.step();
    expect(sched(s0)).toEqual([["a", 20, "last"]]);
    expect(s0).toMatchObject({ waiting: 2, kvBlocksUsed: 5, kvBlocksFree: 5 });
    const s1 = await scheduler.step(); // a's second token; a finishes, its blocks come back
    expect(sched(s1)).toEqual([["a", 1, "last"]]);
    expect(s1).toMatchObject({ finished: ["a"], kvBlocksUsed: 0 });
    expect(sched(await scheduler.step())).toEqual([["b", 24, "last"], ["c", 4, "last"]]);
  });
});

describe("preemption and resumption", () => {
  async function twoStreams(blocks: number, sampler: () => Sampler) {
    const { scheduler, engine } = setup({ blocks, blockSize: 4 }, { maxBatchTokens: 100 });
    scheduler.submit(req("a", 16, 12, { sampler: sampler() }));
    scheduler.submit(req("b", 16, 12, { sampler: sampler() }));
    const stats = await scheduler.runToCompletion();
    return { scheduler, engine, stats };
  }

  it("10 blocks, 2×16-token prompts: at position 20 both need a 6th block; b (admitted last) is preempted at step 5, readmitted after a finishes with prompt + 5 generated = 21 tokens, and ends with the tokens of an unpreempted run", async () => {
    const { scheduler, engine, stats } = await twoStreams(10, () => new Sampler());
    const big = await twoStreams(1000, () => new Sampler());
    expect(big.stats.every((s) => s.preempted.length === 0)).toBe(true);
    expect(stats.map((s) => s.preempted)).toEqual(stats.map((s) => (s.step === 5 ? ["b"] : [])));
    expect(sched(stats[5])).toEqual([["a", 1, "last"]]);
    expect(stats[5]).toMatchObject({ running: 1, waiting: 1, kvBlocksUsed: 6 });
    // b waits while a's blocks leave too little room (6 blocks for 21 tokens), then comes back first.
    expect(stats.findIndex((s) => s.finished.includes("a"))).toBe(11);
    expect(sched(stats[12])).toEqual([["b", 21, "last"]]);
    expect(stats[12].admitted).toEqual(["b"]);
    expect(stats.findIndex((s) => s.finished.includes("b"))).toBe(18); // 6 tokens at step 12, 6 more in 13..18
    expect(stats.length).toBe(19);
    const b = scheduler.record("b")!;
    expect(b.preemptions).toBe(1);
    for (const id of ["a", "b"]) expect(scheduler.record(id)!.generated).toEqual(big.scheduler.record(id)!.generated);
    expect(b.generated).toEqual(fakeGreedy(b.request.prompt, 12));
    expect(Math.max(...stats.map((s) => s.kvBlocksUsed))).toBeLessThanOrEqual(10);
    expect(engine.memory().kv.blocksUsed).toBe(0);
  });

  it("the preempted request goes back to the FRONT of the queue: c (waiting for blocks) is not admitted ahead of it", async () => {
    const { scheduler } = setup({ blocks: 10, blockSize: 4 }, { maxBatchTokens: 100 });
    scheduler.submit(req("a", 16, 12));
    scheduler.submit(req("b", 16, 12));
    scheduler.submit(req("c", 12, 1)); // 3 blocks: only 2 free after a and b
    const stats = await scheduler.runToCompletion();
    expect(stats[5]).toMatchObject({ preempted: ["b"], waiting: 2 });
    // From step 6 on 4 blocks are free: c's 3 would fit, but b (6 blocks) is ahead of it.
    expect(stats.flatMap((s) => s.admitted.map((id) => [s.step, id]))).toEqual([[0, "a"], [0, "b"], [12, "b"], [12, "c"]]);
  });

  it("a seeded temperature sampler draws the same tokens whether or not its request was preempted (the failed step sampled nothing)", async () => {
    const sampler = () => new Sampler({ temperature: 1, seed: 42 });
    const small = await twoStreams(10, sampler);
    const big = await twoStreams(1000, sampler);
    expect(small.scheduler.record("b")!.preemptions).toBe(1);
    for (const id of ["a", "b"]) expect(small.scheduler.record(id)!.generated).toEqual(big.scheduler.record(id)!.generated);
    // ...and the draws really are random: not the greedy continuation.
    expect(small.scheduler.record("b")!.generated).not.toEqual(fakeGreedy(small.scheduler.record("b")!.request.prompt, 12));
  });

  it("a request that needs more blocks than the whole pool fails with a clear error instead of looping", async () => {
    const { scheduler, engine } = setup({ blocks: 4, blockSize: 4 }, { maxBatchTokens: 8 });
    scheduler.submit(req("huge", 14, 10)); // 14 + 10 positions > 16
    scheduler.submit(req("small", 3, 2));
    await scheduler.runToCompletion();
    const huge = scheduler.record("huge")!;
    expect(huge.finishReason).toBe("error");
    expect(huge.error).toMatch(/more KV blocks than the pool/);
    expect(scheduler.record("small")!.finishReason).toBe("length");
    expect(engine.memory().kv.blocksUsed).toBe(0);
  });

  it("a prompt bigger than the whole pool, in one chunk, fails at its first step (not a queue stalled forever); the next request runs", async () => {
    const { scheduler, engine } = setup({ blocks: 4, blockSize: 4 }, { maxBatchTokens: 100 });
    scheduler.submit(req("huge", 30, 2)); // 8 blocks > 4
    scheduler.submit(req("small", 3, 2));
    const stats: StepStats[] = [];
    for (let i = 0; i < 10 && scheduler.pending > 0; i++) stats.push((await scheduler.step())!);
    expect(stats[0]).toMatchObject({ rows: 0, finished: ["huge"], admitted: ["huge"] });
    expect(scheduler.record("huge")!.error).toMatch(/needs 8 more block\(s\), 4 free/);
    expect(sched(stats[1])).toEqual([["small", 3, "last"]]);
    expect(scheduler.pending).toBe(0);
    expect(engine.memory().kv.blocksUsed).toBe(0);
  });
});

describe("cancellation and finishing", () => {
  it("cancel releases a running request's blocks at the next step, and a waiting request never runs", async () => {
    const { scheduler, engine } = setup({ blocks: 100 }, { maxBatchTokens: 100, maxRunning: 1 });
    scheduler.submit(req("a", 30, 50));
    scheduler.submit(req("b", 10, 50));
    scheduler.submit(req("c", 10, 2));
    await scheduler.step();
    expect(engine.memory().kv.blocksUsed).toBe(8); // 30 positions in blocks of 4
    expect(scheduler.cancel("a")).toBe(true);
    expect(scheduler.cancel("b")).toBe(true);
    expect(scheduler.cancel("nope")).toBe(false);
    expect(engine.memory().kv.blocksUsed).toBe(8); // nothing happens until the next step
    const s = await scheduler.step();
    expect(s!.finished).toEqual(["a", "b"]);
    expect(sched(s)).toEqual([["c", 10, "last"]]);
    expect(s!.kvBlocksUsed).toBe(3);
    expect(scheduler.record("a")).toMatchObject({ finishReason: "cancelled", state: "finished" });
    expect(scheduler.record("a")!.generated.length).toBe(1);
    expect(scheduler.record("b")!.generated).toEqual([]);
    // b never got a sequence: c's is the engine's second, and its only item so far is its prompt.
    expect(engine.log.flat().filter((i) => i.sequence === 1)).toEqual([{ sequence: 1, tokens: scheduler.record("c")!.request.prompt, output: "last", sampled: true }]);
    await scheduler.runToCompletion();
    expect(scheduler.cancel("c")).toBe(false); // finished
    expect(engine.memory().kv.blocksUsed).toBe(0);
  });

  it("finish reasons: maxTokens (length), EOS (stop, not in the output), a stop predicate (stop, its token kept), the context (length)", async () => {
    const eosAt = prompt(6, 9);
    const { scheduler, engine } = setup({ contextSize: 24, eosWhen: (t) => t.length === eosAt.length + 3 && t[0] === 1 && t[1] === eosAt[1] });
    scheduler.submit({ id: "eos", prompt: eosAt, maxTokens: 10, sampler: new Sampler() });
    scheduler.submit(req("len", 4, 3));
    scheduler.submit(req("stop", 4, 10, { stop: (g) => g.length === 2 }));
    scheduler.submit(req("ctx", 20, 10));
    const seen: number[] = [];
    scheduler.submit(req("keepEos", 5, 2, { stopAtEos: false, onToken: (t) => seen.push(t) }));
    await scheduler.runToCompletion();
    const r = (id: string) => scheduler.record(id)!;
    expect(r("eos")).toMatchObject({ finishReason: "stop" });
    expect(r("eos").generated).toEqual(fakeGreedy(eosAt, 3)); // 3 tokens, then EOS (dropped)
    expect(r("len")).toMatchObject({ finishReason: "length" });
    expect(r("len").generated.length).toBe(3);
    expect(r("stop")).toMatchObject({ finishReason: "stop" });
    expect(r("stop").generated.length).toBe(2);
    expect(r("ctx")).toMatchObject({ finishReason: "length" }); // min(10, 24 - 20) tokens, as generate.ts
    expect(r("ctx").generated.length).toBe(4);
    expect(seen).toEqual(r("keepEos").generated);
    expect(engine.liveSequences).toBe(0);
  });

  it("a callback that throws fails its own request (error, blocks freed); the others finish; two steps at once are refused", async () => {
    const { scheduler, engine } = setup();
    scheduler.submit(req("bad", 4, 5, { onToken: (_, rec) => { if (rec.generated.length === 2) throw new Error("client went away"); } }));
    scheduler.submit(req("good", 4, 5));
    const first = scheduler.step();
    await expect(scheduler.step()).rejects.toThrow(/another step is running/);
    await first;
    await scheduler.runToCompletion();
    expect(scheduler.record("bad")).toMatchObject({ finishReason: "error", error: "its onToken or stop callback threw: client went away" });
    expect(scheduler.record("bad")!.generated.length).toBe(2);
    expect(scheduler.record("good")!.generated.length).toBe(5);
    expect(engine.liveSequences).toBe(0);
  });

  it("timestamps on the injected clock give TTFT, inter-token latencies and end-to-end latency", async () => {
    const { scheduler, clock } = setup({}, { maxBatchTokens: 16 });
    scheduler.submit(req("a", 8, 3)); // arrival = clock now = 0
    await scheduler.step(); // a: 8 tokens, first token at t = 10
    clock.now = 15;
    scheduler.submit(req("b", 20, 2, { arrival: 12 })); // arrived at 12, submitted at 15
    await scheduler.runToCompletion();
    const a = scheduler.record("a")!, b = scheduler.record("b")!;
    expect(a.times).toEqual({ arrival: 0, firstToken: 10, tokens: [10, 25, 35], finish: 35 });
    expect(requestLatencies(a)).toEqual({ ttft: 10, itl: [15, 10], e2e: 35 });
    // b: 15 of its 20 tokens at t=25, the other 5 at 35 (first token), then one more at 45.
    expect(b.times).toEqual({ arrival: 12, firstToken: 35, tokens: [35, 45], finish: 45 });
    expect(requestLatencies(b)).toEqual({ ttft: 23, itl: [10], e2e: 33 });
  });
});

describe("static vs continuous batching", () => {
  async function order(mode: "static" | "continuous") {
    const { scheduler } = setup({}, { mode, maxRunning: 2, maxBatchTokens: 100 });
    scheduler.submit(req("a", 4, 2));
    scheduler.submit(req("b", 4, 6));
    scheduler.submit(req("c", 4, 2));
    scheduler.submit(req("d", 4, 2));
    const stats = await scheduler.runToCompletion();
    const at = (id: string, key: "admitted" | "finished") => stats.findIndex((s) => s[key].includes(id));
    return { admitted: ["a", "b", "c", "d"].map((id) => at(id, "admitted")), finished: ["a", "b", "c", "d"].map((id) => at(id, "finished")), steps: stats.length, rows: stats.map((s) => s.rows) };
  }

  it("continuous admits c as soon as a finishes; static waits for the whole batch (a, b) to finish", async () => {
    const cont = await order("continuous");
    expect(cont.admitted).toEqual([0, 0, 2, 4]);
    expect(cont.finished).toEqual([1, 5, 3, 5]);
    expect(cont.rows).toEqual([2, 2, 2, 2, 2, 2]);
    const stat = await order("static");
    expect(stat.admitted).toEqual([0, 0, 6, 6]);
    expect(stat.finished).toEqual([1, 5, 7, 7]);
    expect(stat.rows).toEqual([2, 2, 1, 1, 1, 1, 2, 2]); // the empty row of a finished request waits
  });

  it("static mode gathers only what is waiting at the start of a batch: a late arrival waits for the next batch", async () => {
    const { scheduler } = setup({}, { mode: "static", maxRunning: 4, maxBatchTokens: 100 });
    scheduler.submit(req("a", 4, 3));
    await scheduler.step();
    scheduler.submit(req("b", 4, 1));
    const s1 = await scheduler.step();
    expect(sched(s1)).toEqual([["a", 1, "last"]]);
    await scheduler.step(); // a finishes
    expect(sched(await scheduler.step())).toEqual([["b", 4, "last"]]);
  });
});

describe("prefix-cache hook", () => {
  it("lookup gives a sequence holding a prefix: only the rest is computed; insert after chunks; release once at finish", async () => {
    const { scheduler, engine } = setup({}, { maxBatchTokens: 100 });
    const calls: string[] = [];
    const p = prompt(20, 5);
    const hook: PrefixCacheHook = {
      async lookup(tokens) {
        calls.push(`lookup ${tokens.length}`);
        const s = await engine.createSequence();
        await s.evaluate(tokens.slice(0, 12) as number[]);
        return { sequence: s, cachedTokens: 12 };
      },
      insert: (s) => { calls.push(`insert ${s.length}`); },
      release: async (s) => { calls.push(`release ${s.length}`); await s.free(); },
    };
    const withCache = new Scheduler(engine, { prefixCache: hook, maxBatchTokens: 100 });
    withCache.submit({ id: "x", prompt: p, maxTokens: 3, sampler: new Sampler() });
    const s0 = await withCache.step();
    expect(sched(s0)).toEqual([["x", 8, "last"]]);
    expect(withCache.record("x")!.cachedTokens).toBe(12);
    await withCache.runToCompletion();
    expect(calls).toEqual(["lookup 20", "insert 20", "release 22"]);
    expect(withCache.record("x")!.generated).toEqual(fakeGreedy(p, 3));
    expect(engine.liveSequences).toBe(0);
    void scheduler;
  });

  it("a full pool asks the cache to evict before preempting anyone", async () => {
    const { engine } = setup({ blocks: 6, blockSize: 4 });
    let parked: Sequence | undefined = await engine.createSequence();
    await parked.evaluate(prompt(8, 3)); // 2 blocks held "by the cache"
    const evicted: number[] = [];
    const hook: PrefixCacheHook = {
      lookup: async () => ({ sequence: await engine.createSequence(), cachedTokens: 0 }),
      release: (s) => s.free(),
      async evict(blocks) {
        evicted.push(blocks);
        if (!parked) return 0;
        await parked.free();
        parked = undefined;
        return 2;
      },
    };
    const s = new Scheduler(engine, { prefixCache: hook, maxBatchTokens: 100 });
    s.submit(req("a", 8, 4)); // 2 blocks, then a 3rd at position 8
    s.submit(req("b", 8, 4));
    const stats = await s.runToCompletion();
    expect(evicted).toEqual([2]); // step 1: both need a 3rd block, 0 free
    expect(stats.every((x) => x.preempted.length === 0)).toBe(true);
    expect(s.record("b")!.generated).toEqual(fakeGreedy(s.record("b")!.request.prompt, 4));
  });
});

describe("bad input: a clear error, nothing queued", () => {
  it("requests and options", () => {
    const { scheduler } = setup({ contextSize: 64, maxSequences: 4 }, { maxBatchTokens: 32, chunkedPrefill: false });
    const bad: [Partial<Request>, RegExp][] = [
      [{ id: "" }, /non-empty string id/],
      [{ prompt: [] }, /empty prompt/],
      [{ prompt: [1, 32] }, /token id 32 outside the vocabulary \[0, 32\)/],
      [{ prompt: [1, 2.5] }, /token id 2.5/],
      [{ prompt: new Array(64).fill(5) }, /leaves no room to generate in the context of 64/],
      [{ maxTokens: 0 }, /maxTokens 0/],
      [{ sampler: undefined as unknown as Sampler }, /no sampler/],
      [{ arrival: NaN }, /arrival NaN/],
      [{ prompt: new Array(40).fill(5) }, /longer than maxBatchTokens 32, and chunked prefill is off/],
    ];
    for (const [patch, message] of bad) expect(() => scheduler.submit({ ...req("r", 4, 2), ...patch })).toThrow(message);
    expect(scheduler.pending).toBe(0);
    scheduler.submit(req("r", 4, 2));
    expect(() => scheduler.submit(req("r", 4, 2))).toThrow(/"r" is already waiting or running/);
    const engine = new FakeEngine({ maxSequences: 4 });
    expect(() => new Scheduler(engine, { maxBatchTokens: 0 })).toThrow(/maxBatchTokens must be an integer >= 1, got 0/);
    expect(() => new Scheduler(engine, { maxRunning: 5 })).toThrow(/maxRunning 5 exceeds the engine's 4 sequences/);
    expect(() => new Scheduler(engine, { batchSize: 5 })).toThrow(/batchSize 5 exceeds maxRunning 4/);
    expect(() => new Scheduler(engine, { mode: "dynamic" as "static" })).toThrow(/mode must be "continuous" or "static"/);
    expect(new EngineError("x")).toBeInstanceOf(Error);
  });
});

describe("on the real LabEngine (synthetic llama, F32)", () => {
  const tmp = tempDir("scheduler-");
  let model: string;
  beforeAll(async () => {
    model = await writeSyntheticVariant(join(tmp.dir, "f32.gguf"), "F32", { seed: 3, nCtx: 256 });
  });
  afterAll(() => tmp.cleanup());

  it("8 requests give exactly the greedy tokens each gets alone (generate.ts), with chunked prefill, and with a pool small enough to force preemption", async () => {
    const e = await openEngine("lab", model, { contextSize: 256, maxSequences: 8, kvBlockSize: 16 });
    const small = await openEngine("lab", model, { contextSize: 256, maxSequences: 8, kvBlockSize: 16, kvBlocks: 12 });
    try {
      const V = e.hparams.nVocab;
      const prompts = Array.from({ length: 8 }, (_, i) => prompt(6 + 5 * i, 100 + i, V));
      const maxTokens = 16;
      const alone: number[][] = [];
      for (const p of prompts) alone.push(await generate(e, p, { maxTokens }));
      for (const [engine, label] of [[e, "default pool"], [small, "12 blocks"]] as const) {
        const s = new Scheduler(engine, { maxBatchTokens: 48 });
        prompts.forEach((p, i) => s.submit({ id: `r${i}`, prompt: p, maxTokens, sampler: new Sampler() }));
        const stats = await s.runToCompletion();
        const got = prompts.map((_, i) => s.record(`r${i}`)!.generated);
        expect(got, label).toEqual(alone);
        expect(stats.some((x) => x.scheduled.some((c) => c.output === "none")), label).toBe(true); // some prompt was chunked
        expect(Math.max(...stats.map((x) => x.rows)), label).toBeGreaterThan(1);
        const preemptions = prompts.reduce((n, _, i) => n + s.record(`r${i}`)!.preemptions, 0);
        if (label === "12 blocks") expect(preemptions).toBeGreaterThan(0);
        else expect(preemptions).toBe(0);
        expect(engine.memory().kv.blocksUsed, label).toBe(0);
      }
    } finally {
      await e.dispose();
      await small.dispose();
    }
  });
});
