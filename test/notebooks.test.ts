// Every notebook of the kit, and the loader-proof notebook, run headlessly through the real tslab
// kernel and must pass. Outputs are not written back (write: false): the test checks, it does not
// regenerate; `npm start` is what refreshes the committed outputs.
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { allNotebooks, describeFailure, ensureNotebookTypes, notebookName, REPO_ROOT, runNotebook } from "../lab/notebooks/index.ts";

const LOADER_PROOF = join(REPO_ROOT, "test", "notebooks", "llama-loader.ipynb");
const notebooks = [...await allNotebooks(), LOADER_PROOF];
// Generous: a notebook is a whole lesson (training excluded). The per-cell limit is the default 10 min.
const NOTEBOOK_TIMEOUT_MS = 20 * 60_000;

describe("notebooks run headlessly and pass", () => {
  it("finds the welcome notebook", () => {
    expect(notebooks.map(notebookName)).toContain("00-welcome");
  });

  it("generates the lab's type declarations for cells", async () => {
    const r = await ensureNotebookTypes();
    expect(r.dir).toBe(join(REPO_ROOT, "lab", ".types"));
  }, 120_000);

  it("cells see the lab's real types (a wrong type is a compile error, not `any`)", async () => {
    // Next to the loader proof, so the import line is the same; a dot-name keeps it out of listings.
    const path = join(REPO_ROOT, "test", "notebooks", `.types-check-${process.pid}.ipynb`);
    const cell = (source: string) => ({ cell_type: "code", metadata: {}, outputs: [], execution_count: null, source });
    writeFileSync(path, JSON.stringify({ nbformat: 4, nbformat_minor: 5, metadata: {}, cells: [
      cell('import * as lab from "../../lab/notebook.cjs";'),
      cell('const bits: string = lab.quant.quantFormat("Q4_0").bitsPerWeight;'),
    ] }));
    try {
      const r = await runNotebook(path, { write: false });
      expect(r).toMatchObject({ status: "failed", failedCell: 1 });
      expect(r.error).toMatch(/Type 'number' is not assignable to type 'string'/);
    } finally {
      rmSync(path, { force: true });
    }
  }, 300_000);

  for (const path of notebooks) {
    it(notebookName(path), async () => {
      const r = await runNotebook(path, { write: false });
      expect(r.status, describeFailure(r)).toBe("passed");
      expect(r.executed).toBeGreaterThan(0);
    }, NOTEBOOK_TIMEOUT_MS);
  }
});
