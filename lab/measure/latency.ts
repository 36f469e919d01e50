// Latency and throughput of an engine, measured the way a user feels them:
//   TTFT  time from "here is the prompt" to the first sampled token (prefill + one sample);
//   prefill tokens/s = prompt tokens / prefill time;
//   TPOT  time per output token after the first; decode tokens/s = 1000 / TPOT.
// Every figure is the median (and p90) over `repeats` runs after `warmup` unmeasured ones.
// Also the memory figures of the engine after the runs (peak RSS is the whole process's).
//
// Serving throughput (the second half of the file): N sequences advanced together by engine.step,
// one token each per step, at N = 1, 2, 4, …, and prefill speed at several prompt lengths.
import { performance } from "node:perf_hooks";
import type { Engine, MemoryReport, Sequence, StepItem } from "../engine/engine.ts";
import type { LlamaCppEngine } from "../engine/llama-engine.ts";
import { Sampler } from "../engine/sampler.ts";
import { summarize, type Summary } from "./stats.ts";

export interface LatencyOptions {
  /** Prompt token ids (with BOS). */
  prompt: number[];
  /** Tokens to decode after the first one. */
  decodeTokens: number;
  repeats: number;
  warmup: number;
}

export interface LatencyRun {
  ttftMs: number;
  prefillMs: number;
  decodeMs: number;
  decodedTokens: number;
}

export interface LatencyReport {
  engine: string;
  threads: number;
  promptTokens: number;
  decodeTokens: number;
  repeats: number;
  prefillTokensPerSecond: number;
  decodeTokensPerSecond: number;
  ttftMs: number;
  tpotMs: number;
  /** median and p90 of each figure */
  spread: { ttftMs: Summary; tpotMs: Summary; prefillTokensPerSecond: Summary; decodeTokensPerSecond: Summary };
  weightBytes: number;
  tensorBytes: number;
  fileBytes: number;
  bitsPerWeight: number;
  kvBytesPerToken: number;
  kvBytesPerTokenFormula: number;
  peakRssBytes: number;
}

/** One timed generation: prefill, sample, then decode greedily one token per step. */
export async function timeOneRun(engine: Engine, prompt: number[], decodeTokens: number): Promise<LatencyRun> {
  const sampler = new Sampler({ temperature: 0 });
  const seq = await engine.createSequence();
  try {
    const t0 = performance.now();
    const dist = await seq.prefill(prompt);
    let token = sampler.sample(dist);
    const t1 = performance.now();
    const room = engine.contextSize - prompt.length;
    const n = Math.min(decodeTokens, room);
    for (let i = 0; i < n; i++) {
      const [next] = await engine.decode([{ sequence: seq, token }]);
      token = sampler.sample(next);
    }
    const t2 = performance.now();
    return { ttftMs: t1 - t0, prefillMs: t1 - t0, decodeMs: t2 - t1, decodedTokens: n };
  } finally {
    await seq.free();
  }
}

/**
 * Measures each engine on the same prompt. With several engines the repeats are interleaved
 * (engine A run 1, engine B run 1, A run 2, …) so a noisy neighbour on the machine slows both
 * alike and the ratio between them stays meaningful.
 */
export async function measureLatency(engines: Engine[], opts: LatencyOptions): Promise<LatencyReport[]> {
  for (let i = 0; i < opts.warmup; i++) for (const e of engines) await timeOneRun(e, opts.prompt, opts.decodeTokens);
  const runs: LatencyRun[][] = engines.map(() => []);
  for (let i = 0; i < opts.repeats; i++) {
    for (let k = 0; k < engines.length; k++) runs[k].push(await timeOneRun(engines[k], opts.prompt, opts.decodeTokens));
  }
  return engines.map((engine, k) => latencyReport(engine, opts, runs[k]));
}

