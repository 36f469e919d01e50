// Notebook 04's measurements: `lab serve` started in-process (startServer) under several
// configurations and driven by the load generator, recorded in one JSON document.
//
// Timings differ on every run, and `npm start` must leave `git status` clean, so (as notebooks 01–03
// do) the measurements are a record: data/results/serving-study.json, re-measured only on purpose
// (`npm start -- --with-timings`, LAB_TIMINGS=1) or when a student runs the notebook in Jupyter (then
// into git-ignored data/results/timings/). A headless run without timings reads the committed record
// and draws the figures from it; what it computes live is only what does not depend on the clock
// (texts, token counts, cache hits, counters), in the notebook's own cells.
//
// Reading order: the record, measureServing (one section per experiment: batching modes over rates,
// a closed-loop concurrency sweep, chunked prefill, KV pressure, quantization levels, speculative
// decoding, prefix cache), servingStudy (measure or read), then what the notebook derives.
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { cpus, loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { startServer, type ServeOptions, type ServerHandle } from "../serve/server.ts";
import { timingPolicy, writingResults, type TimingPolicy } from "../study/quantization.ts";
import { renderFigure, saveFigure, showFigure, type PlotOptions } from "../plot/index.ts";
import { mulberry32 } from "../random.ts";
import type { CurvePoint, ItlPoint, KvSample } from "../plot/serving.ts";
import { runLoadTest, type LoadPrompt, type LoadTestOptions, type LoadTestReport } from "./index.ts";
import { loadTestPrompts } from "./prompts.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const SERVING_RECORD = join(ROOT, "data", "results", "serving-study.json");
export const SERVING_RECORD_TIMINGS = join(ROOT, "data", "results", "timings", "serving-study.json");
const TARGET = join(ROOT, "data", "models", "target.gguf");
const DRAFT = join(ROOT, "data", "models", "draft.gguf");

// ---------------------------------------------------------------------------------------------
// The record

/** One load test, reduced to what the notebook uses (milliseconds, requests/s, tokens/s). */
export interface LoadSummary {
  requests: number;
  completed: number;
  outputTokensPerSecond: number;
  requestsPerSecond: number;
  ttftP50Ms: number | null;
  ttftP90Ms: number | null;
  tpotP50Ms: number | null;
  e2eMeanMs: number | null;
  itlP99Ms: number | null;
}

export interface ServingRecord {
  machine: { cpus: number; model: string; loadAverageAtStart: number[] };
  /** sha256 (12 hex digits) of the model files measured */
  models: { target: string; draft: string };
  /** the servers' common settings */
  config: { level: string; maxRunning: number; maxBatchTokens: number; maxTokens: number };
  /** §4.1 Poisson arrivals at each rate, per scheduling mode */
  curve: (LoadSummary & { mode: string; rate: number })[];
  /** §4.1 / §3.5 closed loop, continuous batching, per concurrency */
  closedLoop: (LoadSummary & { concurrency: number })[];
  /** §4.2 four streams running when a long chat prompt arrives; with and without chunked prefill */
  chunked: { mode: string; maxBatchTokens: number; longPromptTokens: number; arrivalMs: number; itl: { tMs: number; itlMs: number }[]; maxItlMs: number; p99ItlMs: number; longTtftMs: number | null }[];
  /** §4.3 a KV pool smaller than the running requests need */
  kv: { totalBlocks: number; blockSize: number; samples: KvSample[]; preemptions: number; identicalToAlone: boolean; summary: LoadSummary };
  /** §4.4 one server holding both levels, the same closed-loop load on each */
  levels: { id: string; level: string; weightBytes: number; bitsPerWeight: number; kvBytesPerToken: number; contextSize: number; summary: LoadSummary }[];
  /** §4.5 with and without the draft model, at low and high load */
  speculative: { load: "low" | "high"; concurrency: number; plain: LoadSummary; speculative: LoadSummary; acceptance: number | null }[];
  /** §4.6 chat prompts (shared system prompt), one at a time, prefix cache off vs radix */
  prefix: { cache: string; hitRate: number | null; summary: LoadSummary }[];
}

export function summarizeLoad(r: LoadTestReport): LoadSummary {
  return {
    requests: r.requests, completed: r.completed, outputTokensPerSecond: r.outputTokenThroughput, requestsPerSecond: r.requestThroughput,
    ttftP50Ms: r.ttftMs.p50, ttftP90Ms: r.ttftMs.p90, tpotP50Ms: r.tpotMs.p50, e2eMeanMs: r.e2eMs.mean, itlP99Ms: r.itlMs.p99,
  };
}

// ---------------------------------------------------------------------------------------------
// Measuring

export interface MeasureOptions {
  /** quantization level of the target (default Q4_K_M) */
  level?: string;
  /** §4.1 Poisson rates, requests per second (default 4, 8, 16, 32, 64) */
  rates?: number[];
  /** §4.1 closed-loop concurrencies (default 1, 2, 4, 8, 16) */
  concurrencies?: number[];
  /** requests per load test of §4.1 (default 32) */
  requestsPerPoint?: number;
  onProgress?: (line: string) => void;
}

const MAX_RUNNING = 8;
const MAX_BATCH_TOKENS = 256;
const MAX_TOKENS = 32;

async function withServer<T>(opts: ServeOptions, body: (server: ServerHandle, base: string) => Promise<T>): Promise<T> {
  const server = await startServer({ port: 0, maxRunning: MAX_RUNNING, maxBatchTokens: MAX_BATCH_TOKENS, ...opts });
  try {
    return await body(server, `${server.url}/v1`);
  } finally {
    await server.close({ drainMs: 5000 });
  }
}

/** The ITL gaps of request records, each placed at the arrival time of the later chunk. */
export function itlTimeline(report: LoadTestReport, which: (index: number) => boolean): { tMs: number; itlMs: number }[] {
  const out: { tMs: number; itlMs: number }[] = [];
  for (const r of report.perRequest) {
    if (!which(r.index) || r.ttftMs === null) continue;
    let t = r.sentMs + r.ttftMs;
    for (const g of r.itlMs) {
      t += g;
      out.push({ tMs: t, itlMs: g });
    }
  }
  return out.sort((a, b) => a.tMs - b.tMs);
}

export async function measureServing(opts: MeasureOptions = {}): Promise<ServingRecord> {
  const level = opts.level ?? "Q4_K_M";
  const rates = opts.rates ?? [4, 8, 16, 32, 64];
  const concurrencies = opts.concurrencies ?? [1, 2, 4, 8, 16];
  const perPoint = opts.requestsPerPoint ?? 32;
  const say = opts.onProgress ?? (() => {});
  const models = [`target:${level}`];
  const prose = loadTestPrompts("prose", 64, 4);
  // Answers of different lengths (8 … 64 tokens, seeded; ignore_eos makes each exactly that long):
  // a static batch then idles the rows that finished early, as it does on real traffic.
  const random = mulberry32(11);
  const varied = prose.map((p) => ({ ...p, maxTokens: 8 + Math.floor(random() * 57) }));
  const common: Partial<LoadTestOptions> = { prompts: prose, maxTokens: MAX_TOKENS, ignoreEos: true, requestTimeoutMs: 300_000 };
  const machine = { cpus: cpus().length, model: cpus()[0]?.model ?? "unknown", loadAverageAtStart: loadavg().map((x) => Math.round(x * 100) / 100) };

  // §4.1 static vs continuous batching over Poisson rates, both servers up at once and their runs
  // interleaved (the order alternating per rate), so a shared machine's load swings hit both modes
  // alike; then the closed-loop sweep on continuous. Every point is measured twice (the second pass
  // in reverse order) and the less disturbed run kept — the lower p90 TTFT of an open-loop point, the
  // higher throughput of a closed-loop one: on a shared machine the other run mostly measures the
  // other processes.
  const curve: ServingRecord["curve"] = [];
  const closedLoop: ServingRecord["closedLoop"] = [];
  const keep = <T extends LoadSummary>(list: T[], point: T, same: (a: T) => boolean, better: (a: T, b: T) => boolean) => {
    const i = list.findIndex(same);
    if (i < 0) list.push(point);
    else if (better(point, list[i]!)) list[i] = point;
  };
  await withServer({ models, scheduling: "continuous" }, (contServer, contBase) => withServer({ models, scheduling: "static" }, async (staticServer, staticBase) => {
    const servers = { continuous: { base: contBase, model: contServer.models[0]!.id }, static: { base: staticBase, model: staticServer.models[0]!.id } };
    const order = [...rates.map((rate, i) => [rate, i] as const), ...[...rates].reverse().map((rate, i) => [rate, i + 1] as const)];
    for (const [rate, i] of order) {
      for (const mode of i % 2 === 0 ? ["continuous", "static"] as const : ["static", "continuous"] as const) {
        const r = await runLoadTest({ ...common, prompts: varied, baseUrl: servers[mode].base, model: servers[mode].model, rate, requests: perPoint, seed: rate });
        keep(curve, { mode, rate, ...summarizeLoad(r) }, (p) => p.mode === mode && p.rate === rate, (a, b) => (a.ttftP90Ms ?? Infinity) < (b.ttftP90Ms ?? Infinity));
        say(`§4.1 ${mode} at ${rate} req/s: ${r.outputTokenThroughput.toFixed(0)} tokens/s`);
      }
    }
    for (const concurrency of [...concurrencies, ...[...concurrencies].reverse()]) {
      const r = await runLoadTest({ ...common, prompts: varied, baseUrl: contBase, model: servers.continuous.model, concurrency, requests: Math.max(8, 2 * concurrency) });
      keep(closedLoop, { concurrency, ...summarizeLoad(r) }, (p) => p.concurrency === concurrency, (a, b) => a.outputTokensPerSecond > b.outputTokensPerSecond);
      say(`§4.1 closed loop ×${concurrency}: ${r.outputTokenThroughput.toFixed(0)} tokens/s`);
    }
  }));
  closedLoop.sort((a, b) => a.concurrency - b.concurrency);
  curve.sort((a, b) => (a.mode < b.mode ? -1 : a.mode > b.mode ? 1 : a.rate - b.rate));

  // §4.2 four streams decoding when a long chat prompt (the ~920-token system prompt) arrives.
  const chat = loadTestPrompts("chat", 1, 1)[0]!;
  const chunkWorkload: LoadPrompt[] = [...prose.slice(0, 4).map((p) => ({ ...p, maxTokens: 128 })), { ...chat, maxTokens: 1 }];
  const chunked: ServingRecord["chunked"] = [];
  for (const [mode, chunkedPrefill, maxBatchTokens] of [["chunked prefill, budget 64", true, 64], ["no chunking, budget 1024", false, 1024]] as const) {
    await withServer({ models, chunkedPrefill, maxBatchTokens }, async (server, baseUrl) => {
      const r = await runLoadTest({ baseUrl, model: server.models[0]!.id, prompts: chunkWorkload, arrivalsMs: [0, 0, 0, 0, 600], ignoreEos: true, requestTimeoutMs: 300_000 });
      const itl = itlTimeline(r, (i) => i < 4);
      const gaps = itl.map((x) => x.itlMs).sort((a, b) => a - b);
      const long = r.perRequest.find((x) => x.index === 4)!;
      chunked.push({
        mode, maxBatchTokens, longPromptTokens: long.promptTokens ?? 0, arrivalMs: long.sentMs, itl,
        maxItlMs: gaps[gaps.length - 1] ?? 0, p99ItlMs: r.itlMs.p99 ?? 0, longTtftMs: long.ttftMs,
      });
      say(`§4.2 ${mode}: max ITL ${(gaps[gaps.length - 1] ?? 0).toFixed(0)} ms`);
    });
  }

  // §4.3 a pool of 24 blocks of 16 (384 positions) for 8 requests that each grow to ~100 tokens.
  const kvPrompts = prose.slice(8, 16).map((p) => ({ ...p, maxTokens: 64 }));
  const kv = await withServer({ models, kvBlocks: 24 }, async (server, baseUrl) => {
    const model = server.models[0]!.id;
    const alone = await runLoadTest({ baseUrl, model, prompts: kvPrompts, concurrency: 1, requests: 8, ignoreEos: true, metricsUrl: null });
    const r = await runLoadTest({ baseUrl, model, prompts: kvPrompts, concurrency: 8, requests: 8, ignoreEos: true, sampleMetricsMs: 40 });
    const samples: KvSample[] = (r.metricsTimeline ?? []).flatMap((s) => [
      { tMs: s.tMs, series: "KV blocks used", value: s.values[`lab:kv_cache_blocks{model_name="${model}",state="used"}`] ?? NaN },
      { tMs: s.tMs, series: "requests running", value: s.values[`vllm:num_requests_running{model_name="${model}"}`] ?? NaN },
      { tMs: s.tMs, series: "requests waiting", value: s.values[`vllm:num_requests_waiting{model_name="${model}"}`] ?? NaN },
    ]).filter((s) => Number.isFinite(s.value));
    const text = (x: LoadTestReport) => x.perRequest.slice().sort((a, b) => a.index - b.index).map((p) => p.text);
    const preemptions = r.serverMetrics?.counters[`vllm:num_preemptions_total{model_name="${model}"}`] ?? 0;
    say(`§4.3 ${preemptions} preemptions`);
    return { totalBlocks: server.models[0]!.kvBlocksTotal, blockSize: server.models[0]!.kvBlockSize, samples, preemptions,
      identicalToAlone: JSON.stringify(text(alone)) === JSON.stringify(text(r)), summary: summarizeLoad(r) };
  });

  // §4.4 Q8_0 and Q4_K_M in one server, the same closed loop on each (twice, reversed; the faster kept).
  const levels = await withServer({ models: ["target:Q4_K_M", "target:Q8_0"] }, async (server, baseUrl) => {
    const best = new Map<string, LoadSummary>();
    for (const m of [...server.models, ...[...server.models].reverse()]) {
      const r = summarizeLoad(await runLoadTest({ ...common, baseUrl, model: m.id, concurrency: 8, requests: 16 }));
      if (!best.has(m.id) || r.outputTokensPerSecond > best.get(m.id)!.outputTokensPerSecond) best.set(m.id, r);
      say(`§4.4 ${m.id}: ${r.outputTokensPerSecond.toFixed(0)} tokens/s`);
    }
    return server.models.map((m) => ({ id: m.id, level: m.level, weightBytes: m.weightBytes, bitsPerWeight: m.bitsPerWeight,
      kvBytesPerToken: m.kvBytesPerBlock / m.kvBlockSize, contextSize: m.contextSize, summary: best.get(m.id)! }));
  });

  // §4.5 speculative decoding (the draft model, k = 2) at one stream and at eight: both servers up,
  // plain and speculative interleaved, twice in alternating order, the faster of each kept.
  const spec: ServingRecord["speculative"] = [];
  const loads = [["low", 1, 6], ["high", 8, 16]] as const;
  await withServer({ models }, (plainServer, plainBase) => withServer({ models, draft: "draft" }, async (specServer, specBase) => {
    const model = specServer.models[0]!.id;
    for (const [load, concurrency, requests] of loads) {
      let plain: LoadSummary | undefined, speculative: LoadSummary | undefined, acceptance: number | null = null;
      for (const which of ["plain", "speculative", "speculative", "plain"] as const) {
        const r = await runLoadTest({ ...common, maxTokens: 48, baseUrl: which === "plain" ? plainBase : specBase, model: which === "plain" ? plainServer.models[0]!.id : model, concurrency, requests });
        const summary = summarizeLoad(r);
        if (which === "plain") { if (!plain || summary.outputTokensPerSecond > plain.outputTokensPerSecond) plain = summary; continue; }
        if (!speculative || summary.outputTokensPerSecond > speculative.outputTokensPerSecond) speculative = summary;
        const c = r.serverMetrics?.counters ?? {};
        const drafted = c[`vllm:spec_decode_num_draft_tokens_total{model_name="${model}"}`];
        const accepted = c[`vllm:spec_decode_num_accepted_tokens_total{model_name="${model}"}`];
        if (drafted) acceptance = (accepted ?? 0) / drafted;
      }
      spec.push({ load, concurrency, plain: plain!, speculative: speculative!, acceptance });
      say(`§4.5 ${load} load: ${(speculative!.outputTokensPerSecond / plain!.outputTokensPerSecond).toFixed(2)}× plain`);
    }
  }));

  // §4.6 chat prompts one at a time: every one shares the system prompt.
  const chats = loadTestPrompts("chat", 4, 2).map((p) => ({ ...p, maxTokens: 8 }));
  const prefix: ServingRecord["prefix"] = [];
  for (const cache of ["off", "radix"] as const) {
    await withServer({ models, prefixCache: cache }, async (server, baseUrl) => {
      const r = await runLoadTest({ baseUrl, model: server.models[0]!.id, prompts: chats, concurrency: 1, requests: chats.length, requestTimeoutMs: 300_000 });
      prefix.push({ cache, hitRate: r.cacheHitRate, summary: summarizeLoad(r) });
      say(`§4.6 prefix cache ${cache}: TTFT p50 ${r.ttftMs.p50?.toFixed(0)} ms`);
    });
  }

  return {
    machine, models: { target: await sha12(TARGET), draft: await sha12(DRAFT) },
    config: { level, maxRunning: MAX_RUNNING, maxBatchTokens: MAX_BATCH_TOKENS, maxTokens: MAX_TOKENS },
    curve, closedLoop, chunked, kv, levels, speculative: spec, prefix,
  };
}

async function sha12(path: string): Promise<string> {
  return createHash("sha256").update(await readFile(path)).digest("hex").slice(0, 12);
}

async function writeJson(path: string, doc: unknown): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(`${path}.tmp`, JSON.stringify(doc, null, 2) + "\n");
  await rename(`${path}.tmp`, path);
}

