// A llama-architecture transformer that can learn: forward pass, loss, and backward pass, written
// out by hand so every gradient can be read next to the value it differentiates. Same math as
// llama.cpp's "llama" graph, so a trained model exported to GGUF runs there unchanged:
//   x = tok_embd[token]
//   per layer: x += Wo · attention(rope(Wq·rms(x)), rope(Wk·rms(x)), Wv·rms(x))     (GQA, causal)
//              x += Wdown · (silu(Wgate·rms(x)) ⊙ Wup·rms(x))                         (SwiGLU)
//   logits = Wout · rms(x)
// RoPE is llama.cpp's NORM type: it rotates adjacent pairs (2i, 2i+1) of each head by pos·θ_i,
// θ_i = base^(−2i/headDim). K/V head g serves query heads g·(nHead/nKvHead) … (g+1)·(nHead/nKvHead)−1.
//
// Sections, in reading order: shapes and parameter layout · initialisation · the workspace
// (preallocated activations) · forward · loss · backward.
// Every kernel is generic over Float32Array (training) and Float64Array (gradient checks).
import { matmulNT, transpose, type Floats } from "./matmul.ts";
import { SimdArena } from "./simd.ts";
import { mulberry32 } from "../random.ts";
import type { LlamaHparams } from "../gguf/index.ts";

// ─── Shapes and parameter layout ─────────────────────────────────────────────────────────────────

/** The architecture's hyperparameters: exactly lab/gguf's LlamaHparams, so a trained model's shape is
 *  what llamaHparams() reads back from its GGUF (nCtxTrain is written as llama.context_length;
 *  training windows are shorter). */
export type ModelShape = LlamaHparams;

/** One parameter tensor inside the flat parameter vector. Matrices are row-major [out][in]. */
export interface ParamSlot {
  name: string; // GGUF tensor name, e.g. "blk.0.attn_q.weight"
  offset: number; // first element in the flat vector
  size: number; // elements
  ne: number[]; // ggml order: [in, out] for matrices, [n] for norms
  kind: "embedding" | "norm" | "matrix";
}

export interface ParamLayout {
  slots: ParamSlot[];
  byName: Map<string, ParamSlot>;
  total: number; // elements in the flat vector
}

export function paramLayout(s: ModelShape): ParamLayout {
  const qDim = s.nHead * s.headDim, kvDim = s.nKvHead * s.headDim;
  const slots: ParamSlot[] = [];
  let offset = 0;
  const add = (name: string, ne: number[], kind: ParamSlot["kind"]) => {
    const size = ne.reduce((a, b) => a * b, 1);
    slots.push({ name, offset, size, ne, kind });
    offset += size;
  };
  add("token_embd.weight", [s.nEmbd, s.nVocab], "embedding");
  for (let l = 0; l < s.nLayer; l++) {
    add(`blk.${l}.attn_norm.weight`, [s.nEmbd], "norm");
    add(`blk.${l}.attn_q.weight`, [s.nEmbd, qDim], "matrix");
    add(`blk.${l}.attn_k.weight`, [s.nEmbd, kvDim], "matrix");
    add(`blk.${l}.attn_v.weight`, [s.nEmbd, kvDim], "matrix");
    add(`blk.${l}.attn_output.weight`, [qDim, s.nEmbd], "matrix");
    add(`blk.${l}.ffn_norm.weight`, [s.nEmbd], "norm");
    add(`blk.${l}.ffn_gate.weight`, [s.nEmbd, s.nFf], "matrix");
    add(`blk.${l}.ffn_up.weight`, [s.nEmbd, s.nFf], "matrix");
    add(`blk.${l}.ffn_down.weight`, [s.nFf, s.nEmbd], "matrix");
  }
  add("output_norm.weight", [s.nEmbd], "norm");
  add("output.weight", [s.nEmbd, s.nVocab], "matrix");
  return { slots, byName: new Map(slots.map((p) => [p.name, p])), total: offset };
}

/** Multiply-adds per token of one forward pass over a context of `ctx` tokens (attention averaged
 *  over a causal window). Used to size the draft (≤ 1/8 of the target) and to report GFLOP/s. */
export function macsPerToken(s: ModelShape, ctx: number): number {
  const qDim = s.nHead * s.headDim, kvDim = s.nKvHead * s.headDim;
  const matrices = s.nEmbd * (qDim + 2 * kvDim) + qDim * s.nEmbd + 3 * s.nEmbd * s.nFf;
  const attention = 2 * s.nHead * s.headDim * ((ctx + 1) / 2);
  return s.nLayer * (matrices + attention) + s.nEmbd * s.nVocab;
}

