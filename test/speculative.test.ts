// Speculative decoding (issue 14): verifyDraft is exact (chi-square over 200,000 seeded draws per
// case, significance 1e-4 — and the same test rejects the classic wrong residual), acceptance and
// accepted length match the formulas, greedy cases in the style of vLLM's test_rejection_sampler.py,
// the sampler transform equals Sampler's draws, prompt lookup, speculativeGenerate on both engines
// (greedy output == plain greedy output, temperature-1 frequencies == plain sampling), bad input.
import { describe, expect, it } from "vitest";
import { openEngine, EngineError, type Engine } from "../lab/engine/engine.ts";
import { generate } from "../lab/engine/generate.ts";
import { Sampler } from "../lab/engine/sampler.ts";
import { mulberry32 } from "../lab/random.ts";
import {
  alphaFromMeanLength, drawFromWeights, expectedTokensPerPass, ModelDrafter, plainGreedy, pointMass, predictedSpeedup,
  PromptLookupDrafter, proposeNgram, samplerDistribution, selfDrafter, speculativeGenerate, verifyDraft, verifyGreedy,
  type Drafter, type VerifyInput, type VerifyResult,
} from "../lab/speculative/index.ts";
import { goodnessOfFit, homogeneity } from "../lab/speculative/chi-square.ts";
import { speculativePrompts } from "../lab/speculative/measure.ts";
import { TARGET_GGUF, hasTarget, tempDir, writeSyntheticVariant } from "./engine-fixtures.ts";
import { existsSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const DRAFT_GGUF = fileURLToPath(new URL("../data/models/draft.gguf", import.meta.url));
const SIGNIFICANCE = 1e-4;
const DRAWS = 200_000;

// ---------------------------------------------------------------------------------------------
// Toy distributions

/** A random distribution over V tokens as log-probabilities; `zeros` tokens get probability 0. */
function randomLogProbs(V: number, random: () => number, zeros: number[] = []): Float64Array {
  const w = Array.from({ length: V }, (_, i) => (zeros.includes(i) ? 0 : random() ** 2 + 0.01));
  const total = w.reduce((s, x) => s + x, 0);
  return Float64Array.from(w, (x) => Math.log(x / total));
}

const probs = (row: ArrayLike<number>) => Array.from(row, (x) => Math.exp(x));

interface ToyCase { name: string; V: number; k: number; p: Float64Array[]; q: Float64Array[] }

/** Cases over 8–32 tokens and k ∈ {1, 3, 5}: independent p and q, q with mass where p has none
 *  (and the reverse), p == q exactly. */
function toyCases(): ToyCase[] {
  const r = mulberry32(14);
  const cases: ToyCase[] = [];
  for (const [V, k] of [[8, 1], [16, 3], [32, 5]] as const) {
    cases.push({ name: `independent V=${V} k=${k}`, V, k,
      p: Array.from({ length: k + 1 }, () => randomLogProbs(V, r)), q: Array.from({ length: k }, () => randomLogProbs(V, r)) });
    // p has no mass on tokens 0..2 where q has plenty; q has none on the last two tokens.
    cases.push({ name: `q mass where p has none V=${V} k=${k}`, V, k,
      p: Array.from({ length: k + 1 }, () => randomLogProbs(V, r, [0, 1, 2])), q: Array.from({ length: k }, () => randomLogProbs(V, r, [V - 1, V - 2])) });
    const same = Array.from({ length: k + 1 }, () => randomLogProbs(V, r));
    cases.push({ name: `p == q V=${V} k=${k}`, V, k, p: same, q: same.slice(0, k).map((row) => Float64Array.from(row)) });
  }
  return cases;
}

type Verify = (input: VerifyInput) => VerifyResult;

/** The classic mistake: at a rejection, sample from p instead of norm(max(0, p − q)). */
const verifyResidualFromP: Verify = ({ target, draft, tokens, random }) => {
  for (let i = 0; i < tokens.length; i++) {
    const x = tokens[i];
    const p = Math.exp(target[i][x]);
    const q = Math.exp(draft[i][x]);
    if (q > 0 && random() * q < p) continue;
    return { accepted: i, token: drawFromWeights(probs(target[i]), random()) };
  }
  return { accepted: tokens.length, token: drawFromWeights(probs(target[tokens.length]), random()) };
};

/** Runs `draws` rounds: draft tokens drawn from q, then verify; counts the token emitted at each
 *  position (position i is emitted when the first i drafts were accepted). */
function simulate(c: ToyCase, verify: Verify, draws: number, seed: number) {
  const random = mulberry32(seed);
  const qProbs = c.q.map(probs);
  const counts = Array.from({ length: c.k + 1 }, () => new Array<number>(c.V).fill(0));
  const acceptedHist = new Array<number>(c.k + 1).fill(0);
  for (let n = 0; n < draws; n++) {
    const tokens = qProbs.map((q) => drawFromWeights(q, random()));
    const { accepted, token } = verify({ target: c.p, draft: c.q, tokens, random });
    for (let i = 0; i < accepted; i++) counts[i][tokens[i]]++;
    counts[accepted][token]++;
    acceptedHist[accepted]++;
  }
  return { counts, acceptedHist };
}

/** The smallest chi-square p-value over the emitted positions of a case. */
function worstPValue(c: ToyCase, counts: number[][]): number {
  return Math.min(...counts.map((row, i) => goodnessOfFit(row, probs(c.p[i])).pValue));
}

const overlap = (p: ArrayLike<number>, q: ArrayLike<number>) => probs(p).reduce((s, pi, i) => s + Math.min(pi, Math.exp(q[i])), 0);

describe("verifyDraft: exact rejection sampling", () => {
  const cases = toyCases();

  it.each(cases.map((c, i) => [c.name, i] as const))("every emitted position follows p by chi-square (%s)", (_, i) => {
    const c = cases[i];
    const { counts } = simulate(c, verifyDraft, DRAWS, 100 + i);
    expect(worstPValue(c, counts)).toBeGreaterThan(SIGNIFICANCE);
  }, 60_000);

  it("the same test fails when the residual step samples from p instead", () => {
    // Every case where p != q must be caught; with p == q a rejection never happens, so the
    // wrong variant is right there by accident.
    for (const [i, c] of cases.entries()) {
      if (c.name.startsWith("p == q")) continue;
      const { counts } = simulate(c, verifyResidualFromP, DRAWS, 100 + i);
      expect(worstPValue(c, counts), c.name).toBeLessThan(SIGNIFICANCE);
    }
  }, 120_000);

  it("acceptance ≈ Σ min(p, q) = 1 − TV(p, q) within 3 standard errors, mean accepted length ≈ E(α, k)", () => {
    // i.i.d. positions: the same p and q at every position, so acceptance is α at each one.
    const r = mulberry32(7);
    for (const [V, k] of [[8, 1], [16, 3], [32, 5]] as const) {
      const p = randomLogProbs(V, r);
      const q = randomLogProbs(V, r);
      const c: ToyCase = { name: "iid", V, k, p: Array(k + 1).fill(p), q: Array(k).fill(q) };
      const { acceptedHist } = simulate(c, verifyDraft, DRAWS, 5);
      const alpha = overlap(p, q);
      // Position 1 is drafted every round: its acceptance frequency estimates α.
      const firstAccepted = DRAWS - acceptedHist[0];
      const se = Math.sqrt(alpha * (1 - alpha) / DRAWS);
      expect(Math.abs(firstAccepted / DRAWS - alpha)).toBeLessThan(3 * se);
      // Tokens per round = 1 + accepted; its mean ≈ E(α, k), standard error from the sample.
      const lengths = acceptedHist.map((n, a) => [1 + a, n]);
      const mean = lengths.reduce((s, [l, n]) => s + l * n, 0) / DRAWS;
      const variance = lengths.reduce((s, [l, n]) => s + n * (l - mean) ** 2, 0) / (DRAWS - 1);
      expect(Math.abs(mean - expectedTokensPerPass(alpha, k))).toBeLessThan(3 * Math.sqrt(variance / DRAWS));
    }
  }, 60_000);

  it("edge cases: k = 0 samples p; q(x) = 0 rejects; −∞ entries never come out; p == q accepts everything", () => {
    const random = mulberry32(3);
    const p = Float64Array.from([Math.log(0.5), -Infinity, Math.log(0.5), -Infinity]);
    const seen = new Set<number>();
    for (let n = 0; n < 2000; n++) {
      const r = verifyDraft({ target: [p], draft: [], tokens: [], random });
      expect(r.accepted).toBe(0);
      seen.add(r.token);
    }
    expect([...seen].sort()).toEqual([0, 2]);
    // q(x) = 0: the draft could not have drawn x, so it is rejected, whatever p says.
    const q = Float64Array.from([-Infinity, 0, -Infinity, -Infinity]);
    for (let n = 0; n < 200; n++) {
      const r = verifyDraft({ target: [p, p], draft: [q], tokens: [0], random });
      expect(r.accepted).toBe(0);
      expect([0, 2]).toContain(r.token);
    }
    // p == q: the ratio is 1, every draft is accepted, and the bonus follows p.
    for (let n = 0; n < 200; n++) {
      const r = verifyDraft({ target: [p, p, p], draft: [p, p], tokens: [2, 0], random });
      expect(r.accepted).toBe(2);
      expect([0, 2]).toContain(r.token);
    }
    // A rejection with an all-zero residual (p ≤ q everywhere) falls back to p, never to a token p excludes.
    const wide = Float64Array.from([Math.log(0.25), Math.log(0.25), Math.log(0.25), Math.log(0.25)]);
    const narrow = Float64Array.from([Math.log(0.25 * (1 - 1e-9)), Math.log(0.25), Math.log(0.25), Math.log(0.25 * (1 + 1e-9))]);
    let rejected = 0;
    for (let n = 0; n < 20_000; n++) {
      const r = verifyDraft({ target: [narrow, narrow], draft: [wide], tokens: [0], random });
      if (r.accepted === 0) rejected++;
    }
    expect(rejected).toBeLessThan(5);
  });

  it("bad rows are RangeErrors that say what is wrong", () => {
    const row = Float64Array.from([0, -Infinity]);
    expect(() => verifyDraft({ target: [row], draft: [row], tokens: [0], random: Math.random })).toThrow(/1 draft tokens need 2 target rows/);
    expect(() => verifyDraft({ target: [row, row], draft: [], tokens: [0], random: Math.random })).toThrow(/need 1 draft rows/);
    expect(() => verifyDraft({ target: [row, row], draft: [row], tokens: [7], random: Math.random })).toThrow(/outside the vocabulary/);
    expect(() => verifyDraft({ target: [row, new Float64Array(3)], draft: [row], tokens: [0], random: Math.random })).toThrow(/target row 1 has 3 entries/);
  });
});

// ---------------------------------------------------------------------------------------------
// Greedy cases (vLLM's test_rejection_sampler.py: ±100 logits)

/** Rows where `best` is the argmax by a wide margin (log-softmax of ±100 logits). */
function peaked(best: number, V = 8): Float64Array {
  const logits = Array.from({ length: V }, (_, i) => (i === best ? 100 : -100));
  const max = 100;
  const logZ = max + Math.log(logits.reduce((s, l) => s + Math.exp(l - max), 0));
  return Float64Array.from(logits, (l) => l - logZ);
}

describe("verifyDraft: greedy", () => {
  const noRandom = () => { throw new Error("greedy verification must not draw random numbers"); };
  it("all accepted + bonus", () => {
    expect(verifyDraft({ target: [peaked(1), peaked(2), peaked(3), peaked(4)], draft: [], tokens: [1, 2, 3], random: noRandom, greedy: true })).toEqual({ accepted: 3, token: 4 });
  });
  it("first rejected: the target's argmax replaces it", () => {
    expect(verifyDraft({ target: [peaked(5), peaked(2), peaked(3)], draft: [], tokens: [1, 2], random: noRandom, greedy: true })).toEqual({ accepted: 0, token: 5 });
  });
  it("mixed: accepted up to the first mismatch, nothing after it counts", () => {
    expect(verifyDraft({ target: [peaked(1), peaked(6), peaked(3), peaked(0)], draft: [], tokens: [1, 2, 3], random: noRandom, greedy: true })).toEqual({ accepted: 1, token: 6 });
  });
  it("empty draft: one token, the argmax", () => {
    expect(verifyDraft({ target: [peaked(7)], draft: [], tokens: [], random: noRandom, greedy: true })).toEqual({ accepted: 0, token: 7 });
  });
  it("verifyGreedy from the target's picks gives verifyDraft's greedy verdict on the rows they come from", () => {
    const r = mulberry32(44);
    for (let t = 0; t < 300; t++) {
      const k = Math.floor(6 * r());
      const rows = Array.from({ length: k + 1 }, () => randomLogProbs(8, r));
      const picks = rows.map((row) => row.indexOf(Math.max(...row)));
      // drafts that agree with the picks for a random prefix, then (maybe) not
      const agree = Math.floor((k + 1) * r());
      const tokens = Array.from({ length: k }, (_, i) => (i < agree ? picks[i]! : Math.floor(8 * r())));
      expect(verifyGreedy(picks, tokens)).toEqual(verifyDraft({ target: rows, draft: [], tokens, random: noRandom, greedy: true }));
    }
    expect(() => verifyGreedy([1, 2], [1, 2])).toThrow(/2 draft tokens need 3 target picks/);
  });
});

// ---------------------------------------------------------------------------------------------
// The sampler's transform

describe("samplerDistribution mirrors Sampler", () => {
  const r = mulberry32(21);
  const row = Float32Array.from(randomLogProbs(16, r, [3]));
  const settings = [
    { temperature: 1 }, { temperature: 0.7, topK: 5 }, { temperature: 1.3, topP: 0.8 }, { temperature: 0.8, topK: 10, topP: 0.9 },
  ];
  it.each(settings.map((s) => [JSON.stringify(s), s] as const))("Sampler's draws follow it by chi-square (%s)", (_, s) => {
    const dist = probs(samplerDistribution(row, s));
    expect(dist.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    const sampler = new Sampler({ ...s, seed: 9 });
    const counts = new Array<number>(16).fill(0);
    for (let n = 0; n < DRAWS; n++) counts[sampler.sample(row)]++;
    expect(goodnessOfFit(counts, dist).pValue).toBeGreaterThan(SIGNIFICANCE);
    // And the test can fail: the same draws against the transform without top-k/top-p.
    if (s.topK || s.topP) expect(goodnessOfFit(counts, probs(samplerDistribution(row, { temperature: s.temperature }))).pValue).toBeLessThan(SIGNIFICANCE);
  }, 60_000);
  it("temperature 0 is a point mass on the argmax (ties: lowest id); bad settings are RangeErrors", () => {
    expect(probs(samplerDistribution(Float32Array.from([-1, -0.5, -0.5]), { temperature: 0 }))).toEqual([0, 1, 0]);
    expect(() => samplerDistribution(row, { temperature: -1 })).toThrow(RangeError);
    expect(() => samplerDistribution(row, { temperature: 1, topP: 0 })).toThrow(/topP/);
    expect(() => samplerDistribution(Float32Array.from([-Infinity]), { temperature: 1 })).toThrow(/every entry/);
    expect(probs(pointMass(2, 4))).toEqual([0, 0, 1, 0]);
  });
});

// ---------------------------------------------------------------------------------------------
// Prompt lookup and the cost model

describe("prompt lookup (vLLM's n-gram proposer)", () => {
  it("longest suffix first, earliest occurrence, the tokens that followed it", () => {
    //            0  1  2  3  4  5  6  7  8  9
    const ctx = [5, 6, 7, 8, 9, 1, 6, 7, 4, 6, 7];
    // suffix [6, 7] occurs at 1 and 6: the earliest (1) wins → 8, 9, 1
    expect(proposeNgram(ctx, 3, { minN: 1, maxN: 3 })).toEqual([8, 9, 1]);
    // a 3-token suffix [4, 6, 7] never occurred before; with minN = 3 nothing is proposed
    expect(proposeNgram(ctx, 3, { minN: 3, maxN: 3 })).toEqual([]);
    // proposals stop at the end of the context
    expect(proposeNgram([1, 2, 3, 1, 2], 5, { maxN: 2 })).toEqual([3, 1, 2]);
    expect(proposeNgram([4], 2)).toEqual([]);
    expect(() => proposeNgram(ctx, 2, { minN: 0 })).toThrow(/minN/);
    expect(() => proposeNgram(ctx, 2, { minN: 3, maxN: 2 })).toThrow(/maxN/);
  });
});

describe("cost model", () => {
  it("E(α, k), predicted speedup, α from a mean accepted length", () => {
    expect(expectedTokensPerPass(0, 4)).toBe(1);
    expect(expectedTokensPerPass(1, 4)).toBe(5);
    expect(expectedTokensPerPass(0.5, 2)).toBeCloseTo(1.75, 12);
    expect(predictedSpeedup(0.8, 4, 0.1, 1.2)).toBeCloseTo((1 - 0.8 ** 5) / 0.2 / 1.6, 12);
    expect(alphaFromMeanLength(expectedTokensPerPass(0.63, 5), 5)).toBeCloseTo(0.63, 9);
    expect(() => predictedSpeedup(1.2, 4, 0.1, 1)).toThrow(/α/);
    expect(() => predictedSpeedup(0.5, 4, 0.1, 0)).toThrow(/v\(k\)/);
  });
});

// ---------------------------------------------------------------------------------------------
// On the embedded models

const haveModels = hasTarget && existsSync(DRAFT_GGUF);
const PROMPTS = [
  "Dromana lived in Pastead. Every morning he fed his rabbit and walked to the river. Dromana",
  "Code: c = 3; c = 7; c = 6; print(c + 9) Output: 15\nCode: a = 1; z = 7; print(a + 4) Output:",
];
const MODEL_TEST_MS = 300_000;

describe.skipIf(!haveModels).each(["lab", "llama"] as const)("speculativeGenerate on the %s engine", (engineName) => {
  async function withEngines<T>(fn: (target: Engine, draft: Engine) => Promise<T>): Promise<T> {
    const target = await openEngine(engineName, TARGET_GGUF, { contextSize: 256, maxSequences: 2 });
    const draft = await openEngine(engineName, DRAFT_GGUF, { contextSize: 256, maxSequences: 1 });
    try { return await fn(target, draft); } finally { await target.dispose(); await draft.dispose(); }
  }

  it("greedy output equals plain greedy decoding, draft model and prompt lookup, k ∈ {1, 4, 8}", async () => {
    await withEngines(async (target, draft) => {
      for (const text of PROMPTS) {
        const prompt = target.tokenizer.encode(text);
        const plain = await generate(target, prompt, { maxTokens: 32 });
        expect(plain.length).toBeGreaterThan(8);
        for (const drafter of [new ModelDrafter(draft), new PromptLookupDrafter(target.tokenizer.vocabSize)]) {
          for (const k of [1, 4, 8]) {
            const r = await speculativeGenerate(target, drafter, prompt, { k, maxTokens: 32 });
            expect(r.tokens, `${drafter.name} k=${k}`).toEqual(plain);
            expect(r.accepted).toBeLessThanOrEqual(r.drafted);
            expect(r.acceptedPerPosition.reduce((a, b) => a + b, 0)).toBe(r.accepted);
            // Each target pass emits its accepted drafts plus one token (no EOS cut these runs short).
            if (plain.length === 32) expect(r.tokens.length).toBe(r.targetPasses + r.accepted);
          }
          await drafter.dispose();
        }
      }
    });
  }, MODEL_TEST_MS);

  it("step output \"argmax\": the argmax of every row \"all\" returns, no rows; plainGreedy = generate at temperature 0", async () => {
    await withEngines(async (target) => {
      const prompt = target.tokenizer.encode(PROMPTS[1]);
      const seq = await target.createSequence();
      await seq.prefill(prompt.slice(0, -6));
      const n = seq.length;
      const tail = prompt.slice(-6);
      const [all] = await target.step([{ sequence: seq, tokens: tail, output: "all" }]);
      await seq.truncate(n);
      const [picks] = await target.step([{ sequence: seq, tokens: tail, output: "argmax", sample: new Sampler({ temperature: 0 }) }]);
      await seq.free();
      expect(picks.logprobs).toEqual([]);
      expect(picks.argmax).toEqual(all.logprobs.map((row) => row.indexOf(Math.max(...row))));
      expect(picks.token).toBe(picks.argmax!.at(-1));
      expect(await plainGreedy(target, prompt, 24)).toEqual(await generate(target, prompt, { maxTokens: 24 }));
    });
  }, MODEL_TEST_MS);

  it("prompt lookup on the repetitive workload: most drafts accepted, output still identical", async () => {
    await withEngines(async (target) => {
      const [prompt] = speculativePrompts(target, "repeat", { count: 1 });
      expect(prompt).toHaveLength(1 + 63 + target.tokenizer.encode("\n", { bos: false }).length + 8);
      // The last 8 tokens (the next transcript's opening) already occurred: the proposer finds them.
      expect(proposeNgram(prompt, 4).length).toBe(4);
      const drafter = new PromptLookupDrafter(target.tokenizer.vocabSize);
      const r = await speculativeGenerate(target, drafter, prompt, { k: 4, maxTokens: 24 });
      expect(r.tokens).toEqual(await generate(target, prompt, { maxTokens: 24 }));
      expect(r.acceptanceRate).toBeGreaterThan(0.8);
    });
  }, MODEL_TEST_MS);

  it("the target drafting for itself is accepted every time", async () => {
    await withEngines(async (target) => {
      const prompt = target.tokenizer.encode(PROMPTS[0]);
      const drafter = selfDrafter(target);
      const r = await speculativeGenerate(target, drafter, prompt, { k: 4, maxTokens: 24 });
      await drafter.dispose();
      expect(r.tokens).toEqual(await generate(target, prompt, { maxTokens: 24 }));
      expect(r.acceptanceRate).toBe(1);
      // Every drafted token is accepted (the last round drafts fewer: only 24 tokens were asked for).
      expect(r.accepted).toBe(r.drafted);
      expect(r.meanAcceptedLength).toBe(1 + r.drafted / r.draftRounds);
      expect(r.acceptancePerPosition).toEqual([1, 1, 1, 1]);
    });
  }, MODEL_TEST_MS);

  it("bad input: other vocabulary, k outside 1..32, drafter ids outside the vocabulary, no room for k + 1", async () => {
    await withEngines(async (target) => {
      const prompt = target.tokenizer.encode(PROMPTS[0]);
      const stub = (vocabSize: number, tokens: number[]): Drafter => ({
        name: "stub", vocabSize,
        async propose() { return { tokens, logprobs: [], steps: 0 }; },
        async rollback() {}, async dispose() {},
      });
      await expect(speculativeGenerate(target, stub(512, []), prompt, { k: 4, maxTokens: 8 })).rejects.toThrow(/vocabulary of 512 tokens, the target 1024/);
      // A real draft model with another vocabulary (the synthetic llama's 512 pieces): refused before any pass.
      const tmp = tempDir("spec-vocab-");
      try {
        const other = await openEngine(engineName, await writeSyntheticVariant(join(tmp.dir, "synthetic.gguf"), "F32", { seed: 1, nEmbd: 32 }), { contextSize: 64, maxSequences: 1 });
        const drafter = new ModelDrafter(other);
        await expect(speculativeGenerate(target, drafter, prompt, { k: 4, maxTokens: 8 })).rejects.toThrow(/same vocabulary/);
        await drafter.dispose();
        await other.dispose();
      } finally { tmp.cleanup(); }
      await expect(speculativeGenerate(target, stub(1024, []), prompt, { k: 0, maxTokens: 8 })).rejects.toThrow(/k must be an integer in \[1, 32\]/);
      await expect(speculativeGenerate(target, stub(1024, []), prompt, { k: 33, maxTokens: 8 })).rejects.toThrow(RangeError);
      const bad = speculativeGenerate(target, stub(1024, [5000]), prompt, { k: 2, maxTokens: 8 });
      await expect(bad).rejects.toThrow(EngineError);
      await expect(bad).rejects.toThrow(/proposed token id 5000, outside the vocabulary/);
      const long = Array.from({ length: 253 }, (_, i) => prompt[i % prompt.length]);
      await expect(speculativeGenerate(target, stub(1024, []), long, { k: 4, maxTokens: 8 })).rejects.toThrow(/no room for k \+ 1 = 5 tokens/);
    });
  }, MODEL_TEST_MS);
});

describe.skipIf(!haveModels)("speculativeGenerate at temperature 1 (LabEngine)", () => {
  it("first- and second-token frequencies match plain sampling by chi-square", async () => {
    const target = await openEngine("lab", TARGET_GGUF, { contextSize: 128, maxSequences: 2 });
    const draftEngine = await openEngine("lab", DRAFT_GGUF, { contextSize: 128, maxSequences: 1 });
    try {
      const prompt = target.tokenizer.encode("Zesilo lived in");
      const RUNS = 400;
      const V = target.tokenizer.vocabSize;
      const plainFirst = new Array<number>(V).fill(0), plainSecond = new Array<number>(V).fill(0);
      const specFirst = new Array<number>(V).fill(0), specSecond = new Array<number>(V).fill(0);
      const drafter = new ModelDrafter(draftEngine);
      for (let seed = 0; seed < RUNS; seed++) {
        const plain = await generate(target, prompt, { maxTokens: 2, temperature: 1, seed, stopAtEos: false });
        const spec = await speculativeGenerate(target, drafter, prompt, { k: 2, maxTokens: 2, sampler: { temperature: 1 }, seed: 1_000 + seed, stopAtEos: false });
        plainFirst[plain[0]]++; plainSecond[plain[1]]++;
        specFirst[spec.tokens[0]]++; specSecond[spec.tokens[1]]++;
      }
      await drafter.dispose();
      // First token: both against the exact distribution after the prompt.
      const seq = await target.createSequence();
      const p = probs(await seq.prefill(prompt));
      await seq.free();
      expect(goodnessOfFit(specFirst, p).pValue).toBeGreaterThan(SIGNIFICANCE);
      expect(goodnessOfFit(plainFirst, p).pValue).toBeGreaterThan(SIGNIFICANCE);
      // Second token: the two samples come from one distribution.
      expect(homogeneity(plainSecond, specSecond).pValue).toBeGreaterThan(SIGNIFICANCE);
      // The first-token test has teeth: a sample from a flattened p fails it.
      const flat = probs(samplerDistribution(Float32Array.from(p, Math.log), { temperature: 2 }));
      const random = mulberry32(4);
      const wrong = new Array<number>(V).fill(0);
      for (let n = 0; n < RUNS; n++) wrong[drawFromWeights(flat, random())]++;
      expect(goodnessOfFit(wrong, p).pValue).toBeLessThan(SIGNIFICANCE);
    } finally {
      await target.dispose();
      await draftEngine.dispose();
    }
  }, MODEL_TEST_MS);
});

// ---------------------------------------------------------------------------------------------
// lab speculate

const BIN = join(import.meta.dirname, "..", "lab", "cli", "bin.mjs");
function lab(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", timeout: 240_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe.skipIf(!haveModels)("lab speculate", () => {
  it("usage errors exit 2 and say what is wrong", () => {
    for (const [args, message] of [
      [["--ngram", "--k", "0"], /--k must be an integer in \[1, 32\]/],
      [["--ngram", "--k", "33"], /--k must be an integer in \[1, 32\]/],
      [["--ngram", "--draft", DRAFT_GGUF], /exactly one drafter/],
      [[], /exactly one drafter/],
      [["--ngram", "--prompts", "poetry"], /unknown --prompts "poetry"/],
      [["--ngram", "--engine", "vllm"], /unknown engine "vllm"/],
      [["--ngram", "--level", "Q9_X"], /unknown --level "Q9_X"/],
    ] as const) {
      const r = lab("speculate", TARGET_GGUF, ...args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr).toMatch(message);
    }
  }, MODEL_TEST_MS);

  it.each([["--ngram"], ["--draft", DRAFT_GGUF]])("--json has the issue's fields (%s)", (...drafterArgs) => {
    const r = lab("speculate", TARGET_GGUF, ...drafterArgs, "--k", "3", "--tokens", "16", "--count", "1", "--repeats", "1", "--json");
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    for (const key of ["speedup", "acceptanceRate", "meanAcceptedLength", "predictedSpeedup", "c", "v", "tokensPerTargetPass"]) {
      expect(typeof j[key], key).toBe("number");
    }
    expect(j.baseline.tokensPerSecond).toBeGreaterThan(0);
    expect(j.speculative.tokensPerSecond).toBeGreaterThan(0);
    expect(j.speedup).toBeCloseTo(j.speculative.tokensPerSecond / j.baseline.tokensPerSecond, 9);
    expect(j.identical).toBe(true);
    expect(j.acceptancePerPosition).toHaveLength(3);
    expect(j.k).toBe(3);
  }, MODEL_TEST_MS);
});
