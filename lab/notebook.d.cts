// Types of lab/notebook.cjs for tslab's type checker: declarations generated from lab/notebook.ts
// into lab/.types/ (see lab/notebooks/types.ts; `lab notebooks run` / `lab jupyter` refresh them).
export * from "./.types/lab/notebook";
