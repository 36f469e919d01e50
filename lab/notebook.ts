// The kit as a notebook sees it. Every notebook starts with this ONE import line (from notebooks/;
// one more "../" per folder level deeper):
//
//     import * as lab from "../lab/notebook.cjs";
//
// Why a .cjs and not this .ts file: tslab compiles cells to CommonJS with its own TypeScript 5.0 and
// cannot compile the lab's sources itself (".ts" import specifiers, files outside the notebook's
// folder). lab/notebook.cjs registers tsx in the kernel and require()s this file, so cells run the
// real sources; lab/notebook.d.cts gives tslab the types (declarations generated from this file
// into lab/.types/ by `lab notebooks run`, `lab regenerate` and `lab jupyter`, see
// lab/notebooks/types.ts). node-llama-cpp (ESM with top-level await) is loaded lazily through
// lab/engine/node-llama.mjs, a file Node's own ESM loader runs: `await lab.cpuLlama()`.
//
// Sections: where things are · the lab's modules, one namespace each · the student's exercises ·
// figures and tables with notebook defaults · the headline convention · the environment report.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { saveFigure as saveFigureTo, type SaveOptions } from "./plot/index.ts";

// ─── where things are ────────────────────────────────────────────────────────────────────────────

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Absolute paths, so cells work the same from notebooks/, exercises/ or anywhere else. */
export const paths = {
  root: ROOT,
  notebooks: join(ROOT, "notebooks"),
  figures: join(ROOT, "notebooks", "figures"),
  results: join(ROOT, "data", "results"),
  models: join(ROOT, "data", "models"),
  eval: join(ROOT, "data", "eval"),
};

// ─── the lab's modules ───────────────────────────────────────────────────────────────────────────

export * as gguf from "./gguf/index.ts";
export * as ggufInspect from "./gguf/inspect.ts";
export * as quant from "./quant/index.ts";
export * as mixes from "./quant/mixes.ts";
export * as quantFile from "./quant/file.ts";
export * as plot from "./plot/index.ts";
export * as figures from "./plot/figures.ts";
export * as specFigures from "./plot/speculative.ts";
export * as table from "./table.ts";
export * as data from "./data/index.ts";
export * as engines from "./engine/engine.ts";
export * as quality from "./measure/quality.ts";
export * as latency from "./measure/latency.ts";
export * as stats from "./measure/stats.ts";
export * as synthetic from "./model/synthetic.ts";
export * as reference from "./model/reference.ts";
export * as study from "./study/index.ts";
export * as speculative from "./speculative/index.ts";
export * as prefixCache from "./prefix-cache/index.ts";
export * as prefixBench from "./prefix-cache/bench.ts";
export * as prefixStudy from "./study/prefix-cache.ts";
export * as prefixFigures from "./plot/prefix-cache.ts";
export * as loadtest from "./loadtest/index.ts";
export * as servingStudy from "./loadtest/study.ts";
export * as servingFigures from "./plot/serving.ts";
export * as serve from "./serve/index.ts";
export * as capacity from "./capacity/index.ts";
export { SpmTokenizer } from "./tokenizer.ts";
export { generate, generateTokens } from "./engine/generate.ts";
export { importNodeLlamaCpp, cpuLlama } from "./engine/node-llama.mjs";

// ─── the student's exercises ─────────────────────────────────────────────────────────────────────

/**
 * The student's code for a lesson (exercises/<lesson>/index.ts), loaded on demand so that a
 * half-written exercise never breaks the lab import: `const ex = await lab.exercises.quantization();`
 */
export const exercises = {
  quantization: () => import("../exercises/quantization/index.ts"),
  speculative: () => import("../exercises/speculative/index.ts"),
  serving: () => import("../exercises/serving/index.ts"),
};

/**
 * The code a notebook section runs for a graded task: the student's module (exercises/) once the
 * grader passes that task, the reference solution (solutions/) until then — so a lesson shows real
 * results before the student has written anything, and their own code's results afterwards.
 * Both trees export the same names and types (test/exercises/kit-types.ts checks it).
 */
