// Notebooks as a student sees them: the Jupyter server students start, on a fresh copy of the
// repository (so every notebook is untrusted, as in a clone), looked at through headless Chromium.
//
// Why a browser: an .ipynb can be perfect JSON and still show a student nothing. Jupyter does not
// render SVG (or JavaScript) outputs of an untrusted notebook, and every freshly cloned notebook is
// untrusted, so a figure saved only as image/svg+xml is blank (or shows its raw text/plain) for every
// student. Only the front end knows what it draws; this module asks it.
//
// Pieces, in the order a session uses them:
//   copyRepository   tracked + not-ignored files into a temp folder (node_modules symlinked)
//   startJupyter     `python -m notebook` (or jupyterlab) on a free loopback port, empty trust database
//   launchChromium   the system Chromium through puppeteer-core (nothing is downloaded)
//   StudentSession   open a notebook, check it as opened, Run All, screenshot; problems name cells
//
// The checks compare what the file holds with what the page draws, output by output (see
// `alignOutputs`): every figure output must be a visible <img>/<svg>, every saved table a <table>
// with rows, no output may be an error, and the title (the first "# " heading) must render.
// Only the classic Notebook front end (Debian's Jupyter Notebook 6) has a driver here: see
// `classicDriver`. JupyterLab draws its outputs differently and is not driven yet.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, rmSync } from "node:fs";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { basename, delimiter, dirname, join, relative } from "node:path";
import { promisify } from "node:util";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { findChromium, findJupyter } from "../doctor.ts";
import { cellSource, readNotebook, type Notebook } from "./ipynb.ts";
import type { CellOutput } from "./kernel.ts";
import { HEADLINE_PREFIX, notebookName, REPO_ROOT } from "./runner.ts";
import { ensureNotebookTypes } from "./types.ts";

/** Screenshots and console logs of failed checks (git-ignored). */
export const SCREENSHOTS_DIR = join(REPO_ROOT, "screenshots");
export const FAILURES_DIR = join(SCREENSHOTS_DIR, "failures");

// Flags that work as root in a container with no network: without the background-networking ones
// Chromium keeps trying to reach Google's services and floods the closed network.
const CHROMIUM_FLAGS = [
  "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars",
];
const VIEWPORT = { width: 1280, height: 900 };

// ---------------------------------------------------------------------------------------------
// A fresh copy of the repository
// ---------------------------------------------------------------------------------------------

/**
 * Copies the repository as a clone would have it, plus the author's uncommitted edits: every tracked
 * file as it is in the working tree and every untracked file git does not ignore. node_modules is a
 * symlink (no reinstall). lab/.types (generated declarations, git-ignored) comes along so the
 * notebook's import cell need not regenerate them: `cp -a` keeps the mtimes its fingerprint checks.
 */
