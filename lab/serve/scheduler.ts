// Iteration-level ("continuous") batching over engine.step: the scheduler that decides, before every
// forward pass, which requests run and how many of their tokens go in.
//
// Why: a GPU or CPU doing one matrix product over 16 rows costs little more than over 1 row, because
// the weights are read once for all rows. Static batching (gather N requests, run them all to the end,
// then the next N) wastes those rows: a finished request's row sits empty until the slowest one ends,
// and a new request waits for the whole batch. Continuous batching (Orca; vLLM, SGLang, nano-vllm)
// re-forms the batch at every step: finished requests leave, waiting ones join at once.
//
// The model is vLLM v1's scheduler (vllm/v1/core/sched/scheduler.py): every request has its tokens
// (prompt + generated so far) and a count of them already computed (whose keys and values are in its
// sequence's KV). One step gives each scheduled request `tokens.length - computed` new tokens, capped
// by a per-step token budget (`maxBatchTokens`):
// - a decoding request has exactly one token not computed (the one sampled last step): 1 token;
// - a request still prefilling gets as much of its prompt as the budget leaves (chunked prefill): a
//   long prompt spreads over several steps instead of stalling every running stream for its whole
//   prefill (Sarathi-Serve). A chunk that does not reach the end asks for no output ("none"); the
//   chunk that does samples the request's next token.
// Running requests are scheduled first (in admission order), then waiting ones, first come first
// served and never skipping ahead: a request that does not fit blocks those behind it.
//
// When the KV pool runs out (engine.step throws KvCacheFullError, having written nothing), the
// prefix cache (if any) is asked to evict first; then the most recently admitted request is
// preempted: its sequence is freed, it goes back to the FRONT of the waiting queue with its generated
// tokens kept, and later it is recomputed (prompt + generated re-prefilled). Its sampler was not
// called for the failed step, so its output is exactly what it would have been (vLLM's "recompute"
// preemption; the alternative, swapping KV to host memory, is not done here).
//
// Speculative decoding (optional, per scheduler): a decoding request's row becomes [pending token,
// d1..dk] with output "all" — the k drafts come from a BatchDrafter that proposes for every such
// request at once (one draft-model step per draft position for all of them, or prompt lookup) —
// and after the pass verifyDraft accepts a prefix of the drafts plus one more token, the sequence
// is cut back to what was accepted, and a request can gain up to k + 1 tokens in one step. The k
// draft tokens count against the step's token budget, so under load speculation takes budget from
// other requests' prefill: the trade-off notebook 04 measures at low and high load.
//
// Reading order: requests and options, the per-request record, the prefix-cache hook, the drafter
// hook, the scheduler (submit, cancel, step = cancel → schedule → draft → run with preemption →
// advance), then small helpers.
import { EngineError, KvCacheFullError, type Engine, type Sequence, type StepItem } from "../engine/engine.ts";
import type { Sampler } from "../engine/sampler.ts";
import { mulberry32 } from "../random.ts";
import type { DraftProposal, DraftSampling } from "../speculative/drafters.ts";
import { samplerDistribution, verifyDraft } from "../speculative/verify.ts";

// ---------------------------------------------------------------------------------------------
// Requests and options

export interface Request {
  /** Unique among the requests the scheduler still knows. */
  id: string;
  /** Token ids, starting as the model expects (BOS …); at least one, fewer than the context. */
  prompt: number[];
  /** New tokens to produce at most (>= 1). */
  maxTokens: number;
  /** This request's own sampler: a seeded one keeps drawing from its own stream across steps. */
  sampler: Sampler;
  /** Stop after a token for which this returns true (e.g. the text so far ends with a stop string). */
  stop?: (generated: readonly number[]) => boolean;
  /** Stop when the end-of-sequence token is drawn (it is not part of the output). Default true. */
  stopAtEos?: boolean;
  /** Called with each generated token as soon as its step ends. */
  onToken?: (token: number, record: RequestRecord) => void;
  /** When the request arrived, on the scheduler's clock. Default: the clock when it is submitted. */
  arrival?: number;
}

export type SchedulingMode = "continuous" | "static";

