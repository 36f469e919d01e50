// Engine speed and memory, LabEngine against llama.cpp on the same files, measured side by side.
//
//   npx tsx bench/engine.ts [--model PATH] [--mixes F32,Q8_0] [--threads 1] [--repeats 7]
//                           [--prompt-tokens 64] [--decode-tokens 64] [--batch 1,2,4,8,16]
//                           [--prefill-lengths 64,1024] [--out FILE] [--all]
//
// For each mix the model is quantized with lab/quant (quantizeGgufFile) into a temp dir, both engines
// load it, and their repeats are interleaved (lab run, llama run, lab run, …) so a busy machine slows
// both alike. Per engine: single-stream latency, batched steps over N sequences for each --batch size
// (one token per sequence per engine.step; "native" = greedy sampler with output "none", which
// llama.cpp samples itself, and "distributions" = a row per sequence and our Sampler), and prefill
// tokens/s at each --prefill-lengths. Prints one row per mix with the lab/llama ratios and checks the goals:
//   decode tokens/s lab ≥ 0.5 × llama for F32 and Q8_0 (1 thread each);
//   resident weight bytes lab ≤ 1.1 × the GGUF's tensor bytes, every mix;
//   LabEngine: a native step over 16 sequences ≥ 0.8 × its 64-token prefill tokens/s (F32, Q8_0, Q4_K_M),
//   and a 1,024-token prefill ≥ 0.5 × the 64-token rate (every mix).
// Writes everything to data/results/engine-bench.json (or --out). The model defaults to
// data/models/target.gguf, else a synthetic llama (lab/model/synthetic.ts, seed 1).
//
//   npx tsx bench/engine.ts --agreement [--all | --mixes …]
// compares LabEngine (F32 activations, and activations "llama") with llama.cpp on each mix of the same
// file: top-1 agreement, KL(llama ‖ lab), max |Δ log p|; writes data/results/engine-agreement.json.
//
//   npx tsx bench/engine.ts --quality [--all | --mixes …] [--quality-engine llama|lab] [--texts 32] [--items 50]
// instead measures what each mix costs in quality on data/eval/: perplexity, KL(F32 ‖ mix) per position
// (mean, median, p99, max), same-top-1 rate, exact-match accuracy per task; writes
// data/results/engine-quality.json.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { tmpdir, cpus } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { openEngine, type Engine } from "../lab/engine/engine.ts";
import { measureBatchSweep, measureLatency, measurePrefillSweep, type BatchPoint, type LatencyReport } from "../lab/measure/latency.ts";
import { benchPrompt } from "../lab/cli/commands/bench.ts";
import { quantizeGgufFile } from "../lab/quant/file.ts";
import { MIXES } from "../lab/quant/mixes.ts";
import { writeSyntheticLlama } from "../lab/model/synthetic.ts";
import { compareDistributions, nextTokenDistributions, taskAccuracy, tokensForScoring } from "../lab/measure/quality.ts";
import { loadProse, loadTaskSets } from "../lab/measure/evalsets.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const { values } = parseArgs({
  options: {
    model: { type: "string" }, mixes: { type: "string" }, all: { type: "boolean" }, threads: { type: "string" },
    repeats: { type: "string" }, warmup: { type: "string" }, "prompt-tokens": { type: "string" },
    "decode-tokens": { type: "string" }, batch: { type: "string" }, "prefill-lengths": { type: "string" }, out: { type: "string" },
    quality: { type: "boolean" }, agreement: { type: "boolean" }, "quality-engine": { type: "string" }, texts: { type: "string" }, items: { type: "string" },
  },
});
const threads = Number(values.threads ?? 1);
const repeats = Number(values.repeats ?? 7);
const warmup = Number(values.warmup ?? 2);
const promptTokens = Number(values["prompt-tokens"] ?? 64);
const decodeTokens = Number(values["decode-tokens"] ?? 64);
const batchSizes = listFlag("batch", values.batch ?? "1,2,4,8,16");
const prefillLengths = listFlag("prefill-lengths", values["prefill-lengths"] ?? "64,1024");
const mixes = values.all ? MIXES.map((m) => m.name) : (values.mixes ?? "F32,Q8_0").split(",");
const out = values.out ?? join(root, values.quality ? "data/results/engine-quality.json"
  : values.agreement ? "data/results/engine-agreement.json" : "data/results/engine-bench.json");

