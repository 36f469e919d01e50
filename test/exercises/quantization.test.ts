// Graded tests for interview question 1 (quantization). They import the implementation through the
// "@target/" alias: solutions/ by default, exercises/ with LAB_TARGET=exercises.
import { describe, expect, it } from "vitest";
import {
  chooseLevel, dequantizeQ4_0Row, dequantizeQ8_0Row, fitsOnGpu, planMemory, quantizeQ4_0Row,
  quantizeQ8_0Row, quizAnswers, type LevelMeasurement, type QuizAnswers, type ServingConfig,
} from "@target/quantization/index.ts";
import { createHash } from "node:crypto";
import { ggmlCase } from "./ggml-vectors.ts";

// Tasks 1.1/1.2 are graded against ggml's own bytes, recorded from node-llama-cpp's libggml with
// their provenance (test/exercises/ggml-vectors.ts), never against the kit's lab/quant.

/** "none", or where the first byte differs and which weight(s) it stores, in words a student can act on. */
function firstDifference(got: Uint8Array, want: Uint8Array, type: "Q8_0" | "Q4_0"): string {
  if (got.length !== want.length) return `length ${got.length} bytes, expected ${want.length}`;
  const i = got.findIndex((v, k) => v !== want[k]);
  if (i < 0) return "none";
  const blockBytes = type === "Q8_0" ? 34 : 18;
  const [block, offset] = [Math.floor(i / blockBytes), i % blockBytes];
  const holds = offset < 2 ? `the fp16 scale d, ${offset === 0 ? "low" : "high"} byte`
    : type === "Q8_0" ? `q_${offset - 2}` : `q_${offset - 2} in the low nibble, q_${offset - 2 + 16} in the high one`;
  return `byte ${i} (block ${block}, byte ${offset}: ${holds}): got ${got[i]}, expected ${want[i]}`;
}

const SPECIAL = "blocks 0 zero, 1 constant -1.25, 2 ramp (j-16)/4, 3 outlier 100 at j=7, 4 tie -3/+3";

/** "none", or the first dequantized value that differs (NaN equals NaN; 0 equals -0). */
function firstValueDifference(got: Float32Array, want: Float32Array): string {
  if (got.length !== want.length) return `length ${got.length} values, expected ${want.length}`;
  const same = (a: number, b: number) => a === b || (Number.isNaN(a) && Number.isNaN(b));
  const i = Array.from(want).findIndex((w, k) => !same(got[k]!, w));
  return i < 0 ? "none" : `value ${i} (block ${Math.floor(i / 32)}): got ${got[i]}, expected ${want[i]}`;
}

describe("task 1.1 — Q8_0 quantize/dequantize", () => {
  it("writes 34 bytes per block of 32 weights", () => {
    expect(quantizeQ8_0Row(ggmlCase("Q8_0 row of 32").input).length).toBe(34);
    expect(quantizeQ8_0Row(ggmlCase("Q8_0 row of 256").input).length).toBe(272);
  });
  it("is bit-exact with ggml on random rows", () => {
    for (const name of ["Q8_0 row of 32", "Q8_0 row of 256", "Q8_0 row of 4096"] as const) {
      const c = ggmlCase(name);
      expect(firstDifference(quantizeQ8_0Row(c.input), c.bytes, "Q8_0"), name).toBe("none");
    }
  });
  it("is bit-exact with ggml on zero, constant, ramp, outlier and tie blocks", () => {
    const c = ggmlCase("Q8_0 special blocks");
    expect(firstDifference(quantizeQ8_0Row(c.input), c.bytes, "Q8_0"), SPECIAL).toBe("none");
  });
  it("dequantizes to exactly what ggml gives", () => {
    for (const name of ["Q8_0 row of 512", "Q8_0 special blocks"] as const) {
      const c = ggmlCase(name);
      expect(firstValueDifference(dequantizeQ8_0Row(c.bytes, c.input.length), c.values), name).toBe("none");
    }
  });
  it("round-trips with error at most half a step per block (plus the fp16 rounding of d)", () => {
    const x = ggmlCase("Q8_0 row of 4096").input.subarray(0, 1024);
    const y = dequantizeQ8_0Row(quantizeQ8_0Row(x), 1024);
    for (let b = 0; b < 1024 / 32; b++) {
      const amax = Math.max(...Array.from(x.subarray(b * 32, b * 32 + 32), Math.abs));
      for (let j = b * 32; j < b * 32 + 32; j++) expect(Math.abs(x[j]! - y[j]!), `weight ${j}`).toBeLessThanOrEqual((amax / 127) * (0.5 + 127 * 2 ** -11) + 1e-6);
    }
  });
  it("rejects a row length that is not a multiple of 32", () => {
    expect(() => quantizeQ8_0Row(new Float32Array(33))).toThrow(RangeError);
    expect(() => dequantizeQ8_0Row(new Uint8Array(34), 31)).toThrow(RangeError);
  });
});

