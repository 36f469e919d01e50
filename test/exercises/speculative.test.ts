// Graded tests for interview question 2 (speculative decoding). They import the implementation
// through the "@target/" alias: solutions/ by default, exercises/ with LAB_TARGET=exercises.
//
// The references are independent of the kit's lab/speculative: exact distributions written out here
// (a chi-square test of the tokens your code emits against them), cases worked by hand, a Monte
// Carlo simulation of the acceptance process, and a string-search formulation of the n-gram
// proposer. The last block checks the checks: the same chi-square tests reject the classic wrong
// verifiers (it is not graded).
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  acceptProbability, bestK, expectedTokensPerPass, predictedSpeedup, proposeNgram, quizAnswers,
  residualDistribution, verifyDraft, verifyOneToken, type Distribution, type QuizAnswers, type VerifyInput, type VerifyResult,
} from "@target/speculative/index.ts";
import { goodnessOfFit } from "../../lab/speculative/chi-square.ts";
import { mulberry32 } from "../../lab/random.ts";

const SIGNIFICANCE = 1e-4;

// ---------------------------------------------------------------------------------------------
// Toy distributions and the simulation every statistical check uses

/** A seeded distribution over V tokens; the `zeros` tokens get probability 0. */
function randomDistribution(V: number, random: () => number, zeros: number[] = []): Float64Array {
  const w = Array.from({ length: V }, (_, i) => (zeros.includes(i) ? 0 : random() ** 2 + 0.01));
  const total = w.reduce((s, x) => s + x, 0);
  return Float64Array.from(w, (x) => x / total);
}

/** The test's own inverse-CDF draw (the draft's sampling is not the student's code). */
function draw(p: Distribution, u: number): number {
  let x = u;
  for (let i = 0; i < p.length; i++) {
    x -= p[i]!;
    if (x < 0 && p[i]! > 0) return i;
  }
  for (let i = p.length - 1; i >= 0; i--) if (p[i]! > 0) return i;
  throw new Error("empty distribution");
}

interface ToyCase { name: string; p: Float64Array[]; q: Float64Array[] }

/** k = q.length draft rows, k+1 target rows: independent pairs, q with mass where p has none (and
 *  the reverse), and p == q exactly. */
function toyCases(seed: number, shapes: [V: number, k: number][]): ToyCase[] {
  const r = mulberry32(seed);
  return shapes.flatMap(([V, k]) => {
    const same = Array.from({ length: k + 1 }, () => randomDistribution(V, r));
    return [
      { name: `independent p, q over ${V} tokens, k = ${k}`, p: Array.from({ length: k + 1 }, () => randomDistribution(V, r)), q: Array.from({ length: k }, () => randomDistribution(V, r)) },
      { name: `q has mass where p has none, ${V} tokens, k = ${k}`, p: Array.from({ length: k + 1 }, () => randomDistribution(V, r, [0, 1, 2])), q: Array.from({ length: k }, () => randomDistribution(V, r, [V - 1, V - 2])) },
      { name: `p == q, ${V} tokens, k = ${k}`, p: same, q: same.slice(0, k).map((row) => Float64Array.from(row)) },
    ];
  });
}

type Verify = (input: VerifyInput) => VerifyResult;

/** `draws` rounds: the drafts drawn from q (by the test), then `verify`; counts of the token emitted
 *  at each output position (position i exists when the first i drafts were accepted). */
function emittedCounts(c: ToyCase, verify: Verify, draws: number, seed: number) {
  const random = mulberry32(seed);
  const k = c.q.length;
  const V = c.p[0]!.length;
  const counts = Array.from({ length: k + 1 }, () => new Array<number>(V).fill(0));
  const acceptedHist = new Array<number>(k + 1).fill(0);
  for (let n = 0; n < draws; n++) {
    const tokens = c.q.map((q) => draw(q, random()));
    const { accepted, token } = verify({ target: c.p, draft: c.q, tokens, random });
    if (!(Number.isInteger(accepted) && accepted >= 0 && accepted <= k)) throw new Error(`accepted = ${accepted}, expected an integer in 0 … ${k}`);
    for (let i = 0; i < accepted; i++) counts[i]![tokens[i]!]!++;
    counts[accepted]![token]!++;
    acceptedHist[accepted]!++;
  }
  return { counts, acceptedHist };
}