// ─── Initialisation ──────────────────────────────────────────────────────────────────────────────

/** mulberry32 (lab/random.ts): every random number in training comes from one of these. */
export const seededRandom = mulberry32;

/** GPT-2 style: N(0, 0.02) matrices and embeddings, residual-output projections shrunk by
 *  1/√(2·nLayer) so the residual stream does not grow with depth, norms at 1. */
export function initParams(s: ModelShape, layout: ParamLayout, params: Floats, seed: number): void {
  const rand = seededRandom(seed);
  const gaussian = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  for (const p of layout.slots) {
    const residualOut = p.name.endsWith("attn_output.weight") || p.name.endsWith("ffn_down.weight");
    const std = p.kind === "norm" ? 0 : 0.02 / (residualOut ? Math.sqrt(2 * s.nLayer) : 1);
    for (let i = 0; i < p.size; i++) params[p.offset + i] = p.kind === "norm" ? 1 : std * gaussian();
  }
}

/** Queries per attention block. Up to it, a window is one block (the whole [T][T] score square);
 *  past it, each block of queries meets only the keys up to its last query, so a 1,024-token
 *  window does 56% of the square's products, in cache-sized rectangles. */
export const ATTENTION_BLOCK = 128;

// ─── The workspace: every activation the backward pass needs, allocated once ─────────────────────

type FloatCtor = Float32ArrayConstructor | Float64ArrayConstructor;

interface LayerActivations {
  xIn: Floats; // [rows][nEmbd] residual stream entering the layer
  rstdAttn: Floats; // [rows] 1/√(mean(x²)+eps) of the attention norm
  xnAttn: Floats; // [rows][nEmbd] normed input to q/k/v
  q: Floats; // [rows][nHead·headDim] after RoPE
  k: Floats; // [rows][nKvHead·headDim] after RoPE
  v: Floats; // [rows][nKvHead·headDim]
  // The softmax is not kept: a [B][nHead][T][T] probability buffer would be 64 MiB per layer and
  // worker at T = 1,024. Its row max and 1/Σexp are (two numbers per row); backward recomputes
  // S = Q·Kᵀ and from them the exact same probabilities, one (sequence, head) at a time.
  rowMax: Float64Array; // [B][nHead][T] max_u S[t][u] over the causal row
  rowInv: Float64Array; // [B][nHead][T] 1 / Σ_u exp((S[t][u] − max)/√headDim), in double as the forward used it
  attnOut: Floats; // [rows][nHead·headDim] probs·v, input of attn_output
  xMid: Floats; // [rows][nEmbd] residual after attention
  rstdFfn: Floats; // [rows]
  xnFfn: Floats; // [rows][nEmbd]
  gate: Floats; // [rows][nFf] Wgate·xn, before silu
  up: Floats; // [rows][nFf]
  hidden: Floats; // [rows][nFf] silu(gate)⊙up, input of ffn_down
}

/** Preallocated buffers for up to maxBatch·maxT positions, and the parameters and gradients they
 *  work on. One per thread. In f32 everything lives in one SimdArena so matmuls run in WebAssembly
 *  SIMD; write the parameters into ws.params, read the gradient from ws.grads. */
