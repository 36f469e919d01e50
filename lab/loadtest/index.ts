// The load generator: sends requests to an OpenAI-compatible server on a schedule (open-loop Poisson
// arrivals, or a closed loop of C users), times every streamed chunk, and reports what a serving
// engineer reads first — TTFT, TPOT, ITL and end-to-end latency at p50/p90/p99, request and
// output-token throughput, goodput under latency SLOs, errors by status, and what the server's own
// /metrics counted meanwhile. `lab loadtest` is this with flags; a notebook calls runLoadTest.
//
// Definitions (as vLLM's benchmarks/benchmark_serving.py):
//   TTFT    send → first chunk with content;            ITL  every gap between content chunks;
//   E2E     send → [DONE];                               TPOT (E2E − TTFT) / (output tokens − 1),
//           only for requests with ≥ 2 output tokens;
//   duration = first send → last request finished (the test's wall clock);
//   requestThroughput = successful requests / duration; outputTokenThroughput = their output tokens
//   / duration; goodput = successful requests meeting EVERY given SLO / duration (with no SLO,
//   every successful request counts). A request with one output token has no TPOT and meets a TPOT
//   SLO; one with no content has no TTFT and meets no TTFT SLO.
// Percentiles interpolate linearly between closest ranks (numpy's default, lab/measure/stats.ts).
//
// Reading order: options, the report, runLoadTest (prompts → schedule → send → metrics diff →
// summary), summarize (pure: outcomes → report numbers), parseSlo, formatReport.
import { quantile } from "../measure/stats.ts";
import { poissonArrivalsMs } from "./arrivals.ts";
import { diffMetrics, fetchMetrics, type MetricFamily, type MetricsDiff, seriesKey } from "./prometheus.ts";
import { loadTestPrompts, type LoadPrompt, type PromptSet, PROMPT_SETS } from "./prompts.ts";
import { sendStreaming, type RequestOutcome } from "./stream.ts";

export { poissonArrivalsMs } from "./arrivals.ts";
export { PROMPT_SETS, loadTestPrompts, parseTranscript, renderChat, type ChatMessage, type LoadPrompt, type PromptSet } from "./prompts.ts";
export { requestBody, sendStreaming, type RequestOutcome } from "./stream.ts";
export { diffMetrics, fetchMetrics, parsePrometheusText, sampleValue, seriesKey, PrometheusFormatError, type MetricFamily, type MetricsDiff } from "./prometheus.ts";

// ---------------------------------------------------------------------------------------------
// Options

/** Latency objectives in milliseconds; a request meets them when each given one holds. */
export interface Slo {
  ttftMs?: number;
  tpotMs?: number;
  /** every inter-token gap of the request */
  itlMs?: number;
  e2eMs?: number;
}