/** "ok", or which output position does not follow p and how unlikely its counts are. */
function distributionCheck(c: ToyCase, counts: number[][]): string {
  for (const [i, row] of counts.entries()) {
    if (row.reduce((s, x) => s + x, 0) === 0) continue; // position never reached (k drafts all rejected early)
    const { pValue, statistic } = goodnessOfFit(row, c.p[i]!);
    if (!(pValue > SIGNIFICANCE)) {
      const n = row.reduce((s, x) => s + x, 0);
      const worst = row.map((o, y) => ({ y, o: o / n, e: c.p[i]![y]! })).sort((a, b) => Math.abs(b.o - b.e) - Math.abs(a.o - a.e))[0]!;
      return `output position ${i + 1}: chi-square ${statistic.toFixed(1)}, p-value ${pValue.toExponential(2)} < ${SIGNIFICANCE}; ` +
        `e.g. token ${worst.y} came out ${(100 * worst.o).toFixed(2)}% of the time, p gives it ${(100 * worst.e).toFixed(2)}%`;
    }
  }
  return "ok";
}

/** verifyOneToken as a one-token verifier, so 2.1 goes through the same simulation. */
const oneTokenVerifier: Verify = ({ target, draft, tokens, random }) => {
  const v = verifyOneToken(target[0]!, draft[0]!, tokens[0]!, random);
  return v.accepted ? { accepted: 1, token: draw(target[1]!, random()) } : { accepted: 0, token: v.token };
};

/** A random() that replays `values` and counts its calls; throws past the end. */
function scripted(values: number[]) {
  let i = 0;
  const random = () => {
    if (i >= values.length) throw new Error(`random() was called ${i + 1} times; this case expects ${values.length}`);
    return values[i++]!;
  };
  return { random, calls: () => i };
}

const noRandom = () => { throw new Error("greedy verification must not call random()"); };

// ---------------------------------------------------------------------------------------------

