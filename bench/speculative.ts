// Speculative decoding on the embedded target/draft pair: a grid of engine × target level × k ×
// drafter, greedy, each cell plain and speculative decoding interleaved on the same engine and level
// (lab/speculative/measure.ts compareWithPlain), plus temperature 0.7 for the best draft-model cell.
//
//   npx tsx bench/speculative.ts [--engines lab,llama] [--levels F32,Q8_0,Q4_K_M] [--ks 1,2,4,8]
//                                [--tokens 48] [--repeats 1] [--out data/results/speculative.json]
//
// Workloads: "tasks" = one validation document per task (prose, arithmetic, code, chat), 64 tokens
// each; "repeat" = the repetitive workload of lab/speculative/measure.ts (a chat transcript, then
// the start of the next one, whose system prompt repeats the first's: 3 prompts of 73 tokens). The
// target is quantized with lab/quant into data/cache/quantization/ (as notebook 01 does); the draft
// stays F32. Per cell: tokens/s both ways, speedup, identical (greedy), acceptance (rate, mean
// accepted length, per position), c and v(k) measured, α fitted to the mean accepted length and the
// predicted speedup E(α,k)/(k·c + v(k)), beside the measured speedup end to end (`speedup`) and of
// decoding only (`decode.speedup`: the prompt's prefill, the same work either way, left out of both). Timings depend on the machine and its load: the JSON says
// which machine, and how loaded it was (os.loadavg) when the run started and ended.
import { mkdir, writeFile } from "node:fs/promises";
import { cpus, loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { openEngine, type Engine, type EngineName } from "../lab/engine/engine.ts";
import { quantizeLevels } from "../lab/study/quantization.ts";
import { ModelDrafter, PromptLookupDrafter, type Drafter } from "../lab/speculative/index.ts";
import { compareWithPlain, speculativePrompts, type Comparison } from "../lab/speculative/measure.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const { values } = parseArgs({
  options: {
    engines: { type: "string", default: "lab,llama" }, levels: { type: "string", default: "F32,Q8_0,Q4_K_M" },
    ks: { type: "string", default: "1,2,4,8" }, tokens: { type: "string", default: "48" },
    repeats: { type: "string", default: "1" }, out: { type: "string", default: join(ROOT, "data", "results", "speculative.json") },
  },
});
const engines = values.engines!.split(",") as EngineName[];
const levels = values.levels!.split(",");
const ks = values.ks!.split(",").map(Number);
const maxTokens = Number(values.tokens);
const repeats = Number(values.repeats);

type Workload = "tasks" | "repeat";
interface Cell extends Comparison { engine: EngineName; level: string; drafterKind: "draft" | "ngram"; workload: Workload }
const workloadPrompts = (target: Engine, w: Workload) => w === "repeat"
  ? speculativePrompts(target, "repeat", { count: 3 })
  : (["prose", "arith", "code", "chat"] as const).map((set) => speculativePrompts(target, set, { count: 1 })[0]);

const loadStart = loadavg();
const t0 = performance.now();
const files = await quantizeLevels(join(ROOT, "data", "models", "target.gguf"), levels);
const cells: Cell[] = [];
for (const engineName of engines) {
  const draftEngine = await openEngine(engineName, join(ROOT, "data", "models", "draft.gguf"), { maxSequences: 2, contextSize: 512 });
  for (const file of files) {
    const target: Engine = await openEngine(engineName, file.path, { maxSequences: 2, contextSize: 512 });
    for (const workload of ["tasks", "repeat"] as const) {
    const prompts = workloadPrompts(target, workload);
    for (const kind of ["draft", "ngram"] as const) {
      for (const k of ks) {
        const drafter: Drafter = kind === "draft" ? new ModelDrafter(draftEngine) : new PromptLookupDrafter(target.tokenizer.vocabSize);
        const r = await compareWithPlain(target, drafter, prompts, { k, maxTokens, repeats, draftEngine: kind === "draft" ? draftEngine : undefined });
        await drafter.dispose();
        cells.push({ engine: engineName, level: file.level, drafterKind: kind, workload, ...r });
        console.error(`${engineName} ${file.level.padEnd(6)} ${workload.padEnd(6)} ${kind.padEnd(5)} k=${k}: ${r.baseline.tokensPerSecond.toFixed(0)} → ${r.speculative.tokensPerSecond.toFixed(0)} tok/s, ` +
          `speedup ${r.speedup.toFixed(2)} (median of pairs ${r.speedupMedianOfPairs.toFixed(2)}; decoding only ${r.decode.speedup.toFixed(2)}; predicted ${r.predictedSpeedup.toFixed(2)}), acceptance ${r.acceptanceRate.toFixed(2)}, ` +
          `L ${r.meanAcceptedLength.toFixed(2)}, c ${r.c.toFixed(3)}, v ${r.v.toFixed(2)}, identical ${r.identical}`);
      }
    }
    }
    await target.dispose();
  }
  await draftEngine.dispose();
}

