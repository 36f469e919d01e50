// "PagedAttention gives 2–4× throughput over naive serving" — against which baseline? A saturated
// replica (every request waiting at time 0) is simulated step by step under three KV policies, with
// each step's time from the roofline (decode of the running batch + the prefills admitted in it):
//
//   static      requests run in batches that start together; each sequence reserves maxLen tokens
//               of KV up front, and the batch runs until its longest output is done (a finished
//               sequence's slot idles until then) — FasterTransformer-style serving
//   contiguous  continuous batching (a finished sequence is replaced at the next step) but each
//               sequence still reserves maxLen tokens up front — Orca with max-length reservation
//   paged       continuous batching; KV is allocated in blocks of blockSize tokens as a sequence
//               grows; a sequence that needs a block when none is free preempts the newest running
//               sequence, which returns to the front of the queue and is recomputed (vLLM's default)
//
// Throughput = output tokens ÷ simulated seconds. Request lengths come from the caller (the
// notebook's seeded workload distribution).
import type { GpuSpec, KvFormat, ModelSpec, WeightFormat } from "./tables.ts";
import { DEFAULTS, matmulParameters, streamedWeightBytes } from "./tables.ts";
import { kvBytesPerTokenPerGpu } from "./memory.ts";
import { peakFlops, prefillFlops, tpCommunicationSeconds } from "./latency.ts";
import { mulberry32 } from "../random.ts";

export type KvPolicy = "static" | "contiguous" | "paged";

export interface RequestShape {
  promptTokens: number;
  outputTokens: number;
}

export interface KvPolicyInput {
  model: ModelSpec;
  gpu: GpuSpec;
  format: WeightFormat;
  kv: KvFormat;
  tp: number;
  requests: RequestShape[];
  /** KV tokens one GPU's cache can hold (each GPU holds its share of every token) */
  kvTokens: number;
  /** what contiguous and static reserve per sequence */
  maxLen: number;
  blockSize: number;
  /** cap on sequences decoding together (the engine's max batch) */
  maxBatch: number;
  mfu?: number;
  mbu?: number;
}

export interface KvPolicyResult {
  policy: KvPolicy;
  outputTokensPerSecond: number;
  /** mean sequences decoding per step */
  meanBatch: number;
  steps: number;
  seconds: number;
  preemptions: number;
  /** mean share of the KV cache holding real tokens (not reserved-but-empty, not block tails) */
  kvUtilisation: number;
}

/** Seconds of one step: decode of `contexts` (one token each) plus prefills of `prefillTokens[]`. */
function stepSeconds(i: KvPolicyInput, contexts: number[], prefillTokens: number[]): number {
  const mfu = i.mfu ?? DEFAULTS.mfu.value;
  const mbu = i.mbu ?? DEFAULTS.mbu.value;
  const kvPerToken = kvBytesPerTokenPerGpu(i.model, i.kv, i.tp);
  const flops = 2 * matmulParameters(i.model) * contexts.length + prefillTokens.reduce((s, n) => s + prefillFlops(i.model, n), 0);
  const bytes = streamedWeightBytes(i.model, i.format) / i.tp + contexts.reduce((s, n) => s + n, 0) * kvPerToken;
  const tokens = contexts.length + prefillTokens.reduce((s, n) => s + n, 0);
  return Math.max(flops / i.tp / (peakFlops(i.gpu, i.format).flops * mfu), bytes / (i.gpu.memoryBandwidth * mbu))
    + tpCommunicationSeconds(i.model, i.gpu, i.tp, tokens);
}

interface Running { req: number; generated: number; blocks: number }

