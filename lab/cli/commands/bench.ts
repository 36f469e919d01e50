// `lab bench MODEL`: latency, throughput and memory of one or both engines on the same file, the
// repeats interleaved so `--engine both` gives a fair lab/llama ratio measured side by side.
import { writeFile, mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { numberFlag, parseFlags, printJson, say, type Command } from "../command.ts";
import { openEngine, type Engine, type EngineName } from "../../engine/engine.ts";
import { measureBatchedDecode, measureLatency, type LatencyReport } from "../../measure/latency.ts";
import { formatTable } from "../../table.ts";
import { engineFlag } from "./generate.ts";

const BENCH_TEXT = "The quick brown fox jumps over the lazy dog. A small model on a small machine can still teach " +
  "a great deal about where the time goes when a language model writes text, one token after another. ";

type BenchRow = LatencyReport & { batchedDecodeTokensPerSecond?: number };

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
  --batch N            also measure batched decode tokens/s over N sequences (default 0 = skip)
  --kernels K          LabEngine kernels: simd (WebAssembly SIMD, default) | js (plain TypeScript)
  --out FILE           also write the JSON report to FILE
  --json               print the report as JSON

Example:
  lab bench data/models/target.gguf --engine both --json --out data/results/engine-bench.json`,
  async run(args) {
    const { values, positionals } = parseFlags("bench", args, {
      engine: { type: "string" }, threads: { type: "string" }, "prompt-tokens": { type: "string" },
      "decode-tokens": { type: "string" }, repeats: { type: "string" }, warmup: { type: "string" },
      batch: { type: "string" }, out: { type: "string" }, json: { type: "boolean" }, kernels: { type: "string" },
    }, { min: 1, max: 1 });
    const kernels = engineFlag("bench", values.kernels ?? "simd", ["simd", "js"]) as "simd" | "js";
    const which = engineFlag("bench", values.engine ?? "both", ["lab", "llama", "both"]);
    const threads = numberFlag("bench", "threads", values.threads, 1, { min: 1, max: 256, integer: true });
    const promptTokens = numberFlag("bench", "prompt-tokens", values["prompt-tokens"], 64, { min: 1, integer: true });
    const decodeTokens = numberFlag("bench", "decode-tokens", values["decode-tokens"], 32, { min: 1, integer: true });
    const repeats = numberFlag("bench", "repeats", values.repeats, 5, { min: 1, integer: true });
    const warmup = numberFlag("bench", "warmup", values.warmup, 1, { min: 0, integer: true });
    const batch = numberFlag("bench", "batch", values.batch, 0, { min: 0, max: 64, integer: true });
    const names: EngineName[] = which === "both" ? ["lab", "llama"] : [which as EngineName];
    const model = positionals[0];

    const engines: Engine[] = [];
    try {
      for (const name of names) {
        engines.push(await openEngine(name, model, {
          threads, maxSequences: Math.max(1, batch), contextSize: promptTokens + decodeTokens + 8, kernels,
        }));
      }
      const prompt = benchPrompt(engines[0], promptTokens);
      say(`bench ${model}: ${prompt.length} prompt tokens, ${decodeTokens} decoded, ${repeats} repeats, ${threads} thread(s)`);
      const reports = await measureLatency(engines, { prompt, decodeTokens, repeats, warmup });
      const perEngine: Record<string, BenchRow> = {};
      for (const [k, r] of reports.entries()) {
        perEngine[r.engine] = r;
        if (batch > 0) perEngine[r.engine].batchedDecodeTokensPerSecond = await measureBatchedDecode(engines[k], prompt, batch, decodeTokens);
      }
      const report: Record<string, unknown> = {
        model, threads, labKernels: kernels, promptTokens: prompt.length, decodeTokens, repeats, warmup, batch,
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
          ...(batch > 0 ? { batchedDecodeTokensPerSecond: lab.batchedDecodeTokensPerSecond! / llama.batchedDecodeTokensPerSecond! } : {}),
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
