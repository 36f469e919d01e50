// The WebAssembly SIMD kernels against plain loops: F32 and Q8_0 products of odd sizes, batched and
// single, and the whole LabEngine with kernels "simd" against kernels "js".
import { describe, expect, it } from "vitest";
import { join } from "node:path";
import { SimdArena, simdModule, simdSupports } from "../lab/engine/simd.ts";
import { openEngine } from "../lab/engine/engine.ts";
import { mulberry32 } from "../lab/random.ts";
import { quantFormat } from "../lab/quant/index.ts";
import { tempDir, writeSyntheticVariant } from "./engine-fixtures.ts";

const hasSimd = simdModule() !== null;

function randoms(n: number, seed: number): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n }, () => 2 * r() - 1);
}

describe.runIf(hasSimd)("SIMD kernels", () => {
  it.each([[32, 4, 1], [96, 12, 3], [256, 516, 5], [512, 64, 64]])("F32 and Q8_0, nIn=%i nOut=%i T=%i, match plain loops", (nIn, nOut, T) => {
    const w = randoms(nIn * nOut, nIn + nOut);
    const x = randoms(nIn * T, T);
    const q8 = quantFormat("Q8_0");
    const rb = (nIn / 32) * 34;
    const q = new Uint8Array(rb * nOut);
    for (let o = 0; o < nOut; o++) q8.quantizeRow(w.subarray(o * nIn, (o + 1) * nIn), q, o * rb);
    const arena = new SimdArena(w.byteLength + q.byteLength + 32, T, nIn, nOut);
    const pw = arena.place(new Uint8Array(w.buffer));
    const pq = arena.place(q);
    const outF = new Float32Array(T * nOut);
    const outQ = new Float32Array(T * nOut);
    arena.matmul("F32", pw.ptr, x, T, nIn, nOut, outF);
    arena.matmul("Q8_0", pq.ptr, x, T, nIn, nOut, outQ);
    for (let t = 0; t < T; t++) {
      for (let o = 0; o < nOut; o++) {
        let s = 0;
        for (let i = 0; i < nIn; i++) s += w[o * nIn + i] * x[t * nIn + i];
        expect(Math.abs(outF[t * nOut + o] - s)).toBeLessThan(1e-5 * Math.sqrt(nIn));
        const sq = q8.dotRow(q, o * rb, x, t * nIn, nIn);
        expect(Math.abs(outQ[t * nOut + o] - sq)).toBeLessThan(1e-5 * Math.sqrt(nIn));
      }
    }
    // A vector alone gives bit-identical results to the same vector inside a batch.
    const last = x.subarray((T - 1) * nIn, T * nIn);
    const one = new Float32Array(nOut);
    arena.matmul("F32", pw.ptr, last, 1, nIn, nOut, one);
    expect(Array.from(one)).toEqual(Array.from(outF.subarray((T - 1) * nOut)));
    arena.matmul("Q8_0", pq.ptr, last, 1, nIn, nOut, one);
    expect(Array.from(one)).toEqual(Array.from(outQ.subarray((T - 1) * nOut)));
  });

  it.each([["Q4_K", 256, 8], ["Q4_K", 512, 37], ["Q6_K", 256, 8], ["Q6_K", 512, 37], ["F16", 96, 20], ["BF16", 64, 8], ["Q4_0", 256, 36], ["Q4_1", 64, 12]] as const)("%s one vector, nIn=%i nOut=%i, matches dotRow", (type, nIn, nOut) => {
    const w = randoms(nIn * nOut, 7 * nIn + nOut).map((v, i) => v * (1 + (i % 5)));
    const x = randoms(nIn, 11);
    const q4 = quantFormat(type);
    const rb = (nIn / q4.blockSize) * q4.typeSize;
    const q = new Uint8Array(rb * nOut);
    for (let o = 0; o < nOut; o++) q4.quantizeRow(w.subarray(o * nIn, (o + 1) * nIn), q, o * rb);
    const arena = new SimdArena(q.byteLength + 16, 3, nIn, nOut);
    const { ptr } = arena.place(q);
    const out = new Float32Array(nOut);
    arena.matmul(type, ptr, x, 1, nIn, nOut, out);
    for (let o = 0; o < nOut; o++) expect(Math.abs(out[o] - q4.dotRow(q, o * rb, x, 0, nIn))).toBeLessThan(1e-4 * Math.sqrt(nIn));
    // Several vectors: rows decoded once into F32 tiles (needs nOut % 4 == 0).
    if (nOut % 4 === 0) {
      const xs = randoms(3 * nIn, 13);
      const outs = new Float32Array(3 * nOut);
      arena.matmul(type, ptr, xs, 3, nIn, nOut, outs);
      for (let t = 0; t < 3; t++) {
        for (let o = 0; o < nOut; o++) expect(Math.abs(outs[t * nOut + o] - q4.dotRow(q, o * rb, xs, t * nIn, nIn))).toBeLessThan(1e-4 * Math.sqrt(nIn));
      }
    } else {
      expect(() => arena.matmul(type, ptr, x, 2, nIn, nOut, out)).toThrow(RangeError);
    }
  });

  it("says which shapes it supports", () => {
    expect(simdSupports("F32", 8, 12)).toBe(true);
    expect(simdSupports("F32", 8, 13)).toBe(false);
    expect(simdSupports("Q8_0", 64, 7)).toBe(true);
    expect(simdSupports("Q4_K", 256, 8)).toBe(true);
    expect(simdSupports("Q4_K", 128, 8)).toBe(false);
    expect(simdSupports("Q6_K", 256, 8)).toBe(true);
    expect(simdSupports("Q5_K", 256, 8)).toBe(false);
    expect(simdSupports("F16", 8, 12)).toBe(true);
    expect(simdSupports("Q4_0", 64, 6)).toBe(false);
  });

  it.each(["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q4_K", "Q6_K"] as const)("LabEngine %s: kernels simd and js give the same distributions (≤ 1e-4)", async (type) => {
    const tmp = tempDir("engine-simd-");
    try {
      const path = await writeSyntheticVariant(join(tmp.dir, "m.gguf"), type);
      const a = await openEngine("lab", path, { contextSize: 64, kernels: "simd" });
      const b = await openEngine("lab", path, { contextSize: 64, kernels: "js" });
      const ids = a.tokenizer.encode("the cat sat on the mat and looked at the dog");
      const sa = await a.createSequence();
      const sb = await b.createSequence();
      const ra = await sa.evaluate(ids, { all: true });
      const rb = await sb.evaluate(ids, { all: true });
      let m = 0;
      for (let r = 0; r < ra.length; r++) for (let i = 0; i < ra[r].length; i++) m = Math.max(m, Math.abs(ra[r][i] - rb[r][i]));
      expect(m).toBeLessThanOrEqual(1e-4);
      expect(a.memory().weightBytes).toBe(b.memory().weightBytes);
      await a.dispose();
      await b.dispose();
    } finally {
      tmp.cleanup();
    }
  });
});
