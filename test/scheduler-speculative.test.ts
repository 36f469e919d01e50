// Speculative decoding inside the continuous-batching scheduler (lab/serve/scheduler.ts with a
// BatchDrafter): on the fake engine with a fake clock, drafters that are always right, always wrong
// or half right, every step's rows and token counts asserted exactly; then on LabEngine with the
// kit's small draft model, the draft-model drafter (batched draft passes) and prompt lookup give
// exactly the greedy tokens of plain decoding. At temperature 0.8, 5,000 seeded requests through a
// speculative scheduler fit the target's exact distribution by chi-square (p < 0.001 threshold),
// and the same statistics reject emitting unchecked drafts and the residual drawn from p.
import { describe, expect, it } from "vitest";
import { fileURLToPath } from "node:url";
import { openEngine } from "../lab/engine/engine.ts";
import { generate } from "../lab/engine/generate.ts";
import { Sampler } from "../lab/engine/sampler.ts";
import { mulberry32 } from "../lab/random.ts";
import { ModelBatchDrafter, NgramBatchDrafter } from "../lab/serve/drafter.ts";
import { Scheduler, type BatchDrafter, type DraftRequest, type Request, type StepStats } from "../lab/serve/scheduler.ts";
import { FakeEngine, fakeNextToken, type FakeEngineOptions } from "./fake-engine.ts";

function prompt(n: number, seed: number, nVocab = 32): number[] {
  const r = mulberry32(seed);
  return [1, ...Array.from({ length: n - 1 }, () => 3 + Math.floor(r() * (nVocab - 3)))];
}

const req = (id: string, promptLength: number, maxTokens: number, extra: Partial<Request> = {}): Request =>
  ({ id, prompt: prompt(promptLength, id.charCodeAt(0)), maxTokens, sampler: new Sampler(), ...extra });

/** The fake engine's greedy continuation (its EOS rule included). */
function greedyAfter(context: readonly number[], n: number, eosWhen?: (t: readonly number[]) => boolean): number[] {
  const all = [...context];
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = eosWhen?.(all) ? 2 : fakeNextToken(all);
    out.push(t);
    all.push(t);
  }
  return out;
}

/** A drafter whose i-th draft is right while i < rightFor, then a token that is surely wrong. */
function scriptedDrafter(rightFor: number, eosWhen?: (t: readonly number[]) => boolean) {
  const calls: { id: string; context: number; k: number }[][] = [];
  const released: string[] = [];
  const drafter: BatchDrafter = {
    name: `scripted (right for ${rightFor})`,
    async propose(requests: DraftRequest[]) {
      calls.push(requests.map((r) => ({ id: r.id, context: r.context.length, k: r.k })));
      return requests.map((r) => {
        const right = greedyAfter(r.context, r.k, eosWhen);
        const tokens = right.map((t, i) => (i < rightFor ? t : 3 + ((t - 3 + 1) % 29)));
        return { tokens, logprobs: [], steps: r.k };
      });
    },
    async release(id) { released.push(id); },
  };
  return { drafter, calls, released };
}

function setup(engineOpts: FakeEngineOptions, drafter: BatchDrafter, k: number, maxBatchTokens = 100) {
  const clock = { now: 0 };
  const engine = new FakeEngine({ ...engineOpts, onStep: () => { clock.now += 10; } });
  const scheduler = new Scheduler(engine, { clock: () => clock.now, maxBatchTokens, speculative: { drafter, k } });
  return { engine, scheduler };
}

const sched = (s: StepStats | undefined) => s!.scheduled.map((x) => [x.id, x.tokens, x.output]);
const fakeGreedy = (p: number[], n: number) => greedyAfter(p, n);

