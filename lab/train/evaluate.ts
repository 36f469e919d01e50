// Measuring a trained model with its own forward pass: greedy exact-match accuracy on the eval sets,
// validation loss by position (how quality holds up past the training length), the draft's greedy
// agreement with the target, sample generations, and a bigram baseline to beat.
//
// Greedy decoding is batched: prompts sit left-aligned at position 0 in one [batch][T] forward;
// causal attention means the padding after a shorter prompt never affects it, so each row reads its
// next token at its own last position.
import type { SpmTokenizer } from "../tokenizer.ts";
import { Workspace, type ModelShape } from "./model.ts";

export interface Model {
  shape: ModelShape;
  params: Float32Array; // [nParams] f32
}

// ─── Greedy decoding ─────────────────────────────────────────────────────────────────────────────

/** Continues each prompt greedily until its decoded continuation holds `stop` or maxNew tokens. */
export function greedyBatch(model: Model, tokenizer: SpmTokenizer, prompts: number[][], maxNew: number,
  stop = "\n", batch = 16): string[] {
  const maxLen = Math.max(...prompts.map((p) => p.length)) + maxNew;
  const ws = new Workspace(model.shape, Math.min(batch, prompts.length), maxLen);
  ws.params.set(model.params);
  const V = model.shape.nVocab, out: string[] = [];
  for (let start = 0; start < prompts.length; start += batch) {
    const group = prompts.slice(start, start + batch).map((p) => [...p]);
    const generated: number[][] = group.map(() => []);
    const done = group.map(() => false);
    for (let step = 0; step < maxNew && done.some((d) => !d); step++) {
      const T = Math.max(...group.map((g) => g.length));
      const tokens = new Int32Array(group.length * T);
      group.forEach((g, b) => tokens.set(g, b * T));
      const logits = ws.forward(tokens, group.length, T);
      group.forEach((g, b) => {
        if (done[b]) return;
        const row = (b * T + g.length - 1) * V;
        let best = 0;
        for (let i = 1; i < V; i++) if (logits[row + i] > logits[row + best]) best = i;
        g.push(best);
        generated[b].push(best);
        if (best === tokenizer.eosId || best === tokenizer.bosId || tokenizer.decode(generated[b]).includes(stop)) done[b] = true;
      });
    }
    for (const g of generated) out.push(tokenizer.decode(g.filter((t) => t !== tokenizer.eosId && t !== tokenizer.bosId)));
  }
  return out;
}

/** The continuation up to its first newline, trimmed, must equal the answer (lab/data's rule). */
export function isExactMatch(continuation: string, answer: string): boolean {
  return continuation.split("\n", 1)[0].trim() === answer;
}

export interface ExactMatchResult {
  accuracy: number;
  correct: number;
  total: number;
  examples: { prompt: string; answer: string; got: string }[]; // first few, for the model card
  hits: boolean[]; // [items] whether each item was answered exactly
}

export function exactMatchAccuracy(model: Model, tokenizer: SpmTokenizer, items: { prompt: string; answer: string }[],
  maxNew = 10): ExactMatchResult {
  const prompts = items.map((it) => tokenizer.encode(it.prompt, { bos: true }));
  const got = greedyBatch(model, tokenizer, prompts, maxNew);
  const hits = items.map((it, i) => isExactMatch(got[i], it.answer));
  const correct = hits.filter(Boolean).length;
  return {
    accuracy: correct / Math.max(1, items.length), correct, total: items.length, hits,
    examples: items.slice(0, 3).map((it, i) => ({ prompt: it.prompt, answer: it.answer, got: got[i].split("\n", 1)[0].trim() })),
  };
}

// ─── Loss, perplexity, agreement ─────────────────────────────────────────────────────────────────

/** Mean next-token loss over windows [n][T+1] of a stream, bucketed by position: bucket k covers
 *  positions [edges[k], edges[k+1]). Also the per-position argmax, for agreement. */