// Temperature 0.7 for the best draft-model cell of the task prompts.
const bestOf = (kind: "draft" | "ngram", workload: Workload) => cells.filter((c) => c.drafterKind === kind && c.workload === workload).sort((a, b) => b.decode.speedup - a.decode.speedup)[0];
const best = bestOf("draft", "tasks");
let sampled: Cell | undefined;
if (best) {
  const file = files.find((f) => f.level === best.level)!;
  const target = await openEngine(best.engine, file.path, { maxSequences: 2, contextSize: 512 });
  const draftEngine = await openEngine(best.engine, join(ROOT, "data", "models", "draft.gguf"), { maxSequences: 2, contextSize: 512 });
  const prompts = workloadPrompts(target, "tasks");
  const drafter = new ModelDrafter(draftEngine);
  const r = await compareWithPlain(target, drafter, prompts, { k: best.k, maxTokens, repeats: Math.max(2, repeats), sampler: { temperature: 0.7 }, draftEngine });
  await drafter.dispose();
  await draftEngine.dispose();
  await target.dispose();
  sampled = { engine: best.engine, level: best.level, drafterKind: "draft", workload: "tasks", ...r };
  console.error(`temperature 0.7, ${best.engine} ${best.level} k=${best.k}: speedup ${r.speedup.toFixed(2)} (decoding only ${r.decode.speedup.toFixed(2)}, predicted ${r.predictedSpeedup.toFixed(2)}), acceptance ${r.acceptanceRate.toFixed(2)}`);
}

const brief = (c: Cell | undefined) => c && { engine: c.engine, level: c.level, k: c.k, speedup: c.speedup, speedupMedianOfPairs: c.speedupMedianOfPairs, decodeSpeedup: c.decode.speedup, predicted: c.predictedSpeedup, acceptanceRate: c.acceptanceRate, identical: c.identical };
const summary = {
  bestDraft: brief(best),
  bestNgram: brief(bestOf("ngram", "tasks")),
  bestDraftRepeat: brief(bestOf("draft", "repeat")),
  bestNgramRepeat: brief(bestOf("ngram", "repeat")),
  allIdentical: cells.every((c) => c.identical === true),
  vByLevel: Object.fromEntries(engines.flatMap((e) => files.map((f) => [`${e} ${f.level}`,
    Object.fromEntries(cells.filter((c) => c.engine === e && c.level === f.level && c.drafterKind === "draft" && c.workload === "tasks").map((c) => [`k=${c.k}`, +c.v.toFixed(3)]))]))),
};
const doc = {
  generated: new Date().toISOString(),
  machine: { cpus: cpus().length, model: cpus()[0]?.model, loadAverageAtStart: loadStart, loadAverageAtEnd: loadavg(), note: "timings are from one run; compare cells only with each other" },
  settings: { engines, levels, ks, maxTokens, repeats, workloads: { tasks: "one 64-token validation document each of prose, arithmetic, code, chat", repeat: "3 prompts: 64 tokens of a chat transcript + 8 of the next (same system prompt)" }, greedy: true },
  seconds: (performance.now() - t0) / 1000,
  summary, cells, sampled,
};
await mkdir(dirname(values.out!), { recursive: true });
await writeFile(values.out!, JSON.stringify(doc, null, 2) + "\n");
console.error(`wrote ${values.out} (${doc.seconds.toFixed(0)} s)`);
console.log(JSON.stringify(summary, null, 2));
