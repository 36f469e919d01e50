// lab/study (notebook 01's engine room): the study end to end on a tiny synthetic model (both
// engines, a few levels, cached files), the analysis on fixed rows (every verdict branch), and the
// block anatomy against lab/quant's bit-exact dequantizer.
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeSyntheticLlama } from "../lab/model/synthetic.ts";
import { openGguf } from "../lab/gguf/index.ts";
import { quantFormat } from "../lab/quant/index.ts";
import { readCsv } from "../lab/table.ts";
import {
  claimsCheck, COMMON_ANSWER_RANGES, degradationByTask, levelTable, memoryRows, PUBLISHED, q4_0Anatomy, q4_KAnatomy,
  quantizeLevels, relativeQuality, runQuantizationStudy, speedTable, studyTable, tensorWeights, timingPolicy, writeSpeedCsv,
  writeStudyCsv, type StudyResult, type StudyRow,
} from "../lab/study/index.ts";
import { chooseLevel, planMemory } from "../solutions/quantization/memory.ts";

const tmp = mkdtempSync(join(tmpdir(), "lab-study-"));
const source = join(tmp, "tiny.gguf");
const cacheDir = join(tmp, "cache");
const shape = { nEmbd: 256, nFf: 256, nHead: 2, nKvHead: 1, nLayer: 1 };
let study: StudyResult;

