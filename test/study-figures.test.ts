// lab/study/figures.ts: every figure of the quantization study snapshotted as normalized SVG on FIXED
// rows (never live measurements), and checked to be a standalone SVG that draws what it claims.
import { JSDOM } from "jsdom";
import { describe, expect, it } from "vitest";
import { normalizeSvg, renderFigure, type PlotOptions } from "../lab/plot/index.ts";
import {
  QUANT_FIGURE_NAMES, blockFigure, decodeSpeedFigure, kldVsBpwFigure, memoryFigure, qualityVsBpwFigure, relativeQuality,
  type MemoryRow, type StudyRow,
} from "../lab/study/index.ts";

const LEVELS: [string, number, number, number, number][] = [
  // level, bpw, ppl, arithmetic accuracy, KL mean
  ["F32", 32, 5.0, 0.62, 0],
  ["F16", 16.01, 5.0, 0.62, 1e-6],
  ["Q8_0", 8.52, 5.001, 0.62, 2e-4],
  ["Q6_K", 6.58, 5.004, 0.6, 0.002],
  ["Q5_K_M", 5.79, 5.01, 0.6, 0.006],
  ["Q4_K_M", 5.04, 5.05, 0.56, 0.02],
  ["Q4_0", 4.84, 5.09, 0.52, 0.04],
  ["Q3_K_M", 4.26, 5.2, 0.44, 0.09],
  ["Q2_K", 3.47, 5.9, 0.2, 0.4],
];

const rows: StudyRow[] = LEVELS.flatMap(([level, bpw, ppl, acc, kl], i) => (["lab", "llama"] as const).map((engine) => ({
  level, engine, bitsPerWeight: bpw, fileBytes: 1.7e6 * bpw / 8, residentWeightBytes: 1.7e6 * bpw / 8, kvBytesPerToken: 2048,
  perplexity: ppl, pplIncreasePct: 100 * (ppl / 5 - 1), klMean: kl * (engine === "lab" ? 1 : 1.05), klP99: 5 * kl, top1: 1 - kl, positions: 1800,
  tasks: { arithmetic: { accuracy: acc, correct: Math.round(50 * acc), total: 50 }, facts: { accuracy: 0.5 - 0.01 * i, correct: 25 - i, total: 50 } },
  answerPerplexity: { arithmetic: 2 + (5 - ppl) ** 2, facts: 3 }, answerItemNll: {},
  prefillTokensPerSecond: engine === "lab" ? 300 + 10 * i : 9000 - 300 * i, decodeTokensPerSecond: engine === "lab" ? 150 + 5 * i : 900 + 40 * i,
})));

const memory: MemoryRow[] = LEVELS.map(([level, bpw]) => ({
  level, bitsPerWeight: bpw, weightBytes: 1.7e6 * bpw / 8, kvCacheBytes: 8 * 2 ** 20, totalBytes: 1.7e6 * bpw / 8 + 8 * 2 ** 20,
}));

const block = Float32Array.from({ length: 32 }, (_, i) => Math.sin(i * 1.3) * 0.02);
const rebuilt = block.map((w) => Math.round(w / 0.004) * 0.004);

const cases: [string, () => PlotOptions][] = [
  [QUANT_FIGURE_NAMES.quality, () => qualityVsBpwFigure(relativeQuality(rows, "llama", "answer-perplexity"), { engine: "llama", metric: "answer-perplexity" })],
  [QUANT_FIGURE_NAMES.accuracy, () => qualityVsBpwFigure(relativeQuality(rows, "llama"), { engine: "llama", metric: "accuracy" })],
  [QUANT_FIGURE_NAMES.kld, () => kldVsBpwFigure(rows)],
  [QUANT_FIGURE_NAMES.speed, () => decodeSpeedFigure(rows, { caption: "fixed rows" })],
  [QUANT_FIGURE_NAMES.memory, () => memoryFigure(memory, { contextLength: 2048, concurrentSequences: 4, kvBytesPerElement: 2 })],
  [QUANT_FIGURE_NAMES.q4_0Block, () => blockFigure("Q4_0", block, rebuilt)],
  [QUANT_FIGURE_NAMES.q4_KBlock, () => blockFigure("Q4_K", Float32Array.from([...block, ...block]), Float32Array.from([...rebuilt, ...rebuilt]),
    { subtitle: "the first 64 of its 256 weights", subBlock: 32 })],
];

