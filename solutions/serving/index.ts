// Interview question 3, reference solutions (serving). Tasks 3.1–3.3: prefix caching
// (notebooks/03-prefix-caching.ipynb).
export * from "./block-hash.ts";
export * from "./free-queue.ts";
export * from "./radix-tree.ts";