describe("task 2.1 — accept/reject one draft token, the residual distribution", () => {
  it("acceptProbability = min(1, p/q), 0 when q = 0 (cases worked by hand)", () => {
    expect(acceptProbability(0.3, 0.6)).toBeCloseTo(0.5, 12);
    expect(acceptProbability(0.6, 0.3)).toBe(1);
    expect(acceptProbability(0.25, 0.25)).toBe(1);
    expect(acceptProbability(0, 0.5)).toBe(0);
    expect(acceptProbability(0.2, 0), "q = 0: the draft could not have drawn it").toBe(0);
    expect(acceptProbability(0, 0)).toBe(0);
  });
  it("acceptProbability rejects negative or non-finite probabilities", () => {
    for (const [p, q] of [[-0.1, 0.5], [0.5, -0.1], [NaN, 0.5], [0.5, Infinity]]) expect(() => acceptProbability(p!, q!), `(${p}, ${q})`).toThrow(RangeError);
  });
  it("residualDistribution = norm(max(0, p − q)) (a case worked by hand)", () => {
    // max(0, p − q) = [0.3, 0, 0.1, 0], mass 0.4 → [0.75, 0, 0.25, 0]
    const r = residualDistribution([0.5, 0.3, 0.2, 0], [0.2, 0.5, 0.1, 0.2]);
    expect(r).toBeInstanceOf(Float64Array);
    expect(Array.from(r).map((x) => +x.toFixed(12))).toEqual([0.75, 0, 0.25, 0]);
  });
  it("residualDistribution sums to 1 and is 0 wherever q >= p", () => {
    const random = mulberry32(5);
    for (let t = 0; t < 20; t++) {
      const p = randomDistribution(12, random, [t % 12]);
      const q = randomDistribution(12, random, [(t + 5) % 12]);
      const r = residualDistribution(p, q);
      expect(r.reduce((s, x) => s + x, 0)).toBeCloseTo(1, 12);
      for (let y = 0; y < 12; y++) if (q[y]! >= p[y]!) expect(r[y], `token ${y}: q >= p`).toBe(0);
    }
  });
  it("residualDistribution of p == q is a copy of p; different lengths are a RangeError", () => {
    const p = Float64Array.from([0.1, 0.6, 0.3]);
    const r = residualDistribution(p, Float64Array.from(p));
    expect(Array.from(r)).toEqual(Array.from(p));
    expect(r).not.toBe(p);
    expect(() => residualDistribution([0.5, 0.5], [1])).toThrow(RangeError);
  });
  it("verifyOneToken with replayed random numbers: accept iff u < min(1, p/q), else the residual's inverse CDF", () => {
    const p = [0.5, 0.3, 0.2, 0], q = [0.2, 0.5, 0.1, 0.2];
    // x = 1: p/q = 0.6.
    let s = scripted([0.59]);
    expect(verifyOneToken(p, q, 1, s.random)).toEqual({ accepted: true, token: 1 });
    expect(s.calls(), "an accepted token uses one random number").toBe(1);
    s = scripted([0.61, 0.9]); // rejected; the residual is [0.75, 0, 0.25, 0]: u = 0.9 lands on token 2
    expect(verifyOneToken(p, q, 1, s.random)).toEqual({ accepted: false, token: 2 });
    expect(s.calls(), "a rejected token uses two random numbers").toBe(2);
    s = scripted([0.61, 0.5]);
    expect(verifyOneToken(p, q, 1, s.random)).toEqual({ accepted: false, token: 0 });
    // x = 0: p/q = 2.5, always accepted; x = 3: p(x) = 0, always rejected.
    expect(verifyOneToken(p, q, 0, scripted([0.999]).random)).toEqual({ accepted: true, token: 0 });
    expect(verifyOneToken(p, q, 3, scripted([0, 0.8]).random)).toEqual({ accepted: false, token: 2 });
  });
  it("verifyOneToken rejects a token that is not an index of p", () => {
    expect(() => verifyOneToken([0.5, 0.5], [0.5, 0.5], 2, Math.random)).toThrow(RangeError);
    expect(() => verifyOneToken([0.5, 0.5], [0.5, 0.5], -1, Math.random)).toThrow(RangeError);
  });
  it("the emitted token follows p exactly (chi-square over 100,000 draws, significance 1e-4)", () => {
    for (const [i, c] of toyCases(21, [[8, 1], [24, 1]]).entries()) {
      const { counts } = emittedCounts(c, oneTokenVerifier, 100_000, 300 + i);
      expect(distributionCheck(c, counts.slice(0, 1)), c.name).toBe("ok");
    }
  });
  it("acceptance rate ≈ Σ min(p, q) = 1 − TV(p, q), within 4 standard errors", () => {
    const [c] = toyCases(22, [[16, 1]]);
    const draws = 100_000;
    const { acceptedHist } = emittedCounts(c!, oneTokenVerifier, draws, 9);
    const alpha = c!.p[0]!.reduce((s, pi, y) => s + Math.min(pi, c!.q[0]![y]!), 0);
    const rate = acceptedHist[1]! / draws;
    expect(Math.abs(rate - alpha), `acceptance ${rate.toFixed(4)}, Σ min(p, q) = ${alpha.toFixed(4)}`).toBeLessThan(4 * Math.sqrt(alpha * (1 - alpha) / draws));
  });
});

