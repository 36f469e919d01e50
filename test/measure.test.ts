// The measurement harness: statistics, KL and perplexity on distributions whose answers are known,
// task accuracy on a scripted engine, latency on a real engine, and the eval/bench/generate commands.
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { EngineError, type DecodeStep, type Engine, type MemoryReport, type Sequence, type StepItem, type StepResult } from "../lab/engine/engine.ts";
import { quantile, median, mean } from "../lab/measure/stats.ts";
import { compareDistributions, klDivergence, lossByPosition, perplexity, SHARED_PREFIX_MIN_TOKENS, taskAccuracy, taskResults, klAgainst } from "../lab/measure/quality.ts";
import { BATCH_MODES, engineHasMode, measureBatchSweep, measureLatency, measurePrefillSweep, timeBatchedSteps } from "../lab/measure/latency.ts";
import { openEngine } from "../lab/engine/engine.ts";
import { main } from "../lab/cli/main.ts";
import { tempDir, writeSyntheticVariant } from "./engine-fixtures.ts";

// ---------------------------------------------------------------------------------------------
// A scripted engine over the characters "abcdefg\n": after character c it puts probability `sure`
// on the next character of the cycle a→b→…→g→\n→a and spreads the rest evenly.

const CHARS = "abcdefg\n";

class ScriptedEngine implements Engine {
  readonly name = "lab" as const;
  readonly path = "scripted";
  readonly hparams = { nVocab: CHARS.length + 1, nCtxTrain: 64, nEmbd: 1, nFf: 1, nHead: 1, nKvHead: 1, nLayer: 1, headDim: 2, rmsEps: 1e-5, ropeFreqBase: 1e4 };
  readonly contextSize = 64;
  readonly maxSequences = 4;
  readonly threads = 1;
  readonly tokenizer = {
    vocabSize: CHARS.length + 1, bosId: CHARS.length, eosId: -1,
    encode: (text: string, opts: { bos?: boolean } = {}) => [...(opts.bos === false ? [] : [CHARS.length]), ...[...text].map((c) => CHARS.indexOf(c))],
    decode: (ids: number[]) => ids.map((i) => CHARS[i] ?? "").join(""),
  };
  constructor(private readonly sure: number) {}

  row(last: number): Float32Array {
    const v = this.hparams.nVocab;
    const next = last === CHARS.length ? 0 : (last + 1) % CHARS.length;
    const rest = (1 - this.sure) / (v - 1);
    return Float32Array.from({ length: v }, (_, i) => Math.log(i === next ? this.sure : rest));
  }

  async createSequence(): Promise<Sequence> {
    const engine = this;
    const tokens: number[] = [];
    const evaluate = async (ids: number[], opts: { all?: boolean } = {}) => {
      if (ids.length === 0) throw new EngineError("empty prompt");
      tokens.push(...ids);
      const rows = ids.map((t) => engine.row(t));
      return opts.all ? rows : [rows[rows.length - 1]];
    };
    return {
      id: 0, tokens, get length() { return tokens.length; },
      evaluate,
      async prefill(ids: number[]) { return (await evaluate(ids))[0]; },
      async truncate(n: number) { tokens.length = n; },
      async fork() { throw new Error("not needed"); },
      async free() {},
    };
  }

  async step(items: StepItem[]): Promise<StepResult[]> {
    return Promise.all(items.map(async (item) => {
      const rows = await item.sequence.evaluate(item.tokens, { all: item.output === "all" });
      return { logprobs: item.output === "none" ? [] : rows, token: item.sample?.sample(rows[rows.length - 1]) };
    }));
  }

  async decode(steps: DecodeStep[]): Promise<Float32Array[]> {
    return Promise.all(steps.map(async (s) => (await s.sequence.evaluate([s.token]))[0]));
  }

  memory(): MemoryReport {
    const kv = { blockSize: 1, blocksTotal: 0, blocksUsed: 0, blocksShared: 0, blocksFree: 0, bytesPerBlock: 0 };
    return { fileBytes: 0, tensorBytes: 0, weightBytes: 0, bitsPerWeight: 0, kvBytesPerToken: 0, kvBytesPerTokenFormula: 0, kvBytesInUse: 0, kvBytesAllocated: 0, kv, rssBytes: 0, peakRssBytes: 0 };
  }

  async dispose() {}
}

