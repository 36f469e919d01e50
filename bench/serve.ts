// The serving benchmark: `lab serve` (a child process, as deployed) driven over HTTP by the kit's
// load generator (lab/loadtest's runLoadTest and sendStreaming), on the target model at Q4_K_M.
//
//   npx tsx bench/serve.ts [--quick] [--engines lab,llama] [--repeats 3] [--out FILE]
//
// 1. Batching pays: output tokens/s with 16 concurrent streams ÷ 1 stream (closed loop, every
//    request generating max_tokens: ignore_eos), per engine, beside the same ratio for the engine
//    alone (engine.step per token for 1 and for 16 sequences: the ceiling batching can give; on
//    llama.cpp also node-llama-cpp's own greedy loop, the ceiling of any code around it). Aims:
//    >= 4× on llama.cpp, >= 3× on LabEngine. /health latency (p50 / p99 / max) is sampled during the
//    16-stream run: engine work is in a worker thread, so the aim is p99 < 50 ms while saturated.
// 2. HTTP overhead: the service's 16-stream tokens/s ÷ the same Scheduler driven in this process
//    (same prompts, budget and KV settings, no HTTP, no worker, no detokenization). Aim >= 0.9.
//    Before anything is timed the service is warmed up at 4 and 16 streams, the in-process Scheduler
//    (a fresh engine each run) at 16. Service and in-process runs alternate, --repeats times;
//    medians. Also CPU per 1,000 output tokens: the service process, the load generator, in-process.
// 3. Continuous vs static batching under open-loop Poisson arrivals at equal rates (a sweep from
//    a quarter of the measured capacity to past it), output lengths drawn from 8..128 tokens:
//    p50/p90 TTFT, TPOT, request throughput and goodput under a TTFT and a TPOT objective derived
//    from the single-stream run (stated in the JSON).
// 4. Chunked prefill: 8 streams decoding while 1,000-token prompts arrive, with chunking (budget
//    128 tokens per step) and without (budget 1,024: each long prompt is one step); the running
//    streams' inter-token latency p99 and max over the gaps that overlap a long prompt's prefill,
//    and the long prompts' TTFT (what chunking costs them). Both servers stay up; rounds alternate.
// Everything is measured side by side in one run; a shared 2-core machine moves absolute numbers a
// lot, so read the ratios. Writes data/results/serving.json (or --out).
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { cpus, loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { openEngine, type EngineName } from "../lab/engine/engine.ts";
import { LlamaCppEngine } from "../lab/engine/llama-engine.ts";
import { Sampler } from "../lab/engine/sampler.ts";
import { loadTestPrompts, runLoadTest, sendStreaming, type LoadPrompt, type LoadTestReport, type RequestOutcome } from "../lab/loadtest/index.ts";
import { quantile } from "../lab/measure/stats.ts";
import { mulberry32 } from "../lab/random.ts";
import { Scheduler } from "../lab/serve/scheduler.ts";
import { quantizeLevels } from "../lab/study/quantization.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { values } = parseArgs({
  options: {
    quick: { type: "boolean" }, engines: { type: "string" }, repeats: { type: "string" }, out: { type: "string" },
    model: { type: "string" }, level: { type: "string" },
  },
});
const quick = values.quick === true;
const engines = (values.engines ?? "lab,llama").split(",") as EngineName[];
const repeats = Number(values.repeats ?? (quick ? 1 : 3));
const out = values.out ?? join(root, "data/results/serving.json");
const source = values.model ?? join(root, "data/models/target.gguf");
const level = values.level ?? "Q4_K_M";
const CONTEXT = 1024;
const MAX_RUNNING = 16;
const BUDGET = 256;
const log = (s: string) => process.stderr.write(`${s}\n`);
const median = (xs: number[]) => quantile(xs, 0.5);
const round = (x: number | null | undefined, d = 3) => (x === null || x === undefined || !Number.isFinite(x) ? null : Number(x.toFixed(d)));

// ---------------------------------------------------------------------------------------------
// A `lab serve` child process

interface Served { url: string; base: string; child: ChildProcess; stop: () => Promise<void> }

