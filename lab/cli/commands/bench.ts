// `lab bench MODEL`: latency, throughput and memory of one or both engines on the same file, the
// repeats interleaved so `--engine both` gives a fair lab/llama ratio measured side by side.
import { writeFile, mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { numberFlag, parseFlags, printJson, say, type Command } from "../command.ts";
import { openEngine, type Engine, type EngineName } from "../../engine/engine.ts";
import { measureBatchSweep, measureLatency, measurePrefillSweep, type BatchPoint, type LatencyReport } from "../../measure/latency.ts";
import { formatTable } from "../../table.ts";
import { engineFlag } from "./generate.ts";

const BENCH_TEXT = "The quick brown fox jumps over the lazy dog. A small model on a small machine can still teach " +
  "a great deal about where the time goes when a language model writes text, one token after another. ";

/** One engine's report: latency, and with --batch the batched steps (both modes, per N) and the
 *  prefill speed at each --prefill-lengths prompt length (keyed by its token count). */
type BenchRow = LatencyReport & {
  batchedDecodeTokensPerSecond?: number;
  batch?: BatchPoint[];
  prefillTokensPerSecondAt?: Record<string, number>;
};

/**
 * The human report: one row per figure, one column per engine, and lab/llama when both ran. Peak RSS
 * is printed once below the table: both engines live in this one process, so it is the process's
 * figure, shared, not a per-engine comparison (run --engine lab and --engine llama separately for that).
 */
export function benchText(perEngine: Record<string, BenchRow>): string {
  const names = Object.keys(perEngine);
  const lab = perEngine.lab, llama = perEngine.llama;
  const figures: [string, (r: BenchRow) => number | undefined][] = [
    ["prefill tok/s", (r) => r.prefillTokensPerSecond],
    ["decode tok/s", (r) => r.decodeTokensPerSecond],
    ["batched decode tok/s", (r) => r.batchedDecodeTokensPerSecond],
    ["TTFT ms", (r) => r.ttftMs],
    ["TPOT ms", (r) => r.tpotMs],
    ["weights MiB", (r) => r.weightBytes / 2 ** 20],
    ["KV KiB/token", (r) => r.kvBytesPerToken / 2 ** 10],
    ...servingFigures(Object.values(perEngine)),
  ];
  const value = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? null : x);
  const rows = figures.filter(([, get]) => names.some((n) => get(perEngine[n]!) !== undefined)).map(([figure, get]) => {
    const row: Record<string, string | number | null> = { figure };
    for (const n of names) row[n] = value(get(perEngine[n]!));
    if (lab && llama) {
      const a = get(lab), b = get(llama);
      row["lab/llama"] = a === undefined || b === undefined ? null : value(a / b);
    }
    return row;
  });
  const rss = Math.max(...names.map((n) => perEngine[n]!.peakRssBytes));
  const rssLine = names.length > 1
    ? `peak RSS ${(rss / 2 ** 20).toFixed(0)} MiB: the whole process, shared by both engines (not a comparison; bench each engine alone for its own)`
    : `peak RSS ${(rss / 2 ** 20).toFixed(0)} MiB (whole process)`;
  // Four significant digits: the repeats' spread on a shared machine is larger than that anyway.
  return formatTable(rows, { digits: 4 }) + "\n" + rssLine;
}

/** The --batch rows (one per N and mode: tokens/s, then the step time) and one per prefill length,
 *  for every N and length any engine measured. */
function servingFigures(reports: BenchRow[]): [string, (r: BenchRow) => number | undefined][] {
  const keys = new Map<string, [number, BatchPoint["mode"]]>();
  for (const r of reports) for (const p of r.batch ?? []) keys.set(`${p.n} ${p.mode}`, [p.n, p.mode]);
  const point = (r: BenchRow, n: number, mode: BatchPoint["mode"]) => r.batch?.find((p) => p.n === n && p.mode === mode);
  const rows: [string, (r: BenchRow) => number | undefined][] = [];
  for (const [n, mode] of keys.values()) rows.push([`step ×${n} ${mode} tok/s`, (r) => point(r, n, mode)?.tokensPerSecond]);
  for (const [n, mode] of keys.values()) rows.push([`step ×${n} ${mode} ms`, (r) => point(r, n, mode)?.tpotMs]);
  const lengths = new Set(reports.flatMap((r) => Object.keys(r.prefillTokensPerSecondAt ?? {})));
  for (const len of lengths) rows.push([`prefill ${len} tokens tok/s`, (r) => r.prefillTokensPerSecondAt?.[len]]);
  return rows;
}

