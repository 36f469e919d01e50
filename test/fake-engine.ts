// A fake Engine for scheduler tests (in the spirit of vLLM's mocked model runner in
// tests/v1/core/test_scheduler.py): no model, a tiny vocabulary, a next token that is a fixed function
// of every token the sequence holds, and a pool of KV blocks with a configurable size that throws the
// real KvCacheFullError before anything is written. Every step's items are logged, so a test can
// assert exactly which tokens of which sequence went into which step.
import {
  EngineError, KvCacheFullError, checkStepItems,
  type DecodeStep, type Engine, type EngineTokenizer, type MemoryReport, type Sequence, type StepItem, type StepResult,
} from "../lab/engine/engine.ts";
import { argmax, logSoftmaxInPlace } from "../lab/engine/sampler.ts";
import type { LlamaHparams } from "../lab/gguf/index.ts";

export interface FakeEngineOptions {
  /** Vocabulary size; ids 0..2 are <unk>, <s>, </s>. Default 32. */
  nVocab?: number;
  contextSize?: number; // default 512
  maxSequences?: number; // default 8
  blockSize?: number; // default 4
  blocks?: number; // default 1000
  /** The next token is EOS whenever this returns true for the sequence's tokens. */
  eosWhen?: (tokens: readonly number[]) => boolean;
  /** Called once per successful step (advance a fake clock here). */
  onStep?: (items: StepItem[]) => void;
}

export interface LoggedItem {
  sequence: number;
  tokens: number[];
  output: "none" | "last" | "all" | "argmax";
  sampled: boolean;
}

/** The deterministic next token after `tokens`: a rolling hash of all of them, never EOS. */
export function fakeNextToken(tokens: readonly number[], nVocab = 32): number {
  let h = 7;
  for (const t of tokens) h = (h * 31 + t + 1) % 1_000_003;
  return 3 + (h % (nVocab - 3));
}

class FakeSequence implements Sequence {
  readonly tokens: number[] = [];
  readonly table: number[] = [];
  freed = false;
  constructor(readonly engine: FakeEngine, readonly id: number) {}
  get length(): number { return this.tokens.length; }
  async evaluate(tokens: number[], opts: { all?: boolean } = {}): Promise<Float32Array[]> {
    const [r] = await this.engine.step([{ sequence: this, tokens, output: opts.all ? "all" : "last" }]);
    return r.logprobs;
  }
  async prefill(tokens: number[]): Promise<Float32Array> {
    return (await this.evaluate(tokens))[0];
  }
  /** Drops positions >= n and the blocks past them (speculative decoding rolls rejected drafts back). */
  async truncate(n: number): Promise<void> {
    if (this.freed) throw new EngineError("truncate: the sequence is freed");
    if (!Number.isInteger(n) || n < 0 || n > this.tokens.length) throw new EngineError(`truncate(${n}): the sequence holds ${this.tokens.length}`);
    this.tokens.length = n;
    this.engine.truncateBlocks(this);
  }
  async fork(): Promise<Sequence> {
    throw new EngineError("the fake engine does not fork");
  }
  async free(): Promise<void> {
    if (this.freed) return;
    this.freed = true;
    this.engine.release(this);
  }
}

export class FakeEngine implements Engine {
  readonly name = "lab" as const;
  readonly path = "fake.gguf";
  readonly hparams: LlamaHparams;
  readonly tokenizer: EngineTokenizer;
  readonly contextSize: number;
  readonly maxSequences: number;
  readonly threads = 1;
  readonly blockSize: number;
  readonly blocksTotal: number;
  /** Every successful step's items, in order. */
  readonly log: LoggedItem[][] = [];
  /** Free block ids, handed out from the front; freed ones join the back. */
  readonly freeBlocks: number[];
  private readonly live = new Set<FakeSequence>();
  private nextId = 0;

  constructor(private readonly opts: FakeEngineOptions = {}) {
    const nVocab = opts.nVocab ?? 32;
    this.hparams = { nVocab, nCtxTrain: 512, nEmbd: 8, nFf: 16, nHead: 1, nKvHead: 1, nLayer: 1, headDim: 8, rmsEps: 1e-5, ropeFreqBase: 10000 };
    this.tokenizer = {
      vocabSize: nVocab, bosId: 1, eosId: 2,
      encode: () => { throw new EngineError("the fake engine has no tokenizer"); },
      decode: (ids) => ids.join(" "),
    };
    this.contextSize = opts.contextSize ?? 512;
    this.maxSequences = opts.maxSequences ?? 8;
    this.blockSize = opts.blockSize ?? 4;
    this.blocksTotal = opts.blocks ?? 1000;
    this.freeBlocks = Array.from({ length: this.blocksTotal }, (_, i) => i);
  }

