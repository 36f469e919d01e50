// `lab data generate` and `lab data check`: the tiny-world corpus, eval sets and tokenizer under data/.
import { resolve } from "node:path";
import { numberFlag, parseFlags, printJson, say, type Command } from "../command.ts";
import {
  DEFAULT_SEED, DEFAULT_VOCAB_SIZE, SPLITS, TASKS, buildDataset, checkDataset, defaultDataDir, loadCorpus, loadTokenizer,
  writeDataset,
} from "../../data/index.ts";

const generate: Command = {
  name: "data generate",
  summary: "Generate the corpus, eval sets and tokenizer under data/ (deterministic per seed)",
  help: `Usage: lab data generate [--seed N] [--vocab-size N] [--out DIR] [--json]

Writes DIR/corpus/<task>.{train,val}.txt for the task families prose, arithmetic, facts, code and chat
(documents separated by a blank line), DIR/eval/{prose,arithmetic,facts,code}.jsonl (held-out eval
sets), DIR/tokenizer.json (a SentencePiece-style BPE vocabulary trained on the train splits),
DIR/corpus/manifest.json (sizes, token counts, sha256) and the generated section of DIR/README.md.
The same seed and vocabulary size give the same bytes on every machine.

  --seed N         world and corpus seed (default ${DEFAULT_SEED})
  --vocab-size N   tokenizer vocabulary, 512–4096 (default ${DEFAULT_VOCAB_SIZE})
  --out DIR        output directory (default: the checkout's data/)
  --json           print the manifest as JSON on stdout`,
  async run(args) {
    const { values } = parseFlags("data generate", args, {
      seed: { type: "string" }, "vocab-size": { type: "string" }, out: { type: "string" }, json: { type: "boolean" },
    });
    const seed = numberFlag("data generate", "seed", values.seed, DEFAULT_SEED, { min: 0, max: 2 ** 32 - 1, integer: true });
    const vocabSize = numberFlag("data generate", "vocab-size", values["vocab-size"], DEFAULT_VOCAB_SIZE, { min: 512, max: 4096, integer: true });
    const dir = values.out ? resolve(values.out) : defaultDataDir();
    const t0 = performance.now();
    const ds = buildDataset(seed, vocabSize);
    writeDataset(ds, dir);
    const seconds = (performance.now() - t0) / 1000;
    if (values.json) printJson({ dir, seconds, ...ds.manifest });
    for (const f of ds.manifest.files) {
      say(`  ${f.path.padEnd(26)} ${String(f.bytes).padStart(9)} B${f.tokens !== undefined ? `  ${String(f.tokens).padStart(8)} tokens` : ""}`);
    }
    const total = ds.manifest.files.reduce((n, f) => n + f.bytes, 0);
    say(`wrote ${ds.manifest.files.length} files (${(total / 1e6).toFixed(2)} MB) to ${dir} in ${seconds.toFixed(1)} s; ` +
      `chat system prompt = ${ds.manifest.systemPromptTokens} tokens`);
    return 0;
  },
};

const check: Command = {
  name: "data check",
  summary: "Regenerate data/ in memory and verify every file's sha256 matches",
  help: `Usage: lab data check [--dir DIR] [--llama] [--json]

Reads DIR/corpus/manifest.json (default DIR: the checkout's data/), regenerates the corpus, eval sets
and tokenizer with its seed and vocabulary size, and compares each file on disk with the regeneration
(and the README section with the one it would write). Exit code 0 when everything matches, 1 otherwise.

  --llama   also tokenize every corpus document (train and val, all tasks) with DIR/tokenizer.json and
            with llama.cpp (node-llama-cpp, vocabulary-only GGUF) and require identical ids and text`,
  async run(args) {
    const { values } = parseFlags("data check", args, { dir: { type: "string" }, llama: { type: "boolean" }, json: { type: "boolean" } });
    const dir = values.dir ? resolve(values.dir) : defaultDataDir();
    const result = checkDataset(dir);
    for (const p of result.problems) say(`✗ ${p}`);
    say(result.ok
      ? `data ok: ${result.checked} files in ${dir} match a regeneration (seed ${result.seed}, vocabulary ${result.vocabSize})`
      : `${result.problems.length} file(s) differ from a regeneration: run \`lab data generate --seed ${result.seed}\``);
    let llama;
    if (values.llama) {
      const { compareWithLlamaCpp } = await import("../../data/llama-check.ts");
      const texts = TASKS.flatMap((t) => SPLITS.flatMap((s) => loadCorpus(t, s, dir)));
      llama = await compareWithLlamaCpp(loadTokenizer(dir), texts);
      for (const e of llama.examples) say(`✗ tokenizer differs from llama.cpp on ${e}`);
      say(`tokenizer vs llama.cpp: ${llama.texts} documents, ${llama.tokens} tokens, ${llama.mismatches} differ ` +
        `(ours ${llama.oursSeconds.toFixed(2)} s, llama.cpp ${llama.llamaSeconds.toFixed(2)} s)`);
    }
    const ok = result.ok && (llama === undefined || llama.mismatches === 0);
    if (values.json) printJson({ dir, ...result, ok, llama });
    return ok ? 0 : 1;
  },
};

export const dataCommands: Command[] = [generate, check];
