// The hand-written backward pass against central finite differences, in float64, on a tiny model
// with GQA (2 query heads per KV head), two layers and two sequences, for every kind of parameter.
import { describe, expect, it } from "vitest";
import { initParams, seededRandom, Workspace, type ModelShape } from "../lab/train/model.ts";
import { matmulNT, matmulNTNaive } from "../lab/train/matmul.ts";

const shape: ModelShape = {
  nVocab: 13, nCtxTrain: 16, nEmbd: 8, nFf: 12, nHead: 4, nKvHead: 2, nLayer: 2, headDim: 4, rmsEps: 1e-5, ropeFreqBase: 10000,
};
const batch = 2, T = 6;

function setup() {
  const ws = new Workspace(shape, batch, T, Float64Array);
  const params = new Float64Array(ws.layout.total);
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
    const loss = () => { ws.forward(params, tokens, batch, T); return ws.lossSum(targets); };
    loss();
    ws.transposeWeights(params);
    const grads = new Float64Array(params.length);
    ws.backward(params, targets, grads, 1);
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

  it("scale multiplies the gradient and ignored targets contribute nothing", () => {
    const { ws, params, tokens, targets } = setup();
    ws.forward(params, tokens, batch, T);
    ws.lossSum(targets);
    ws.transposeWeights(params);
    const g1 = new Float64Array(params.length);
    ws.backward(params, targets, g1, 0.25);
    ws.forward(params, tokens, batch, T);
    ws.lossSum(targets.map(() => -1));
    const g0 = new Float64Array(params.length);
    ws.backward(params, targets.map(() => -1), g0, 1);
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