const work = mkdtempSync(join(tmpdir(), "bench-engine-"));
try {
  let model = values.model ?? join(root, "data/models/target.gguf");
  if (!existsSync(model)) {
    if (values.model) throw new Error(`no model at ${model}`);
    model = join(work, "synthetic.gguf");
    await writeSyntheticLlama(model, { seed: 1 });
    console.error("data/models/target.gguf not found: using the synthetic llama (seed 1)");
  }
  if (values.quality) await measureQuality(model, work);
  else if (values.agreement) await measureAgreement(model, work);
  else await measureSpeed(model, work);
} finally {
  rmSync(work, { recursive: true, force: true });
}

/** Speed and memory for each mix, both engines side by side. */
async function measureSpeed(model: string, work: string): Promise<void> {
  const rows: Record<string, unknown>[] = [];
  for (const mix of mixes) {
    const path = mix === "F32" ? model : join(work, `${mix}.gguf`);
    if (mix !== "F32") await quantizeGgufFile(model, path, mix);
    const engines: Engine[] = [];
    try {
      // Room for the longest prefill plus the decoded tokens, and a sequence for each stream of the largest batch.
      const contextSize = Math.max(promptTokens, ...prefillLengths) + decodeTokens + 8;
      const maxSequences = Math.max(1, ...batchSizes);
      for (const name of ["lab", "llama"] as const) engines.push(await openEngine(name, path, { threads, maxSequences, contextSize }));
      const prompt = benchPrompt(engines[0], promptTokens);
      const [lab, llama] = await measureLatency(engines, { prompt, decodeTokens, repeats, warmup });
      const batch = batchSizes.length > 0 ? await measureBatchSweep(engines, { prompt, sizes: batchSizes, steps: decodeTokens, repeats, warmup }) : [[], []];
      const prefill = prefillLengths.length > 0
        ? await measurePrefillSweep(engines, prefillLengths.map((n) => benchPrompt(engines[0], n)), repeats, warmup) : [[], []];
      rows.push(row(mix, lab, llama, {
        lab: batch[0], llama: batch[1],
        labPrefill: Object.fromEntries(prefill[0].map((p) => [p.promptTokens, p.tokensPerSecond])),
        llamaPrefill: Object.fromEntries(prefill[1].map((p) => [p.promptTokens, p.tokensPerSecond])),
      }));
      // Peak RSS is per process: measure each engine alone in a child process as well.
      const isolated = rows[rows.length - 1] as { lab: Record<string, unknown>; llama: Record<string, unknown> };
      for (const name of ["lab", "llama"] as const) isolated[name].peakRssBytesAlone = await peakRssAlone(name, path);
      console.error(format(rows[rows.length - 1]));
    } finally {
      for (const e of engines) await e.dispose();
    }
  }
  const labServing = (r: Record<string, unknown>) => r.labServing as { batch16OverPrefill64?: number; prefill1024OverPrefill64?: number };
  const goals = {
    decodeRatioAtLeastHalf: Object.fromEntries(rows.filter((r) => r.mix === "F32" || r.mix === "Q8_0").map((r) => [r.mix, (r.decodeRatio as number) >= 0.5])),
    residentWithin10Percent: Object.fromEntries(rows.map((r) => [r.mix, (r.labResidentOverTensorBytes as number) <= 1.1])),
    labBatch16AtLeast0p8OfPrefill64: Object.fromEntries(rows.filter((r) => ["F32", "Q8_0", "Q4_K_M"].includes(r.mix as string) && labServing(r).batch16OverPrefill64 !== undefined)
      .map((r) => [r.mix, labServing(r).batch16OverPrefill64! >= 0.8])),
    labPrefill1024AtLeastHalfOfPrefill64: Object.fromEntries(rows.filter((r) => labServing(r).prefill1024OverPrefill64 !== undefined)
      .map((r) => [r.mix, labServing(r).prefill1024OverPrefill64! >= 0.5])),
  };
  const report = {
    model: model.startsWith(root) ? model.slice(root.length) : "synthetic llama (seed 1)",
    date: new Date().toISOString(), node: process.version, cpu: cpus()[0]?.model, cores: cpus().length,
    threads, promptTokens, decodeTokens, repeats, warmup, batch: batchSizes, prefillLengths,
    note: "ratios are lab / llama, medians over interleaved repeats in one process; peakRssBytes is that shared process's, peakRssBytesAlone a fresh process per engine; " +
      "batch: N sequences prefilled with the prompt, then decodeTokens engine.step calls of one token each; native = greedy sampler with output none (llama.cpp samples itself, " +
      "LabEngine samples from its row), distributions = output last and our Sampler (llama.cpp builds a probability Map per token), loop = node-llama-cpp's own greedy " +
      "generation loop (llama.cpp only: sequence.evaluate with temperature 0, the strongest baseline); batchRatio is lab / llama per mode; labNativeOverLlamaLoop is lab native / llama loop; " +
      "prefillTokensPerSecondAt: a fresh sequence evaluates a prompt of that many tokens",
    rows, goals,
  };
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, JSON.stringify(report, null, 2) + "\n");
  console.log(JSON.stringify(goals));
  console.error(`wrote ${out}`);
}

