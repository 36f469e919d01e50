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

const SPECULATIVE = ["lab/speculative/", "lab/capacity/", "lab/engine/", "lab/study/", "node-llama-cpp", "@node-llama-cpp/"];

const PREFIX_CACHES = ["lab/prefix-cache/", "lab/engine/", "lab/serve/"];

// Question 3, batching and serving (notebook 04): lab/serve's scheduler implements the step, lab/engine
// the KV pool, lab/capacity the queueing models (Little's law, M/M/c, autoscaling).
const BATCHING = ["lab/serve/", "lab/engine/", "lab/capacity/"];

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
  // lab/speculative implements every one of them (verify.ts, cost.ts, drafters.ts); lab/capacity
  // has a speculative term, lab/engine the sampler's argmax.
  { id: "2.1", title: "Accept/reject one draft token, the residual distribution", points: 15, file: "test/exercises/speculative.test.ts",
    source: "speculative/accept.ts", forbidden: SPECULATIVE },
  { id: "2.2", title: "verifyDraft: k tokens and the bonus token, exact", points: 25, file: "test/exercises/speculative.test.ts",
    source: "speculative/verify.ts", forbidden: SPECULATIVE },
  { id: "2.3", title: "E(α, k) and the wall-clock speedup", points: 15, file: "test/exercises/speculative.test.ts",
    source: "speculative/cost.ts", forbidden: SPECULATIVE },
  { id: "2.4", title: "The best k for α, c and v(k)", points: 15, file: "test/exercises/speculative.test.ts",
    source: "speculative/cost.ts", forbidden: SPECULATIVE },
  { id: "2.5", title: "The prompt-lookup (n-gram) proposer", points: 15, file: "test/exercises/speculative.test.ts",
    source: "speculative/lookup.ts", forbidden: SPECULATIVE },
  { id: "2.6", title: "Quiz: the claims about speculative decoding", points: 15, file: "test/exercises/speculative.test.ts",
    source: "speculative/quiz.ts", forbidden: [] },
  // Question 3 (serving), prefix caching: lab/prefix-cache implements all three; lab/engine's paged
  // KV pool has its own free queue; lab/serve plugs the caches into the scheduler.
  { id: "3.1", title: "Block hash chain and lookup", points: 30, file: "test/exercises/prefix-cache.test.ts",
    source: "serving/block-hash.ts", forbidden: PREFIX_CACHES },
  { id: "3.2", title: "LRU free queue (O(1) removal) and eviction order", points: 30, file: "test/exercises/prefix-cache.test.ts",
    source: "serving/free-queue.ts", forbidden: PREFIX_CACHES },
  { id: "3.3", title: "Radix tree match and insert with node splits", points: 30, file: "test/exercises/prefix-cache.test.ts",
    source: "serving/radix-tree.ts", forbidden: PREFIX_CACHES },
  { id: "3.4", title: "One scheduler step: token budget, chunked prefill", points: 30, file: "test/exercises/batching.test.ts",
    source: "serving/scheduler-step.ts", forbidden: BATCHING },
  { id: "3.5", title: "Queue depth, Little's law, replicas for an SLO", points: 25, file: "test/exercises/batching.test.ts",
    source: "serving/scale-out.ts", forbidden: BATCHING },
  // Question 3, capacity planning (notebook 05): lab/capacity implements memory fit under TP, the
  // roofline, deployment search and an autoscaling simulation.
  { id: "3.6", title: "Memory fit with tensor parallelism", points: 20, file: "test/exercises/capacity.test.ts",
    source: "serving/capacity.ts", forbidden: ["lab/capacity/"] },
  { id: "3.7", title: "TTFT and TPOT from the roofline", points: 20, file: "test/exercises/capacity.test.ts",
    source: "serving/capacity.ts", forbidden: ["lab/capacity/"] },
  { id: "3.8", title: "The cheapest deployment meeting an SLO", points: 20, file: "test/exercises/capacity.test.ts",
    source: "serving/capacity.ts", forbidden: ["lab/capacity/"] },
  { id: "3.9", title: "A queue-depth autoscaler on a trace", points: 25, file: "test/exercises/capacity.test.ts",
    source: "serving/autoscaler.ts", forbidden: ["lab/capacity/"] },
  { id: "3.10", title: "Quiz: the usual 70B serving answer checked", points: 15, file: "test/exercises/capacity.test.ts",
    source: "serving/capacity-quiz.ts", forbidden: [] },
];
