// lab/plot/prefix-cache.ts: every figure of notebook 03 snapshotted as normalized SVG on FIXED rows
// (never live measurements), checked to be a standalone SVG that draws what it claims; and the
// arithmetic of lab/study/prefix-cache.ts (multiply-adds, sessions per budget, reusable tokens) on
// hand-worked cases.
import { describe, expect, it } from "vitest";
import { normalizeSvg, renderFigure, type PlotOptions } from "../lab/plot/index.ts";
import {
  prefixBlockSizeFigure, prefixCapacityFigure, prefixSessionsFigure, prefixTtftFigure,
  type BlockSizePoint, type CapacityPoint, type SessionsPoint, type TtftPoint,
} from "../lab/plot/prefix-cache.ts";
import { PREFIX_FIGURE_NAMES, kvBytesPerToken, prefillMultiplyAdds, reusableTokens, sessionsInBudget } from "../lab/study/prefix-cache.ts";
import type { LlamaHparams } from "../lab/gguf/index.ts";

const ttft: TtftPoint[] = [0, 250, 500, 1000, 2000].map((L, i) => ({
  sharedTokens: L, promptTokens: L + 32, coldMs: 10 + 0.8 * L, cachedMs: 9 + i, predictedSaving: L === 0 ? 0 : L / (L + 40),
}));
const capacity: CapacityPoint[] = ["block", "radix"].flatMap((method) => [0, 16, 32, 64, 128, 192].map((c) => ({
  method, capacityBlocks: c, hitRate: Math.min(0.8, c / (method === "block" ? 180 : 200)),
})));
const blockSize: BlockSizePoint[] = ["system-prompt", "few-shot"].flatMap((workload) => [16, 64, 256].flatMap((B) => ["block", "radix"].map((method) => ({
  workload, blockSize: B, method, reusableRate: workload === "few-shot" ? 0.28 : 0.87,
  hitRate: method === "radix" ? (workload === "few-shot" ? 0.28 : 0.87) : workload === "few-shot" ? (B === 16 ? 0.14 : 0) : 0.87 - B / 2000,
}))));
const sessions: SessionsPoint[] = [1, 2, 4, 8].flatMap((m) => [
  { budgetMiB: m, sessions: Math.floor(m / 1.9), sharing: "each session its own copy" },
  { budgetMiB: m, sessions: Math.floor((m - 1.8) / 0.1), sharing: "system prompt shared" },
]).map((r) => ({ ...r, sessions: Math.max(0, r.sessions) }));

const cases: [string, () => PlotOptions][] = [
  [PREFIX_FIGURE_NAMES.ttft, () => prefixTtftFigure(ttft, { suffixTokens: 32, caption: "fixed rows" })],
  [PREFIX_FIGURE_NAMES.capacity, () => prefixCapacityFigure(capacity, { blockSize: 16, workload: "document QA, 8 documents", bytesPerBlock: 32768 })],
  [PREFIX_FIGURE_NAMES.blockSize, () => prefixBlockSizeFigure(blockSize)],
  [PREFIX_FIGURE_NAMES.sessions, () => prefixSessionsFigure(sessions, { subtitle: "fixed rows" })],
];

describe("prefix-cache figures", () => {
  for (const [name, make] of cases) {
    it(`${name} matches its snapshot and is a standalone SVG`, async () => {
      const svg = renderFigure(make());
      await expect(svg).toMatchFileSnapshot(`./__snapshots__/prefix-cache/${name}.svg`);
      expect(normalizeSvg(svg)).toBe(svg);
      expect(svg.startsWith("<svg")).toBe(true);
      expect(svg).not.toMatch(/<(figure|div|span|h2|h3|figcaption)[\s>]/);
    });
  }

  it("draw what they claim: titles, legends, every block size and workload", () => {
    const t = renderFigure(prefixTtftFigure(ttft));
    for (const s of ["cold (no cache)", "cache hit (measured)", "cache hit (predicted by multiply-adds)"]) expect(t).toContain(`>${s}</text>`);
    const b = renderFigure(prefixBlockSizeFigure(blockSize));
    for (const s of ["16", "64", "256", "system-prompt", "few-shot", "14%"]) expect(b).toContain(`>${s}</text>`);
    expect(renderFigure(prefixCapacityFigure(capacity, { blockSize: 16, workload: "w", bytesPerBlock: 32768 }))).toContain("1 block = 32 KiB");
    expect(() => prefixTtftFigure(ttft.map((r) => ({ ...r, coldMs: NaN })))).toThrow(/no row has measured times/);
  });
});

// The target's shape (2 layers, width 256, 4 query heads and 2 KV heads of 64, FFN 512, 1,024 tokens).
const hp: LlamaHparams = { nVocab: 1024, nCtxTrain: 2048, nEmbd: 256, nFf: 512, nHead: 4, nKvHead: 2, nLayer: 2, headDim: 64, rmsEps: 1e-5, ropeFreqBase: 10000 };

describe("prefix-cache study arithmetic", () => {
  it("multiply-adds of a prefill: weights per token, attention over earlier positions, the head once", () => {
    // Per token and layer: q 256·256 + k,v 2·256·128 + o 256·256 + gate/up/down 3·256·512 = 589,824; × 2 layers.
    const perToken = 2 * (256 * 256 + 2 * 256 * 128 + 256 * 256 + 3 * 256 * 512);
    expect(perToken).toBe(1_179_648);
    // 1 token at position 0: itself only → 2 products × 4 heads × 64 × 2 layers; the head 256 × 1024.
    expect(prefillMultiplyAdds(hp, 0, 1)).toBe(perToken + 2 * 2 * 4 * 64 * 1 + 256 * 1024);
    // 2 tokens after 3 cached: positions 3 and 4 see 4 and 5 positions.
    expect(prefillMultiplyAdds(hp, 3, 2)).toBe(2 * perToken + 2 * 2 * 4 * 64 * (4 + 5) + 256 * 1024);
    expect(kvBytesPerToken(hp)).toBe(2 * 2 * 2 * 64 * 4); // 2,048 bytes in F32
    expect(kvBytesPerToken(hp, 2)).toBe(1024);
  });

  it("sessions per budget: ceil(len / B) blocks each alone; the shared full blocks once with sharing, one token always left to compute", () => {
    // 3 sessions of 40 tokens sharing 33, B = 16: alone 3 blocks each; shared: 2 blocks once + 1 each.
    expect(sessionsInBudget([40, 40, 40], 33, 16, 9)).toEqual({ budgetBlocks: 9, withoutSharing: 3, withSharing: 3 });
    expect(sessionsInBudget([40, 40, 40], 33, 16, 5)).toEqual({ budgetBlocks: 5, withoutSharing: 1, withSharing: 3 });
    expect(sessionsInBudget([40, 40, 40], 33, 16, 2)).toEqual({ budgetBlocks: 2, withoutSharing: 0, withSharing: 0 });
    // A session of exactly 32 shared tokens can reuse only 1 block (the last token is recomputed).
    expect(sessionsInBudget([32, 32], 32, 16, 3)).toEqual({ budgetBlocks: 3, withoutSharing: 1, withSharing: 2 });
  });

  it("reusable tokens: the longest prefix shared with any earlier prompt, capped at length − 1", () => {
    expect(reusableTokens([[1, 2, 3, 4], [1, 2, 3, 5], [1, 2, 9], [1, 2, 3, 4]])).toBe(0 + 3 + 2 + 3);
    expect(reusableTokens([[7], [7]])).toBe(0);
  });
});