/** LabEngine (both activation modes) against llama.cpp on the same file, per mix. */
async function measureAgreement(model: string, dir: string): Promise<void> {
  const texts = await loadProse(undefined, Number(values.texts ?? 3));
  const rows: Record<string, unknown>[] = [];
  for (const mix of mixes) {
    const path = mix === "F32" ? model : join(dir, `${mix}.gguf`);
    if (mix !== "F32") await quantizeGgufFile(model, path, mix);
    const opts = { threads, maxSequences: 1, contextSize: 512 };
    const engines = [
      await openEngine("lab", path, opts), await openEngine("lab", path, { ...opts, activations: "llama" }), await openEngine("llama", path, opts),
    ];
    try {
      const dists: Float32Array[][] = [[], [], []];
      for (const text of texts) {
        const ids = tokensForScoring(engines[0], text);
        for (const [k, e] of engines.entries()) dists[k].push(...(await nextTokenDistributions(e, ids)));
      }
      const summarize = (r: ReturnType<typeof compareDistributions>) => ({ top1: r.top1, kl: r.kl, maxAbsLogProbDiff: r.maxAbsLogProbDiff });
      const f32 = compareDistributions(dists[0], dists[2]);
      const mimic = compareDistributions(dists[1], dists[2]);
      rows.push({ mix, positions: f32.positions, labF32Activations: summarize(f32), labLlamaActivations: summarize(mimic) });
      console.error(`${mix.padEnd(7)} F32 activations: top-1 ${(100 * f32.top1).toFixed(1)}% KL ${f32.kl.mean.toExponential(2)}  ` +
        `llama-style: top-1 ${(100 * mimic.top1).toFixed(1)}% KL ${mimic.kl.mean.toExponential(2)}`);
    } finally {
      for (const e of engines) await e.dispose();
    }
  }
  const report = {
    model: model.startsWith(root) ? model.slice(root.length) : "synthetic llama (seed 1)", date: new Date().toISOString(), texts: texts.length,
    note: "KL(llama.cpp ‖ LabEngine) per position on the same file; labLlamaActivations rounds matmul inputs like ggml-cpu",
    rows,
  };
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, JSON.stringify(report, null, 2) + "\n");
  console.error(`wrote ${out}`);
}

