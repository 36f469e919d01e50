// LlamaCppEngine: the Engine interface over llama.cpp (node-llama-cpp 3.21.1), the yardstick our
// own engine is measured against.
//
// - The file is validated by lab/gguf before llama.cpp sees it: llama.cpp aborts the whole process
//   on some malformed GGUFs, our validator throws a GgufError instead.
// - Threads are always set (llama.cpp's default of >= 4 threads is ~100x slower on 2 cores).
// - `exact` (default) asks for an F32 KV cache and flash attention off, so distributions can be
//   compared with LabEngine to 1e-4.
// - One llama.cpp context holds maxSequences sequences, each in its own stream of KV cells
//   (node-llama-cpp creates contexts with kv_unified off).
// - step(): one controlledEvaluate per item, all issued in the same tick. node-llama-cpp queues each
//   call (LlamaContext._decodeTokens) and dispatches the queue on setImmediate, or at once when every
//   sequence of the context has queued; dispatchPendingBatch then puts every queued item into ONE
//   llama_batch (initBatch(total tokens), addToBatch per item, one decodeBatch = llama_decode) as long
//   as the tokens fit its batch size (512 here; larger steps are split into several llama_decode
//   calls). Measured (target model, 1 thread): 16 sequences × 1 token issued together make one
//   initBatch(16) and take 7.5 ms; issued one after another they make 16 batches and take 19.7 ms.
// - Distributions come from the greedy sampler's full-vocabulary softmax ("probabilities"), turned
//   into log-probabilities, and only for the rows an item asks for. A greedy sampled token with no
//   row asked for comes from llama.cpp's own sampler (no 1,024-entry Map is built at all); any other
//   sampler draws from the row with our Sampler, so both engines give the same draws for a seed.
// - fork() copies the parent's KV through llama.cpp's per-sequence state file (on /dev/shm): 1.4 ms
//   for a 64-token prefix and 5.3 ms for 512, against 9.7 ms and 153 ms to evaluate the prefix
//   again, and the distributions afterwards are identical (max |Δ| 0).
import { existsSync } from "node:fs";
import { rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LlamaContext, LlamaContextSequence, LlamaModel, ControlledEvaluateInputItem, ControlledEvaluateIndexOutput, Token } from "node-llama-cpp";
import { openGguf, llamaHparams, type LlamaHparams } from "../gguf/index.ts";
import {
  EngineError, checkStepItems, checkTokens, kvBytesPerTokenFormula, peakRssBytes,
  type DecodeStep, type Engine, type EngineOptions, type EngineTokenizer, type KvReport, type MemoryReport, type Sequence,
  type StepItem, type StepOutput, type StepResult,
} from "./engine.ts";
import { cpuLlama } from "./node-llama.mjs";

// ---------------------------------------------------------------------------------------------
// Loading

interface FileFacts {
  fileBytes: number;
  tensorBytes: number;
  parameters: number;
}

/** llama.cpp rounds the context's total cells up to a multiple of 256 (GGML_PAD in llama_context). */
const LLAMA_CELL_PAD = 256;

const KV_NOTE = "llama.cpp keeps KV in cells of one token, each sequence in its own stream of " +
  "cellsPerSequence cells (node-llama-cpp turns kv_unified off), so a sequence's free cells cannot serve another; " +
  "no cell is ever shared (no KV copy between sequences). node-llama-cpp does not expose llama.cpp's cell " +
  "count: blocksUsed is the sum of the sequences' lengths as node-llama-cpp tracks them.";

export class LlamaCppEngine implements Engine {
  readonly name = "llama" as const;
  readonly tokenizer: EngineTokenizer;
  private readonly live = new Set<LlamaSequence>();
  private disposed = false;
  private forks = 0;

  private constructor(
    readonly path: string,
    readonly hparams: LlamaHparams,
    readonly contextSize: number,
    readonly maxSequences: number,
    readonly threads: number,
    readonly exact: boolean,
    private readonly facts: FileFacts,
    readonly model: LlamaModel,
    readonly context: LlamaContext,
  ) {
    this.tokenizer = llamaTokenizer(model, hparams.nVocab);
  }

