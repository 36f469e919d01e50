// Does llama.cpp run our model the way we do? Loads an exported GGUF with node-llama-cpp (CPU, F32
// KV cache, no flash attention) and compares its next-token log-probabilities at every position
// with the trainer's own forward pass.
import { cpuLlama } from "../engine/node-llama.mjs";
import { Workspace, type ModelShape } from "./model.ts";

/** The agreement the trainer's tests require of an exported F32 GGUF: max |Δ log p| at every position. */
export const LOG_PROB_TOLERANCE = 1e-4;

export interface LlamaCppComparison {
  positions: number;
  maxAbsDiff: number; // max over positions and vocabulary of |log p_ours − log p_llama.cpp|
  positionsOverTolerance: number; // positions whose max |Δ log p| exceeds LOG_PROB_TOLERANCE
  argmaxAgreement: number; // fraction of positions where both pick the same next token
  /** How far each float32 forward is from a float64 forward of the same weights (max |Δ log p|):
   *  the rounding both sides carry, against which maxAbsDiff should be read. */
  float64Reference: { ours: number; llamaCpp: number };
}

/** The trainer's log-softmax rows for one sequence: [T][nVocab] (float64: the same forward in doubles). */
export function ownLogProbs(shape: ModelShape, params: Float32Array, tokens: number[], float64 = false): Float32Array[] {
  const ws = new Workspace(shape, 1, tokens.length, float64 ? Float64Array : Float32Array);
  ws.params.set(params);
  const logits = ws.forward(tokens, 1, tokens.length);
  const V = shape.nVocab, rows: Float32Array[] = [];
  for (let t = 0; t < tokens.length; t++) {
    const row = logits.subarray(t * V, (t + 1) * V);
    let max = -Infinity;
    for (let i = 0; i < V; i++) if (row[i] > max) max = row[i];
    let sum = 0;
    for (let i = 0; i < V; i++) sum += Math.exp(row[i] - max);
    const logZ = max + Math.log(sum);
    rows.push(Float32Array.from(row, (x) => x - logZ));
  }
  return rows;
}

/** llama.cpp's log-softmax rows for one sequence (tokens[0] should be BOS). */
export async function llamaCppLogProbs(ggufPath: string, tokens: number[], nVocab: number): Promise<Float32Array[]> {
  const llama = await cpuLlama();
  const model = await llama.loadModel({ modelPath: ggufPath });
  try {
    const context = await model.createContext({
      contextSize: Math.max(32, tokens.length + 1), batchSize: Math.max(32, tokens.length), threads: 1,
      flashAttention: false, experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32",
    });
    try {
      const seq = context.getSequence();
      const input = tokens.map((t) => [t, { generateNext: { probabilities: true, options: { temperature: 0 } } }] as const);
      const out = await seq.controlledEvaluate(input as unknown as Parameters<typeof seq.controlledEvaluate>[0]);
      return tokens.map((_, i) => {
        const probs = out[i]?.next?.probabilities;
        if (!probs) throw new Error(`llama.cpp returned no distribution for position ${i}`);
        const row = new Float32Array(nVocab).fill(-Infinity);
        for (const [token, p] of probs) row[token] = Math.log(p);
        return row;
      });
    } finally {
      await context.dispose();
    }
  } finally {
    await model.dispose();
  }
}

/** max_i |x[i] − y[i]| of two rows (Infinity when one side has -Infinity where the other does not). */
function rowMaxAbsDiff(x: Float32Array, y: Float32Array): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  return m;
}

export async function compareWithLlamaCpp(ggufPath: string, shape: ModelShape, params: Float32Array, tokens: number[]): Promise<LlamaCppComparison> {
  const ours = ownLogProbs(shape, params, tokens);
  const exact = ownLogProbs(shape, params, tokens, true);
  const theirs = await llamaCppLogProbs(ggufPath, tokens, shape.nVocab);
  const distance = (x: Float32Array[], y: Float32Array[]) => Math.max(0, ...x.map((row, t) => rowMaxAbsDiff(row, y[t])));
  const rowDiffs = ours.map((row, t) => rowMaxAbsDiff(row, theirs[t]));
  let agree = 0;
  for (let t = 0; t < tokens.length; t++) {
    let a = 0, b = 0;
    for (let i = 0; i < shape.nVocab; i++) {
      if (ours[t][i] > ours[t][a]) a = i;
      if (theirs[t][i] > theirs[t][b]) b = i;
    }
    if (a === b) agree++;
  }
  return {
    positions: tokens.length, maxAbsDiff: Math.max(0, ...rowDiffs),
    positionsOverTolerance: rowDiffs.filter((d) => d > LOG_PROB_TOLERANCE).length, argmaxAgreement: agree / tokens.length,
    float64Reference: { ours: distance(ours, exact), llamaCpp: distance(theirs, exact) },
  };
}
