// lab/speculative/study.ts (notebook 02's study): the toy harness finds the exact rule exact and the
// wrong ones wrong, its summaries equal the formulas, the claims' verdicts follow the numbers, and
// the model-side helpers run on the embedded pair (greedy equivalence, acceptance bookkeeping,
// batch cost ratios, time to first token, the committed speed record).
import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { openEngine } from "../lab/engine/engine.ts";
import {
  acceptEverything, acceptanceByTask, chainResidualFromP, DRAFT_MODEL, exactnessCheck, greedyEquivalence, loadSpeedRecord,
  measureBatchCostRatios, measureTtft, ModelDrafter, notebookPrompts, overlap, positionRows, PromptLookupDrafter, residualFromP,
  SPEED_RECORD, speculativeClaims, speedStudy, TARGET_MODEL, TOY_P, TOY_Q, toyChainCases, toyConvergence,
  type ChainVerifier, type OneTokenVerifier, type SpeedCell, type SpeedRecord,
} from "../lab/speculative/index.ts";

/** The test's own exact rule (inverse CDF over the residual), independent of lab/speculative/verify.ts. */
function drawIndex(w: ArrayLike<number>, u: number): number {
  const total = Array.from(w).reduce((s, x) => s + x, 0);
  let x = u * total;
  for (let i = 0; i < w.length; i++) { if (w[i]! > 0 && (x -= w[i]!) < 0) return i; }
  return Array.from(w).findLastIndex((v) => v > 0);
}
const exactOne: OneTokenVerifier = (p, q, x, random) => {
  if (q[x]! > 0 && random() < Math.min(1, p[x]! / q[x]!)) return { accepted: true, token: x };
  const r = Array.from(p, (pi, y) => Math.max(0, pi - q[y]!));
  return { accepted: false, token: drawIndex(r.some((v) => v > 0) ? r : p, random()) };
};
const exactChain: ChainVerifier = ({ target, draft, tokens, random }) => {
  for (let i = 0; i < tokens.length; i++) {
    const v = exactOne(target[i]!, draft[i]!, tokens[i]!, random);
    if (!v.accepted) return { accepted: i, token: v.token };
  }
  return { accepted: tokens.length, token: drawIndex(target[tokens.length]!, random()) };
};

