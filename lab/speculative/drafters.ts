// Drafters: whatever proposes the k tokens the target then verifies in one pass. One interface,
// three kinds:
//   - a draft model on either engine (a small model sampled k times, one token per step);
//   - prompt lookup (vLLM's n-gram proposer): find the longest suffix of the context, between minN
//     and maxN tokens, that occurred earlier, and propose the tokens that followed it — free to
//     compute, and right whenever the output repeats the input (code, extraction, chat quoting);
//   - the target itself (a sanity check: acceptance 1 at temperature 0).
//
// A proposal carries, for each token, the distribution it was drawn from (after the sampler's
// transform), because exact verification needs q(x). Prompt lookup draws from nothing: its q is a
// point mass on the proposed token.
import type { Engine, Sequence } from "../engine/engine.ts";
import { Sampler } from "../engine/sampler.ts";
import { drawFromWeights, pointMass } from "./verify.ts";

/** How the generator wants drafts drawn: greedy (argmax) or from transform(row) with random(). */
export interface DraftSampling {
  greedy: boolean;
  /** Raw log-probability row [nVocab] → the sampler's distribution (log-probabilities). */
  transform: (row: Float32Array) => Float64Array;
  random: () => number;
}

export interface DraftProposal {
  /** At most k token ids. Fewer (even none) when the drafter has nothing to propose. */
  tokens: number[];
  /** One log-probability row [nVocab] per token: the distribution it was drawn from. Empty when greedy. */
  logprobs: ArrayLike<number>[];
  /** Forward passes the drafter ran for this proposal (0 for prompt lookup). */
  steps: number;
}

