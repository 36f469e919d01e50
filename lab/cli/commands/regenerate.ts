// `lab regenerate` (what `npm start` runs): every notebook, top to bottom, refreshing the committed
// outputs, notebooks/figures/ and data/results/, then a summary table with each notebook's headline.
import { mkdir, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { numberFlag, parseFlags, printJson, say, type Command } from "../command.ts";
import { DEFAULT_CELL_TIMEOUT_S, describeFailure, REPO_ROOT, runNotebooks, type NotebookRunResult } from "../../notebooks/index.ts";
import { notebookPaths, resultsTable } from "./notebooks.ts";

export const RESULTS_DIR = join(REPO_ROOT, "data", "results");

/**
 * data/results/<notebook>.summary.json: the notebook's status and headline. Deliberately no
 * timings or dates, so an unchanged result gives an unchanged file.
 */
export async function writeSummary(r: NotebookRunResult, dir = RESULTS_DIR): Promise<string> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, `${r.name}.summary.json`);
  const doc = { notebook: r.name, status: r.status, headline: r.headline ?? null };
  await writeFile(`${path}.tmp`, JSON.stringify(doc, null, 2) + "\n");
  await rename(`${path}.tmp`, path);
  return path;
}

export const regenerateCommand: Command = {
  name: "regenerate",
  summary: "Re-run every notebook (npm start): refresh outputs, figures, data/results, print a summary",
  help: `Usage: lab regenerate [NAME…] [--with-timings] [--timeout SECONDS] [--json]

What instructors run (\`npm start\`) to rebuild every result of the kit from scratch: each notebook
under notebooks/ runs headlessly in a fresh tslab kernel (see \`lab notebooks run\`), its outputs are
saved into the .ipynb, the figures it saves land in notebooks/figures/ and its tables in
data/results/. Then a table: notebook, status, seconds, headline.

The headline is the last line a notebook printed that starts with "Headline: " (in a cell:
\`lab.reportHeadline("Q4_K_M keeps 99% of accuracy at 28% of the size")\`). It is also written to
data/results/<notebook>.summary.json as { notebook, status, headline }.

Re-running unchanged notebooks gives byte-identical files (\`git status\` stays clean): committed
outputs hold no timings. Speed is measured only with --with-timings, which re-measures it and
overwrites the committed speed figures (notebooks/figures/quant-decode-speed.*) and notebook 02's
timing record (data/results/speculative-speed.json, with the figures drawn from it) on purpose;
every run that measures speed also writes data/results/timings/ (git-ignored). Progress lines,
with seconds, go to stderr.

Exit code 0 only if every notebook passed.

Options:
  --with-timings  measure speed and refresh the committed speed figures (sets LAB_TIMINGS=1 in the kernel)
  --timeout S     per-cell limit in seconds (default ${DEFAULT_CELL_TIMEOUT_S})
  --json          print [{ name, path, status, seconds, cells, executed, failedCell?, error?, headline? }]`,
  async run(args) {
    const { values, positionals } = parseFlags("regenerate", args, {
      json: { type: "boolean" }, timeout: { type: "string" }, "with-timings": { type: "boolean" },
    }, { min: 0, max: Infinity });
    const cellTimeoutS = numberFlag("regenerate", "timeout", values.timeout, DEFAULT_CELL_TIMEOUT_S, { min: 0.1, max: 86_400 });
    const paths = await notebookPaths("regenerate", positionals);
    const started = performance.now();
    // LAB_TIMINGS=0 otherwise, so a LAB_TIMINGS=1 left in the caller's environment cannot sneak timings in.
    const env = { LAB_TIMINGS: values["with-timings"] ? "1" : "0" };
    const results = await runNotebooks(paths, { cellTimeoutS, env, onProgress: (line) => say(line) });
    for (const r of results) await writeSummary(r);
    for (const r of results) if (r.status !== "passed") say(describeFailure(r));
    const total = (performance.now() - started) / 1000;
    if (values.json) printJson(results);
    else process.stdout.write(`${resultsTable(results)}\n\n${results.filter((r) => r.status === "passed").length}/${results.length} notebooks passed in ${total.toFixed(1)} s\n`);
    return results.every((r) => r.status === "passed") ? 0 : 1;
  },
};