export async function copyRepository(dest: string, root = REPO_ROOT): Promise<void> {
  const git = await promisify(execFile)("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: root, maxBuffer: 64 << 20 })
    .catch((err: Error) => { throw new Error(`copying the repository as a clone would have it needs git and a git checkout (${root}): ${err.message.split("\n")[0]}`); });
  // Tracked files deleted in the working tree are listed but absent: a clone of this state lacks them too.
  const files = git.stdout.split("\0").filter((f) => f && existsSync(join(root, f)));
  if (existsSync(join(root, "lab", ".types"))) files.push(join("lab", ".types"));
  await mkdir(dest, { recursive: true });
  for (let i = 0; i < files.length; i += 400) {
    await promisify(execFile)("cp", ["-a", "--parents", ...files.slice(i, i + 400), dest], { cwd: root });
  }
  await symlink(join(root, "node_modules"), join(dest, "node_modules"), "dir");
}

// ---------------------------------------------------------------------------------------------
// The Jupyter server
// ---------------------------------------------------------------------------------------------

export type FrontEnd = "notebook" | "lab";

export interface JupyterServer {
  frontEnd: FrontEnd;
  /** http://127.0.0.1:PORT (no trailing slash). */
  base: string;
  token: string;
  /** The server's stdout+stderr so far (for failure messages). */
  log: string[];
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts the classic Notebook (`python -m notebook`) or JupyterLab serving `root`, on 127.0.0.1,
 * with a random token and an in-memory trust database: no notebook has ever been signed there, so
 * all are untrusted whatever this machine's own ~/.local/share/jupyter/nbsignatures.db says.
 * `root`'s node_modules/.bin goes first on PATH: the tslab kernelspec runs plain `tslab`.
 */
export async function startJupyter(root: string, python: string, frontEnd: FrontEnd = "notebook", timeoutMs = 60_000): Promise<JupyterServer> {
  const port = await freePort();
  const token = randomBytes(16).toString("hex");
  const scratch = await mkdtemp(join(tmpdir(), "lab-jupyter-"));
  const app = frontEnd === "lab" ? "ServerApp" : "NotebookApp";
  const args = ["-m", frontEnd === "lab" ? "jupyterlab" : "notebook", "--no-browser", "--ip=127.0.0.1", `--port=${port}`,
    `--${app}.port_retries=0`, `--${app}.token=${token}`, `--${app}.notebook_dir=${root}`, "--NotebookNotary.db_file=:memory:"];
  if (process.getuid?.() === 0) args.push("--allow-root");
  const env = {
    ...process.env,
    PATH: [join(root, "node_modules", ".bin"), process.env.PATH ?? ""].join(delimiter),
    // An empty config and runtime folder: the user's own Jupyter config (passwords, extensions) stays out.
    JUPYTER_CONFIG_DIR: join(scratch, "config"), JUPYTER_RUNTIME_DIR: join(scratch, "runtime"),
    PYDEVD_DISABLE_FILE_VALIDATION: "1",
  };
  const child: ChildProcess = spawn(python, args, { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] });
  const log: string[] = [];
  const keep = (chunk: Buffer) => log.push(...chunk.toString().split("\n").filter(Boolean));
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  // If this process ends without stop() (a crash, a test runner tearing a worker down), the server
  // and its kernels must not outlive it.
  const killOnExit = () => {
    child.kill("SIGTERM"); // the server then shuts its kernels down itself
    rmSync(scratch, { recursive: true, force: true });
  };
  process.once("exit", killOnExit);
  const exited = new Promise<number>((resolve) => child.once("exit", (code, signal) => {
    process.off("exit", killOnExit);
    resolve(code ?? (signal ? 128 : 1));
  }));
  const base = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      // The notebook server shuts its kernels down on SIGTERM; give it a moment, then insist.
      const t = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(t);
    }
    await rm(scratch, { recursive: true, force: true });
  };
  const deadline = Date.now() + timeoutMs;
  let exitCode: number | undefined;
  void exited.then((c) => { exitCode = c; });
  while (Date.now() < deadline && exitCode === undefined) {
    try {
      const r = await fetch(`${base}/api/status?token=${token}`, { signal: AbortSignal.timeout(2_000) });
      if (r.ok) return { frontEnd, base, token, log, stop };
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 250));
  }
  await stop();
  throw new Error(`Jupyter (${python} ${args.slice(0, 2).join(" ")}) ${exitCode !== undefined ? `exited with code ${exitCode}` : `did not answer on ${base} within ${timeoutMs / 1000} s`}:\n${log.slice(-15).join("\n")}`);
}

// ---------------------------------------------------------------------------------------------
// Chromium
// ---------------------------------------------------------------------------------------------

/** The system Chromium at `executablePath`, headless, with a new empty profile (`close` removes it). */
export async function launchChromium(executablePath: string): Promise<{ browser: Browser; close(): Promise<void> }> {
  const profile = await mkdtemp(join(tmpdir(), "lab-chromium-"));
  try {
    const browser = await puppeteer.launch({
      executablePath, headless: true, args: [...CHROMIUM_FLAGS, `--user-data-dir=${profile}`],
      defaultViewport: VIEWPORT, protocolTimeout: 120_000,
    });
    const close = async () => {
      await browser.close().catch(() => {});
      // Chromium's helper processes may still be writing into the profile for a moment.
      await rm(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 }).catch(() => {});
    };
    return { browser, close };
  } catch (err) {
    await rm(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 }).catch(() => {});
    throw new Error(`could not start Chromium (${executablePath}): ${(err as Error).message}`);
  }
}