describe("task 2.2 — verifyDraft for k tokens with the bonus token", () => {
  it("greedy, all accepted: the bonus token is the argmax after the last draft", () => {
    const rows = [[0.1, 0.7, 0.2], [0.2, 0.2, 0.6], [0.5, 0.3, 0.2]];
    expect(verifyDraft({ target: rows, draft: [], tokens: [1, 2], random: noRandom, greedy: true })).toEqual({ accepted: 2, token: 0 });
  });
  it("greedy, first rejected: the target's argmax replaces it", () => {
    const rows = [[0.1, 0.7, 0.2], [0.2, 0.2, 0.6], [0.5, 0.3, 0.2]];
    expect(verifyDraft({ target: rows, draft: [], tokens: [2, 2], random: noRandom, greedy: true })).toEqual({ accepted: 0, token: 1 });
  });
  it("greedy, mixed: accepted up to the first mismatch, nothing after it counts", () => {
    const rows = [[0.1, 0.7, 0.2], [0.2, 0.2, 0.6], [0.5, 0.3, 0.2], [0, 0, 1]];
    expect(verifyDraft({ target: rows, draft: [], tokens: [1, 0, 0], random: noRandom, greedy: true })).toEqual({ accepted: 1, token: 2 });
  });
  it("greedy, empty draft: one token, the argmax; ties go to the lowest id", () => {
    expect(verifyDraft({ target: [[0.2, 0.4, 0.4]], draft: [], tokens: [], random: noRandom, greedy: true })).toEqual({ accepted: 0, token: 1 });
    expect(verifyDraft({ target: [[0.4, 0.2, 0.4], [0.1, 0.8, 0.1]], draft: [], tokens: [2], random: noRandom, greedy: true })).toEqual({ accepted: 0, token: 0 });
  });
  it("replayed random numbers: accept, accept, bonus; accept, reject and resample (worked by hand)", () => {
    const target = [[0.5, 0.5, 0], [0.2, 0.2, 0.6], [0, 0, 1]];
    const draft = [[0.25, 0.25, 0.5], [0.4, 0.4, 0.2]];
    // x1 = 0: p/q = 2 → accepted (one number). x2 = 2: p/q = 3 → accepted (one number). Bonus from p3 = token 2.
    let s = scripted([0.9, 0.9, 0.1]);
    expect(verifyDraft({ target, draft, tokens: [0, 2], random: s.random })).toEqual({ accepted: 2, token: 2 });
    expect(s.calls(), "k accepts + one bonus draw").toBe(3);
    // x2 = 1: p/q = 0.5; u = 0.7 rejects; residual max(0, p2 − q2) = [0, 0, 0.4] → token 2.
    s = scripted([0.3, 0.7, 0.2]);
    expect(verifyDraft({ target, draft, tokens: [1, 1], random: s.random })).toEqual({ accepted: 1, token: 2 });
    expect(s.calls()).toBe(3);
    // x1 = 2: p1(2) = 0 → rejected whatever u; residual max(0, p1 − q1) = [0.25, 0.25, 0] → u = 0.6 gives token 1.
    s = scripted([0, 0.6]);
    expect(verifyDraft({ target, draft, tokens: [2, 0], random: s.random })).toEqual({ accepted: 0, token: 1 });
    expect(s.calls(), "nothing is drawn after the first rejection").toBe(2);
  });
  it("k = 0: one token drawn from p_1 (chi-square)", () => {
    const p = randomDistribution(10, mulberry32(3));
    const c: ToyCase = { name: "k = 0", p: [p], q: [] };
    const { counts } = emittedCounts(c, verifyDraft, 50_000, 4);
    expect(distributionCheck(c, counts)).toBe("ok");
  });
  it("every emitted position follows the target exactly (chi-square over 200,000 draws per case, significance 1e-4)", () => {
    for (const [i, c] of toyCases(14, [[8, 1], [16, 3]]).entries()) {
      const { counts } = emittedCounts(c, verifyDraft, 200_000, 100 + i);
      expect(distributionCheck(c, counts), c.name).toBe("ok");
    }
  });
  it("mean accepted length ≈ E(α, k) for i.i.d. positions, acceptance of position 1 ≈ Σ min(p, q)", () => {
    const r = mulberry32(8);
    const p = randomDistribution(16, r), q = randomDistribution(16, r);
    const k = 4, draws = 100_000;
    const c: ToyCase = { name: "iid", p: Array(k + 1).fill(p), q: Array(k).fill(q) };
    const { acceptedHist } = emittedCounts(c, verifyDraft, draws, 6);
    const alpha = p.reduce((s, pi, y) => s + Math.min(pi, q[y]!), 0);
    const first = 1 - acceptedHist[0]! / draws;
    expect(Math.abs(first - alpha)).toBeLessThan(4 * Math.sqrt(alpha * (1 - alpha) / draws));
    const lengths = acceptedHist.map((n, a) => [1 + a, n] as const);
    const mean = lengths.reduce((s, [l, n]) => s + l * n, 0) / draws;
    const sd = Math.sqrt(lengths.reduce((s, [l, n]) => s + n * (l - mean) ** 2, 0) / (draws - 1));
    const E = (1 - alpha ** (k + 1)) / (1 - alpha);
    expect(Math.abs(mean - E), `mean tokens per round ${mean.toFixed(4)}, E(α, k) = ${E.toFixed(4)}`).toBeLessThan(4 * sd / Math.sqrt(draws));
  });
  it("row counts that do not match k are a RangeError", () => {
    const row = [0.5, 0.5];
    expect(() => verifyDraft({ target: [row], draft: [row], tokens: [0], random: Math.random })).toThrow(RangeError);
    expect(() => verifyDraft({ target: [row, row], draft: [], tokens: [0], random: Math.random })).toThrow(RangeError);
  });
});

