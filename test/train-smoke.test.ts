// End to end: `lab train --config smoke` learns (loss falls), its GGUF runs in llama.cpp with the
// same next-token log-probabilities as the trainer's forward pass, and an interrupted run resumed
// from its checkpoint ends bit-identical to an uninterrupted one.
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadCorpus, loadTokenizer } from "../lab/data/index.ts";
import { longContextSettings, trainSettings } from "../lab/train/configs.ts";
import { importGguf } from "../lab/train/export.ts";
import { seededRandom } from "../lab/train/model.ts";
import { loadCheckpoint, resultFromLossCsv, train, trainBatch, writeLossCsv, type TrainSettings } from "../lab/train/trainer.ts";
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
    // All three phases ran: 128… here 32-token windows, the chat phase on the same windows with
    // dialog added, then the context-extension phase on 256.
    expect(summary.models[0].phases.map((p: { name: string; seqLen: number; steps: number }) => [p.name, p.seqLen, p.steps]))
      .toEqual([["smoke", 32, 60], ["smoke-chat", 32, 10], ["smoke-long", 256, 10]]);
    expect(readFileSync(join(out, "smoke-chat-loss.csv"), "utf8").split("\n")[0]).toBe("step,tokens,lr,train_loss,valid_loss,grad_norm,seconds");
    expect(readFileSync(join(out, "smoke-long-loss.csv"), "utf8").split("\n")[0]).toBe("step,tokens,lr,train_loss,valid_loss,grad_norm,seconds");

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
    expect(shape.nCtxTrain).toBe(256); // declares the context it was trained to
    // Past the short window: the llama.cpp agreement holds at positions 200+ of a 256-token window.
    const long = await compareWithLlamaCpp(join(out, "smoke.gguf"), shape, params, tokenizer.encode(loadCorpus("chat", "val")[0], { bos: true }).slice(0, 256));
    expect(long.maxAbsDiff).toBeLessThanOrEqual(1e-4);
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

