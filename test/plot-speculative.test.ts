// lab/plot/speculative.ts: every figure of notebook 02 snapshotted as normalized SVG on FIXED rows
// (never live measurements), and checked to be a standalone SVG that draws what it claims.
import { describe, expect, it } from "vitest";
import { normalizeSvg, renderFigure, svgToPng, type PlotOptions } from "../lab/plot/index.ts";
import {
  SPEC_FIGURE_NAMES, acceptancePerPositionFigure, batchSpeedupFigure, speedupVsKFigure, toyConvergenceFigure, verifyCostFigure,
  type ToyHistogramRow,
} from "../lab/plot/speculative.ts";

const p = [0, 0.3, 0.25, 0.15, 0.12, 0.08, 0.06, 0.04];
const toyRows: ToyHistogramRow[] = [100, 10_000].flatMap((draws) => ["exact", "residual = p"].flatMap((variant) =>
  p.map((pi, token) => ({ draws, variant, token, frequency: variant === "exact" ? pi + (draws === 100 ? 0.02 * Math.sin(token) : 0) : (pi + 0.05 * (token === 2 ? 1 : 0)) / 1.05 }))));
const levels = ["F32", "Q8_0", "Q4_K_M"];
const ks = [1, 2, 4, 8];
const vOf = (level: string, k: number) => (level === "F32" ? 0.8 * (k + 1) : level === "Q8_0" ? 0.6 * (k + 1) : 0.75 + 0.2 * k);

const cases: [string, () => PlotOptions][] = [
  [SPEC_FIGURE_NAMES.toy, () => toyConvergenceFigure(toyRows, p)],
  [SPEC_FIGURE_NAMES.positions, () => acceptancePerPositionFigure(["draft model (lab)", "prompt lookup n=1..3"].flatMap((drafter, d) =>
    ["prose", "arith", "code", "chat"].flatMap((task, t) => [1, 2, 3, 4].map((position) => ({ task, drafter, position, acceptance: Math.max(0, 0.9 - 0.1 * t - 0.15 * d - 0.05 * position) })))), { k: 4 })],
  [SPEC_FIGURE_NAMES.verifyCost, () => verifyCostFigure(levels.flatMap((level) => ks.map((k) => ({ level, k, v: vOf(level, k) }))))],
  [SPEC_FIGURE_NAMES.speedup, () => speedupVsKFigure(levels.flatMap((level) => ks.map((k) => {
    const E = (1 - 0.75 ** (k + 1)) / 0.25;
    const predicted = E / (0.15 * k + vOf(level, k));
    return { level, k, predicted, measured: predicted * (1 - 0.05 * k / 8) };
  })), { caption: "fixed rows" })],
  [SPEC_FIGURE_NAMES.batch, () => batchSpeedupFigure([1, 4].flatMap((k) => [1, 2, 4, 8, 16].map((batch) => ({ batch, k, predicted: 1.8 / (1 + 0.08 * k * Math.log2(batch)) }))), { level: "Q4_K_M" })],
];

describe("notebook 02 figures", () => {
  for (const [name, make] of cases) {
    it(`${name} matches its snapshot and is a standalone SVG with a PNG`, async () => {
      const svg = renderFigure(make());
      await expect(svg).toMatchFileSnapshot(`./__snapshots__/speculative/${name}.svg`);
      expect(normalizeSvg(svg)).toBe(svg);
      expect(svg.startsWith("<svg")).toBe(true);
      expect(svg).not.toMatch(/<(figure|div|span|h2|h3|figcaption)[\s>]/);
      expect(svgToPng(svg).subarray(1, 4).toString("ascii")).toBe("PNG");
    });
  }

  it("the speedup figure draws both series in every level's panel, the toy figure p and every verifier", () => {
    const svg = renderFigure(cases[3]![1]());
    for (const label of ["measured", "predicted by the cost model", ...levels]) expect(svg).toContain(`>${label}</text>`);
    const toy = renderFigure(cases[0]![1]());
    for (const label of ["exact", "residual = p", "100", "10,000"]) expect(toy).toContain(`>${label}</text>`);
  });
});