export class Workspace {
  readonly layout: ParamLayout;
  readonly params: Floats; // [nParams] the flat parameter vector, layout as paramLayout()
  readonly grads: Floats; // [nParams] ∂loss/∂params after backward()
  readonly maxBatch: number;
  readonly maxT: number;
  readonly layers: LayerActivations[];
  readonly xFinal: Floats; // [rows][nEmbd] residual after the last layer
  readonly rstdFinal: Floats; // [rows]
  readonly xnFinal: Floats; // [rows][nEmbd]
  readonly logits: Floats; // [rows][nVocab]; after loss(): softmax probabilities
  readonly ropeCos: Floats; // [maxT][headDim/2]
  readonly ropeSin: Floats; // [maxT][headDim/2]
  readonly weightsT: Floats; // every matrix transposed, [in][out] each, same order as the layout
  readonly weightsTOffset: Map<string, number>;
  // Backward scratch
  readonly dx: Floats; // [rows][nEmbd] gradient flowing down the residual stream
  readonly dxn: Floats; // [rows][nEmbd]
  readonly dAttnOut: Floats; // [rows][nHead·headDim]
  readonly dq: Floats; // [rows][nHead·headDim]
  readonly dk: Floats; // [rows][nKvHead·headDim]
  readonly dv: Floats; // [rows][nKvHead·headDim]
  readonly dGate: Floats; // [rows][nFf]
  readonly dUp: Floats; // [rows][nFf]
  readonly dHidden: Floats; // [rows][nFf]
  // Per-head attention scratch: one (sequence, head) at a time, packed so products are matmuls.
  readonly headQ: Floats; // [maxT][headDim] this head's queries
  readonly headQT: Floats; // [headDim][maxT]
  readonly headK: Floats; // [maxT][headDim] its KV group's keys
  readonly headKT: Floats; // [headDim][maxT]
  readonly headV: Floats; // [maxT][headDim]
  readonly headVT: Floats; // [headDim][maxT]
  readonly headO: Floats; // [maxT][headDim] output, or ∂L/∂output in backward
  readonly headOT: Floats; // [headDim][maxT]
  readonly headD: Floats; // [maxT][headDim] ∂L/∂q of this head
  readonly headDK: Floats; // [maxT][headDim] ∂L/∂k from this head, summed over query blocks
  readonly headDV: Floats; // [maxT][headDim] ∂L/∂v from this head, summed over query blocks
  readonly prefixT: Floats; // [headDim][maxT] the first r1 columns of headKT or headVT, packed
  // Attention works on one block of ≤ ATTENTION_BLOCK queries at a time, against the keys up to its
  // last query (causal): [m][r1] rectangles, packed with row length r1, not whole [T][T] squares.
  readonly square: Floats; // [m][r1] scores, then probabilities (forward) or ∂L/∂probs, then ∂L/∂scores (backward)
  readonly probs: Floats; // [m][r1] backward: this block's probabilities, recomputed from the scores
  readonly squareT: Floats; // [r1][m] a transposed rectangle
  readonly scratchA: Floats; // [maxDim][rows] transposed gradient for weight-gradient products
  readonly scratchB: Floats; // [maxDim][rows] transposed activation
  tokens: Int32Array = new Int32Array(0); // [B][T] inputs of the last forward
  batch = 0;
  T = 0;

  constructor(readonly shape: ModelShape, maxBatch: number, maxT: number, readonly Float: FloatCtor = Float32Array,
    alloc?: (n: number) => Floats) {
    const s = shape;
    this.layout = paramLayout(s);
    this.maxBatch = maxBatch;
    this.maxT = maxT;
    const rows = maxBatch * maxT, D = s.nEmbd, qDim = s.nHead * s.headDim, kvDim = s.nKvHead * s.headDim;
    if (!alloc && Float === Float32Array) {
      // Size the arena by allocating once with a counter, then allocate for real inside it.
      let floats = 0, count = 0;
      new Workspace(shape, maxBatch, maxT, Float, (n) => { floats += n; count++; return new Float32Array(n); });
      const arena = SimdArena.create(floats, count);
      if (arena) alloc = (n) => arena.alloc(n);
    }
    const F = alloc ?? ((n: number) => new Float(n));
    this.params = F(this.layout.total);
    this.grads = F(this.layout.total);
    this.layers = [];
    for (let l = 0; l < s.nLayer; l++) {
      this.layers.push({
        xIn: F(rows * D), rstdAttn: F(rows), xnAttn: F(rows * D), q: F(rows * qDim), k: F(rows * kvDim),
        v: F(rows * kvDim), rowMax: new Float64Array(maxBatch * s.nHead * maxT), rowInv: new Float64Array(maxBatch * s.nHead * maxT),
        attnOut: F(rows * qDim),
        xMid: F(rows * D), rstdFfn: F(rows), xnFfn: F(rows * D), gate: F(rows * s.nFf), up: F(rows * s.nFf),
        hidden: F(rows * s.nFf),
      });
    }
    this.xFinal = F(rows * D);
    this.rstdFinal = F(rows);
    this.xnFinal = F(rows * D);
    this.logits = F(rows * s.nVocab);
    const half = s.headDim / 2;
    this.ropeCos = new Float(maxT * half);
    this.ropeSin = new Float(maxT * half);
    // θ_i = pos·base^(−2i/headDim), computed the way ggml's CPU rope cache does: in float32, the
    // frequency advanced by repeated multiplication. Exact angles would differ from llama.cpp's by
    // ~1e-6 relative, enough to move log-probabilities of a trained model by ~1e-4.
    const f = Math.fround, thetaScale = f(Math.pow(f(s.ropeFreqBase), f(-2 / s.headDim)));
    for (let pos = 0; pos < maxT; pos++) {
      let theta = f(pos);
      for (let i = 0; i < half; i++) {
        this.ropeCos[pos * half + i] = f(Math.cos(theta));
        this.ropeSin[pos * half + i] = f(Math.sin(theta));
        theta = f(theta * thetaScale);
      }
    }
    this.weightsTOffset = new Map();
    let wt = 0;
    for (const p of this.layout.slots) if (p.kind === "matrix") { this.weightsTOffset.set(p.name, wt); wt += p.size; }
    this.weightsT = F(wt);
    this.dx = F(rows * D);
    this.dxn = F(rows * D);
    this.dAttnOut = F(rows * qDim);
    this.dq = F(rows * qDim);
    this.dk = F(rows * kvDim);
    this.dv = F(rows * kvDim);
    this.dGate = F(rows * s.nFf);
    this.dUp = F(rows * s.nFf);
    this.dHidden = F(rows * s.nFf);
    const hd = s.headDim;
    this.headQ = F(maxT * hd); this.headQT = F(maxT * hd); this.headK = F(maxT * hd); this.headKT = F(maxT * hd);
    this.headV = F(maxT * hd); this.headVT = F(maxT * hd); this.headO = F(maxT * hd); this.headOT = F(maxT * hd);
    this.headD = F(maxT * hd); this.headDK = F(maxT * hd); this.headDV = F(maxT * hd); this.prefixT = F(maxT * hd);
    const rect = Math.min(maxT, ATTENTION_BLOCK) * maxT;
    this.square = F(rect);
    this.probs = F(rect);
    this.squareT = F(rect);
    const maxDim = Math.max(D, qDim, s.nFf, s.nVocab);
    this.scratchA = F(maxDim * rows);
    this.scratchB = F(maxDim * rows);
  }