const TASK_CODE = {
  "1.3": {
    functions: "planMemory, fitsOnGpu", file: "quantization/memory.ts",
    exercises: () => import("../exercises/quantization/memory.ts"),
    solutions: () => import("../solutions/quantization/memory.ts"),
  },
  "1.4": {
    functions: "chooseLevel", file: "quantization/memory.ts",
    exercises: () => import("../exercises/quantization/memory.ts"),
    solutions: () => import("../solutions/quantization/memory.ts"),
  },
  "2.1": {
    functions: "verifyOneToken", file: "speculative/accept.ts",
    exercises: () => import("../exercises/speculative/accept.ts"),
    solutions: () => import("../solutions/speculative/accept.ts"),
  },
  "2.2": {
    functions: "verifyDraft", file: "speculative/verify.ts",
    exercises: () => import("../exercises/speculative/verify.ts"),
    solutions: () => import("../solutions/speculative/verify.ts"),
  },
  "2.3": {
    functions: "expectedTokensPerPass, predictedSpeedup", file: "speculative/cost.ts",
    exercises: () => import("../exercises/speculative/cost.ts"),
    solutions: () => import("../solutions/speculative/cost.ts"),
  },
  "2.4": {
    functions: "bestK", file: "speculative/cost.ts",
    exercises: () => import("../exercises/speculative/cost.ts"),
    solutions: () => import("../solutions/speculative/cost.ts"),
  },
  "2.5": {
    functions: "proposeNgram", file: "speculative/lookup.ts",
    exercises: () => import("../exercises/speculative/lookup.ts"),
    solutions: () => import("../solutions/speculative/lookup.ts"),
  },
  "3.1": {
    functions: "blockHash, blockHashChain, createBlockHashIndex", file: "serving/block-hash.ts",
    exercises: () => import("../exercises/serving/block-hash.ts"),
    solutions: () => import("../solutions/serving/block-hash.ts"),
  },
  "3.2": {
    functions: "createFreeBlockQueue, createBlockPool", file: "serving/free-queue.ts",
    exercises: () => import("../exercises/serving/free-queue.ts"),
    solutions: () => import("../solutions/serving/free-queue.ts"),
  },
  "3.3": {
    functions: "createRadixTree", file: "serving/radix-tree.ts",
    exercises: () => import("../exercises/serving/radix-tree.ts"),
    solutions: () => import("../solutions/serving/radix-tree.ts"),
  },
  "3.4": {
    functions: "scheduleStep", file: "serving/scheduler-step.ts",
    exercises: () => import("../exercises/serving/scheduler-step.ts"),
    solutions: () => import("../solutions/serving/scheduler-step.ts"),
  },
  "3.5": {
    functions: "littlesLaw, timeAverageInSystem, bestOperatingPoint, replicasNeeded", file: "serving/scale-out.ts",
    exercises: () => import("../exercises/serving/scale-out.ts"),
    solutions: () => import("../solutions/serving/scale-out.ts"),
  },
  "3.6": {
    functions: "tpMemoryPlan, smallestTensorParallel", file: "serving/capacity.ts",
    exercises: () => import("../exercises/serving/capacity.ts"),
    solutions: () => import("../solutions/serving/capacity.ts"),
  },
  "3.7": {
    functions: "prefillTime, decodeStepTime, crossoverBatch, requestLatency", file: "serving/capacity.ts",
    exercises: () => import("../exercises/serving/capacity.ts"),
    solutions: () => import("../solutions/serving/capacity.ts"),
  },
  "3.9": {
    functions: "runQueueDepthAutoscaler", file: "serving/autoscaler.ts",
    exercises: () => import("../exercises/serving/autoscaler.ts"),
    solutions: () => import("../solutions/serving/autoscaler.ts"),
  },
} as const;

export type GradedTask = keyof typeof TASK_CODE;

/**
 * Grades `task` against exercises/ (lab/grade.ts, one vitest process, a few seconds), prints one
 * line saying whose code the section runs and why, and returns that module:
 * `const { planMemory } = await lab.taskCode("1.3");`
 */
export async function taskCode<T extends GradedTask>(task: T): Promise<Awaited<ReturnType<(typeof TASK_CODE)[T]["exercises"]>>> {
  const code = TASK_CODE[task];
  if (!code) throw new Error(`taskCode: no notebook code is registered for task "${task}"; known: ${Object.keys(TASK_CODE).join(", ")}`);
  const { gradeTask, selectTasks } = await import("./grade.ts");
  const result = await gradeTask(selectTasks([task])[0]!, "exercises", 60_000);
  const passes = result.status === "pass";
  const why = passes ? `task ${task} passes`
    : result.status === "not started" ? `task ${task} is not started (\`npm run grade -- ${task}\`)`
    : `task ${task} does not pass yet: ${result.status}${result.total ? `, ${result.passed}/${result.total} tests` : ""} (\`npm run grade -- ${task}\`)`;
  console.log(passes
    ? `Running YOUR ${code.functions} (exercises/${code.file}): ${why}.`
    : `Running the reference ${code.functions} (solutions/${code.file}): ${why}.`);
  // Same exports, same types: the solution stands in for the exercise module.
  return (passes ? code.exercises() : code.solutions()) as Promise<Awaited<ReturnType<(typeof TASK_CODE)[T]["exercises"]>>>;
}

// ─── figures and tables ──────────────────────────────────────────────────────────────────────────

export { Plot, renderFigure, showFigure } from "./plot/index.ts";
export { showTable, toDataFrame, writeCsv } from "./table.ts";

/** lab/plot's saveFigure, but saving into notebooks/figures/ whatever the kernel's folder. */
export function saveFigure(name: string, svg: string, options: SaveOptions = {}): { svg: string; png?: string } {
  return saveFigureTo(name, svg, { dir: paths.figures, ...options });
}

// ─── the headline convention ─────────────────────────────────────────────────────────────────────

/**
 * States the notebook's one-line result. Prints "Headline: <text>"; `lab regenerate` shows the last
 * headline of each notebook in its summary table and stores it in data/results/<notebook>.summary.json.
 */
export function reportHeadline(text: string): void {
  const line = String(text).replace(/\s+/g, " ").trim();
  if (!line) throw new Error("reportHeadline: the headline is empty");
  console.log(`Headline: ${line}`);
}

// ─── the environment report ──────────────────────────────────────────────────────────────────────

export { doctor, formatDoctor, type DoctorReport, type Check } from "./doctor.ts";
