// Interview question 2, exercises (your code goes in these files): "What is speculative decoding, and
// why does it speed up LLM inference without changing the output distribution?"
export * from "./accept.ts";
export * from "./verify.ts";
export * from "./cost.ts";
export * from "./lookup.ts";
export * from "./quiz.ts";