  // ─── Forward ───────────────────────────────────────────────────────────────────────────────────

  /** Runs the model on tokens [batch][T] (each row starts at position 0); fills this.logits. */
  forward(tokens: ArrayLike<number>, batch: number, T: number): Floats {
    const params = this.params, s = this.shape, D = s.nEmbd, qDim = s.nHead * s.headDim, kvDim = s.nKvHead * s.headDim;
    if (batch > this.maxBatch || T > this.maxT || tokens.length !== batch * T) {
      throw new RangeError(`forward: batch ${batch}×${T} (${tokens.length} tokens) exceeds the workspace ${this.maxBatch}×${this.maxT}`);
    }
    this.batch = batch;
    this.T = T;
    const rows = batch * T;
    this.tokens = Int32Array.from(tokens);
    const slot = (name: string) => this.layout.byName.get(name)!;
    const W = (name: string) => params.subarray(slot(name).offset, slot(name).offset + slot(name).size);

    let x = this.layers.length ? this.layers[0].xIn : this.xFinal;
    const emb = slot("token_embd.weight").offset;
    for (let r = 0; r < rows; r++) {
      const t = this.tokens[r];
      if (!(t >= 0 && t < s.nVocab)) throw new RangeError(`forward: token ${t} outside the vocabulary of ${s.nVocab}`);
      for (let d = 0; d < D; d++) x[r * D + d] = params[emb + t * D + d];
    }
    for (let l = 0; l < s.nLayer; l++) {
      const a = this.layers[l], p = `blk.${l}.`;
      rmsNorm(a.xnAttn, a.rstdAttn, a.xIn, W(p + "attn_norm.weight"), rows, D, s.rmsEps);
      matmulNT(a.q, a.xnAttn, W(p + "attn_q.weight"), rows, qDim, D);
      matmulNT(a.k, a.xnAttn, W(p + "attn_k.weight"), rows, kvDim, D);
      matmulNT(a.v, a.xnAttn, W(p + "attn_v.weight"), rows, kvDim, D);
      this.rope(a.q, rows, T, s.nHead, +1);
      this.rope(a.k, rows, T, s.nKvHead, +1);
      this.attention(a, batch, T);
      matmulNT(a.xMid, a.attnOut, W(p + "attn_output.weight"), rows, D, qDim);
      for (let i = 0; i < rows * D; i++) a.xMid[i] += a.xIn[i];
      rmsNorm(a.xnFfn, a.rstdFfn, a.xMid, W(p + "ffn_norm.weight"), rows, D, s.rmsEps);
      matmulNT(a.gate, a.xnFfn, W(p + "ffn_gate.weight"), rows, s.nFf, D);
      matmulNT(a.up, a.xnFfn, W(p + "ffn_up.weight"), rows, s.nFf, D);
      for (let i = 0; i < rows * s.nFf; i++) {
        const g = a.gate[i];
        a.hidden[i] = (g / (1 + Math.exp(-g))) * a.up[i];
      }
      x = l + 1 < s.nLayer ? this.layers[l + 1].xIn : this.xFinal;
      matmulNT(x, a.hidden, W(p + "ffn_down.weight"), rows, D, s.nFf);
      for (let i = 0; i < rows * D; i++) x[i] += a.xMid[i];
    }
    rmsNorm(this.xnFinal, this.rstdFinal, this.xFinal, W("output_norm.weight"), rows, D, s.rmsEps);
    matmulNT(this.logits, this.xnFinal, W("output.weight"), rows, s.nVocab, D);
    return this.logits;
  }

