// `lab eval MODEL`: perplexity on data/eval/prose.jsonl, KL divergence and same-top-1 rate against a
// reference model (--ref), exact-match accuracy on every {prompt, answer} set in data/eval/.
import { numberFlag, parseFlags, printJson, say, type Command } from "../command.ts";
import { openEngine, type Engine, type EngineName } from "../../engine/engine.ts";
import { klAgainst, lossByPosition, perplexity, taskAccuracy, type PositionLoss } from "../../measure/quality.ts";
import { EVAL_DIR, loadProse, loadTaskSets, validationStream } from "../../measure/evalsets.ts";
import { formatNumber, formatTable } from "../../table.ts";
import { engineFlag } from "./generate.ts";

export interface EvalResult {
  perplexity: number | null;
  kl: { mean: number; median: number; p99: number; max: number } | null;
  /** fraction of positions (0..1) where the model's and the reference's most likely token agree */
  top1: number | null;
  /** task set name → greedy exact-match accuracy, 0..1 */
  tasks: Record<string, number>;
  /** with --by-position: validation loss per position bucket */
  byPosition?: PositionLoss;
}

/**
 * The human report: quality figures in one table at 4 significant digits (KL of a good quant is
 * ~1e-3 and its median ~1e-5, so fixed decimals would print 0.00; below 1e-3 in exponent form), then
 * task accuracy in percent with its item count.
 */
export function evalText(result: EvalResult, itemCounts: Record<string, number> = {}): string {
  const sig = (x: number) => (x !== 0 && Math.abs(x) < 1e-3 ? x.toExponential(3) : formatNumber(x, 4));
  const quality: { figure: string; value: string }[] = [
    { figure: "perplexity", value: result.perplexity === null ? "n/a" : sig(result.perplexity) },
  ];
  if (result.kl) {
    quality.push({ figure: "KL mean (nats)", value: sig(result.kl.mean) }, { figure: "KL median", value: sig(result.kl.median) },
      { figure: "KL p99", value: sig(result.kl.p99) }, { figure: "KL max", value: sig(result.kl.max) });
  }
  if (result.top1 !== null) quality.push({ figure: "same top-1", value: `${(100 * result.top1).toFixed(1)}%` });
  const parts = [formatTable(quality)];
  const tasks = Object.entries(result.tasks).map(([task, acc]) => ({
    task, accuracy: `${(100 * acc).toFixed(1)}%`, ...(task in itemCounts ? { items: itemCounts[task]! } : {}),
  }));
  if (tasks.length > 0) parts.push(formatTable(tasks));
  const bp = result.byPosition;
  if (bp) {
    parts.push(`validation loss by position (${bp.windows} windows of ${bp.windowTokens} tokens)\n` + formatTable(bp.loss.map((loss, k) => ({
      positions: `${bp.edges[k]}–${bp.edges[k + 1] - 1}`, "loss (nats/token)": loss.toFixed(3), tokens: bp.tokens[k],
    }))));
  }
  return parts.join("\n\n");
}

export const evalCommand: Command = {
  name: "eval",
  summary: "Perplexity, KL divergence vs a reference model, and task accuracy",
  help: `Usage: lab eval MODEL [--ref MODEL] [options]

Measures MODEL on the evaluation sets in data/eval/:
  perplexity   on prose.jsonl {text}
  kl, top1     KL(ref ‖ model) per position (mean, median, p99, max) and the same-top-1 rate,
               when --ref is given (both models see the same token ids)
  tasks        greedy exact-match accuracy on every other NAME.jsonl {prompt, answer}; chat.jsonl
               is the assistant's first line after the 919-token system prompt (shared: prefilled
               once and forked per item)
  byPosition   with --by-position: validation loss (data/corpus/*.val.txt) per position bucket
               0–127, 128–255, 256–511, 512–1023 (cut to the context)

Options:
  --ref MODEL       reference model (e.g. the F32 original of a quantized file)
  --engine NAME     lab | llama (default lab); the reference runs on the same engine
  --texts N         prose texts to use (default 32)
  --items N         items per task set (default 50)
  --threads N       CPU threads for llama.cpp (default 1)
  --by-position     also report validation loss by position bucket
  --windows N       windows for --by-position (default 8)
  --eval-dir DIR    where the .jsonl sets are (default data/eval)
  --json            print {perplexity, kl, top1, tasks, byPosition} as JSON

Examples (quantize first: data/models/ holds only the F32 target.gguf and draft.gguf):
  lab quantize data/models/target.gguf /tmp/target-Q4_K_M.gguf Q4_K_M
  lab eval /tmp/target-Q4_K_M.gguf --ref data/models/target.gguf --texts 8 --items 20
  lab eval data/models/draft.gguf --json
  lab eval data/models/target.gguf --texts 0 --items 0 --by-position --windows 2`,
  async run(args) {
    const { values, positionals } = parseFlags("eval", args, {
      ref: { type: "string" }, engine: { type: "string" }, texts: { type: "string" }, items: { type: "string" },
      threads: { type: "string" }, "eval-dir": { type: "string" }, json: { type: "boolean" },
      "by-position": { type: "boolean" }, windows: { type: "string" },
    }, { min: 1, max: 1 });
    const engineName = engineFlag("eval", values.engine) as EngineName;
    const nTexts = numberFlag("eval", "texts", values.texts, 32, { min: 0, integer: true });
    const nItems = numberFlag("eval", "items", values.items, 50, { min: 0, integer: true });
    const threads = numberFlag("eval", "threads", values.threads, 1, { min: 1, max: 256, integer: true });
    const windows = numberFlag("eval", "windows", values.windows, 8, { min: 1, integer: true });
    const dir = values["eval-dir"] ?? EVAL_DIR;
    const texts = await loadProse(dir, nTexts);
    const taskSets = await loadTaskSets(dir, nItems);
    if (texts.length === 0 && taskSets.size === 0 && !values["by-position"]) say(`lab eval: no evaluation sets found in ${dir}`);

    const opened: Engine[] = [];
    try {
      // Two sequences: a task set whose prompts share a long prefix (chat) forks it per item.
      const engine = await openEngine(engineName, positionals[0], { threads, maxSequences: 2 });
      opened.push(engine);
      const ref = values.ref ? await openEngine(engineName, values.ref, { threads, maxSequences: 1 }) : undefined;
      if (ref) opened.push(ref);

      const result: EvalResult = { perplexity: null, kl: null, top1: null, tasks: {} };
      if (texts.length > 0) {
        say(`perplexity on ${texts.length} texts…`);
        result.perplexity = (await perplexity(engine, texts)).perplexity;
        if (ref) {
          say("KL divergence against the reference…");
          const kl = await klAgainst(engine, ref, texts);
          result.kl = kl.kl;
          result.top1 = kl.top1;
        }
      }
      for (const [name, items] of taskSets) {
        say(`task ${name}: ${items.length} items…`);
        result.tasks[name] = (await taskAccuracy(engine, items)).accuracy;
      }
      if (values["by-position"]) {
        say(`validation loss by position on ${windows} windows…`);
        result.byPosition = await lossByPosition(engine, validationStream(engine.tokenizer), { windows });
      }
      if (values.json) printJson(result);
      else say(evalText(result, Object.fromEntries([...taskSets].map(([name, items]) => [name, items.length]))));
      return 0;
    } finally {
      for (const e of opened) await e.dispose();
    }
  },
};
