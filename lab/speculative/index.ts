// Speculative decoding: exact rejection sampling (verify.ts), drafters (drafters.ts), the decoding
// loop (generate.ts), the cost model (cost.ts), side-by-side measurement (measure.ts), the
// chi-square tests that prove exactness (chi-square.ts) and notebook 02's study (study.ts).
export * from "./verify.ts";
export * from "./drafters.ts";
export * from "./generate.ts";
export * from "./cost.ts";
export * from "./measure.ts";
export * from "./chi-square.ts";
export * from "./study.ts";
