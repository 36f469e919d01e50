// The shared sampler: greedy is argmax, seeded draws repeat, top-k / top-p cut where they should,
// and temperature-1 draws follow the distribution.
import { describe, expect, it } from "vitest";
import { Sampler, argmax, logSoftmaxInPlace } from "../lab/engine/sampler.ts";
import { mulberry32 } from "../lab/random.ts";

function logRow(probs: number[]): Float32Array {
  return Float32Array.from(probs, (p) => Math.log(p));
}

describe("sampler", () => {
  const row = logRow([0.1, 0.5, 0.25, 0.15]);

  it("greedy picks the argmax, ties to the lowest id", () => {
    expect(new Sampler().sample(row)).toBe(1);
    expect(argmax(Float32Array.from([3, 7, 7, 1]))).toBe(1);
  });

  it("the same seed gives the same draws, another seed other draws", () => {
    const draw = (seed: number) => { const s = new Sampler({ temperature: 1, seed }); return Array.from({ length: 50 }, () => s.sample(row)); };
    expect(draw(7)).toEqual(draw(7));
    expect(draw(7)).not.toEqual(draw(8));
  });

  it("temperature 1 follows the distribution (20k draws within 2%)", () => {
    const s = new Sampler({ temperature: 1, seed: 3 });
    const counts = [0, 0, 0, 0];
    const n = 20_000;
    for (let i = 0; i < n; i++) counts[s.sample(row)]++;
    [0.1, 0.5, 0.25, 0.15].forEach((p, i) => expect(Math.abs(counts[i] / n - p)).toBeLessThan(0.02));
  });

  it("top-k keeps only the k most likely tokens", () => {
    const s = new Sampler({ temperature: 5, topK: 2, seed: 1 });
    const seen = new Set(Array.from({ length: 500 }, () => s.sample(row)));
    expect([...seen].sort()).toEqual([1, 2]);
  });

  it("top-p keeps the smallest prefix reaching p", () => {
    const s = new Sampler({ temperature: 1, topP: 0.7, seed: 1 }); // 0.5 + 0.25 ≥ 0.7
    const seen = new Set(Array.from({ length: 500 }, () => s.sample(row)));
    expect([...seen].sort()).toEqual([1, 2]);
    const tiny = new Sampler({ temperature: 1, topP: 0.01, seed: 1 });
    for (let i = 0; i < 50; i++) expect(tiny.sample(row)).toBe(1);
  });

  it("low temperature approaches greedy; tokens with zero probability are never drawn", () => {
    const s = new Sampler({ temperature: 0.01, seed: 5 });
    for (let i = 0; i < 100; i++) expect(s.sample(row)).toBe(1);
    const z = logRow([0, 0.5, 0.5, 0]);
    const t = new Sampler({ temperature: 2, seed: 5 });
    for (let i = 0; i < 200; i++) expect([1, 2]).toContain(t.sample(z));
  });

  it("rejects nonsense options", () => {
    expect(() => new Sampler({ temperature: -1 })).toThrow(RangeError);
    expect(() => new Sampler({ topK: 1.5 })).toThrow(RangeError);
    expect(() => new Sampler({ topP: 0 })).toThrow(RangeError);
  });

  it("log-softmax normalises and mulberry32 is uniform-ish", () => {
    const r = logSoftmaxInPlace(Float32Array.from([1, 2, 3]));
    expect(Math.exp(r[0]) + Math.exp(r[1]) + Math.exp(r[2])).toBeCloseTo(1, 6);
    const rand = mulberry32(1);
    let sum = 0;
    for (let i = 0; i < 10_000; i++) sum += rand();
    expect(Math.abs(sum / 10_000 - 0.5)).toBeLessThan(0.02);
  });
});