describe("speculative decoding in the scheduler (fake engine)", () => {
  it("drafts that are always right: k = 2 gives 3 tokens per step; 9 tokens in 4 steps (prefill, 3+3, then k = 1 for the last 2)", async () => {
    const { drafter, calls, released } = scriptedDrafter(99);
    const { scheduler, engine } = setup({}, drafter, 2);
    scheduler.submit(req("a", 8, 9));
    const stats = await scheduler.runToCompletion();
    expect(stats.map(sched)).toEqual([[["a", 8, "last"]], [["a", 3, "all"]], [["a", 3, "all"]], [["a", 2, "all"]]]);
    expect(stats.map((s) => [s.draftRows, s.draftTokens, s.acceptedTokens])).toEqual([[0, 0, 0], [1, 2, 2], [1, 2, 2], [1, 1, 1]]);
    // The drafter saw the context grow by 3 each step and was asked for fewer drafts at the end.
    expect(calls).toEqual([[{ id: "a", context: 9, k: 2 }], [{ id: "a", context: 12, k: 2 }], [{ id: "a", context: 15, k: 1 }]]);
    const a = scheduler.record("a")!;
    expect(a.generated).toEqual(fakeGreedy(a.request.prompt, 9));
    expect(a).toMatchObject({ finishReason: "length", drafted: 5, accepted: 5 });
    // Verification rows ask for every distribution and sample nothing in the engine.
    expect(engine.log[1]).toEqual([{ sequence: 0, tokens: [a.generated[0], a.generated[1], a.generated[2]], output: "all", sampled: false }]);
    expect(released).toEqual(["a"]);
    expect(engine.memory().kv.blocksUsed).toBe(0);
  });

  it("drafts that are always wrong: one token per step, the rejected positions rolled back (blocks returned), the same output", async () => {
    const { drafter } = scriptedDrafter(0);
    const { scheduler, engine } = setup({ blockSize: 4 }, drafter, 3);
    scheduler.submit(req("a", 7, 6));
    const stats = await scheduler.runToCompletion();
    expect(stats.length).toBe(6);
    // Drafts wanted: at most k, and one fewer than the tokens still to come (a step emits drafts + 1).
    expect(stats.slice(1).map((s) => [s.draftTokens, s.acceptedTokens])).toEqual([[3, 0], [3, 0], [2, 0], [1, 0], [0, 0]]);
    // Step 1 evaluated 7 + 4 = 11 positions (3 blocks of 4); kept 7 + 1 = 8 (2 blocks).
    expect(stats[1].kvBlocksUsed).toBe(2);
    const a = scheduler.record("a")!;
    expect(a.generated).toEqual(fakeGreedy(a.request.prompt, 6));
    expect(a).toMatchObject({ drafted: 9, accepted: 0 });
  });

  it("half right: the first draft accepted, the second rejected, the target's token emitted: 2 tokens per step", async () => {
    const { drafter } = scriptedDrafter(1);
    const { scheduler } = setup({}, drafter, 2);
    scheduler.submit(req("a", 5, 7));
    const stats = await scheduler.runToCompletion();
    expect(stats.map((s) => s.acceptedTokens)).toEqual([0, 1, 1, 1]);
    expect(scheduler.record("a")!.generated).toEqual(fakeGreedy(scheduler.record("a")!.request.prompt, 7));
  });

  it("drafts count against the token budget: a decoding row with k = 4 takes 5 of 20, a 50-token prompt gets the other 15; one propose call per step for every decoding request", async () => {
    const { drafter, calls } = scriptedDrafter(99);
    const { scheduler } = setup({}, drafter, 4, 20);
    scheduler.submit(req("a", 6, 30));
    scheduler.submit(req("c", 6, 30));
    expect(sched(await scheduler.step())).toEqual([["a", 6, "last"], ["c", 6, "last"]]);
    scheduler.submit(req("b", 50, 2));
    expect(sched(await scheduler.step())).toEqual([["a", 5, "all"], ["c", 5, "all"], ["b", 10, "none"]]);
    expect(calls[0].map((c) => c.id)).toEqual(["a", "c"]);
    // A budget with no room beyond the pending token: the row decodes plainly.
    const tight = setup({}, scriptedDrafter(99).drafter, 4, 1);
    tight.scheduler.submit(req("x", 1, 10));
    await tight.scheduler.step();
    const s1 = await tight.scheduler.step();
    expect(sched(s1)).toEqual([["x", 1, "last"]]);
    expect(s1!.draftTokens).toBe(0);
  });

  it("an EOS among the emitted tokens ends the request there (stop; EOS not in the output)", async () => {
    const p = prompt(6, 4);
    const eosWhen = (t: readonly number[]) => t.length === p.length + 3 && t[1] === p[1];
    const { drafter } = scriptedDrafter(99, eosWhen);
    const { scheduler } = setup({ eosWhen }, drafter, 4);
    scheduler.submit({ id: "a", prompt: p, maxTokens: 20, sampler: new Sampler() });
    const stats = await scheduler.runToCompletion();
    expect(stats.length).toBe(2); // prefill (t1), then [t1, t2, t3, EOS, …] accepted up to EOS
    const a = scheduler.record("a")!;
    expect(a.finishReason).toBe("stop");
    expect(a.generated).toEqual(greedyAfter(p, 3));
  });

  it("preemption with speculation: a pool too small for two streams preempts one; both outputs equal the unpreempted run; the drafter forgets the preempted request", async () => {
    const run = async (blocks: number) => {
      const d = scriptedDrafter(1);
      const { scheduler, engine } = setup({ blocks, blockSize: 4 }, d.drafter, 2);
      scheduler.submit(req("a", 16, 12));
      scheduler.submit(req("b", 16, 12));
      const stats = await scheduler.runToCompletion();
      return { scheduler, engine, stats, released: d.released };
    };
    const small = await run(10);
    const big = await run(1000);
    expect(big.stats.every((s) => s.preempted.length === 0)).toBe(true);
    const preempted = small.stats.flatMap((s) => s.preempted);
    expect(preempted.length).toBeGreaterThan(0);
    expect(new Set(preempted)).toEqual(new Set(["b"]));
    for (const id of ["a", "b"]) {
      expect(small.scheduler.record(id)!.generated).toEqual(big.scheduler.record(id)!.generated);
      expect(small.scheduler.record(id)!.generated).toEqual(fakeGreedy(small.scheduler.record(id)!.request.prompt, 12));
    }
    // Released at each preemption and at the finish.
    expect(small.released.filter((id) => id === "b").length).toBe(small.scheduler.record("b")!.preemptions + 1);
    expect(small.engine.memory().kv.blocksUsed).toBe(0);
  });

  it("refuses a bad k or a drafter that proposes too many or invalid tokens", async () => {
    const engine = new FakeEngine();
    const { drafter } = scriptedDrafter(99);
    expect(() => new Scheduler(engine, { speculative: { drafter, k: 0 } })).toThrow(/speculative k must be an integer >= 1, got 0/);
    const greedy: BatchDrafter = { name: "too many", propose: async (rs) => rs.map((r) => ({ tokens: new Array(r.k + 1).fill(5), logprobs: [], steps: 0 })), release: async () => {} };
    const s = new Scheduler(engine, { speculative: { drafter: greedy, k: 2 } });
    s.submit(req("a", 4, 5));
    await s.step();
    await expect(s.step()).rejects.toThrow(/the drafter "too many" proposed \[5,5,5\] for request a \(at most 2 ids/);
  });
});

// ---------------------------------------------------------------------------------------------
// Exactness at temperature > 0 (Leviathan et al. 2023): whatever the drafts, the tokens a
// speculative scheduler emits follow the target's sampling distribution. What they are compared
// against is computed here from the fake engine's logits, not with the kit's sampler, verifier or
// chi-square code.

/** The target at temperature t after `context`: the fake engine's logits are −0.5·|i − next| with
 *  next = fakeNextToken(context) (test/fake-engine.ts), so the sampler draws i ∝ exp(−0.5·|i − next| / t). */
function exactTarget(context: readonly number[], nVocab: number, t: number): number[] {
  const next = fakeNextToken(context, nVocab);
  return normalize(Array.from({ length: nVocab }, (_, i) => Math.exp(-0.5 * Math.abs(i - next) / t)));
}

/** The draft's q after `context`: a guess from the last token alone, g = (5·last + 1) mod V, with
 *  q(i) ∝ exp(−|i − g|). Sharper than the target and mostly peaked elsewhere: about 0.6 of drafts
 *  are accepted, so accepted drafts, residual draws and bonus tokens are all common. */
function draftQ(context: readonly number[], nVocab: number): number[] {
  const g = (5 * context[context.length - 1] + 1) % nVocab;
  return normalize(Array.from({ length: nVocab }, (_, i) => Math.exp(-Math.abs(i - g))));
}

function normalize(w: number[]): number[] {
  const total = w.reduce((s, x) => s + x, 0);
  return w.map((x) => x / total);
}

/** Inverse CDF with one uniform u in [0, 1). */
function drawFrom(probs: readonly number[], u: number): number {
  let i = 0;
  for (; i < probs.length - 1; i++) if ((u -= probs[i]) < 0) break;
  return i;
}

/** Every continuation of n tokens with its probability under the target (the product of the
 *  conditionals), by enumeration: V^n of them. */
function exactJoint(prompt: readonly number[], n: number, nVocab: number, t: number): { tokens: number[]; prob: number }[] {
  const out: { tokens: number[]; prob: number }[] = [];
  const walk = (tokens: number[], prob: number) => {
    if (tokens.length === n) { out.push({ tokens, prob }); return; }
    const p = exactTarget([...prompt, ...tokens], nVocab, t);
    for (let i = 0; i < nVocab; i++) walk([...tokens, i], prob * p[i]);
  };
  walk([], 1);
  return out;
}

/** A statistic's categories: which of `cells` an output falls in. */
interface Cells { cells: number; of: (tokens: readonly number[]) => number }

function expectedProbs(joint: { tokens: number[]; prob: number }[], { cells, of }: Cells): number[] {
  const out = new Array<number>(cells).fill(0);
  for (const { tokens, prob } of joint) out[of(tokens)] += prob;
  return out;
}

function observedCounts(outputs: readonly (readonly number[])[], { cells, of }: Cells): number[] {
  const out = new Array<number>(cells).fill(0);
  for (const g of outputs) out[of(g)]++;
  return out;
}

/** Pearson's X² = Σ (O − E)² / E with cells − 1 degrees of freedom (nothing estimated from the
 *  data), and the smallest expected count (the χ² approximation wants every E ≥ 5). */
function pearson(counts: readonly number[], probs: readonly number[]) {
  const n = counts.reduce((s, c) => s + c, 0);
  let statistic = 0;
  let minExpected = Infinity;
  for (let i = 0; i < counts.length; i++) {
    const e = n * probs[i];
    statistic += (counts[i] - e) ** 2 / e;
    minExpected = Math.min(minExpected, e);
  }
  return { statistic, df: counts.length - 1, minExpected };
}

/** A drafter that draws each draft from draftQ with the request's own uniform stream (as
 *  ModelBatchDrafter does) and reports `reported(q, token)` as the row it drew from: q itself when
 *  honest, something else in a negative control. */
function qDrafter(nVocab: number, reported = (q: number[], _token: number) => q): BatchDrafter {
  return {
    name: "draftQ",
    async propose(requests) {
      return requests.map(({ context, k, sampling }) => {
        const c = [...context];
        const tokens: number[] = [];
        const logprobs: Float64Array[] = [];
        for (let i = 0; i < k; i++) {
          const q = draftQ(c, nVocab);
          const token = drawFrom(q, sampling.random());
          tokens.push(token);
          logprobs.push(Float64Array.from(reported(q, token), Math.log));
          c.push(token);
        }
        return { tokens, logprobs, steps: k };
      });
    },
    async release() {},
  };
}

describe("speculative decoding in the scheduler keeps the target's distribution at temperature > 0 (chi-square, fake engine)", () => {
  const V = 6; // ids 0..2 (<unk>, <s>, </s>) plus 3..5, among which the fake engine's peak moves
  const T = 0.8; // not 1, so verifying against untempered rows would show
  const K = 2;
  const TOKENS = 4; // with k = 2: t1 from the prefill, then t2..t4 from one or two verify passes
  const N = 5000; // enough for every cell of every statistic below to expect at least 5
  const PROMPT = [1, 4, 3];
  // 0.999 quantiles of χ² (a statistic above one has p < 0.001): scipy.stats.chi2.ppf(0.999, df)
  // = 66.6188 for df = 35 (6 × 6 cells − 1) and 40.7902 for df = 17 (3 × 6 cells − 1).
  const CRITICAL: Record<number, number> = { 35: 66.619, 17: 40.790 };
  const joint = exactJoint(PROMPT, TOKENS, V, T);
  // The joint distribution of two positions (0-based).
  const pair = (a: number, b: number): Cells => ({ cells: V * V, of: (g) => g[a] * V + g[b] });
  // Token j beside the target's peak at its position (3..5): the target's conditional depends on
  // the context only through that peak, so these cells test p(t_j | t_<j) itself, where a pair of
  // positions only sees it averaged over the tokens before.
  const peakAndToken = (j: number): Cells => ({ cells: (V - 3) * V, of: (g) => (fakeNextToken([...PROMPT, ...g.slice(0, j)], V) - 3) * V + g[j] });
  const statistics: [string, Cells][] = [
    ["(t1, t2)", pair(0, 1)], ["(t3, t4)", pair(2, 3)],
    ["(peak, t2)", peakAndToken(1)], ["(peak, t3)", peakAndToken(2)], ["(peak, t4)", peakAndToken(3)],
  ];
  const expected = statistics.map(([, cells]) => expectedProbs(joint, cells));
  const measure = (outputs: readonly (readonly number[])[]) =>
    statistics.map(([name, cells], i) => ({ name, ...pearson(observedCounts(outputs, cells), expected[i]) }));

  /** N requests, seeds 0..N−1, all submitted at once: up to 64 run together, so verify rows,
   *  plain decode rows and new prefills share steps. */
  async function run(drafter: BatchDrafter) {
    const engine = new FakeEngine({ nVocab: V, maxSequences: 64 });
    const scheduler = new Scheduler(engine, { maxBatchTokens: 512, speculative: { drafter, k: K } });
    const records = Array.from({ length: N }, (_, i) => scheduler.submit({
      id: `s${i}`, prompt: PROMPT, maxTokens: TOKENS, sampler: new Sampler({ temperature: T, seed: i }), stopAtEos: false,
    }));
    const stats = await scheduler.runToCompletion();
    expect(Math.max(...stats.map((s) => s.rows))).toBe(64);
    expect(records.every((r) => r.finishReason === "length" && r.generated.length === TOKENS)).toBe(true);
    return { records, measured: measure(records.map((r) => r.generated)) };
  }

  it("5,000 seeded requests at temperature 0.8, k = 2: the pairs (t1, t2) and (t3, t4), and each of t2, t3, t4 beside the target's peak, fit the exact distribution (X² below the p = 0.001 critical value)", async () => {
    const { records, measured } = await run(qDrafter(V));
    // Every path is exercised, by (drafted, accepted): 2/2 = both drafts accepted, then a bonus
    // token; 2/1 = a residual draw at draft 2, then a plain sample; 3/1 = a residual at draft 1,
    // then a 1-draft round accepted plus a bonus; 3/0 = two residuals, then a plain sample.
    const paths = new Map<string, number>();
    for (const r of records) paths.set(`${r.drafted}/${r.accepted}`, (paths.get(`${r.drafted}/${r.accepted}`) ?? 0) + 1);
    expect([...paths.keys()].sort()).toEqual(["2/1", "2/2", "3/0", "3/1"]);
    for (const [path, n] of paths) expect(n, path).toBeGreaterThan(N / 10);
    for (const s of measured) {
      expect(s.minExpected, s.name).toBeGreaterThanOrEqual(5);
      expect(s.statistic, `X²${s.name} = ${s.statistic.toFixed(1)}, ${s.df} df`).toBeLessThan(CRITICAL[s.df]);
    }
  });

  it("the same statistics have power: emitting the drafts unchecked and drawing the residual from p instead of norm(max(0, p − q)) land far above the critical value", async () => {
    // Accept always, through the scheduler: a drafter that claims its token had probability 1e-12
    // makes p/q huge, so every draft is accepted and the draft's own distribution comes out (t4 is
    // then always a genuine bonus draw from p, so its statistic is left out).
    const always = await run(qDrafter(V, (q, token) => q.map((x, i) => (i === token ? 1e-12 : x))));
    expect(always.records.every((r) => r.accepted === r.drafted)).toBe(true);
    for (const s of always.measured.filter((s) => s.name !== "(peak, t4)")) expect(s.statistic, `X²${s.name}`).toBeGreaterThan(CRITICAL[s.df]);
    // The classic mistake (the scheduler cannot be given another verifier, so simulated here with
    // the same target, draft and sample size): t1 ~ p, d ~ q, accept with min(1, p(d)/q(d)),
    // otherwise t2 ~ p. Only (t1, t2) and t2 beside its peak are measured.
    const random = mulberry32(2023);
    const outputs = Array.from({ length: N }, () => {
      const t1 = drawFrom(exactTarget(PROMPT, V, T), random());
      const context = [...PROMPT, t1];
      const p = exactTarget(context, V, T), q = draftQ(context, V);
      const d = drawFrom(q, random());
      return [t1, random() * q[d] < p[d] ? d : drawFrom(p, random())];
    });
    for (const s of measure(outputs.map((g) => [...g, 0, 0])).filter((s) => s.name.includes("t2"))) {
      expect(s.statistic, `X²${s.name}`).toBeGreaterThan(CRITICAL[s.df]);
    }
  });
});

describe("nativeGreedy (what the service turns on for llama.cpp)", () => {
  it("a greedy request's sampling rows ask the engine for the token only (output none with the sampler); a temperature request still gets its distribution; same tokens", async () => {
    const run = async (nativeGreedy: boolean) => {
      const engine = new FakeEngine();
      const s = new Scheduler(engine, { nativeGreedy, maxBatchTokens: 100 });
      s.submit(req("g", 6, 4));
      s.submit(req("t", 6, 4, { sampler: new Sampler({ temperature: 1, seed: 3 }) }));
      await s.runToCompletion();
      return { engine, s };
    };
    const on = await run(true), off = await run(false);
    const outputs = (e: FakeEngine, seq: number) => e.log.flat().filter((i) => i.sequence === seq).map((i) => `${i.output}${i.sampled ? "+sample" : ""}`);
    expect(outputs(on.engine, 0)).toEqual(["none+sample", "none+sample", "none+sample", "none+sample"]);
    expect(outputs(on.engine, 1)).toEqual(["last+sample", "last+sample", "last+sample", "last+sample"]);
    expect(outputs(off.engine, 0)).toEqual(["last+sample", "last+sample", "last+sample", "last+sample"]);
    for (const id of ["g", "t"]) expect(on.s.record(id)!.generated).toEqual(off.s.record(id)!.generated);
  });
});

describe("speculative decoding in the scheduler (LabEngine, the small draft model)", () => {
  // The kit's draft model: real weights, fast enough that these runs take a second or two.
  const model = fileURLToPath(new URL("../data/models/draft.gguf", import.meta.url));

  it("a batched draft model (the target itself) and prompt lookup give each of 4 requests exactly its greedy tokens alone", async () => {
    const target = await openEngine("lab", model, { contextSize: 256, maxSequences: 4, kvBlockSize: 16 });
    const draft = await openEngine("lab", model, { contextSize: 256, maxSequences: 4, kvBlockSize: 16 });
    try {
      const V = target.hparams.nVocab;
      // Repetitive prompts, so prompt lookup has something to find.
      const prompts = Array.from({ length: 4 }, (_, i) => { const p = prompt(6 + 3 * i, 50 + i, V).slice(1); return [1, ...p, ...p, ...p]; });
      const alone: number[][] = [];
      for (const p of prompts) alone.push(await generate(target, p, { maxTokens: 12 }));
      for (const drafter of [new ModelBatchDrafter(draft), new NgramBatchDrafter(V)]) {
        const s = new Scheduler(target, { maxBatchTokens: 64, speculative: { drafter, k: 3 } });
        prompts.forEach((p, i) => s.submit({ id: `r${i}`, prompt: p, maxTokens: 12, sampler: new Sampler() }));
        const stats = await s.runToCompletion();
        expect(prompts.map((_, i) => s.record(`r${i}`)!.generated), drafter.name).toEqual(alone);
        const drafted = stats.reduce((n, x) => n + x.draftTokens, 0);
        const accepted = stats.reduce((n, x) => n + x.acceptedTokens, 0);
        expect(drafted, drafter.name).toBeGreaterThan(0);
        // The target drafting for itself agrees with itself (up to float ties between pass shapes).
        if (drafter instanceof ModelBatchDrafter) expect(accepted / drafted).toBeGreaterThan(0.9);
        expect(target.memory().kv.blocksUsed).toBe(0);
      }
      expect(draft.memory().kv.blocksUsed).toBe(0); // every draft sequence released at the finish
    } finally {
      await target.dispose();
      await draft.dispose();
    }
  });

  it("at temperature 1 with a seed, a speculative run is reproducible and gives valid tokens", async () => {
    const target = await openEngine("lab", model, { contextSize: 256, maxSequences: 2 });
    const draft = await openEngine("lab", model, { contextSize: 256, maxSequences: 2 });
    try {
      const runOnce = async () => {
        const s = new Scheduler(target, { speculative: { drafter: new ModelBatchDrafter(draft), k: 2 } });
        s.submit({ id: "t", prompt: prompt(8, 9, target.hparams.nVocab), maxTokens: 16, sampler: new Sampler({ temperature: 1, seed: 7 }) });
        await s.runToCompletion();
        return s.record("t")!.generated;
      };
      const a = await runOnce();
      expect(a.length).toBe(16);
      expect(a.every((t) => Number.isInteger(t) && t >= 0 && t < target.hparams.nVocab)).toBe(true);
      expect(await runOnce()).toEqual(a);
    } finally {
      await target.dispose();
      await draft.dispose();
    }
  });
});