describe("task 2.3 — E(α, k) and the wall-clock speedup", () => {
  it("E(α, k) on cases worked by hand", () => {
    expect(expectedTokensPerPass(0, 4), "nothing accepted: one token per pass").toBe(1);
    expect(expectedTokensPerPass(1, 4), "everything accepted: k + 1").toBe(5);
    expect(expectedTokensPerPass(0.5, 2)).toBeCloseTo(1.75, 12);
    expect(expectedTokensPerPass(0.8, 4)).toBeCloseTo(3.3616, 12);
    expect(expectedTokensPerPass(0.7, 0)).toBe(1);
  });
  it("E(α, k) matches a simulation of rounds (each draft accepted with probability α, stop at the first rejection)", () => {
    const random = mulberry32(31);
    for (const [alpha, k] of [[0.3, 2], [0.75, 5], [0.95, 8]] as const) {
      let total = 0, squares = 0;
      const rounds = 200_000;
      for (let n = 0; n < rounds; n++) {
        let a = 0;
        while (a < k && random() < alpha) a++;
        total += a + 1;
        squares += (a + 1) ** 2;
      }
      const mean = total / rounds;
      const se = Math.sqrt((squares / rounds - mean ** 2) / rounds);
      const got = expectedTokensPerPass(alpha, k);
      expect(Math.abs(got - mean), `α = ${alpha}, k = ${k}: E = ${got}, simulated ${mean.toFixed(4)} ± ${se.toFixed(4)}`).toBeLessThan(4 * se);
    }
  });
  it("predictedSpeedup = E(α, k) / (k·c + v)", () => {
    expect(predictedSpeedup(0.8, 4, 0.1, 1.2)).toBeCloseTo(3.3616 / 1.6, 12);
    expect(predictedSpeedup(0, 1, 0, 1), "α = 0 with free drafts and v = 1: no gain, no loss").toBe(1);
    expect(predictedSpeedup(0.5, 2, 0.25, 3)).toBeCloseTo(1.75 / 3.5, 12);
  });
  it("bad α, k, c or v are RangeErrors", () => {
    expect(() => expectedTokensPerPass(1.2, 4)).toThrow(RangeError);
    expect(() => expectedTokensPerPass(-0.1, 4)).toThrow(RangeError);
    expect(() => expectedTokensPerPass(0.5, 1.5)).toThrow(RangeError);
    expect(() => expectedTokensPerPass(0.5, -1)).toThrow(RangeError);
    expect(() => predictedSpeedup(0.5, 2, -0.1, 1)).toThrow(RangeError);
    expect(() => predictedSpeedup(0.5, 2, 0.1, 0)).toThrow(RangeError);
    expect(() => predictedSpeedup(0.5, 2, 0.1, NaN)).toThrow(RangeError);
  });
});

