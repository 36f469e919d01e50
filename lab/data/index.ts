// The kit's data on disk: writing the generated corpus, eval sets and tokenizer under data/, recording
// their sizes and sha256 hashes, checking that a regeneration reproduces them byte for byte, and the
// loaders the trainer, evals and notebooks use.
//
// Layout (all written by `lab data generate`, all committed):
//   data/corpus/<task>.train.txt, <task>.val.txt   documents separated by one blank line, UTF-8, "\n"
//   data/corpus/manifest.json                        seed, vocab size, and per file: bytes, sha256, docs, tokens
//   data/eval/prose.jsonl                            {"text": ...} per line (held-out stories, for perplexity)
//   data/eval/{arithmetic,facts,code}.jsonl          {"prompt": ..., "answer": ...} per line (exact match)
//   data/eval/chat.jsonl                             the same, plus kind and the item in Q/A form (qaPrompt, qaAnswer)
//   data/tokenizer.json                              the SentencePiece-style vocabulary (lab/tokenizer.ts)
//   data/README.md                                   a generated section with the same table
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { SpmTokenizer } from "../tokenizer.ts";
import {
  EVAL_SETS, TASKS, generateCorpus,
  type ChatEvalItem, type Corpus, type EvalItem, type EvalSetName, type ProseItem, type Task,
} from "./generate.ts";

export * from "./generate.ts";

export class DataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DataError";
  }
}

export const DEFAULT_SEED = 1;
export const DEFAULT_VOCAB_SIZE = 1024;
export const SPLITS = ["train", "val"] as const;
export type Split = (typeof SPLITS)[number];

/** The repository's data/ directory: found by walking up from the working directory to the kit's
 *  package.json (works from the CLI, from tests and from notebooks, whatever their module system). */
export function defaultDataDir(): string {
  let dir = process.cwd();
  for (;;) {
    const pkg = join(dir, "package.json");
    if (existsSync(pkg)) {
      try {
        if (JSON.parse(readFileSync(pkg, "utf8")).name === "inference-lab") return join(dir, "data");
      } catch { /* not ours; keep walking */ }
    }
    const up = dirname(dir);
    if (up === dir) throw new DataError(`cannot find the inference-lab checkout above ${process.cwd()}; pass a data directory`);
    dir = up;
  }
}

// ---------------------------------------------------------------------------------------------------
// Generating
// ---------------------------------------------------------------------------------------------------

export interface FileRecord {
  path: string;       // relative to the data directory, "/" separated
  bytes: number;
  sha256: string;
  documents?: number; // corpus files: blank-line separated documents; jsonl: lines
  tokens?: number;    // corpus files: tokens with data/tokenizer.json (no BOS/EOS)
}

export interface Manifest {
  format: "inference-lab-data/1";
  seed: number;
  vocabSize: number;
  /** tokens of the chat system prompt (the shared prefix), with the generated tokenizer */
  systemPromptTokens: number;
  files: FileRecord[];
}

export interface Dataset {
  corpus: Corpus;
  tokenizer: SpmTokenizer;
  /** every file to write, path relative to the data directory -> content */
  files: Map<string, string>;
  manifest: Manifest;
}

const sha256 = (s: string | Uint8Array) => createHash("sha256").update(s).digest("hex");
const jsonl = (items: object[]) => items.map((x) => JSON.stringify(x)).join("\n") + "\n";

export const corpusPath = (task: Task, split: Split) => `corpus/${task}.${split}.txt`;
export const evalPath = (name: EvalSetName) => `eval/${name}.jsonl`;
export const MANIFEST_PATH = "corpus/manifest.json";
/** Short chat exchanges for the chat and long training phases (training only; see DIALOG in generate.ts). */
export const DIALOG_PATH = "corpus/dialog.train.txt";
export const TOKENIZER_PATH = "tokenizer.json";