export interface SchedulerOptions {
  /** "continuous" (default): the batch is re-formed every step. "static": gather up to `batchSize`
   *  waiting requests, run them all to completion, and only then gather the next ones. */
  mode?: SchedulingMode;
  /** Tokens one step may hold, over all its rows (vLLM's max_num_batched_tokens). Default 256. */
  maxBatchTokens?: number;
  /** Requests running at once (vLLM's max_num_seqs). Default and maximum: engine.maxSequences. */
  maxRunning?: number;
  /** Static mode: requests per batch. Default maxRunning. */
  batchSize?: number;
  /** Split a prompt that does not fit the step's remaining budget over several steps. Default true.
   *  Off, a prompt is admitted only when its whole prefill fits the remaining budget (so a prompt
   *  longer than maxBatchTokens is refused at submit). */
  chunkedPrefill?: boolean;
  /** Milliseconds, any origin; inject a fake one in tests. Default performance.now. */
  clock?: () => number;
  /** Where admitted requests get their sequence and finished ones give it back. Default: a fresh
   *  sequence per request, freed when it finishes (no prefix reuse). */
  prefixCache?: PrefixCacheHook;
  /** Speculative decoding for every decoding request: up to `k` drafts per step from `drafter`. */
  speculative?: { drafter: BatchDrafter; k: number };
  /** Greedy requests ask the engine for the token only (output "none" with the sampler): llama.cpp
   *  then takes the argmax itself and builds no full-vocabulary distribution, several times cheaper
   *  per row there. Default false: the sampler gets the row as a distribution, exactly as
   *  lab/engine/generate.ts samples (the argmax is the same but for exact ties). */
  nativeGreedy?: boolean;
}

// ---------------------------------------------------------------------------------------------
// What the scheduler keeps per request

export type RequestState = "waiting" | "running" | "finished";
/** length: maxTokens (or the context) reached; stop: EOS or the stop predicate; cancelled: cancel();
 *  error: it can never run (it needs more KV blocks than the pool holds) or its callback threw. */
export type FinishReason = "length" | "stop" | "cancelled" | "error";

export interface RequestRecord {
  readonly request: Request;
  state: RequestState;
  /** Tokens generated so far (never the EOS that stopped it). */
  readonly generated: number[];
  /** Tokens of prompt + generated whose KV is in the request's sequence right now. */
  computed: number;
  /** Prompt tokens whose KV came from the prefix cache at the latest admission. */
  cachedTokens: number;
  /** Times this request was preempted (its KV dropped and recomputed later). */
  preemptions: number;
  /** Speculative decoding: draft tokens verified for this request, and how many were accepted. */
  drafted: number;
  accepted: number;
  finishReason?: FinishReason;
  /** Why it failed, when finishReason is "error". */
  error?: string;
  /** On the scheduler's clock: arrival, first generated token, every generated token, finish. */
  readonly times: { arrival: number; firstToken?: number; tokens: number[]; finish?: number };
}

/** Time to first token, inter-token latencies and end-to-end latency of a finished request (ms). */
export function requestLatencies(record: RequestRecord): { ttft?: number; itl: number[]; e2e?: number } {
  const { arrival, firstToken, tokens, finish } = record.times;
  return {
    ttft: firstToken === undefined ? undefined : firstToken - arrival,
    itl: tokens.slice(1).map((t, i) => t - tokens[i]),
    e2e: finish === undefined ? undefined : finish - arrival,
  };
}

/** What one step did. */
export interface StepStats {
  /** 0, 1, 2, … over the scheduler's life. */
  step: number;
  /** The clock after the forward pass. */
  time: number;
  /** Items in the forward pass (one per scheduled request). */
  rows: number;
  /** Tokens of prompts (or recomputed outputs) evaluated in this step. */
  prefillTokens: number;
  /** Rows that decoded (one generated token, or with speculation a pending token and its drafts). */
  decodeTokens: number;
  /** Speculative decoding: rows that carried drafts, draft tokens verified, drafts accepted. */
  draftRows: number;
  draftTokens: number;
  acceptedTokens: number;
  /** Tokens scheduled per request id, in step order ("all": a pending token and its drafts). */
  scheduled: { id: string; tokens: number; output: "none" | "last" | "all" }[];
  /** Ids admitted (moved from waiting to running) this step. */
  admitted: string[];
  /** Ids preempted this step, in the order they were preempted. */
  preempted: string[];
  /** Ids that finished this step (any reason). */
  finished: string[];
  /** After the step. */
  running: number;
  waiting: number;
  kvBlocksUsed: number;
  kvBlocksFree: number;
}