describe("task 2.4 — the best k", () => {
  it("a bandwidth-bound target (v grows slowly): worked by hand, k = 4", () => {
    // speedups 1.500, 1.743, 1.845, 1.868, 1.845, … for k = 1, 2, 3, 4, 5
    const choice = bestK(0.8, 0.1, [1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8]);
    expect(choice.k).toBe(4);
    expect(choice.speedup).toBeCloseTo(3.3616 / 1.8, 12);
  });
  it("a compute-bound target (v(k) = k + 1): no k pays, k = 0 and speedup 1", () => {
    expect(bestK(0.9, 0.2, [2, 3, 4, 5, 6, 7, 8, 9])).toEqual({ k: 0, speedup: 1 });
  });
  it("ties go to the smaller k; exactly 1 is not a speedup", () => {
    expect(bestK(0, 0, [0.5, 0.5, 0.5])).toEqual({ k: 1, speedup: 2 });
    expect(bestK(0, 0, [1, 1, 1])).toEqual({ k: 0, speedup: 1 });
  });
  it("against a brute-force search over random cost curves", () => {
    const random = mulberry32(77);
    for (let t = 0; t < 200; t++) {
      const alpha = random(), c = 0.3 * random();
      const v = Array.from({ length: 1 + Math.floor(8 * random()) }, (_, i) => 0.6 + (i + 1) * random() * 0.5);
      let best = { k: 0, speedup: 1 };
      v.forEach((vk, i) => {
        const k = i + 1;
        const s = ((1 - alpha ** (k + 1)) / (1 - alpha)) / (k * c + vk);
        if (s > best.speedup + 1e-12) best = { k, speedup: s };
      });
      const got = bestK(alpha, c, v);
      expect(got.k, `α = ${alpha.toFixed(3)}, c = ${c.toFixed(3)}, v = [${v.map((x) => x.toFixed(2)).join(", ")}]`).toBe(best.k);
      expect(got.speedup).toBeCloseTo(best.speedup, 9);
    }
  });
  it("an empty v is a RangeError", () => {
    expect(() => bestK(0.5, 0.1, [])).toThrow(RangeError);
  });
});

/** The same proposer as a string search: the earliest occurrence of ",suffix," in ",context,"
 *  (indexOf finds the earliest; the suffix's own position is the last candidate). */
function ngramByStringSearch(context: readonly number[], k: number, minN: number, maxN: number): number[] {
  const text = `,${context.join(",")},`;
  for (let n = Math.min(maxN, context.length - 1); n >= minN; n--) {
    const at = text.indexOf(`,${context.slice(context.length - n).join(",")},`);
    const start = text.slice(0, at + 1).split(",").length - 2; // token index of the match
    if (start < context.length - n) return context.slice(start + n, start + n + k);
  }
  return [];
}