// ---------------------------------------------------------------------------------------------
// Measure or read

export interface ServingStudy {
  record: ServingRecord;
  measuredNow: boolean;
  /** the record was measured on other model files than data/models holds now */
  stale: boolean;
  /** one line saying where the numbers come from (no timings in it) */
  provenance: string;
}

export function loadServingRecord(path = SERVING_RECORD): ServingRecord {
  if (!existsSync(path)) throw new Error(`no ${path}: measure it with \`npm start -- --with-timings\` (or run notebook 04 in Jupyter)`);
  return JSON.parse(readFileSync(path, "utf8")) as ServingRecord;
}

/**
 * The notebook's timings: measured when the policy says so (Jupyter, or LAB_TIMINGS=1), written to
 * data/results/timings/ and, with LAB_TIMINGS=1 only, over the committed record; otherwise the
 * committed record. Never writes under vitest.
 */
export async function servingStudy(opts: MeasureOptions & { policy?: TimingPolicy } = {}): Promise<ServingStudy> {
  const policy = opts.policy ?? timingPolicy();
  if (policy.measure) {
    const record = await measureServing(opts);
    if (writingResults()) {
      await writeJson(SERVING_RECORD_TIMINGS, record);
      if (policy.saveFigure) await writeJson(SERVING_RECORD, record);
    }
    return { record, measuredNow: true, stale: false, provenance: `measured by this run on ${record.machine.cpus} × ${record.machine.model}` };
  }
  const record = loadServingRecord();
  const stale = record.models.target !== await sha12(TARGET) || record.models.draft !== await sha12(DRAFT);
  return {
    record, measuredNow: false, stale,
    provenance: `as last measured on purpose (\`npm start -- --with-timings\`, data/results/serving-study.json) on ${record.machine.cpus} × ${record.machine.model}, ` +
      `load average ${record.machine.loadAverageAtStart[0]} at the start` +
      (stale ? " — NOTE: on other model files than data/models holds now; re-measure with `npm start -- --with-timings`" : ""),
  };
}

