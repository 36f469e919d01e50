// Running notebooks headlessly: one fresh tslab kernel per notebook, cells in order, outputs written
// back into the .ipynb (normalized), stop at the first failing cell, kill the kernel on a hung cell.
// Also: finding notebooks by name, the last-run record, and the headline convention.
//
// Headline convention: a notebook states its one-line result by printing a line that starts with
// "Headline: " (use `reportHeadline(text)` from lab/notebook.ts). The runner takes the last such line
// from the notebook's stdout; `lab regenerate` shows it and stores it in
// data/results/<notebook>.summary.json.
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rename, writeFile } from "node:fs/promises";
import { basename, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { CellTimeoutError, TslabKernel, type CellOutput } from "./kernel.ts";
import {
  cellSource, normalizeNotebook, NotebookFormatError, parseNotebook, readNotebook, writeNotebook, type Notebook,
} from "./ipynb.ts";
import { ensureNotebookTypes } from "./types.ts";

/** The repository root (this file is lab/notebooks/runner.ts). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const NOTEBOOKS_DIR = join(REPO_ROOT, "notebooks");
const RUN_RECORD = join(REPO_ROOT, "data", "cache", "notebook-runs.json");

export const DEFAULT_CELL_TIMEOUT_S = 600;
export const HEADLINE_PREFIX = "Headline: ";

// ---------------------------------------------------------------------------------------------
// Finding notebooks
// ---------------------------------------------------------------------------------------------

/** Notebook name as shown to people: file name without .ipynb. */
export function notebookName(path: string): string {
  return basename(path).replace(/\.ipynb$/, "");
}

/** All notebooks under notebooks/ (top level, hidden files skipped), sorted by name. */
export async function allNotebooks(dir = NOTEBOOKS_DIR): Promise<string[]> {
  if (!existsSync(dir)) return [];
  return (await readdir(dir)).filter((f) => f.endsWith(".ipynb") && !f.startsWith(".")).sort().map((f) => join(dir, f));
}

/**
 * Resolves what a user typed: a path to an .ipynb, or a name like "00-welcome" (or a unique prefix
 * such as "00") of a notebook under notebooks/. Throws with the list of choices if nothing matches.
 */
export async function resolveNotebook(nameOrPath: string, dir = NOTEBOOKS_DIR): Promise<string> {
  if (nameOrPath.endsWith(".ipynb")) {
    const p = resolve(nameOrPath);
    if (!existsSync(p)) throw new Error(`no such notebook: ${nameOrPath}`);
    return p;
  }
  const all = await allNotebooks(dir);
  const exact = all.find((p) => notebookName(p) === nameOrPath);
  if (exact) return exact;
  const prefixed = all.filter((p) => notebookName(p).startsWith(nameOrPath));
  if (prefixed.length === 1) return prefixed[0];
  const choices = all.map(notebookName).join(", ") || "(none)";
  throw new Error(prefixed.length > 1
    ? `"${nameOrPath}" matches several notebooks: ${prefixed.map(notebookName).join(", ")}`
    : `no notebook named "${nameOrPath}" under notebooks/; choices: ${choices}`);
}

// ---------------------------------------------------------------------------------------------
// Running one notebook
// ---------------------------------------------------------------------------------------------

export type NotebookStatus = "passed" | "failed" | "timeout";

export interface NotebookRunResult {
  name: string;
  /** Path relative to the repository root. */
  path: string;
  status: NotebookStatus;
  seconds: number;
  /** Number of cells in the notebook (all types). */
  cells: number;
  /** Code cells executed (including a failing one). */
  executed: number;
  /** 0-based index into the notebook's cells of the cell that failed or hung. */
  failedCell?: number;
  /** The error text: the cell's stderr/error output, or the kernel failure. */
  error?: string;
  /** The last "Headline: …" line the notebook printed, if any. */
  headline?: string;
  /** false when the .ipynb changed on disk during the run, so its outputs were not written back. */
  outputsSaved?: false;
}

export interface RunOptions {
  /** Per-cell time limit in seconds (default 600 = 10 min). */
  cellTimeoutS?: number;
  /** Called with one progress line per cell (the CLI prints them on stderr). */
  onProgress?: (line: string) => void;
  /** Write outputs back into the .ipynb (default true). */
  write?: boolean;
  /** Extra environment variables for the kernel. */
  env?: Record<string, string>;
}

/** Text a failing cell produced, for the report: error outputs first, else its stderr. */
function errorText(outputs: CellOutput[]): string {
  const parts: string[] = [];
  for (const o of outputs) {
    if (o.output_type === "error") parts.push(`${o.ename}: ${o.evalue}`);
  }
  if (parts.length === 0) {
    for (const o of outputs) if (o.output_type === "stream" && o.name === "stderr") parts.push(o.text);
  }
  // Stack frames inside node and tslab say nothing about the notebook: drop them.
  const text = parts.join("\n").split("\n")
    .filter((line) => !/^\s+at .*(\(node:|node:internal|[\\/]tslab[\\/]dist[\\/]|sigintHandlersWrap)/.test(line))
    .join("\n").replace(/\n{3,}/g, "\n\n").trim();
  return text || "the cell failed without printing an error";
}

/** The line of an error text that names the error ("Error: boom", "1:7 - Type … is not assignable"). */
export function errorHeadline(text: string): string {
  const lines = text.split("\n").map((l) => l.trim()).filter(Boolean);
  return lines.find((l) => /^([A-Z]\w*)?(Error|Exception)\b|^\d+:\d+ - /.test(l)) ?? lines[0] ?? "";
}

function headlineOf(nb: Notebook): string | undefined {
  let headline: string | undefined;
  for (const cell of nb.cells) {
    for (const o of cell.outputs ?? []) {
      if (o.output_type !== "stream" || o.name !== "stdout") continue;
      for (const line of o.text.split("\n")) if (line.startsWith(HEADLINE_PREFIX)) headline = line.slice(HEADLINE_PREFIX.length).trim();
    }
  }
  return headline;
}

export async function runNotebook(path: string, opts: RunOptions = {}): Promise<NotebookRunResult> {
  const started = performance.now();
  const name = notebookName(path);
  const timeoutS = opts.cellTimeoutS ?? DEFAULT_CELL_TIMEOUT_S;
  const say = opts.onProgress ?? (() => {});
  const original = await readFile(path, "utf8").catch((err) => {
    throw err.code === "ENOENT" ? new NotebookFormatError(path, "no such notebook") : err;
  });
  const nb = parseNotebook(path, original);
  const codeCells = nb.cells.map((c, i) => ({ c, i })).filter(({ c }) => c.cell_type === "code");
  const result: NotebookRunResult = {
    name, path: relative(REPO_ROOT, path), status: "passed", seconds: 0, cells: nb.cells.length, executed: 0,
  };
  // Start from a clean slate: no stale outputs survive a run.
  for (const { c } of codeCells) { c.outputs = []; c.execution_count = null; }

  let kernel: TslabKernel | undefined;
  try {
    // Only notebooks that import the lab need its declarations (regenerating them takes ~10 s).
    if (codeCells.some(({ c }) => cellSource(c).includes("notebook.cjs"))) {
      const types = await ensureNotebookTypes();
      if (types.regenerated) say(`[${name}] regenerated lab type declarations for cells (${types.seconds.toFixed(1)}s)`);
    }
    kernel = await TslabKernel.start({
      cwd: dirname(path),
      env: { LAB_NOTEBOOK: name, LAB_HEADLESS: "1", NO_COLOR: "1", FORCE_COLOR: "0", ...opts.env },
    });
    say(`[${name}] kernel started (pid ${kernel.pid})`);
    for (const { c, i } of codeCells) {
      const code = cellSource(c);
      if (code.trim() === "") continue; // like nbclient: empty cells are not executed
      const t0 = performance.now();
      result.executed++;
      try {
        const r = await kernel.execute(code, timeoutS * 1000);
        c.outputs = r.outputs;
        c.execution_count = r.executionCount ?? result.executed;
        const dt = (performance.now() - t0) / 1000;
        say(`[${name}] cell ${i + 1}/${nb.cells.length} ${r.status === "ok" ? "ok" : "FAILED"} ${dt.toFixed(2)}s`);
        if (r.status !== "ok") {
          result.status = "failed";
          result.failedCell = i;
          result.error = errorText(r.outputs);
          break;
        }
      } catch (err) {
        if (!(err instanceof CellTimeoutError)) throw err;
        c.execution_count = result.executed;
        c.outputs = [{ output_type: "error", ename: err.name, evalue: err.message, traceback: [] }];
        say(`[${name}] cell ${i + 1}/${nb.cells.length} TIMEOUT after ${timeoutS}s (kernel killed)`);
        result.status = "timeout";
        result.failedCell = i;
        result.error = err.message;
        break;
      }
    }
  } catch (err) {
    // The kernel would not start or died: report it against the cell being run, if any.
    result.status = "failed";
    result.error = (err as Error).message;
    const running = codeCells.filter(({ c }) => c.execution_count === null && cellSource(c).trim() !== "")[0];
    if (result.executed > 0 && running) {
      result.failedCell = running.i;
      running.c.execution_count = result.executed;
      running.c.outputs = [{ output_type: "error", ename: (err as Error).name, evalue: (err as Error).message, traceback: [] }];
    }
  } finally {
    await kernel?.shutdown();
  }
  result.seconds = Math.round((performance.now() - started) / 10) / 100;
  const headline = headlineOf(nb);
  if (headline !== undefined) result.headline = headline;
  if (opts.write !== false) {
    // Someone saved the notebook while it ran (e.g. from Jupyter): their edits win, our outputs go.
    if ((await readFile(path, "utf8").catch(() => undefined)) !== original) {
      result.outputsSaved = false;
      say(`[${name}] the notebook changed on disk during the run: outputs NOT saved (run it again)`);
    } else {
      await writeNotebook(path, normalizeNotebook(nb, kernel?.info.language_info));
    }
  }
  await recordRun(result);
  return result;
}

/** Runs notebooks one after another (each gets its own kernel); never stops early. */
export async function runNotebooks(paths: string[], opts: RunOptions = {}): Promise<NotebookRunResult[]> {
  const results: NotebookRunResult[] = [];
  for (const p of paths) results.push(await runNotebook(p, opts));
  return results;
}

/** One line per failure: notebook, cell, error. */
export function describeFailure(r: NotebookRunResult): string {
  const where = r.failedCell !== undefined ? `cell ${r.failedCell + 1}` : "kernel";
  const detail = (r.error ?? "").split("\n").map((l) => `    ${l}`).join("\n");
  return `${r.name}: ${r.status} at ${where}: ${errorHeadline(r.error ?? "")}\n${detail}`.trimEnd();
}

// ---------------------------------------------------------------------------------------------
// Last-run record (local, git-ignored: data/cache/notebook-runs.json)
// ---------------------------------------------------------------------------------------------

export interface RunRecord { status: NotebookStatus; seconds: number; at: string; failedCell?: number; headline?: string }

export async function readRunRecords(): Promise<Record<string, RunRecord>> {
  try {
    return JSON.parse(await readFile(RUN_RECORD, "utf8"));
  } catch {
    return {};
  }
}

async function recordRun(r: NotebookRunResult): Promise<void> {
  // Only the kit's own notebooks are recorded: not files outside the repository, not hidden scratch files.
  if (r.path.startsWith("..") || basename(r.path).startsWith(".")) return;
  const records = await readRunRecords();
  records[r.path] = { status: r.status, seconds: r.seconds, at: new Date().toISOString(), failedCell: r.failedCell, headline: r.headline };
  await mkdir(dirname(RUN_RECORD), { recursive: true });
  const tmp = `${RUN_RECORD}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(records, null, 2) + "\n");
  await rename(tmp, RUN_RECORD);
}

// ---------------------------------------------------------------------------------------------
// Listing
// ---------------------------------------------------------------------------------------------

export interface NotebookListing { name: string; path: string; cells: number; codeCells: number; lastRun?: RunRecord }

export async function listNotebooks(paths?: string[]): Promise<NotebookListing[]> {
  const records = await readRunRecords();
  const out: NotebookListing[] = [];
  for (const p of paths ?? await allNotebooks()) {
    const nb = await readNotebook(p);
    const rel = relative(REPO_ROOT, p);
    out.push({
      name: notebookName(p), path: rel, cells: nb.cells.length,
      codeCells: nb.cells.filter((c) => c.cell_type === "code").length,
      ...(records[rel] ? { lastRun: records[rel] } : {}),
    });
  }
  return out;
}
