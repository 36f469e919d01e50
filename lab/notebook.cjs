// The bridge a notebook cell imports: `import * as lab from "../lab/notebook.cjs";`
// tslab runs cells as CommonJS, so this file teaches that CommonJS world to load the lab's
// TypeScript sources with tsx, then hands back lab/notebook.ts. Types for cells come from the
// neighbouring notebook.d.cts. Node caches this module: the body runs once per kernel.
const { dirname, join } = require("node:path");

// require() of .ts files (the lab's static imports).
require("tsx/cjs/api").register();
// import() of .ts files (lazy imports inside the lab, e.g. engines). tsx 4's CommonJS build of
// "tsx/esm/api" points at a file that does not exist, so we require() its ES module build directly
// (Node >= 20.19 can require() an ES module without top-level await).
require(join(dirname(require.resolve("tsx/package.json")), "dist", "esm", "api", "index.mjs")).register();

// The declarations cells are type-checked against (lab/.types, see lab/notebooks/types.ts) must
// exist before the kernel starts: tslab reads them once, when it first sees this import. `npm
// install`/`npm ci` generate them (the package's `prepare` script), and so do `lab jupyter` and the
// headless runner. If they are missing anyway (e.g. `npm ci --ignore-scripts`), every later cell
// would fail with a type error that names nothing, so this cell stops here and says what to do.
const { existsSync } = require("node:fs");
const { spawnSync } = require("node:child_process");
const TYPES_ENTRY = join(__dirname, ".types", "lab", "notebook.d.ts");
if (!existsSync(TYPES_ENTRY)) {
  process.stderr.write("lab: the type declarations notebook cells need (lab/.types) are missing; generating them now (about 20 s)...\n");
  const tsxCli = join(dirname(require.resolve("tsx/package.json")), "dist", "cli.mjs");
  const run = spawnSync(process.execPath, [tsxCli, join(__dirname, "notebooks", "types.ts")], { cwd: join(__dirname, ".."), encoding: "utf8" });
  throw new Error(existsSync(TYPES_ENTRY)
    ? "lab/.types was missing (`npm install` makes it) and is generated now: restart the kernel (Kernel > Restart Kernel) and run the cells again."
    : `lab/.types is missing and could not be generated:\n${(run.stderr || run.error?.message || "").trim()}\n` +
      `Fix that, run \`npm run prepare\` in ${join(__dirname, "..")}, then restart the kernel (Kernel > Restart Kernel).`);
}

module.exports = require("./notebook.ts");

// Keep them current: lab sources edited since they were made get fresh declarations, which the
// NEXT kernel reads. Not in headless runs: the runner refreshed them just before starting this
// kernel, and a late "restart" notice would land in whichever cell is running, in a committed output.
if (process.env.LAB_HEADLESS !== "1") require("./notebooks/types.ts").ensureNotebookTypes().then(
  (r) => {
    if (r.regenerated) {
      process.stderr.write("lab: type declarations for cells are up to date now. Restart the kernel (Kernel > Restart) and run the cells again.\n");
    }
  },
  (err) => process.stderr.write(`lab: could not generate type declarations for cells: ${err.message}\n`),
);
