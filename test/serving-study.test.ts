// lab/loadtest/study.ts, the parts notebook 04 derives from a record: ITL placed on the timeline,
// the batching trade-off, sessions in a budget, the figure rows; and the committed record has every
// section the notebook reads (a headless run draws from it).
import { describe, expect, it } from "vitest";
import type { LoadTestReport } from "../lab/loadtest/index.ts";
import { batchingTradeOff, curvePoints, itlPoints, itlTimeline, loadServingRecord, sessionsThatFit, type LoadSummary, type ServingRecord } from "../lab/loadtest/study.ts";

const summary = (over: Partial<LoadSummary>): LoadSummary => ({
  requests: 8, completed: 8, outputTokensPerSecond: 100, requestsPerSecond: 2, ttftP50Ms: 10, ttftP90Ms: 20, tpotP50Ms: 5, e2eMeanMs: 100, itlP99Ms: 9, ...over,
});

describe("what notebook 04 derives from a record", () => {
  it("itlTimeline puts each gap at the arrival of its later chunk: send + TTFT + the gaps so far", () => {
    const report = { perRequest: [
      { index: 0, sentMs: 100, ttftMs: 50, itlMs: [10, 20] },
      { index: 1, sentMs: 0, ttftMs: 5, itlMs: [1] },
      { index: 2, sentMs: 0, ttftMs: null, itlMs: [] },
    ] } as unknown as LoadTestReport;
    expect(itlTimeline(report, () => true)).toEqual([{ tMs: 6, itlMs: 1 }, { tMs: 160, itlMs: 10 }, { tMs: 180, itlMs: 20 }]);
    expect(itlTimeline(report, (i) => i === 1)).toEqual([{ tMs: 6, itlMs: 1 }]);
  });

  it("the trade-off compares the most streams within maxRunning with one stream", () => {
    const record = {
      config: { level: "Q4_K_M", maxRunning: 8, maxBatchTokens: 256, maxTokens: 32 },
      closedLoop: [
        { concurrency: 1, ...summary({ outputTokensPerSecond: 100, tpotP50Ms: 5, ttftP50Ms: 10 }) },
        { concurrency: 8, ...summary({ outputTokensPerSecond: 400, tpotP50Ms: 10, ttftP50Ms: 30 }) },
        { concurrency: 16, ...summary({ outputTokensPerSecond: 450, tpotP50Ms: 11, ttftP50Ms: 300 }) },
      ],
    } as unknown as ServingRecord;
    expect(batchingTradeOff(record)).toEqual({ one: 1, many: 8, throughputRatio: 4, tpotRatio: 2, ttftRatio: 3 });
  });

  it("sessions that fit: whole full-context sessions beside the weights, never negative", () => {
    // 2 KiB per token × 1024 tokens = 2 MiB per session.
    expect(sessionsThatFit(8 * 2 ** 20, 2 ** 20, 2048, 1024)).toBe(3);
    expect(sessionsThatFit(7 * 2 ** 20, 2 ** 20, 2048, 1024)).toBe(3);
    expect(sessionsThatFit(2 ** 20 - 1, 2 ** 20, 2048, 1024)).toBe(0);
  });

  it("the committed record has every section the notebook reads, and its figure rows", () => {
    const record = loadServingRecord();
    for (const mode of ["continuous", "static"]) expect(record.curve.filter((p) => p.mode === mode).length).toBeGreaterThanOrEqual(3);
    expect(record.closedLoop.map((p) => p.concurrency)).toContain(1);
    expect(record.chunked.map((c) => c.mode.split(",")[0])).toEqual(["chunked prefill", "no chunking"]);
    expect(record.kv.identicalToAlone).toBe(true);
    expect(record.levels.map((l) => l.level).sort()).toEqual(["Q4_K_M", "Q8_0"]);
    expect(record.speculative.map((s) => s.load)).toEqual(["low", "high"]);
    expect(record.prefix.map((p) => p.cache)).toEqual(["off", "radix"]);
    expect(curvePoints(record)).toHaveLength(2 * record.curve.length);
    expect(itlPoints(record).arrivals).toHaveLength(2);
  });
});
