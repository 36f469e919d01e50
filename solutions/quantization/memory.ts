// Reference solutions for tasks 1.3 (memory planner) and 1.4 (level chooser).
// Interview question 1: which quantization level fits, and which one should production use?

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

/** Task 1.3a — the bytes a configuration needs on the accelerator. */
export function planMemory(c: ServingConfig): MemoryPlan {
  for (const [name, value] of Object.entries(c)) {
    if (!Number.isFinite(value) || value < 0) throw new RangeError(`${name} must be a finite non-negative number, got ${value}`);
  }
  const weightBytes = (c.parameters * c.bitsPerWeight) / 8;
  const kvBytesPerToken = 2 * c.nLayer * c.nKvHead * c.headDim * c.kvBytesPerElement;
  const kvCacheBytes = kvBytesPerToken * c.contextLength * c.concurrentSequences;
  return { weightBytes, kvBytesPerToken, kvCacheBytes, totalBytes: weightBytes + kvCacheBytes };
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
 * Task 1.3b — does the configuration fit a GPU of `gpuGB` gigabytes (10^9 bytes) while keeping
 * `headroom` (a fraction, e.g. 0.1) free for activations, CUDA context and fragmentation?
 */
export function fitsOnGpu(c: ServingConfig, gpuGB: number, headroom: number): FitVerdict {
  if (!(gpuGB > 0)) throw new RangeError(`gpuGB must be positive, got ${gpuGB}`);
  if (!(headroom >= 0 && headroom < 1)) throw new RangeError(`headroom must be in [0, 1), got ${headroom}`);
  const plan = planMemory(c);
  const usableBytes = gpuGB * 1e9 * (1 - headroom);
  return { fits: plan.totalBytes <= usableBytes, usableBytes, plan, spareBytes: usableBytes - plan.totalBytes };
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
 * Task 1.4 — the lowest-memory level whose memory fits the budget and whose relative quality is at
 * least `threshold` on every task in `tasks` (default: every task in the table). Ties in memory go to
 * the higher quality. When none fits, say why: nothing fits the memory budget, or the levels that fit
 * all miss the threshold (name the best of them and its worst task).
 */
export function chooseLevel(
  table: LevelMeasurement[],
  memoryBudgetBytes: number,
  threshold: number,
  tasks?: string[],
): LevelChoice {
  if (table.length === 0) return { ok: false, reason: "no levels were measured" };
  const taskNames = tasks ?? [...new Set(table.flatMap((m) => Object.keys(m.relativeQuality)))];
  if (taskNames.length === 0) return { ok: false, reason: "no tasks to judge quality on" };
  const worst = (m: LevelMeasurement) => {
    let task = taskNames[0]!, q = Infinity;
    for (const t of taskNames) {
      const v = m.relativeQuality[t];
      if (v === undefined) throw new Error(`level ${m.level} has no measurement for task "${t}"`);
      if (v < q) { q = v; task = t; }
    }
    return { task, q };
  };
  const inBudget = table.filter((m) => m.memoryBytes <= memoryBudgetBytes);
  if (inBudget.length === 0) {
    const smallest = table.reduce((a, b) => (b.memoryBytes < a.memoryBytes ? b : a));
    return { ok: false, reason: `no level fits the memory budget: the smallest, ${smallest.level}, needs ${smallest.memoryBytes} bytes > ${memoryBudgetBytes}` };
  }
  const good = inBudget
    .map((m) => ({ m, w: worst(m) }))
    .filter(({ w }) => w.q >= threshold)
    .sort((a, b) => a.m.memoryBytes - b.m.memoryBytes || b.w.q - a.w.q);
  if (good.length === 0) {
    const best = inBudget.map((m) => ({ m, w: worst(m) })).sort((a, b) => b.w.q - a.w.q)[0]!;
    return { ok: false, reason: `no level within the memory budget meets quality ${threshold}: the best, ${best.m.level}, reaches ${best.w.q.toFixed(3)} on ${best.w.task}` };
  }
  const { m, w } = good[0]!;
  return { ok: true, level: m.level, memoryBytes: m.memoryBytes, worstTask: w.task, worstQuality: w.q };
}