function latencyReport(engine: Engine, opts: LatencyOptions, runs: LatencyRun[]): LatencyReport {
  const ttft = summarize(runs.map((r) => r.ttftMs));
  const tpot = summarize(runs.map((r) => r.decodeMs / Math.max(1, r.decodedTokens)));
  const prefillTps = summarize(runs.map((r) => (1000 * opts.prompt.length) / r.prefillMs));
  const decodeTps = summarize(runs.map((r) => (1000 * r.decodedTokens) / r.decodeMs));
  const mem: MemoryReport = engine.memory();
  return {
    engine: engine.name,
    threads: engine.threads,
    promptTokens: opts.prompt.length,
    decodeTokens: runs[0]?.decodedTokens ?? 0,
    repeats: opts.repeats,
    prefillTokensPerSecond: prefillTps.median,
    decodeTokensPerSecond: decodeTps.median,
    ttftMs: ttft.median,
    tpotMs: tpot.median,
    spread: { ttftMs: ttft, tpotMs: tpot, prefillTokensPerSecond: prefillTps, decodeTokensPerSecond: decodeTps },
    weightBytes: mem.weightBytes,
    tensorBytes: mem.tensorBytes,
    fileBytes: mem.fileBytes,
    bitsPerWeight: mem.bitsPerWeight,
    kvBytesPerToken: mem.kvBytesPerToken,
    kvBytesPerTokenFormula: mem.kvBytesPerTokenFormula,
    peakRssBytes: mem.peakRssBytes,
  };
}

/** Tokens/s of one batched decode step over n sequences (each already holding `prompt`): the
 *  distributions path (every step returns a row per sequence; our Sampler picks the token). */
export async function measureBatchedDecode(engine: Engine, prompt: number[], n: number, steps: number): Promise<number> {
  return (await timeBatchedSteps(engine, prompt, n, steps, "distributions")).tokensPerSecond;
}

// ---------------------------------------------------------------------------------------------
// Batched steps: N streams decoding together

/**
 * How each step gets its next tokens:
 * - "native": output "none" with a greedy Sampler. llama.cpp picks the token itself and builds no
 *   distribution; LabEngine computes the row internally and samples from it (it has no cheaper path).
 * - "distributions": output "last", the row of every sequence comes back and our Sampler picks from
 *   it (what speculative decoding, perplexity or a non-greedy sampler needs). On llama.cpp that row is
 *   a 1,024-entry probability Map per token, turned into a dense array.
 * - "loop" (llama.cpp only): node-llama-cpp's own greedy generation loop on every sequence at once
 *   (LlamaCppEngine.greedyLoop), no round trip through our code per token: the strongest llama.cpp
 *   decode baseline. Other engines have no such point.
 */
export type BatchMode = "native" | "distributions" | "loop";
export const BATCH_MODES: readonly BatchMode[] = ["native", "distributions", "loop"];

/** Whether an engine has a point for this mode ("loop" exists on llama.cpp only). */
export function engineHasMode(engine: Engine, mode: BatchMode): boolean {
  return mode !== "loop" || engine.name === "llama";
}

export interface BatchPoint {
  /** Sequences advanced together, one token each per step. */
  n: number;
  mode: BatchMode;
  /** n × steps / the steps' time. */
  tokensPerSecond: number;
  /** Time of one step = the time between two tokens of one stream. */
  tpotMs: number;
}

/**
 * One timed run: n sequences each prefilled with `prompt` (one untimed step, output "none"; the first
 * token from its last row), then `steps` timed calls of engine.step with one token per sequence.
 * The sequences are freed afterwards.
 */
