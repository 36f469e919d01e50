// The reference llama forward pass: the slowest, plainest possible version, used as the oracle that
// llama.cpp and our own engine are checked against. Every weight arrives as f32 (dequantized from
// whatever the file stored); every activation is computed in float64 so that the reference's own
// rounding error is far below anything a test compares. One token at a time, full attention over the
// cache, no batching, no tricks.
//
// Architecture (llama.cpp's LLM_ARCH_LLAMA):
//   x = token_embd[token]
//   per layer:  x += Wo · attention(RoPE(Wq·n), RoPE(Wk·n), Wv·n)   with n = RMSNorm(x) ⊙ attn_norm
//               x += Wdown · (silu(Wgate·n) ⊙ Wup·n)                  with n = RMSNorm(x) ⊙ ffn_norm
//   logits = Woutput · (RMSNorm(x) ⊙ output_norm)
// RoPE is the "NORM" kind: it rotates ADJACENT pairs (2i, 2i+1) of each head by pos·base^(−2i/headDim).
// Grouped-query attention: query head h reads key/value head ⌊h / (nHead/nKvHead)⌋.
// Weights are ggml-shaped ne = [in, out], i.e. row-major [out][in]: y[o] = Σ_i W[o·in + i]·x[i].
import type { GgmlTypeName } from "../ggml-types.ts";
import type { LlamaHparams } from "../gguf/index.ts";
import { bf16ToFp32, fp16ToFp32, fp32ToBf16, fp32ToFp16 } from "../quant/float.ts";

export type LlamaWeights = Map<string, Float32Array>;

export interface ReferenceOptions {
  /**
   * Each weight's storage type. When given, every matrix-vector product first rounds its input vector
   * the way llama.cpp's CPU backend does before its dot products (to the weight type's "vec_dot_type"):
   * F16 weights see fp16 activations, BF16 see bf16, Q4_0/Q5_0/Q8_0/Q4_1/Q5_1 see 8-bit blocks of 32
   * (Q8_0/Q8_1), k-quants see 8-bit blocks of 256 (Q8_K). This isolates "does llama.cpp decode our
   * bytes as we do" from "how much do 8-bit activations cost".
   */
  llamaCpuActivations?: Map<string, GgmlTypeName>;
}

// ---------------------------------------------------------------------------------------------
// Activation rounding as ggml-cpu does it (x86 build): quantize_row_q8_0 (AVX: id = 127/amax, round
// half to even, d stored as fp16) and quantize_row_q8_K (ref: iscale = −127/max, nearest int, d = 1/iscale).

function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function roundToQ8Blocks(x: Float64Array, block: 32 | 256): Float64Array {
  const f = Math.fround;
  const out = new Float64Array(x.length);
  for (let b = 0; b < x.length; b += block) {
    const v = Float32Array.from(x.subarray(b, b + block)); // ggml sees f32 activations
    let amax = 0;
    let max = 0;
    for (const t of v) if (Math.abs(t) > amax) ((amax = Math.abs(t)), (max = t));
    if (amax === 0) continue;
    if (block === 32) {
      const id = f(127 / amax);
      const d = fp16ToFp32(fp32ToFp16(f(amax / 127)));
      for (let j = 0; j < block; j++) out[b + j] = roundHalfEven(f(v[j] * id)) * d;
    } else {
      const iscale = f(-127 / max);
      const d = f(1 / iscale);
      for (let j = 0; j < block; j++) out[b + j] = Math.min(127, roundHalfEven(f(iscale * v[j]))) * d;
    }
  }
  return out;
}

function roundActivations(x: Float64Array, type: GgmlTypeName | undefined): Float64Array {
  switch (type) {
    case undefined: case "F32": return x;
    case "F16": return x.map((v) => fp16ToFp32(fp32ToFp16(v)));
    case "BF16": return x.map((v) => bf16ToFp32(fp32ToBf16(v)));
    case "Q4_0": case "Q4_1": case "Q5_0": case "Q5_1": case "Q8_0": return roundToQ8Blocks(x, 32);
    case "Q2_K": case "Q3_K": case "Q4_K": case "Q5_K": case "Q6_K": return roundToQ8Blocks(x, 256);
    default: throw new Error(`reference forward: no llama.cpp activation rounding known for ${type}`);
  }
}

/** y = W·x for W stored row-major [nOut][nIn]. */
function matVec(w: Float32Array, xIn: Float64Array, nOut: number, nIn: number, activationType?: GgmlTypeName): Float64Array {
  const x = roundActivations(xIn, activationType);
  const y = new Float64Array(nOut);
  for (let o = 0; o < nOut; o++) {
    let sum = 0;
    const row = o * nIn;
    for (let i = 0; i < nIn; i++) sum += w[row + i] * x[i];
    y[o] = sum;
  }
  return y;
}

/** x / sqrt(mean(x²) + eps), then scaled elementwise by the norm's weight. */
function rmsNorm(x: Float64Array, weight: Float32Array, eps: number): Float64Array {
  let ss = 0;
  for (let i = 0; i < x.length; i++) ss += x[i] * x[i];
  const scale = 1 / Math.sqrt(ss / x.length + eps);
  return x.map((v, i) => v * scale * weight[i]);
}

/** Rotates each head's adjacent pairs (2i, 2i+1) in place by angle pos·base^(−2i/headDim). */
function rope(v: Float64Array, nHeads: number, headDim: number, pos: number, base: number): void {
  for (let h = 0; h < nHeads; h++) {
    for (let i = 0; i < headDim / 2; i++) {
      const theta = pos * Math.pow(base, (-2 * i) / headDim);
      const c = Math.cos(theta);
      const s = Math.sin(theta);
      const a = h * headDim + 2 * i;
      const x0 = v[a];
      const x1 = v[a + 1];
      v[a] = x0 * c - x1 * s;
      v[a + 1] = x0 * s + x1 * c;
    }
  }
}