  static async load(path: string, opts: EngineOptions = {}): Promise<LlamaCppEngine> {
    const file = await openGguf(path); // throws GgufError on anything llama.cpp could abort on
    const hparams = llamaHparams(file);
    const threads = opts.threads ?? 1;
    const maxSequences = opts.maxSequences ?? 4;
    const contextSize = opts.contextSize ?? Math.min(hparams.nCtxTrain, 2048);
    const exact = opts.exact ?? true;
    if (!Number.isInteger(threads) || threads < 1) throw new EngineError(`threads must be an integer >= 1, got ${threads}`);
    if (!Number.isInteger(maxSequences) || maxSequences < 1) throw new EngineError(`maxSequences must be an integer >= 1, got ${maxSequences}`);
    if (!Number.isInteger(contextSize) || contextSize < 1) throw new EngineError(`contextSize must be an integer >= 1, got ${contextSize}`);
    const facts: FileFacts = {
      fileBytes: (await stat(path)).size,
      tensorBytes: file.tensors.reduce((s, t) => s + t.byteSize, 0),
      parameters: file.tensors.reduce((s, t) => s + t.ne.reduce((a, b) => a * b, 1), 0),
    };
    const llama = await cpuLlama();
    const model = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
    try {
      const context = await model.createContext({
        // One cell more than the engine promises: node-llama-cpp keeps a sequence below its context
        // size by one token and, at that limit, silently erases the oldest 100 tokens ("context
        // shift"); with the extra cell, a sequence holds all contextSize tokens (checkTokens refuses more).
        contextSize: contextSize + 1,
        sequences: maxSequences,
        threads: { ideal: threads, min: threads },
        batchSize: Math.min(512, (contextSize + 1) * maxSequences),
        flashAttention: exact ? false : "auto",
        ...(exact ? { experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32" } as const : {}),
        failedCreationRemedy: false,
      });
      return new LlamaCppEngine(path, hparams, contextSize, maxSequences, threads, exact, facts, model, context);
    } catch (err) {
      await model.dispose(); // nothing half-loaded stays behind
      throw err;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Sequences and the batched step

  async createSequence(): Promise<Sequence> {
    this.assertOpen();
    if (this.context.sequencesLeft === 0) {
      throw new EngineError(`all ${this.maxSequences} sequences are in use; free one or load with a larger maxSequences`);
    }
    const seq = new LlamaSequence(this, this.context.getSequence());
    this.live.add(seq);
    return seq;
  }

  async step(items: StepItem[]): Promise<StepResult[]> {
    this.assertOpen();
    // Every check runs before anything is sent: a bad item throws with every sequence untouched.
    const seqs = checkStepItems(items, this.hparams.nVocab, this.contextSize, (s) => this.own(s));
    const plans = items.map(planItem);
    // Issued in the same tick (no await between the calls), so node-llama-cpp puts every item into
    // one llama_decode batch (see the top of the file).
    const settled = await Promise.allSettled(plans.map((plan, i) => seqs[i].seq.controlledEvaluate(plan.input)));
    const outputs = settled.map((r) => {
      if (r.status === "rejected") throw r.reason;
      return r.value;
    });
    // Draws happen here, in item order, after every row is in: two items sharing one seeded
    // Sampler draw in a fixed order whatever order llama.cpp finished in.
    return outputs.map((out, i) => readItem(plans[i], items[i], out, this.hparams.nVocab));
  }

  async decode(steps: DecodeStep[]): Promise<Float32Array[]> {
    const results = await this.step(steps.map((s) => ({ sequence: s.sequence, tokens: [s.token], output: "last" })));
    return results.map((r) => r.logprobs[0]);
  }

  memory(): MemoryReport {
    const kvElementBytes = this.exact ? 4 : 2;
    const perToken = kvBytesPerTokenFormula(this.hparams, kvElementBytes);
    const kv = this.kvReport(perToken);
    return {
      fileBytes: this.facts.fileBytes,
      tensorBytes: this.facts.tensorBytes,
      weightBytes: this.model.size,
      bitsPerWeight: (8 * this.facts.tensorBytes) / this.facts.parameters,
      kvBytesPerToken: perToken,
      kvBytesPerTokenFormula: perToken,
      kvBytesInUse: kv.blocksUsed * kv.bytesPerBlock,
      kvBytesAllocated: kv.blocksTotal * kv.bytesPerBlock,
      kv,
      rssBytes: process.memoryUsage().rss,
      peakRssBytes: peakRssBytes(),
    };
  }

  /** llama.cpp's KV cells as blocks of one token. cellsPerSequence is what node-llama-cpp asked for
   *  per sequence (contextSize + 1, padded to 256 below the training context). */
  private kvReport(bytesPerCell: number): KvReport & { cellsPerSequence: number } {
    const cellsPerSequence = this.context.contextSize;
    const total = Math.ceil((cellsPerSequence * this.maxSequences) / LLAMA_CELL_PAD) * LLAMA_CELL_PAD;
    let used = 0;
    for (const s of this.live) used += s.length;
    return {
      blockSize: 1, blocksTotal: total, blocksUsed: used, blocksShared: 0, blocksFree: total - used,
      bytesPerBlock: bytesPerCell, cellsPerSequence, note: KV_NOTE,
    };
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.live.clear();
    await this.context.dispose();
    await this.model.dispose();
  }

  /**
   * node-llama-cpp's own greedy generation loop on each sequence at once — `sequence.evaluate(
   * [token], { temperature: 0 })`, where sampling, the next evaluation and the hand-off of each
   * token all stay inside node-llama-cpp (concurrent loops are batched like step's items) — for
   * `steps` tokens each. Not part of the Engine interface: it is the strongest llama.cpp baseline a
   * decode-speed comparison can use, faster than step() because it makes no round trip through our
   * code per token. Returns each sequence's tokens; the last one is not evaluated.
   */
  async greedyLoop(items: { sequence: Sequence; token: number }[], steps: number): Promise<number[][]> {
    this.assertOpen();
    const seqs = items.map(({ sequence, token }) => {
      const own = this.own(sequence);
      checkTokens([token], this.hparams.nVocab, own.length, this.contextSize);
      if (own.length + steps > this.contextSize) throw new EngineError(`greedyLoop: ${steps} tokens do not fit the context after ${own.length}`);
      return own;
    });
    return Promise.all(seqs.map(async (own, i) => {
      const out: number[] = [];
      if (steps <= 0) return out;
      for await (const t of own.seq.evaluate([items[i].token as Token], { temperature: 0 })) {
        out.push(t);
        if (out.length >= steps) break;
      }
      return out;
    }));
  }

  /** A live sequence of this engine, or a clear error (checked before a step sends anything). */
  private own(sequence: Sequence): LlamaSequence {
    if (!(sequence instanceof LlamaSequence) || sequence.engine !== this) throw new EngineError("step: sequence belongs to another engine");
    sequence.assertUsable();
    return sequence;
  }

  /** A fresh path for one fork's state file: tmpfs where the machine has it (no disk write). */
  /** @internal */ forkStatePath(): string {
    const dir = existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
    return join(dir, `inference-lab-fork-${process.pid}-${this.forks++}.state`);
  }

  /** @internal */ forget(seq: LlamaSequence): void {
    this.live.delete(seq);
  }

  /** @internal */ assertOpen(): void {
    if (this.disposed) throw new EngineError("the engine has been disposed");
  }
}

// ---------------------------------------------------------------------------------------------
// One step item as controlledEvaluate input, and its result back

interface ItemPlan {
  input: ControlledEvaluateInputItem[];
  output: StepOutput;
  /** Positions whose distribution llama.cpp must hand back (as a probability Map). */
  rowAt: boolean[];
  /** The next token comes from llama.cpp's own greedy sampler (no distribution built). */
  native: boolean;
}

/**
 * Which positions need a distribution: every one for "all", the last for "last", and the last for
 * a non-greedy sampler even under "none" (our Sampler draws from the row, which is then not
 * returned). A greedy sampler under "none" asks llama.cpp for the token only.
 */
function planItem(item: StepItem): ItemPlan {
  const output = item.output ?? "last";
  const last = item.tokens.length - 1;
  const native = item.sample !== undefined && item.sample.greedy && (output === "none" || output === "argmax");
  const rowAt = item.tokens.map((_, i) => output === "all" || (i === last && (output === "last" || (item.sample !== undefined && !native))));
  // "argmax": llama.cpp's greedy pick after every token, and no distribution unless a non-greedy sampler needs the last row.
  const tokenAt = item.tokens.map((_, i) => output === "argmax" || (native && i === last));
  const input: ControlledEvaluateInputItem[] = item.tokens.map((t, i) => {
    if (!rowAt[i] && !tokenAt[i]) return t as Token;
    return [t as Token, { generateNext: { ...(rowAt[i] ? { probabilities: true } : {}), ...(tokenAt[i] ? { token: true } : {}), options: { temperature: 0 } } }];
  });
  return { input, output, rowAt, native };
}

function readItem(plan: ItemPlan, item: StepItem, out: (ControlledEvaluateIndexOutput | undefined)[], nVocab: number): StepResult {
  const rows: Float32Array[] = [];
  for (let i = 0; i < plan.rowAt.length; i++) {
    if (!plan.rowAt[i]) continue;
    const probabilities = out[i]?.next?.probabilities;
    if (!probabilities) throw new EngineError(`llama.cpp returned no distribution for position ${i}`);
    rows.push(logProbRow(probabilities, nVocab));
  }
  const last = rows[rows.length - 1];
  const logprobs = plan.output === "all" ? rows : plan.output === "last" ? [last] : [];
  const argmax = plan.output === "argmax" ? plan.rowAt.map((_, i) => {
    const token = out[i]?.next?.token;
    if (token == null) throw new EngineError(`llama.cpp returned no greedy token for position ${i}`);
    return token as number;
  }) : undefined;
  if (argmax) {
    if (!item.sample) return { logprobs, argmax };
    return { logprobs, argmax, token: plan.native ? argmax[argmax.length - 1] : item.sample.sample(last) };
  }
  if (!item.sample) return { logprobs };
  if (plan.native) {
    const token = out[plan.rowAt.length - 1]?.next?.token;
    if (token == null) throw new EngineError("llama.cpp returned no sampled token");
    return { logprobs, token };
  }
  return { logprobs, token: item.sample.sample(last) };
}

// ---------------------------------------------------------------------------------------------
// One sequence of the shared context

class LlamaSequence implements Sequence {
  private freed = false;
  private static nextId = 0;
  readonly id = LlamaSequence.nextId++;

  constructor(readonly engine: LlamaCppEngine, readonly seq: LlamaContextSequence) {}

  get tokens(): readonly number[] {
    return this.seq.contextTokens;
  }

  get length(): number {
    return this.seq.nextTokenIndex;
  }

  async evaluate(tokens: number[], opts: { all?: boolean } = {}): Promise<Float32Array[]> {
    const [result] = await this.engine.step([{ sequence: this, tokens, output: opts.all === true ? "all" : "last" }]);
    return result.logprobs;
  }

  async prefill(tokens: number[]): Promise<Float32Array> {
    return (await this.evaluate(tokens))[0];
  }

  async truncate(n: number): Promise<void> {
    this.assertUsable();
    if (!Number.isInteger(n) || n < 0 || n > this.length) throw new EngineError(`truncate(${n}): must be an integer in [0, ${this.length}]`);
    if (n < this.length) await this.seq.eraseContextTokenRanges([{ start: n, end: this.length }]);
  }

  /**
   * node-llama-cpp exposes no llama_memory_seq_cp, but it does save and load one sequence's state
   * (its tokens and KV cells) as a file: the parent's state goes to tmpfs, into the child, and the
   * child drops positions >= n. A copy, so the child's distributions equal the parent's exactly.
   */
  async fork(n: number = this.length): Promise<Sequence> {
    this.assertUsable();
    if (!Number.isInteger(n) || n < 0 || n > this.length) throw new EngineError(`fork(${n}): must be an integer in [0, ${this.length}]`);
    const child = (await this.engine.createSequence()) as LlamaSequence;
    if (n === 0) return child;
    const file = this.engine.forkStatePath();
    try {
      await this.seq.saveStateToFile(file);
      await child.seq.loadStateFromFile(file, { acceptRisk: true }); // same model, same context
      await child.truncate(n);
    } catch (err) {
      await child.free();
      throw err;
    } finally {
      await rm(file, { force: true });
    }
    return child;
  }

  async free(): Promise<void> {
    if (this.freed) return;
    this.freed = true;
    this.engine.forget(this);
    await this.seq.dispose();
  }

  /** @internal */ assertUsable(): void {
    this.engine.assertOpen();
    if (this.freed) throw new EngineError("this sequence has been freed");
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers

/**
 * node-llama-cpp's token → probability map as a dense row of natural-log probabilities. The addon
 * normalises with a float32 running sum, which over a 32,000-token vocabulary is off by up to ~5e-4
 * (the same factor for every token of the row); summing the probabilities again in float64 removes
 * that offset, leaving llama.cpp's logits as they were.
 */
function logProbRow(probabilities: Map<number, number>, nVocab: number): Float32Array {
  const row = new Float32Array(nVocab).fill(-Infinity);
  let total = 0;
  for (const p of probabilities.values()) total += p;
  const logTotal = Math.log(total);
  for (const [token, p] of probabilities) row[token] = Math.log(p) - logTotal;
  return row;
}

function llamaTokenizer(model: LlamaModel, nVocab: number): EngineTokenizer {
  const bos = model.tokens.bos;
  const eos = model.tokens.eos;
  return {
    vocabSize: nVocab,
    bosId: bos ?? -1,
    eosId: eos ?? -1,
    encode(text: string, opts: { bos?: boolean } = {}): number[] {
      const ids = model.tokenize(text, false) as number[];
      return opts.bos !== false && bos != null ? [bos, ...ids] : ids;
    },
    decode(ids: number[]): string {
      return model.detokenize(ids as Token[], false);
    },
  };
}
