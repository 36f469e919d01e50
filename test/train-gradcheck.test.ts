// The hand-written backward pass against central finite differences, in float64, on a tiny model
// with GQA (2 query heads per KV head), two layers and two sequences, for every kind of parameter.
import { describe, expect, it } from "vitest";
import { ATTENTION_BLOCK, initParams, seededRandom, Workspace, type ModelShape } from "../lab/train/model.ts";
import { matmulNT, matmulNTNaive } from "../lab/train/matmul.ts";

const shape: ModelShape = {
  nVocab: 13, nCtxTrain: 16, nEmbd: 8, nFf: 12, nHead: 4, nKvHead: 2, nLayer: 2, headDim: 4, rmsEps: 1e-5, ropeFreqBase: 10000,
};
const batch = 2, T = 6;

function setup() {
  const ws = new Workspace(shape, batch, T, Float64Array);
  const params = ws.params;
  initParams(shape, ws.layout, params, 7);
  const rand = seededRandom(99);
  // Larger-than-init weights so softmaxes and SwiGLU are far from linear; norms away from 1.
  for (const p of ws.layout.slots) {
    for (let i = 0; i < p.size; i++) {
      params[p.offset + i] = p.kind === "norm" ? 0.5 + rand() : params[p.offset + i] * 25;
    }
  }
  const tokens = Array.from({ length: batch * T }, () => Math.floor(rand() * shape.nVocab));
  const targets = Array.from({ length: batch * T }, (_, i) => (i === 3 ? -1 : Math.floor(rand() * shape.nVocab)));
  return { ws, params, tokens, targets };
}

describe("trainer backward pass", () => {
  it("matches finite differences for every parameter kind", () => {
    const { ws, params, tokens, targets } = setup();
    const loss = () => { ws.forward(tokens, batch, T); return ws.lossSum(targets); };
    loss();
    ws.transposeWeights();
    ws.backward(targets, 1);
    const grads = Float64Array.from(ws.grads);
    const rand = seededRandom(5);
    const names = ["token_embd.weight", "blk.0.attn_norm.weight", "blk.0.attn_q.weight", "blk.1.attn_k.weight",
      "blk.0.attn_v.weight", "blk.1.attn_output.weight", "blk.1.ffn_norm.weight", "blk.0.ffn_gate.weight",
      "blk.1.ffn_up.weight", "blk.0.ffn_down.weight", "output_norm.weight", "output.weight"];
    let checked = 0;
    for (const name of names) {
      const slot = ws.layout.byName.get(name)!;
      let worst = 0, maxGrad = 0;
      for (let n = 0; n < 12; n++) {
        const i = slot.offset + Math.floor(rand() * slot.size);
        const eps = 1e-5, saved = params[i];
        params[i] = saved + eps; const up = loss();
        params[i] = saved - eps; const down = loss();
        params[i] = saved;
        const numeric = (up - down) / (2 * eps);
        worst = Math.max(worst, Math.abs(numeric - grads[i]));
        maxGrad = Math.max(maxGrad, Math.abs(numeric));
        checked++;
      }
      expect(maxGrad, `${name}: gradient should not vanish in this setup`).toBeGreaterThan(1e-4);
      expect(worst / maxGrad, `${name}: relative error`).toBeLessThan(1e-6);
    }
    expect(checked).toBe(names.length * 12);
  });

  it("matches finite differences past one attention block (query blocks, keys up to each block's end)", () => {
    // T = 300 is three query blocks of ATTENTION_BLOCK = 128, the last one ragged (44 rows).
    const longT = 300, s: ModelShape = { ...shape, nCtxTrain: 512 };
    expect(longT).toBeGreaterThan(2 * ATTENTION_BLOCK);
    const ws = new Workspace(s, 1, longT, Float64Array);
    initParams(s, ws.layout, ws.params, 11);
    const rand = seededRandom(3);
    for (const p of ws.layout.slots) for (let i = 0; i < p.size; i++) ws.params[p.offset + i] = p.kind === "norm" ? 0.5 + rand() : ws.params[p.offset + i] * 25;
    const tokens = Array.from({ length: longT }, () => Math.floor(rand() * s.nVocab));
    const targets = Array.from({ length: longT }, () => Math.floor(rand() * s.nVocab));
    const loss = () => { ws.forward(tokens, 1, longT); return ws.lossSum(targets); };
    loss();
    ws.transposeWeights();
    ws.backward(targets, 1);
    const grads = Float64Array.from(ws.grads);
    for (const name of ["blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.1.attn_v.weight", "blk.1.attn_k.weight"]) {
      const slot = ws.layout.byName.get(name)!;
      let worst = 0, maxGrad = 0;
      for (let n = 0; n < 8; n++) {
        const i = slot.offset + Math.floor(rand() * slot.size), eps = 1e-5, saved = ws.params[i];
        ws.params[i] = saved + eps; const up = loss();
        ws.params[i] = saved - eps; const down = loss();
        ws.params[i] = saved;
        const numeric = (up - down) / (2 * eps);
        worst = Math.max(worst, Math.abs(numeric - grads[i]));
        maxGrad = Math.max(maxGrad, Math.abs(numeric));
      }
      expect(maxGrad, `${name}: gradient should not vanish`).toBeGreaterThan(1e-4);
      expect(worst / maxGrad, `${name}: relative error`).toBeLessThan(1e-6);
    }
  });

  it("gives a window's first block the same logits whatever the window's length (causal blocks)", () => {
    const s: ModelShape = { ...shape, nCtxTrain: 512 };
    const rand = seededRandom(8);
    const tokens = Array.from({ length: 260 }, () => Math.floor(rand() * s.nVocab));
    const logitsOf = (T: number) => {
      const ws = new Workspace(s, 1, T, Float64Array);
      initParams(s, ws.layout, ws.params, 2);
      return Float64Array.from(ws.forward(tokens.slice(0, T), 1, T));
    };
    const long = logitsOf(260), short = logitsOf(100);
    let worst = 0;
    for (let i = 0; i < short.length; i++) worst = Math.max(worst, Math.abs(long[i] - short[i]));
    expect(worst).toBeLessThan(1e-12);
  });

  it("scale multiplies the gradient and ignored targets contribute nothing", () => {
    const { ws, tokens, targets } = setup();
    ws.forward(tokens, batch, T);
    ws.lossSum(targets);
    ws.transposeWeights();
    ws.backward(targets, 0.25);
    const g1 = Float64Array.from(ws.grads);
    ws.forward(tokens, batch, T);
    ws.lossSum(targets.map(() => -1));
    ws.backward(targets.map(() => -1), 1);
    const g0 = Float64Array.from(ws.grads);
    expect(g0.every((x) => x === 0)).toBe(true);
    expect(g1.some((x) => x !== 0)).toBe(true);
  });
});