// ---------------------------------------------------------------------------------------------
// The prefix-cache hook. lab/prefix-cache's PrefixCache has this shape (lookup, insert, release,
// evict), so one can be passed as is; the default below reuses nothing.

export interface PrefixCacheHook {
  /** A live sequence already holding the first `cachedTokens` of `tokens` (a fresh one on a miss);
   *  cachedTokens <= tokens.length - 1, so at least one token is computed and sampled from. */
  lookup(tokens: readonly number[]): Promise<{ sequence: Sequence; cachedTokens: number }>;
  /** Offered after each computed chunk, so later requests can share it while this one runs. */
  insert?(sequence: Sequence): void;
  /** The request is done with its sequence (finished, cancelled or preempted): keep what may be
   *  reused, free the rest. */
  release(sequence: Sequence): Promise<void>;
  /** Frees up to `blocks` KV blocks nobody runs on; returns how many became free. */
  evict?(blocks: number): Promise<number>;
}

// ---------------------------------------------------------------------------------------------
// The drafter hook: proposes draft tokens for many requests in one go (lab/serve/drafter.ts has a
// draft-model one that batches the draft passes and a prompt-lookup one).

export interface DraftRequest {
  /** The request's id: a drafter keeping per-request state (a draft sequence) keys it by this. */
  id: string;
  /** Every committed token: prompt and output so far. */
  context: readonly number[];
  /** Drafts wanted at most (>= 1). */
  k: number;
  sampling: DraftSampling;
}

export interface BatchDrafter {
  readonly name: string;
  /** One proposal per request, in order, each at most its k tokens (fewer, even none, is fine). */
  propose(requests: DraftRequest[]): Promise<DraftProposal[]>;
  /** The request is finished, cancelled or preempted: drop what is kept for it. */
  release(id: string): Promise<void>;
}

/** No prefix reuse: every request starts from an empty sequence, which is freed when it is done. */
export function noPrefixCache(engine: Engine): PrefixCacheHook {
  return {
    lookup: async () => ({ sequence: await engine.createSequence(), cachedTokens: 0 }),
    release: (sequence) => sequence.free(),
  };
}

// ---------------------------------------------------------------------------------------------
// The scheduler

interface Entry {
  record: RequestRecord;
  /** prompt + generated: the tokens the sequence must hold before the next sample. */
  tokens: number[];
  sequence?: Sequence;
  /** The prefill (or the recompute after a preemption) is done: each step adds one token. */
  decoding: boolean;
  cancelRequested: boolean;
  /** Most tokens it may generate: min(maxTokens, context - prompt), as lab/engine/generate.ts. */
  limit: number;
  /** Speculative decoding at temperature > 0: the uniform numbers of drafting and verification. */
  random?: () => number;
}

interface Planned {
  entry: Entry;
  tokens: number[];
  /** The chunk reaches the end of the request's tokens: sample its next token. */
  sample: boolean;
  /** One generated token after a finished prefill (counted as decode, not prefill, in the stats). */
  decode: boolean;
  /** Speculative decoding: drafts wanted (reserved in the budget), then the proposal got. */
  draftK?: number;
  proposal?: DraftProposal;
  /** After verification: drafts accepted. */
  accepted?: number;
}

/** A planned item after the pass: the sampled token, or (with drafts) every row for verification. */
interface Done {
  planned: Planned;
  token?: number;
  rows?: Float32Array[];
}

export class Scheduler {
  readonly mode: SchedulingMode;
  readonly maxBatchTokens: number;
  readonly maxRunning: number;
  readonly batchSize: number;
  readonly chunkedPrefill: boolean;
  private readonly clock: () => number;
  private readonly cache: PrefixCacheHook;
  /** A real prefix cache (its lookups may take or free blocks), not the default fresh sequence. */
  private readonly hasCache: boolean;
  private readonly speculative?: { drafter: BatchDrafter; k: number };
  private readonly nativeGreedy: boolean;
  /** Waiting requests, first come first served (preempted ones go back to the front). */
  private readonly waiting: Entry[] = [];
  /** Running requests in admission order: the last one is preempted first. */
  private readonly running: Entry[] = [];
  private readonly known = new Map<string, Entry>();
  /** Static mode: the ids of the batch being run; empty when the next batch may be gathered. */
  private readonly batch = new Set<string>();
  private steps = 0;
  private stepping = false;
  /** Positions per KV block: fixed for the engine's life (memory() is not free: it reads the
   *  process's RSS, so the scheduler calls it once per step, not once per request). */
  private readonly kvBlockSize: number;