function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

function logSoftmax(logits: Float64Array): Float32Array {
  let max = -Infinity;
  for (const z of logits) max = Math.max(max, z);
  let sum = 0;
  for (const z of logits) sum += Math.exp(z - max);
  const logSum = max + Math.log(sum);
  return Float32Array.from(logits, (z) => z - logSum);
}

function need(weights: LlamaWeights, name: string, length: number): Float32Array {
  const w = weights.get(name);
  if (!w) throw new Error(`reference forward: missing weight ${name}`);
  if (w.length !== length) throw new Error(`reference forward: ${name} has ${w.length} values, expected ${length}`);
  return w;
}

/**
 * Log-probabilities of the next token after every prefix of `tokens`: result[p][t] = log P(t | tokens[0..p]).
 * If output.weight is absent the embedding matrix is used (tied embeddings), as llama.cpp does.
 */
export function referenceLogProbs(hp: LlamaHparams, weights: LlamaWeights, tokens: number[], opts: ReferenceOptions = {}): Float32Array[] {
  const { nEmbd, nFf, nHead, nKvHead, nLayer, headDim, nVocab, rmsEps, ropeFreqBase } = hp;
  const qDim = nHead * headDim;
  const kvDim = nKvHead * headDim;
  const groupSize = nHead / nKvHead;
  const embd = need(weights, "token_embd.weight", nVocab * nEmbd);
  const outputName = weights.has("output.weight") ? "output.weight" : "token_embd.weight";
  const output = need(weights, outputName, nVocab * nEmbd);
  const act = (name: string) => opts.llamaCpuActivations?.get(name);
  const outputNorm = need(weights, "output_norm.weight", nEmbd);
  const layers = Array.from({ length: nLayer }, (_, l) => {
    const w = (name: string, n: number) => need(weights, `blk.${l}.${name}.weight`, n);
    const a = (name: string) => act(`blk.${l}.${name}.weight`);
    return {
      attnNorm: w("attn_norm", nEmbd), wq: w("attn_q", qDim * nEmbd), wk: w("attn_k", kvDim * nEmbd),
      wv: w("attn_v", kvDim * nEmbd), wo: w("attn_output", nEmbd * qDim), ffnNorm: w("ffn_norm", nEmbd),
      gate: w("ffn_gate", nFf * nEmbd), up: w("ffn_up", nFf * nEmbd), down: w("ffn_down", nEmbd * nFf),
      // activation types per matmul (undefined = exact)
      aq: a("attn_q"), ak: a("attn_k"), av: a("attn_v"), ao: a("attn_output"), agate: a("ffn_gate"), aup: a("ffn_up"), adown: a("ffn_down"),
    };
  });
  const keys: Float64Array[][] = layers.map(() => []); // [nLayer][pos] → [nKvHead*headDim]
  const values: Float64Array[][] = layers.map(() => []); // [nLayer][pos] → [nKvHead*headDim]
  const result: Float32Array[] = [];

  for (let pos = 0; pos < tokens.length; pos++) {
    const token = tokens[pos];
    if (!Number.isInteger(token) || token < 0 || token >= nVocab) throw new RangeError(`token ${token} is outside the vocabulary [0, ${nVocab})`);
    const x = Float64Array.from(embd.subarray(token * nEmbd, (token + 1) * nEmbd));

    for (let l = 0; l < nLayer; l++) {
      const L = layers[l];
      // --- attention
      const n = rmsNorm(x, L.attnNorm, rmsEps);
      const q = matVec(L.wq, n, qDim, nEmbd, L.aq);
      const k = matVec(L.wk, n, kvDim, nEmbd, L.ak);
      const v = matVec(L.wv, n, kvDim, nEmbd, L.av);
      rope(q, nHead, headDim, pos, ropeFreqBase);
      rope(k, nKvHead, headDim, pos, ropeFreqBase);
      keys[l].push(k);
      values[l].push(v);
      const attended = new Float64Array(qDim);
      for (let h = 0; h < nHead; h++) {
        const kvOff = Math.floor(h / groupSize) * headDim;
        const scores = new Float64Array(pos + 1);
        let max = -Infinity;
        for (let t = 0; t <= pos; t++) {
          let dot = 0;
          for (let i = 0; i < headDim; i++) dot += q[h * headDim + i] * keys[l][t][kvOff + i];
          scores[t] = dot / Math.sqrt(headDim);
          max = Math.max(max, scores[t]);
        }
        let sum = 0;
        for (let t = 0; t <= pos; t++) sum += (scores[t] = Math.exp(scores[t] - max));
        for (let t = 0; t <= pos; t++) {
          const p = scores[t] / sum;
          for (let i = 0; i < headDim; i++) attended[h * headDim + i] += p * values[l][t][kvOff + i];
        }
      }
      const attnOut = matVec(L.wo, attended, nEmbd, qDim, L.ao);
      for (let i = 0; i < nEmbd; i++) x[i] += attnOut[i];

      // --- feed-forward (SwiGLU)
      const m = rmsNorm(x, L.ffnNorm, rmsEps);
      const g = matVec(L.gate, m, nFf, nEmbd, L.agate);
      const u = matVec(L.up, m, nFf, nEmbd, L.aup);
      const hidden = g.map((gi, i) => silu(gi) * u[i]);
      const ffnOut = matVec(L.down, hidden, nEmbd, nFf, L.adown);
      for (let i = 0; i < nEmbd; i++) x[i] += ffnOut[i];
    }

    const logits = matVec(output, rmsNorm(x, outputNorm, rmsEps), nVocab, nEmbd, act(outputName));
    result.push(logSoftmax(logits));
  }
  return result;
}