  /** Rotates adjacent pairs of every head in place; direction −1 applies the inverse (backward). */
  private rope(buf: Floats, rows: number, T: number, nHeads: number, direction: 1 | -1): void {
    const hd = this.shape.headDim, half = hd / 2, width = nHeads * hd, cos = this.ropeCos, sin = this.ropeSin;
    for (let r = 0; r < rows; r++) {
      const pos = r % T;
      for (let h = 0; h < nHeads; h++) {
        const base = r * width + h * hd;
        for (let i = 0; i < half; i++) {
          const c = cos[pos * half + i], sn = direction * sin[pos * half + i];
          const x0 = buf[base + 2 * i], x1 = buf[base + 2 * i + 1];
          buf[base + 2 * i] = x0 * c - x1 * sn;
          buf[base + 2 * i + 1] = x0 * sn + x1 * c;
        }
      }
    }
  }

  /** Causal grouped-query attention: fills a.attnOut (and the softmax row statistics a.rowMax,
   *  a.rowInv) from a.q, a.k, a.v. Per (sequence, head) and block of up to ATTENTION_BLOCK queries
   *  [r0, r1): S = Q·Kᵀ/√headDim over keys [0, r1) as one matmul (the masked corner above the
   *  diagonal is computed and discarded: cheaper in SIMD than skipping it in scalar code; blocks
   *  skip the keys after r1), causal softmax in place, O = P·V. */
  private attention(a: LayerActivations, batch: number, T: number): void {
    const s = this.shape, hd = s.headDim, qDim = s.nHead * hd, kvDim = s.nKvHead * hd;
    const group = s.nHead / s.nKvHead, scale = this.scale;
    const S = this.square, Q = this.headQ, K = this.headK, V = this.headV, VT = this.headVT, O = this.headO;
    for (let b = 0; b < batch; b++) {
      for (let h = 0; h < s.nHead; h++) {
        const kvh = Math.floor(h / group);
        if (h % group === 0) {
          gatherHead(K, a.k, b, T, kvDim, kvh * hd, hd);
          gatherHead(V, a.v, b, T, kvDim, kvh * hd, hd);
          transpose(VT, V, T, hd);
        }
        gatherHead(Q, a.q, b, T, qDim, h * hd, hd);
        const stats = (b * s.nHead + h) * T;
        for (let r0 = 0; r0 < T; r0 += ATTENTION_BLOCK) {
          const r1 = Math.min(T, r0 + ATTENTION_BLOCK), m = r1 - r0;
          matmulNT(S, Q.subarray(r0 * hd, r1 * hd), K, m, r1, hd);
          for (let i = 0; i < m; i++) {
            const t = r0 + i, row = i * r1;
            let max = -Infinity;
            for (let u = 0; u <= t; u++) if (S[row + u] > max) max = S[row + u];
            let sum = 0;
            for (let u = 0; u <= t; u++) sum += (S[row + u] = Math.exp((S[row + u] - max) * scale));
            const inv = 1 / sum;
            for (let u = 0; u <= t; u++) S[row + u] *= inv;
            for (let u = t + 1; u < r1; u++) S[row + u] = 0;
            a.rowMax[stats + t] = max;
            a.rowInv[stats + t] = inv;
          }
          matmulNT(O.subarray(r0 * hd, r1 * hd), S, this.prefixColumns(VT, T, r1), m, hd, r1);
        }
        scatterHead(a.attnOut, O, b, T, qDim, h * hd, hd, false);
      }
    }
  }

  /** The first r1 columns of a [headDim][T] matrix, packed as [headDim][r1] (itself when r1 = T). */
  private prefixColumns(MT: Floats, T: number, r1: number): Floats {
    if (r1 === T) return MT;
    const hd = this.shape.headDim, out = this.prefixT;
    for (let d = 0; d < hd; d++) out.set(MT.subarray(d * T, d * T + r1), d * r1);
    return out.subarray(0, hd * r1);
  }

