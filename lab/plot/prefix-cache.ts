// The figures of notebooks/03-prefix-caching.ipynb: each a function of its rows returning Plot
// options (renderFigure draws it; test/prefix-cache-figures.test.ts snapshots each on fixed rows).
// The rows come from lab/study/prefix-cache.ts; the types are restated here so lab/plot does not
// depend on the study.
import { Plot, type PlotOptions } from "./index.ts";

const WIDTH = 640;

// ─── TTFT against the shared prefix length ───────────────────────────────────────────────────────

export interface TtftPoint {
  sharedTokens: number;
  promptTokens: number;
  coldMs: number;
  cachedMs: number;
  /** 1 − multiply-adds on a hit ÷ multiply-adds cold */
  predictedSaving: number;
}

/** Measured TTFT cold and on a cache hit against the shared prefix length, with the cached line the
 *  arithmetic predicts from the cold one (cold × (1 − predicted saving)). */
export function prefixTtftFigure(rows: readonly TtftPoint[], opts: { caption?: string; suffixTokens?: number } = {}): PlotOptions {
  const measured = rows.filter((r) => Number.isFinite(r.coldMs) && Number.isFinite(r.cachedMs));
  if (measured.length === 0) throw new Error("prefixTtftFigure: no row has measured times (the sweep ran with measure: false)");
  const data = measured.flatMap((r) => [
    { sharedTokens: r.sharedTokens, ms: r.coldMs, series: "cold (no cache)" },
    { sharedTokens: r.sharedTokens, ms: r.cachedMs, series: "cache hit (measured)" },
    { sharedTokens: r.sharedTokens, ms: r.coldMs * (1 - r.predictedSaving), series: "cache hit (predicted by multiply-adds)" },
  ]);
  const domain = ["cold (no cache)", "cache hit (measured)", "cache hit (predicted by multiply-adds)"];
  return {
    title: "Time to first token vs the shared prefix, cold and cached",
    subtitle: `prompt = shared prefix + ${opts.suffixTokens ?? "a short"} private tokens; LabEngine, block cache, median of the timed runs`,
    ...(opts.caption ? { caption: opts.caption } : {}),
    width: WIDTH,
    height: 360,
    marginLeft: 56,
    x: { label: "shared prefix (tokens) →", grid: true },
    y: { type: "log", label: "↑ TTFT (ms, log scale)", grid: true },
    color: { legend: true, domain, range: ["#e15759", "#4269d0", "#97bbf5"] },
    marks: [
      Plot.line(data.filter((d) => !d.series.includes("predicted")), { x: "sharedTokens", y: "ms", stroke: "series", sort: "sharedTokens" }),
      Plot.line(data.filter((d) => d.series.includes("predicted")), { x: "sharedTokens", y: "ms", stroke: "series", sort: "sharedTokens", strokeDasharray: "4,3" }),
      Plot.dot(data.filter((d) => !d.series.includes("predicted")), { x: "sharedTokens", y: "ms", fill: "series", r: 3 }),
    ],
  };
}

// ─── hit rate against cache capacity ─────────────────────────────────────────────────────────────

export interface CapacityPoint {
  method: string;
  capacityBlocks: number;
  hitRate: number;
}

/** Hit rate (prompt tokens reused ÷ prompt tokens) against the cache's capacity in KV blocks, per method. */
export function prefixCapacityFigure(rows: readonly CapacityPoint[], opts: { blockSize: number; workload: string; bytesPerBlock?: number }): PlotOptions {
  const mib = opts.bytesPerBlock ? ` (1 block = ${(opts.bytesPerBlock / 1024).toFixed(0)} KiB of KV on the studied model)` : "";
  return {
    title: "Hit rate vs cache capacity, under LRU eviction",
    subtitle: `${opts.workload}; blocks of ${opts.blockSize} tokens${mib}`,
    width: WIDTH,
    height: 340,
    marginLeft: 56,
    x: { label: "cache capacity (KV blocks) →", grid: true },
    y: { label: "↑ hit rate (tokens)", grid: true, domain: [0, 1], tickFormat: "%" },
    color: { legend: true },
    marks: [
      Plot.line(rows, { x: "capacityBlocks", y: "hitRate", stroke: "method", sort: "capacityBlocks" }),
      Plot.dot(rows, { x: "capacityBlocks", y: "hitRate", fill: "method", r: 3 }),
      Plot.ruleY([0]),
    ],
  };
}

// ─── block size ──────────────────────────────────────────────────────────────────────────────────

export interface BlockSizePoint {
  workload: string;
  blockSize: number;
  method: string;
  hitRate: number;
  /** what a token-granular, unbounded cache reuses on the same prompts */
  reusableRate: number;
}

/** Hit rate per block size (columns) and workload (rows), one bar per method, with a dashed rule at
 *  what is reusable at all (a token-granular, unbounded cache on the same prompts). */
export function prefixBlockSizeFigure(rows: readonly BlockSizePoint[]): PlotOptions {
  const workloads = [...new Set(rows.map((r) => r.workload))];
  const sizes = [...new Set(rows.map((r) => r.blockSize))].sort((a, b) => a - b);
  const ceilings = workloads.flatMap((w) => sizes.map((blockSize) => ({ workload: w, blockSize, reusableRate: rows.find((r) => r.workload === w)!.reusableRate })));
  return {
    title: "Hit rate vs KV block size",
    subtitle: "block hashing reuses whole blocks only, the radix tree any number of tokens; dashed: all that the prompts share",
    width: WIDTH,
    height: 120 + 130 * workloads.length,
    marginLeft: 56,
    marginRight: 90,
    fx: { label: "block size (tokens)", domain: sizes, tickFormat: (b: number) => `${b}` },
    fy: { label: null, domain: workloads },
    x: { label: null, domain: ["block", "radix"], axis: null },
    y: { label: "↑ hit rate", grid: true, domain: [0, 1], tickFormat: "%", ticks: 4 },
    color: { legend: true, domain: ["block", "radix"] },
    marks: [
      Plot.barY(rows, { fx: "blockSize", fy: "workload", x: "method", y: "hitRate", fill: "method" }),
      Plot.text(rows, { fx: "blockSize", fy: "workload", x: "method", y: "hitRate", text: (r: BlockSizePoint) => `${(100 * r.hitRate).toFixed(0)}%`, dy: -6, fontSize: 9 }),
      Plot.ruleY(ceilings, { fx: "blockSize", fy: "workload", y: "reusableRate", strokeDasharray: "4,3" }),
      Plot.ruleY([0]),
    ],
  };
}

// ─── sessions per KV budget ──────────────────────────────────────────────────────────────────────

export interface SessionsPoint {
  budgetMiB: number;
  sessions: number;
  sharing: string;
}

/** Chat sessions that fit a KV budget with and without sharing the system prompt's blocks. */
export function prefixSessionsFigure(rows: readonly SessionsPoint[], opts: { subtitle: string }): PlotOptions {
  return {
    title: "Concurrent chat sessions per KV-cache budget",
    subtitle: opts.subtitle,
    width: WIDTH,
    height: 340,
    marginLeft: 56,
    x: { label: "KV-cache budget (MiB) →", grid: true, zero: true },
    y: { label: "↑ sessions that fit", grid: true, zero: true },
    color: { legend: true },
    marks: [
      Plot.line(rows, { x: "budgetMiB", y: "sessions", stroke: "sharing", sort: "budgetMiB", curve: "step-after" }),
      Plot.dot(rows, { x: "budgetMiB", y: "sessions", fill: "sharing", r: 3 }),
      Plot.ruleY([0]),
    ],
  };
}
