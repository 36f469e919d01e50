// End to end: `lab train --config smoke` learns (loss falls), its GGUF runs in llama.cpp with the
// same next-token log-probabilities as the trainer's forward pass, and an interrupted run resumed
// from its checkpoint ends bit-identical to an uninterrupted one.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadTokenizer } from "../lab/data/index.ts";
import { trainSettings } from "../lab/train/configs.ts";
import { importGguf } from "../lab/train/export.ts";
import { seededRandom } from "../lab/train/model.ts";
import { loadCheckpoint, train, type TrainSettings } from "../lab/train/trainer.ts";
import { compareWithLlamaCpp } from "../lab/train/verify.ts";

const dir = mkdtempSync(join(tmpdir(), "train-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("lab train --config smoke", () => {
  it("trains, exports a GGUF llama.cpp agrees with to 1e-4 in log-probability", async () => {
    const out = join(dir, "smoke");
    const stdout = execFileSync(process.execPath, ["lab/cli/bin.mjs", "train", "--config", "smoke", "--out", out, "--json"],
      { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 120_000 });
    const summary = JSON.parse(stdout);
    expect(summary.models).toHaveLength(1);
    expect(summary.models[0].llamaCppMaxAbsDiff).toBeLessThanOrEqual(1e-4);

    // The loss curve falls: the last train loss is well under the first logged one and under a
    // uniform guess (ln vocab).
    const rows = readFileSync(join(out, "smoke-loss.csv"), "utf8").trim().split("\n").slice(1).map((l) => l.split(","));
    const first = Number(rows[0][3]), last = Number(rows.at(-1)![3]), valid = Number(rows.at(-1)![4]);
    const tokenizer = loadTokenizer();
    expect(last).toBeLessThan(first - 1);
    expect(valid).toBeLessThan(Math.log(tokenizer.vocabSize) - 1.5);

    // Independently of the CLI's own check: read the GGUF back and compare on fresh text.
    const { shape, params } = await importGguf(join(out, "smoke.gguf"));
    const expected = trainSettings("smoke", tokenizer.vocabSize).shape;
    expect(shape).toEqual({ ...expected, rmsEps: Math.fround(expected.rmsEps) }); // GGUF stores f32
    const tokens = tokenizer.encode("Q: What pet does Mira have? A: cat\nCode: x = 3; print(x + 4) Output: 7", { bos: true });
    const cmp = await compareWithLlamaCpp(join(out, "smoke.gguf"), shape, params, tokens);
    expect(cmp.maxAbsDiff).toBeLessThanOrEqual(1e-4);
    expect(cmp.positionsOverTolerance).toBe(0);
    expect(cmp.argmaxAgreement).toBe(1);
    // Both float32 forwards sit within float32 rounding of a float64 forward of the same weights.
    expect(cmp.float64Reference.ours).toBeLessThan(1e-4);
    expect(cmp.float64Reference.llamaCpp).toBeLessThan(1e-4);
  });
});

describe("checkpoints", () => {
  it("a run stopped and resumed ends bit-identical to an uninterrupted one", async () => {
    const rand = seededRandom(4);
    const base = trainSettings("smoke", 64);
    const s: TrainSettings = { ...base, name: "resume", batch: 4, seqLen: 16, steps: 12, evalEvery: 6, evalWindows: 4, checkpointEvery: 4 };
    const data = {
      train: Int32Array.from({ length: 4000 }, (_, i) => (i % 7 === 0 ? 1 : Math.floor(rand() * 64))),
      valid: Int32Array.from({ length: 400 }, () => Math.floor(rand() * 64)),
    };
    const straight = await train(s, data, { outDir: join(dir, "a"), workers: 2 });
    const partial = await train(s, data, { outDir: join(dir, "b"), workers: 2, stopAfterSteps: 5 });
    expect(partial.tokensSeen).toBe(5 * s.batch * s.seqLen);
    const ck = await loadCheckpoint(join(dir, "b", "resume.ckpt"));
    expect(ck.header.step).toBe(5);
    const resumed = await train(s, data, { outDir: join(dir, "b"), workers: 2, resume: true });
    expect(resumed.tokensSeen).toBe(straight.tokensSeen);
    expect(Buffer.from(resumed.params.buffer).equals(Buffer.from(straight.params.buffer))).toBe(true);
    expect(resumed.finalValidLoss).toBe(straight.finalValidLoss);
    // Resuming with different settings is refused rather than silently mixing runs.
    await expect(train({ ...s, seed: 99 }, data, { outDir: join(dir, "b"), workers: 0, resume: true })).rejects.toThrow(/different settings/);
  });
});
