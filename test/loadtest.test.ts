// The load generator (lab/loadtest) against a small OpenAI-compatible stub server (fastify, loopback)
// whose delays are on a FAKE clock shared with the client: the stub advances the clock by a planned
// delay, writes one SSE event, and waits until the client has stamped it (the client reads the clock
// exactly once per event), so every TTFT, ITL, TPOT and E2E the report gives is known exactly.
// Then: percentiles, goodput, 429s under errors, Poisson arrival statistics (a KS test that fixed
// spacing fails), the /metrics diff (a real prom-client registry, parse-prometheus-text-format as the
// oracle), failures (connection, timeout, incomplete stream), and the CLI.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import Fastify, { type FastifyInstance } from "fastify";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import { loadtestCommand } from "../lab/cli/commands/loadtest.ts";
import { UsageError } from "../lab/errors.ts";
import {
  diffMetrics, loadTestPrompts, parsePrometheusText, parseSlo, parseTranscript, percentiles, poissonArrivalsMs,
  renderChat, runLoadTest, summarize, type LoadPrompt, type LoadTestReport, type RequestOutcome,
} from "../lab/loadtest/index.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** What parse-prometheus-text-format returns (its README's shape; the package ships no types). */
interface OracleFamily {
  name: string;
  help: string;
  type: string;
  metrics: { value?: string; labels?: Record<string, string>; buckets?: Record<string, string>; count?: string }[];
}

// ---- the stub server ---------------------------------------------------------------------------

/** A clock the stub advances and the client reads; counts reads so the stub can wait for one. */
class FakeClock {
  now = 0;
  reads = 0;
  read = () => { this.reads++; return this.now; };
}

/** What the stub does for the i-th request it receives. Delays in fake milliseconds. */
interface Plan {
  /** answer with this status and an OpenAI error body instead of streaming */
  status?: number;
  /** delay before the first content chunk */
  ttft?: number;
  /** delays before each later content chunk */
  gaps?: number[];
  /** tokens each content chunk carries (default 1 each), reported in usage */
  tokensPerChunk?: number[];
  /** delay before [DONE] after the last chunk (default 0) */
  done?: number;
  /** send a usage chunk (default true) */
  usage?: boolean;
  promptTokens?: number;
  cachedTokens?: number;
  /** end the body before [DONE] */
  truncate?: boolean;
  /** never answer (for timeouts) */
  hang?: boolean;
}

interface Stub {
  url: string;
  received: { path: string; body: Record<string, unknown> }[];
  close: () => Promise<void>;
}

const servers: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** Waits (real time, bounded) until the client has read the clock since `mark`. */
async function untilRead(clock: FakeClock, mark: number): Promise<void> {
  const deadline = Date.now() + 5000;
  while (clock.reads <= mark) {
    if (Date.now() > deadline) throw new Error("stub: the client never stamped the event");
    await new Promise((r) => setImmediate(r));
  }
}

async function stubServer({ clock, plan = () => ({}), registry, onRequest }: {
  clock?: FakeClock; plan?: (i: number) => Plan; registry?: Registry; onRequest?: (plan: Plan) => void;
} = {}): Promise<Stub> {
  const app = Fastify();
  servers.push(app);
  const received: Stub["received"] = [];
  let count = 0;
  const handler = (kind: "chat" | "completion") => async (request: { body: unknown; url: string }, reply: import("fastify").FastifyReply) => {
    const body = request.body as Record<string, unknown>;
    received.push({ path: request.url, body });
    const p = plan(count++);
    onRequest?.(p);
    if (p.hang) return new Promise(() => {});
    if (p.status) {
      return reply.code(p.status).header("retry-after", "1").send({ error: { message: `stub says ${p.status}`, type: "stub_error", code: p.status } });
    }
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    const event = async (delay: number, data: string) => {
      if (clock) clock.now += delay;
      const mark = clock?.reads ?? 0;
      res.write(`data: ${data}\n\n`);
      if (clock) await untilRead(clock, mark);
    };
    const delays = [p.ttft ?? 0, ...(p.gaps ?? [])];
    const perChunk = p.tokensPerChunk ?? delays.map(() => 1);
    const object = kind === "chat" ? "chat.completion.chunk" : "text_completion";
    for (let k = 0; k < delays.length; k++) {
      const choice = kind === "chat" ? { index: 0, delta: { content: `t${k} ` }, finish_reason: null } : { index: 0, text: `t${k} `, finish_reason: null };
      await event(delays[k]!, JSON.stringify({ id: "x", object, choices: [choice] }));
    }
    if (p.truncate) { res.end(); return; }
    if (p.usage !== false) {
      const usage = { prompt_tokens: p.promptTokens ?? 7, completion_tokens: perChunk.reduce((a, b) => a + b, 0), total_tokens: 0,
        ...(p.cachedTokens !== undefined ? { prompt_tokens_details: { cached_tokens: p.cachedTokens } } : {}) };
      await event(0, JSON.stringify({ id: "x", object, choices: [], usage }));
    }
    await event(p.done ?? 0, "[DONE]");
    res.end();
  };
  app.post("/v1/chat/completions", handler("chat"));
  app.post("/v1/completions", handler("completion"));
  if (registry) app.get("/metrics", async (_req, reply) => reply.header("content-type", registry.contentType).send(await registry.metrics()));
  const address = await app.listen({ host: "127.0.0.1", port: 0 });
  return { url: `${address}/v1`, received, close: () => app.close() };
}

