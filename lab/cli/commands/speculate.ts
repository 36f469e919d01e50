// `lab speculate TARGET (--draft DRAFT | --ngram)`: speculative decoding against plain decoding on
// the same engine and level, side by side: tokens/s of each, the speedup, acceptance, the cost
// ratios c and v(k), the cost model's predicted speedup, and (greedy) whether the outputs are
// identical token for token.
import { existsSync } from "node:fs";
import { UsageError } from "../../errors.ts";
import { numberFlag, parseFlags, printJson, say, type Command } from "../command.ts";
import { openEngine, type Engine, type EngineName } from "../../engine/engine.ts";
import { engineFlag } from "./generate.ts";
import { MAX_K, ModelDrafter, PromptLookupDrafter, type Drafter } from "../../speculative/index.ts";
import { compareWithPlain, PROMPT_SETS, speculativePrompts, type PromptSet } from "../../speculative/measure.ts";

export const speculateCommand: Command = {
  name: "speculate",
  summary: "Speculative decoding vs plain decoding: speedup, acceptance, c, v(k), predicted speedup",
  help: `Usage: lab speculate TARGET (--draft DRAFT | --ngram) [options]

Decodes the same prompts plainly and speculatively on one engine, interleaved, and reports both
speeds, the speedup, the acceptance figures, the cost ratios c = draft step / target step and
v(k) = target pass over k+1 tokens / target step, and the predicted speedup E(α,k) / (k·c + v(k)).

Options:
  --draft DRAFT        draft model GGUF (same vocabulary as TARGET)
  --ngram              prompt lookup instead of a draft model (vLLM's n-gram proposer, n = 1..3)
  --k K                draft tokens per target pass, 1..${MAX_K} (default 4)
  --engine NAME        lab | llama (default lab)
  --level LEVEL        quantize TARGET first (lab/quant, cached in data/cache/quantization), e.g. Q4_K_M
  --temperature T      0 = greedy (default 0); identical is only checked when greedy
  --prompts SET        ${PROMPT_SETS.join(" | ")} (default prose): the task's validation documents
  -n, --tokens N       new tokens per prompt (default 48)
  --count N            prompts (default 3)
  --repeats N          runs per prompt, plain and speculative interleaved (default 2)
  --seed S             seed for sampling (default 0)
  --json               one JSON document: baseline.tokensPerSecond, speculative.tokensPerSecond,
                       speedup, decode.speedup (prefill left out of both), acceptanceRate,
                       meanAcceptedLength, predictedSpeedup, identical, …

Example:
  lab speculate data/models/target.gguf --draft data/models/draft.gguf --k 4 --level Q4_K_M`,
  async run(args) {
    const { values, positionals } = parseFlags("speculate", args, {
      draft: { type: "string" }, ngram: { type: "boolean" }, k: { type: "string" }, engine: { type: "string" },
      level: { type: "string" }, temperature: { type: "string" }, prompts: { type: "string" },
      tokens: { type: "string", short: "n" }, count: { type: "string" }, repeats: { type: "string" },
      seed: { type: "string" }, json: { type: "boolean" },
    }, { min: 1, max: 1 });
    if ((values.draft === undefined) === (values.ngram !== true)) {
      throw new UsageError("lab speculate: give exactly one drafter: --draft DRAFT or --ngram");
    }
    const engineName = engineFlag("speculate", values.engine) as EngineName;
    const k = numberFlag("speculate", "k", values.k, 4, { min: 1, max: MAX_K, integer: true });
    const temperature = numberFlag("speculate", "temperature", values.temperature, 0, { min: 0, max: 100 });
    const maxTokens = numberFlag("speculate", "tokens", values.tokens, 48, { min: 1, max: 4096, integer: true });
    const count = numberFlag("speculate", "count", values.count, 3, { min: 1, max: 100, integer: true });
    const repeats = numberFlag("speculate", "repeats", values.repeats, 2, { min: 1, max: 100, integer: true });
    const seed = numberFlag("speculate", "seed", values.seed, 0, { min: 0, max: 2 ** 32 - 1, integer: true });
    const set = (values.prompts ?? "prose") as PromptSet;
    if (!PROMPT_SETS.includes(set)) throw new UsageError(`lab speculate: unknown --prompts "${set}" (expected ${PROMPT_SETS.join(" | ")})`);
    let targetPath = positionals[0];
    for (const [what, path] of [["TARGET", targetPath], ["--draft", values.draft]] as const) {
      if (path !== undefined && !existsSync(path)) throw new UsageError(`lab speculate: ${what} ${path} does not exist`);
    }
    const level = values.level;
    if (level !== undefined) {
      const { findMix } = await import("../../quant/mixes.ts");
      if (!findMix(level)) throw new UsageError(`lab speculate: unknown --level "${level}" (use a llama-quantize name such as Q8_0 or Q4_K_M)`);
      const { quantizeLevels } = await import("../../study/quantization.ts");
      const [file] = await quantizeLevels(targetPath, [level]);
      if (!file.cached) say(`quantized ${targetPath} to ${file.level}: ${file.path}`);
      targetPath = file.path;
    }

    const target = await openEngine(engineName, targetPath, { maxSequences: 2, contextSize: 512 });
    let draftEngine: Engine | undefined;
    let drafter: Drafter | undefined;
    try {
      if (values.draft !== undefined) {
        draftEngine = await openEngine(engineName, values.draft, { maxSequences: 2, contextSize: 512 });
        drafter = new ModelDrafter(draftEngine);
      } else {
        drafter = new PromptLookupDrafter(target.tokenizer.vocabSize);
      }
      const prompts = speculativePrompts(target, set, { count });
      const r = await compareWithPlain(target, drafter, prompts, {
        k, maxTokens, repeats, sampler: { temperature }, draftEngine, seed,
      });
      const report = { target: targetPath, level: level ?? "as stored", engine: engineName, promptSet: set, ...r };
      if (values.json) {
        printJson(report);
      } else {
        const f = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : "—");
        say(`${drafter.name}, k = ${k}, ${engineName} engine, ${report.level}, ${set} prompts × ${count}, ${maxTokens} tokens, temperature ${temperature}`);
        say(`baseline     ${f(r.baseline.tokensPerSecond, 1)} tokens/s`);
        say(`speculative  ${f(r.speculative.tokensPerSecond, 1)} tokens/s   speedup ${f(r.speedup)}× end to end, ${f(r.decode.speedup)}× decoding only (predicted ${f(r.predictedSpeedup)}×)`);
        say(`acceptance   ${f(r.acceptanceRate, 3)}   mean accepted length ${f(r.meanAcceptedLength)}   tokens per target pass ${f(r.tokensPerTargetPass)}`);
        say(`per position ${r.acceptancePerPosition.map((a) => f(a, 2)).join(" ")}`);
        say(`c = ${f(r.c, 3)}   v(${k}) = ${f(r.v)}   α = ${f(r.alpha, 3)}   time: draft ${f(r.timeSplit.draft)} s, verify ${f(r.timeSplit.verify)} s, rollback ${f(r.timeSplit.rollback, 3)} s`);
        if (r.identical !== null) say(`identical to plain greedy decoding: ${r.identical ? "yes" : "NO"}`);
      }
      return 0;
    } finally {
      await drafter?.dispose();
      await draftEngine?.dispose();
      await target.dispose();
    }
  },
};
