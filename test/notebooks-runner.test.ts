// The headless notebook runner against the real tslab kernel, on small fixture notebooks in a temp
// folder (plain TypeScript cells, no lab import, so no declaration generation): a failing cell is
// reported with notebook, cell and error and exits 1; a hung cell times out and its kernel is gone;
// outputs are normalized so a second run gives a byte-identical file. Plus the .ipynb format unit
// tests, which need no kernel.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  NotebookFormatError, normalizeNotebook, readNotebook, runNotebook, serializeNotebook, splitLines, type Notebook,
} from "../lab/notebooks/index.ts";

const dir = mkdtempSync(join(tmpdir(), "lab-nb-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const BIN = join(import.meta.dirname, "..", "lab", "cli", "bin.mjs");
// Each test starts one or two real kernels (~5 s each on an idle 2-core machine, far more when the
// whole suite runs in parallel): generous limits, so a busy CI machine is not a failure.
const KERNEL_TEST_MS = 240_000;

function notebook(cells: [kind: "code" | "markdown", source: string, extra?: object][]): Notebook {
  return {
    nbformat: 4, nbformat_minor: 5, metadata: {},
    cells: cells.map(([cell_type, source, extra]) => ({
      cell_type, source, metadata: {}, ...(cell_type === "code" ? { outputs: [], execution_count: null } : {}), ...extra,
    })),
  };
}

function writeFixture(name: string, nb: Notebook): string {
  const path = join(dir, `${name}.ipynb`);
  writeFileSync(path, JSON.stringify(nb));
  return path;
}

function labCli(args: string[], timeoutMs = 120_000) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", timeout: timeoutMs });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Running (a zombie — killed, waiting for its parent to reap it — counts as gone). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return true; // no /proc (macOS): signal 0 said it exists
  }
}