  /** Live sequences (not freed). */
  get liveSequences(): number { return this.live.size; }

  async createSequence(): Promise<Sequence> {
    if (this.live.size >= this.maxSequences) throw new EngineError(`all ${this.maxSequences} sequences are in use`);
    const s = new FakeSequence(this, this.nextId++);
    this.live.add(s);
    return s;
  }

  async step(items: StepItem[]): Promise<StepResult[]> {
    const seqs = checkStepItems(items, this.hparams.nVocab, this.contextSize, (s) => {
      if (!(s instanceof FakeSequence) || s.engine !== this || s.freed) throw new EngineError("step: a freed or foreign sequence");
      return s;
    });
    const needed = seqs.reduce((n, s, i) => n + Math.ceil((s.length + items[i].tokens.length) / this.blockSize) - s.table.length, 0);
    if (needed > this.freeBlocks.length) throw new KvCacheFullError(needed, this.freeBlocks.length);
    const results = items.map((item, i) => {
      const s = seqs[i];
      while (s.table.length < Math.ceil((s.length + item.tokens.length) / this.blockSize)) s.table.push(this.freeBlocks.shift()!);
      const output = item.output ?? "last";
      const rows: Float32Array[] = [];
      for (let t = 0; t < item.tokens.length; t++) {
        s.tokens.push(item.tokens[t]);
        if (output === "all" || output === "argmax" || t === item.tokens.length - 1) rows.push(this.row(s.tokens));
      }
      const result: StepResult = { logprobs: output === "none" || output === "argmax" ? [] : rows };
      if (output === "argmax") result.argmax = rows.map((row) => argmax(row));
      if (item.sample) result.token = item.sample.sample(rows[rows.length - 1]);
      return result;
    });
    this.log.push(items.map((item, i) => ({
      sequence: seqs[i].id, tokens: [...item.tokens], output: item.output ?? "last", sampled: item.sample !== undefined,
    })));
    this.opts.onStep?.(items);
    return results;
  }

  async decode(steps: DecodeStep[]): Promise<Float32Array[]> {
    return (await this.step(steps.map(({ sequence, token }) => ({ sequence, tokens: [token] })))).map((r) => r.logprobs[0]);
  }

  /** Log-probabilities peaked on the next token, falling off with distance from it, so a
   *  temperature sampler has real choices and a greedy one picks fakeNextToken. */
  private row(tokens: readonly number[]): Float32Array {
    const V = this.hparams.nVocab;
    const next = this.opts.eosWhen?.(tokens) ? this.tokenizer.eosId : fakeNextToken(tokens, V);
    const row = new Float32Array(V);
    for (let i = 0; i < V; i++) row[i] = -0.5 * Math.abs(i - next);
    return logSoftmaxInPlace(row);
  }

  /** @internal */ truncateBlocks(s: FakeSequence): void {
    const keep = Math.ceil(s.tokens.length / this.blockSize);
    while (s.table.length > keep) this.freeBlocks.push(s.table.pop()!);
  }

  /** @internal */ release(s: FakeSequence): void {
    this.live.delete(s);
    this.freeBlocks.push(...s.table);
    s.table.length = 0;
  }

  memory(): MemoryReport {
    const blocksFree = this.freeBlocks.length;
    return {
      fileBytes: 0, tensorBytes: 0, weightBytes: 0, bitsPerWeight: 0, kvBytesPerToken: 0, kvBytesPerTokenFormula: 0,
      kvBytesInUse: 0, kvBytesAllocated: 0, rssBytes: 0, peakRssBytes: 0,
      kv: { blockSize: this.blockSize, blocksTotal: this.blocksTotal, blocksUsed: this.blocksTotal - blocksFree, blocksShared: 0, blocksFree, bytesPerBlock: 0 },
    };
  }

  async dispose(): Promise<void> {
    for (const s of [...this.live]) await s.free();
  }
}