const PROSE: LoadPrompt[] = [{ kind: "completion", prompt: "Once upon a time" }];
const CHAT: LoadPrompt[] = [{ kind: "chat", messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Hi" }] }];

/** A closed-loop test, one request at a time, on the fake clock. */
async function fakeClockRun(plans: Plan[], extra: Partial<Parameters<typeof runLoadTest>[0]> = {}): Promise<{ report: LoadTestReport; stub: Stub; clock: FakeClock }> {
  const clock = new FakeClock();
  const stub = await stubServer({ clock, plan: (i) => plans[i]! });
  const report = await runLoadTest({
    baseUrl: stub.url, model: "stub", requests: plans.length, concurrency: 1, prompts: PROSE,
    metricsUrl: null, clock: clock.read, requestTimeoutMs: 10_000, ...extra,
  });
  return { report, stub, clock };
}

// ---- latency definitions -----------------------------------------------------------------------

describe("TTFT, ITL, TPOT and E2E definitions", () => {
  it("one request: TTFT = first content chunk − send, ITL = the gaps, E2E = [DONE] − send, TPOT = (E2E − TTFT)/(tokens − 1)", async () => {
    const { report, stub } = await fakeClockRun([{ ttft: 100, gaps: [10, 30, 20], done: 5 }]);
    const r = report.perRequest[0]!;
    expect(r).toMatchObject({ ok: true, ttftMs: 100, itlMs: [10, 30, 20], e2eMs: 165, outputTokens: 4, promptTokens: 7 });
    expect(r.tpotMs).toBeCloseTo((165 - 100) / 3, 12);
    expect(r.text).toBe("t0 t1 t2 t3 ");
    expect(report.durationS).toBe(0.165);
    expect(report.outputTokenThroughput).toBeCloseTo(4 / 0.165, 10);
    // The request the server got: plain OpenAI streaming with usage asked for.
    expect(stub.received[0]).toMatchObject({
      path: "/v1/completions",
      body: { model: "stub", prompt: "Once upon a time", max_tokens: 64, temperature: 0, stream: true, stream_options: { include_usage: true } },
    });
    expect(stub.received[0]!.body).not.toHaveProperty("seed");
  });

  it("output tokens come from usage when the server reports it (a chunk may carry several tokens), else from the chunk count", async () => {
    const { report } = await fakeClockRun([
      { ttft: 40, gaps: [10, 10, 10], tokensPerChunk: [1, 2, 1, 1] }, // 4 chunks, 5 tokens
      { ttft: 40, gaps: [10, 10, 10], usage: false },
    ]);
    const [withUsage, without] = report.perRequest;
    expect(withUsage).toMatchObject({ outputTokens: 5, e2eMs: 70, ttftMs: 40 });
    expect(withUsage!.tpotMs).toBe(30 / 4); // (70 − 40) / (5 − 1)
    expect(without).toMatchObject({ outputTokens: 4, promptTokens: null, e2eMs: 70 });
    expect(without!.tpotMs).toBe(10);
    expect(report.outputTokens).toBe(9);
    expect(report.promptTokens).toBe(7); // only the first reported usage
  });

  it("a one-token answer has a TTFT but no TPOT; a chat prompt goes to /chat/completions as messages", async () => {
    const { report, stub } = await fakeClockRun([{ ttft: 25 }], { prompts: CHAT });
    expect(report.perRequest[0]).toMatchObject({ ttftMs: 25, tpotMs: null, itlMs: [], outputTokens: 1, kind: "chat" });
    expect(report.tpotMs.n).toBe(0);
    expect(report.tpotMs.p50).toBeNull();
    expect(stub.received[0]).toMatchObject({ path: "/v1/chat/completions", body: { messages: CHAT[0]!.kind === "chat" ? CHAT[0]!.messages : [] } });
  });
});

// ---- percentiles, throughput, goodput, errors ----------------------------------------------------

describe("percentiles, throughput and goodput", () => {
  // Five requests, TTFT 100 … 1000 ms, 3 content chunks 10 ms apart then [DONE] 0 ms later.
  const ttfts = [300, 100, 1000, 200, 400];
  const plans: Plan[] = ttfts.map((ttft) => ({ ttft, gaps: [10, 10] }));

  it("p50/p90/p99 interpolate linearly between closest ranks (hand-worked)", async () => {
    const { report } = await fakeClockRun(plans);
    // Sorted TTFTs 100, 200, 300, 400, 1000: p50 at rank 2 → 300; p90 at 3.6 → 400 + 0.6·600 = 760;
    // p99 at 3.96 → 400 + 0.96·600 = 976; mean 400.
    expect(report.ttftMs).toEqual({ p50: 300, p90: 760, p99: 976, mean: 400, n: 5 });
    expect(report.e2eMs).toEqual({ p50: 320, p90: 780, p99: 996, mean: 420, n: 5 });
    expect(report.itlMs).toEqual({ p50: 10, p90: 10, p99: 10, mean: 10, n: 10 });
    expect(report.tpotMs).toEqual({ p50: 10, p90: 10, p99: 10, mean: 10, n: 5 }); // 20 ms / (3 − 1)
    // Closed loop, one user: the test lasts the sum of the E2Es, 2.1 s.
    expect(report.durationS).toBe(2.1);
    expect(report.requestThroughput).toBeCloseTo(5 / 2.1, 12);
    expect(report.outputTokenThroughput).toBeCloseTo(15 / 2.1, 12);
    expect(report.goodput).toBe(report.requestThroughput); // no SLO: every completed request counts
  });

  it("goodput counts only requests meeting EVERY SLO", async () => {
    const { report } = await fakeClockRun(plans.map((p, i) => (i === 1 ? { ...p, gaps: [10, 90] } : p)), { slo: parseSlo("ttft=350,tpot=25") });
    // TTFT ≤ 350: requests 0 (300), 1 (100), 3 (200); request 1's TPOT is (100/2 =) 50 > 25 → 2 good.
    expect(report.perRequest.map((r) => r.meetsSlo)).toEqual([true, false, false, true, false]);
    expect(report.goodput).toBeCloseTo(2 / report.durationS, 12);
    expect(report.slo).toEqual({ ttftMs: 350, tpotMs: 25 });
    const itl = await fakeClockRun(plans, { slo: { itlMs: 9 } });
    expect(itl.report.goodput).toBe(0);
  });

  it("a 429 is counted under errors (with the server's message) and not in throughput or goodput", async () => {
    const { report } = await fakeClockRun([{ ttft: 50 }, { status: 429 }, { ttft: 50 }, { status: 429 }, { status: 503 }]);
    expect(report).toMatchObject({ requests: 5, completed: 2, failed: 3, errors: { 429: 2, 503: 1 } });
    expect(report.errorMessages["429"]).toBe("stub says 429");
    expect(report.perRequest[1]).toMatchObject({ ok: false, error: "429", ttftMs: null, meetsSlo: false });
    expect(report.requestThroughput).toBeCloseTo(2 / report.durationS, 12);
    expect(report.goodput).toBe(report.requestThroughput);
    expect(report.ttftMs.n).toBe(2);
  });

  it("summarize is the same arithmetic on made-up outcomes (cache hit rate from usage, failed requests out)", () => {
    const o = (sentAt: number, times: number[], endAt: number, extra: Partial<RequestOutcome> = {}): RequestOutcome => ({
      kind: "completion", sentAt, ok: true, contentTimes: times, endAt, outputTokens: times.length, tokensFrom: "chunks", text: "", ...extra,
    });
    const s = summarize([
      o(0, [50, 60], 60, { promptTokens: 100, cachedTokens: 80 }),
      o(10, [30, 40, 70], 80, { promptTokens: 100, cachedTokens: 0 }),
      { ...o(20, [], 25), ok: false, error: "500", message: "boom" },
    ], 0, 100);
    expect(s.ttftMs).toMatchObject({ p50: 35, n: 2 });
    expect(s.itlMs).toMatchObject({ p50: 10, p99: 29.6, n: 3 }); // gaps 10, 10, 30: p99 at rank 1.98 → 10 + 0.98·20
    expect(s.tpotMs).toMatchObject({ p50: 17.5 }); // (60 − 50)/1 = 10 and ((80 − 10) − 20)/2 = 25
    expect(s).toMatchObject({ completed: 2, failed: 1, errors: { 500: 1 }, promptTokens: 200, cachedTokens: 80, cacheHitRate: 0.4, requestThroughput: 20 });
    expect(percentiles([])).toEqual({ p50: null, p90: null, p99: null, mean: null, n: 0 });
  });
});

// ---- arrivals ----------------------------------------------------------------------------------

/** Kolmogorov–Smirnov distance between gaps (ms) and the exponential distribution of mean 1000/rate. */
function ksExponential(gapsMs: number[], rate: number): number {
  const sorted = [...gapsMs].sort((a, b) => a - b);
  const n = sorted.length;
  let d = 0;
  sorted.forEach((x, i) => {
    const F = 1 - Math.exp(-(rate * x) / 1000);
    d = Math.max(d, Math.abs((i + 1) / n - F), Math.abs(F - i / n));
  });
  return d;
}

/** Chi-square of the counts of arrivals per 1-second window against Poisson(rate) (bins 0..8, 9+). */
function chiSquarePoissonCounts(timesMs: number[], rate: number): { chi2: number; df: number } {
  const windows = Math.floor(timesMs[timesMs.length - 1]! / 1000);
  const counts = new Array<number>(windows).fill(0);
  for (const t of timesMs) if (t < windows * 1000) counts[Math.floor(t / 1000)]!++;
  const bins = 10;
  const observed = new Array<number>(bins).fill(0);
  for (const c of counts) observed[Math.min(c, bins - 1)]!++;
  let p = Math.exp(-rate), tail = 1, chi2 = 0;
  for (let k = 0; k < bins; k++) {
    const prob = k === bins - 1 ? tail : p;
    const expected = prob * windows;
    chi2 += (observed[k]! - expected) ** 2 / expected;
    tail -= p;
    p *= rate / (k + 1);
  }
  return { chi2, df: bins - 1 };
}

describe("Poisson arrivals", () => {
  const rate = 4; // requests per second
  const times = poissonArrivalsMs(rate, 4000, 7);
  const gaps = times.map((t, i) => t - (times[i - 1] ?? 0));

  it("gaps are exponential with mean 1/rate (KS at α = 0.01), and fixed spacing at the same rate fails the same test", () => {
    const critical = 1.628 / Math.sqrt(gaps.length); // KS critical value, α = 0.01
    expect(ksExponential(gaps, rate)).toBeLessThan(critical);
    expect(gaps.reduce((a, b) => a + b, 0) / gaps.length).toBeGreaterThan(250 * 0.95);
    expect(gaps.reduce((a, b) => a + b, 0) / gaps.length).toBeLessThan(250 * 1.05);
    const fixed = gaps.map(() => 1000 / rate);
    expect(ksExponential(fixed, rate)).toBeGreaterThan(0.6); // 1 − e^−1 = 0.632
    expect(ksExponential(fixed, rate)).toBeGreaterThan(critical);
  });

  it("counts per second are Poisson(rate) (chi-square, 9 df, α = 0.001: 27.88); fixed spacing fails it", () => {
    expect(chiSquarePoissonCounts(times, rate).chi2).toBeLessThan(27.88);
    const fixed = times.map((_, i) => (i + 1) * (1000 / rate));
    expect(chiSquarePoissonCounts(fixed, rate).chi2).toBeGreaterThan(1000);
  });

  it("is seeded: the same seed gives the same times, another seed others; rate Infinity sends all at once", () => {
    expect(poissonArrivalsMs(rate, 10, 7)).toEqual(times.slice(0, 10));
    expect(poissonArrivalsMs(rate, 10, 8)).not.toEqual(times.slice(0, 10));
    expect(poissonArrivalsMs(Infinity, 3, 1)).toEqual([0, 0, 0]);
    expect(() => poissonArrivalsMs(0, 3, 1)).toThrow(RangeError);
  });

  it("the open loop sends each request at its scheduled offset without waiting for earlier answers", async () => {
    const clock = new FakeClock();
    const sleeps: number[] = [];
    const stub = await stubServer({ plan: () => ({ ttft: 0, gaps: [0] }) });
    const report = await runLoadTest({
      baseUrl: stub.url, model: "stub", rate: 2, requests: 12, prompts: PROSE, metricsUrl: null, seed: 3,
      clock: clock.read, sleep: async (ms) => { sleeps.push(ms); clock.now += ms; },
    });
    expect(report.completed).toBe(12);
    expect(report.perRequest.map((r) => r.sentMs)).toEqual(poissonArrivalsMs(2, 12, 3));
    expect(report.arrivals).toEqual({ kind: "poisson", rate: 2, maxConcurrency: null });
  });

  it("a replayed trace sends at the given offsets; bad traces are refused", async () => {
    const clock = new FakeClock();
    const stub = await stubServer({ plan: () => ({ ttft: 0 }) });
    const report = await runLoadTest({
      baseUrl: stub.url, model: "stub", arrivalsMs: [0, 0, 40, 300], prompts: PROSE, metricsUrl: null,
      clock: clock.read, sleep: async (ms) => { clock.now += ms; },
    });
    expect(report.perRequest.map((r) => r.sentMs)).toEqual([0, 0, 40, 300]);
    expect(report.arrivals).toEqual({ kind: "trace", maxConcurrency: null });
    await expect(runLoadTest({ baseUrl: stub.url, model: "stub", arrivalsMs: [10, 5] })).rejects.toThrow(/non-decreasing/);
    await expect(runLoadTest({ baseUrl: stub.url, model: "stub", arrivalsMs: [0], rate: 1 })).rejects.toThrow(/not both/);
    await expect(runLoadTest({ baseUrl: stub.url, model: "stub", arrivalsMs: [0], requests: 2 })).rejects.toThrow(/more than/);
  });

  it("real time: an open loop at 200 req/s against the stub completes every request, sends in order", async () => {
    const stub = await stubServer({ plan: () => ({ ttft: 0, gaps: [0, 0] }) });
    const report = await runLoadTest({ baseUrl: stub.url, model: "stub", rate: 200, requests: 20, prompts: PROSE, metricsUrl: null, requestTimeoutMs: 10_000 });
    expect(report.completed).toBe(20);
    const sent = report.perRequest.map((r) => r.sentMs);
    expect([...sent].sort((a, b) => a - b)).toEqual(sent);
    expect(report.ttftMs.p50).not.toBeNull();
  });

  it("closed loop with C users keeps at most C requests in flight", async () => {
    let inFlight = 0, most = 0;
    const app = Fastify();
    servers.push(app);
    app.post("/v1/completions", async (_req, reply) => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise((r) => setTimeout(r, 20));
      inFlight--;
      reply.hijack();
      reply.raw.writeHead(200, { "content-type": "text/event-stream" });
      reply.raw.end(`data: ${JSON.stringify({ choices: [{ index: 0, text: "a" }] })}\n\ndata: [DONE]\n\n`);
    });
    const url = `${await app.listen({ host: "127.0.0.1", port: 0 })}/v1`;
    const report = await runLoadTest({ baseUrl: url, model: "stub", concurrency: 3, requests: 12, prompts: PROSE, metricsUrl: null });
    expect(report.completed).toBe(12);
    expect(most).toBe(3);
    expect(report.arrivals).toEqual({ kind: "closed", concurrency: 3 });
  });
});

// ---- server metrics ----------------------------------------------------------------------------

describe("server counters from /metrics, diffed before and after", () => {
  function registryWith() {
    const registry = new Registry();
    const prompt = new Counter({ name: "lab:prompt_tokens_total", help: "Prompt tokens processed.", registers: [registry], labelNames: ["model_name"] });
    const requests = new Counter({ name: "lab:request_success_total", help: "Finished requests.", registers: [registry], labelNames: ["model_name", "finished_reason"] });
    const running = new Gauge({ name: "lab:num_requests_running", help: "Requests running.", registers: [registry] });
    const e2e = new Histogram({ name: "lab:e2e_request_latency_seconds", help: "End-to-end latency.", registers: [registry], labelNames: ["model_name"], buckets: [0.1, 1] });
    return { registry, prompt, requests, running, e2e };
  }

  it("counters and histogram counts change by exactly what the requests did; gauges give before and after", async () => {
    const m = registryWith();
    // Traffic before the test (must not be counted) and a series of another model that does not change.
    m.prompt.inc({ model_name: "stub" }, 1000);
    m.prompt.inc({ model_name: "other" }, 5);
    m.e2e.observe({ model_name: "other" }, 0.5);
    m.running.set(2);
    const stub = await stubServer({
      plan: (i) => ({ ttft: 0, gaps: [0], promptTokens: 10 + i }),
      registry: m.registry,
      onRequest: (p) => { m.prompt.inc({ model_name: "stub" }, p.promptTokens!); m.requests.inc({ model_name: "stub", finished_reason: "length" }); m.e2e.observe({ model_name: "stub" }, 0.05); },
    });
    const report = await runLoadTest({ baseUrl: stub.url, model: "stub", concurrency: 2, requests: 4, prompts: PROSE });
    m.running.set(0);
    expect(report.serverMetrics).not.toBeNull();
    const c = report.serverMetrics!.counters;
    expect(report.serverMetrics!.url).toBe(stub.url.replace(/\/v1$/, "/metrics"));
    expect(c['lab:prompt_tokens_total{model_name="stub"}']).toBe(10 + 11 + 12 + 13);
    expect(c['lab:prompt_tokens_total{model_name="stub"}']).toBe(report.promptTokens); // the server's count = the sum of per-request usage
    expect(c['lab:prompt_tokens_total{model_name="other"}']).toBe(0);
    expect(c['lab:request_success_total{finished_reason="length",model_name="stub"}']).toBe(4);
    expect(c['lab:e2e_request_latency_seconds_count{model_name="stub"}']).toBe(4);
    expect(c['lab:e2e_request_latency_seconds_sum{model_name="stub"}']).toBeCloseTo(0.2, 12);
    expect(c['lab:e2e_request_latency_seconds_count{model_name="other"}']).toBe(0);
    expect(report.serverMetrics!.gauges["lab:num_requests_running"]).toEqual({ before: 2, after: 2 });
  });

  it("the parser reads a prom-client page as parse-prometheus-text-format does (counters, gauges), and keeps labelled histograms apart where that library merges them", async () => {
    const m = registryWith();
    m.prompt.inc({ model_name: "a" }, 3);
    m.prompt.inc({ model_name: "b" }, 4);
    m.running.set(5);
    m.e2e.observe({ model_name: "a" }, 0.05);
    m.e2e.observe({ model_name: "b" }, 0.5);
    m.e2e.observe({ model_name: "b" }, 2);
    const page = await m.registry.metrics();
    const ours = parsePrometheusText(page);
    const theirs = parsePrometheusTextFormat(page) as OracleFamily[];
    for (const name of ["lab:prompt_tokens_total", "lab:num_requests_running"]) {
      const a = ours.find((f) => f.name === name)!;
      const b = theirs.find((f) => f.name === name)!;
      expect(a.type.toUpperCase()).toBe(b.type);
      expect(a.help).toBe(b.help);
      expect(a.samples.map((s) => [s.labels, s.value])).toEqual(b.metrics.map((s) => [s.labels ?? {}, Number(s.value)]));
    }
    const hist = ours.find((f) => f.name === "lab:e2e_request_latency_seconds")!;
    expect(hist.type).toBe("histogram");
    const count = (model: string) => hist.samples.find((s) => s.name.endsWith("_count") && s.labels.model_name === model)!.value;
    expect([count("a"), count("b")]).toEqual([1, 2]);
    // The library: one merged bucket set, no counts (why lab/loadtest/prometheus.ts parses itself).
    const theirHist = theirs.find((f) => f.name === "lab:e2e_request_latency_seconds")!;
    expect(theirHist.metrics).toHaveLength(1);
    expect(theirHist.metrics[0]).not.toHaveProperty("count");
  });

  it("reads the text format's corners: escapes, timestamps, +Inf, a Python client's counter named without _total", () => {
    const page = [
      "# HELP vllm:generation_tokens Number of generation tokens processed.",
      "# TYPE vllm:generation_tokens counter",
      'vllm:generation_tokens_total{model_name="m"} 20.0',
      'vllm:generation_tokens_created{model_name="m"} 1.7e9',
      "# a comment",
      "# TYPE odd gauge",
      'odd{path="C:\\\\DIR\\\\F.TXT",q="say \\"hi\\"\\n"} +Inf 1395066363000',
      "",
    ].join("\n");
    const [gen, odd] = parsePrometheusText(page);
    expect(gen).toMatchObject({ name: "vllm:generation_tokens", type: "counter", samples: [{ name: "vllm:generation_tokens_total", value: 20 }, { name: "vllm:generation_tokens_created" }] });
    expect(odd!.samples[0]).toEqual({ name: "odd", labels: { path: "C:\\DIR\\F.TXT", q: 'say "hi"\n' }, value: Infinity });
    const later = parsePrometheusText(page.replace("} 20.0", "} 26.0"));
    expect(diffMetrics([gen!], later).counters).toEqual({ 'vllm:generation_tokens_total{model_name="m"}': 6 });
    expect(() => parsePrometheusText("bad{x=1} 2")).toThrow(/line 1.*double quotes/);
    expect(() => parsePrometheusText("<html>")).toThrow(/metric name/);
  });

  it("a server without /metrics: serverMetrics is null and the note says why", async () => {
    const stub = await stubServer({ plan: () => ({ ttft: 0 }) });
    const report = await runLoadTest({ baseUrl: stub.url, model: "stub", requests: 1, prompts: PROSE });
    expect(report.serverMetrics).toBeNull();
    expect(report.serverMetricsNote).toMatch(/answered 404/);
  });
});

// ---- failures ----------------------------------------------------------------------------------

describe("failures are outcomes, never exceptions", () => {
  it("connection refused, a stream cut before [DONE], and a timeout are each counted by kind", async () => {
    const closed = await stubServer();
    const dead = closed.url;
    await closed.close();
    const refused = await runLoadTest({ baseUrl: dead, model: "m", requests: 2, prompts: PROSE, metricsUrl: null });
    expect(refused).toMatchObject({ completed: 0, errors: { connection: 2 } });
    expect(refused.errorMessages.connection).toMatch(/ECONNREFUSED/);

    const stub = await stubServer({ plan: (i) => (i === 0 ? { ttft: 0, truncate: true } : { hang: true }) });
    const r = await runLoadTest({ baseUrl: stub.url, model: "m", requests: 2, prompts: PROSE, metricsUrl: null, requestTimeoutMs: 300 });
    expect(r.errors).toEqual({ incomplete: 1, timeout: 1 });
    expect(r.errorMessages.timeout).toMatch(/300 ms/);
  });

  it("bad options are RangeErrors naming the option", async () => {
    await expect(runLoadTest({ baseUrl: "localhost:8080", model: "m" })).rejects.toThrow(/baseUrl/);
    await expect(runLoadTest({ baseUrl: "http://127.0.0.1:1/v1", model: "" })).rejects.toThrow(/model/);
    await expect(runLoadTest({ baseUrl: "http://127.0.0.1:1/v1", model: "m", rate: 0 })).rejects.toThrow(/rate/);
    await expect(runLoadTest({ baseUrl: "http://127.0.0.1:1/v1", model: "m", concurrency: 1.5 })).rejects.toThrow(/concurrency/);
    await expect(runLoadTest({ baseUrl: "http://127.0.0.1:1/v1", model: "m", prompts: [] })).rejects.toThrow(/prompts/);
    expect(() => parseSlo("ttft=500,speed=3")).toThrow(/speed/);
    expect(() => parseSlo("ttft=-1")).toThrow(/> 0/);
    expect(() => parseSlo("ttft=1,ttft=2")).toThrow(/twice/);
    expect(parseSlo("ttft=500, tpot=50ms,e2e=2e3")).toEqual({ ttftMs: 500, tpotMs: 50, e2eMs: 2000 });
  });
});

// ---- prompts -----------------------------------------------------------------------------------

describe("prompts from the kit's data", () => {
  it("chat prompts are corpus conversations cut after a user turn; prose prompts start a held-out story; seeded", () => {
    const chat = loadTestPrompts("chat", 5, 1);
    for (const p of chat) {
      expect(p.kind).toBe("chat");
      if (p.kind !== "chat") continue;
      expect(p.messages[0]!.role).toBe("system");
      expect(p.messages[0]!.content).toMatch(/^You are Tilly/);
      expect(p.messages[p.messages.length - 1]!.role).toBe("user");
      expect(renderChat(p.messages)).toMatch(/^System: You are Tilly[\s\S]*\nUser: [^\n]+\nAssistant:$/);
    }
    const prose = loadTestPrompts("prose", 5, 1);
    for (const p of prose) expect(p.kind === "completion" && /^[A-Z].*[.!?"”]$/.test(p.prompt)).toBe(true);
    expect(loadTestPrompts("chat", 5, 1)).toEqual(chat);
    expect(loadTestPrompts("chat", 5, 2)).not.toEqual(chat);
    const kinds = new Set(loadTestPrompts("mixed", 40, 1).map((p) => p.kind));
    expect([...kinds].sort()).toEqual(["chat", "completion"]);
  });

  it("parseTranscript reads the corpus format and renderChat writes it back", () => {
    const doc = "System: Be kind.\nUser: Hi\nAssistant: Hello.\nUser: What is 2 + 2?\nAssistant: 2 + 2 = 4.";
    const m = parseTranscript(doc);
    expect(m.map((x) => x.role)).toEqual(["system", "user", "assistant", "user", "assistant"]);
    expect(renderChat(m.slice(0, 4))).toBe("System: Be kind.\nUser: Hi\nAssistant: Hello.\nUser: What is 2 + 2?\nAssistant:");
    expect(() => parseTranscript("Hello")).toThrow(/System: /);
  });
});

// ---- the CLI -----------------------------------------------------------------------------------

/** Runs `lab …` in a child process (async: the stub server lives in this process's event loop). */
function labCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, "lab/cli/bin.mjs"), ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "", stderr = "";
    child.stdout.on("data", (d: Buffer) => { stdout += d; });
    child.stderr.on("data", (d: Buffer) => { stderr += d; });
    const timer = setTimeout(() => { child.kill("SIGKILL"); reject(new Error(`lab ${args.join(" ")} timed out:\n${stderr}`)); }, 150_000);
    child.on("close", (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

describe("lab loadtest", () => {
  it("--json prints one report with the documented fields; --detailed adds perRequest; no progress bar off a TTY", async () => {
    const m = new Registry();
    new Counter({ name: "lab:generation_tokens_total", help: "x", registers: [m] });
    const stub = await stubServer({ plan: (i) => (i === 2 ? { status: 429 } : { ttft: 0, gaps: [0, 0] }), registry: m });
    const r = await labCli(["loadtest", "--base-url", stub.url, "--model", "stub", "--concurrency", "2", "--requests", "6", "--prompts", "mixed",
      "--max-tokens", "3", "--slo", "ttft=5000,tpot=1000", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as LoadTestReport;
    for (const k of ["ttftMs", "tpotMs", "itlMs", "e2eMs"] as const) expect(Object.keys(doc[k])).toEqual(expect.arrayContaining(["p50", "p90", "p99"]));
    expect(doc).toMatchObject({ requests: 6, completed: 5, errors: { 429: 1 }, slo: { ttftMs: 5000, tpotMs: 1000 } });
    expect(typeof doc.requestThroughput).toBe("number");
    expect(typeof doc.outputTokenThroughput).toBe("number");
    expect(typeof doc.goodput).toBe("number");
    expect(doc).not.toHaveProperty("perRequest");
    expect(doc.serverMetrics!.counters).toHaveProperty("lab:generation_tokens_total", 0);
    expect(r.stderr).not.toMatch(/requests \|/); // the bar is off without a TTY
    expect(stub.received.every((x) => x.body.max_tokens === 3)).toBe(true);
    expect(new Set(stub.received.map((x) => x.path))).toEqual(new Set(["/v1/chat/completions", "/v1/completions"]));

    const detailed = await labCli(["loadtest", "--base-url", stub.url, "--model", "stub", "--requests", "2", "--prompts", "prose", "--no-metrics", "--detailed", "--json"]);
    expect(detailed.code, detailed.stderr).toBe(0);
    expect((JSON.parse(detailed.stdout) as LoadTestReport).perRequest).toHaveLength(2);
  }, 300_000);

  it("text output is the table; exit 1 when nothing completed; usage errors exit 2", async () => {
    const stub = await stubServer({ plan: () => ({ ttft: 0, gaps: [0] }) });
    const ok = await labCli(["loadtest", "--base-url", stub.url, "--model", "stub", "--requests", "3", "--prompts", "prose"]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stderr).toMatch(/TTFT\s+[\d.]+/);
    expect(ok.stderr).toMatch(/throughput [\d.]+ req\/s/);
    expect(ok.stdout).toBe("");
    const failing = await stubServer({ plan: () => ({ status: 500 }) });
    const bad = await labCli(["loadtest", "--base-url", failing.url, "--model", "stub", "--requests", "2", "--prompts", "prose", "--json"]);
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stdout)).toMatchObject({ completed: 0, errors: { 500: 2 } });
    // Usage errors (exit 2 in bin.mjs) are UsageErrors thrown before anything is sent: checked in process.
    for (const args of [["--model", "m"], ["--base-url", "nope", "--model", "m"], ["--base-url", stub.url, "--model", "m", "--slo", "fast"],
      ["--base-url", stub.url, "--model", "m", "--prompts", "poems"], ["--base-url", stub.url, "--model", "m", "--rate", "-1"],
      ["--base-url", stub.url, "--no-metrics", "--metrics-url", "http://x/metrics"]]) {
      await expect(loadtestCommand.run(args), args.join(" ")).rejects.toThrow(UsageError);
    }
    expect(stub.received).toHaveLength(3);
  }, 300_000);

  it("--dry-run --json shows the schedule and the first request and sends nothing", async () => {
    const stub = await stubServer();
    const r = await labCli(["loadtest", "--base-url", stub.url, "--model", "stub", "--rate", "2", "--requests", "4", "--dry-run", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const plan = JSON.parse(r.stdout) as { sendTimesMs: number[]; firstRequest: Record<string, unknown>; endpoints: string[] };
    expect(plan.sendTimesMs.map((t) => Math.round(t))).toEqual(poissonArrivalsMs(2, 4, 0).map((t) => Math.round(t)));
    expect(plan.endpoints).toEqual(["/chat/completions"]);
    expect(plan.firstRequest).toMatchObject({ model: "stub", stream: true, stream_options: { include_usage: true } });
    expect(stub.received).toHaveLength(0);
  }, 200_000);

  it("without --model it asks GET /models and uses the only model", async () => {
    const app = Fastify();
    servers.push(app);
    app.get("/v1/models", async () => ({ object: "list", data: [{ id: "only-one", object: "model" }] }));
    app.post("/v1/completions", async (request, reply) => {
      expect((request.body as { model: string }).model).toBe("only-one");
      reply.hijack();
      reply.raw.writeHead(200, { "content-type": "text/event-stream" });
      reply.raw.end(`data: ${JSON.stringify({ choices: [{ index: 0, text: "a" }] })}\n\ndata: [DONE]\n\n`);
    });
    const url = `${await app.listen({ host: "127.0.0.1", port: 0 })}/v1`;
    const r = await labCli(["loadtest", "--base-url", url, "--requests", "1", "--prompts", "prose", "--no-metrics", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ model: "only-one", completed: 1 });
  }, 200_000);
});