export interface LoadTestOptions {
  /** The OpenAI API root, e.g. http://localhost:8080/v1 (llama-server, vLLM and SGLang: http://host:8000/v1). */
  baseUrl: string;
  /** The model id the server serves (GET /v1/models lists them). */
  model: string;
  /** Open loop: Poisson arrivals at this many requests per second (Infinity: all at once). */
  rate?: number;
  /** Closed loop: this many users, each sending when its previous request ended. With `rate` or
   *  `arrivalsMs`: at most this many requests in flight (a send waits for a free slot). Default 1
   *  without rate or arrivalsMs. */
  concurrency?: number;
  /** A trace to replay instead of Poisson arrivals: request i is sent arrivalsMs[i] ms after the
   *  start (non-decreasing; `requests` defaults to its length). */
  arrivalsMs?: number[];
  /** Requests to send (default 50). */
  requests?: number;
  /** A prompt set of the kit's data (default "chat"), or the prompts themselves (used in turn). */
  prompts?: PromptSet | LoadPrompt[];
  /** Output tokens per request, unless a prompt says otherwise (default 64). */
  maxTokens?: number;
  /** Default 0 (greedy). */
  temperature?: number;
  /** Seeds the prompt choice and the arrival times (default 0). */
  seed?: number;
  /** Sends `ignore_eos: true` so every request generates maxTokens (not part of OpenAI's API). */
  ignoreEos?: boolean;
  slo?: Slo;
  apiKey?: string;
  /** The server's Prometheus page: default the base URL's origin + /metrics; null: do not read it. */
  metricsUrl?: string | null;
  /** Also read /metrics every this many milliseconds during the test (gauges over time). */
  sampleMetricsMs?: number;
  /** Per request, in milliseconds (default 300,000). */
  requestTimeoutMs?: number;
  /** Called after each request finishes. */
  onProgress?: (finished: number, total: number, failed: number) => void;
  signal?: AbortSignal;
  /** Milliseconds; inject a fake one in tests. Default performance.now. */
  clock?: () => number;
  /** Waits before an open-loop send; inject a fake one with a fake clock. Default setTimeout. */
  sleep?: (ms: number) => Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// The report

export interface Percentiles {
  p50: number | null;
  p90: number | null;
  p99: number | null;
  mean: number | null;
  /** how many values */
  n: number;
}

/** One request as the report keeps it; times in milliseconds from the test's start. */
export interface RequestRecord {
  index: number;
  kind: LoadPrompt["kind"];
  sentMs: number;
  ok: boolean;
  error?: string;
  message?: string;
  ttftMs: number | null;
  tpotMs: number | null;
  e2eMs: number | null;
  itlMs: number[];
  outputTokens: number;
  promptTokens: number | null;
  cachedTokens: number | null;
  meetsSlo: boolean;
  text: string;
}

export interface LoadTestReport {
  baseUrl: string;
  model: string;
  /** "poisson" (rate) or "closed" (concurrency), with the numbers given. */
  arrivals: { kind: "poisson"; rate: number; maxConcurrency: number | null } | { kind: "trace"; maxConcurrency: number | null } | { kind: "closed"; concurrency: number };
  requests: number;
  completed: number;
  failed: number;
  durationS: number;
  ttftMs: Percentiles;
  tpotMs: Percentiles;
  itlMs: Percentiles;
  e2eMs: Percentiles;
  /** successful requests per second */
  requestThroughput: number;
  /** output tokens of successful requests per second */
  outputTokenThroughput: number;
  /** successful requests meeting every SLO, per second */
  goodput: number;
  slo: Slo;
  /** failed requests by error class (HTTP status "429", "connection", "timeout", …) */
  errors: Record<string, number>;
  /** the first message seen for each error class */
  errorMessages: Record<string, string>;
  /** usage totals of successful requests (null when the server reported no usage) */
  promptTokens: number | null;
  outputTokens: number;
  cachedTokens: number | null;
  /** cachedTokens / promptTokens */
  cacheHitRate: number | null;
  /** What the server's /metrics counted during the test, or null with the reason. */
  serverMetrics: (MetricsDiff & { url: string }) | null;
  serverMetricsNote?: string;
  /** Gauges every sampleMetricsMs: [{ tMs, values: { series: value } }]. */
  metricsTimeline?: { tMs: number; values: Record<string, number> }[];
  perRequest: RequestRecord[];
}

// ---------------------------------------------------------------------------------------------
// runLoadTest

export async function runLoadTest(options: LoadTestOptions): Promise<LoadTestReport> {
  const o = checkOptions(options);
  const clock = options.clock ?? (() => performance.now());
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const prompts = Array.isArray(o.prompts) ? o.prompts : loadTestPrompts(o.prompts, o.requests, o.seed);
  const promptFor = (i: number) => prompts[i % prompts.length]!;

  const metricsUrl = o.metricsUrl === undefined ? `${new URL(o.baseUrl).origin}/metrics` : o.metricsUrl;
  const before = metricsUrl ? await fetchMetrics(metricsUrl) : undefined;

  const outcomes: RequestOutcome[] = new Array(o.requests);
  let finished = 0, failed = 0;
  const send = async (i: number) => {
    const outcome = await sendStreaming(promptFor(i), {
      baseUrl: o.baseUrl, model: o.model, maxTokens: o.maxTokens, temperature: o.temperature,
      seed: o.temperature > 0 ? o.seed + i : undefined, ignoreEos: o.ignoreEos, apiKey: o.apiKey,
      clock, timeoutMs: o.requestTimeoutMs, signal: o.signal,
    });
    outcomes[i] = outcome;
    finished++;
    if (!outcome.ok) failed++;
    o.onProgress?.(finished, o.requests, failed);
  };

  const timeline: { tMs: number; values: Record<string, number> }[] = [];
  const start = clock();
  let sampling: Promise<void> | undefined;
  let stopSampling = false;
  if (metricsUrl && o.sampleMetricsMs) {
    sampling = (async () => {
      while (!stopSampling) {
        const page = await fetchMetrics(metricsUrl);
        if ("families" in page) timeline.push({ tMs: clock() - start, values: gaugeValues(page.families) });
        await sleep(o.sampleMetricsMs!);
      }
    })();
  }

  if (o.rate !== undefined || o.arrivalsMs) {
    // Open loop: send at the scheduled offsets, without waiting for answers (a concurrency cap, if
    // given, delays a send until a slot frees: its sentMs then shows the delay).
    const schedule = o.arrivalsMs ?? poissonArrivalsMs(o.rate!, o.requests, o.seed);
    const inFlight = new Set<Promise<void>>();
    for (let i = 0; i < o.requests; i++) {
      if (o.signal?.aborted) break;
      const wait = start + schedule[i]! - clock();
      if (wait > 0) await sleep(wait);
      while (o.concurrency !== undefined && inFlight.size >= o.concurrency) await Promise.race(inFlight);
      const p: Promise<void> = send(i).finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    await Promise.all(inFlight);
  } else {
    // Closed loop: C users, each taking the next request index when its previous one is done.
    let next = 0;
    const user = async () => {
      while (next < o.requests && !o.signal?.aborted) await send(next++);
    };
    await Promise.all(Array.from({ length: o.concurrency! }, user));
  }
  const end = clock();
  stopSampling = true;
  await sampling;

  const after = metricsUrl ? await fetchMetrics(metricsUrl) : undefined;
  let serverMetrics: LoadTestReport["serverMetrics"] = null;
  let serverMetricsNote: string | undefined;
  if (!metricsUrl) serverMetricsNote = "not read (metricsUrl: null)";
  else if (before && "unavailable" in before) serverMetricsNote = before.unavailable;
  else if (after && "unavailable" in after) serverMetricsNote = after.unavailable;
  else if (before && after && "families" in before && "families" in after) serverMetrics = { url: metricsUrl, ...diffMetrics(before.families, after.families) };

  const sent = outcomes.map((x, i) => ({ x, i })).filter(({ x }) => x !== undefined);
  const report = summarize(sent.map(({ x }) => x), start, end, o.slo, sent.map(({ i }) => i));
  return {
    baseUrl: o.baseUrl, model: o.model,
    arrivals: o.arrivalsMs ? { kind: "trace", maxConcurrency: o.concurrency ?? null }
      : o.rate !== undefined ? { kind: "poisson", rate: o.rate, maxConcurrency: o.concurrency ?? null }
      : { kind: "closed", concurrency: o.concurrency! },
    ...report,
    serverMetrics,
    ...(serverMetricsNote ? { serverMetricsNote } : {}),
    ...(o.sampleMetricsMs ? { metricsTimeline: timeline } : {}),
    perRequest: report.perRequest,
  };
}

function gaugeValues(families: MetricFamily[]): Record<string, number> {
  const values: Record<string, number> = {};
  for (const f of families) if (f.type === "gauge") for (const s of f.samples) values[seriesKey(s.name, s.labels)] = s.value;
  return values;
}

type CheckedOptions = Required<Pick<LoadTestOptions, "baseUrl" | "model" | "requests" | "prompts" | "maxTokens" | "temperature" | "seed" | "slo" | "requestTimeoutMs">>
  & Omit<LoadTestOptions, "clock" | "sleep">;

/** Bad options become RangeError naming the option. */
function checkOptions(options: LoadTestOptions): CheckedOptions {
  const o = { ...options };
  const fail = (what: string) => { throw new RangeError(`runLoadTest: ${what}`); };
  let url: URL | undefined;
  try { url = new URL(o.baseUrl); } catch { /* below */ }
  if (!url || !/^https?:$/.test(url.protocol)) fail(`baseUrl must be an http(s) URL such as http://localhost:8080/v1, got ${JSON.stringify(o.baseUrl)}`);
  if (typeof o.model !== "string" || o.model === "") fail("model must be the id of a model the server serves (GET /v1/models)");
  if (o.rate !== undefined && !(o.rate > 0)) fail(`rate must be > 0 requests/s (or Infinity), got ${o.rate}`);
  if (o.concurrency !== undefined && !(Number.isInteger(o.concurrency) && o.concurrency >= 1)) fail(`concurrency must be an integer >= 1, got ${o.concurrency}`);
  if (o.arrivalsMs) {
    if (o.rate !== undefined) fail("give rate or arrivalsMs, not both");
    if (!Array.isArray(o.arrivalsMs) || o.arrivalsMs.length === 0) fail("arrivalsMs must be a non-empty list of milliseconds");
    o.arrivalsMs.forEach((t, i) => {
      if (!Number.isFinite(t) || t < 0 || (i > 0 && t < o.arrivalsMs![i - 1]!)) fail(`arrivalsMs must be finite, >= 0 and non-decreasing (entry ${i} is ${t})`);
    });
    o.requests ??= o.arrivalsMs.length;
    if (o.requests > o.arrivalsMs.length) fail(`requests ${o.requests} is more than the ${o.arrivalsMs.length} arrival times given`);
  }
  if (o.rate === undefined && !o.arrivalsMs) o.concurrency ??= 1;
  o.requests ??= 50;
  if (!Number.isInteger(o.requests) || o.requests < 1) fail(`requests must be an integer >= 1, got ${o.requests}`);
  o.prompts ??= "chat";
  if (Array.isArray(o.prompts)) {
    if (o.prompts.length === 0) fail("prompts is an empty list");
  } else if (!PROMPT_SETS.includes(o.prompts)) fail(`prompts must be ${PROMPT_SETS.join(" | ")} or a list of prompts, got ${JSON.stringify(o.prompts)}`);
  o.maxTokens ??= 64;
  if (!Number.isInteger(o.maxTokens) || o.maxTokens < 1) fail(`maxTokens must be an integer >= 1, got ${o.maxTokens}`);
  o.temperature ??= 0;
  if (!(o.temperature >= 0)) fail(`temperature must be >= 0, got ${o.temperature}`);
  o.seed ??= 0;
  o.slo ??= {};
  for (const [k, v] of Object.entries(o.slo)) if (v !== undefined && !(v > 0)) fail(`slo.${k} must be > 0 ms, got ${v}`);
  o.requestTimeoutMs ??= 300_000;
  if (!(o.requestTimeoutMs > 0)) fail(`requestTimeoutMs must be > 0, got ${o.requestTimeoutMs}`);
  if (o.sampleMetricsMs !== undefined && !(o.sampleMetricsMs > 0)) fail(`sampleMetricsMs must be > 0, got ${o.sampleMetricsMs}`);
  return o as CheckedOptions;
}

// ---------------------------------------------------------------------------------------------
// summarize: outcomes → the report's numbers (pure, so tests can check it on made-up outcomes)

export function percentiles(values: readonly number[]): Percentiles {
  if (values.length === 0) return { p50: null, p90: null, p99: null, mean: null, n: 0 };
  return {
    p50: quantile(values, 0.5), p90: quantile(values, 0.9), p99: quantile(values, 0.99),
    mean: values.reduce((a, b) => a + b, 0) / values.length, n: values.length,
  };
}

/** One request's latencies, by the definitions at the top of this file. */
export function requestLatencies(x: RequestOutcome): { ttftMs: number | null; tpotMs: number | null; e2eMs: number | null; itlMs: number[] } {
  const first = x.contentTimes[0];
  const ttftMs = first === undefined ? null : first - x.sentAt;
  const e2eMs = x.endAt === undefined ? null : x.endAt - x.sentAt;
  const tpotMs = ttftMs !== null && e2eMs !== null && x.outputTokens > 1 ? (e2eMs - ttftMs) / (x.outputTokens - 1) : null;
  const itlMs = x.contentTimes.slice(1).map((t, i) => t - x.contentTimes[i]!);
  return { ttftMs, tpotMs, e2eMs, itlMs };
}

/** Whether a request's latencies meet every given SLO. */
export function meetsSlo(l: ReturnType<typeof requestLatencies>, slo: Slo): boolean {
  if (slo.ttftMs !== undefined && (l.ttftMs === null || l.ttftMs > slo.ttftMs)) return false;
  if (slo.tpotMs !== undefined && l.tpotMs !== null && l.tpotMs > slo.tpotMs) return false;
  if (slo.itlMs !== undefined && l.itlMs.some((g) => g > slo.itlMs!)) return false;
  if (slo.e2eMs !== undefined && (l.e2eMs === null || l.e2eMs > slo.e2eMs)) return false;
  return true;
}

type Summary = Omit<LoadTestReport, "baseUrl" | "model" | "arrivals" | "serverMetrics" | "serverMetricsNote" | "metricsTimeline">;

/** The report's numbers from the outcomes of the requests sent between start and end (ms). */
export function summarize(outcomes: readonly RequestOutcome[], start: number, end: number, slo: Slo = {}, indices?: readonly number[]): Summary {
  const durationS = Math.max(0, end - start) / 1000;
  const perSecond = (n: number) => (durationS > 0 ? n / durationS : 0);
  const ttft: number[] = [], tpot: number[] = [], itl: number[] = [], e2e: number[] = [];
  const errors: Record<string, number> = {};
  const errorMessages: Record<string, string> = {};
  let completed = 0, good = 0, outputTokens = 0;
  let promptTokens: number | null = null, cachedTokens: number | null = null;
  const perRequest: RequestRecord[] = [];
  outcomes.forEach((x, k) => {
    const l = requestLatencies(x);
    const ok = x.ok;
    const meets = ok && meetsSlo(l, slo);
    if (ok) {
      completed++;
      if (meets) good++;
      outputTokens += x.outputTokens;
      if (l.ttftMs !== null) ttft.push(l.ttftMs);
      if (l.tpotMs !== null) tpot.push(l.tpotMs);
      if (l.e2eMs !== null) e2e.push(l.e2eMs);
      itl.push(...l.itlMs);
      if (x.promptTokens !== undefined) promptTokens = (promptTokens ?? 0) + x.promptTokens;
      if (x.cachedTokens !== undefined) cachedTokens = (cachedTokens ?? 0) + x.cachedTokens;
    } else {
      const key = x.error ?? "unknown";
      errors[key] = (errors[key] ?? 0) + 1;
      if (x.message && !(key in errorMessages)) errorMessages[key] = x.message;
    }
    perRequest.push({
      index: indices?.[k] ?? k, kind: x.kind, sentMs: x.sentAt - start, ok,
      ...(x.error ? { error: x.error, message: x.message } : {}),
      ...l, outputTokens: x.outputTokens, promptTokens: x.promptTokens ?? null, cachedTokens: x.cachedTokens ?? null,
      meetsSlo: meets, text: x.text,
    });
  });
  return {
    requests: outcomes.length, completed, failed: outcomes.length - completed, durationS,
    ttftMs: percentiles(ttft), tpotMs: percentiles(tpot), itlMs: percentiles(itl), e2eMs: percentiles(e2e),
    requestThroughput: perSecond(completed), outputTokenThroughput: perSecond(outputTokens), goodput: perSecond(good),
    slo: { ...slo }, errors, errorMessages,
    promptTokens, outputTokens, cachedTokens,
    cacheHitRate: promptTokens !== null && cachedTokens !== null && promptTokens > 0 ? cachedTokens / promptTokens : null,
    perRequest,
  };
}

// ---------------------------------------------------------------------------------------------
// SLOs from the command line, and the text report

const SLO_KEYS = { ttft: "ttftMs", tpot: "tpotMs", itl: "itlMs", e2e: "e2eMs" } as const;

/** "ttft=500,tpot=50" (milliseconds; keys ttft, tpot, itl, e2e) → Slo. RangeError on anything else. */
export function parseSlo(text: string): Slo {
  const slo: Slo = {};
  for (const part of text.split(",").map((s) => s.trim()).filter(Boolean)) {
    const m = /^(\w+)\s*=\s*([-+0-9.eE]+)\s*(ms)?$/.exec(part);
    const key = m ? SLO_KEYS[m[1]!.toLowerCase() as keyof typeof SLO_KEYS] : undefined;
    const value = m ? Number(m[2]) : NaN;
    if (!m || !key) throw new RangeError(`SLO "${part}": expected KEY=MILLISECONDS with KEY one of ${Object.keys(SLO_KEYS).join(", ")} (e.g. ttft=500,tpot=50)`);
    if (!(value > 0) || !Number.isFinite(value)) throw new RangeError(`SLO "${part}": the limit must be a number of milliseconds > 0`);
    if (slo[key] !== undefined) throw new RangeError(`SLO "${m[1]}" given twice`);
    slo[key] = value;
  }
  return slo;
}

/** The report as a few lines of text (what `lab loadtest` prints without --json). */
export function formatReport(r: LoadTestReport): string {
  const f = (x: number | null, d = 1) => (x === null || !Number.isFinite(x) ? "—" : x.toFixed(d));
  const row = (name: string, p: Percentiles) => `${name.padEnd(6)} ${f(p.p50).padStart(9)} ${f(p.p90).padStart(9)} ${f(p.p99).padStart(9)} ${f(p.mean).padStart(9)}   (${p.n})`;
  const sloText = Object.entries(r.slo).map(([k, v]) => `${k.replace(/Ms$/, "")} ≤ ${v} ms`).join(", ");
  const how = r.arrivals.kind === "poisson"
    ? `Poisson arrivals at ${r.arrivals.rate} req/s${r.arrivals.maxConcurrency ? `, at most ${r.arrivals.maxConcurrency} in flight` : ""}`
    : r.arrivals.kind === "trace" ? `a replayed trace${r.arrivals.maxConcurrency ? `, at most ${r.arrivals.maxConcurrency} in flight` : ""}`
    : `closed loop, ${r.arrivals.concurrency} concurrent`;
  const lines = [
    `${r.model} at ${r.baseUrl}: ${r.requests} requests, ${how}, ${f(r.durationS, 2)} s`,
    `completed ${r.completed}, failed ${r.failed}${r.failed ? ` (${Object.entries(r.errors).map(([k, n]) => `${k}: ${n}`).join(", ")})` : ""}`,
    `ms         p50       p90       p99      mean`,
    row("TTFT", r.ttftMs), row("TPOT", r.tpotMs), row("ITL", r.itlMs), row("E2E", r.e2eMs),
    `throughput ${f(r.requestThroughput, 2)} req/s, ${f(r.outputTokenThroughput, 1)} output tokens/s; goodput ${f(r.goodput, 2)} req/s${sloText ? ` (${sloText})` : " (no SLO given: every completed request counts)"}`,
  ];
  if (r.cacheHitRate !== null) lines.push(`prompt tokens ${r.promptTokens}, cached ${r.cachedTokens} (${f(100 * r.cacheHitRate)}%)`);
  for (const [k, m] of Object.entries(r.errorMessages)) lines.push(`error ${k}: ${m}`);
  if (r.serverMetrics) {
    const changed = Object.entries(r.serverMetrics.counters).filter(([, v]) => v !== 0);
    lines.push(`server counters (${r.serverMetrics.url}), change during the test:`);
    for (const [k, v] of changed) lines.push(`  ${k} +${Number.isInteger(v) ? v : v.toFixed(4)}`);
    if (changed.length === 0) lines.push("  (none changed)");
  } else if (r.serverMetricsNote) lines.push(`server metrics: ${r.serverMetricsNote}`);
  return lines.join("\n");
}
