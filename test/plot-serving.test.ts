// lab/plot/serving.ts: every figure of notebook 04 snapshotted as normalized SVG on FIXED, seeded
// rows (never live measurements), and checked to be a standalone SVG that draws what it claims.
import { describe, expect, it } from "vitest";
import { normalizeSvg, renderFigure, seededRandom, svgToPng, type PlotOptions } from "../lab/plot/index.ts";
import { SERVING_FIGURE_NAMES, itlSpikesFigure, kvBlocksFigure, throughputLatencyFigure, type CurvePoint, type ItlPoint, type KvSample } from "../lab/plot/serving.ts";

const rates = [1, 2, 4, 8];
const curve: CurvePoint[] = ["continuous", "static"].flatMap((mode) => rates.flatMap((rate) => {
  const cap = mode === "continuous" ? 400 : 150; // tokens/s where the mode saturates
  const throughput = Math.min(rate * 40, cap * (1 - Math.exp(-rate * 40 / cap)));
  const load = throughput / cap;
  return [
    { mode, rate, throughput, metric: "TTFT p90", ms: 50 / Math.max(0.05, 1 - load) },
    { mode, rate, throughput, metric: "TPOT p50", ms: 10 + 20 * load },
  ];
}));

const random = seededRandom(4);
const itl: ItlPoint[] = ["chunked prefill (budget 64)", "no chunking"].flatMap((mode) => Array.from({ length: 60 }, (_, i) => {
  const tMs = 20 * i;
  const spike = mode === "no chunking" ? (i === 25 ? 600 : 0) : i >= 25 && i < 40 ? 30 : 0;
  return { mode, tMs, itlMs: 15 + 5 * random() + spike };
}));

const kv: KvSample[] = Array.from({ length: 40 }, (_, i) => {
  const used = Math.min(24, 3 * i - (i > 12 ? 2 * (i - 12) : 0));
  return [
    { tMs: 100 * i, series: "KV blocks used", value: Math.max(0, used) },
    { tMs: 100 * i, series: "requests running", value: Math.min(6, Math.floor(i / 2)) },
    { tMs: 100 * i, series: "requests waiting", value: Math.max(0, 8 - Math.floor(i / 3)) },
  ];
}).flat();

const cases: [string, () => PlotOptions][] = [
  [SERVING_FIGURE_NAMES.curve, () => throughputLatencyFigure(curve)],
  [SERVING_FIGURE_NAMES.itl, () => itlSpikesFigure(itl, [{ mode: "chunked prefill (budget 64)", tMs: 500 }, { mode: "no chunking", tMs: 500 }])],
  [SERVING_FIGURE_NAMES.kv, () => kvBlocksFigure(kv, { totalBlocks: 24, preemptions: 3 })],
];

describe("notebook 04 figures", () => {
  for (const [name, make] of cases) {
    it(`${name} matches its snapshot and is a standalone SVG with a PNG`, async () => {
      const svg = renderFigure(make());
      await expect(svg).toMatchFileSnapshot(`./__snapshots__/serving/${name}.svg`);
      expect(normalizeSvg(svg)).toBe(svg);
      expect(svg.startsWith("<svg")).toBe(true);
      expect(svg).not.toMatch(/<(figure|div|span|h2|h3|figcaption)[\s>]/);
      expect(svgToPng(svg).subarray(1, 4).toString("ascii")).toBe("PNG");
    });
  }

  it("the curve draws both modes in both metric panels with rate labels; the KV figure names its pool and preemptions", () => {
    const svg = renderFigure(cases[0]![1]());
    for (const label of ["continuous", "static", "TTFT p90", "TPOT p50", "8/s"]) expect(svg).toContain(`>${label}</text>`);
    const k = renderFigure(cases[2]![1]());
    expect(k).toMatch(/pool of 24 blocks \(dashed\); 3 preemptions/);
    for (const label of ["KV blocks used", "requests running", "requests waiting"]) expect(k).toContain(`>${label}</text>`);
    const i = renderFigure(cases[1]![1]());
    for (const label of ["chunked prefill (budget 64)", "no chunking"]) expect(i).toContain(`>${label}</text>`);
  });
});
