// Interview question 1, exercises (your code goes in these files): "Explain quantization for LLMs. What are the trade-offs
// between different quantization levels, and how do you decide which one to use in production?"
export * from "./blocks.ts";
export * from "./memory.ts";
export * from "./quiz.ts";
