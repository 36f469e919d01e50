// LlamaCppEngine: the Engine interface over llama.cpp (node-llama-cpp 3.21.1), the yardstick our
// own engine is measured against.
//
// - The file is validated by lab/gguf before llama.cpp sees it: llama.cpp aborts the whole process
//   on some malformed GGUFs, our validator throws a GgufError instead.
// - Threads are always set (llama.cpp's default of >= 4 threads is ~100x slower on 2 cores).
// - `exact` (default) asks for an F32 KV cache and flash attention off, so distributions can be
//   compared with LabEngine to 1e-4.
// - One llama.cpp context holds maxSequences sequences; a batched decode is one controlledEvaluate
//   per sequence issued in the same tick, which node-llama-cpp dispatches as one llama_decode batch.
// - Distributions come from the greedy sampler's full-vocabulary softmax ("probabilities"), turned
//   into log-probabilities.
import { stat } from "node:fs/promises";
import type { LlamaContext, LlamaContextSequence, LlamaModel, ControlledEvaluateInputItem, Token } from "node-llama-cpp";
import { openGguf, llamaHparams, type LlamaHparams } from "../gguf/index.ts";
import {
  EngineError, checkTokens, kvBytesPerTokenFormula, peakRssBytes,
  type DecodeStep, type Engine, type EngineOptions, type EngineTokenizer, type MemoryReport, type Sequence,
} from "./engine.ts";
import { cpuLlama } from "./node-llama.mjs";

// ---------------------------------------------------------------------------------------------
// Loading

interface FileFacts {
  fileBytes: number;
  tensorBytes: number;
  parameters: number;
}

export class LlamaCppEngine implements Engine {
  readonly name = "llama" as const;
  readonly tokenizer: EngineTokenizer;
  private readonly live = new Set<LlamaSequence>();
  private disposed = false;

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
        contextSize,
        sequences: maxSequences,
        threads: { ideal: threads, min: threads },
        batchSize: Math.min(512, contextSize * maxSequences),
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
  // Sequences and batched decode

  async createSequence(): Promise<Sequence> {
    this.assertOpen();
    if (this.context.sequencesLeft === 0) {
      throw new EngineError(`all ${this.maxSequences} sequences are in use; free one or load with a larger maxSequences`);
    }
    const seq = new LlamaSequence(this, this.context.getSequence());
    this.live.add(seq);
    return seq;
  }

  async decode(steps: DecodeStep[]): Promise<Float32Array[]> {
    this.assertOpen();
    const seen = new Set<Sequence>();
    for (const step of steps) {
      if (!(step.sequence instanceof LlamaSequence) || step.sequence.engine !== this) throw new EngineError("decode: sequence belongs to another engine");
      if (seen.has(step.sequence)) throw new EngineError("decode: a sequence appears twice in one batch");
      seen.add(step.sequence);
    }
    // Issued in the same tick, node-llama-cpp queues these and evaluates them in one batch.
    const rows = await Promise.all(steps.map((s) => s.sequence.evaluate([s.token])));
    return rows.map((r) => r[0]);
  }

  memory(): MemoryReport {
    const kvElementBytes = this.exact ? 4 : 2;
    const perToken = kvBytesPerTokenFormula(this.hparams, kvElementBytes);
    let inUse = 0;
    for (const s of this.live) inUse += s.length * perToken;
    return {
      fileBytes: this.facts.fileBytes,
      tensorBytes: this.facts.tensorBytes,
      weightBytes: this.model.size,
      bitsPerWeight: (8 * this.facts.tensorBytes) / this.facts.parameters,
      kvBytesPerToken: perToken,
      kvBytesPerTokenFormula: perToken,
      kvBytesInUse: inUse,
      kvBytesAllocated: perToken * this.context.contextSize * this.maxSequences,
      rssBytes: process.memoryUsage().rss,
      peakRssBytes: peakRssBytes(),
    };
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.live.clear();
    await this.context.dispose();
    await this.model.dispose();
  }

  /** @internal */ forget(seq: LlamaSequence): void {
    this.live.delete(seq);
  }

  /** @internal */ assertOpen(): void {
    if (this.disposed) throw new EngineError("the engine has been disposed");
  }
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
    this.assertUsable();
    checkTokens(tokens, this.engine.hparams.nVocab, this.length, this.engine.contextSize);
    const last = tokens.length - 1;
    const wantsRow = (i: number) => opts.all === true || i === last;
    const input: ControlledEvaluateInputItem[] = tokens.map((t, i) =>
      wantsRow(i) ? [t as Token, { generateNext: { probabilities: true, options: { temperature: 0 } } }] : t as Token);
    const out = await this.seq.controlledEvaluate(input);
    const rows: Float32Array[] = [];
    for (let i = 0; i < tokens.length; i++) {
      if (!wantsRow(i)) continue;
      const probabilities = out[i]?.next?.probabilities;
      if (!probabilities) throw new EngineError(`llama.cpp returned no distribution for position ${i}`);
      rows.push(logProbRow(probabilities, this.engine.hparams.nVocab));
    }
    return rows;
  }

  async prefill(tokens: number[]): Promise<Float32Array> {
    return (await this.evaluate(tokens))[0];
  }

  async truncate(n: number): Promise<void> {
    this.assertUsable();
    if (!Number.isInteger(n) || n < 0 || n > this.length) throw new EngineError(`truncate(${n}): must be an integer in [0, ${this.length}]`);
    if (n < this.length) await this.seq.eraseContextTokenRanges([{ start: n, end: this.length }]);
  }

  async fork(n: number = this.length): Promise<Sequence> {
    this.assertUsable();
    if (!Number.isInteger(n) || n < 0 || n > this.length) throw new EngineError(`fork(${n}): must be an integer in [0, ${this.length}]`);
    const prefix = this.tokens.slice(0, n);
    const child = (await this.engine.createSequence()) as LlamaSequence;
    try {
      // node-llama-cpp exposes no llama_memory_seq_cp, so the prefix is evaluated again.
      if (prefix.length > 0) await child.seq.controlledEvaluate(prefix as Token[]);
    } catch (err) {
      await child.free();
      throw err;
    }
    return child;
  }

  async free(): Promise<void> {
    if (this.freed) return;
    this.freed = true;
    this.engine.forget(this);
    await this.seq.dispose();
  }

  private assertUsable(): void {
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
