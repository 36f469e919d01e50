// Engine speed and memory, LabEngine against llama.cpp on the same files, measured side by side.
//
//   npx tsx bench/engine.ts [--model PATH] [--mixes F32,Q8_0] [--threads 1] [--repeats 7]
//                           [--prompt-tokens 64] [--decode-tokens 64] [--batch 4] [--out FILE] [--all]
//
// For each mix the model is quantized with lab/quant (quantizeGgufFile) into a temp dir, both engines
// load it, and their repeats are interleaved (lab run, llama run, lab run, …) so a busy machine slows
// both alike. Prints one row per mix with the lab/llama ratios and checks the goals:
//   decode tokens/s lab ≥ 0.5 × llama for F32 and Q8_0 (1 thread each);
//   resident weight bytes lab ≤ 1.1 × the GGUF's tensor bytes, every mix.
// Writes everything to data/results/engine-bench.json (or --out). The model defaults to
// data/models/target.gguf, else a synthetic llama (lab/model/synthetic.ts, seed 1).
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { tmpdir, cpus } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { openEngine, type Engine } from "../lab/engine/engine.ts";
import { measureBatchedDecode, measureLatency, type LatencyReport } from "../lab/measure/latency.ts";
import { benchPrompt } from "../lab/cli/commands/bench.ts";
import { quantizeGgufFile } from "../lab/quant/file.ts";
import { MIXES } from "../lab/quant/mixes.ts";
import { writeSyntheticLlama } from "../lab/model/synthetic.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const { values } = parseArgs({
  options: {
    model: { type: "string" }, mixes: { type: "string" }, all: { type: "boolean" }, threads: { type: "string" },
    repeats: { type: "string" }, warmup: { type: "string" }, "prompt-tokens": { type: "string" },
    "decode-tokens": { type: "string" }, batch: { type: "string" }, out: { type: "string" },
  },
});
const threads = Number(values.threads ?? 1);
const repeats = Number(values.repeats ?? 7);
const warmup = Number(values.warmup ?? 2);
const promptTokens = Number(values["prompt-tokens"] ?? 64);
const decodeTokens = Number(values["decode-tokens"] ?? 64);
const batch = Number(values.batch ?? 4);
const mixes = values.all ? MIXES.map((m) => m.name) : (values.mixes ?? "F32,Q8_0").split(",");
const out = values.out ?? join(root, "data/results/engine-bench.json");

const work = mkdtempSync(join(tmpdir(), "bench-engine-"));
try {
  let model = values.model ?? join(root, "data/models/target.gguf");
  if (!existsSync(model)) {
    if (values.model) throw new Error(`no model at ${model}`);
    model = join(work, "synthetic.gguf");
    await writeSyntheticLlama(model, { seed: 1 });
    console.error("data/models/target.gguf not found: using the synthetic llama (seed 1)");
  }
  const rows: Record<string, unknown>[] = [];
  for (const mix of mixes) {
    const path = mix === "F32" ? model : join(work, `${mix}.gguf`);
    if (mix !== "F32") await quantizeGgufFile(model, path, mix);
    const engines: Engine[] = [];
    try {
      for (const name of ["lab", "llama"] as const) {
        engines.push(await openEngine(name, path, { threads, maxSequences: batch || 1, contextSize: promptTokens + decodeTokens + 8 }));
      }
      const prompt = benchPrompt(engines[0], promptTokens);
      const [lab, llama] = await measureLatency(engines, { prompt, decodeTokens, repeats, warmup });
      const batched = batch > 0
        ? [await measureBatchedDecode(engines[0], prompt, batch, decodeTokens), await measureBatchedDecode(engines[1], prompt, batch, decodeTokens)]
        : undefined;
      rows.push(row(mix, lab, llama, batched));
      console.error(format(rows[rows.length - 1]));
    } finally {
      for (const e of engines) await e.dispose();
    }
  }
  const goals = {
    decodeRatioAtLeastHalf: Object.fromEntries(rows.filter((r) => r.mix === "F32" || r.mix === "Q8_0").map((r) => [r.mix, (r.decodeRatio as number) >= 0.5])),
    residentWithin10Percent: Object.fromEntries(rows.map((r) => [r.mix, (r.labResidentOverTensorBytes as number) <= 1.1])),
  };
  const report = {
    model: model.startsWith(root) ? model.slice(root.length) : "synthetic llama (seed 1)",
    date: new Date().toISOString(), node: process.version, cpu: cpus()[0]?.model, cores: cpus().length,
    threads, promptTokens, decodeTokens, repeats, warmup, batch,
    note: "ratios are lab / llama, medians over interleaved repeats in one process; peak RSS is the whole process's",
    rows, goals,
  };
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, JSON.stringify(report, null, 2) + "\n");
  console.log(JSON.stringify(goals));
  console.error(`wrote ${out}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}

function row(mix: string, lab: LatencyReport, llama: LatencyReport, batched?: number[]): Record<string, unknown> {
  return {
    mix,
    bitsPerWeight: lab.bitsPerWeight,
    lab: pick(lab), llama: pick(llama),
    decodeRatio: lab.decodeTokensPerSecond / llama.decodeTokensPerSecond,
    prefillRatio: lab.prefillTokensPerSecond / llama.prefillTokensPerSecond,
    ttftRatio: lab.ttftMs / llama.ttftMs,
    ...(batched ? { batchedDecodeTokensPerSecond: { lab: batched[0], llama: batched[1] }, batchedDecodeRatio: batched[0] / batched[1] } : {}),
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
  const l = r.lab as ReturnType<typeof pick>, m = r.llama as ReturnType<typeof pick>;
  return `${String(r.mix).padEnd(7)} decode ${l.decodeTokensPerSecond.toFixed(0)} vs ${m.decodeTokensPerSecond.toFixed(0)} tok/s (×${(r.decodeRatio as number).toFixed(2)})  ` +
    `prefill ${l.prefillTokensPerSecond.toFixed(0)} vs ${m.prefillTokensPerSecond.toFixed(0)} tok/s (×${(r.prefillRatio as number).toFixed(2)})  ` +
    (r.batchedDecodeRatio !== undefined ? `batched decode ×${(r.batchedDecodeRatio as number).toFixed(2)}  ` : "") +
    `resident/tensors ${(r.labResidentOverTensorBytes as number).toFixed(3)}`;
}
