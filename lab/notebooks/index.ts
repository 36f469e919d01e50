// Headless notebook execution with the real tslab kernel: see runner.ts (what `lab notebooks run`
// does), kernel.ts (the Jupyter protocol client) and ipynb.ts (normalized .ipynb files).
export * from "./kernel.ts";
export * from "./ipynb.ts";
export * from "./runner.ts";
export * from "./types.ts";