/** Perplexity, KL against F32, top-1 agreement and task accuracy for each mix, on one engine. */
async function measureQuality(model: string, dir: string): Promise<void> {
  const engineName = values["quality-engine"] ?? "llama";
  const texts = await loadProse(undefined, Number(values.texts ?? 32));
  const taskSets = await loadTaskSets(undefined, Number(values.items ?? 50));
  const open = (path: string) => openEngine(engineName, path, { threads, maxSequences: 1, contextSize: 512 });
  // The reference distributions: the F32 model on every text, computed once.
  const reference = await open(model);
  const refRows: Float32Array[][] = [];
  try {
    for (const text of texts) refRows.push(await nextTokenDistributions(reference, tokensForScoring(reference, text)));
  } finally {
    await reference.dispose();
  }
  const rows: Record<string, unknown>[] = [];
  for (const mix of ["F32", ...mixes.filter((m) => m !== "F32")]) {
    const path = mix === "F32" ? model : join(dir, `${mix}.gguf`);
    if (mix !== "F32") await quantizeGgufFile(model, path, mix);
    const t0 = performance.now();
    const engine = await open(path);
    try {
      const mine: Float32Array[] = [];
      let nll = 0;
      let count = 0;
      for (const [i, text] of texts.entries()) {
        const ids = tokensForScoring(engine, text);
        const dist = await nextTokenDistributions(engine, ids);
        for (let p = 0; p < dist.length; p++) nll -= dist[p][ids[p + 1]];
        count += dist.length;
        mine.push(...dist);
        if (dist.length !== refRows[i].length) throw new Error(`${mix}: tokenization differs from the reference`);
      }
      const cmp = compareDistributions(mine, refRows.flat());
      const tasks: Record<string, number> = {};
      for (const [name, items] of taskSets) tasks[name] = (await taskAccuracy(engine, items)).accuracy;
      const mem = engine.memory();
      rows.push({
        mix, bitsPerWeight: mem.bitsPerWeight, fileBytes: mem.fileBytes, tensorBytes: mem.tensorBytes,
        perplexity: Math.exp(nll / count), kl: cmp.kl, top1: cmp.top1, tasks, seconds: (performance.now() - t0) / 1000,
      });
      console.error(`${mix.padEnd(7)} ${mem.bitsPerWeight.toFixed(2)} bpw  ppl ${Math.exp(nll / count).toFixed(3)}  KL mean ${cmp.kl.mean.toExponential(2)} ` +
        `p99 ${cmp.kl.p99.toExponential(2)}  top-1 ${(100 * cmp.top1).toFixed(1)}%  ` +
        Object.entries(tasks).map(([k, v]) => `${k} ${(100 * v).toFixed(0)}%`).join(" "));
    } finally {
      await engine.dispose();
    }
  }
  const report = {
    model: model.startsWith(root) ? model.slice(root.length) : "synthetic llama (seed 1)",
    engine: engineName, date: new Date().toISOString(), texts: texts.length,
    items: Object.fromEntries([...taskSets].map(([k, v]) => [k, v.length])),
    note: "KL(F32 ‖ mix) per position over the prose texts, nats; tasks = greedy exact match (lab/data rule)",
    rows,
  };
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, JSON.stringify(report, null, 2) + "\n");
  console.error(`wrote ${out}`);
}