/** Everything `lab data generate` writes, computed in memory (deterministic for seed and vocab size). */
export function buildDataset(seed = DEFAULT_SEED, vocabSize = DEFAULT_VOCAB_SIZE): Dataset {
  const corpus = generateCorpus(seed);
  const trainDocs = TASKS.flatMap((t) => splitDocuments(corpus.text[t].train));
  const tokenizer = SpmTokenizer.train(trainDocs, { vocabSize });

  const files = new Map<string, string>();
  const records: FileRecord[] = [];
  for (const task of TASKS) {
    for (const split of SPLITS) {
      const text = corpus.text[task][split];
      const docs = splitDocuments(text);
      const tokens = docs.reduce((n, d) => n + tokenizer.encode(d).length, 0);
      const path = corpusPath(task, split);
      files.set(path, text);
      records.push({ path, bytes: Buffer.byteLength(text), sha256: sha256(text), documents: docs.length, tokens });
    }
  }
  {
    const docs = splitDocuments(corpus.dialog);
    files.set(DIALOG_PATH, corpus.dialog);
    records.push({ path: DIALOG_PATH, bytes: Buffer.byteLength(corpus.dialog), sha256: sha256(corpus.dialog), documents: docs.length,
      tokens: docs.reduce((n, d) => n + tokenizer.encode(d).length, 0) });
  }
  for (const name of EVAL_SETS) {
    const items = corpus.eval[name];
    const text = jsonl(items);
    files.set(evalPath(name), text);
    records.push({ path: evalPath(name), bytes: Buffer.byteLength(text), sha256: sha256(text), documents: items.length });
  }
  const tokText = JSON.stringify(tokenizer.toJSON()) + "\n";
  files.set(TOKENIZER_PATH, tokText);
  records.push({ path: TOKENIZER_PATH, bytes: Buffer.byteLength(tokText), sha256: sha256(tokText) });

  const systemPrompt = corpus.text.chat.train.split("\n", 1)[0];
  const manifest: Manifest = {
    format: "inference-lab-data/1", seed, vocabSize,
    systemPromptTokens: tokenizer.encode(systemPrompt).length,
    files: records,
  };
  files.set(MANIFEST_PATH, JSON.stringify(manifest, null, 2) + "\n");
  return { corpus, tokenizer, files, manifest };
}

const README_BEGIN = "<!-- BEGIN lab data generate (generated; do not edit by hand) -->";
const README_END = "<!-- END lab data generate -->";

/** The data/README.md section: what each file is, and its size and hash. */
export function readmeSection(m: Manifest): string {
  const rows = m.files.map((f) =>
    `| ${f.path} | ${f.bytes} | ${f.documents ?? ""} | ${f.tokens ?? ""} | \`${f.sha256}\` |`);
  const total = m.files.reduce((n, f) => n + f.bytes, 0);
  return [
    README_BEGIN,
    "## Generated corpus, eval sets and tokenizer",
    "",
    `Written by \`lab data generate --seed ${m.seed}\` (vocabulary ${m.vocabSize} tokens); \`lab data check\``,
    "regenerates everything in memory and compares it with these files byte for byte.",
    "Corpus files hold documents separated by one blank line; `docs` counts documents (jsonl: lines) and",
    "`tokens` counts tokens with data/tokenizer.json (no BOS/EOS).",
    `The chat system prompt is ${m.systemPromptTokens} tokens. Total: ${total} bytes.`,
    "",
    "| file | bytes | docs | tokens | sha256 |",
    "|---|---:|---:|---:|---|",
    ...rows,
    README_END,
  ].join("\n");
}

/** Replaces (or appends) the generated section of README.md, leaving the rest of the file as it is. */
export function updateReadme(existing: string | undefined, section: string): string {
  if (existing === undefined) return section + "\n";
  const b = existing.indexOf(README_BEGIN);
  const e = existing.indexOf(README_END);
  if (b >= 0 && e > b) return existing.slice(0, b) + section + existing.slice(e + README_END.length);
  return existing.replace(/\n*$/, "\n\n") + section + "\n";
}

function writeAtomic(path: string, content: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, content);
  renameSync(tmp, path);
}

/** Writes the dataset under `dir` and updates dir/README.md's generated section. */
export function writeDataset(ds: Dataset, dir: string): void {
  for (const [rel, content] of ds.files) writeAtomic(join(dir, rel), content);
  const readme = join(dir, "README.md");
  writeAtomic(readme, updateReadme(existsSync(readme) ? readFileSync(readme, "utf8") : undefined, readmeSection(ds.manifest)));
}

export interface CheckResult {
  ok: boolean;
  seed: number;
  vocabSize: number;
  /** one line per file that is missing or differs from the regeneration */
  problems: string[];
  checked: number;
}

/** Regenerates with the seed and vocabulary size recorded in dir's manifest and compares every file.
 *  `regenerated` skips the regeneration when the caller already has it (it must match the manifest). */