export interface Drafter {
  /** For reports: "draft model (lab)", "prompt lookup n=1..3", … */
  readonly name: string;
  readonly vocabSize: number;
  /** The engine behind it, if any: the generator checks the vocabularies agree before starting. */
  readonly engine?: Engine;
  /** Optional: take in the prompt before the first proposal (a draft model prefills all of it but
   *  the last token), so that the prefill is timed as prefill and the rounds as decoding. */
  prefill?(context: readonly number[]): Promise<void>;
  /** Proposes up to k tokens continuing `context` (every committed token: prompt and output so far). */
  propose(context: readonly number[], k: number, sampling: DraftSampling): Promise<DraftProposal>;
  /** The context was cut back to its first n tokens (rejected drafts): forget everything after. */
  rollback(n: number): Promise<void>;
  /** Frees what the drafter holds (a sequence); the engine stays open. */
  dispose(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// A draft model

/**
 * A model on either engine, kept in step with the context. Its sequence holds a prefix of the
 * context; each proposal first feeds what it is missing (after a full acceptance that is the last
 * draft token AND the target's bonus token — forgetting that is how a draft falls out of sync),
 * then samples k tokens one step each, feeding each back except the last.
 */
export class ModelDrafter implements Drafter {
  readonly name: string;
  readonly vocabSize: number;
  private sequence: Sequence | undefined;
  private readonly greedyPick = new Sampler({ temperature: 0 });

  constructor(readonly engine: Engine, name = `draft model (${engine.name})`) {
    this.name = name;
    this.vocabSize = engine.tokenizer.vocabSize;
  }

  /** The draft's sequence cut back to the longest prefix it shares with `context`, never past
   *  context.length − 1: the last context token is always re-fed, since its distribution is the
   *  one the first draft is drawn from. Returns the sequence and how many tokens it kept. */
  private async syncTo(context: readonly number[]): Promise<{ seq: Sequence; common: number }> {
    this.sequence ??= await this.engine.createSequence();
    const seq = this.sequence;
    let common = 0;
    const held = seq.tokens;
    while (common < held.length && common < context.length - 1 && held[common] === context[common]) common++;
    if (seq.length > common) await seq.truncate(common);
    return { seq, common };
  }

  async prefill(context: readonly number[]): Promise<void> {
    const { seq, common } = await this.syncTo(context);
    // Everything but the last token: propose() feeds that one, its distribution is the first draft's.
    if (context.length - 1 > common) await this.engine.step([{ sequence: seq, tokens: context.slice(common, -1), output: "none" }]);
  }

  async propose(context: readonly number[], k: number, sampling: DraftSampling): Promise<DraftProposal> {
    if (context.length === 0) throw new RangeError("propose: empty context");
    const { seq, common } = await this.syncTo(context);
    // Room in the draft's context: after proposing it holds context.length + k − 1 positions.
    const room = this.engine.contextSize - context.length + 1;
    const want = Math.max(0, Math.min(k, room));
    const tokens: number[] = [];
    const logprobs: ArrayLike<number>[] = [];
    if (want === 0) return { tokens, logprobs, steps: 0 };
    let feed = context.slice(common);
    let steps = 0;
    for (let i = 0; i < want; i++) {
      let token: number;
      if (sampling.greedy) {
        // Greedy: let the engine pick the argmax (llama.cpp then builds no distribution at all).
        const [r] = await this.engine.step([{ sequence: seq, tokens: feed, output: "none", sample: this.greedyPick }]);
        token = r.token!;
      } else {
        const [r] = await this.engine.step([{ sequence: seq, tokens: feed, output: "last" }]);
        const q = sampling.transform(r.logprobs[0]);
        const weights = new Float64Array(q.length);
        for (let j = 0; j < q.length; j++) weights[j] = Math.exp(q[j]);
        token = drawFromWeights(weights, sampling.random());
        logprobs.push(q);
      }
      steps++;
      tokens.push(token);
      feed = [token];
      if (i + 1 === want) break; // the last draft is not fed: the target's verdict decides what follows
    }
    return { tokens, logprobs, steps };
  }

  async rollback(n: number): Promise<void> {
    if (this.sequence && this.sequence.length > n) await this.sequence.truncate(n);
  }

  async dispose(): Promise<void> {
    await this.sequence?.free();
    this.sequence = undefined;
  }
}

/** The target drafting for itself: every greedy draft is the target's own argmax, so acceptance is
 *  1 (up to float differences between one-token and k+1-token passes). Needs maxSequences >= 2. */
export function selfDrafter(target: Engine): ModelDrafter {
  return new ModelDrafter(target, `target itself (${target.name})`);
}

// ---------------------------------------------------------------------------------------------
// Prompt lookup

export interface PromptLookupOptions {
  /** Shortest suffix worth matching. Default 1. */
  minN?: number;
  /** Longest suffix tried first. Default 3. */
  maxN?: number;
}

/**
 * vLLM's n-gram proposer: for n = maxN down to minN, take the context's last n tokens and look for
 * an earlier occurrence (the earliest one wins); propose up to k of the tokens that followed it.
 * Returns [] when no suffix of at least minN tokens occurred before.
 * context: token ids, prompt and output so far; the match must start before the suffix itself.
 */
export function proposeNgram(context: readonly number[], k: number, { minN = 1, maxN = 3 }: PromptLookupOptions = {}): number[] {
  if (!Number.isInteger(minN) || minN < 1) throw new RangeError(`prompt lookup: minN must be an integer >= 1, got ${minN}`);
  if (!Number.isInteger(maxN) || maxN < minN) throw new RangeError(`prompt lookup: maxN must be an integer >= minN (${minN}), got ${maxN}`);
  const L = context.length;
  for (let n = Math.min(maxN, L - 1); n >= minN; n--) {
    const suffixStart = L - n;
    for (let i = 0; i < suffixStart; i++) {
      let j = 0;
      while (j < n && context[i + j] === context[suffixStart + j]) j++;
      if (j === n) return context.slice(i + n, Math.min(L, i + n + k));
    }
  }
  return [];
}

/** A proposer with proposeNgram's signature (the notebook plugs in the student's task 2.5 here). */
export type NgramProposer = (context: readonly number[], k: number, opts: PromptLookupOptions) => number[];

/** Prompt lookup as a Drafter: no model, no state; q is a point mass on each proposed token. */
export class PromptLookupDrafter implements Drafter {
  readonly name: string;

  constructor(readonly vocabSize: number, private readonly opts: PromptLookupOptions = {}, private readonly proposer: NgramProposer = proposeNgram) {
    if (!Number.isInteger(vocabSize) || vocabSize < 1) throw new RangeError(`prompt lookup: vocabSize must be a positive integer, got ${vocabSize}`);
    this.name = `prompt lookup n=${opts.minN ?? 1}..${opts.maxN ?? 3}`;
  }

  async propose(context: readonly number[], k: number, sampling: DraftSampling): Promise<DraftProposal> {
    const tokens = this.proposer(context, k, this.opts);
    const logprobs = sampling.greedy ? [] : tokens.map((t) => pointMass(t, this.vocabSize));
    return { tokens, logprobs, steps: 0 };
  }

  async rollback(): Promise<void> {}

  async dispose(): Promise<void> {}
}
