// Interview question 3, reference solutions (serving). Tasks 3.1–3.3: prefix caching
// (notebooks/03-prefix-caching.ipynb).
export * from "./block-hash.ts";
export * from "./free-queue.ts";
export * from "./radix-tree.ts";
// Tasks 3.6–3.10: capacity planning for a 70B model (notebooks/05-serving-a-70b-model.ipynb).
export * from "./capacity.ts";
export * from "./autoscaler.ts";
export * from "./capacity-quiz.ts";
