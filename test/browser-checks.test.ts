// The browser test's judgement, without a browser: what a cell's saved outputs should look like
// (savedOutputs) against what a front end drew (DrawnOutput), and the problems that come out.
// test/browser.test.ts feeds the same functions from a real page.
import { describe, expect, it } from "vitest";
import { alignOutputs, cellProblems, describeProblem, notebookTitle, savedOutputs, type DrawnOutput } from "../lab/notebooks/browser.ts";
import type { CellOutput } from "../lab/notebooks/kernel.ts";
import type { Notebook } from "../lab/notebooks/ipynb.ts";

const svgOnly = { output_type: "display_data", metadata: {}, data: { "image/svg+xml": ["<svg width=\"10\" height=\"10\"></svg>"] } };
const svgAndText = { output_type: "display_data", metadata: {}, data: { "image/svg+xml": "<svg/>", "text/plain": "<Figure>" } };
const withPng = { output_type: "display_data", metadata: {}, data: { "image/png": "iVBORw0KGgo=", "image/svg+xml": "<svg/>" } };
const table = { output_type: "display_data", metadata: {}, data: { "text/html": "<table><tr><td>1</td></tr></table>" } };
const stdout = (text: string) => ({ output_type: "stream", name: "stdout", text });
const outputs = (...o: object[]) => o as unknown as CellOutput[];

const drawn = (kind: DrawnOutput["kind"], extra: Partial<DrawnOutput> = {}): DrawnOutput =>
  ({ kind, width: 0, height: 0, loaded: true, tableRows: 0, text: "", ...extra });
const visibleFigure = drawn("figure", { width: 640, height: 400 });

describe("savedOutputs: what each saved output may be drawn as", () => {
  it("merges consecutive streams of one name, as front ends show them", () => {
    const s = savedOutputs(outputs(stdout("a\n"), stdout("b\n"), svgOnly, stdout("c\n")));
    expect(s.map((o) => [o.index, o.kinds[0], o.text])).toEqual([[0, "stdout", "a\nb\n"], [1, "figure", ""], [2, "stdout", "c\n"]]);
  });

  it("marks figures and tables", () => {
    const [fig, tab] = savedOutputs(outputs(withPng, table));
    expect(fig).toMatchObject({ isFigure: true, isTable: false, mimes: ["image/png", "image/svg+xml"] });
    expect(tab).toMatchObject({ isFigure: false, isTable: true, kinds: ["html"] });
  });
});

describe("cellProblems: a cell as a student sees it", () => {
  it("an SVG-only figure that the page does not draw is missing, with the reason", () => {
    const problems = cellProblems("00-welcome", 4, savedOutputs(outputs(svgOnly)), []);
    expect(problems.map(describeProblem)).toEqual([
      "00-welcome, cell index 4: figure output 0 (image/svg+xml) is not shown at all: it has no image/png, and an untrusted notebook does not render SVG",
    ]);
  });

  it("a figure drawn as its text/plain is reported as raw text", () => {
    const problems = cellProblems("nb", 2, savedOutputs(outputs(svgAndText)), [drawn("text", { text: "<Figure>" })]);
    expect(problems).toHaveLength(1);
    expect(problems[0].what).toMatch(/^figure output 0 \(image\/svg\+xml, text\/plain\) is shown as raw text\/plain \("<Figure>"\)/);
  });

  it("a figure drawn with no size, or an image that did not load, is not visible", () => {
    expect(cellProblems("nb", 1, savedOutputs(outputs(withPng)), [drawn("figure", { width: 640, height: 0 })])[0].what).toMatch(/drawn but not visible \(640×0 px\)/);
    expect(cellProblems("nb", 1, savedOutputs(outputs(withPng)), [drawn("figure", { width: 9, height: 9, loaded: false })])[0].what).toMatch(/image did not load/);
  });

  it("a missing figure does not shift the outputs after it", () => {
    const saved = savedOutputs(outputs(stdout("x\n"), svgOnly, table, stdout("y\n")));
    const page = [drawn("stdout"), drawn("html", { width: 300, height: 40, tableRows: 1 }), drawn("stdout")];
    expect(alignOutputs(saved, page)).toEqual([page[0], undefined, page[1], page[2]]);
    expect(cellProblems("nb", 3, saved, page).map((p) => p.what)).toEqual([expect.stringMatching(/^figure output 1 .* not shown at all/)]);
  });

  it("a table must render as a table with rows", () => {
    expect(cellProblems("nb", 0, savedOutputs(outputs(table)), [drawn("html", { width: 300, height: 40, tableRows: 1 })])).toEqual([]);
    expect(cellProblems("nb", 0, savedOutputs(outputs(table)), [drawn("html", { width: 300, height: 40, tableRows: 0 })])[0].what).toMatch(/does not render as a table/);
  });

  it("error outputs and stderr text are problems; a good cell has none", () => {
    const errors = cellProblems("nb", 5, [], [drawn("error", { text: "TypeError: x" }), drawn("stderr", { text: "1:3 - Property 'y' does not exist" })]);
    expect(errors.map((p) => p.what)).toEqual([
      'an error output is shown: "TypeError: x"',
      "error text (stderr) is shown: \"1:3 - Property 'y' does not exist\"",
    ]);
    expect(cellProblems("nb", 5, savedOutputs(outputs(stdout("ok\n"), withPng)), [drawn("stdout"), visibleFigure])).toEqual([]);
  });
});

describe("notebookTitle", () => {
  const nb = (sources: string[]): Notebook => ({ nbformat: 4, nbformat_minor: 5, metadata: {},
    cells: sources.map((source) => ({ cell_type: source.startsWith("#") || source.startsWith("intro") ? "markdown" : "code", metadata: {}, source })) });

  it("is the first '# ' heading of the first markdown cell, without markup", () => {
    expect(notebookTitle(nb(["x = 1", "# Welcome to *Inference Lab*\n\ntext"]))).toEqual({ cell: 1, title: "Welcome to Inference Lab" });
    expect(notebookTitle(nb(["intro without a heading"]))).toBeUndefined();
  });
});