async function serve(args: string[]): Promise<Served> {
  const child = spawn(process.execPath, [join(root, "lab/cli/bin.mjs"), "serve", "--port", "0", "--json", "--status-every", "0", ...args], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "", stderr = "";
  child.stdout!.on("data", (d) => { stdout += d; });
  child.stderr!.on("data", (d) => { stderr += d; });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setInterval(() => {
      try { resolve(JSON.parse(stdout).url); clearInterval(timer); } catch { /* not yet */ }
    }, 50);
    void exited.then((code) => { clearInterval(timer); reject(new Error(`lab serve ${args.join(" ")} exited ${code}: ${stderr}`)); });
  });
  return {
    url, base: `${url}/v1`, child,
    stop: async () => { child.kill("SIGTERM"); await exited; },
  };
}

// ---------------------------------------------------------------------------------------------
// Prompts

/** Short held-out story openings (/v1/completions), the same list for every run. */
const prose = loadTestPrompts("prose", 64, 1) as Extract<LoadPrompt, { kind: "completion" }>[];

/** Poisson-run prompts: output lengths uniform in 8..128 tokens (seeded), so a static batch waits
 *  for its longest request while continuous batching refills the finished rows. */
function variedPrompts(n: number, seed: number): LoadPrompt[] {
  const r = mulberry32(seed);
  return Array.from({ length: n }, (_, i) => ({ ...prose[i % prose.length], maxTokens: 8 + Math.floor(r() * 121) }));
}

// ---------------------------------------------------------------------------------------------
// 1 + 2. Scaling, /health, HTTP overhead

