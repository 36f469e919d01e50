// The graded tasks, in the order `npm run grade` prints them. Each task's tests live in `file`
// under a describe block named "task <id> — …", so the grader can run one task on its own.
export interface TaskSpec {
  id: string;
  title: string;
  points: number;
  /** test file, relative to the repository root */
  file: string;
}

export const TASKS: TaskSpec[] = [
  { id: "1.1", title: "Q8_0 quantize/dequantize, bit-exact", points: 20, file: "test/exercises/quantization.test.ts" },
  { id: "1.2", title: "Q4_0 quantize/dequantize, nibble order", points: 20, file: "test/exercises/quantization.test.ts" },
  { id: "1.3", title: "Memory planner: weights + KV cache vs a GPU", points: 20, file: "test/exercises/quantization.test.ts" },
  { id: "1.4", title: "Level chooser: lowest memory meeting a quality bar", points: 25, file: "test/exercises/quantization.test.ts" },
  { id: "1.5", title: "Quiz: quantization trade-offs", points: 15, file: "test/exercises/quantization.test.ts" },
];
