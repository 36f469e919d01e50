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

module.exports = require("./notebook.ts");

// Keep the declarations cells are type-checked against current. `lab jupyter` and the headless
// runner refresh them before a kernel starts; this catches Jupyter started some other way, or lab
// sources edited since. tslab reads them when the kernel starts, so a refresh needs a restart.
const { existsSync } = require("node:fs");
if (!existsSync(join(__dirname, ".types", "lab", "notebook.d.ts"))) {
  process.stderr.write("lab: generating the type declarations notebook cells need (lab/.types, about 20 s)...\n");
}
require("./notebooks/types.ts").ensureNotebookTypes().then(
  (r) => {
    if (r.regenerated) {
      process.stderr.write("lab: type declarations for cells are up to date now. Restart the kernel (Kernel > Restart) and run the cells again.\n");
    }
  },
  (err) => process.stderr.write(`lab: could not generate type declarations for cells: ${err.message}\n`),
);