async function healthDuring<T>(url: string, work: Promise<T>): Promise<{ result: T; healthMs: number[] }> {
  let done = false;
  const healthMs: number[] = [];
  const poll = (async () => {
    while (!done) {
      const t0 = performance.now();
      await fetch(`${url}/health`).then((r) => r.arrayBuffer());
      healthMs.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const result = await work;
  done = true;
  await poll;
  return { result, healthMs };
}

/** The same closed loop as the service run, on a Scheduler in this process. */
async function inProcess(engineName: EngineName, path: string, prompts: string[], maxTokens: number, concurrency: number, total: number): Promise<{ tokensPerSecond: number; cpuMsPerKiloToken: number }> {
  const engine = await openEngine(engineName, path, { contextSize: CONTEXT, maxSequences: MAX_RUNNING, threads: 1, kvBlockSize: 16 });
  try {
    // As the service configures it (llama.cpp takes greedy tokens itself).
    const scheduler = new Scheduler(engine, { maxBatchTokens: BUDGET, maxRunning: MAX_RUNNING, nativeGreedy: engineName === "llama" });
    const tokens = prompts.map((p) => engine.tokenizer.encode(p, { bos: true }));
    const closedLoop = async (label: string, tokensEach: number, requests: number) => {
      let next = 0, generated = 0;
      const submit = () => {
        const i = next++;
        scheduler.submit({ id: `${label}${i}`, prompt: tokens[i % tokens.length], maxTokens: tokensEach, sampler: new Sampler(), stopAtEos: false, onToken: () => { generated++; } });
      };
      const t0 = performance.now(), cpu0 = process.cpuUsage();
      for (let i = 0; i < Math.min(concurrency, requests); i++) submit();
      while (scheduler.pending > 0) {
        const stats = await scheduler.step();
        for (const _ of stats?.finished ?? []) if (next < requests) submit();
        scheduler.forgetFinished();
      }
      const cpu = process.cpuUsage(cpu0);
      return { tokensPerSecond: (generated * 1000) / (performance.now() - t0), cpuMsPerKiloToken: (cpu.user + cpu.system) / generated };
    };
    // Warmed up as the service is (its server answered warm-up requests before any timing): the
    // first batches on a fresh engine pay for JIT compilation and first-touch allocations.
    await closedLoop("warm", maxTokens, concurrency);
    return await closedLoop("r", maxTokens, total);
  } finally {
    await engine.dispose();
  }
}

/** The engine alone, no scheduler: one engine.step per token for n sequences (greedy, the token
 *  taken by the engine), after a short prefill. The ceiling of what batching can give on it. With
 *  `nativeLoop` (llama.cpp only) the tokens come from node-llama-cpp's own generation loop on every
 *  sequence at once (LlamaCppEngine.greedyLoop: sampling and the next evaluation never leave
 *  node-llama-cpp), the strongest llama.cpp baseline there is: it bounds what any code of ours
 *  around llama.cpp could reach. */
async function engineAlone(engineName: EngineName, path: string, n: number, steps: number, nativeLoop = false): Promise<number> {
  const engine = await openEngine(engineName, path, { contextSize: CONTEXT, maxSequences: MAX_RUNNING, threads: 1, kvBlockSize: 16 });
  try {
    const prompt = engine.tokenizer.encode(prose[0].prompt, { bos: true });
    const seqs = [];
    for (let i = 0; i < n; i++) seqs.push(await engine.createSequence());
    const greedy = new Sampler();
    let last = (await engine.step(seqs.map((sequence) => ({ sequence, tokens: prompt, output: "none" as const, sample: greedy })))).map((r) => r.token!);
    const t0 = performance.now();
    if (nativeLoop) {
      if (!(engine instanceof LlamaCppEngine)) throw new Error("the native loop is llama.cpp's");
      await engine.greedyLoop(seqs.map((sequence, i) => ({ sequence, token: last[i] })), steps);
    } else {
      for (let k = 0; k < steps; k++) {
        last = (await engine.step(seqs.map((sequence, i) => ({ sequence, tokens: [last[i]], output: "none" as const, sample: greedy })))).map((r) => r.token!);
      }
    }
    return (n * steps * 1000) / (performance.now() - t0);
  } finally {
    await engine.dispose();
  }
}

const summaryOf = (r: LoadTestReport) => ({
  requests: r.requests, completed: r.completed, failed: r.failed, durationS: round(r.durationS),
  outputTokenThroughput: round(r.outputTokenThroughput, 1), requestThroughput: round(r.requestThroughput, 2), goodput: round(r.goodput, 2),
  ttftMs: { p50: round(r.ttftMs.p50, 1), p90: round(r.ttftMs.p90, 1), p99: round(r.ttftMs.p99, 1) },
  tpotMs: { p50: round(r.tpotMs.p50, 2), p90: round(r.tpotMs.p90, 2), p99: round(r.tpotMs.p99, 2) },
  itlMs: { p50: round(r.itlMs.p50, 2), p90: round(r.itlMs.p90, 2), p99: round(r.itlMs.p99, 2) },
  errors: r.errors,
});

async function scaling(engine: EngineName, path: string) {
  const maxTokens = quick ? 32 : 64;
  const n1 = quick ? 4 : 8, n16 = quick ? 32 : 64;
  const server = await serve(["--models", `${source}:${level}`, "--engine", engine, "--context", String(CONTEXT), "--max-running", String(MAX_RUNNING), "--max-batch-tokens", String(BUDGET), "--max-queue", "256"]);
  const model = JSON.parse(await (await fetch(`${server.base}/models`)).text()).data[0].id as string;
  const run = (concurrency: number, requests: number) => runLoadTest({ baseUrl: server.base, model, concurrency, requests, prompts: prose, maxTokens, ignoreEos: true, temperature: 0 });
  try {
    await run(4, 8); // warm-up: first-use costs out of the timings, at both batch shapes
    await run(16, 16);
    const one: LoadTestReport[] = [], sixteen: LoadTestReport[] = [], local: number[] = [], alone1: number[] = [], alone16: number[] = [];
    const native1: number[] = [], native16: number[] = [];
    const serviceCpu: number[] = [], clientCpu: number[] = [], localCpu: number[] = [];
    let healthMs: number[] = [];
    for (let rep = 0; rep < repeats; rep++) {
      log(`  ${engine}: 1 stream, repeat ${rep + 1}`);
      one.push(await run(1, n1));
      log(`  ${engine}: 16 streams (with /health polled), repeat ${rep + 1}`);
      const child0 = childCpuMs(server.child), own0 = process.cpuUsage();
      const h = await healthDuring(server.url, run(16, n16));
      const child1 = childCpuMs(server.child), own = process.cpuUsage(own0), tokens = h.result.outputTokens;
      sixteen.push(h.result);
      if (child0 !== null && child1 !== null) serviceCpu.push((1000 * (child1 - child0)) / tokens);
      clientCpu.push((own.user + own.system) / tokens);
      healthMs = healthMs.concat(h.healthMs);
      log(`  ${engine}: 16 streams in process (the same Scheduler, no HTTP), repeat ${rep + 1}`);
      const inProc = await inProcess(engine, path, prose.slice(0, n16).map((p) => p.prompt), maxTokens, 16, n16);
      local.push(inProc.tokensPerSecond);
      localCpu.push(inProc.cpuMsPerKiloToken);
      log(`  ${engine}: the engine alone, 1 and 16 sequences, repeat ${rep + 1}`);
      alone1.push(await engineAlone(engine, path, 1, maxTokens * 2));
      alone16.push(await engineAlone(engine, path, 16, maxTokens));
      if (engine === "llama") {
        log(`  llama: node-llama-cpp's own greedy loop, 1 and 16 sequences, repeat ${rep + 1}`);
        native1.push(await engineAlone(engine, path, 1, maxTokens * 2, true));
        native16.push(await engineAlone(engine, path, 16, maxTokens, true));
      }
    }
    const tps1 = median(one.map((r) => r.outputTokenThroughput));
    const tps16 = median(sixteen.map((r) => r.outputTokenThroughput));
    const tpsLocal = median(local);
    const failed = [...one, ...sixteen].reduce((n, r) => n + r.failed, 0);
    return {
      engine, model, maxTokens, requests: { oneStream: n1, sixteenStreams: n16 }, repeats, failed,
      oneStream: { outputTokensPerSecond: round(tps1, 1), runs: one.map(summaryOf) },
      sixteenStreams: { outputTokensPerSecond: round(tps16, 1), runs: sixteen.map(summaryOf) },
      inProcessSixteen: { outputTokensPerSecond: round(tpsLocal, 1), runs: local.map((x) => round(x, 1)) },
      ratio16over1: round(tps16 / tps1, 2),
      engineAlone: {
        oneSequence: round(median(alone1), 1), sixteenSequences: round(median(alone16), 1), ratio16over1: round(median(alone16) / median(alone1), 2),
        note: "engine.step per token, no scheduler, no HTTP: the most batching can give on this engine and model",
      },
      ...(native1.length > 0 ? { nativeLoop: {
        oneSequence: round(median(native1), 1), sixteenSequences: round(median(native16), 1), ratio16over1: round(median(native16) / median(native1), 2),
        note: "node-llama-cpp's own greedy generation loop on every sequence at once (sequence.evaluate with temperature 0): no code of ours per token",
      } } : {}),
      httpOverheadRatio: round(tps16 / tpsLocal, 3),
      cpuMsPerThousandTokens: {
        service: round(median(serviceCpu), 1), loadGenerator: round(median(clientCpu), 1), inProcess: round(median(localCpu), 1),
        note: "CPU time (every thread) per 1,000 output tokens at 16 streams: the lab serve child process (HTTP thread, engine worker, llama.cpp's pool threads), the load generator (this process while it drives the service and polls /health), and this process running the same Scheduler in-process; 2 cores are shared by all of the first two",
      },
      healthMsWhileSaturated: { n: healthMs.length, p50: round(quantile(healthMs, 0.5), 2), p99: round(quantile(healthMs, 0.99), 2), max: round(Math.max(...healthMs), 2) },
      singleStream: { ttftMsP50: one[0].ttftMs.p50, tpotMsP50: one[0].tpotMs.p50 },
    };
  } finally {
    await server.stop();
  }
}

/** CPU milliseconds (user + system, every thread) a child process has used so far: /proc on
 *  Linux (clock ticks of 1/100 s, USER_HZ), null elsewhere. */
function childCpuMs(child: ChildProcess): number | null {
  try {
    const stat = readFileSync(`/proc/${child.pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// 3. Continuous vs static batching under Poisson load

async function staticVsContinuous(capacityRps: number, slo: { ttftMs: number; tpotMs: number }) {
  const fractions = quick ? [0.5, 1.0] : [0.25, 0.5, 0.75, 1.0, 1.25];
  const requests = quick ? 24 : 64;
  const rows: Record<string, unknown>[] = [];
  // Both servers stay up and the modes alternate at each rate, so a change in the machine's load
  // during the sweep hits both alike.
  const modes = ["continuous", "static"] as const;
  const servers = new Map<string, { server: Served; model: string }>();
  try {
    for (const mode of modes) {
      const server = await serve(["--models", `${source}:${level}`, "--engine", "lab", "--context", String(CONTEXT), "--max-running", String(MAX_RUNNING), "--max-batch-tokens", String(BUDGET), "--scheduling", mode, "--max-queue", "1024"]);
      const model = JSON.parse(await (await fetch(`${server.base}/models`)).text()).data[0].id as string;
      servers.set(mode, { server, model });
      await runLoadTest({ baseUrl: server.base, model, concurrency: 4, requests: 8, prompts: prose, maxTokens: 16, ignoreEos: true });
    }
    for (const f of fractions) {
      for (const mode of modes) {
        const { server, model } = servers.get(mode)!;
        const rate = capacityRps * f;
        log(`  ${mode}: Poisson ${rate.toFixed(1)} requests/s (${f} × capacity)`);
        const r = await runLoadTest({ baseUrl: server.base, model, rate, requests, prompts: variedPrompts(requests, 7), maxTokens: 64, ignoreEos: true, seed: 3, slo });
        rows.push({ mode, capacityFraction: f, rate: round(rate, 2), ...summaryOf(r) });
      }
    }
  } finally {
    for (const { server } of servers.values()) await server.stop();
  }
  return { requestsPerRate: requests, outputTokens: "uniform 8..128 per request (seeded), ignore_eos", slo, capacityRps: round(capacityRps, 2), rows };
}

// ---------------------------------------------------------------------------------------------
// 4. Chunked prefill and the running streams' inter-token latency

async function longPromptText(): Promise<string> {
  // The chat system prompt and held-out stories, cut to 1,000 tokens by the target's own tokenizer.
  const { loadCorpus } = await import("../lab/data/index.ts");
  const text = [loadCorpus("chat", "val")[0], ...prose.map((p) => p.prompt)].join("\n");
  const engine = await openEngine("lab", source, { contextSize: CONTEXT, maxSequences: 1 });
  try {
    const ids = engine.tokenizer.encode(text, { bos: true }).slice(0, 1000);
    return engine.tokenizer.decode(ids.slice(1));
  } finally {
    await engine.dispose();
  }
}

async function chunkedPrefill() {
  const longText = await longPromptText();
  const rounds = quick ? 1 : 2;
  const longsPerRound = 2;
  const modes = [true, false];
  const servers = new Map<boolean, { server: Served; model: string; budget: number }>();
  const clock = () => performance.now();
  const acc = new Map<boolean, { all: number[]; during: number[]; ttft: number[]; promptTokens: number | null; failed: number }>(
    modes.map((m) => [m, { all: [], during: [], ttft: [], promptTokens: null, failed: 0 }]));
  try {
    for (const chunked of modes) {
      const budget = chunked ? 128 : CONTEXT;
      const server = await serve(["--models", `${source}:${level}`, "--engine", "lab", "--context", String(CONTEXT), "--max-running", String(MAX_RUNNING),
        "--max-batch-tokens", String(budget), "--chunked-prefill", chunked ? "on" : "off", "--max-queue", "64"]);
      const model = JSON.parse(await (await fetch(`${server.base}/models`)).text()).data[0].id as string;
      servers.set(chunked, { server, model, budget });
      await sendStreaming({ kind: "completion", prompt: longText }, { baseUrl: server.base, model, maxTokens: 2, temperature: 0, clock, timeoutMs: 300_000 }); // warm-up
    }
    // Rounds alternate the two servers (a change in the machine's load hits both alike).
    for (let round = 0; round < rounds; round++) {
      for (const chunked of modes) {
        const { server, model } = servers.get(chunked)!;
        const opts = (maxTokens: number) => ({ baseUrl: server.base, model, maxTokens, temperature: 0, ignoreEos: true, clock, timeoutMs: 300_000 });
        log(`  chunked prefill ${chunked ? "on (128-token budget)" : "off (1,024-token budget)"}, round ${round + 1}: 8 streams + ${longsPerRound} long prompts`);
        const background = Array.from({ length: 8 }, (_, i) => sendStreaming(prose[i], opts(quick ? 160 : 240)));
        await new Promise((r) => setTimeout(r, 300));
        const long: RequestOutcome[] = [];
        for (let i = 0; i < longsPerRound; i++) {
          long.push(await sendStreaming({ kind: "completion", prompt: longText }, opts(4)));
          await new Promise((r) => setTimeout(r, 150));
        }
        const bg = await Promise.all(background);
        const a = acc.get(chunked)!;
        const windows = long.map((l) => [l.sentAt, l.contentTimes[0] ?? l.endAt ?? l.sentAt] as const);
        for (const b of bg) {
          for (let j = 1; j < b.contentTimes.length; j++) {
            const [t0, t1] = [b.contentTimes[j - 1], b.contentTimes[j]];
            a.all.push(t1 - t0);
            if (windows.some(([w0, w1]) => t1 > w0 && t0 < w1)) a.during.push(t1 - t0);
          }
        }
        a.ttft.push(...long.map((l) => (l.contentTimes[0] ?? NaN) - l.sentAt));
        a.promptTokens = long[0].promptTokens ?? a.promptTokens;
        a.failed += bg.filter((b) => !b.ok).length + long.filter((l) => !l.ok).length;
      }
    }
  } finally {
    for (const { server } of servers.values()) await server.stop();
  }
  const pct = (xs: number[]) => ({ n: xs.length, p50: round(quantile(xs, 0.5), 2), p99: round(quantile(xs, 0.99), 2), max: round(Math.max(...xs), 2) });
  const runs = modes.map((chunked) => {
    const a = acc.get(chunked)!;
    return {
      chunkedPrefill: chunked, maxBatchTokens: servers.get(chunked)!.budget, longPromptTokens: a.promptTokens,
      backgroundStreams: 8 * rounds, longPrompts: longsPerRound * rounds, failed: a.failed,
      itlMsAll: pct(a.all), itlMsDuringLongPrefill: pct(a.during), longPromptTtftMs: a.ttft.map((x) => round(x, 1)),
    };
  });
  return { runs, p99ItlDuringPrefillOffOverOn: round((runs[1].itlMsDuringLongPrefill.p99 ?? NaN) / (runs[0].itlMsDuringLongPrefill.p99 ?? NaN), 2) };
}

// ---------------------------------------------------------------------------------------------
// The run

const t0 = performance.now();
const loadStart = loadavg();
log(`quantizing ${source} to ${level} (cached in data/cache/quantization)…`);
const [file] = await quantizeLevels(source, [level]);
log("1–2. scaling, /health, HTTP overhead");
const scalingRows = [];
for (const engine of engines) scalingRows.push(await scaling(engine, file.path));
const lab = scalingRows.find((r) => r.engine === "lab") ?? scalingRows[0];
// Capacity: the 16-stream output rate over the mean output length of the Poisson runs (68 tokens).
const capacityRps = (lab.sixteenStreams.outputTokensPerSecond ?? 0) / 68;
const slo = {
  ttftMs: Math.max(50, Math.round(10 * (lab.singleStream.ttftMsP50 ?? 10))),
  tpotMs: Math.max(5, Math.round(4 * (lab.singleStream.tpotMsP50 ?? 5) * 10) / 10),
};
log("3. continuous vs static batching under Poisson load");
const batching = await staticVsContinuous(capacityRps, slo);
log("4. chunked prefill");
const chunked = await chunkedPrefill();

const aims = [
  ...scalingRows.map((r) => {
    const bound = r.engine === "llama" ? 4 : 3;
    return { aim: `${r.engine} ${level}: output tokens/s at 16 streams ÷ 1 stream >= ${bound}`, value: r.ratio16over1, met: (r.ratio16over1 ?? 0) >= bound };
  }),
  ...scalingRows.map((r) => ({ aim: `${r.engine}: service tokens/s ÷ in-process scheduler at 16 streams >= 0.9`, value: r.httpOverheadRatio, met: (r.httpOverheadRatio ?? 0) >= 0.9 })),
  ...scalingRows.map((r) => ({ aim: `${r.engine}: /health p99 < 50 ms while saturated`, value: r.healthMsWhileSaturated.p99, met: (r.healthMsWhileSaturated.p99 ?? Infinity) < 50 })),
  { aim: "chunked prefill lowers the running streams' p99 ITL while a 1,000-token prompt arrives", value: chunked.p99ItlDuringPrefillOffOverOn, met: (chunked.p99ItlDuringPrefillOffOverOn ?? 0) > 1 },
];
const report = {
  model: source, level, quick, engines, context: CONTEXT, maxRunning: MAX_RUNNING, maxBatchTokens: BUDGET,
  node: process.version, date: new Date().toISOString(), seconds: round((performance.now() - t0) / 1000, 1),
  machine: { cpus: cpus().length, loadavgAtStart: loadStart.map((x) => round(x, 2)), loadavgAtEnd: loadavg().map((x) => round(x, 2)),
    note: "a shared machine: read the ratios measured side by side in one run, not absolute times" },
  client: "lab/loadtest (runLoadTest, sendStreaming) in the benchmark's process; lab serve in a child process (its engine in a worker thread)",
  aims, scaling: scalingRows, batching, chunkedPrefill: chunked,
};
await mkdir(dirname(out), { recursive: true });
await writeFile(out, JSON.stringify(report, null, 2) + "\n");
for (const a of aims) log(`${a.met ? "met    " : "NOT met"}  ${a.aim}: ${a.value}`);
log(`wrote ${out} in ${report.seconds} s`);