describe("statistics", () => {
  it("median, quantiles (linear interpolation) and mean", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
    expect(quantile([0, 10], 0.9)).toBeCloseTo(9);
    expect(quantile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 0.99)).toBeCloseTo(10.9);
    expect(mean([1, 2, 3, 6])).toBe(3);
    expect(Number.isNaN(median([]))).toBe(true);
  });
});

describe("quality", () => {
  it("KL divergence of known distributions, zero for identical ones", () => {
    const p = Float32Array.from([0.5, 0.5], Math.log);
    const q = Float32Array.from([0.9, 0.1], Math.log);
    expect(klDivergence(p, q)).toBeCloseTo(0.5 * Math.log(0.5 / 0.9) + 0.5 * Math.log(0.5 / 0.1), 6);
    expect(klDivergence(p, p)).toBe(0);
    const flipped = Float32Array.from([0.2, 0.8], Math.log);
    const r = compareDistributions([flipped, p, q], [p, p, q]);
    expect(r.top1).toBeCloseTo(2 / 3);
    expect(r.kl.max).toBeCloseTo(klDivergence(p, flipped), 6);
    expect(r.kl.median).toBe(0);
    expect(r.positions).toBe(3);
  });

  it("perplexity: a uniform model scores exactly the vocabulary size; a sure model scores ~1/sure", async () => {
    const uniform = new ScriptedEngine(1 / 9);
    expect((await perplexity(uniform, ["abcab", "gfe\nab"])).perplexity).toBeCloseTo(9, 4);
    const sure = new ScriptedEngine(0.99);
    const r = await perplexity(sure, ["abcdefg\nabc"]);
    expect(r.perplexity).toBeCloseTo(1 / 0.99, 4);
    expect(r.tokens).toBe(11);
  });

  it("KL against a reference and the same-top-1 rate", async () => {
    const r = await klAgainst(new ScriptedEngine(0.9), new ScriptedEngine(0.5), ["abcde"]);
    expect(r.top1).toBe(1);
    const expected = klDivergence(new ScriptedEngine(0.5).row(0), new ScriptedEngine(0.9).row(0));
    expect(r.kl.mean).toBeCloseTo(expected, 6);
    expect(r.positions).toBe(5);
  });

  it("exact-match task accuracy with greedy decoding, cut at the newline", async () => {
    const e = new ScriptedEngine(0.9);
    const acc = await taskAccuracy(e, [
      { prompt: "ab", answer: "cdefg" }, // continues c d e f g \n → exact
      { prompt: "de", answer: "fg" }, // f g \n → exact
      { prompt: "ab", answer: "cd" }, // continues past the answer (cdefg) → wrong
      { prompt: "ab", answer: "xyz" }, // wrong
    ]);
    expect(acc).toEqual({ accuracy: 0.5, correct: 2, total: 4 });
  });
});

// ---------------------------------------------------------------------------------------------
// Latency and the commands, on the synthetic model

const tmp = tempDir("measure-test-");
let model = "";

beforeAll(async () => {
  model = await writeSyntheticVariant(join(tmp.dir, "model.gguf"), "Q8_0");
  const evalDir = join(tmp.dir, "eval");
  mkdirSync(evalDir);
  writeFileSync(join(evalDir, "prose.jsonl"), ['{"text":"the cat sat on the mat"}', '{"text":"once upon a time"}'].join("\n") + "\n");
  writeFileSync(join(evalDir, "arithmetic.jsonl"), '{"prompt":"12 + 30 = ","answer":"42"}\n');
});

afterAll(() => tmp.cleanup());

