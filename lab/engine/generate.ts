// The generation loop both engines share: prefill the prompt, then sample → decode one token at a
// time with lab/engine/sampler.ts. Because the loop and the sampler are common code, the same seed
// on the same distributions gives the same tokens on either engine.
import { EngineError, type Engine } from "./engine.ts";
import { Sampler, type SamplerOptions } from "./sampler.ts";

export interface GenerateOptions extends SamplerOptions {
  /** New tokens to produce at most. */
  maxTokens: number;
  /** Stop when the end-of-sequence token is drawn (it is not yielded). Default true. */
  stopAtEos?: boolean;
  /** Stop after yielding a token for which this returns true (e.g. the text so far ends a line). */
  stop?: (generated: number[]) => boolean;
}

/** Yields generated token ids one by one; the prompt must start as the model expects (BOS …). */
export async function* generateTokens(engine: Engine, prompt: number[], opts: GenerateOptions): AsyncGenerator<number> {
  if (prompt.length === 0) throw new EngineError("empty prompt: nothing to continue");
  if (!Number.isInteger(opts.maxTokens) || opts.maxTokens < 0) throw new EngineError(`maxTokens must be an integer >= 0, got ${opts.maxTokens}`);
  const sampler = new Sampler(opts);
  const room = engine.contextSize - prompt.length;
  const budget = Math.min(opts.maxTokens, room);
  const seq = await engine.createSequence();
  try {
    let dist = await seq.prefill(prompt);
    const generated: number[] = [];
    for (let i = 0; i < budget; i++) {
      const token = sampler.sample(dist);
      if (token === engine.tokenizer.eosId && opts.stopAtEos !== false) return;
      generated.push(token);
      yield token;
      if (opts.stop?.(generated)) return;
      if (i + 1 < budget) [dist] = await engine.decode([{ sequence: seq, token }]);
    }
  } finally {
    await seq.free();
  }
}

/** All generated tokens at once. */
export async function generate(engine: Engine, prompt: number[], opts: GenerateOptions): Promise<number[]> {
  const out: number[] = [];
  for await (const t of generateTokens(engine, prompt, opts)) out.push(t);
  return out;
}