describe("task 1.2 — Q4_0 quantize/dequantize", () => {
  it("writes 18 bytes per block of 32 weights", () => {
    expect(quantizeQ4_0Row(ggmlCase("Q4_0 row of 32").input).length).toBe(18);
    expect(quantizeQ4_0Row(ggmlCase("Q4_0 row of 256").input).length).toBe(144);
  });
  it("puts weight j in the low nibble and weight j+16 in the high nibble of byte 2+j", () => {
    // Block with max |x| = -8 → d = 1, so q = x + 8 exactly: weight j = j - 8 for j < 16, 7 - (j - 16) after.
    const x = new Float32Array(32);
    for (let j = 0; j < 16; j++) x[j] = j - 8; // q_j = j
    for (let j = 16; j < 32; j++) x[j] = 7 - (j - 16); // q_j = 15 - (j - 16)
    const bytes = quantizeQ4_0Row(x);
    expect(bytes[0], "byte 0 (fp16 1.0 = 0x3c00, little-endian: low byte first)").toBe(0x00);
    expect(bytes[1], "byte 1 (fp16 1.0 = 0x3c00, high byte)").toBe(0x3c);
    for (let j = 0; j < 16; j++) expect(bytes[2 + j], `byte ${2 + j}: low nibble q_${j} = ${j}, high nibble q_${j + 16} = ${15 - j}`).toBe(j | ((15 - j) << 4));
    expect(firstValueDifference(dequantizeQ4_0Row(bytes, 32), x)).toBe("none");
  });
  it("is bit-exact with ggml on random rows", () => {
    for (const name of ["Q4_0 row of 32", "Q4_0 row of 256", "Q4_0 row of 4096"] as const) {
      const c = ggmlCase(name);
      expect(firstDifference(quantizeQ4_0Row(c.input), c.bytes, "Q4_0"), name).toBe("none");
    }
  });
  it("is bit-exact with ggml on zero, constant, ramp, outlier and tie blocks", () => {
    const c = ggmlCase("Q4_0 special blocks");
    expect(firstDifference(quantizeQ4_0Row(c.input), c.bytes, "Q4_0"), SPECIAL).toBe("none");
  });
  it("dequantizes to exactly what ggml gives", () => {
    for (const name of ["Q4_0 row of 512", "Q4_0 special blocks"] as const) {
      const c = ggmlCase(name);
      expect(firstValueDifference(dequantizeQ4_0Row(c.bytes, c.input.length), c.values), name).toBe("none");
    }
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
    // Mistral-7B's shape: 32 layers, 8 KV heads of 128 (grouped-query attention), F16 cache.
    const p = planMemory({ ...llama2_7b(16, 4096, 1), nKvHead: 8 });
    expect(p.kvBytesPerToken).toBe(131_072);
    expect(p.kvCacheBytes).toBe(131_072 * 4096);
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
    // Headroom matters: the 4.5-bpw 70B model and its KV cache fit 90% of a 48 GB card, not 80%.
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

// The quiz answers are stored as sha256(salt + ":" + answer) with one salt per question, so reading
// this file does not give them away. Choices compare as lower-case letters; numbers at 3 significant
// figures (answer.toPrecision(3): 1234.5 and 1230 both read "1.23e+3").
const QUIZ: Record<keyof QuizAnswers, { salt: string; sha256: string }> = {
  q1: { salt: "55c9a5ccdd4932e2", sha256: "87a3f7821d3d833eaa9fe9839505a5148cec36d9b0ba2599d030656e250922c5" },
  q2: { salt: "b41f7ef02f26635c", sha256: "4c0f081d9d65f5798e83bb4fd08ac0ea17e2a976b88921e9de3622584c58b68e" },
  q3: { salt: "1b012d9872887c76", sha256: "af84c157d7f88d6e2410a614d7d1b5ca9ee2f92433509625ebc192107f8896dd" },
  q4: { salt: "5f622f059c74a1c2", sha256: "590feabd57381776327c836aa953b70992dc34c01b7b4656deb643edf3138305" },
  q5: { salt: "5f259cdab0896916", sha256: "36d4a1d3b2bfba47b850080690322e347fa8978998359eeb981b50b804c1bbd4" },
  q6: { salt: "b46b08ac5c187f76", sha256: "01eef3dcc6e743562569d1ee1379f78c3e44b252d881e0fcf8820919c14bdc1a" },
};

/** The answer as it is hashed: a finite number at 3 significant figures, anything else trimmed lower-case text. */
function canonicalAnswer(answer: unknown): string {
  return typeof answer === "number" && Number.isFinite(answer) ? answer.toPrecision(3) : String(answer).trim().toLowerCase();
}

function isRight(q: keyof QuizAnswers, answer: unknown): boolean {
  const { salt, sha256 } = QUIZ[q];
  return createHash("sha256").update(`${salt}:${canonicalAnswer(answer)}`).digest("hex") === sha256;
}

describe("task 1.5 — quiz: quantization trade-offs", () => {
  const check = (q: keyof QuizAnswers) => {
    const a = quizAnswers()[q];
    expect(isRight(q, a), `${q.toUpperCase()}: ${JSON.stringify(a)} (read as "${canonicalAnswer(a)}") is not the right answer`).toBe(true);
  };
  it("Q1: which tensors Q4_K_M keeps at higher precision", () => check("q1"));
  it("Q2: bits per weight of Q4_0", () => check("q2"));
  it("Q3: KV-cache bytes per token of Llama-2-7B", () => check("q3"));
  it("Q4: why 4-bit decodes faster", () => check("q4"));
  it("Q5: gigabytes of a 70B model at 4.5 bpw", () => check("q5"));
  it("Q6: why norms stay F32", () => check("q6"));
});