async function runCli(args: string[]): Promise<{ code: number; stdout: string }> {
  let stdout = "";
  const out = vi.spyOn(process.stdout, "write").mockImplementation((chunk) => { stdout += String(chunk); return true; });
  const err = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
  try {
    const code = await main(args);
    return { code, stdout };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

describe("task sets sharing a prompt prefix, and loss by position (LabEngine, synthetic model)", () => {
  it("forking a shared prefix gives every item exactly what it gets prefilled alone", async () => {
    const shared = await openEngine("lab", model, { maxSequences: 2 }), alone = await openEngine("lab", model, { maxSequences: 1 });
    try {
      const tok = shared.tokenizer;
      // A long common opening (well over SHARED_PREFIX_MIN_TOKENS), then different questions; one
      // item is the opening itself plus one character, so the split must leave it a token to evaluate.
      const opening = Array.from({ length: 40 }, (_, i) => `word${i % 7} and`).join(" ");
      const items = ["What is it?", "Tell me more", "x", "Another question here"].map((q, i) => ({ prompt: `${opening} ${q}`, answer: `a${i}` }));
      expect(commonPrefix(items.map((it) => tok.encode(it.prompt, { bos: true })))).toBeGreaterThanOrEqual(SHARED_PREFIX_MIN_TOKENS);
      const a = await taskResults(shared, items), b = await taskResults(alone, items);
      expect(a.said).toEqual(b.said);
      expect(a.said.some((t) => t.length > 0)).toBe(true);
      expect(shared.memory().kv?.blocksUsed ?? 0).toBe(0); // every fork and the prefix freed
    } finally {
      await shared.dispose();
      await alone.dispose();
    }
  });

  it("lossByPosition buckets each window's per-position loss exactly as scoring the windows one by one", async () => {
    const e = await openEngine("lab", model, { maxSequences: 1 });
    try {
      const stream = Array.from({ length: 200 }, (_, i) => 3 + ((i * 37) % 50));
      const r = await lossByPosition(e, stream, { windows: 3, edges: [0, 8, 16, 24] });
      expect(r.edges).toEqual([0, 8, 16, 24]);
      expect(r.tokens).toEqual([24, 24, 24]);
      const sums = [0, 0, 0], stride = Math.floor((200 - 25) / 2);
      for (let w = 0; w < 3; w++) {
        const ids = stream.slice(w * stride, w * stride + 25);
        const seq = await e.createSequence();
        const rows = await seq.evaluate(ids.slice(0, -1), { all: true });
        await seq.free();
        rows.forEach((row, t) => { sums[Math.floor(t / 8)] -= row[ids[t + 1]]; });
      }
      r.loss.forEach((l, k) => expect(l).toBeCloseTo(sums[k] / 24, 5));
      // Edges past the context are cut to it.
      const long = Array.from({ length: e.contextSize + 1 }, (_, i) => 3 + ((i * 11) % 50));
      expect((await lossByPosition(e, long, { windows: 1, edges: [0, 8, 1 << 20] })).edges).toEqual([0, 8, e.contextSize]);
      await expect(lossByPosition(e, stream, { windows: 1, edges: [0, 1 << 20] })).rejects.toThrow(/fewer than one window/);
    } finally {
      await e.dispose();
    }
  });
});

function commonPrefix(prompts: number[][]): number {
  let n = 0;
  while (prompts.every((p) => p[n] === prompts[0][n] && n < p.length)) n++;
  return n;
}

describe("latency and memory", () => {
  it("measures both engines side by side with consistent figures", async () => {
    const engines = [await openEngine("lab", model, { contextSize: 64 }), await openEngine("llama", model, { contextSize: 64 })];
    try {
      const prompt = engines[0].tokenizer.encode("the cat sat on the mat and the dog");
      const [lab, llama] = await measureLatency(engines, { prompt, decodeTokens: 8, repeats: 3, warmup: 1 });
      for (const r of [lab, llama]) {
        expect(r.promptTokens).toBe(prompt.length);
        expect(r.decodeTokens).toBe(8);
        expect(r.prefillTokensPerSecond).toBeGreaterThan(0);
        expect(r.ttftMs).toBeGreaterThan(0);
        expect(r.spread.ttftMs.p90).toBeGreaterThanOrEqual(r.spread.ttftMs.median);
        expect(r.kvBytesPerToken).toBe(r.kvBytesPerTokenFormula);
        expect(r.peakRssBytes).toBeGreaterThan(r.weightBytes);
      }
      expect(lab.engine).toBe("lab");
      expect(llama.engine).toBe("llama");
      // Q8_0 keeps 34 bytes per 32 weights resident: within 10% of the file's tensor bytes.
      expect(lab.weightBytes).toBeLessThanOrEqual(1.1 * lab.tensorBytes);
      expect(lab.bitsPerWeight).toBeLessThan(9);
    } finally {
      for (const e of engines) await e.dispose();
    }
  });
});

describe("batched steps and prefill sweeps", () => {
  it("timeBatchedSteps: one prefill step, then `steps` one-token steps over n sequences feeding each sampled token back", async () => {
    for (const mode of BATCH_MODES.filter((m) => engineHasMode(new ScriptedEngine(0.9), m))) {
      const engine = new ScriptedEngine(0.9);
      const calls: StepItem[][] = [];
      const step = engine.step.bind(engine);
      engine.step = async (items) => {
        calls.push(items.map((i) => ({ ...i, tokens: [...i.tokens] })));
        return step(items);
      };
      const prompt = engine.tokenizer.encode("abc");
      const point = await timeBatchedSteps(engine, prompt, 3, 5, mode);
      expect(calls).toHaveLength(6);
      expect(calls[0].map((i) => i.tokens)).toEqual([prompt, prompt, prompt]);
      expect(calls[0].every((i) => i.output === "none" && i.sample?.greedy === true)).toBe(true);
      // The scripted model continues the cycle a→b→…: after "abc" come d, e, f, g, \n.
      for (let k = 1; k <= 5; k++) {
        expect(calls[k].map((i) => i.tokens), `${mode} step ${k}`).toEqual([0, 1, 2].map(() => [CHARS.indexOf("defg\n"[k - 1])]));
        for (const i of calls[k]) {
          if (mode === "native") expect([i.output, i.sample?.greedy]).toEqual(["none", true]);
          else expect([i.output, i.sample]).toEqual(["last", undefined]);
        }
      }
      expect(point.n).toBe(3);
      expect(point.mode).toBe(mode);
      expect(point.tokensPerSecond).toBeCloseTo((1000 * 3) / point.tpotMs, 6);
    }
    await expect(timeBatchedSteps(new ScriptedEngine(0.9), [8, 0], 1, 63, "native")).rejects.toThrow(/do not fit/);
    await expect(timeBatchedSteps(new ScriptedEngine(0.9), [8, 0], 1, 3, "loop")).rejects.toThrow(/llama engine only/);
  });

  it("measureBatchSweep and measurePrefillSweep on both engines: every (n, mode) and prompt length, sequences freed", async () => {
    const engines = [await openEngine("lab", model, { contextSize: 64 }), await openEngine("llama", model, { contextSize: 64 })];
    try {
      const prompt = engines[0].tokenizer.encode("the cat sat on the mat");
      const sweeps = await measureBatchSweep(engines, { prompt, sizes: [1, 2], steps: 3, repeats: 1, warmup: 0 });
      expect(sweeps[0].map((p) => [p.n, p.mode])).toEqual([[1, "native"], [1, "distributions"], [2, "native"], [2, "distributions"]]);
      expect(sweeps[1].map((p) => [p.n, p.mode])).toEqual([[1, "native"], [1, "distributions"], [1, "loop"], [2, "native"], [2, "distributions"], [2, "loop"]]);
      for (const points of sweeps) {
        for (const p of points) {
          expect(p.tokensPerSecond).toBeGreaterThan(0);
          expect(p.tokensPerSecond).toBeCloseTo((1000 * p.n) / p.tpotMs, 6); // one repeat: both from the same run
        }
      }
      const prompts = [prompt.slice(0, 4), prompt];
      const prefill = await measurePrefillSweep(engines, prompts, 2, 0);
      for (const points of prefill) {
        expect(points.map((p) => p.promptTokens)).toEqual([4, prompt.length]);
        for (const p of points) expect(p.tokensPerSecond).toBeCloseTo((1000 * p.promptTokens) / p.ttftMs, 6);
      }
      for (const e of engines) expect(e.memory().kv.blocksUsed).toBe(0);
    } finally {
      for (const e of engines) await e.dispose();
    }
  });
});

describe("commands", () => {
  it("lab bench --engine both --json reports each engine and the lab/llama ratio", async () => {
    const { code, stdout } = await runCli(["bench", model, "--engine", "both", "--json", "--prompt-tokens", "16", "--decode-tokens", "4", "--repeats", "2", "--warmup", "0", "--batch", "2"]);
    expect(code).toBe(0);
    const r = JSON.parse(stdout);
    for (const name of ["lab", "llama"]) {
      for (const key of ["prefillTokensPerSecond", "decodeTokensPerSecond", "ttftMs", "tpotMs", "weightBytes", "kvBytesPerToken", "peakRssBytes", "batchedDecodeTokensPerSecond"]) {
        expect(r.engines[name][key]).toBeGreaterThan(0);
      }
    }
    expect(r.ratio.decodeTokensPerSecond).toBeCloseTo(r.engines.lab.decodeTokensPerSecond / r.engines.llama.decodeTokensPerSecond, 9);
  });

  it("lab bench --batch 1,2 --json: per engine both modes at each N, prefill at each length, and lab/llama ratios per point", async () => {
    const { code, stdout } = await runCli(["bench", model, "--engine", "both", "--json", "--prompt-tokens", "16", "--decode-tokens", "4",
      "--repeats", "1", "--warmup", "0", "--batch", "1,2", "--prefill-lengths", "8,24"]);
    expect(code).toBe(0);
    const r = JSON.parse(stdout);
    expect(r.batch).toEqual([1, 2]);
    type Point = { n: number; mode: string; tokensPerSecond: number; tpotMs: number };
    const find = (points: Point[], n: number, mode: string) => points.find((p) => p.n === n && p.mode === mode)!;
    for (const name of ["lab", "llama"]) {
      const e = r.engines[name];
      expect(e.batch.map((p: Point) => [p.n, p.mode])).toEqual(name === "lab"
        ? [[1, "native"], [1, "distributions"], [2, "native"], [2, "distributions"]]
        : [[1, "native"], [1, "distributions"], [1, "loop"], [2, "native"], [2, "distributions"], [2, "loop"]]);
      for (const p of e.batch) expect(p.tokensPerSecond).toBeCloseTo((1000 * p.n) / p.tpotMs, 6);
      expect(Object.keys(e.prefillTokensPerSecondAt).sort()).toEqual(["24", "8"]);
      // Today's figure, kept: the distributions point at the largest N.
      expect(e.batchedDecodeTokensPerSecond).toBe(find(e.batch, 2, "distributions").tokensPerSecond);
    }
    for (const p of r.ratio.batch) {
      expect(p.tokensPerSecond).toBeCloseTo(find(r.engines.lab.batch, p.n, p.mode).tokensPerSecond / find(r.engines.llama.batch, p.n, p.mode).tokensPerSecond, 9);
    }
    expect(r.ratio.nativeOverLoop.map((p: { n: number }) => p.n)).toEqual([1, 2]);
    for (const p of r.ratio.nativeOverLoop) {
      expect(p.tokensPerSecond).toBeCloseTo(find(r.engines.lab.batch, p.n, "native").tokensPerSecond / find(r.engines.llama.batch, p.n, "loop").tokensPerSecond, 9);
    }
    expect(r.ratio.prefillTokensPerSecondAt["24"]).toBeCloseTo(r.engines.lab.prefillTokensPerSecondAt["24"] / r.engines.llama.prefillTokensPerSecondAt["24"], 9);
    expect((await runCli(["bench", model, "--batch", "1,x"])).code).toBe(2);
    expect((await runCli(["bench", model, "--batch", "2,65"])).code).toBe(2);
  });

  it("lab eval --json: perplexity, KL against a reference, top-1, per-task accuracy", async () => {
    const { code, stdout } = await runCli(["eval", model, "--ref", model, "--eval-dir", join(tmp.dir, "eval"), "--json"]);
    expect(code).toBe(0);
    const r = JSON.parse(stdout);
    expect(r.perplexity).toBeGreaterThan(1);
    expect(r.kl.mean).toBe(0); // a model against itself
    expect(r.top1).toBe(1);
    expect(Object.keys(r.tasks)).toEqual(["arithmetic"]);
    expect(r.tasks.arithmetic).toBeGreaterThanOrEqual(0);
  });

  it.each(["lab", "llama"])("lab generate --engine %s --json: seeded sampling is reproducible", async (engine) => {
    const args = ["generate", model, "--prompt", "the cat", "-n", "8", "--temperature", "0.8", "--seed", "5", "--engine", engine, "--json"];
    const a = JSON.parse((await runCli(args)).stdout);
    const b = JSON.parse((await runCli(args)).stdout);
    expect(a.tokens).toEqual(b.tokens);
    expect(a.tokens.length).toBeGreaterThan(0);
    expect(a.engine).toBe(engine);
    expect(typeof a.text).toBe("string");
  });

  it("bad usage: empty prompt, unknown engine, invalid model file → exit codes 2, 2, 1", async () => {
    expect((await runCli(["generate", model, "--prompt", ""])).code).toBe(2);
    expect((await runCli(["bench", model, "--engine", "tgi"])).code).toBe(2);
    const bad = join(tmp.dir, "bad.gguf");
    writeFileSync(bad, "not a gguf");
    expect((await runCli(["generate", bad, "--prompt", "x"])).code).toBe(1);
    expect((await runCli(["eval", bad])).code).toBe(1);
  });
});