describe("the context-extension phase", () => {
  it("--resume skips a finished short phase and starts the later phases from its weights; --phase long needs the chat phase", () => {
    const out = join(dir, "phases");
    const run = (...extra: string[]) => JSON.parse(execFileSync(process.execPath,
      ["lab/cli/bin.mjs", "train", "--config", "smoke", "--out", out, "--json", ...extra],
      { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 120_000 }));
    const short = run("--phase", "short");
    expect(short.models[0].phases.map((p: { name: string }) => p.name)).toEqual(["smoke"]);
    const ckpt = join(out, "checkpoints", "smoke.ckpt"), before = readFileSync(ckpt);
    // The long phase starts from the chat phase's weights: without its checkpoint (or --init) it is refused.
    expect(() => execFileSync(process.execPath, ["lab/cli/bin.mjs", "train", "--config", "smoke", "--out", out, "--phase", "long"],
      { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 60_000 })).toThrow(/smoke-chat\.ckpt or --init/);
    const all = run("--resume");
    const [again, chat, long] = all.models[0].phases;
    // Not retrained: read from its checkpoint, which is left as it was.
    expect(readFileSync(ckpt).equals(before)).toBe(true);
    expect(again).toMatchObject({ name: "smoke", steps: 60, tokensSeen: short.models[0].phases[0].tokensSeen });
    expect(chat).toMatchObject({ name: "smoke-chat", seqLen: 32, steps: 10 });
    expect(long).toMatchObject({ name: "smoke-long", seqLen: 256, steps: 10 });
    expect(long.finalValidLoss).toBeLessThan(short.models[0].phases[0].finalValidLoss + 1);
  });

  it("a finished phase's record reads back from its loss CSV; an unfinished one is refused", async () => {
    const s: TrainSettings = { ...trainSettings("smoke", 64), steps: 20 };
    const history = [10, 20].map((step) => ({ step, tokens: step * 256, lr: 1e-3, trainLoss: 3 - step / 10, validLoss: step === 20 ? 2.5 : null, gradNorm: 0.5, seconds: step / 2 }));
    const csv = join(dir, "record-loss.csv");
    await writeLossCsv(csv, history);
    const r = await resultFromLossCsv(csv, s);
    expect(r).toMatchObject({ tokensSeen: 5120, seconds: 10, finalValidLoss: 2.5 });
    expect(r.history).toEqual(history);
    await expect(resultFromLossCsv(csv, { ...s, steps: 30 })).rejects.toThrow(/20 of 30 steps/);
  });

  it("--card-only without checkpoints reads the committed files, and refuses a GGUF of another config's shape", () => {
    // data/models keeps each phase's loss CSV and the final F32 GGUF, no checkpoints. With the draft's
    // GGUF in the target's place, the draft's phases load (weights from draft.gguf) and the target's
    // last phase is refused for its shape before any evaluation starts.
    const out = mkdtempSync(join(dir, "card-only-"));
    for (const name of ["draft", "target"]) for (const phase of ["", "-chat", "-long"]) {
      copyFileSync(join("data", "models", `${name}${phase}-loss.csv`), join(out, `${name}${phase}-loss.csv`));
    }
    copyFileSync(join("data", "models", "draft.gguf"), join(out, "draft.gguf"));
    copyFileSync(join("data", "models", "draft.gguf"), join(out, "target.gguf"));
    let code = 0, stderr = "";
    try {
      execFileSync(process.execPath, ["lab/cli/bin.mjs", "train", "--card-only", "--out", out], { stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" });
    } catch (err) {
      code = (err as { status: number }).status;
      stderr = String((err as { stderr: string }).stderr);
    }
    expect(stderr).toMatch(/draft-long: no checkpoint; its record is read from .*draft-long-loss\.csv, its weights from .*draft\.gguf/);
    expect(stderr).toMatch(/target\.gguf is not the target config's shape \(nEmbd 64, config 256; nFf 192, config 512;/);
    expect(code).toBe(2);
  }, 120_000);

  it("windows open at a document start, drawn in proportion to document length", () => {
    const s: TrainSettings = { ...longContextSettings("smoke", 64), batch: 400, seqLen: 8, seed: 5 };
    // Documents of lengths 10, 30 and 60 (BOS = 1, then the document's index + 2), repeated.
    const docs: number[][] = [];
    for (let r = 0; r < 20; r++) for (const [k, len] of [[0, 10], [1, 30], [2, 60]]) docs.push([1, ...Array(len - 1).fill(k + 2)]);
    const train = Int32Array.from(docs.flat());
    const starts = Int32Array.from(docs.map((_, i) => docs.slice(0, i).reduce((n, d) => n + d.length, 0)));
    const counts = [0, 0, 0];
    for (let step = 0; step < 5; step++) {
      const w = trainBatch(s, train, step, starts);
      for (let b = 0; b < s.batch; b++) {
        expect(w[b * (s.seqLen + 1)]).toBe(1);
        counts[w[b * (s.seqLen + 1) + 1] - 2]++;
      }
    }
    // Chi-square against lengths 10 : 30 : 60 (2 degrees of freedom; 13.8 is p = 0.001). The last
    // document cannot start a window it does not fill, which is within this tolerance.
    const n = counts.reduce((a, b) => a + b, 0), expected = [0.1, 0.3, 0.6].map((p) => p * n);
    const chi2 = counts.reduce((x, c, i) => x + (c - expected[i]) ** 2 / expected[i], 0);
    expect(chi2).toBeLessThan(13.8);
    // Uniform over documents instead (the wrong rule) would be far off.
    const uniform = counts.reduce((x, c) => x + (c - n / 3) ** 2 / (n / 3), 0);
    expect(uniform).toBeGreaterThan(100);
    expect(() => trainBatch(s, train, 0)).toThrow(/no document offsets/);
  });

  it("refuses to start the long phase from fresh weights", async () => {
    const s: TrainSettings = { ...longContextSettings("smoke", 64), batch: 2, seqLen: 16, steps: 1 };
    const data = { train: Int32Array.from({ length: 400 }, (_, i) => (i % 20 === 0 ? 1 : 5)), valid: Int32Array.from({ length: 100 }, () => 5) };
    await expect(train(s, { ...data, trainDocStarts: Int32Array.from({ length: 20 }, (_, i) => 20 * i) }, { outDir: join(dir, "nolong"), workers: 0 }))
      .rejects.toThrow(/long phase continues from the previous phase's weights/);
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
