// lab/capacity: plan a deployment before buying GPUs — sourced tables (tables.ts), memory fit under
// tensor parallelism (memory.ts), roofline latency (latency.ts), queueing (queueing.ts) and
// autoscaling policies on a bursty trace (autoscale.ts). `lab capacity` is the command-line face.
export * from "./tables.ts";
export * from "./memory.ts";
export * from "./latency.ts";
export * from "./queueing.ts";
export * from "./autoscale.ts";
export * from "./published.ts";
export * from "./plan.ts";
export * from "./paged.ts";
export * from "./figures.ts";
export * from "./calibrate.ts";
