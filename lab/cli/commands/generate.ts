// `lab generate MODEL --prompt TEXT`: continue a prompt with either engine, streaming text to stdout.
import { UsageError } from "../../errors.ts";
import { numberFlag, parseFlags, printJson, say, type Command } from "../command.ts";
import { ENGINE_NAMES, openEngine, type EngineName } from "../../engine/engine.ts";
import { generateTokens } from "../../engine/generate.ts";

/** Checks a name against a list; a mistake is a UsageError (exit code 2) listing the choices. */
export function engineFlag(command: string, value: string | undefined, allowed: readonly string[] = ENGINE_NAMES): string {
  const name = value ?? "lab";
  if (!allowed.includes(name)) throw new UsageError(`lab ${command}: unknown ${allowed === ENGINE_NAMES || allowed.includes("both") ? "engine" : "choice"} "${name}" (expected ${allowed.join(" | ")})`);
  return name;
}

export const generateCommand: Command = {
  name: "generate",
  summary: "Continue a prompt with the lab or llama.cpp engine (streams tokens)",
  help: `Usage: lab generate MODEL --prompt TEXT [options]

Streams the continuation to stdout as it is produced.

Options:
  --prompt TEXT        the text to continue (required, not empty)
  -n, --tokens N       new tokens at most (default 64)
  --engine NAME        lab | llama (default lab)
  --temperature T      0 = greedy (default 0)
  --top-k K            keep the K most likely tokens, 0 = all (default 0)
  --top-p P            nucleus sampling mass, 1 = off (default 1)
  --seed S             sampler seed (default 0)
  --threads N          CPU threads for llama.cpp (default 1)
  --json               print {prompt, engine, tokens, text, tokensPerSecond} instead of streaming

Example:
  lab generate data/models/target.gguf --prompt "Once upon a time" -n 32 --temperature 0.8 --seed 7`,
  async run(args) {
    const { values, positionals } = parseFlags("generate", args, {
      prompt: { type: "string" }, tokens: { type: "string", short: "n" }, engine: { type: "string" },
      temperature: { type: "string" }, "top-k": { type: "string" }, "top-p": { type: "string" },
      seed: { type: "string" }, threads: { type: "string" }, json: { type: "boolean" },
    }, { min: 1, max: 1 });
    const engineName = engineFlag("generate", values.engine) as EngineName;
    if (values.prompt === undefined) throw new UsageError("lab generate: --prompt is required");
    if (values.prompt === "") throw new UsageError("lab generate: --prompt is empty; give some text to continue");
    const maxTokens = numberFlag("generate", "tokens", values.tokens, 64, { min: 0, max: 1 << 20, integer: true });
    const temperature = numberFlag("generate", "temperature", values.temperature, 0, { min: 0, max: 100 });
    const topK = numberFlag("generate", "top-k", values["top-k"], 0, { min: 0, integer: true });
    const topP = numberFlag("generate", "top-p", values["top-p"], 1, { min: 1e-9, max: 1 });
    const seed = numberFlag("generate", "seed", values.seed, 0, { min: 0, max: 2 ** 32 - 1, integer: true });
    const threads = numberFlag("generate", "threads", values.threads, 1, { min: 1, max: 256, integer: true });
    const engine = await openEngine(engineName, positionals[0], { threads, maxSequences: 1 });
    try {
      const prompt = engine.tokenizer.encode(values.prompt, { bos: true });
      // The continuation's text is decode(prompt + new) minus decode(prompt): decoding the new tokens
      // alone would drop the space SentencePiece keeps at the start of a word.
      const promptText = engine.tokenizer.decode(prompt);
      const continuation = (ids: number[]) => engine.tokenizer.decode([...prompt, ...ids]).slice(promptText.length);
      const ids: number[] = [];
      let shown = "";
      const t0 = performance.now();
      for await (const token of generateTokens(engine, prompt, { maxTokens, temperature, topK, topP, seed })) {
        ids.push(token);
        if (values.json) continue;
        // Decode the whole continuation each time: a multi-byte character may span several tokens.
        const text = continuation(ids);
        if (text.startsWith(shown) && !text.endsWith("\uFFFD")) {
          process.stdout.write(text.slice(shown.length));
          shown = text;
        }
      }
      const seconds = (performance.now() - t0) / 1000;
      const text = continuation(ids);
      if (values.json) {
        printJson({ prompt: values.prompt, engine: engine.name, tokens: ids, text, tokensPerSecond: ids.length / seconds });
      } else {
        if (text.startsWith(shown)) process.stdout.write(text.slice(shown.length));
        process.stdout.write("\n");
        say(`${ids.length} tokens in ${seconds.toFixed(2)} s (${(ids.length / seconds).toFixed(1)} tokens/s, ${engine.name} engine)`);
      }
      return 0;
    } finally {
      await engine.dispose();
    }
  },
};
