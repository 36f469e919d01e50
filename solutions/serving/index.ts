// Interview question 3, reference solutions (serving). Tasks 3.1–3.3: prefix caching
// (notebooks/03-prefix-caching.ipynb).
export * from "./block-hash.ts";
export * from "./free-queue.ts";
export * from "./radix-tree.ts";
// Tasks 3.4–3.5: batching and serving (notebooks/04-batching-and-serving.ipynb).
export * from "./scheduler-step.ts";
export * from "./scale-out.ts";
// Tasks 3.6–3.10: capacity planning for a 70B model (notebooks/05-serving-a-70b-model.ipynb).
export * from "./capacity.ts";
export * from "./autoscaler.ts";
export * from "./capacity-quiz.ts";