describe("toy harness (§2.1–§2.2)", () => {
  it("the toy pair: distributions, Σ min(p, q) = 0.67", () => {
    expect(TOY_P.reduce((s, x) => s + x, 0)).toBeCloseTo(1, 12);
    expect(TOY_Q.reduce((s, x) => s + x, 0)).toBeCloseTo(1, 12);
    expect(overlap(TOY_P, TOY_Q)).toBeCloseTo(0.67, 12);
  });

  it("toyConvergence: the exact rule follows p, the wrong residual and no verification do not", () => {
    const { rows, fits } = toyConvergence(TOY_P, TOY_Q, { exact: exactOne, wrong: residualFromP, none: acceptEverything }, { draws: [1_000, 100_000] });
    expect(rows).toHaveLength(3 * 2 * 8);
    const at = (variant: string) => fits.find((f) => f.variant === variant && f.draws === 100_000)!;
    expect(at("exact").pValue).toBeGreaterThan(1e-4);
    expect(at("wrong").pValue).toBeLessThan(1e-4);
    expect(at("none").pValue).toBe(0); // token 0 comes out, which p forbids
    // No verification gives q: its distance to p is TV(p, q) = 1 − Σ min(p, q).
    expect(Math.abs(at("none").distanceToP - (1 - overlap(TOY_P, TOY_Q)))).toBeLessThan(0.01);
    expect(Math.abs(at("exact").acceptance - 0.67)).toBeLessThan(4 * Math.sqrt(0.67 * 0.33 / 100_000));
    expect(at("exact").distanceToP).toBeLessThan(at("exact").draws === 100_000 ? 0.01 : 1);
    // Seeded: the same call gives the same numbers.
    expect(toyConvergence(TOY_P, TOY_Q, { exact: exactOne }, { draws: [500] }).fits).toEqual(toyConvergence(TOY_P, TOY_Q, { exact: exactOne }, { draws: [500] }).fits);
  });

  it("exactnessCheck: every position of the exact chain follows p_i, tokens per round match 1 + Σ Π α_j; the wrong residual is caught", () => {
    const cases = toyChainCases();
    expect(cases.map((c) => [c.p.length, c.q.length])).toEqual([[4, 3], [4, 3], [4, 3]]);
    const right = exactnessCheck(cases, exactChain, { draws: 60_000 });
    expect(right.rows.every((r) => r.follows), JSON.stringify(right.rows.filter((r) => !r.follows))).toBe(true);
    for (const s of right.summary) {
      expect(Math.abs(s.acceptanceFirst - s.overlapFirst)).toBeLessThan(0.01);
      expect(Math.abs(s.tokensPerRound - s.expectedTokensPerRound)).toBeLessThan(0.02);
    }
    expect(right.summary.find((s) => s.case === "p == q")!.expectedTokensPerRound).toBeCloseTo(4, 9);
    const wrong = exactnessCheck(cases, chainResidualFromP, { draws: 60_000 });
    for (const name of ["independent p, q", "q has mass where p has none"]) expect(wrong.rows.some((r) => r.case === name && !r.follows), name).toBe(true);
    expect(wrong.rows.filter((r) => r.case === "p == q").every((r) => r.follows)).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------

const cellOf = (over: Partial<SpeedCell>): SpeedCell => ({
  level: "Q4_K_M", drafter: "draft model", workload: "tasks", k: 1, temperature: 0, speedup: 1.2, decodeSpeedup: 1.5, speedupMedianOfPairs: 1.5, predictedSpeedup: 1.6,
  acceptanceRate: 0.8, alpha: 0.8, meanAcceptedLength: 1.8, c: 0.15, v: 0.9, identical: true, ...over,
});

function fixedRecord(ttftRatio: number, speedups: number[]): SpeedRecord {
  const sweep = speedups.map((decodeSpeedup, i) => cellOf({ k: i + 1, decodeSpeedup, speedup: 0.8 * decodeSpeedup, predictedSpeedup: decodeSpeedup * (i === 0 ? 1.05 : 1.5), acceptanceRate: 0.8 - 0.1 * i }));
  return {
    machine: { cpus: 2, model: "test", loadAverageAtStart: [0, 0, 0] }, models: { target: "a", draft: "b" },
    settings: { engine: "lab", levels: ["Q4_K_M"], ks: speedups.map((_, i) => i + 1), maxTokens: 48, repeats: 3, tasks: ["prose"], batches: [1] },
    sweep, focus: { level: "Q4_K_M", k: 1 }, temperature: [], drafters: [], batch: [],
    ttft: { level: "Q4_K_M", k: 1, plainMs: 10, speculativeMs: 10 * ttftRatio, ratio: ttftRatio },
  };
}

describe("speculativeClaims: verdicts follow the numbers", () => {
  it("k·α overestimates, TTFT grew, best below 2×, the cost model misses most cells", () => {
    const [kAlpha, ttft, twoThree, model] = speculativeClaims(fixedRecord(1.3, [1.5, 1.2, 1.0]));
    // k·α / speedup = 0.8/1.5, 1.4/1.2, 1.8/1.0 → median 1.17: within 25%.
    expect(kAlpha!.verdict).toBe("holds (within 25% at the median)");
    expect(ttft!.verdict).toMatch(/^false: TTFT grew by 30%/);
    expect(twoThree!.verdict).toMatch(/^not on our pair: best 1\.50×/);
    expect(twoThree!.ours).toMatch(/^best measured with our draft: 1\.50× decoding, 1\.20× end to end/);
    expect(model!.ours).toBe("1 of 3 draft-model cells within 15%; median error 33%");
    expect(model!.verdict).toMatch(/^misses most cells/);
  });
  it("TTFT 50% lower holds; a 2.4× best holds; k·α far above the speedup is false", () => {
    const [kAlpha, ttft, twoThree] = speculativeClaims(fixedRecord(0.5, [2.4, 0.5, 0.4]));
    expect(ttft!.verdict).toBe("holds");
    expect(twoThree!.verdict).toBe("holds on our pair");
    expect(kAlpha!.verdict).toMatch(/^false: it overestimates 2\.\d-fold at the median/);
  });
});

// ---------------------------------------------------------------------------------------------

const haveModels = existsSync(TARGET_MODEL) && existsSync(DRAFT_MODEL);

describe.skipIf(!haveModels)("on the embedded pair (LabEngine)", () => {
  it("greedyEquivalence, acceptanceByTask, positionRows, batch cost ratios, time to first token", async () => {
    const target = await openEngine("lab", TARGET_MODEL, { maxSequences: 4, contextSize: 256 });
    const draft = await openEngine("lab", DRAFT_MODEL, { maxSequences: 4, contextSize: 256 });
    try {
      const prompts = notebookPrompts(target, { count: 1, sets: ["prose", "code"] });
      expect(Object.keys(prompts)).toEqual(["prose", "code"]);
      expect(prompts.prose![0]).toHaveLength(64);
      const model = new ModelDrafter(draft, "draft model");
      const lookup = new PromptLookupDrafter(target.tokenizer.vocabSize, {}, (context, k) => context.slice(-k)); // a silly proposer: still exact
      const eq = await greedyEquivalence(target, [model, lookup], prompts, [2], 16);
      expect(eq.map((r) => [r.prompts, r.drafter, r.k, r.identical])).toEqual([
        ["prose", "draft model", 2, true], ["prose", lookup.name, 2, true], ["code", "draft model", 2, true], ["code", lookup.name, 2, true],
      ]);
      const acc = await acceptanceByTask(target, model, prompts, { k: 3, maxTokens: 16 });
      for (const r of acc) {
        expect(r.accepted).toBeLessThanOrEqual(r.drafted);
        expect(r.acceptancePerPosition).toHaveLength(3);
        expect(r.acceptanceRate).toBeCloseTo(r.accepted / r.drafted, 12);
        expect(r.tokensPerTargetPass).toBeGreaterThanOrEqual(1);
      }
      expect(positionRows(acc)).toHaveLength(2 * 3);
      // Sampled acceptance is seeded: the same seed gives the same counts.
      const hot = () => acceptanceByTask(target, model, { prose: prompts.prose! }, { k: 2, maxTokens: 12, temperature: 1, seed: 5 });
      expect((await hot())[0]!.accepted).toBe((await hot())[0]!.accepted);
      const cost = await measureBatchCostRatios(target, draft, prompts.prose![0]!, 2, 3, 2);
      expect(cost).toMatchObject({ batch: 3, k: 2 });
      for (const x of [cost.c, cost.v, cost.targetStepMs]) expect(x).toBeGreaterThan(0);
      const ttft = await measureTtft(target, model, prompts.prose!, 2, 1);
      expect(ttft.ratio).toBeGreaterThan(0);
      expect(ttft.ratio).toBeCloseTo(ttft.speculativeMs / ttft.plainMs, 12);
      await model.dispose();
      // Every sequence was freed (the engine holds maxSequences of them).
      for (let i = 0; i < 4; i++) await target.createSequence();
    } finally {
      await target.dispose();
      await draft.dispose();
    }
  }, 300_000);

  it.runIf(existsSync(SPEED_RECORD))("speedStudy without measuring reads the committed record and says whether it is stale", async () => {
    const s = await speedStudy({ policy: { measure: false, print: false, saveFigure: false } });
    expect(s.measuredNow).toBe(false);
    expect(s.record).toEqual(loadSpeedRecord());
    expect(s.provenance).toContain("npm start -- --with-timings");
    expect(s.provenance.includes("NOTE: on other model files")).toBe(s.stale);
    expect(s.record.sweep.length).toBeGreaterThan(0);
  });
});