export async function timeBatchedSteps(engine: Engine, prompt: number[], n: number, steps: number, mode: BatchMode): Promise<BatchPoint> {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`batch size must be an integer >= 1, got ${n}`);
  if (prompt.length + steps > engine.contextSize) {
    throw new RangeError(`${prompt.length} prompt + ${steps} decoded tokens do not fit the engine's context of ${engine.contextSize}`);
  }
  const seqs: Sequence[] = [];
  try {
    for (let i = 0; i < n; i++) seqs.push(await engine.createSequence());
    const samplers = seqs.map(() => new Sampler({ temperature: 0 }));
    const first = await engine.step(seqs.map((sequence, i) => ({ sequence, tokens: prompt, output: "none", sample: samplers[i] })));
    let tokens = first.map((r) => r.token!);
    if (mode === "loop") {
      if (engine.name !== "llama") throw new RangeError(`batch mode "loop" is node-llama-cpp's own loop: llama engine only, not ${engine.name}`);
      const t0 = performance.now();
      await (engine as LlamaCppEngine).greedyLoop(seqs.map((sequence, i) => ({ sequence, token: tokens[i] })), steps);
      const ms = performance.now() - t0;
      return { n, mode, tokensPerSecond: (1000 * n * steps) / ms, tpotMs: ms / steps };
    }
    const item = (sequence: Sequence, i: number): StepItem => mode === "native"
      ? { sequence, tokens: [tokens[i]], output: "none", sample: samplers[i] }
      : { sequence, tokens: [tokens[i]], output: "last" };
    const t0 = performance.now();
    for (let k = 0; k < steps; k++) {
      const results = await engine.step(seqs.map(item));
      tokens = mode === "native" ? results.map((r) => r.token!) : results.map((r, i) => samplers[i].sample(r.logprobs[0]));
    }
    const ms = performance.now() - t0;
    return { n, mode, tokensPerSecond: (1000 * n * steps) / ms, tpotMs: ms / steps };
  } finally {
    for (const s of seqs) await s.free();
  }
}

export interface BatchSweepOptions {
  /** Prompt every sequence is prefilled with (with BOS). */
  prompt: number[];
  /** Batch sizes, e.g. [1, 2, 4, 8, 16]. */
  sizes: number[];
  /** Timed steps per run. */
  steps: number;
  /** Which paths to time (default both). */
  modes?: readonly BatchMode[];
  repeats: number;
  warmup: number;
}

/**
 * Every (engine, n, mode) over the same prompt; repeats interleaved across engines, sizes and modes
 * (engine A n=1 native, B n=1 native, A n=1 distributions, …) so a busy machine slows all alike.
 * Returns per engine the median of each point, in size then mode order.
 */
export async function measureBatchSweep(engines: Engine[], opts: BatchSweepOptions): Promise<BatchPoint[][]> {
  const modes = opts.modes ?? BATCH_MODES;
  const runs = engines.map(() => opts.sizes.map(() => modes.map(() => [] as BatchPoint[])));
  for (let r = 0; r < opts.warmup + opts.repeats; r++) {
    for (const [s, n] of opts.sizes.entries()) {
      for (const [m, mode] of modes.entries()) {
        for (const [k, engine] of engines.entries()) {
          if (!engineHasMode(engine, mode)) continue;
          const point = await timeBatchedSteps(engine, opts.prompt, n, opts.steps, mode);
          if (r >= opts.warmup) runs[k][s][m].push(point);
        }
      }
    }
  }
  return runs.map((perSize) => perSize.flatMap((perMode, s) => perMode.flatMap((points, m) => points.length === 0 ? [] : [{
    n: opts.sizes[s], mode: modes[m],
    tokensPerSecond: summarize(points.map((p) => p.tokensPerSecond)).median,
    tpotMs: summarize(points.map((p) => p.tpotMs)).median,
  }])));
}

export interface PrefillPoint {
  promptTokens: number;
  /** promptTokens / the time to the first row (median over the repeats). */
  tokensPerSecond: number;
  ttftMs: number;
}

/** Prefill speed of each engine at each prompt length: a fresh sequence evaluates the prompt and
 *  returns its last row; repeats interleaved across engines and lengths. */
export async function measurePrefillSweep(engines: Engine[], prompts: number[][], repeats: number, warmup: number): Promise<PrefillPoint[][]> {
  const runs = engines.map(() => prompts.map(() => [] as number[]));
  for (let r = 0; r < warmup + repeats; r++) {
    for (const [p, prompt] of prompts.entries()) {
      for (const [k, engine] of engines.entries()) {
        const seq = await engine.createSequence();
        try {
          const t0 = performance.now();
          await seq.prefill(prompt);
          if (r >= warmup) runs[k][p].push(performance.now() - t0);
        } finally {
          await seq.free();
        }
      }
    }
  }
  return runs.map((perPrompt) => perPrompt.map((ms, p) => {
    const ttft = summarize(ms).median;
    return { promptTokens: prompts[p].length, tokensPerSecond: (1000 * prompts[p].length) / ttft, ttftMs: ttft };
  }));
}