  /** P of one query block [r0, r0+m) of one (sequence, head), from S = Q·Kᵀ and the forward's row
   *  statistics: the same float operations in the same order, so P is bit-identical to the forward's. */
  private recomputeProbs(P: Floats, Q: Floats, K: Floats, a: LayerActivations, stats: number, r0: number, m: number): void {
    const scale = this.scale, hd = this.shape.headDim, r1 = r0 + m;
    matmulNT(P, Q.subarray(r0 * hd, r1 * hd), K, m, r1, hd);
    for (let i = 0; i < m; i++) {
      const t = r0 + i, row = i * r1, max = a.rowMax[stats + t], inv = a.rowInv[stats + t];
      for (let u = 0; u <= t; u++) P[row + u] = Math.exp((P[row + u] - max) * scale);
      for (let u = 0; u <= t; u++) P[row + u] *= inv;
      for (let u = t + 1; u < r1; u++) P[row + u] = 0;
    }
  }

  private get scale(): number {
    return 1 / Math.sqrt(this.shape.headDim);
  }

  // ─── Loss ──────────────────────────────────────────────────────────────────────────────────────

  /** Sum over positions of −log softmax(logits)[target]; turns this.logits into probabilities in
   *  place (the backward pass starts from them). Targets < 0 are ignored. */
  lossSum(targets: ArrayLike<number>): number {
    const V = this.shape.nVocab, rows = this.batch * this.T, L = this.logits;
    let total = 0;
    for (let r = 0; r < rows; r++) {
      const off = r * V;
      let max = -Infinity;
      for (let i = 0; i < V; i++) if (L[off + i] > max) max = L[off + i];
      const t = targets[r];
      const targetLogit = t >= 0 ? L[off + t] : 0;
      let sum = 0;
      for (let i = 0; i < V; i++) sum += (L[off + i] = Math.exp(L[off + i] - max));
      if (t >= 0) total += max + Math.log(sum) - targetLogit;
      const inv = 1 / sum;
      for (let i = 0; i < V; i++) L[off + i] *= inv;
    }
    return total;
  }

  // ─── Backward ──────────────────────────────────────────────────────────────────────────────────

  /** Copies every weight matrix transposed into this.weightsT; call once after each update. */
  transposeWeights(): void {
    const params = this.params;
    for (const p of this.layout.slots) {
      if (p.kind !== "matrix") continue;
      const [nIn, nOut] = p.ne;
      const off = this.weightsTOffset.get(p.name)!;
      transpose(this.weightsT.subarray(off, off + p.size), params.subarray(p.offset, p.offset + p.size), nOut, nIn);
    }
  }

  /** this.grads = scale · ∂(lossSum)/∂params for the last forward + lossSum.
   *  Needs transposeWeights() for the current params. */
  backward(targets: ArrayLike<number>, scale: number): void {
    const params = this.params, grads = this.grads, s = this.shape, D = s.nEmbd, V = s.nVocab, qDim = s.nHead * s.headDim, kvDim = s.nKvHead * s.headDim;
    const rows = this.batch * this.T, T = this.T;
    const slot = (name: string) => this.layout.byName.get(name)!;
    const W = (name: string) => params.subarray(slot(name).offset, slot(name).offset + slot(name).size);
    const G = (name: string) => grads.subarray(slot(name).offset, slot(name).offset + slot(name).size);
    const WT = (name: string) => {
      const off = this.weightsTOffset.get(name)!;
      return this.weightsT.subarray(off, off + slot(name).size);
    };
    grads.fill(0);

    // ∂L/∂logits = scale · (softmax − onehot); this.logits already holds the softmax.
    const dLogits = this.logits;
    for (let r = 0; r < rows; r++) {
      const t = targets[r];
      for (let i = 0; i < V; i++) dLogits[r * V + i] *= t >= 0 ? scale : 0;
      if (t >= 0) dLogits[r * V + t] -= scale;
    }
    this.linearBackward(dLogits, this.xnFinal, "output.weight", G("output.weight"), WT("output.weight"), this.dxn, rows, V, D, false);
    rmsNormBackward(this.dx, G("output_norm.weight"), this.dxn, this.xFinal, this.rstdFinal, W("output_norm.weight"), rows, D, false);

    for (let l = s.nLayer - 1; l >= 0; l--) {
      const a = this.layers[l], p = `blk.${l}.`;
      // FFN: x_out = xMid + Wdown·(silu(gate)⊙up); this.dx holds ∂L/∂x_out and keeps flowing to xMid.
      this.linearBackward(this.dx, a.hidden, p + "ffn_down.weight", G(p + "ffn_down.weight"), WT(p + "ffn_down.weight"), this.dHidden, rows, D, s.nFf, false);
      for (let i = 0; i < rows * s.nFf; i++) {
        const g = a.gate[i], sig = 1 / (1 + Math.exp(-g)), dh = this.dHidden[i];
        this.dUp[i] = dh * g * sig;
        this.dGate[i] = dh * a.up[i] * sig * (1 + g * (1 - sig));
      }
      this.linearBackward(this.dGate, a.xnFfn, p + "ffn_gate.weight", G(p + "ffn_gate.weight"), WT(p + "ffn_gate.weight"), this.dxn, rows, s.nFf, D, false);
      this.linearBackward(this.dUp, a.xnFfn, p + "ffn_up.weight", G(p + "ffn_up.weight"), WT(p + "ffn_up.weight"), this.dxn, rows, s.nFf, D, true);
      rmsNormBackward(this.dx, G(p + "ffn_norm.weight"), this.dxn, a.xMid, a.rstdFfn, W(p + "ffn_norm.weight"), rows, D, true);

      // Attention: xMid = xIn + Wo·attn(q, k, v).
      this.linearBackward(this.dx, a.attnOut, p + "attn_output.weight", G(p + "attn_output.weight"), WT(p + "attn_output.weight"), this.dAttnOut, rows, D, qDim, false);
      this.attentionBackward(a, this.batch, T);
      this.rope(this.dq, rows, T, s.nHead, -1);
      this.rope(this.dk, rows, T, s.nKvHead, -1);
      this.linearBackward(this.dq, a.xnAttn, p + "attn_q.weight", G(p + "attn_q.weight"), WT(p + "attn_q.weight"), this.dxn, rows, qDim, D, false);
      this.linearBackward(this.dk, a.xnAttn, p + "attn_k.weight", G(p + "attn_k.weight"), WT(p + "attn_k.weight"), this.dxn, rows, kvDim, D, true);
      this.linearBackward(this.dv, a.xnAttn, p + "attn_v.weight", G(p + "attn_v.weight"), WT(p + "attn_v.weight"), this.dxn, rows, kvDim, D, true);
      rmsNormBackward(this.dx, G(p + "attn_norm.weight"), this.dxn, a.xIn, a.rstdAttn, W(p + "attn_norm.weight"), rows, D, true);
    }

    const emb = slot("token_embd.weight").offset;
    for (let r = 0; r < rows; r++) {
      const t = this.tokens[r];
      for (let d = 0; d < D; d++) grads[emb + t * D + d] += this.dx[r * D + d];
    }
  }

