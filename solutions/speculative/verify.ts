// Reference solution for task 2.2 — verify k draft tokens with the bonus token.
// The statement of the task is in exercises/speculative/verify.ts.
import { acceptProbability, drawFromWeights, residualDistribution, type Distribution } from "./accept.ts";

export interface VerifyInput {
  /** k+1 target distributions: p_1 after the prefix, then p_{i+1} after each draft token x_i. */
  target: Distribution[];
  /** k draft distributions: q_i, the one x_i was drawn from. May be empty when greedy. */
  draft: Distribution[];
  /** The k draft tokens x_1 … x_k. */
  tokens: readonly number[];
  /** Uniform numbers in [0, 1). Greedy verification must not call it. */
  random: () => number;
  /** Greedy decoding: accept while x_i is the argmax of p_i (ties: the lowest id). */
  greedy?: boolean;
}

export interface VerifyResult {
  /** How many draft tokens were accepted, 0 … k. */
  accepted: number;
  /** The one token emitted after them. The output is tokens.slice(0, accepted) then token. */
  token: number;
}

function argmax(row: Distribution): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}

export function verifyDraft({ target, draft, tokens, random, greedy = false }: VerifyInput): VerifyResult {
  const k = tokens.length;
  if (target.length !== k + 1) throw new RangeError(`verifyDraft: ${k} draft tokens need ${k + 1} target rows, got ${target.length}`);
  if (!greedy && draft.length !== k) throw new RangeError(`verifyDraft: ${k} draft tokens need ${k} draft rows, got ${draft.length}`);
  for (let i = 0; i < k; i++) {
    const p = target[i]!;
    const x = tokens[i]!;
    if (greedy) {
      const best = argmax(p);
      if (x !== best) return { accepted: i, token: best };
      continue;
    }
    const q = draft[i]!;
    if (random() < acceptProbability(p[x]!, q[x]!)) continue;
    return { accepted: i, token: drawFromWeights(residualDistribution(p, q), random()) };
  }
  const last = target[k]!;
  return { accepted: k, token: greedy ? argmax(last) : drawFromWeights(last, random()) };
}