export function simulateKvPolicy(policy: KvPolicy, input: KvPolicyInput): KvPolicyResult {
  const { requests, kvTokens, maxLen, blockSize, maxBatch } = input;
  if (requests.some((r) => r.promptTokens + r.outputTokens > maxLen)) throw new RangeError(`a request is longer than maxLen ${maxLen}`);
  const totalBlocks = Math.floor(kvTokens / blockSize);
  const reservedSlots = Math.floor(kvTokens / maxLen);
  if (reservedSlots < 1) throw new RangeError(`the KV cache (${kvTokens} tokens) cannot hold one ${maxLen}-token sequence`);
  // waiting requests, with the tokens they already produced (a preempted one keeps its output and
  // recomputes prompt + output when it is admitted again)
  const queue: { req: number; generated: number }[] = requests.map((_, req) => ({ req, generated: 0 }));
  let running: Running[] = [];
  let freeBlocks = totalBlocks;
  let seconds = 0, steps = 0, emitted = 0, batchSum = 0, preemptions = 0, usedSum = 0;
  const blocksFor = (tokens: number) => Math.ceil(tokens / blockSize);
  const length = (s: { req: number; generated: number }) => requests[s.req]!.promptTokens + s.generated;
  const done = (s: Running) => s.generated >= requests[s.req]!.outputTokens;

  while (queue.length > 0 || running.length > 0) {
    // 1. paged: every running sequence gets the block its next token needs, preempting the newest
    if (policy === "paged") {
      for (let k = 0; k < running.length; k++) {
        const seq = running[k]!;
        if (blocksFor(length(seq) + 1) <= seq.blocks) continue;
        while (freeBlocks === 0) {
          const victim = running.pop()!;
          preemptions++;
          freeBlocks += victim.blocks;
          queue.unshift({ req: victim.req, generated: victim.generated });
        }
        if (k >= running.length) break; // it preempted itself
        freeBlocks--;
        seq.blocks++;
      }
    }
    // 2. admit from the front of the queue (static: only into an empty batch)
    const prefills: number[] = [];
    const admitted: Running[] = [];
    while ((policy !== "static" || running.length === 0 || admitted.length > 0) && queue.length > 0 && running.length + admitted.length < maxBatch) {
      const next = queue[0]!;
      let blocks = 0;
      if (policy === "paged") {
        blocks = blocksFor(length(next) + 1);
        if (blocks > freeBlocks) break;
        freeBlocks -= blocks;
      } else if (running.length + admitted.length >= reservedSlots) break;
      queue.shift();
      admitted.push({ req: next.req, generated: next.generated, blocks });
      prefills.push(length(next));
    }
    // 3. one step: running sequences decode a token each; admitted ones prefill and emit their next token
    const decoding = running.filter((seq) => !done(seq));
    seconds += stepSeconds(input, decoding.map(length), prefills);
    steps++;
    batchSum += decoding.length + admitted.length;
    for (const seq of [...decoding, ...admitted]) {
      seq.generated++;
      emitted++;
    }
    running = [...running, ...admitted];
    usedSum += running.reduce((sum, seq) => sum + length(seq), 0);
    // 4. finished sequences leave (static: only when the whole batch is done)
    if (policy !== "static" || running.every(done)) {
      for (const seq of running) if (done(seq)) freeBlocks += seq.blocks;
      running = running.filter((seq) => !done(seq));
    }
  }
  return {
    policy, outputTokensPerSecond: emitted / seconds, meanBatch: batchSum / steps, steps, seconds, preemptions,
    kvUtilisation: usedSum / steps / kvTokens,
  };
}

/**
 * n request shapes: prompt and output lengths log-normal around their medians (σ in natural-log
 * units), clipped to [1, …] and to maxLen together. Seeded.
 */
export function lognormalRequests(o: { n: number; promptMedian: number; promptSigma: number; outputMedian: number; outputSigma: number; maxLen: number; seed: number }): RequestShape[] {
  const random = mulberry32(o.seed);
  const normal = () => {
    const u = 1 - random();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
  };
  return Array.from({ length: o.n }, () => {
    const promptTokens = Math.min(o.maxLen - 1, Math.max(1, Math.round(o.promptMedian * Math.exp(o.promptSigma * normal()))));
    const outputTokens = Math.min(o.maxLen - promptTokens, Math.max(1, Math.round(o.outputMedian * Math.exp(o.outputSigma * normal()))));
    return { promptTokens, outputTokens };
  });
}
