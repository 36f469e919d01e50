// Speculative decoding: exact rejection sampling (verify.ts), drafters (drafters.ts), the decoding
// loop (generate.ts), the cost model (cost.ts) and side-by-side measurement (measure.ts).
export * from "./verify.ts";
export * from "./drafters.ts";
export * from "./generate.ts";
export * from "./cost.ts";
export * from "./measure.ts";
