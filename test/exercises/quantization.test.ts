// Graded tests for interview question 1 (quantization). They import the implementation through the
// "@target/" alias: solutions/ by default, exercises/ with LAB_TARGET=exercises.
import { describe, expect, it } from "vitest";
import {
  chooseLevel, dequantizeQ4_0Row, dequantizeQ8_0Row, fitsOnGpu, planMemory, quantizeQ4_0Row,
  quantizeQ8_0Row, quizAnswers, type LevelMeasurement, type ServingConfig,
} from "@target/quantization/index.ts";
import { quantFormat } from "../../lab/quant/index.ts";

/** Deterministic test rows: Gaussian-ish values, plus the blocks that catch rounding and sign bugs. */
function testRow(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const next = () => ((s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0) / 2 ** 32);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = (next() + next() + next() - 1.5) * 2;
  return x;
}

function specialBlocks(): Float32Array {
  const blocks: number[][] = [
    new Array(32).fill(0), // all zero: d = 0, must not produce NaN
    new Array(32).fill(-1.25), // constant negative
    Array.from({ length: 32 }, (_, j) => (j - 16) / 4), // a ramp that hits .5 after scaling
    Array.from({ length: 32 }, (_, j) => (j === 7 ? 100 : (j % 5) - 2)), // one outlier
    Array.from({ length: 32 }, (_, j) => (j === 3 ? -3 : j === 9 ? 3 : j / 16)), // tie in |max|: first wins
  ];
  return new Float32Array(blocks.flat());
}

function kitBytes(type: "Q8_0" | "Q4_0", x: Float32Array): Uint8Array {
  const format = quantFormat(type);
  const out = new Uint8Array((x.length / format.blockSize) * format.typeSize);
  format.quantizeRow(x, out, 0);
  return out;
}

function kitValues(type: "Q8_0" | "Q4_0", bytes: Uint8Array, n: number): Float32Array {
  const out = new Float32Array(n);
  quantFormat(type).dequantizeRow(bytes, 0, out);
  return out;
}

function firstDifference(a: Uint8Array, b: Uint8Array): string {
  if (a.length !== b.length) return `length ${a.length}, expected ${b.length}`;
  const i = a.findIndex((v, k) => v !== b[k]);
  return i < 0 ? "none" : `byte ${i} (block ${Math.floor(i / 34)}): got ${a[i]}, expected ${b[i]}`;
}

describe("task 1.1 — Q8_0 quantize/dequantize", () => {
  it("writes 34 bytes per block of 32 weights", () => {
    expect(quantizeQ8_0Row(testRow(64, 1)).length).toBe(68);
  });
  it("is bit-exact with lab/quant on random rows", () => {
    for (const [n, seed] of [[32, 2], [256, 3], [4096, 4]] as const) {
      const x = testRow(n, seed);
      const got = quantizeQ8_0Row(x);
      expect(firstDifference(got, kitBytes("Q8_0", x)), `row of ${n}`).toBe("none");
    }
  });
  it("is bit-exact on zero, constant, ramp, outlier and tie blocks", () => {
    const x = specialBlocks();
    expect(firstDifference(quantizeQ8_0Row(x), kitBytes("Q8_0", x))).toBe("none");
  });
  it("dequantizes to exactly what lab/quant gives", () => {
    const x = testRow(512, 5);
    const bytes = kitBytes("Q8_0", x);
    expect(Array.from(dequantizeQ8_0Row(bytes, 512))).toEqual(Array.from(kitValues("Q8_0", bytes, 512)));
  });
  it("round-trips with error at most half a step per block (plus the fp16 rounding of d)", () => {
    const x = testRow(1024, 6);
    const y = dequantizeQ8_0Row(quantizeQ8_0Row(x), 1024);
    for (let b = 0; b < 1024 / 32; b++) {
      const amax = Math.max(...Array.from(x.subarray(b * 32, b * 32 + 32), Math.abs));
      for (let j = b * 32; j < b * 32 + 32; j++) expect(Math.abs(x[j]! - y[j]!)).toBeLessThanOrEqual((amax / 127) * (0.5 + 127 * 2 ** -11) + 1e-6);
    }
  });
  it("rejects a row length that is not a multiple of 32", () => {
    expect(() => quantizeQ8_0Row(new Float32Array(33))).toThrow(RangeError);
    expect(() => dequantizeQ8_0Row(new Uint8Array(34), 31)).toThrow(RangeError);
  });
});