  constructor(readonly engine: Engine, opts: SchedulerOptions = {}) {
    this.mode = opts.mode ?? "continuous";
    if (this.mode !== "continuous" && this.mode !== "static") throw new EngineError(`scheduler: mode must be "continuous" or "static", got "${this.mode}"`);
    this.maxBatchTokens = opts.maxBatchTokens ?? 256;
    positiveInteger("maxBatchTokens", this.maxBatchTokens);
    this.maxRunning = opts.maxRunning ?? engine.maxSequences;
    positiveInteger("maxRunning", this.maxRunning);
    if (this.maxRunning > engine.maxSequences) {
      throw new EngineError(`scheduler: maxRunning ${this.maxRunning} exceeds the engine's ${engine.maxSequences} sequences (open it with a larger maxSequences)`);
    }
    this.batchSize = opts.batchSize ?? this.maxRunning;
    positiveInteger("batchSize", this.batchSize);
    if (this.batchSize > this.maxRunning) throw new EngineError(`scheduler: batchSize ${this.batchSize} exceeds maxRunning ${this.maxRunning}`);
    this.chunkedPrefill = opts.chunkedPrefill ?? true;
    this.clock = opts.clock ?? (() => performance.now());
    this.cache = opts.prefixCache ?? noPrefixCache(engine);
    this.hasCache = opts.prefixCache !== undefined;
    this.nativeGreedy = opts.nativeGreedy ?? false;
    this.kvBlockSize = engine.memory().kv.blockSize;
    if (opts.speculative) {
      const { k, drafter } = opts.speculative;
      if (!Number.isInteger(k) || k < 1) throw new EngineError(`scheduler: speculative k must be an integer >= 1, got ${k}`);
      if (!drafter || typeof drafter.propose !== "function") throw new EngineError("scheduler: speculative needs a drafter");
      this.speculative = { k, drafter };
    }
  }

  /** Queues a request (checked now, so a bad one never reaches a step) and returns its record. */
  submit(request: Request): RequestRecord {
    this.checkRequest(request);
    const record: RequestRecord = {
      request, state: "waiting", generated: [], computed: 0, cachedTokens: 0, preemptions: 0, drafted: 0, accepted: 0,
      times: { arrival: request.arrival ?? this.clock(), tokens: [] },
    };
    const entry: Entry = {
      record, tokens: [...request.prompt], decoding: false, cancelRequested: false,
      limit: Math.min(request.maxTokens, this.engine.contextSize - request.prompt.length),
    };
    this.known.set(request.id, entry);
    this.waiting.push(entry);
    return record;
  }

  /** Cancels a waiting or running request; its KV is released at the start of the next step (the
   *  step in flight, if any, is not interrupted). Returns false for an unknown or finished id. */
  cancel(id: string): boolean {
    const entry = this.known.get(id);
    if (!entry || entry.record.state === "finished") return false;
    entry.cancelRequested = true;
    return true;
  }

  /** The record of a request still known (waiting, running, or finished and not yet forgotten). */
  record(id: string): RequestRecord | undefined {
    return this.known.get(id)?.record;
  }

  /** Drops finished requests' records (a long-running service calls this; tests keep them). */
  forgetFinished(): void {
    for (const [id, e] of this.known) if (e.record.state === "finished") this.known.delete(id);
  }

  get waitingCount(): number { return this.waiting.length; }
  get runningCount(): number { return this.running.length; }
  /** Requests waiting or running. */
  get pending(): number { return this.waiting.length + this.running.length; }

