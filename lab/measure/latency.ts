// Latency and throughput of an engine, measured the way a user feels them:
//   TTFT  time from "here is the prompt" to the first sampled token (prefill + one sample);
//   prefill tokens/s = prompt tokens / prefill time;
//   TPOT  time per output token after the first; decode tokens/s = 1000 / TPOT.
// Every figure is the median (and p90) over `repeats` runs after `warmup` unmeasured ones.
// Also the memory figures of the engine after the runs (peak RSS is the whole process's).
import { performance } from "node:perf_hooks";
import type { Engine, MemoryReport } from "../engine/engine.ts";
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

/** Tokens/s of one batched decode step over n sequences (each already holding `prompt`). */
export async function measureBatchedDecode(engine: Engine, prompt: number[], n: number, steps: number): Promise<number> {
  const seqs = [];
  try {
    for (let i = 0; i < n; i++) {
      const s = await engine.createSequence();
      seqs.push(s);
      await s.prefill(prompt);
    }
    const sampler = new Sampler({ temperature: 0 });
    let tokens = seqs.map(() => prompt[prompt.length - 1]);
    const t0 = performance.now();
    for (let k = 0; k < steps; k++) {
      const rows = await engine.decode(seqs.map((sequence, i) => ({ sequence, token: tokens[i] })));
      tokens = rows.map((r) => sampler.sample(r));
    }
    return (1000 * n * steps) / (performance.now() - t0);
  } finally {
    for (const s of seqs) await s.free();
  }
}