describe("register-blocked matmul", () => {
  it("equals the triple loop on ragged sizes", () => {
    const rand = seededRandom(3);
    for (const [M, N, K] of [[9, 7, 5], [4, 4, 16], [13, 18, 3], [1, 5, 2]]) {
      const A = Float64Array.from({ length: M * K }, rand), B = Float64Array.from({ length: N * K }, rand);
      const C1 = new Float64Array(M * N).fill(1), C2 = new Float64Array(M * N).fill(1);
      matmulNT(C1, A, B, M, N, K, true);
      matmulNTNaive(C2, A, B, M, N, K, true);
      for (let i = 0; i < M * N; i++) expect(C1[i]).toBeCloseTo(C2[i], 12);
    }
  });
});

describe("float32 SIMD workspace", () => {
  it("gives the float64 logits and gradients to float32 precision", () => {
    const { ws, params, tokens, targets } = setup();
    const ws32 = new Workspace(shape, batch, T);
    ws32.params.set(params);
    ws.forward(tokens, batch, T);
    ws32.forward(tokens, batch, T);
    let worst = 0;
    for (let i = 0; i < ws.logits.length; i++) worst = Math.max(worst, Math.abs(ws.logits[i] - ws32.logits[i]));
    expect(worst).toBeLessThan(1e-4);
    const loss64 = ws.lossSum(targets), loss32 = ws32.lossSum(targets);
    expect(Math.abs(loss64 - loss32)).toBeLessThan(1e-4 * loss64);
    ws.transposeWeights(); ws.backward(targets, 1);
    ws32.transposeWeights(); ws32.backward(targets, 1);
    let gmax = 0, gerr = 0;
    for (let i = 0; i < params.length; i++) { gmax = Math.max(gmax, Math.abs(ws.grads[i])); gerr = Math.max(gerr, Math.abs(ws.grads[i] - ws32.grads[i])); }
    expect(gerr / gmax).toBeLessThan(1e-4);
  });
});
