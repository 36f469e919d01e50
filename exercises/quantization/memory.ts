// Tasks 1.3 and 1.4 — will it fit, and which level should production use?
// Read notebooks/01-quantization.ipynb §1.3–§1.4 first. Hints: exercises/quantization/HINTS.md.
// Grade with `npm run grade -- 1.3` (or 1.4).
import { NotImplementedError } from "../../lab/errors.ts";

/** A model and a serving configuration, in the units people quote them in. */
export interface ServingConfig {
  /** total parameters, e.g. 7e9 */
  parameters: number;
  /** average bits per weight of the chosen level (F16: 16, Q8_0: 8.5, Q4_K_M: ~4.85) */
  bitsPerWeight: number;
  nLayer: number;
  nKvHead: number;
  headDim: number;
  /** bytes per KV-cache element (F16 cache: 2, Q8_0 cache: ~1.0625) */
  kvBytesPerElement: number;
  /** tokens of context per sequence */
  contextLength: number;
  /** sequences served at once, each with its own KV cache */
  concurrentSequences: number;
}

export interface MemoryPlan {
  /** parameters × bpw / 8 */
  weightBytes: number;
  /** 2 (K and V) × layers × KV heads × head dim × bytes per element */
  kvBytesPerToken: number;
  /** kvBytesPerToken × context × concurrent sequences */
  kvCacheBytes: number;
  totalBytes: number;
}

/**
 * Task 1.3a — the bytes a configuration needs on the accelerator:
 *   weightBytes     = parameters × bitsPerWeight / 8
 *   kvBytesPerToken = 2 × nLayer × nKvHead × headDim × kvBytesPerElement   (K and V, every layer)
 *   kvCacheBytes    = kvBytesPerToken × contextLength × concurrentSequences
 *   totalBytes      = weightBytes + kvCacheBytes
 * Throw a RangeError naming the field if any field is negative or not a finite number.
 * Check: 7e9 parameters at 16 bpw → 14e9 bytes (≈ 14 GB); at Q4_K_M's ~4.85 bpw ≈ 4.2 GB.
 */
export function planMemory(c: ServingConfig): MemoryPlan {
  throw new NotImplementedError("Task 1.3 — see notebooks/01-quantization.ipynb §1.3");
}

export interface FitVerdict {
  fits: boolean;
  /** bytes usable after keeping the headroom free: gpuGB × 1e9 × (1 − headroom) */
  usableBytes: number;
  plan: MemoryPlan;
  /** usableBytes − plan.totalBytes; negative when it does not fit */
  spareBytes: number;
}

/**
 * Task 1.3b — does the configuration fit a GPU of `gpuGB` gigabytes (10^9 bytes) while keeping the
 * fraction `headroom` (e.g. 0.1) free for activations, the CUDA context and fragmentation?
 * fits ⇔ plan.totalBytes ≤ usableBytes. RangeError if gpuGB ≤ 0 or headroom ∉ [0, 1).
 */
export function fitsOnGpu(c: ServingConfig, gpuGB: number, headroom: number): FitVerdict {
  throw new NotImplementedError("Task 1.3 — see notebooks/01-quantization.ipynb §1.3");
}

/** One measured quantization level: its memory and its quality per task, relative to F32 (1.0 = as good). */
export interface LevelMeasurement {
  level: string;
  bitsPerWeight: number;
  /** bytes the level needs (weights + KV cache for the planned context and concurrency) */
  memoryBytes: number;
  /** task name → quality relative to the unquantized model (accuracy ratio, or F32 ppl / ppl) */
  relativeQuality: Record<string, number>;
}

export type LevelChoice =
  | { ok: true; level: string; memoryBytes: number; worstTask: string; worstQuality: number }
  | { ok: false; reason: string };

/**
 * Task 1.4 — the production decision as code. Return the lowest-memory level that
 *   (1) fits: memoryBytes ≤ memoryBudgetBytes, and
 *   (2) is good enough: relativeQuality[t] ≥ threshold for every task t in `tasks`
 *       (default: every task that appears in the table),
 * with worstTask/worstQuality naming its weakest task. Ties in memory go to the higher worst quality.
 * Throw an Error if a level lacks a measurement for a task being judged.
 * When nothing qualifies return { ok: false, reason } where reason says which constraint failed:
 *   - an empty table → a reason mentioning "no levels";
 *   - nothing within the budget → a reason containing "memory budget" and the smallest level's name;
 *   - levels fit but all miss the threshold → a reason containing "quality", the best such level's
 *     name and its worst task.
 */
export function chooseLevel(
  table: LevelMeasurement[],
  memoryBudgetBytes: number,
  threshold: number,
  tasks?: string[],
): LevelChoice {
  throw new NotImplementedError("Task 1.4 — see notebooks/01-quantization.ipynb §1.4");
}