/** Saves one of notebook 04's figures into notebooks/figures/ (SVG + PNG), except under vitest. */
export function saveServingFigure(name: string, svg: string): boolean {
  if (!writingResults()) return false;
  saveFigure(name, svg, { dir: join(ROOT, "notebooks", "figures") });
  return true;
}

/**
 * Renders a figure of the study, saves it when that leaves git clean or was asked for (drawn from
 * the committed record: the same bytes; or re-measured with LAB_TIMINGS=1), and shows it. A run in
 * Jupyter shows its own measurements without overwriting the committed figure.
 */
export function showServingFigure(study: ServingStudy, name: string, spec: PlotOptions, policy: TimingPolicy = timingPolicy()): void {
  const svg = renderFigure(spec);
  if (!study.measuredNow || policy.saveFigure) saveServingFigure(name, svg);
  showFigure(svg);
}

// ---------------------------------------------------------------------------------------------
// What the notebook derives from a record

/** §4.1's figure rows: p90 TTFT and p50 TPOT against output tokens/s. */
export function curvePoints(record: ServingRecord): CurvePoint[] {
  return record.curve.flatMap((p) => [
    { mode: p.mode, rate: p.rate, throughput: p.outputTokensPerSecond, metric: "TTFT p90", ms: p.ttftP90Ms ?? NaN },
    { mode: p.mode, rate: p.rate, throughput: p.outputTokensPerSecond, metric: "TPOT p50", ms: p.tpotP50Ms ?? NaN },
  ]);
}

