// What a student meets on a fresh clone, checked on the COMMITTED files (fast: no kernel):
//   - Jupyter shows a cloned notebook "Not Trusted" and then hides image/svg+xml and text/html, so
//     every figure output must carry image/png beside its SVG, every HTML output text/plain, and a
//     cell shows at most one figure (Notebook folds several into a scroll box that cuts them off);
//   - `npm start` must leave `git status` clean: committed outputs and results hold no timings;
//   - `lab jupyter` as root passes --allow-root.
// The headless runner writing both PNG and SVG is checked with a real kernel in test/notebooks.test.ts.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { allNotebooks, notebookName, readNotebook, REPO_ROOT, type CellOutput } from "../lab/notebooks/index.ts";
import { jupyterPlan } from "../lab/cli/commands/jupyter.ts";

const notebooks = await allNotebooks();

type RichOutput = Extract<CellOutput, { output_type: "display_data" | "execute_result" }>;
const isRich = (o: CellOutput): o is RichOutput => o.output_type === "display_data" || o.output_type === "execute_result";
const text = (v: unknown) => (Array.isArray(v) ? v.join("") : String(v));

/** A number followed by a time unit or a rate: what a timing looks like in text ("in 57 s", "1275 tokens/s"). */
const TIMING = /\b\d+(?:\.\d+)?\s?(?:s|ms|sec|secs|seconds|minutes|min)\b(?!\w)|\d\s?(?:tokens|tok)\/s\b/;

describe("committed notebooks show in an untrusted Jupyter", () => {
  it("finds the kit's notebooks", () => {
    expect(notebooks.map(notebookName)).toEqual(expect.arrayContaining(["00-welcome", "01-quantization"]));
  });

  for (const path of notebooks) {
    it(`${notebookName(path)}: every SVG output has a PNG, every HTML output a text/plain, one figure per cell`, async () => {
      const nb = await readNotebook(path);
      let figures = 0;
      nb.cells.forEach((cell, i) => {
        const rich = (cell.outputs ?? []).filter(isRich);
        for (const o of rich) {
          if ("image/svg+xml" in o.data) {
            expect(o.data, `cell ${i + 1}: an SVG output without image/png`).toHaveProperty(["image/png"]);
            const png = Buffer.from(text(o.data["image/png"]), "base64");
            expect(png.subarray(1, 4).toString("ascii"), `cell ${i + 1}: image/png is not a PNG`).toBe("PNG");
          }
          if ("text/html" in o.data) {
            expect(o.data, `cell ${i + 1}: an HTML output without text/plain`).toHaveProperty(["text/plain"]);
            expect(text(o.data["text/plain"]).trim().length, `cell ${i + 1}: empty text/plain`).toBeGreaterThan(0);
          }
        }
        const images = rich.filter((o) => "image/png" in o.data || "image/svg+xml" in o.data).length;
        expect(images, `cell ${i + 1} shows ${images} figures: one per cell`).toBeLessThanOrEqual(1);
        figures += images;
      });
      if (notebookName(path) === "01-quantization") expect(figures).toBeGreaterThanOrEqual(7);
    });

    it(`${notebookName(path)}: committed outputs hold no timings (re-runs must give the same bytes)`, async () => {
      const nb = await readNotebook(path);
      nb.cells.forEach((cell, i) => {
        for (const o of cell.outputs ?? []) {
          const texts = o.output_type === "stream" ? [o.text] : isRich(o)
            ? Object.entries(o.data).filter(([mime]) => mime.startsWith("text/")).map(([, v]) => v) : [];
          for (const t of texts) {
            const hit = TIMING.exec(text(t));
            expect(hit?.[0], `cell ${i + 1} prints a timing: ${JSON.stringify(hit && text(t).slice(Math.max(0, hit.index - 40), hit.index + 30))}`).toBeUndefined();
          }
        }
      });
    });
  }

  it("the timing pattern catches what notebook 01 used to print", () => {
    for (const t of ["18 measurements of 9 levels in 57 s", "(1275 vs 2257 tokens/s)", "took 3.2s", "cell 11/22 ok 57.30s"]) expect(t).toMatch(TIMING);
    for (const t of ["median of 5, 1 thread", "64-token prompt + 16 decoded", "Q4_K_M: 5.04 bpw", "2 layers, width 256", "KL 2.3e-3"]) expect(t).not.toMatch(TIMING);
  });

  it("data/results/quantization.csv has no speed columns (speed goes to git-ignored data/results/timings/)", () => {
    const header = readFileSync(join(REPO_ROOT, "data", "results", "quantization.csv"), "utf8").split("\n")[0]!;
    expect(header.split(",")).toContain("kl_mean");
    expect(header).not.toMatch(/tok_s|seconds|_ms\b/);
    expect(readFileSync(join(REPO_ROOT, ".gitignore"), "utf8").split("\n")).toContain("data/results/timings/");
  });
});

describe("lab jupyter as root", () => {
  const j = { python: "/usr/bin/python3", jupyterlab: false, notebook: true, nbconvert: true, kernels: [] };
  it("passes --allow-root when uid is 0 (Jupyter refuses to start as root without it), never twice", () => {
    const root = jupyterPlan(j, ["--no-browser"], true);
    expect(root.allowRoot).toBe(true);
    expect(root.start).toEqual(["/usr/bin/python3", "-m", "notebook", "--no-browser", "--allow-root"]);
    expect(root.install).not.toContain("--user");
    expect(jupyterPlan(j, ["--allow-root"], true)).toMatchObject({ allowRoot: false, start: ["/usr/bin/python3", "-m", "notebook", "--allow-root"] });
    const user = jupyterPlan(j, [], false);
    expect(user.allowRoot).toBe(false);
    expect(user.start).not.toContain("--allow-root");
    expect(user.install).toContain("--user");
  });
});

describe("lab.taskCode: the student's code once its task passes, the reference until then", () => {
  it("runs the reference for a task that is not started, and says so", async () => {
    const { taskCode } = await import("../lab/notebook.ts");
    const reference = await import("../solutions/quantization/memory.ts");
    const lines: string[] = [];
    const log = console.log;
    console.log = (...args: unknown[]) => { lines.push(args.join(" ")); };
    let code: Awaited<ReturnType<typeof taskCode<"1.3">>>;
    try {
      code = await taskCode("1.3");
    } finally {
      console.log = log;
    }
    // check:kit keeps every exercise "not started" in the repository, so this is the branch a fresh clone takes.
    expect(lines).toEqual(["Running the reference planMemory, fitsOnGpu (solutions/quantization/memory.ts): task 1.3 is not started (`npm run grade -- 1.3`)."]);
    expect(code.planMemory).toBe(reference.planMemory);
    await expect(taskCode("9.9" as "1.3")).rejects.toThrow(/no notebook code is registered for task "9.9"; known: 1.3, 1.4/);
  }, 120_000);
});