export function windowLoss(model: Model, windows: Int32Array, T: number, edges: number[] = [0, T], batch = 8):
  { mean: number; buckets: number[]; argmax: Int32Array /* [n][T] */ } {
  const n = windows.length / (T + 1), V = model.shape.nVocab;
  const ws = new Workspace(model.shape, Math.min(batch, n), T);
  ws.params.set(model.params);
  const sums = new Float64Array(edges.length - 1), counts = new Float64Array(edges.length - 1);
  const argmax = new Int32Array(n * T);
  for (let start = 0; start < n; start += batch) {
    const b = Math.min(batch, n - start);
    const inputs = new Int32Array(b * T);
    for (let i = 0; i < b; i++) inputs.set(windows.subarray((start + i) * (T + 1), (start + i) * (T + 1) + T), i * T);
    const logits = ws.forward(inputs, b, T);
    for (let i = 0; i < b; i++) {
      for (let t = 0; t < T; t++) {
        const row = (i * T + t) * V, target = windows[(start + i) * (T + 1) + t + 1];
        let max = -Infinity, best = 0;
        for (let v = 0; v < V; v++) if (logits[row + v] > max) { max = logits[row + v]; best = v; }
        let sum = 0;
        for (let v = 0; v < V; v++) sum += Math.exp(logits[row + v] - max);
        const loss = max + Math.log(sum) - logits[row + target];
        argmax[(start + i) * T + t] = best;
        for (let k = 0; k + 1 < edges.length; k++) if (t >= edges[k] && t < edges[k + 1]) { sums[k] += loss; counts[k]++; }
      }
    }
  }
  const total = sums.reduce((a, b) => a + b, 0), count = counts.reduce((a, b) => a + b, 0);
  return { mean: total / count, buckets: Array.from(sums, (s, k) => s / counts[k]), argmax };
}

/** Fraction of positions where the two models' greedy next tokens agree. */
export function greedyAgreement(a: Model, b: Model, windows: Int32Array, T: number): number {
  const x = windowLoss(a, windows, T).argmax, y = windowLoss(b, windows, T).argmax;
  let same = 0;
  for (let i = 0; i < x.length; i++) if (x[i] === y[i]) same++;
  return same / x.length;
}

// ─── The bigram baseline ─────────────────────────────────────────────────────────────────────────

/** Next-token counts given the previous token, add-α smoothed: the simplest model to beat. */
export class BigramModel {
  readonly counts: Float64Array; // [nVocab][nVocab]
  readonly rowTotals: Float64Array; // [nVocab]
  constructor(readonly nVocab: number, stream: Int32Array, readonly alpha = 0.01) {
    this.counts = new Float64Array(nVocab * nVocab);
    this.rowTotals = new Float64Array(nVocab);
    for (let i = 0; i + 1 < stream.length; i++) {
      this.counts[stream[i] * nVocab + stream[i + 1]]++;
      this.rowTotals[stream[i]]++;
    }
  }

  logProb(prev: number, next: number): number {
    return Math.log((this.counts[prev * this.nVocab + next] + this.alpha) / (this.rowTotals[prev] + this.alpha * this.nVocab));
  }

  next(prev: number): number {
    let best = 0;
    for (let i = 1; i < this.nVocab; i++) if (this.counts[prev * this.nVocab + i] > this.counts[prev * this.nVocab + best]) best = i;
    return best;
  }

  meanLoss(windows: Int32Array, T: number): number {
    let sum = 0, n = 0;
    for (let w = 0; w < windows.length / (T + 1); w++) {
      for (let t = 0; t < T; t++) { sum -= this.logProb(windows[w * (T + 1) + t], windows[w * (T + 1) + t + 1]); n++; }
    }
    return sum / n;
  }

  exactMatchAccuracy(tokenizer: SpmTokenizer, items: { prompt: string; answer: string }[], maxNew = 10): number {
    let correct = 0;
    for (const it of items) {
      const ids = tokenizer.encode(it.prompt, { bos: true }), gen: number[] = [];
      for (let s = 0; s < maxNew; s++) {
        const t = this.next(ids.at(-1)!);
        ids.push(t);
        gen.push(t);
        if (t === tokenizer.eosId || tokenizer.decode(gen).includes("\n")) break;
      }
      if (isExactMatch(tokenizer.decode(gen), it.answer)) correct++;
    }
    return correct / Math.max(1, items.length);
  }
}