describe("lab notebooks run (real tslab kernel)", () => {
  it("stops at a failing cell and reports notebook, cell and error text with exit code 1", () => {
    const path = writeFixture("fails", notebook([
      ["markdown", "# A notebook that fails"],
      ["code", 'console.log("before");'],
      ["code", 'throw new Error("boom-4711");'],
      ["code", 'console.log("never runs");', { outputs: [{ output_type: "stream", name: "stdout", text: "stale\n" }], execution_count: 9 }],
    ]));
    const r = labCli(["notebooks", "run", path, "--json"]);
    expect(r.code).toBe(1);
    const [result] = JSON.parse(r.stdout);
    expect(result).toMatchObject({ name: "fails", status: "failed", failedCell: 2, executed: 2 });
    expect(result.error).toContain("boom-4711");
    expect(r.stderr).toMatch(/fails: failed at cell 3: .*boom-4711/);
    expect(r.stderr).toContain("[fails] cell 3/4 FAILED");
    // Outputs were written back; the cell after the failure did not run and lost its stale output.
    const nb = JSON.parse(readFileSync(path, "utf8"));
    expect(nb.cells[1].outputs[0].text).toEqual(["before\n"]);
    expect(nb.cells[2].execution_count).toBe(2);
    expect(nb.cells[3]).toMatchObject({ execution_count: null, outputs: [] });
  }, KERNEL_TEST_MS);

  it("times out a hung cell, kills its kernel, and keeps going with the next notebook", async () => {
    const hung = writeFixture("hangs", notebook([["code", "const t0 = Date.now(); while (true) {}"], ["code", "1"]]));
    const fine = writeFixture("after-hang", notebook([["code", 'console.log("fine")']]));
    const lines: string[] = [];
    const r = await runNotebook(hung, { cellTimeoutS: 2, onProgress: (l) => lines.push(l) });
    expect(r).toMatchObject({ status: "timeout", failedCell: 0 });
    expect(r.error).toMatch(/timed out after 2 s/);
    const pid = Number(/kernel started \(pid (\d+)\)/.exec(lines.join("\n"))?.[1]);
    expect(pid).toBeGreaterThan(0);
    expect(isAlive(pid)).toBe(false);
    const nb = JSON.parse(readFileSync(hung, "utf8"));
    expect(nb.cells[0].outputs[0]).toMatchObject({ output_type: "error", ename: "CellTimeoutError" });
    expect(lines.some((l) => l.includes("TIMEOUT"))).toBe(true);
    expect((await runNotebook(fine, {})).status).toBe("passed");
  }, KERNEL_TEST_MS);

  it("normalizes outputs: running twice gives a byte-identical .ipynb", async () => {
    const path = writeFixture("stable", notebook([
      ["code", 'import * as tslab from "tslab";\ntslab.display.html("<b>bold</b>");\nconsole.log("line 1\\nline 2");', {
        metadata: { execution: { "iopub.execute_input": "2024-01-01T00:00:00Z" }, collapsed: false, tags: ["keep"] },
        execution_count: 42,
      }],
      ["code", ""],
      ["code", 'console.error("to stderr"); const answer: number = 6 * 7; answer'],
    ]));
    expect((await runNotebook(path)).status).toBe("passed");
    const first = readFileSync(path, "utf8");
    expect((await runNotebook(path)).status).toBe("passed");
    expect(readFileSync(path, "utf8")).toBe(first);
    const nb = JSON.parse(first);
    expect(nb.metadata.kernelspec.name).toBe("tslab");
    expect(nb.cells[0].metadata).toEqual({ tags: ["keep"] });
    expect(nb.cells.map((c: any) => c.execution_count)).toEqual([1, null, 2]);
    expect(nb.cells[0].outputs).toEqual([
      { output_type: "display_data", data: { "text/html": ["<b>bold</b>"] }, metadata: {} },
      { output_type: "stream", name: "stdout", text: ["line 1\n", "line 2\n"] },
    ]);
    expect(nb.cells[2].outputs).toEqual([
      { output_type: "stream", name: "stderr", text: ["to stderr\n"] },
      { output_type: "stream", name: "stdout", text: ["42\n"] },
    ]);
    expect(first.endsWith("}\n")).toBe(true);
  }, KERNEL_TEST_MS);
  it("reports a kernel that dies mid-cell against that cell", async () => {
    const path = writeFixture("dies", notebook([["code", "1"], ["code", "process.exit(3);"], ["code", "2"]]));
    const r = await runNotebook(path);
    expect(r).toMatchObject({ status: "failed", failedCell: 1 });
    expect(r.error).toMatch(/tslab kernel died while running a cell \(exit code 3\)/);
    const nb = JSON.parse(readFileSync(path, "utf8"));
    expect(nb.cells[1].outputs[0]).toMatchObject({ output_type: "error", ename: "KernelError" });
    expect(nb.cells[2].execution_count).toBe(null);
  }, KERNEL_TEST_MS);

  it("Ctrl-C on `lab notebooks run` takes the kernel down with it", async () => {
    const path = writeFixture("interrupted", notebook([["code", "await new Promise((r) => setTimeout(r, 120_000));"]]));
    const child = spawn(process.execPath, [BIN, "notebooks", "run", path], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    const pid = await new Promise<number>((resolve, reject) => {
      child.stderr.on("data", (d: Buffer) => {
        stderr += d.toString();
        const m = /kernel started \(pid (\d+)\)/.exec(stderr);
        if (m) resolve(Number(m[1]));
      });
      child.on("exit", () => reject(new Error(`exited before starting a kernel:\n${stderr}`)));
    });
    expect(isAlive(pid)).toBe(true);
    const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve(signal ?? code)));
    child.kill("SIGINT");
    expect(await exited).toBe("SIGINT");
    for (let i = 0; i < 50 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 100));
    expect(isAlive(pid)).toBe(false);
  }, KERNEL_TEST_MS);

  it("does not overwrite a notebook that was edited while it ran", async () => {
    const path = writeFixture("edited", notebook([["code", "await new Promise((r) => setTimeout(r, 1500));"]]));
    const edited = JSON.stringify(notebook([["markdown", "# saved from Jupyter mid-run"]]));
    const lines: string[] = [];
    const run = runNotebook(path, { onProgress: (l) => {
      lines.push(l);
      if (l.includes("kernel started")) writeFileSync(path, edited);
    } });
    const r = await run;
    expect(r).toMatchObject({ status: "passed", outputsSaved: false });
    expect(readFileSync(path, "utf8")).toBe(edited);
    expect(lines.join("\n")).toContain("outputs NOT saved");
  }, KERNEL_TEST_MS);
});

describe(".ipynb format", () => {
  it("splits multi-line strings like nbformat and sorts keys", () => {
    expect(splitLines("a\nb\n")).toEqual(["a\n", "b\n"]);
    expect(splitLines("a\nb")).toEqual(["a\n", "b"]);
    expect(splitLines("")).toEqual([]);
    const text = serializeNotebook(normalizeNotebook(notebook([["code", "x\ny", { execution_count: 5, outputs: [
      { output_type: "display_data", data: { "image/png": "QUJD", "text/plain": "p\nq" }, metadata: {} },
    ] }]])));
    const nb = JSON.parse(text);
    expect(nb.cells[0].source).toEqual(["x\n", "y"]);
    expect(nb.cells[0].outputs[0].data).toEqual({ "image/png": "QUJD", "text/plain": ["p\n", "q"] });
    expect(Object.keys(nb)).toEqual(["cells", "metadata", "nbformat", "nbformat_minor"]);
    expect(nb.cells[0].execution_count).toBe(1);
    expect(nb.cells[0].id).toBe("cell-0");
  });

  it("rejects files that are not nbformat-4 notebooks with a clear error", async () => {
    const bad = join(dir, "bad.ipynb");
    writeFileSync(bad, "{ not json");
    await expect(readNotebook(bad)).rejects.toThrow(NotebookFormatError);
    writeFileSync(bad, JSON.stringify({ nbformat: 3, worksheets: [] }));
    await expect(readNotebook(bad)).rejects.toThrow(/not an nbformat-4 notebook/);
    await expect(readNotebook(join(dir, "missing.ipynb"))).rejects.toThrow(/no such notebook/);
  });
});