/** §4.2's figure rows. */
export function itlPoints(record: ServingRecord): { points: ItlPoint[]; arrivals: { mode: string; tMs: number }[] } {
  return {
    points: record.chunked.flatMap((c) => c.itl.map((x) => ({ mode: c.mode, tMs: x.tMs, itlMs: x.itlMs }))),
    arrivals: record.chunked.map((c) => ({ mode: c.mode, tMs: c.arrivalMs })),
  };
}

/**
 * "Batching increases throughput but adds latency", from the closed-loop sweep: output tokens/s
 * and TPOT at the highest concurrency within maxRunning against one stream.
 */
export function batchingTradeOff(record: ServingRecord): { one: number; many: number; throughputRatio: number; tpotRatio: number; ttftRatio: number } {
  const one = record.closedLoop.find((p) => p.concurrency === 1)!;
  const within = record.closedLoop.filter((p) => p.concurrency <= record.config.maxRunning);
  const many = within.reduce((a, b) => (b.concurrency > a.concurrency ? b : a));
  return {
    one: one.concurrency, many: many.concurrency,
    throughputRatio: many.outputTokensPerSecond / one.outputTokensPerSecond,
    tpotRatio: (many.tpotP50Ms ?? NaN) / (one.tpotP50Ms ?? NaN),
    ttftRatio: (many.ttftP50Ms ?? NaN) / (one.ttftP50Ms ?? NaN),
  };
}

/** Full-context sessions whose KV cache fits beside the weights in `budgetBytes`. */
export function sessionsThatFit(budgetBytes: number, weightBytes: number, kvBytesPerToken: number, tokensPerSession: number): number {
  return Math.max(0, Math.floor((budgetBytes - weightBytes) / (kvBytesPerToken * tokensPerSession)));
}
