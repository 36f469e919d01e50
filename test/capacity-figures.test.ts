// lab/capacity/figures.ts: every figure of notebook 05 snapshotted as normalized SVG on FIXED rows
// (never live results), and checked to be a standalone SVG that draws what it claims.
import { describe, expect, it } from "vitest";
import { normalizeSvg, renderFigure, type PlotOptions } from "../lab/plot/index.ts";
import {
  autoscaleFigure, calibrationFigure, CAPACITY_FIGURE_NAMES, kvPolicyFigure, memoryFitFigure, publishedFigure, tpotVsBatchFigure,
  type BatchLatencyRow, type MemoryFitRow, type PublishedRow, type ReplicaPoint,
} from "../lab/capacity/figures.ts";

const memory: MemoryFitRow[] = [
  { label: "H100 × 1, FP16", weightsGB: 138, kvGB: 5.4, headroomGB: 8, capacityGB: 80, fits: false },
  { label: "H100 × 2, FP16", weightsGB: 69, kvGB: 2.7, headroomGB: 8, capacityGB: 80, fits: true },
  { label: "A100 80GB × 1, AWQ 4-bit", weightsGB: 36.3, kvGB: 21.5, headroomGB: 8, capacityGB: 80, fits: true },
  { label: "L4 × 4, AWQ 4-bit", weightsGB: 9.1, kvGB: 5.4, headroomGB: 2.4, capacityGB: 24, fits: true },
];
const configs = [["H100 × 2, FP16", 41, 300], ["A100 × 1, AWQ", 35, 75]] as const;
const batches = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];
const latency: BatchLatencyRow[] = configs.flatMap(([config, flat, cross]) => batches.map((batch) => ({ config, batch, tpotMs: flat * Math.max(1, batch / cross) })));
const published: PublishedRow[] = [
  { id: "a", kind: "TTFT (ms)", published: 26, predicted: 11, within2x: false },
  { id: "b", kind: "TTFT (ms)", published: 377, predicted: 330, within2x: true },
  { id: "c", kind: "static batch tok/s/GPU", published: 2657, predicted: 4843, within2x: true },
  { id: "d", kind: "in-flight tok/s", published: 10961, predicted: 29361, within2x: false },
  { id: "e", kind: "in-flight tok/s", published: 4056, predicted: 5459, within2x: true },
];
const replicas: ReplicaPoint[] = ["queue depth", "utilisation"].flatMap((policy, p) =>
  Array.from({ length: 31 }, (_, minute) => ({ policy, minute, replicas: 1 + (minute % 10 >= 8 ? 4 - p * 2 : 0) + (minute % 10 === 9 ? p : 0) })));

const cases: [string, () => PlotOptions][] = [
  [CAPACITY_FIGURE_NAMES.memory, () => memoryFitFigure(memory, { caption: "fixed rows" })],
  [CAPACITY_FIGURE_NAMES.latency, () => tpotVsBatchFigure(latency, { sloMs: 50, crossovers: configs.map(([config, flat, batch]) => ({ config, batch, tpotMs: flat })) })],
  [CAPACITY_FIGURE_NAMES.published, () => publishedFigure(published)],
  [CAPACITY_FIGURE_NAMES.kvPolicy, () => kvPolicyFigure(["chat", "long answers"].flatMap((workload, w) => (["static", "contiguous", "paged"] as const).map((policy, k) => ({
    workload, policy, outputTokensPerSecond: (1 + w) * (400 + 700 * k), meanBatch: 8 + 40 * k,
  }))))],
  [CAPACITY_FIGURE_NAMES.autoscale, () => autoscaleFigure(replicas, { bursts: [[8, 10], [18, 20], [28, 30]] })],
  [CAPACITY_FIGURE_NAMES.calibration, () => calibrationFigure([
    { level: "F32", users: 1, metric: "TTFT", predictedMs: 217, measuredMs: 1598 }, { level: "F32", users: 1, metric: "TPOT", predictedMs: 7, measuredMs: 9.6 },
    { level: "Q4_K_M", users: 16, metric: "TTFT", predictedMs: 1864, measuredMs: 2895 }, { level: "Q4_K_M", users: 16, metric: "TPOT", predictedMs: 29.7, measuredMs: 70.8 },
  ], { caption: "fixed rows" })],
  [`${CAPACITY_FIGURE_NAMES.calibration}-engines`, () => calibrationFigure([
    { engine: "lab", level: "F32", users: 1, metric: "TTFT", predictedMs: 217, measuredMs: 1598 }, { engine: "lab", level: "Q4_K_M", users: 16, metric: "TPOT", predictedMs: 29.7, measuredMs: 70.8 },
    { engine: "llama", level: "F32", users: 1, metric: "TTFT", predictedMs: 90, measuredMs: 120 }, { engine: "llama", level: "Q4_K_M", users: 16, metric: "TPOT", predictedMs: 12, measuredMs: 20 },
  ], { caption: "fixed rows, two engines" })],
];

describe("capacity figures (notebook 05)", () => {
  for (const [name, make] of cases) {
    it(`${name} matches its snapshot and is a standalone SVG`, async () => {
      const svg = renderFigure(make());
      await expect(svg).toMatchFileSnapshot(`./__snapshots__/capacity/${name}.svg`);
      expect(normalizeSvg(svg)).toBe(svg);
      expect(svg.startsWith("<svg")).toBe(true);
      expect(svg).not.toMatch(/<(figure|div|span|h2|h3|figcaption)[\s>]/);
    });
  }

  it("memory: one bar segment per part per row, a tick per GPU, a verdict per row", () => {
    const svg = renderFigure(memoryFitFigure(memory));
    expect(svg.match(/<rect fill="#(4269d0|efb118|c8c8c8)" height/g)?.length).toBe(3 * memory.length);
    for (const r of memory) expect(svg).toContain(r.label);
    expect(svg.match(/>no</g)?.length).toBe(1);
  });

  it("published: misses are drawn open (stroke, no fill)", () => {
    const svg = renderFigure(publishedFigure(published));
    expect(svg.match(/<circle /g)?.length).toBe(published.length);
  });
});
