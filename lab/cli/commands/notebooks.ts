// `lab notebooks list` and `lab notebooks run [NAME…]`: the kit's notebooks, executed headlessly
// by the real tslab kernel (lab/notebooks/runner.ts), outputs written back into the .ipynb files.
// `lab notebooks screenshot NAME`: one notebook as a student sees it (lab/notebooks/browser.ts).
import { numberFlag, parseFlags, printJson, say, type Command } from "../command.ts";
import {
  allNotebooks, DEFAULT_CELL_TIMEOUT_S, describeFailure, listNotebooks, resolveNotebook, runNotebooks,
  type NotebookRunResult,
} from "../../notebooks/index.ts";
import { UsageError } from "../../errors.ts";
import { resolve } from "node:path";

/** NAMEs (or paths) to notebook files; none means every notebook under notebooks/. */
export async function notebookPaths(command: string, names: string[]): Promise<string[]> {
  if (names.length === 0) {
    const all = await allNotebooks();
    if (all.length === 0) throw new Error("no notebooks under notebooks/");
    return all;
  }
  const paths: string[] = [];
  for (const n of names) {
    try {
      paths.push(await resolveNotebook(n));
    } catch (err) {
      throw new UsageError(`lab ${command}: ${(err as Error).message}`);
    }
  }
  return paths;
}

