// Drafters for speculative decoding inside the scheduler (lab/serve/scheduler.ts, BatchDrafter):
// they propose draft tokens for every decoding request of a step at once.
//
// Why not lab/speculative's ModelDrafter per request: it runs k draft steps per request, one
// sequence at a time, so with 16 running requests a step would cost 16·k draft passes. Here the
// draft model advances every request's draft sequence in the SAME step (one pass per draft
// position for all of them), exactly as the target batches its rows.
//
// Reading order: prompt lookup (stateless), then the draft model (one draft sequence per request).
import { KvCacheFullError, type Engine, type Sequence, type StepItem } from "../engine/engine.ts";
import { Sampler } from "../engine/sampler.ts";
import { proposeNgram, type DraftProposal, type PromptLookupOptions } from "../speculative/drafters.ts";
import { drawFromWeights, pointMass } from "../speculative/verify.ts";
import type { BatchDrafter, DraftRequest } from "./scheduler.ts";

/** vLLM's n-gram proposer for each request: free to compute, right when the output repeats the prompt. */
export class NgramBatchDrafter implements BatchDrafter {
  readonly name: string;

  constructor(private readonly vocabSize: number, private readonly opts: PromptLookupOptions = {}) {
    this.name = `prompt lookup n=${opts.minN ?? 1}..${opts.maxN ?? 3}`;
  }

  async propose(requests: DraftRequest[]): Promise<DraftProposal[]> {
    return requests.map(({ context, k, sampling }) => {
      const tokens = proposeNgram(context, k, this.opts);
      // q is a point mass on each proposed token (accept iff u < p(x)).
      return { tokens, logprobs: sampling.greedy ? [] : tokens.map((t) => pointMass(t, this.vocabSize)), steps: 0 };
    });
  }

  async release(): Promise<void> {}
}

/**
 * A small model of the same vocabulary, one draft sequence per request kept in step with the
 * request's context. A proposal first brings each sequence up to date (keep the longest common
 * prefix with the context, always re-feeding the context's last token, whose distribution the first
 * draft is drawn from), then runs k draft positions, every request in one engine.step per
 * position. A request that cannot get a draft sequence or KV (the draft engine is full) gets no
 * drafts this step and decodes plainly.
 */
export class ModelBatchDrafter implements BatchDrafter {
  readonly name: string;
  private readonly sequences = new Map<string, Sequence>();
  private readonly greedyPick = new Sampler({ temperature: 0 });

  constructor(readonly engine: Engine) {
    this.name = `draft model (${engine.name}, ${engine.path.split("/").pop()})`;
  }

  async propose(requests: DraftRequest[]): Promise<DraftProposal[]> {
    const out: DraftProposal[] = requests.map(() => ({ tokens: [], logprobs: [], steps: 0 }));
    // Per request: its sequence, what it must be fed next, and how many drafts it still wants.
    const live: { i: number; seq: Sequence; feed: number[]; want: number }[] = [];
    for (const [i, r] of requests.entries()) {
      const seq = await this.sequenceFor(r.id);
      if (!seq) continue;
      let common = 0;
      const held = seq.tokens;
      while (common < held.length && common < r.context.length - 1 && held[common] === r.context[common]) common++;
      if (seq.length > common) await seq.truncate(common);
      // After proposing, the draft sequence holds context + want - 1 positions.
      const want = Math.min(r.k, this.engine.contextSize - r.context.length + 1);
      if (want > 0) live.push({ i, seq, feed: r.context.slice(common), want });
    }
    for (let pos = 0; live.length > 0; pos++) {
      const items: StepItem[] = live.map(({ i, seq, feed }) => requests[i].sampling.greedy
        ? { sequence: seq, tokens: feed, output: "none", sample: this.greedyPick }
        : { sequence: seq, tokens: feed, output: "last" });
      let results;
      try {
        results = await this.engine.step(items);
      } catch (err) {
        if (err instanceof KvCacheFullError) break; // keep what was drafted so far
        throw err;
      }
      for (const [j, l] of live.entries()) {
        const sampling = requests[l.i].sampling;
        let token: number;
        if (sampling.greedy) token = results[j].token!;
        else {
          const q = sampling.transform(results[j].logprobs[0]);
          const weights = new Float64Array(q.length);
          for (let v = 0; v < q.length; v++) weights[v] = Math.exp(q[v]);
          token = drawFromWeights(weights, sampling.random());
          out[l.i].logprobs.push(q);
        }
        out[l.i].tokens.push(token);
        out[l.i].steps++;
        l.feed = [token];
      }
      // The last draft is not fed: the target's verdict decides what follows it.
      for (let j = live.length - 1; j >= 0; j--) if (out[live[j].i].tokens.length >= live[j].want) live.splice(j, 1);
    }
    return out;
  }

  async release(id: string): Promise<void> {
    const seq = this.sequences.get(id);
    this.sequences.delete(id);
    await seq?.free();
  }

  /** The request's draft sequence, made on first use; undefined when the draft engine has none left. */
  private async sequenceFor(id: string): Promise<Sequence | undefined> {
    let seq = this.sequences.get(id);
    if (seq) return seq;
    if (this.sequences.size >= this.engine.maxSequences) return undefined;
    seq = await this.engine.createSequence();
    this.sequences.set(id, seq);
    return seq;
  }

  async dispose(): Promise<void> {
    for (const id of [...this.sequences.keys()]) await this.release(id);
  }
}