  /** y[rows][out] = x[rows][in]·Wᵀ: dW = dyᵀ·x, and dx = dy·W (added to dx when accumulate). */
  private linearBackward(dy: Floats, x: Floats, _name: string, dW: Floats, wT: Floats, dx: Floats,
    rows: number, nOut: number, nIn: number, accumulate: boolean): void {
    const dyT = this.scratchA.subarray(0, nOut * rows), xT = this.scratchB.subarray(0, nIn * rows);
    transpose(dyT, dy, rows, nOut);
    transpose(xT, x, rows, nIn);
    matmulNT(dW, dyT, xT, nOut, nIn, rows, true);
    matmulNT(dx, dy, wT, rows, nIn, nOut, accumulate);
  }

  /** From this.dAttnOut to this.dq, this.dk, this.dv (all still in RoPE'd coordinates). Per
   *  (sequence, head) and query block [r0, r1) with keys [0, r1): P recomputed, ∂V += Pᵀ·∂O,
   *  ∂P = ∂O·Vᵀ, ∂S = P⊙(∂P − rowsum(P⊙∂P))/√headDim, ∂Q = ∂S·K, ∂K += ∂Sᵀ·Q (K and V are shared by
   *  the heads of a group and by every later query block, so their gradients add up). */
  private attentionBackward(a: LayerActivations, batch: number, T: number): void {
    const s = this.shape, hd = s.headDim, qDim = s.nHead * hd, kvDim = s.nKvHead * hd;
    const group = s.nHead / s.nKvHead, scale = this.scale;
    const dS = this.square, P = this.probs, sqT = this.squareT, Q = this.headQ, QT = this.headQT, K = this.headK, KT = this.headKT;
    const V = this.headV, dO = this.headO, dOT = this.headOT, dQ = this.headD, dK = this.headDK, dV = this.headDV;
    this.dk.fill(0, 0, batch * T * kvDim);
    this.dv.fill(0, 0, batch * T * kvDim);
    for (let b = 0; b < batch; b++) {
      for (let h = 0; h < s.nHead; h++) {
        const kvh = Math.floor(h / group);
        if (h % group === 0) {
          gatherHead(K, a.k, b, T, kvDim, kvh * hd, hd);
          transpose(KT, K, T, hd);
          gatherHead(V, a.v, b, T, kvDim, kvh * hd, hd);
        }
        gatherHead(Q, a.q, b, T, qDim, h * hd, hd);
        gatherHead(dO, this.dAttnOut, b, T, qDim, h * hd, hd);
        dK.fill(0, 0, T * hd);
        dV.fill(0, 0, T * hd);
        const stats = (b * s.nHead + h) * T;
        for (let r0 = 0; r0 < T; r0 += ATTENTION_BLOCK) {
          const r1 = Math.min(T, r0 + ATTENTION_BLOCK), m = r1 - r0;
          const dOq = dO.subarray(r0 * hd, r1 * hd);
          transpose(QT, Q.subarray(r0 * hd, r1 * hd), m, hd);
          transpose(dOT, dOq, m, hd);
          this.recomputeProbs(P, Q, K, a, stats, r0, m);
          // ∂V[0, r1) += Pᵀ·∂O
          transpose(sqT, P, m, r1);
          matmulNT(dV, sqT, dOT, r1, hd, m, true);
          // ∂P = ∂O·Vᵀ, then ∂S in place
          matmulNT(dS, dOq, V, m, r1, hd);
          for (let i = 0; i < m; i++) {
            const t = r0 + i, row = i * r1;
            let weighted = 0;
            for (let u = 0; u <= t; u++) weighted += P[row + u] * dS[row + u];
            for (let u = 0; u <= t; u++) dS[row + u] = P[row + u] * (dS[row + u] - weighted) * scale;
            for (let u = t + 1; u < r1; u++) dS[row + u] = 0;
          }
          // ∂Q[r0, r1) = ∂S·K
          matmulNT(dQ.subarray(r0 * hd, r1 * hd), dS, this.prefixColumns(KT, T, r1), m, hd, r1);
          // ∂K[0, r1) += ∂Sᵀ·Q
          transpose(sqT, dS, m, r1);
          matmulNT(dK, sqT, QT, r1, hd, m, true);
        }
        scatterHead(this.dq, dQ, b, T, qDim, h * hd, hd, false);
        scatterHead(this.dk, dK, b, T, kvDim, kvh * hd, hd, true);
        scatterHead(this.dv, dV, b, T, kvDim, kvh * hd, hd, true);
      }
    }
  }
}