  /**
   * One iteration: release cancelled requests, schedule, run one forward pass (preempting while the
   * KV pool is full), then record tokens and finish requests. Returns undefined when there is
   * nothing to do.
   */
  async step(): Promise<StepStats | undefined> {
    // One step at a time: two interleaved steps would plan over the same requests.
    if (this.stepping) throw new EngineError("scheduler: step() called while another step is running (await it first)");
    this.stepping = true;
    try {
      const finished: string[] = [];
      await this.releaseCancelled(finished);
      if (this.pending === 0) return finished.length > 0 ? this.stats([], [], [], finished) : undefined;
      const admitted: string[] = [];
      const plan = await this.schedule(admitted);
      if (this.speculative) await this.draft(plan);
      const preempted: string[] = [];
      const done = await this.runWithPreemption(plan, preempted, finished);
      await this.advance(done, finished);
      return this.stats(done, admitted, preempted, finished);
    } finally {
      this.stepping = false;
    }
  }

  /** Steps until every submitted request has finished; returns every step's stats. */
  async runToCompletion(): Promise<StepStats[]> {
    const all: StepStats[] = [];
    for (;;) {
      const s = await this.step();
      if (!s) return all;
      all.push(s);
    }
  }

  // -------------------------------------------------------------------------------------------
  // 1. Cancellation