describe("task 1.2 — Q4_0 quantize/dequantize", () => {
  it("writes 18 bytes per block of 32 weights", () => {
    expect(quantizeQ4_0Row(testRow(64, 7)).length).toBe(36);
  });
  it("puts weight j in the low nibble and weight j+16 in the high nibble of byte 2+j", () => {
    // Block with max |x| = -8 → d = 1, so q = x + 8 exactly: weight j = j - 8 for j < 16, 7 - (j - 16) after.
    const x = new Float32Array(32);
    for (let j = 0; j < 16; j++) x[j] = j - 8; // q_j = j
    for (let j = 16; j < 32; j++) x[j] = 7 - (j - 16); // q_j = 15 - (j - 16)
    const bytes = quantizeQ4_0Row(x);
    expect(bytes[0]).toBe(0x00); // fp16(1.0) = 0x3c00, little-endian
    expect(bytes[1]).toBe(0x3c);
    for (let j = 0; j < 16; j++) expect(bytes[2 + j], `byte ${2 + j}`).toBe(j | ((15 - j) << 4));
    const back = dequantizeQ4_0Row(bytes, 32);
    expect(Array.from(back)).toEqual(Array.from(x));
  });
  it("is bit-exact with lab/quant on random rows", () => {
    for (const [n, seed] of [[32, 8], [256, 9], [4096, 10]] as const) {
      const x = testRow(n, seed);
      const got = quantizeQ4_0Row(x);
      const want = kitBytes("Q4_0", x);
      expect(got.length).toBe(want.length);
      expect(Array.from(got).findIndex((v, i) => v !== want[i]), `first differing byte, row of ${n}`).toBe(-1);
    }
  });
  it("is bit-exact on zero, constant, ramp, outlier and tie blocks", () => {
    const x = specialBlocks();
    const want = kitBytes("Q4_0", x);
    expect(Array.from(quantizeQ4_0Row(x))).toEqual(Array.from(want));
  });
  it("dequantizes to exactly what lab/quant gives", () => {
    const x = testRow(512, 11);
    const bytes = kitBytes("Q4_0", x);
    expect(Array.from(dequantizeQ4_0Row(bytes, 512))).toEqual(Array.from(kitValues("Q4_0", bytes, 512)));
  });
  it("rejects a row length that is not a multiple of 32", () => {
    expect(() => quantizeQ4_0Row(new Float32Array(48))).toThrow(RangeError);
  });
});

const llama2_7b = (bitsPerWeight: number, contextLength = 4096, concurrentSequences = 1): ServingConfig => ({
  parameters: 7e9, bitsPerWeight, nLayer: 32, nKvHead: 32, headDim: 128, kvBytesPerElement: 2, contextLength, concurrentSequences,
});
const llama2_70b = (bitsPerWeight: number, contextLength = 4096, concurrentSequences = 1): ServingConfig => ({
  parameters: 70e9, bitsPerWeight, nLayer: 80, nKvHead: 8, headDim: 128, kvBytesPerElement: 2, contextLength, concurrentSequences,
});

describe("task 1.3 — memory planner", () => {
  it("7B: about 14 GB of weights in FP16 and about 4 GB at Q4_K_M", () => {
    expect(planMemory(llama2_7b(16)).weightBytes).toBeCloseTo(14e9, -6);
    const q4 = planMemory(llama2_7b(4.85)).weightBytes;
    expect(q4).toBeGreaterThan(3.9e9);
    expect(q4).toBeLessThan(4.5e9);
  });
  it("70B: about 140 GB in FP16 and about 35 GB at 4 bits", () => {
    expect(planMemory(llama2_70b(16)).weightBytes).toBeCloseTo(140e9, -6);
    expect(planMemory(llama2_70b(4)).weightBytes).toBeCloseTo(35e9, -6);
  });
  it("KV cache: 2 × layers × KV heads × head dim × bytes, per token, per sequence", () => {
    const p = planMemory(llama2_7b(16, 4096, 1));
    expect(p.kvBytesPerToken).toBe(524_288);
    expect(p.kvCacheBytes).toBe(524_288 * 4096);
    const gqa = planMemory(llama2_70b(16, 2048, 8));
    expect(gqa.kvBytesPerToken).toBe(2 * 80 * 8 * 128 * 2);
    expect(gqa.kvCacheBytes).toBe(gqa.kvBytesPerToken * 2048 * 8);
    expect(gqa.totalBytes).toBe(gqa.weightBytes + gqa.kvCacheBytes);
  });
  it("decides what fits a GPU with headroom", () => {
    expect(fitsOnGpu(llama2_7b(16), 24, 0.1).fits).toBe(true); // 16.1 GB ≤ 21.6 GB
    expect(fitsOnGpu(llama2_7b(16), 16, 0.1).fits).toBe(false); // 16.1 GB > 14.4 GB
    expect(fitsOnGpu(llama2_70b(16), 80, 0.1).fits).toBe(false);
    const v = fitsOnGpu(llama2_70b(4.5, 4096, 8), 80, 0.1);
    expect(v.fits).toBe(true);
    expect(v.usableBytes).toBeCloseTo(72e9, -3);
    expect(v.spareBytes).toBeCloseTo(v.usableBytes - v.plan.totalBytes, -3);
    // Headroom matters: 39.4 GB of weights + 1.3 GB of KV cache on a 48 GB card.
    expect(fitsOnGpu(llama2_70b(4.5), 48, 0.1).fits).toBe(true);
    expect(fitsOnGpu(llama2_70b(4.5), 48, 0.2).fits).toBe(false);
  });
  it("rejects nonsense with a RangeError", () => {
    expect(() => planMemory({ ...llama2_7b(16), parameters: -1 })).toThrow(RangeError);
    expect(() => planMemory({ ...llama2_7b(16), headDim: Number.NaN })).toThrow(RangeError);
    expect(() => fitsOnGpu(llama2_7b(16), 0, 0.1)).toThrow(RangeError);
    expect(() => fitsOnGpu(llama2_7b(16), 24, 1)).toThrow(RangeError);
  });
});