// ---------------------------------------------------------------------------------------------
// What the file says each output should look like, and what the page drew
// ---------------------------------------------------------------------------------------------

/** How a front end can draw one output. */
export type OutputKind = "figure" | "html" | "text" | "markdown" | "latex" | "javascript" | "error" | "stdout" | "stderr" | "other";

const MIME_KIND: Record<string, OutputKind> = {
  "image/png": "figure", "image/jpeg": "figure", "image/gif": "figure", "image/svg+xml": "figure",
  "text/html": "html", "text/plain": "text", "text/markdown": "markdown", "text/latex": "latex",
  "application/javascript": "javascript",
};

/** One output as saved in the .ipynb (consecutive streams of one name merged, as front ends show them). */
export interface SavedOutput {
  /** Position among the cell's outputs after merging streams (0-based). */
  index: number;
  /** Every kind a front end could legitimately draw this output as. */
  kinds: OutputKind[];
  mimes: string[];
  isFigure: boolean;
  isTable: boolean;
  text: string;
}

/** One output area the page drew (the DOM, read by a front-end driver). */
export interface DrawnOutput {
  kind: OutputKind;
  /** Rendered size in CSS pixels of the <img>/<svg> (figures) or <table> (html); 0 when absent. */
  width: number;
  height: number;
  /** For an <img>: it decoded (complete and naturalWidth > 0). True for <svg>. */
  loaded: boolean;
  /** Table rows with at least one cell (html outputs). */
  tableRows: number;
  /** The first 300 characters of its text. */
  text: string;
}

export interface DrawnCell { type: string; outputs: DrawnOutput[]; headings: string[]; executed: boolean | null }

function joined(v: string | string[] | undefined): string {
  return Array.isArray(v) ? v.join("") : v ?? "";
}

/** A cell's outputs as the front end should show them. */
export function savedOutputs(outputs: CellOutput[]): SavedOutput[] {
  const out: SavedOutput[] = [];
  for (const o of outputs as any[]) {
    if (o.output_type === "stream") {
      const kind: OutputKind = o.name === "stderr" ? "stderr" : "stdout";
      const prev = out[out.length - 1];
      if (prev?.kinds[0] === kind) prev.text += joined(o.text);
      else out.push({ index: out.length, kinds: [kind], mimes: [], isFigure: false, isTable: false, text: joined(o.text) });
    } else if (o.output_type === "error") {
      out.push({ index: out.length, kinds: ["error"], mimes: [], isFigure: false, isTable: false, text: `${o.ename}: ${o.evalue}` });
    } else {
      const mimes = Object.keys(o.data ?? {});
      const kinds = [...new Set(mimes.map((m) => MIME_KIND[m] ?? "other"))];
      const html = joined(o.data?.["text/html"]);
      out.push({ index: out.length, kinds, mimes, isFigure: kinds.includes("figure"), isTable: /<table[\s>]/i.test(html),
        text: joined(o.data?.["text/plain"]) || html.slice(0, 300) });
    }
  }
  return out;
}

/** A problem a student would see, located. `cell` is the 0-based index into the notebook's cells. */
export interface Problem { notebook: string; cell?: number; what: string }

export function describeProblem(p: Problem): string {
  return `${p.notebook}${p.cell !== undefined ? `, cell index ${p.cell}` : ""}: ${p.what}`;
}

/**
 * Matches a cell's saved outputs with the drawn ones, in order. A front end draws nothing at all
 * for an output it refuses (the classic notebook skips an untrusted SVG-only output), so a saved
 * output whose kinds do not include the next drawn one's kind is taken as not drawn, and the next
 * saved output is tried against the same drawn one.
 */
export function alignOutputs(saved: SavedOutput[], drawn: DrawnOutput[]): Array<DrawnOutput | undefined> {
  const matched: Array<DrawnOutput | undefined> = [];
  let next = 0;
  for (const s of saved) {
    const d = drawn[next];
    if (d && s.kinds.includes(d.kind)) {
      matched.push(d);
      next++;
    } else matched.push(undefined);
  }
  return matched;
}