/** dst[T][hd] = columns [col, col+hd) of rows b·T … b·T+T−1 of src[rows][width]. */
function gatherHead(dst: Floats, src: Floats, b: number, T: number, width: number, col: number, hd: number): void {
  for (let t = 0; t < T; t++) {
    const from = (b * T + t) * width + col, to = t * hd;
    for (let d = 0; d < hd; d++) dst[to + d] = src[from + d];
  }
}

/** The inverse of gatherHead: writes (or adds) src[T][hd] into dst's columns. */
function scatterHead(dst: Floats, src: Floats, b: number, T: number, width: number, col: number, hd: number, add: boolean): void {
  for (let t = 0; t < T; t++) {
    const to = (b * T + t) * width + col, from = t * hd;
    if (add) for (let d = 0; d < hd; d++) dst[to + d] += src[from + d];
    else for (let d = 0; d < hd; d++) dst[to + d] = src[from + d];
  }
}

// ─── RMSNorm, forward and backward ───────────────────────────────────────────────────────────────

/** y = x / √(mean(x²)+eps) ⊙ g, row by row; keeps 1/√(…) per row for the backward pass. */
function rmsNorm(y: Floats, rstd: Floats, x: Floats, g: Floats, rows: number, D: number, eps: number): void {
  for (let r = 0; r < rows; r++) {
    const off = r * D;
    let ss = 0;
    for (let d = 0; d < D; d++) ss += x[off + d] * x[off + d];
    const inv = 1 / Math.sqrt(ss / D + eps);
    rstd[r] = inv;
    for (let d = 0; d < D; d++) y[off + d] = x[off + d] * inv * g[d];
  }
}

/** dg += Σ dy⊙x̂; dx (+)= rstd·(dy⊙g − x̂·mean(dy⊙g⊙x̂)), x̂ = x·rstd. */
function rmsNormBackward(dx: Floats, dg: Floats, dy: Floats, x: Floats, rstd: Floats, g: Floats,
  rows: number, D: number, accumulate: boolean): void {
  for (let r = 0; r < rows; r++) {
    const off = r * D, inv = rstd[r];
    let dot = 0;
    for (let d = 0; d < D; d++) {
      const xhat = x[off + d] * inv;
      dg[d] += dy[off + d] * xhat;
      dot += dy[off + d] * g[d] * xhat;
    }
    const mean = dot / D;
    for (let d = 0; d < D; d++) {
      const v = inv * (dy[off + d] * g[d] - x[off + d] * inv * mean);
      dx[off + d] = accumulate ? dx[off + d] + v : v;
    }
  }
}
