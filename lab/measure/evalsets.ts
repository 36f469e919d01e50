// The evaluation sets under data/eval/ (written by lab/data): prose.jsonl holds {text} lines for
// perplexity and KL; every other NAME.jsonl holds {prompt, answer} lines, one task family each.
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { TaskItem } from "./quality.ts";
import { TASKS, loadCorpus } from "../data/index.ts";
import type { EngineTokenizer } from "../engine/engine.ts";

export const EVAL_DIR = fileURLToPath(new URL("../../data/eval/", import.meta.url));

/** Parses JSONL; a bad line is an error naming the file and line. */
export async function readJsonl(path: string): Promise<unknown[]> {
  const text = await readFile(path, "utf8");
  const out: unknown[] = [];
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    try {
      out.push(JSON.parse(line));
    } catch (err) {
      throw new Error(`${path}:${i + 1}: not JSON (${(err as Error).message})`);
    }
  });
  return out;
}

/** Texts of prose.jsonl (empty when the file does not exist). */
export async function loadProse(dir = EVAL_DIR, limit = Infinity): Promise<string[]> {
  const path = join(dir, "prose.jsonl");
  const rows = await readJsonl(path).catch((err) => ((err as NodeJS.ErrnoException).code === "ENOENT" ? [] : Promise.reject(err)));
  return rows.slice(0, limit).map((r, i) => {
    const text = (r as { text?: unknown }).text;
    if (typeof text !== "string") throw new Error(`${path}: line ${i + 1} has no "text" string`);
    return text;
  });
}

/** Every {prompt, answer} task set in dir, by name (file name without .jsonl). */
export async function loadTaskSets(dir = EVAL_DIR, limit = Infinity): Promise<Map<string, TaskItem[]>> {
  const sets = new Map<string, TaskItem[]>();
  const names = (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith(".jsonl") && f !== "prose.jsonl").sort();
  for (const file of names) {
    const rows = await readJsonl(join(dir, file));
    const items: TaskItem[] = [];
    for (const r of rows.slice(0, limit)) {
      const { prompt, answer } = r as { prompt?: unknown; answer?: unknown };
      if (typeof prompt !== "string" || typeof answer !== "string") throw new Error(`${file}: every line needs "prompt" and "answer" strings`);
      items.push({ prompt, answer });
    }
    sets.set(file.replace(/\.jsonl$/, ""), items);
  }
  return sets;
}

/** The held-out validation text of every task (data/corpus/*.val.txt), each document with BOS, in
 *  task order: the same stream the trainer validates on. */
export function validationStream(tokenizer: EngineTokenizer, dataDir?: string): Int32Array {
  return Int32Array.from(TASKS.flatMap((task) => loadCorpus(task, "val", dataDir).flatMap((d) => tokenizer.encode(d, { bos: true }))));
}