/** Everything wrong with one cell as drawn, given what the file (or the kernel) saved in it. */
export function cellProblems(notebook: string, cell: number, saved: SavedOutput[], drawn: DrawnOutput[]): Problem[] {
  const problems: Problem[] = [];
  const at = (what: string) => problems.push({ notebook, cell, what });
  const matched = alignOutputs(saved, drawn);
  saved.forEach((s, i) => {
    const d = matched[i];
    const which = `output ${s.index} (${s.mimes.join(", ") || s.kinds[0]})`;
    if (s.isFigure) {
      const hint = s.mimes.includes("image/png") ? "" : ": it has no image/png, and an untrusted notebook does not render SVG";
      if (!d) at(`figure ${which} is not shown at all${hint}`);
      else if (d.kind !== "figure") at(`figure ${which} is shown as raw ${d.kind === "text" ? "text/plain" : d.kind} (${JSON.stringify(d.text.slice(0, 80))})${hint}`);
      else if (!(d.width > 0 && d.height > 0) || !d.loaded) at(`figure ${which} is drawn but not visible (${d.width}×${d.height} px${d.loaded ? "" : ", image did not load"})`);
    } else if (s.isTable) {
      if (!d) at(`table ${which} is not shown`);
      else if (d.kind !== "html" || d.tableRows === 0 || !(d.width > 0 && d.height > 0)) at(`table ${which} does not render as a table (${d.kind}, ${d.tableRows} rows, ${d.width}×${d.height} px)`);
    } else if (!d && s.kinds[0] !== "error" && s.kinds[0] !== "stderr") {
      at(`${which} is not shown`);
    }
  });
  // tslab reports a cell's compile and runtime errors as stderr text, not as an error output:
  // both are red boxes to a student.
  for (const d of drawn) {
    if (d.kind === "error" || d.kind === "stderr") at(`${d.kind === "error" ? "an error output" : "error text (stderr)"} is shown: ${JSON.stringify(d.text.slice(0, 200))}`);
  }
  return problems;
}