/** The per-notebook result table shared by `notebooks run` and `regenerate`. */
export function resultsTable(results: NotebookRunResult[]): string {
  const rows = results.map((r) => [r.name, r.status, r.seconds.toFixed(1), r.headline ?? (r.status === "passed" ? "" : `cell ${(r.failedCell ?? -1) + 1}`)]);
  const head = ["notebook", "status", "seconds", "headline"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const fmt = (r: string[]) => r.map((c, i) => (i === 2 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join("  ").trimEnd();
  return [fmt(head), fmt(widths.map((w) => "-".repeat(w))), ...rows.map(fmt)].join("\n");
}

export const notebooksList: Command = {
  name: "notebooks list",
  summary: "List the notebooks: name, cells, last run status",
  help: `Usage: lab notebooks list [--json]

Lists every notebook under notebooks/ with its number of cells (code cells) and, if it was run on
this machine by \`lab notebooks run\` or \`lab regenerate\`, how its last run went (the record lives in
data/cache/notebook-runs.json, which git ignores).

Options:
  --json   print [{ name, path, cells, codeCells, lastRun?: { status, seconds, at, failedCell?, headline? } }]`,
  async run(args) {
    const { values } = parseFlags("notebooks list", args, { json: { type: "boolean" } });
    const list = await listNotebooks();
    if (values.json) {
      printJson(list);
      return 0;
    }
    if (list.length === 0) {
      say("no notebooks under notebooks/");
      return 0;
    }
    const width = Math.max(...list.map((n) => n.name.length));
    for (const n of list) {
      const last = n.lastRun
        ? `${n.lastRun.status}${n.lastRun.failedCell !== undefined ? ` at cell ${n.lastRun.failedCell + 1}` : ""}, ${n.lastRun.seconds.toFixed(1)} s, ${n.lastRun.at.slice(0, 16).replace("T", " ")} UTC`
        : "not run here yet";
      process.stdout.write(`${n.name.padEnd(width)}  ${String(n.cells).padStart(3)} cells (${n.codeCells} code)  ${last}\n`);
    }
    return 0;
  },
};

export const notebooksRun: Command = {
  name: "notebooks run",
  summary: "Run notebooks headlessly with the tslab kernel and save their outputs",
  help: `Usage: lab notebooks run [NAME…] [--timeout SECONDS] [--json]

Runs each notebook (all under notebooks/ if no NAME is given) top to bottom in a fresh tslab kernel,
without Jupyter or Python, and writes the outputs back into the .ipynb in a normalized form
(execution counts 1..n, volatile metadata dropped, sorted keys) so re-running an unchanged notebook
gives a byte-identical file. A notebook stops at its first failing cell; the others still run.
NAME is a notebook name (00-welcome), a unique prefix (00), or a path to an .ipynb file.

Progress goes to stderr, one line per cell. Exit code 0 only if every notebook passed; 1 otherwise,
with notebook, cell number (1-based) and error text for each failure.

Options:
  --timeout S   per-cell limit in seconds (default ${DEFAULT_CELL_TIMEOUT_S}); a hung cell's kernel is killed
  --json        print [{ name, path, status: "passed"|"failed"|"timeout", seconds, cells, executed,
                failedCell? (0-based index into cells), error?, headline? }]

Examples:
  lab notebooks run                 # every notebook
  lab notebooks run 00-welcome --timeout 60`,
  async run(args) {
    const { values, positionals } = parseFlags("notebooks run", args, {
      json: { type: "boolean" }, timeout: { type: "string" },
    }, { min: 0, max: Infinity });
    const cellTimeoutS = numberFlag("notebooks run", "timeout", values.timeout, DEFAULT_CELL_TIMEOUT_S, { min: 0.1, max: 86_400 });
    const paths = await notebookPaths("notebooks run", positionals);
    const results = await runNotebooks(paths, { cellTimeoutS, onProgress: (line) => say(line) });
    for (const r of results) say(r.status === "passed" ? `${r.name}: passed in ${r.seconds.toFixed(1)} s` : describeFailure(r));
    if (values.json) printJson(results);
    else say(resultsTable(results));
    return results.every((r) => r.status === "passed") ? 0 : 1;
  },
};

export const notebooksScreenshot: Command = {
  name: "notebooks screenshot",
  summary: "Screenshot a notebook as a student sees it in Jupyter (untrusted, headless Chromium)",
  help: `Usage: lab notebooks screenshot NAME [--out FILE] [--json]

Opens the notebook the way a student does after cloning: Jupyter Notebook serving a fresh copy of
the repository (your uncommitted edits included), so the notebook is untrusted, in headless Chromium
(the system one: \`sudo apt-get install chromium\` or LAB_CHROMIUM). Writes a full-page PNG of the
committed outputs and lists what a student would miss: a figure that is not a visible image (an
SVG-only figure output is blank when untrusted), a table that does not render, an error output.
The same checks run in test/browser.test.ts. Needs Jupyter Notebook with the tslab kernel
(\`lab doctor\` shows what is missing).

Exit code 0 if nothing is wrong, 1 if a problem was found (the screenshot is written either way).

Options:
  --out FILE   where the PNG goes (default screenshots/NAME.png, git-ignored); the page's console
               log is written beside it as NAME.console.log
  --json       print { notebook, problems: [{ notebook, cell?, what }], screenshot, consoleLog, seconds }`,
  async run(args) {
    const { values, positionals } = parseFlags("notebooks screenshot", args, {
      out: { type: "string" }, json: { type: "boolean" },
    }, { min: 1, max: 1 });
    const [path] = await notebookPaths("notebooks screenshot", positionals);
    if (values.out !== undefined && !values.out.endsWith(".png")) throw new UsageError("lab notebooks screenshot: --out must name a .png file");
    // Loaded only here: puppeteer-core is a development dependency, and no other command needs it.
    const browser = await import("../../notebooks/browser.ts").catch((err: Error) => {
      throw new Error(`lab notebooks screenshot needs puppeteer-core (a development dependency: run \`npm install\`): ${err.message}`);
    });
    say(`opening ${browser.notebookRel(path)} in Jupyter Notebook (fresh untrusted copy) with headless Chromium…`);
    const view = await browser.screenshotNotebook(path, values.out ? resolve(values.out) : undefined);
    if (values.json) printJson(view);
    else {
      for (const p of view.problems) say(browser.describeProblem(p));
      say(view.problems.length ? `${view.problems.length} problem(s) a student would see` : "nothing missing: every figure visible, tables rendered, no errors");
      process.stdout.write(`${view.screenshot}\n`);
    }
    return view.problems.length ? 1 : 0;
  },
};

export const notebookCommands: Command[] = [notebooksList, notebooksRun, notebooksScreenshot];