/** Peak RSS of a fresh process that loads the model with one engine and runs one short bench. */
async function peakRssAlone(engine: "lab" | "llama", path: string): Promise<number> {
  const { execFileSync } = await import("node:child_process");
  const stdout = execFileSync(process.execPath, [join(root, "lab/cli/bin.mjs"), "bench", path, "--engine", engine, "--json",
    "--repeats", "1", "--warmup", "0", "--threads", String(threads), "--prompt-tokens", String(promptTokens),
    "--decode-tokens", String(decodeTokens)], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  return JSON.parse(stdout).engines[engine].peakRssBytes;
}

interface Serving {
  lab: BatchPoint[];
  llama: BatchPoint[];
  labPrefill: Record<string, number>;
  llamaPrefill: Record<string, number>;
}

function row(mix: string, lab: LatencyReport, llama: LatencyReport, serving: Serving): Record<string, unknown> {
  const at = (points: BatchPoint[], n: number, mode: BatchPoint["mode"]) => points.find((p) => p.n === n && p.mode === mode)?.tokensPerSecond;
  // Today's batched-decode figure (N = 4, a row per sequence per step) is the distributions point at N = 4.
  const batched4 = [at(serving.lab, 4, "distributions"), at(serving.llama, 4, "distributions")];
  const labNative16 = at(serving.lab, 16, "native");
  return {
    mix,
    bitsPerWeight: lab.bitsPerWeight,
    lab: { ...pick(lab), batch: serving.lab, prefillTokensPerSecondAt: serving.labPrefill },
    llama: { ...pick(llama), batch: serving.llama, prefillTokensPerSecondAt: serving.llamaPrefill },
    decodeRatio: lab.decodeTokensPerSecond / llama.decodeTokensPerSecond,
    prefillRatio: lab.prefillTokensPerSecond / llama.prefillTokensPerSecond,
    ttftRatio: lab.ttftMs / llama.ttftMs,
    batchRatio: serving.lab.map((p) => ({ n: p.n, mode: p.mode, tokensPerSecond: p.tokensPerSecond / at(serving.llama, p.n, p.mode)! })),
    // The honest decode comparison: LabEngine's native step against node-llama-cpp's own loop.
    labNativeOverLlamaLoop: serving.lab.filter((p) => p.mode === "native" && at(serving.llama, p.n, "loop") !== undefined)
      .map((p) => ({ n: p.n, tokensPerSecond: p.tokensPerSecond / at(serving.llama, p.n, "loop")! })),
    prefillRatioAt: Object.fromEntries(Object.entries(serving.labPrefill).map(([n, tps]) => [n, tps / serving.llamaPrefill[n]])),
    labServing: {
      ...(labNative16 !== undefined && serving.labPrefill["64"] !== undefined ? { batch16OverPrefill64: labNative16 / serving.labPrefill["64"] } : {}),
      ...(serving.labPrefill["1024"] !== undefined && serving.labPrefill["64"] !== undefined
        ? { prefill1024OverPrefill64: serving.labPrefill["1024"] / serving.labPrefill["64"] } : {}),
    },
    ...(batched4[0] !== undefined && batched4[1] !== undefined
      ? { batchedDecodeTokensPerSecond: { lab: batched4[0], llama: batched4[1] }, batchedDecodeRatio: batched4[0] / batched4[1] } : {}),
    labResidentOverTensorBytes: lab.weightBytes / lab.tensorBytes,
  };
}

function pick(r: LatencyReport) {
  return {
    prefillTokensPerSecond: r.prefillTokensPerSecond, decodeTokensPerSecond: r.decodeTokensPerSecond,
    ttftMs: r.ttftMs, tpotMs: r.tpotMs, spread: r.spread, weightBytes: r.weightBytes, tensorBytes: r.tensorBytes,
    fileBytes: r.fileBytes, kvBytesPerToken: r.kvBytesPerToken, kvBytesPerTokenFormula: r.kvBytesPerTokenFormula, peakRssBytes: r.peakRssBytes,
  };
}

function format(r: Record<string, unknown>): string {
  type Side = ReturnType<typeof pick> & { batch: BatchPoint[]; prefillTokensPerSecondAt: Record<string, number> };
  const l = r.lab as Side, m = r.llama as Side;
  const largest = l.batch.length > 0 ? Math.max(...l.batch.map((p) => p.n)) : undefined;
  const step = (side: Side, mode: BatchPoint["mode"]) => side.batch.find((p) => p.n === largest && p.mode === mode)?.tokensPerSecond.toFixed(0) ?? "?";
  const longest = Object.keys(l.prefillTokensPerSecondAt).map(Number).sort((a, b) => b - a)[0];
  return `${String(r.mix).padEnd(7)} decode ${l.decodeTokensPerSecond.toFixed(0)} vs ${m.decodeTokensPerSecond.toFixed(0)} tok/s (×${(r.decodeRatio as number).toFixed(2)})  ` +
    `prefill ${l.prefillTokensPerSecond.toFixed(0)} vs ${m.prefillTokensPerSecond.toFixed(0)} tok/s (×${(r.prefillRatio as number).toFixed(2)})  ` +
    (largest !== undefined ? `step ×${largest} native ${step(l, "native")} vs ${step(m, "native")}, distributions ${step(l, "distributions")} vs ${step(m, "distributions")} tok/s  ` : "") +
    (longest !== undefined ? `prefill ${longest} ${l.prefillTokensPerSecondAt[longest].toFixed(0)} vs ${m.prefillTokensPerSecondAt[longest].toFixed(0)} tok/s  ` : "") +
    `resident/tensors ${(r.labResidentOverTensorBytes as number).toFixed(3)}  ` +
    `peak RSS alone ${mib((l as Record<string, unknown>).peakRssBytesAlone)} vs ${mib((m as Record<string, unknown>).peakRssBytesAlone)} MiB`;
}

/** "1,2,4" → [1, 2, 4]; "" or "0" → [] (skip); anything else that is not a positive integer list is an error. */
function listFlag(name: string, text: string): number[] {
  if (text.trim() === "" || text.trim() === "0") return [];
  const list = text.split(",").map((x) => Number(x.trim()));
  if (list.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`--${name} must be a comma-separated list of positive integers, got "${text}"`);
  return list;
}

function mib(bytes: unknown): string {
  return typeof bytes === "number" ? (bytes / 2 ** 20).toFixed(0) : "?";
}
