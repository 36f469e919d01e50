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