  private async releaseCancelled(finished: string[]): Promise<void> {
    for (const list of [this.running, this.waiting]) {
      for (const entry of list.filter((e) => e.cancelRequested)) {
        list.splice(list.indexOf(entry), 1);
        await this.finish(entry, "cancelled");
        finished.push(entry.record.request.id);
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // 2. Scheduling: running requests first, then waiting ones, under the token budget and the pool

  private async schedule(admitted: string[]): Promise<Planned[]> {
    let budget = this.maxBatchTokens;
    const plan: Planned[] = [];
    // Blocks this step will take, so admission stops before the pool is overcommitted (running
    // requests may still overcommit it: then the step preempts).
    let blocksNeeded = 0;
    // Free blocks, read when the first waiting request is considered (fresh sequences take none, so
    // without a prefix cache the count holds for the whole admission loop).
    let blocksFree: number | undefined;
    for (const entry of this.running) {
      if (budget === 0) break;
      const p = this.chunk(entry, budget);
      // A decoding request under speculation reserves room for its drafts in the budget.
      if (this.speculative && p.decode && p.sample) p.draftK = this.draftsWanted(entry, budget - p.tokens.length);
      plan.push(p);
      budget -= p.tokens.length + (p.draftK ?? 0);
      blocksNeeded += this.blocksFor(entry.sequence!, p.tokens.length + (p.draftK ?? 0));
    }
    if (this.mode === "static" && this.running.length === 0 && this.batch.size === 0) {
      // Gather the next batch: whoever is waiting now, up to batchSize, in arrival order.
      for (const e of this.waiting.slice(0, this.batchSize)) this.batch.add(e.record.request.id);
    }
    while (budget > 0 && this.waiting.length > 0 && this.running.length < this.maxRunning) {
      const entry = this.waiting[0];
      if (this.mode === "static" && !this.batch.has(entry.record.request.id)) break;
      blocksFree ??= this.blocksFree();
      if (!(await this.admit(entry, budget, blocksFree - blocksNeeded))) break; // FCFS: no skipping ahead
      const p = this.chunk(entry, budget);
      plan.push(p);
      budget -= p.tokens.length;
      blocksNeeded += this.blocksFor(entry.sequence!, p.tokens.length);
      admitted.push(entry.record.request.id);
      if (this.hasCache) blocksFree = undefined; // a cache's lookup may have taken or freed blocks
    }
    return plan;
  }

  /** The head of the queue gets a sequence (from the prefix cache or fresh) and moves to running,
   *  if its first chunk fits the budget (whole, without chunked prefill) and the free blocks. */
  private async admit(entry: Entry, budget: number, blocksFree: number): Promise<boolean> {
    const hit = await this.cache.lookup(entry.tokens);
    const remaining = entry.tokens.length - hit.cachedTokens;
    const n = Math.min(remaining, budget);
    // Without chunked prefill the whole prefill must fit this step; only a recompute after a
    // preemption that outgrew maxBatchTokens is still split (else it could never run again).
    const mustWait = !this.chunkedPrefill && n < remaining && remaining <= this.maxBatchTokens;
    // With nothing else running the head goes in whatever the estimate says: the step itself then
    // asks the cache to evict, or fails the request if even the whole pool is too small (waiting
    // for blocks nobody will free would stall the queue forever).
    const alone = this.running.length === 0;
    if (mustWait || (!alone && this.blocksFor(hit.sequence, n) > blocksFree)) {
      await this.cache.release(hit.sequence);
      return false;
    }
    entry.sequence = hit.sequence;
    entry.record.computed = hit.cachedTokens;
    entry.record.cachedTokens = hit.cachedTokens;
    entry.record.state = "running";
    this.waiting.shift();
    this.running.push(entry);
    return true;
  }

  /** The next tokens of a running request: all it has not computed, at most `budget`. */
  private chunk(entry: Entry, budget: number): Planned {
    const from = entry.record.computed;
    const n = Math.min(entry.tokens.length - from, budget);
    return { entry, tokens: entry.tokens.slice(from, from + n), sample: from + n === entry.tokens.length, decode: entry.decoding };
  }

  /** Drafts worth proposing: at most k, the budget left, one fewer than the tokens still wanted
   *  (a step emits up to drafts + 1), and the room left in the context. */
  private draftsWanted(entry: Entry, budgetLeft: number): number {
    const wanted = entry.limit - entry.record.generated.length - 1;
    const room = this.engine.contextSize - entry.tokens.length;
    return Math.max(0, Math.min(this.speculative!.k, budgetLeft, wanted, room));
  }

  /** Asks the drafter for every planned request that wants drafts, in one call, and puts them
   *  after the pending token; such an item then asks for every row ("all") and samples nothing. */
  private async draft(plan: Planned[]): Promise<void> {
    const drafting = plan.filter((p) => (p.draftK ?? 0) > 0);
    if (drafting.length === 0) return;
    const requests: DraftRequest[] = drafting.map((p) => ({
      id: p.entry.record.request.id, context: p.entry.tokens, k: p.draftK!, sampling: this.draftSampling(p.entry),
    }));
    const proposals = await this.speculative!.drafter.propose(requests);
    const nVocab = this.engine.hparams.nVocab;
    drafting.forEach((p, i) => {
      const proposal = proposals[i];
      const drafts = proposal?.tokens ?? [];
      if (drafts.length > p.draftK! || drafts.some((d) => !Number.isInteger(d) || d < 0 || d >= nVocab)) {
        throw new EngineError(`scheduler: the drafter "${this.speculative!.drafter.name}" proposed ${JSON.stringify(drafts)} for request ${requests[i].id} (at most ${p.draftK} ids in [0, ${nVocab}))`);
      }
      if (drafts.length === 0) return; // a plain decode row after all
      p.proposal = proposal;
      p.tokens = [...p.tokens, ...drafts];
    });
  }

  /** Greedy requests verify by argmax; the others draw with their own seeded stream (the plain
   *  sampler's stream is not used: speculation keeps the distribution, not the exact draws). */
  private draftSampling(entry: Entry): DraftSampling {
    const { temperature, topK, topP, seed } = entry.record.request.sampler;
    const greedy = !(temperature > 0);
    entry.random ??= mulberry32((seed ?? 0) ^ 0x5eed);
    const opts = { temperature, topK, topP };
    return { greedy, transform: (row) => samplerDistribution(row, opts), random: entry.random };
  }

  // -------------------------------------------------------------------------------------------
  // 3. The forward pass; a full pool makes the cache evict, then preempts the newest request

  private async runWithPreemption(plan: Planned[], preempted: string[], finished: string[]): Promise<Done[]> {
    for (;;) {
      if (plan.length === 0) return [];
      const items: StepItem[] = plan.map((p) => ({
        sequence: p.entry.sequence!, tokens: p.tokens,
        // "last" when sampling: the sampler sees the same log-probabilities as lab/engine/generate.ts.
        // With drafts: every row, verified after the pass.
        output: p.proposal ? "all" : p.sample && !(this.nativeGreedy && p.entry.record.request.sampler.greedy) ? "last" : "none",
        sample: p.sample && !p.proposal ? p.entry.record.request.sampler : undefined,
      }));
      try {
        const results = await this.engine.step(items);
        return plan.map((planned, i) => ({ planned, token: results[i].token, rows: planned.proposal ? results[i].logprobs : undefined }));
      } catch (err) {
        if (!(err instanceof KvCacheFullError)) throw err;
        if (this.cache.evict && (await this.cache.evict(err.blocksNeeded - err.blocksFree)) > 0) continue;
        const victim = this.running[this.running.length - 1];
        if (this.running.length === 1) {
          // Alone with the whole pool (bar what others outside the scheduler hold) and still short:
          // it can never run. Fail it rather than preempt and retry forever.
          this.running.pop();
          victim.record.error = `it needs more KV blocks than the pool can give it (${err.message})`;
          await this.finish(victim, "error");
          finished.push(victim.record.request.id);
          return [];
        }
        await this.preempt(victim);
        preempted.push(victim.record.request.id);
        plan = plan.filter((p) => p.entry !== victim);
      }
    }
  }

  /** Drops a running request's KV and puts it first in the queue; it keeps its generated tokens,
   *  so when it is admitted again prompt + generated are re-prefilled and it continues unchanged. */
  private async preempt(entry: Entry): Promise<void> {
    this.running.splice(this.running.indexOf(entry), 1);
    await this.cache.release(entry.sequence!);
    await this.speculative?.drafter.release(entry.record.request.id);
    entry.sequence = undefined;
    entry.decoding = false;
    entry.record.computed = 0;
    entry.record.state = "waiting";
    entry.record.preemptions++;
    this.waiting.unshift(entry);
  }

  // -------------------------------------------------------------------------------------------
  // 4. After the pass: count computed tokens, record sampled ones, finish requests

  private async advance(done: Done[], finished: string[]): Promise<void> {
    const now = this.clock();
    for (const d of done) {
      const { planned, token } = d;
      const { entry } = planned;
      const record = entry.record;
      if (planned.proposal) {
        await this.acceptDrafts(d, now, finished);
        continue;
      }
      record.computed += planned.tokens.length;
      if (!planned.sample) {
        this.cache.insert?.(entry.sequence!);
        continue;
      }
      if (!entry.decoding) this.cache.insert?.(entry.sequence!);
      entry.decoding = true;
      if (token === undefined) throw new EngineError(`scheduler: the engine sampled no token for request ${record.request.id}`);
      const reason = this.accept(entry, token, now);
      if (reason) {
        this.running.splice(this.running.indexOf(entry), 1);
        await this.finish(entry, reason);
        finished.push(record.request.id);
      }
    }
  }

  /** A verified row: keep the pending token and the accepted drafts in the sequence (the emitted
   *  token becomes the next pending one), then take the accepted drafts and the emitted token one
   *  by one, as if each had come from its own step (a stop or the length limit can end it midway). */
  private async acceptDrafts({ planned, rows }: Done, now: number, finished: string[]): Promise<void> {
    const { entry, proposal } = planned;
    const record = entry.record;
    const drafts = proposal!.tokens;
    const sampling = this.draftSampling(entry);
    const target = sampling.greedy ? rows! : rows!.map((row) => sampling.transform(row));
    const verdict = verifyDraft({ target, draft: proposal!.logprobs, tokens: drafts, random: sampling.random, greedy: sampling.greedy });
    const keep = record.computed + 1 + verdict.accepted;
    if (entry.sequence!.length > keep) await entry.sequence!.truncate(keep);
    record.computed = keep;
    record.drafted += drafts.length;
    record.accepted += verdict.accepted;
    planned.accepted = verdict.accepted;
    for (const token of [...drafts.slice(0, verdict.accepted), verdict.token]) {
      const reason = this.accept(entry, token, now);
      if (reason) {
        this.running.splice(this.running.indexOf(entry), 1);
        await this.finish(entry, reason);
        finished.push(record.request.id);
        return;
      }
    }
  }

  /** Takes a sampled token; returns why the request ends, if it does. */
  private accept(entry: Entry, token: number, now: number): FinishReason | undefined {
    const { record } = entry;
    const { request } = record;
    if (token === this.engine.tokenizer.eosId && request.stopAtEos !== false) return "stop";
    record.generated.push(token);
    entry.tokens.push(token);
    record.times.firstToken ??= now;
    record.times.tokens.push(now);
    // The caller's callbacks fail their own request only, never the step or other requests.
    try {
      request.onToken?.(token, record);
      if (request.stop?.(record.generated)) return "stop";
    } catch (err) {
      record.error = `its onToken or stop callback threw: ${err instanceof Error ? err.message : String(err)}`;
      return "error";
    }
    if (record.generated.length >= entry.limit) return "length";
    return undefined;
  }

  private async finish(entry: Entry, reason: FinishReason): Promise<void> {
    if (entry.sequence) await this.cache.release(entry.sequence);
    await this.speculative?.drafter.release(entry.record.request.id);
    entry.sequence = undefined;
    entry.record.state = "finished";
    entry.record.finishReason = reason;
    entry.record.times.finish = this.clock();
    this.batch.delete(entry.record.request.id);
  }

  // -------------------------------------------------------------------------------------------
  // Helpers

  private stats(done: Done[], admitted: string[], preempted: string[], finished: string[]): StepStats {
    let prefillTokens = 0, decodeTokens = 0, draftRows = 0, draftTokens = 0, acceptedTokens = 0;
    for (const { planned } of done) {
      if (planned.decode) decodeTokens++;
      else prefillTokens += planned.tokens.length;
      if (planned.proposal) {
        draftRows++;
        draftTokens += planned.proposal.tokens.length;
        acceptedTokens += planned.accepted ?? 0;
      }
    }
    const kv = this.engine.memory().kv;
    return {
      step: this.steps++, time: this.clock(), rows: done.length, prefillTokens, decodeTokens, draftRows, draftTokens, acceptedTokens,
      scheduled: done.map(({ planned }) => ({
        id: planned.entry.record.request.id, tokens: planned.tokens.length,
        output: planned.proposal ? "all" as const : planned.sample ? "last" as const : "none" as const,
      })),
      admitted, preempted, finished,
      running: this.running.length, waiting: this.waiting.length,
      kvBlocksUsed: kv.blocksUsed, kvBlocksFree: kv.blocksFree,
    };
  }

  private blocksFree(): number {
    return this.engine.memory().kv.blocksFree;
  }

  /** Blocks a sequence takes to grow by n positions (new blocks, plus a copy of a shared partial
   *  last block where the engine shares blocks), as engine.step will count them. */
  private blocksFor(sequence: Sequence, n: number): number {
    const bs = this.kvBlockSize;
    const len = sequence.length;
    const fresh = Math.ceil((len + n) / bs) - Math.ceil(len / bs);
    const kv = this.engine.kv;
    let copy = 0;
    if (kv && n > 0 && len % bs !== 0) {
      const ids = kv.blockIds(sequence);
      if (kv.refCount(ids[ids.length - 1]) > 1) copy = 1;
    }
    return fresh + copy;
  }

  private checkRequest(r: Request): void {
    const id = r?.id;
    if (typeof id !== "string" || id === "") throw new EngineError("scheduler: a request needs a non-empty string id");
    if (this.known.has(id) && this.known.get(id)!.record.state !== "finished") throw new EngineError(`scheduler: request id "${id}" is already waiting or running`);
    if (!Array.isArray(r.prompt) || r.prompt.length === 0) throw new EngineError(`scheduler: request ${id} has an empty prompt`);
    const nVocab = this.engine.hparams.nVocab;
    for (const t of r.prompt) {
      if (!Number.isInteger(t) || t < 0 || t >= nVocab) throw new EngineError(`scheduler: request ${id} has token id ${t} outside the vocabulary [0, ${nVocab})`);
    }
    if (r.prompt.length >= this.engine.contextSize) {
      throw new EngineError(`scheduler: request ${id} has a ${r.prompt.length}-token prompt, which leaves no room to generate in the context of ${this.engine.contextSize}`);
    }
    if (!Number.isInteger(r.maxTokens) || r.maxTokens < 1) throw new EngineError(`scheduler: request ${id} has maxTokens ${r.maxTokens} (expected an integer >= 1)`);
    if (!r.sampler || typeof r.sampler.sample !== "function") throw new EngineError(`scheduler: request ${id} has no sampler`);
    if (r.arrival !== undefined && !Number.isFinite(r.arrival)) throw new EngineError(`scheduler: request ${id} has arrival ${r.arrival} (expected a time on the scheduler's clock)`);
    if (!this.chunkedPrefill && r.prompt.length > this.maxBatchTokens) {
      throw new EngineError(`scheduler: request ${id} has a ${r.prompt.length}-token prompt, longer than maxBatchTokens ${this.maxBatchTokens}, and chunked prefill is off`);
    }
  }
}

function positiveInteger(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) throw new EngineError(`scheduler: ${name} must be an integer >= 1, got ${v}`);
}