describe("task 2.5 — the prompt-lookup proposer", () => {
  it("the longest suffix first, the earliest occurrence, the tokens that followed it (worked by hand)", () => {
    //               0  1  2  3  4  5  6  7
    const context = [5, 6, 7, 8, 9, 1, 6, 7];
    expect(proposeNgram(context, 2), "[1, 6, 7] never occurred before; [6, 7] did, at 1").toEqual([8, 9]);
    expect(proposeNgram([3, 4, 9, 3, 4, 8, 2, 3, 4], 2), "[3, 4] occurs at 0 and 3: the earliest wins").toEqual([9, 3]);
    expect(proposeNgram([1, 2, 3, 9, 2, 3, 7, 1, 2, 3], 3), "[1, 2, 3] (at 0) beats the shorter [2, 3] (at 1 and 4)").toEqual([9, 2, 3]);
  });
  it("stops at the end of the context; an overlapping occurrence counts", () => {
    expect(proposeNgram([1, 2, 3, 1, 2], 5, { maxN: 2 })).toEqual([3, 1, 2]);
    expect(proposeNgram([1, 1, 1], 4, { maxN: 2 }), "[1, 1] at 0 overlaps the suffix at 1").toEqual([1]);
  });
  it("nothing to propose: no earlier occurrence, a one-token context, minN too long, k = 0", () => {
    expect(proposeNgram([1, 2, 3, 4], 3)).toEqual([]);
    expect(proposeNgram([4], 2)).toEqual([]);
    expect(proposeNgram([5, 6, 7, 8, 9, 1, 6, 7], 2, { minN: 3, maxN: 3 })).toEqual([]);
    expect(proposeNgram([5, 6, 5, 6], 0)).toEqual([]);
  });
  it("agrees with a string-search formulation on random contexts", () => {
    const random = mulberry32(12);
    for (let t = 0; t < 500; t++) {
      const context = Array.from({ length: 1 + Math.floor(30 * random()) }, () => Math.floor(4 * random()));
      const minN = 1 + Math.floor(2 * random()), maxN = minN + Math.floor(3 * random()), k = Math.floor(6 * random());
      expect(proposeNgram(context, k, { minN, maxN }), `context [${context}], k = ${k}, n = ${minN}..${maxN}`).toEqual(ngramByStringSearch(context, k, minN, maxN));
    }
  });
  it("bad minN, maxN or k are RangeErrors", () => {
    expect(() => proposeNgram([1, 2], 2, { minN: 0 })).toThrow(RangeError);
    expect(() => proposeNgram([1, 2], 2, { minN: 3, maxN: 2 })).toThrow(RangeError);
    expect(() => proposeNgram([1, 2], -1)).toThrow(RangeError);
  });
});

// The quiz answers are stored as sha256(salt + ":" + answer) with one salt per question, so reading
// this file does not give them away. Choices compare as lower-case letters; numbers at 3 significant
// figures (answer.toPrecision(3)).
const QUIZ: Record<keyof QuizAnswers, { salt: string; sha256: string }> = {
  q1: { salt: "1e9b16388328df6b", sha256: "958e1f794178ec7c01fdedf20a21faa35e38e8258b0f630343e5a429c134be12" },
  q2: { salt: "b9656827560db7a9", sha256: "906d652af863f7ec4fb1e8a905433c848389304b039643714debfb265c6d2831" },
  q3: { salt: "c9b072926a504786", sha256: "3d4c9c9e989a318af6df354869dbb2c9c2fd2f79e9a3f2d6e38eb29752d78215" },
  q4: { salt: "e88e2d6ccfb24dad", sha256: "77c0f71cf781ee2735d20fde38d9bc8a9e22b2ea7446b49240385c3b304e4517" },
  q5: { salt: "6a1ecec62d3b4656", sha256: "137ac8b2790f2ee2c47c3b9bc51a91d05307132e851ba430dfd040e85ef00ae8" },
  q6: { salt: "8916a73924d36a7f", sha256: "715f4869938f33c2c4a5057163499cd210e644b74099a8361f022a2632a5218e" },
  q7: { salt: "23786fc4992e2ee2", sha256: "3d95d62fc1f5c43ca87056c0a3cd7a1a2b41d7d21c7d7f910e4cec5acc8d498f" },
};

function canonicalAnswer(answer: unknown): string {
  return typeof answer === "number" && Number.isFinite(answer) ? answer.toPrecision(3) : String(answer).trim().toLowerCase();
}

function isRight(q: keyof QuizAnswers, answer: unknown): boolean {
  const { salt, sha256 } = QUIZ[q];
  return createHash("sha256").update(`${salt}:${canonicalAnswer(answer)}`).digest("hex") === sha256;
}

describe("task 2.6 — quiz: the claims about speculative decoding", () => {
  const check = (q: keyof QuizAnswers) => {
    const a = quizAnswers()[q];
    expect(isRight(q, a), `${q.toUpperCase()}: ${JSON.stringify(a)} (read as "${canonicalAnswer(a)}") is not the right answer`).toBe(true);
  };
  it("Q1: why the output distribution does not change", () => check("q1"));
  it("Q2: E(0.8, 4)", () => check("q2"));
  it("Q3: the predicted speedup", () => check("q3"));
  it("Q4: why not k times the acceptance rate", () => check("q4"));
  it("Q5: what happens to TTFT", () => check("q5"));
  it("Q6: why the gain shrinks at high batch sizes", () => check("q6"));
  it("Q7: acceptance of a prompt-lookup token", () => check("q7"));
});

