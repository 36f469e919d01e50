// The graded tasks, in the order `npm run grade` prints them. Each task's tests live in `file`
// under a describe block named "task <id> — …", so the grader can run one task on its own.
export interface TaskSpec {
  id: string;
  title: string;
  points: number;
  /** test file, relative to the repository root */
  file: string;
  /** the file that implements the task, relative to exercises/ (and solutions/); the grader checks its imports */
  source: string;
  /**
   * What the task's code must not import, besides solutions/ and test/ (never allowed): the kit's own
   * implementation of this task. Repository path prefixes ("lab/quant/") or package names.
   */
  forbidden: string[];
  /** Exceptions inside `forbidden` that the stub itself hands out (e.g. the fp16 helpers). */
  allowed?: string[];
}

// lab/quant implements Q8_0/Q4_0; lab/study, lab/engine and lab/model decode or analyse blocks with it;
// node-llama-cpp is ggml itself.
const QUANTIZERS = ["lab/quant/", "lab/study/", "lab/engine/", "lab/model/", "lab/gguf/", "node-llama-cpp", "@node-llama-cpp/"];

export const TASKS: TaskSpec[] = [
  { id: "1.1", title: "Q8_0 quantize/dequantize, bit-exact", points: 20, file: "test/exercises/quantization.test.ts",
    source: "quantization/blocks.ts", forbidden: QUANTIZERS, allowed: ["lab/quant/float.ts"] },
  { id: "1.2", title: "Q4_0 quantize/dequantize, nibble order", points: 20, file: "test/exercises/quantization.test.ts",
    source: "quantization/blocks.ts", forbidden: QUANTIZERS, allowed: ["lab/quant/float.ts"] },
  // lab/study/analysis.ts computes memory per level and the level table the notebook shows.
  { id: "1.3", title: "Memory planner: weights + KV cache vs a GPU", points: 20, file: "test/exercises/quantization.test.ts",
    source: "quantization/memory.ts", forbidden: ["lab/study/"] },
  { id: "1.4", title: "Level chooser: lowest memory meeting a quality bar", points: 25, file: "test/exercises/quantization.test.ts",
    source: "quantization/memory.ts", forbidden: ["lab/study/"] },
  { id: "1.5", title: "Quiz: quantization trade-offs", points: 15, file: "test/exercises/quantization.test.ts",
    source: "quantization/quiz.ts", forbidden: [] },
];