/** "1,2,4" → [1, 2, 4]; "0" → [] (skip). Each entry an integer in [1, 64]. */
export function batchSizesFlag(command: string, flag: string, value: string | undefined, fallback: number[]): number[] {
  if (value === undefined) return fallback;
  if (value.trim() === "0") return [];
  return value.split(",").map((x) => numberFlag(command, flag, x.trim(), 0, { min: 1, max: 64, integer: true }));
}

/** A prompt of exactly n tokens (BOS + a fixed English text repeated). */
export function benchPrompt(engine: Engine, n: number): number[] {
  const ids = engine.tokenizer.encode(BENCH_TEXT.repeat(Math.ceil(n / 20) + 1), { bos: true });
  return ids.slice(0, n);
}

export const benchCommand: Command = {
  name: "bench",
  summary: "Prefill/decode speed, TTFT, TPOT and memory of the lab and/or llama.cpp engine",
  help: `Usage: lab bench MODEL [--engine lab|llama|both] [options]

Per engine: prefillTokensPerSecond, decodeTokensPerSecond, ttftMs, tpotMs (medians over the repeats,
p90 under "spread"), weightBytes (resident), kvBytesPerToken, peakRssBytes (the whole process: with --engine both the two engines share
one process, so it is one shared figure, not a comparison; bench each engine alone for its own).
With --engine both: ratio = lab / llama for each figure, measured side by side in the same run.

Options:
  --engine NAME        lab | llama | both (default both)
  --threads N          CPU threads for llama.cpp (default 1; LabEngine is single-threaded)
  --prompt-tokens N    prompt length (default 64)
  --decode-tokens N    tokens decoded after the first (default 32)
  --repeats N          measured runs per engine (default 5)
  --warmup N           unmeasured runs first (default 1)
  --batch N[,N…]       also measure batched steps: N sequences prefilled with the prompt, then
                       --decode-tokens engine.step calls of one token each, for each N (e.g. 1,2,4,8,16;
                       default 0 = skip). Per engine, batch: [{ n, mode, tokensPerSecond, tpotMs }] in
                       modes "native" (greedy sampler, output none: llama.cpp samples itself,
                       LabEngine from its row), "distributions" (a row per sequence, our Sampler)
                       and, for llama.cpp only, "loop" (node-llama-cpp's own greedy generation
                       loop: the strongest baseline; ratio.nativeOverLoop = lab native / llama loop);
                       batchedDecodeTokensPerSecond = the distributions figure at the largest N
  --prefill-lengths L  with --batch: prefill tokens/s at each prompt length, prefillTokensPerSecondAt
                       (default 64,1024)
  --kernels K          LabEngine kernels: simd (WebAssembly SIMD, default) | js (plain TypeScript)
  --out FILE           also write the JSON report to FILE
  --json               print the report as JSON

Examples:
  lab bench data/models/target.gguf --engine both --json --out data/results/engine-bench.json
  lab bench data/models/target.gguf --engine both --batch 1,2,4,8,16`,
  async run(args) {
    const { values, positionals } = parseFlags("bench", args, {
      engine: { type: "string" }, threads: { type: "string" }, "prompt-tokens": { type: "string" },
      "decode-tokens": { type: "string" }, repeats: { type: "string" }, warmup: { type: "string" },
      batch: { type: "string" }, "prefill-lengths": { type: "string" }, out: { type: "string" }, json: { type: "boolean" }, kernels: { type: "string" },
    }, { min: 1, max: 1 });
    const kernels = engineFlag("bench", values.kernels ?? "simd", ["simd", "js"]) as "simd" | "js";
    const which = engineFlag("bench", values.engine ?? "both", ["lab", "llama", "both"]);
    const threads = numberFlag("bench", "threads", values.threads, 1, { min: 1, max: 256, integer: true });
    const promptTokens = numberFlag("bench", "prompt-tokens", values["prompt-tokens"], 64, { min: 1, integer: true });
    const decodeTokens = numberFlag("bench", "decode-tokens", values["decode-tokens"], 32, { min: 1, integer: true });
    const repeats = numberFlag("bench", "repeats", values.repeats, 5, { min: 1, integer: true });
    const warmup = numberFlag("bench", "warmup", values.warmup, 1, { min: 0, integer: true });
    const batch = batchSizesFlag("bench", "batch", values.batch, []);
    const prefillLengths = batch.length > 0
      ? batchSizesFlag("bench", "prefill-lengths", values["prefill-lengths"], [64, 1024]).filter((n) => n > 0) : [];
    const names: EngineName[] = which === "both" ? ["lab", "llama"] : [which as EngineName];
    const model = positionals[0];

    const engines: Engine[] = [];
    try {
      // Room for the longest prompt plus the decoded tokens; a sequence per stream of the largest batch.
      const contextSize = Math.max(promptTokens, ...prefillLengths) + decodeTokens + 8;
      for (const name of names) {
        engines.push(await openEngine(name, model, { threads, maxSequences: Math.max(1, ...batch), contextSize, kernels }));
      }
      const prompt = benchPrompt(engines[0], promptTokens);
      say(`bench ${model}: ${prompt.length} prompt tokens, ${decodeTokens} decoded, ${repeats} repeats, ${threads} thread(s)`);
      const reports = await measureLatency(engines, { prompt, decodeTokens, repeats, warmup });
      const perEngine: Record<string, BenchRow> = {};
      for (const r of reports) perEngine[r.engine] = r;
      if (batch.length > 0) {
        const sweeps = await measureBatchSweep(engines, { prompt, sizes: batch, steps: decodeTokens, repeats, warmup });
        const prefill = await measurePrefillSweep(engines, prefillLengths.map((n) => benchPrompt(engines[0], n)), repeats, warmup);
        const largest = Math.max(...batch);
        for (const [k, r] of reports.entries()) {
          const row = perEngine[r.engine];
          row.batch = sweeps[k];
          row.batchedDecodeTokensPerSecond = sweeps[k].find((p) => p.n === largest && p.mode === "distributions")!.tokensPerSecond;
          row.prefillTokensPerSecondAt = Object.fromEntries(prefill[k].map((p) => [p.promptTokens, p.tokensPerSecond]));
        }
      }
      const report: Record<string, unknown> = {
        model, threads, labKernels: kernels, promptTokens: prompt.length, decodeTokens, repeats, warmup, batch,
        ...(batch.length > 0 ? { prefillLengths } : {}),
        node: process.version, date: new Date().toISOString(), engines: perEngine,
        ...(names.length > 1 ? { peakRssNote: "peakRssBytes is the whole process's, shared by both engines: not a comparison" } : {}),
      };
      if (perEngine.lab && perEngine.llama) {
        const lab = perEngine.lab, llama = perEngine.llama;
        report.ratio = {
          note: "lab / llama",
          prefillTokensPerSecond: lab.prefillTokensPerSecond / llama.prefillTokensPerSecond,
          decodeTokensPerSecond: lab.decodeTokensPerSecond / llama.decodeTokensPerSecond,
          ttftMs: lab.ttftMs / llama.ttftMs,
          tpotMs: lab.tpotMs / llama.tpotMs,
          weightBytes: lab.weightBytes / llama.weightBytes,
          ...(batch.length > 0 ? {
            batchedDecodeTokensPerSecond: lab.batchedDecodeTokensPerSecond! / llama.batchedDecodeTokensPerSecond!,
            batch: lab.batch!.map((p) => ({
              n: p.n, mode: p.mode, tokensPerSecond: p.tokensPerSecond / llama.batch!.find((q) => q.n === p.n && q.mode === p.mode)!.tokensPerSecond,
            })),
            nativeOverLoop: lab.batch!.filter((p) => p.mode === "native" && llama.batch!.some((q) => q.n === p.n && q.mode === "loop")).map((p) => ({
              n: p.n, tokensPerSecond: p.tokensPerSecond / llama.batch!.find((q) => q.n === p.n && q.mode === "loop")!.tokensPerSecond,
            })),
            prefillTokensPerSecondAt: Object.fromEntries(Object.entries(lab.prefillTokensPerSecondAt!).map(([n, tps]) => [n, tps / llama.prefillTokensPerSecondAt![n]])),
          } : {}),
        };
      }
      if (values.out) {
        await mkdir(dirname(values.out), { recursive: true });
        await writeFile(values.out, JSON.stringify(report, null, 2) + "\n");
      }
      if (values.json) printJson(report);
      else say(benchText(perEngine));
      return 0;
    } finally {
      for (const e of engines) await e.dispose();
    }
  },
};