/** The first "# " heading of the first markdown cell: the notebook's title. */
export function notebookTitle(nb: Notebook): { cell: number; title: string } | undefined {
  const cell = nb.cells.findIndex((c) => c.cell_type === "markdown");
  if (cell < 0) return undefined;
  const line = cellSource(nb.cells[cell]).split("\n").find((l) => /^#\s+\S/.test(l));
  return line ? { cell, title: line.replace(/^#\s+/, "").replace(/[*_`]/g, "").trim() } : undefined;
}

// ---------------------------------------------------------------------------------------------
// The classic Notebook front end (Jupyter Notebook 6)
// ---------------------------------------------------------------------------------------------

/** What one front end's page can tell and do. Functions run in Node and drive `page`. */
interface Driver {
  url(server: JupyterServer, rel: string): string;
  /** Resolves once the notebook's cells are drawn. */
  waitLoaded(page: Page, timeoutMs: number): Promise<void>;
  trusted(page: Page): Promise<boolean>;
  cells(page: Page): Promise<DrawnCell[]>;
  /** The cells' outputs as the page holds them now (after a run: what the kernel sent). */
  outputsNow(page: Page): Promise<CellOutput[][]>;
  runAll(page: Page, timeoutMs: number): Promise<void>;
  /** Lets the page grow to its content so a full-page screenshot shows every cell. */
  unroll(page: Page): Promise<void>;
  /** Shuts the notebook's kernel down (the page starts one on open). */
  closeKernel(page: Page): Promise<void>;
}

const classicDriver: Driver = {
  url: (server, rel) => `${server.base}/notebooks/${rel.split("/").map(encodeURIComponent).join("/")}?token=${server.token}`,

  async waitLoaded(page, timeoutMs) {
    await page.waitForFunction(() => (window as any).Jupyter?.notebook?._fully_loaded === true, { timeout: timeoutMs, polling: 100 });
    // Images, and MathJax's "Loading…" box, finish after the notebook itself has loaded.
    await page.evaluate(() => Promise.all([...document.images].map((img) => img.complete ? null : new Promise((r) => { img.onload = img.onerror = r; }))));
    await page.waitForFunction(() => {
      const box = document.querySelector("#MathJax_Message") as HTMLElement | null;
      return !box || box.style.display === "none" || box.offsetHeight === 0;
    }, { timeout: 10_000, polling: 100 }).catch(() => {}); // a slow MathJax only leaves a box in screenshots
  },

  trusted: (page) => page.evaluate(() => (window as any).Jupyter.notebook.trusted === true),

  cells: (page) => page.evaluate(() => {
    const size = (el: Element | null) => {
      const r = el?.getBoundingClientRect();
      return { width: Math.round(r?.width ?? 0), height: Math.round(r?.height ?? 0) };
    };
    const kindOf = (sub: Element): string => {
      const c = sub.classList;
      if (c.contains("output_error")) return "error";
      if (c.contains("output_stream")) return c.contains("output_stderr") ? "stderr" : "stdout";
      if (c.contains("output_png") || c.contains("output_jpeg") || c.contains("output_gif") || c.contains("output_svg")) return "figure";
      if (c.contains("output_html")) return "html";
      if (c.contains("output_markdown")) return "markdown";
      if (c.contains("output_latex")) return "latex";
      if (c.contains("output_javascript")) return "javascript";
      if (c.contains("output_text")) return "text";
      return "other";
    };
    return (window as any).Jupyter.notebook.get_cells().map((cell: any) => {
      const el: HTMLElement = cell.element[0];
      const outputs = [...el.querySelectorAll(".output_area > .output_subarea")].map((sub) => {
        const kind = kindOf(sub);
        const img = sub.querySelector("img, svg");
        const table = sub.querySelector("table");
        const drawnAs = kind === "figure" ? img : kind === "html" ? table : null;
        return {
          kind, ...size(drawnAs),
          loaded: img instanceof HTMLImageElement ? img.complete && img.naturalWidth > 0 : img !== null,
          tableRows: table ? [...table.querySelectorAll("tr")].filter((tr) => tr.querySelector("td, th")).length : 0,
          text: (sub.textContent ?? "").slice(0, 300),
        };
      });
      const headings = [...el.querySelectorAll(".text_cell_render h1")]
        .filter((h) => size(h).width > 0 && size(h).height > 0)
        .map((h) => (h.textContent ?? "").replace(/¶$/, "").trim());
      const executed = cell.cell_type === "code" ? typeof cell.input_prompt_number === "number" : null;
      return { type: cell.cell_type, outputs, headings, executed };
    });
  }),

  outputsNow: (page) => page.evaluate(() => (window as any).Jupyter.notebook.get_cells().map((c: any) => c.cell_type === "code" ? c.toJSON().outputs : [])),

  async runAll(page, timeoutMs) {
    // The kernel the page started must be up before the menu is used, as a student would wait for it.
    await page.waitForFunction(() => {
      const nb = (window as any).Jupyter.notebook;
      return nb.kernel?.is_connected?.() && document.querySelector("#kernel_indicator_icon.kernel_idle_icon");
    }, { timeout: 60_000, polling: 200 });
    await page.click("#celllink"); // the Cell menu
    await page.click("#run_all_cells");
    // Done: no cell waits or runs ("*"), and the kernel has been idle for a second (a cell's outputs
    // arrive before the idle status). A cell after an error is aborted and keeps no number.
    await page.waitForFunction(() => {
      const w = window as any;
      const busy = w.Jupyter.notebook.get_cells().some((c: any) => c.cell_type === "code" && c.input_prompt_number === "*");
      const idle = !busy && document.querySelector("#kernel_indicator_icon.kernel_idle_icon") !== null;
      if (!idle) w.__labIdleSince = undefined;
      else w.__labIdleSince ??= Date.now();
      return idle && Date.now() - w.__labIdleSince > 1_000;
    }, { timeout: timeoutMs, polling: 250 });
  },

  async unroll(page) {
    await page.addStyleTag({ content: "html, body, #site { height: auto !important; overflow: visible !important; } #header { position: static !important; }" });
  },

  async closeKernel(page) {
    await page.evaluate(() => new Promise<void>((resolve) => {
      const session = (window as any).Jupyter.notebook.session;
      if (!session?.id) return resolve();
      session.delete(() => resolve(), () => resolve());
    })).catch(() => {});
  },
};

// ---------------------------------------------------------------------------------------------
// A session: server + browser + the checks
// ---------------------------------------------------------------------------------------------

export interface NotebookView {
  notebook: string;
  problems: Problem[];
  /** Written when there are problems (or when asked for): a full-page PNG and the console log. */
  screenshot?: string;
  consoleLog?: string;
  /** What the page showed: visible figures and rendered tables, over all cells (the checks' coverage). */
  seen: { figures: number; tables: number };
  seconds: number;
}

/** Visible figures and rendered tables on the page. */
export function countSeen(cells: DrawnCell[]): NotebookView["seen"] {
  const outputs = cells.flatMap((c) => c.outputs);
  return {
    figures: outputs.filter((o) => o.kind === "figure" && o.width > 0 && o.height > 0 && o.loaded).length,
    tables: outputs.filter((o) => o.kind === "html" && o.tableRows > 0 && o.width > 0 && o.height > 0).length,
  };
}

export interface SessionOptions {
  /** Chromium to drive; default $LAB_CHROMIUM / the doctor's probe. */
  chromium?: string;
  /** Python with Jupyter; default the doctor's probe. */
  python?: string;
  /** Where failure screenshots go (default screenshots/failures/). */
  failuresDir?: string;
}

/** What a session needs (Jupyter Notebook with the tslab kernel, a Chromium), and what is missing. */
async function probeSession(env = process.env): Promise<{ python?: string; chromium?: string; missing?: string }> {
  const [jupyter, chromium] = await Promise.all([findJupyter(env), findChromium(env)]);
  const missing: string[] = [];
  if (!jupyter?.notebook) missing.push(`no Python with Jupyter Notebook${env.LAB_PYTHON ? ` (LAB_PYTHON=${env.LAB_PYTHON})` : ""} (\`sudo apt-get install jupyter-notebook\`)`);
  else if (!jupyter.kernels.includes("tslab")) missing.push(`the tslab kernel is not registered with ${jupyter.python}'s Jupyter (\`npx lab jupyter\` or \`npx tslab install --python=${jupyter.python}\`)`);
  if (!chromium) missing.push("no Chromium (`sudo apt-get install chromium`, or set LAB_CHROMIUM)");
  return { python: jupyter?.python, chromium: chromium?.path, ...(missing.length ? { missing: missing.join("; ") } : {}) };
}

/** Why a session cannot start on this machine, or undefined if it can. */
export async function browserSessionUnavailable(env = process.env): Promise<string | undefined> {
  return (await probeSession(env)).missing;
}

// The repository copies of sessions not closed yet: removed when the process exits anyway.
const liveCopies = new Set<string>();
process.on("exit", () => {
  for (const root of liveCopies) rmSync(root, { recursive: true, force: true });
});

export class StudentSession {
  private constructor(
    /** The fresh copy of the repository the server serves. */
    readonly root: string,
    readonly server: JupyterServer,
    readonly browser: Browser,
    private readonly closeBrowser: () => Promise<void>,
    private readonly failuresDir: string,
    private readonly driver: Driver,
  ) {}

  /** Copies the repository, starts Jupyter Notebook on it and launches Chromium. */
  static async open(opts: SessionOptions = {}): Promise<StudentSession> {
    const env = { ...process.env, ...(opts.python ? { LAB_PYTHON: opts.python } : {}), ...(opts.chromium ? { LAB_CHROMIUM: opts.chromium } : {}) };
    const { python, chromium, missing } = await probeSession(env);
    if (missing || !python || !chromium) throw new Error(`a browser session cannot start here: ${missing}`);
    // What `lab jupyter` does before it starts Jupyter: without these declarations the first cell
    // that uses `lab.` fails to type-check in a fresh kernel.
    await ensureNotebookTypes();
    const root = await mkdtemp(join(tmpdir(), "lab-student-"));
    liveCopies.add(root);
    try {
      await copyRepository(root);
      const server = await startJupyter(root, python, "notebook");
      try {
        const { browser, close } = await launchChromium(chromium);
        return new StudentSession(root, server, browser, close, opts.failuresDir ?? FAILURES_DIR, classicDriver);
      } catch (err) {
        await server.stop();
        throw err;
      }
    } catch (err) {
      await rm(root, { recursive: true, force: true });
      liveCopies.delete(root);
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.closeBrowser();
    await this.server.stop();
    await rm(this.root, { recursive: true, force: true });
    liveCopies.delete(this.root);
  }

  /** Writes a notebook into the session's copy (e.g. a doctored one for testing the checks). */
  async addNotebook(rel: string, nb: Notebook): Promise<void> {
    await mkdir(dirname(join(this.root, rel)), { recursive: true });
    await writeFile(join(this.root, rel), JSON.stringify(nb, null, 1) + "\n");
  }

  /** Opens `rel` (relative to the repository, e.g. notebooks/00-welcome.ipynb) in a new tab. */
  private async openPage(rel: string, opts: { kernel: boolean }): Promise<{ page: Page; consoleLines: string[] }> {
    const page = await this.browser.newPage();
    if (!opts.kernel) {
      // Looking at saved outputs needs no kernel, and starting one (a tslab process type-checking its
      // way up) costs seconds of CPU per notebook: the page's request for a session is refused.
      await page.setRequestInterception(true);
      page.on("request", (r) => {
        if (r.method() === "POST" && new URL(r.url()).pathname.endsWith("/api/sessions")) void r.abort("blockedbyclient");
        else void r.continue();
      });
    }
    // tsx (esbuild, keepNames) wraps named functions in a __name(fn, "name") helper, and the
    // functions given to page.evaluate are sent as source text: the page needs that helper too.
    await page.evaluateOnNewDocument("globalThis.__name = (fn) => fn;");
    const consoleLines: string[] = [];
    page.on("console", (m) => consoleLines.push(`[${m.type()}] ${m.text()}`));
    page.on("pageerror", (e) => consoleLines.push(`[pageerror] ${(e as Error).message ?? String(e)}`));
    page.on("requestfailed", (r) => consoleLines.push(`[requestfailed] ${r.url()} ${r.failure()?.errorText ?? ""}`));
    await page.goto(this.driver.url(this.server, rel), { waitUntil: "load", timeout: 60_000 });
    await this.driver.waitLoaded(page, 60_000);
    return { page, consoleLines };
  }

  /** A full-page PNG of `page` and its console log under `dir`, named after the notebook and `tag`. */
  private async keepEvidence(page: Page, consoleLines: string[], file: string): Promise<{ screenshot: string; consoleLog: string }> {
    await mkdir(dirname(file), { recursive: true });
    await this.driver.unroll(page);
    // Let the unrolled layout settle, then make the viewport as tall as the notebook: a full-page
    // capture of a page whose height Jupyter manages can otherwise come out one viewport high.
    await page.evaluate(() => new Promise<void>((r) => requestAnimationFrame(() => requestAnimationFrame(() => r()))));
    const height = await page.evaluate(() => Math.max(document.documentElement.scrollHeight, document.body.scrollHeight,
      (document.querySelector("#notebook") as HTMLElement | null)?.scrollHeight ?? 0));
    const viewport = page.viewport();
    if (viewport && height > viewport.height) await page.setViewport({ ...viewport, height: Math.min(height, 16_000) });
    await page.screenshot({ path: file as `${string}.png`, fullPage: true });
    const consoleLog = file.replace(/\.png$/, "") + ".console.log";
    await writeFile(consoleLog, consoleLines.join("\n") + "\n" + `--- Jupyter server log (last 40 lines)\n${this.server.log.slice(-40).join("\n")}\n`);
    return { screenshot: file, consoleLog };
  }

  private async finish(rel: string, tag: string, page: Page, consoleLines: string[], problems: Problem[], seen: NotebookView["seen"], t0: number, shot?: string): Promise<NotebookView> {
    const name = notebookName(rel);
    const view: NotebookView = { notebook: name, problems, seen, seconds: 0 };
    try {
      const file = shot ?? (problems.length ? join(this.failuresDir, `${name}-${tag}.png`) : undefined);
      if (file) Object.assign(view, await this.keepEvidence(page, consoleLines, file));
    } finally {
      await this.driver.closeKernel(page);
      await page.close().catch(() => {});
    }
    view.seconds = (performance.now() - t0) / 1000;
    return view;
  }

  /**
   * The notebook as a student first opens it (the committed outputs, untrusted): the title renders,
   * every figure output is a visible image, every saved table is a table, no error output, nothing
   * the file holds is missing from the page. `screenshot` forces a full-page PNG at that path.
   */
  async check(rel: string, opts: { screenshot?: string } = {}): Promise<NotebookView> {
    const t0 = performance.now();
    const name = notebookName(rel);
    const nb = await readNotebook(join(this.root, rel));
    const { page, consoleLines } = await this.openPage(rel, { kernel: false });
    const problems: Problem[] = [];
    let seen = { figures: 0, tables: 0 };
    try {
      if (await this.driver.trusted(page)) problems.push({ notebook: name, what: "the notebook is trusted in this fresh copy, so the check would not see what a student sees" });
      const drawn = await this.driver.cells(page);
      seen = countSeen(drawn);
      problems.push(...titleProblems(name, nb, drawn));
      nb.cells.forEach((cell, i) => {
        if (cell.cell_type === "code") problems.push(...cellProblems(name, i, savedOutputs(cell.outputs ?? []), drawn[i]?.outputs ?? []));
      });
    } catch (err) {
      problems.push({ notebook: name, what: `the page could not be checked: ${(err as Error).message}` });
    }
    return this.finish(rel, "opened", page, consoleLines, problems, seen, t0, opts.screenshot);
  }

  /**
   * Cell > Run All in the page, then wait for the kernel to go idle: every code cell ran, no error
   * output, every figure the kernel sent is visible, and a "Headline: …" line was printed.
   */
  async runAll(rel: string, opts: { timeoutMs?: number } = {}): Promise<NotebookView> {
    const t0 = performance.now();
    const name = notebookName(rel);
    const { page, consoleLines } = await this.openPage(rel, { kernel: true });
    const problems: Problem[] = [];
    let seen = { figures: 0, tables: 0 };
    try {
      await this.driver.runAll(page, opts.timeoutMs ?? 120_000);
      const [drawn, outputs] = [await this.driver.cells(page), await this.driver.outputsNow(page)];
      seen = countSeen(drawn);
      let headline = false;
      drawn.forEach((cell, i) => {
        if (cell.type !== "code") return;
        if (!cell.executed) problems.push({ notebook: name, cell: i, what: "did not run (aborted after an earlier error?)" });
        const saved = savedOutputs(outputs[i] ?? []);
        headline ||= saved.some((s) => s.kinds[0] === "stdout" && s.text.includes(HEADLINE_PREFIX));
        problems.push(...cellProblems(name, i, saved, cell.outputs));
        for (const s of saved) if (s.kinds[0] === "error") problems.push({ notebook: name, cell: i, what: `the kernel sent an error: ${s.text.slice(0, 200)}` });
      });
      if (!headline) problems.push({ notebook: name, what: `no "${HEADLINE_PREFIX}…" line was printed` });
    } catch (err) {
      problems.push({ notebook: name, what: `Run All did not finish: ${(err as Error).message.split("\n")[0]}` });
    }
    return this.finish(rel, "run-all", page, consoleLines, problems, seen, t0);
  }
}

function titleProblems(name: string, nb: Notebook, drawn: DrawnCell[]): Problem[] {
  const title = notebookTitle(nb);
  if (!title) return [{ notebook: name, what: 'has no title: its first markdown cell needs a "# " heading' }];
  const shown = drawn[title.cell]?.headings ?? [];
  return shown.includes(title.title) ? [] : [{ notebook: name, cell: title.cell, what: `the title ${JSON.stringify(title.title)} does not render (visible h1: ${JSON.stringify(shown)})` }];
}

/** notebooks/NAME.ipynb relative to the repository root, for a path under it. */
export function notebookRel(path: string): string {
  const rel = relative(REPO_ROOT, path).split("\\").join("/");
  if (rel.startsWith("..")) throw new Error(`${path} is not inside the repository (${REPO_ROOT})`);
  return rel;
}

/** `lab notebooks screenshot`: one notebook as a student opens it, as a full-page PNG at `out`. */
export async function screenshotNotebook(path: string, out = join(SCREENSHOTS_DIR, `${basename(path, ".ipynb")}.png`)): Promise<NotebookView> {
  const session = await StudentSession.open();
  try {
    return await session.check(notebookRel(path), { screenshot: out });
  } finally {
    await session.close();
  }
}