describe("quantization study figures", () => {
  for (const [name, make] of cases) {
    it(`${name} matches its snapshot and is a standalone SVG`, async () => {
      const svg = renderFigure(make());
      await expect(svg).toMatchFileSnapshot(`./__snapshots__/study/${name}.svg`);
      expect(normalizeSvg(svg)).toBe(svg);
      expect(svg.startsWith("<svg")).toBe(true);
      expect(svg).not.toMatch(/<(figure|div|span|h2|h3|figcaption)[\s>]/);
    });
  }

  it("quality figure: one line per task, the threshold drawn, level names on the axis", () => {
    const svg = renderFigure(qualityVsBpwFigure(relativeQuality(rows, "llama"), { threshold: 0.9 }));
    for (const task of ["prose", "arithmetic", "facts"]) expect(svg).toContain(`>${task}</text>`);
    for (const [level] of LEVELS) expect(svg).toContain(`>${level}</text>`);
    expect(svg).toContain("90% threshold");
  });

  it("KL figure leaves out F32 (KL 0 has no place on a log axis); memory figure labels totals", () => {
    const kl = renderFigure(kldVsBpwFigure(rows));
    expect(kl).not.toContain(">F32</text>");
    expect(kl).toContain(">Q2_K</text>");
    const mem = renderFigure(memoryFigure(memory, { contextLength: 2048, concurrentSequences: 4, kvBytesPerElement: 2 }));
    expect(mem).toContain(`>${(memory[0].totalBytes / 2 ** 20).toFixed(2)} MiB</text>`);
    expect(mem).toContain("4 sequences × 2048 tokens of context, F16 KV cache");
  });

  it("level names sit above the frame in rows where they do not overlap (they collided with each other and the y ticks)", () => {
    for (const svg of [
      renderFigure(qualityVsBpwFigure(relativeQuality(rows, "llama", "answer-perplexity"), { metric: "answer-perplexity" })),
      renderFigure(decodeSpeedFigure(rows)),
    ]) {
      const doc = new JSDOM(svg, { contentType: "image/svg+xml" }).window.document;
      const names = new Set(LEVELS.map(([level]) => level));
      const placed = [...doc.querySelectorAll("text")].filter((t) => names.has(t.textContent ?? "")).map((t) => {
        const [x, y] = /translate\(([-\d.]+),([-\d.]+)\)/.exec(t.getAttribute("transform") ?? "")!.slice(1).map(Number);
        const dy = Number(/translate\(0,([-\d.]+)\)/.exec(t.parentElement!.getAttribute("transform") ?? "")?.[1] ?? 0);
        return { name: t.textContent!, x, top: y, row: dy, half: (t.textContent!.length * 0.6 * 9) / 2 };
      });
      expect(placed.map((p) => p.name).sort()).toEqual([...names].sort()); // each level once
      // frameAnchor "top" puts every name at the frame's top edge; each row's dy lifts it above.
      expect(new Set(placed.map((p) => p.top)).size).toBe(1);
      for (const p of placed) expect(p.row).toBeLessThan(0); // above the frame: clear of data and y ticks
      for (const a of placed) for (const b of placed) {
        if (a !== b && a.row === b.row) expect(Math.abs(a.x - b.x), `${a.name} / ${b.name}`).toBeGreaterThanOrEqual(a.half + b.half);
      }
      const rowOf = (n: string) => placed.find((p) => p.name === n)!.row;
      expect(rowOf("Q4_0")).not.toBe(rowOf("Q4_K_M")); // ~9 px apart on the axis
    }
  });

  it("the accuracy figure draws no error bar on F32 (100% of itself by definition)", () => {
    const pts = relativeQuality(rows, "llama", "accuracy");
    expect(pts.filter((p) => p.level === "F32").every((p) => p.stdError === 0)).toBe(true);
    expect(pts.some((p) => p.level !== "F32" && p.stdError > 0)).toBe(true);
  });

  it("the speed figure refuses rows without measured speed", () => {
    expect(() => decodeSpeedFigure(rows.map((r) => ({ ...r, decodeTokensPerSecond: NaN })))).toThrow(/no row has a measured decode speed/);
  });
});