export function checkDataset(dir: string, regenerated?: Dataset): CheckResult {
  const manifestFile = join(dir, MANIFEST_PATH);
  if (!existsSync(manifestFile)) throw new DataError(`${manifestFile} is missing: run \`lab data generate\` first`);
  let recorded: Manifest;
  try {
    recorded = JSON.parse(readFileSync(manifestFile, "utf8"));
  } catch (err) {
    throw new DataError(`${manifestFile} is not valid JSON: ${(err as Error).message}`);
  }
  if (recorded.format !== "inference-lab-data/1" || !Number.isInteger(recorded.seed) || !Number.isInteger(recorded.vocabSize)) {
    throw new DataError(`${manifestFile} is not an inference-lab data manifest`);
  }
  const fresh = regenerated?.manifest.seed === recorded.seed && regenerated.manifest.vocabSize === recorded.vocabSize
    ? regenerated : buildDataset(recorded.seed, recorded.vocabSize);
  const problems: string[] = [];
  for (const [rel, content] of fresh.files) {
    const path = join(dir, rel);
    if (!existsSync(path)) { problems.push(`${rel}: missing`); continue; }
    const onDisk = readFileSync(path);
    const want = sha256(content);
    const got = sha256(onDisk);
    if (got !== want) problems.push(`${rel}: sha256 ${got.slice(0, 12)}… on disk, regeneration gives ${want.slice(0, 12)}…`);
  }
  const readme = join(dir, "README.md");
  const section = readmeSection(fresh.manifest);
  if (!existsSync(readme) || !readFileSync(readme, "utf8").includes(section)) {
    problems.push("README.md: the generated section is missing or out of date");
  }
  return { ok: problems.length === 0, seed: recorded.seed, vocabSize: recorded.vocabSize, problems, checked: fresh.files.size + 1 };
}

// ---------------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------------

/** Documents of a corpus file (separated by one blank line). */
export function splitDocuments(text: string): string[] {
  return text.split("\n\n").map((d) => d.replace(/\n+$/, "")).filter((d) => d.length > 0);
}

function readData(dir: string, rel: string): string {
  const path = resolve(dir, rel);
  if (!existsSync(path)) throw new DataError(`${path} is missing: run \`lab data generate\``);
  return readFileSync(path, "utf8");
}

/** The documents of one task's train or validation split. */
export function loadCorpus(task: Task, split: Split, dir = defaultDataDir()): string[] {
  if (!TASKS.includes(task)) throw new DataError(`unknown task "${task}"; tasks are ${TASKS.join(", ")}`);
  if (!SPLITS.includes(split)) throw new DataError(`unknown split "${split}"; splits are ${SPLITS.join(", ")}`);
  return splitDocuments(readData(dir, corpusPath(task, split)));
}

/** The dialog documents (short chat exchanges without the system prompt; training only). */
export function loadDialog(dir = defaultDataDir()): string[] {
  return splitDocuments(readData(dir, DIALOG_PATH));
}

/** A held-out eval set: prose gives {text} items, the others {prompt, answer} items. */
export function loadEvalSet(name: "prose", dir?: string): ProseItem[];
export function loadEvalSet(name: "arithmetic" | "facts" | "code", dir?: string): EvalItem[];
export function loadEvalSet(name: "chat", dir?: string): ChatEvalItem[];
export function loadEvalSet(name: Exclude<EvalSetName, "prose">, dir?: string): EvalItem[];
export function loadEvalSet(name: EvalSetName, dir?: string): ProseItem[] | EvalItem[];
export function loadEvalSet(name: EvalSetName, dir = defaultDataDir()): ProseItem[] | EvalItem[] {
  if (!EVAL_SETS.includes(name)) throw new DataError(`unknown eval set "${name}"; sets are ${EVAL_SETS.join(", ")}`);
  const rel = evalPath(name);
  const lines = readData(dir, rel).split("\n").filter((l) => l.length > 0);
  return lines.map((line, i) => {
    let item: Record<string, unknown>;
    try {
      item = JSON.parse(line);
    } catch (err) {
      throw new DataError(`${rel} line ${i + 1}: not JSON (${(err as Error).message})`);
    }
    const fields = name === "prose" ? ["text"] : ["prompt", "answer"];
    for (const f of fields) {
      if (typeof item?.[f] !== "string") throw new DataError(`${rel} line ${i + 1}: "${f}" must be a string`);
    }
    return item as unknown as ProseItem | EvalItem;
  }) as ProseItem[] | EvalItem[];
}

/** data/tokenizer.json as an SpmTokenizer. */
export function loadTokenizer(dir = defaultDataDir()): SpmTokenizer {
  const path = resolve(dir, TOKENIZER_PATH);
  if (!existsSync(path)) throw new DataError(`${path} is missing: run \`lab data generate\``);
  return SpmTokenizer.load(path);
}