beforeAll(async () => {
  await writeSyntheticLlama(source, { seed: 5, ...shape });
  study = await runQuantizationStudy({
    source, cacheDir, levels: ["Q8_0", "Q4_K_M", "Q2_K"], proseTexts: 2, taskItems: 2,
    bench: { promptTokens: 16, decodeTokens: 2, repeats: 1, warmup: 0 },
  });
}, 120_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("runQuantizationStudy on a tiny synthetic model", () => {
  it("measures every level on both engines, F32 first, level-major", () => {
    expect(study.rows.map((r) => `${r.level}/${r.engine}`)).toEqual([
      "F32/lab", "F32/llama", "Q8_0/lab", "Q8_0/llama", "Q4_K_M/lab", "Q4_K_M/llama", "Q2_K/lab", "Q2_K/llama",
    ]);
    expect(study.model.parameters).toBeGreaterThan(0);
    expect(study.settings.positions).toBeGreaterThan(50);
  });

  it("F32 against itself: zero KL, zero perplexity change, all top-1 equal", () => {
    for (const r of study.rows.filter((x) => x.level === "F32")) {
      expect(r.klMean).toBeLessThan(1e-9);
      expect(r.pplIncreasePct).toBe(0);
      expect(r.top1).toBe(1);
    }
  });

  it("both engines compute the same model: F32 perplexities agree, quantized KLs agree closely", () => {
    const byLevel = (level: string, engine: string) => study.rows.find((r) => r.level === level && r.engine === engine)!;
    const f32 = [byLevel("F32", "lab").perplexity, byLevel("F32", "llama").perplexity];
    expect(Math.abs(f32[0] / f32[1] - 1)).toBeLessThan(1e-3);
    for (const level of ["Q4_K_M", "Q2_K"]) {
      const [a, b] = [byLevel(level, "lab").klMean, byLevel(level, "llama").klMean];
      expect(Math.abs(a / b - 1)).toBeLessThan(0.2); // llama.cpp also rounds activations to 8 bits
    }
  });

  it("fewer bits, more damage: bits per weight and KL are ordered as the levels", () => {
    for (const engine of ["lab", "llama"]) {
      const rows = study.rows.filter((r) => r.engine === engine);
      const bpw = rows.map((r) => r.bitsPerWeight);
      expect(bpw[0]).toBe(32);
      expect(bpw[1]).toBeCloseTo(8.5, 0);
      expect([...bpw].sort((a, b) => b - a)).toEqual(bpw);
      const kl = rows.map((r) => r.klMean);
      expect(kl[1]).toBeLessThan(kl[2]);
      expect(kl[2]).toBeLessThan(kl[3]);
      expect(rows[3].top1).toBeLessThan(1);
      for (const r of rows) {
        expect(r.decodeTokensPerSecond).toBeGreaterThan(0);
        expect(r.prefillTokensPerSecond).toBeGreaterThan(0);
        expect(Object.keys(r.tasks).sort()).toEqual(["arithmetic", "code", "facts"]);
        expect(Object.keys(r.answerPerplexity).sort()).toEqual(["arithmetic", "code", "facts"]);
        for (const p of Object.values(r.answerPerplexity)) expect(p).toBeGreaterThan(1);
        for (const items of Object.values(r.answerItemNll)) expect(items).toHaveLength(2);
      }
    }
  });

  it("the files are what they say: size on disk and tensor bytes match the rows", async () => {
    for (const file of study.files) {
      const row = study.rows.find((r) => r.level === file.level)!;
      expect(statSync(file.path).size).toBe(row.fileBytes);
      const gguf = await openGguf(file.path);
      const tensorBytes = gguf.tensors.reduce((s, t) => s + t.byteSize, 0);
      expect(Math.abs((study.model.parameters * row.bitsPerWeight) / 8 - tensorBytes)).toBeLessThan(1e-6 * tensorBytes);
    }
  });

  it("studyTable flattens rows with one accuracy column per task, and no timings (the CSV is committed)", () => {
    const table = studyTable(study.rows);
    expect(Object.keys(table[0])).toEqual([
      "level", "engine", "bits_per_weight", "file_mib", "resident_weights_mib", "kv_bytes_per_token", "perplexity",
      "ppl_increase_pct", "kl_mean", "kl_p99", "same_top1", "arithmetic_acc", "code_acc", "facts_acc",
      "arithmetic_answer_ppl", "code_answer_ppl", "facts_answer_ppl",
    ]);
    const speed = speedTable(study.rows);
    expect(Object.keys(speed[0])).toEqual(["level", "engine", "bits_per_weight", "prefill_tok_s", "decode_tok_s"]);
    expect(speed).toHaveLength(study.rows.length);
    expect(study.speedMeasured).toBe(true);
  });

  it("speed: false measures no speed (NaN tokens/s), and leaves quality as it was", async () => {
    const quiet = await runQuantizationStudy({
      source, cacheDir, levels: ["Q8_0"], engines: ["lab"], proseTexts: 2, taskItems: 2, speed: false,
      bench: { promptTokens: 16, decodeTokens: 2, repeats: 1, warmup: 0 },
    });
    expect(quiet.speedMeasured).toBe(false);
    for (const r of quiet.rows) {
      expect(r.decodeTokensPerSecond).toBeNaN();
      expect(r.prefillTokensPerSecond).toBeNaN();
      const same = study.rows.find((x) => x.level === r.level && x.engine === r.engine)!;
      expect(r.perplexity).toBe(same.perplexity); // deterministic: a re-run gives the same bytes
      expect(r.klMean).toBe(same.klMean);
    }
    expect(speedTable(quiet.rows)).toEqual([]);
    expect(writeSpeedCsv(quiet.rows, join(tmp, "speed.csv"))).toBeUndefined();
  }, 120_000);

  it("results are written by notebook runs, never by the test suite", async () => {
    const csv = join(tmp, "q.csv");
    expect(writeStudyCsv(studyTable(study.rows), csv)).toBe(false); // vitest sets VITEST
    const saved = process.env.VITEST;
    delete process.env.VITEST;
    try {
      expect(writeStudyCsv(studyTable(study.rows), csv)).toBe(true);
    } finally {
      process.env.VITEST = saved;
    }
    const back = readCsv(csv);
    expect(back).toHaveLength(study.rows.length);
    expect(back[0]).toMatchObject({ level: "F32", engine: "lab", bits_per_weight: 32 });
  });

  it("memory rows agree with the reference planMemory (task 1.3) for the same configuration", () => {
    const serving = { contextLength: 1024, concurrentSequences: 3, kvBytesPerElement: 2 };
    for (const m of memoryRows(study, serving)) {
      const plan = planMemory({
        parameters: study.model.parameters, bitsPerWeight: m.bitsPerWeight, nLayer: study.model.nLayer,
        nKvHead: study.model.nKvHead, headDim: study.model.headDim, ...serving,
      });
      expect(m.weightBytes).toBeCloseTo(plan.weightBytes, 3);
      expect(m.kvCacheBytes).toBe(plan.kvCacheBytes);
      expect(m.totalBytes).toBeCloseTo(plan.totalBytes, 3);
    }
  });
});

describe("quantizeLevels: the cache", () => {
  it("reuses files made from the same source, remakes them for a changed source", async () => {
    const again = await quantizeLevels(source, ["F32", "Q8_0"], { cacheDir });
    expect(again.map((f) => f.cached)).toEqual([true, true]);
    expect(again[1].path).toBe(study.files[1].path);
    const other = join(tmp, "other.gguf");
    await writeSyntheticLlama(other, { seed: 6, ...shape });
    const fresh = await quantizeLevels(other, ["Q8_0"], { cacheDir });
    expect(fresh[0].cached).toBe(false);
    expect(fresh[0].path).not.toBe(study.files[1].path);
  });

  it("refuses unknown levels and missing models with a clear error", async () => {
    await expect(quantizeLevels(source, ["Q7_X"], { cacheDir })).rejects.toThrow(/unknown quantization level "Q7_X"/);
    await expect(quantizeLevels(join(tmp, "nope.gguf"), ["Q8_0"], { cacheDir })).rejects.toThrow(/no model at/);
  });
});

// ─── analysis on fixed rows ──────────────────────────────────────────────────────────────────────

function row(level: string, bpw: number, ppl: number, acc: Record<string, number>, total = 100, answerPerplexity: Record<string, number> = {}): StudyRow {
  return {
    level, engine: "llama", bitsPerWeight: bpw, fileBytes: 0, residentWeightBytes: 0, kvBytesPerToken: 0,
    perplexity: ppl, pplIncreasePct: 100 * (ppl / 10 - 1), klMean: 0, klP99: 0, top1: 1, positions: 100,
    tasks: Object.fromEntries(Object.entries(acc).map(([t, a]) => [t, { accuracy: a, correct: Math.round(a * total), total }])),
    answerPerplexity, answerItemNll: {}, prefillTokensPerSecond: 1, decodeTokensPerSecond: 1,
  };
}

/** F32 ppl 10; math collapses at low bits, prose barely moves. */
/** Answer perplexities: arithmetic climbs fastest, code a little slower than prose. */
const answers = (k: number) => ({ arithmetic: 2 * k ** 3, code: 3 * k ** 0.5, facts: 4 * k });
const fixed: StudyRow[] = [
  row("F32", 32, 10, { arithmetic: 0.8, code: 0.6, facts: 0.5 }, 100, answers(1)),
  row("Q8_0", 8.5, 10.001, { arithmetic: 0.8, code: 0.6, facts: 0.5 }, 100, answers(1.0001)),
  row("Q4_K_M", 4.9, 10.2, { arithmetic: 0.5, code: 0.4, facts: 0.5 }, 100, answers(1.02)),
  row("Q4_0", 4.7, 10.5, { arithmetic: 0.45, code: 0.35, facts: 0.49 }, 100, answers(1.05)),
  row("Q3_K_M", 4.1, 11, { arithmetic: 0.3, code: 0.3, facts: 0.48 }, 100, answers(1.1)),
  row("Q2_K", 3.3, 20, { arithmetic: 0.1, code: 0.1, facts: 0.4 }, 100, answers(2)),
];

describe("analysis", () => {
  it("relative quality: prose is F32 ppl / ppl, tasks accuracy / F32 accuracy with a binomial error", () => {
    const pts = relativeQuality(fixed, "llama");
    const q2 = (task: string) => pts.find((p) => p.level === "Q2_K" && p.task === task)!;
    expect(q2("prose").relative).toBeCloseTo(0.5, 12);
    expect(q2("arithmetic").relative).toBeCloseTo(0.125, 12);
    expect(q2("arithmetic").stdError).toBeCloseTo(Math.sqrt(0.1 * 0.9 / 100) / 0.8, 12);
    // F32 is 100% of itself by definition: no error bar there.
    expect(pts.filter((p) => p.level === "F32").map((p) => [p.relative, p.stdError])).toEqual([[1, 0], [1, 0], [1, 0], [1, 0]]);
    expect(() => relativeQuality(fixed.slice(1), "llama")).toThrow(/no F32 row/);
  });

  it("answer perplexity: F32 answer ppl / answer ppl, for every task", () => {
    const pts = relativeQuality(fixed, "llama", "answer-perplexity");
    expect(pts.find((p) => p.level === "Q2_K" && p.task === "arithmetic")!.relative).toBeCloseTo(1 / 8, 12);
    expect(pts.find((p) => p.level === "Q2_K" && p.task === "facts")!.relative).toBeCloseTo(0.5, 12);
    expect(pts.filter((p) => p.level === "F32").every((p) => p.relative === 1)).toBe(true);
  });

  it("answer perplexity error bars come from the paired per-item differences", () => {
    const f32 = { ...row("F32", 32, 10, {}, 100, { code: Math.E }), answerItemNll: { code: [1, 1, 1, 1] } }; // 4 answer tokens
    const q = { ...row("Q4_0", 4.5, 10, {}, 100, { code: Math.E }), answerItemNll: { code: [1.5, 0.5, 1.5, 0.5] } };
    const p = relativeQuality([f32, q], "llama", "answer-perplexity").find((x) => x.level === "Q4_0" && x.task === "code")!;
    expect(p.relative).toBe(1);
    expect(p.stdError).toBeCloseTo((Math.sqrt(4) * Math.sqrt(1 / 3)) / 4, 12); // sqrt(n)·sd(d)/T
    const same = { ...q, answerItemNll: { code: [1, 1, 1, 1] } };
    expect(relativeQuality([f32, same], "llama", "answer-perplexity")[3].stdError).toBe(0);
  });

  it("a task F32 never gets right has no ratio (left out, not 'infinitely better')", () => {
    const rows = [row("F32", 32, 10, { arithmetic: 0 }), row("Q4_0", 4.5, 11, { arithmetic: 0.1 })];
    expect(relativeQuality(rows, "llama").map((p) => p.task)).toEqual(["prose", "prose"]);
    expect(claimsCheck(rows, "llama", { metric: "accuracy" }).at(-1)!.verdict).toBe("not measured");
  });

  it("claims verdicts are computed from the numbers", () => {
    const claims = claimsCheck(fixed, "llama");
    // By answer perplexity only arithmetic outpaces prose (code's answers degrade as sqrt of prose's); by accuracy both do.
    expect(claims.map((c) => c.verdict)).toEqual(["holds", "smaller than claimed", "larger than claimed", "partly holds", "holds"]);
    expect(claims[3].claim).toContain("answer perplexity");
    expect(claims[4].claim).toContain("exact-match accuracy");
    expect(claims[1].ours).toContain("+2.00%"); // Q4_K_M: ppl 10.2 vs 10
    expect(claims[0].published).toBe("Llama-3-8B +0.043% (llama.cpp perplexity README, Llama 3 8B scoreboard)");
    expect(claims[2].published).toContain("Llama-2-70B +8.82% (llama.cpp perplexity README, old Llama 2 70B table)");
    // "< 1%" has no lower end: a level that happens to score better than F32 agrees with it.
    const better = fixed.map((r) => r.level === "Q8_0" ? { ...r, perplexity: 9.99, pplIncreasePct: -0.1 } : r);
    expect(claimsCheck(better, "llama")[0].verdict).toBe("holds");
    // Same levels with prose hit hardest instead: the degradation claim turns around.
    const proseHit = fixed.map((r) => r.level === "F32" ? r : { ...r, perplexity: r.perplexity * 3, pplIncreasePct: 100 * (r.perplexity * 3 / 10 - 1),
      tasks: fixed[0].tasks, answerPerplexity: fixed[0].answerPerplexity });
    const turned = claimsCheck(proseHit, "llama");
    expect(turned.map((c) => c.verdict)).toEqual(["larger than claimed", "larger than claimed", "larger than claimed", "does not hold", "does not hold"]);
  });

  it("differences smaller than the sampling noise are called noise", () => {
    const few = fixed.map((r) => ({ ...r, tasks: Object.fromEntries(Object.entries(r.tasks).map(([t, s]) => [t, { ...s, total: 4 }])) }));
    const d = degradationByTask(few.map((r) => ({ ...r, perplexity: r.level === "F32" ? 10 : 10 * 1.5 })), "llama");
    expect(d.find((x) => x.task === "facts")!.verdict).toBe("within noise");
  });

  it("the level table feeds the reference chooser (task 1.4): budget and threshold pick the level", () => {
    const result = { rows: fixed, files: [], model: { parameters: 1e6, nLayer: 2, nKvHead: 2, headDim: 64 } } as unknown as StudyResult;
    const serving = { contextLength: 512, concurrentSequences: 1, kvBytesPerElement: 2 };
    const table = levelTable(result, "llama", serving);
    expect(table.map((t) => t.level)).toEqual(fixed.map((r) => r.level));
    const roomy = chooseLevel(table, 10e6, 0.95);
    expect(roomy).toMatchObject({ ok: true, level: "Q8_0" }); // only Q8_0 keeps arithmetic >= 95%
    const proseOnly = chooseLevel(table, 10e6, 0.95, ["prose"]);
    expect(proseOnly).toMatchObject({ ok: true, level: "Q4_0" }); // Q3_K_M: 10/11 = 0.91 < 0.95
    const byAnswers = levelTable(result, "llama", serving, "answer-perplexity");
    expect(chooseLevel(byAnswers, 10e6, 0.95, ["facts"])).toMatchObject({ ok: true, level: "Q4_0" }); // 1/1.05 ok, 1/1.1 not
    expect(chooseLevel(byAnswers, 10e6, 0.95, ["arithmetic"])).toMatchObject({ ok: true, level: "Q8_0" }); // 1/1.02³ < 0.95
    expect(chooseLevel(table, 0.5e6, 0.95)).toMatchObject({ ok: false, reason: expect.stringMatching(/memory budget/) });
  });
});

// ─── block anatomy ───────────────────────────────────────────────────────────────────────────────

describe("anatomy of a block", () => {
  it("Q4_0: fields read back rebuild exactly what lab/quant dequantizes", async () => {
    const w = await tensorWeights(source, "blk.0.attn_q.weight", 3, 64, 32);
    const a = q4_0Anatomy(w);
    const ref = new Float32Array(32);
    quantFormat("Q4_0").dequantizeRow(a.bytes, 0, ref);
    expect(Array.from(a.rebuilt)).toEqual(Array.from(ref));
    expect(a.bytes.length).toBe(18);
    expect(a.bitsPerWeight).toBe(4.5);
    expect(a.bits.reduce((s, b) => s + b.bits, 0)).toBe(144);
    expect(a.q.every((q) => Number.isInteger(q) && q >= 0 && q <= 15)).toBe(true);
    expect(a.q).toContain(0); // the largest-magnitude weight sits on an end of the grid
    expect(a.error.maxAbs).toBeLessThanOrEqual(Math.abs(a.d) + 1e-6); // within one grid step (clamping at 15 included)
    expect(a.error.relativeRms).toBeGreaterThan(0);
  });

  it("Q4_K: 8 sub-blocks of 6-bit scales and mins rebuild exactly what lab/quant dequantizes", async () => {
    const w = await tensorWeights(source, "blk.0.ffn_up.weight", 1, 0, 256);
    const a = q4_KAnatomy(w);
    const ref = new Float32Array(256);
    quantFormat("Q4_K").dequantizeRow(a.bytes, 0, ref);
    expect(Array.from(a.rebuilt)).toEqual(Array.from(ref));
    expect(a.bytes.length).toBe(144);
    expect(a.subBlocks).toHaveLength(8);
    for (const s of a.subBlocks) {
      expect(s.scale).toBeGreaterThanOrEqual(0);
      expect(s.scale).toBeLessThan(64);
      expect(s.min).toBeLessThan(64);
      expect(s.q).toHaveLength(32);
    }
    expect(a.bits.reduce((s, b) => s + b.bits, 0)).toBe(1152);
    // Finer scales than Q4_0 on the same weights: no worse on average.
    const q40 = [0, 1, 2, 3, 4, 5, 6, 7].map((k) => q4_0Anatomy(w.slice(32 * k, 32 * k + 32)).error.rms);
    expect(a.error.rms).toBeLessThan(1.5 * Math.sqrt(q40.reduce((s, e) => s + e * e, 0) / 8));
  });

  it("bad block sizes and tensor ranges are clear errors", async () => {
    expect(() => q4_0Anatomy(new Float32Array(31))).toThrow(/32 weights/);
    expect(() => q4_KAnatomy(new Float32Array(32))).toThrow(/256 weights/);
    await expect(tensorWeights(source, "blk.0.attn_q.weight", 0, 250, 32)).rejects.toThrow(/outside/);
    await expect(tensorWeights(source, "nope.weight", 0, 0, 32)).rejects.toThrow(/no tensor/);
  });
});

describe("published numbers and the common answer", () => {
  it("every published number names the table it was read from", () => {
    for (const p of PUBLISHED) {
      expect(p.source.url).toBe("https://github.com/ggml-org/llama.cpp/blob/master/tools/perplexity/README.md");
      expect(p.source.where).toMatch(p.model === "Llama-2-70B" ? /Llama 2 70B Scoreboard/ : /LLaMA 3 8b Scoreboard/);
      expect(p.source.what.toLowerCase()).toContain(p.level.toLowerCase());
    }
    // The percentages are the README's ratios: 1.000425, 1.028160, 1.564849 (L3 8B) and 3.7339 / 3.4313 (L2 70B).
    expect(PUBLISHED.map((p) => p.pplIncreasePct)).toEqual([0.0425, 2.816, 56.4849, 8.82]);
    expect(100 * (3.7339 / 3.4313 - 1)).toBeCloseTo(8.82, 2);
    expect(COMMON_ANSWER_RANGES.map((r) => r.level)).toEqual(["Q8_0", "Q4_K_M", "Q2_K"]);
  });
});

describe("timingPolicy: timings stay out of committed files", () => {
  it("headless runs measure no speed unless LAB_TIMINGS=1; Jupyter measures and prints; only LAB_TIMINGS=1 saves the committed figure", () => {
    expect(timingPolicy({ LAB_HEADLESS: "1" })).toEqual({ measure: false, print: false, saveFigure: false });
    expect(timingPolicy({ LAB_HEADLESS: "1", LAB_TIMINGS: "0" })).toEqual({ measure: false, print: false, saveFigure: false });
    expect(timingPolicy({ LAB_HEADLESS: "1", LAB_TIMINGS: "1" })).toEqual({ measure: true, print: false, saveFigure: true });
    expect(timingPolicy({})).toEqual({ measure: true, print: true, saveFigure: false }); // Jupyter, nbconvert
    expect(timingPolicy({ LAB_TIMINGS: "0" })).toEqual({ measure: false, print: false, saveFigure: false });
    expect(timingPolicy({ LAB_HEADLESS: "1", LAB_TIMINGS: "1", VITEST: "true" }).saveFigure).toBe(false);
  });
});