const TABLE: LevelMeasurement[] = [
  { level: "F16", bitsPerWeight: 16, memoryBytes: 16e9, relativeQuality: { prose: 1.0, math: 1.0, code: 1.0 } },
  { level: "Q8_0", bitsPerWeight: 8.5, memoryBytes: 9e9, relativeQuality: { prose: 0.999, math: 0.995, code: 0.997 } },
  { level: "Q5_K_M", bitsPerWeight: 5.7, memoryBytes: 6.5e9, relativeQuality: { prose: 0.99, math: 0.96, code: 0.97 } },
  { level: "Q4_K_M", bitsPerWeight: 4.85, memoryBytes: 5.5e9, relativeQuality: { prose: 0.98, math: 0.93, code: 0.95 } },
  { level: "Q2_K", bitsPerWeight: 2.6, memoryBytes: 3.5e9, relativeQuality: { prose: 0.85, math: 0.6, code: 0.7 } },
];

describe("task 1.4 — level chooser", () => {
  it("picks the lowest-memory level that meets the bar on every task", () => {
    const c = chooseLevel(TABLE, 24e9, 0.95);
    expect(c).toMatchObject({ ok: true, level: "Q5_K_M", worstTask: "math" });
    expect(c.ok && c.worstQuality).toBeCloseTo(0.96);
  });
  it("changes its pick when only some tasks matter", () => {
    expect(chooseLevel(TABLE, 24e9, 0.95, ["prose"])).toMatchObject({ ok: true, level: "Q4_K_M" });
    expect(chooseLevel(TABLE, 24e9, 0.95, ["prose", "code"])).toMatchObject({ ok: true, level: "Q4_K_M" });
    expect(chooseLevel(TABLE, 24e9, 0.99, ["math"])).toMatchObject({ ok: true, level: "Q8_0" });
  });
  it("respects the memory budget", () => {
    expect(chooseLevel(TABLE, 6e9, 0.9)).toMatchObject({ ok: true, level: "Q4_K_M" });
    expect(chooseLevel(TABLE, 8e9, 0.99)).toMatchObject({ ok: false });
  });
  it("breaks a memory tie by quality, whatever the table order", () => {
    const tie: LevelMeasurement[] = [
      { level: "A", bitsPerWeight: 4.5, memoryBytes: 5e9, relativeQuality: { t: 0.96 } },
      { level: "B", bitsPerWeight: 4.5, memoryBytes: 5e9, relativeQuality: { t: 0.98 } },
    ];
    expect(chooseLevel(tie, 6e9, 0.95)).toMatchObject({ ok: true, level: "B" });
    expect(chooseLevel([...tie].reverse(), 6e9, 0.95)).toMatchObject({ ok: true, level: "B" });
  });
  it("says why nothing fits", () => {
    const memory = chooseLevel(TABLE, 1e9, 0.5);
    expect(memory.ok).toBe(false);
    if (!memory.ok) {
      expect(memory.reason).toMatch(/memory budget/);
      expect(memory.reason).toMatch(/Q2_K/);
    }
    const quality = chooseLevel(TABLE, 6e9, 0.97);
    expect(quality.ok).toBe(false);
    if (!quality.ok) {
      expect(quality.reason).toMatch(/quality/);
      expect(quality.reason).toMatch(/Q4_K_M/);
      expect(quality.reason).toMatch(/math/);
    }
    const empty = chooseLevel([], 1e12, 0.5);
    expect(empty.ok).toBe(false);
    if (!empty.ok) expect(empty.reason).toMatch(/no levels/);
  });
  it("refuses a table with a missing measurement", () => {
    const broken: LevelMeasurement[] = [{ level: "X", bitsPerWeight: 4, memoryBytes: 1, relativeQuality: { prose: 1 } }];
    expect(() => chooseLevel(broken, 10, 0.5, ["prose", "math"])).toThrow(/math/);
  });
});

describe("task 1.5 — quiz: quantization trade-offs", () => {
  const answers = () => quizAnswers();
  const near = (got: number, want: number) => Math.abs(got - want) <= Math.abs(want) * 0.02;
  it("Q1: which tensors Q4_K_M keeps at higher precision", () => expect(answers().q1).toBe("b"));
  it("Q2: bits per weight of Q4_0", () => expect(near(answers().q2, 4.5)).toBe(true));
  it("Q3: KV-cache bytes per token of Llama-2-7B", () => expect(near(answers().q3, 524_288)).toBe(true));
  it("Q4: why 4-bit decodes faster", () => expect(answers().q4).toBe("c"));
  it("Q5: gigabytes of a 70B model at 4.5 bpw", () => expect(near(answers().q5, 39.375)).toBe(true));
  it("Q6: why norms stay F32", () => expect(answers().q6).toBe("a"));
});