// ---------------------------------------------------------------------------------------------
// Not graded: the checks above can fail. Each wrong verifier below is one a student could write.

// (Written with the test's own helpers, so that these checks never depend on the code being graded.)

/** norm(max(0, p − q)), the test's own. */
function residual(p: Distribution, q: Distribution): number[] {
  const r = Array.from(p, (pi, y) => Math.max(0, pi - q[y]!));
  const mass = r.reduce((s, x) => s + x, 0);
  return mass > 0 ? r.map((x) => x / mass) : Array.from(p);
}

/** At a rejection, sample from p instead of the residual (the classic mistake). */
const residualFromP: Verify = ({ target, draft, tokens, random }) => {
  for (let i = 0; i < tokens.length; i++) {
    const x = tokens[i]!;
    if (random() < Math.min(1, target[i]![x]! / draft[i]![x]!)) continue;
    return { accepted: i, token: draw(target[i]!, random()) };
  }
  return { accepted: tokens.length, token: draw(target[tokens.length]!, random()) };
};

/** Right until the bonus token, which it draws from the last draft distribution instead of p_{k+1}. */
const bonusFromDraft: Verify = ({ target, draft, tokens, random }) => {
  for (let i = 0; i < tokens.length; i++) {
    const x = tokens[i]!;
    if (random() < Math.min(1, target[i]![x]! / draft[i]![x]!)) continue;
    return { accepted: i, token: draw(residual(target[i]!, draft[i]!), random()) };
  }
  return { accepted: tokens.length, token: draw(draft[tokens.length - 1] ?? target[0]!, random()) };
};

/** The right verifier, in the test's own words (so the harness is shown to pass a correct one too). */
const rightVerifier: Verify = ({ target, draft, tokens, random }) => {
  for (let i = 0; i < tokens.length; i++) {
    const x = tokens[i]!;
    if (draft[i]![x]! > 0 && random() < Math.min(1, target[i]![x]! / draft[i]![x]!)) continue;
    return { accepted: i, token: draw(residual(target[i]!, draft[i]!), random()) };
  }
  return { accepted: tokens.length, token: draw(target[tokens.length]!, random()) };
};

describe("the graded checks reject wrong verifiers (not graded)", () => {
  it("a right verifier written here passes them", () => {
    for (const [i, c] of toyCases(14, [[8, 1], [16, 3]]).entries()) {
      const { counts } = emittedCounts(c, rightVerifier, 200_000, 100 + i);
      expect(distributionCheck(c, counts), c.name).toBe("ok");
    }
  }, 60_000);
  it("residual replaced by p: caught on every case where p != q", () => {
    for (const [i, c] of toyCases(14, [[8, 1], [16, 3]]).entries()) {
      if (c.name.startsWith("p == q")) continue; // no rejection ever happens there
      const { counts } = emittedCounts(c, residualFromP, 200_000, 100 + i);
      expect(distributionCheck(c, counts), c.name).not.toBe("ok");
    }
  }, 60_000);
  it("a bonus token drawn from the draft: caught", () => {
    const [c] = toyCases(14, [[8, 1]]);
    const { counts } = emittedCounts(c!, bonusFromDraft, 200_000, 100);
    expect(distributionCheck(c!, counts)).not.toBe("ok");
  }, 60_000);
  it("the string-search reference agrees with the cases worked by hand", () => {
    expect(ngramByStringSearch([5, 6, 7, 8, 9, 1, 6, 7], 2, 1, 3)).toEqual([8, 9]);
    expect(ngramByStringSearch([1, 1, 1], 4, 1, 2)).toEqual([1]);
    expect(ngramByStringSearch([1, 2, 3, 4], 3, 1, 3)).toEqual([]);
    expect(ngramByStringSearch([11, 1, 11, 1], 2, 1, 1), "the suffix [1] matches token 1, not the 1 inside 11").toEqual([11, 1]);
  });
});
