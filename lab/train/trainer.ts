// The training loop: sample windows from a token stream, compute the mean next-token loss and its
// gradient on the worker pool, clip, AdamW, repeat; evaluate on held-out windows, checkpoint, and
// keep a loss curve. Deterministic: window offsets are a pure function of (seed, step), so a run
// resumed from a checkpoint continues exactly as if it had never stopped.
//
// Sections: settings · batches · checkpoints · the loop · the loss-curve CSV.
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { adamwStep, newAdamState, type AdamState, type OptimizerSettings } from "./optim.ts";
import { initParams, macsPerToken, paramLayout, seededRandom, type ModelShape } from "./model.ts";
import { GradientPool } from "./parallel.ts";

// ─── Settings ────────────────────────────────────────────────────────────────────────────────────

export interface TrainSettings {
  name: string; // file stem for checkpoint, CSV and GGUF: "target", "draft", "smoke"
  shape: ModelShape;
  batch: number; // sequences per step
  seqLen: number; // tokens per training window (positions 0..seqLen−1)
  steps: number;
  optimizer: Omit<OptimizerSettings, "totalSteps">;
  seed: number;
  evalEvery: number; // steps between validation evaluations
  evalWindows: number; // validation windows per evaluation
  checkpointEvery: number; // steps between checkpoints
  phase?: "chat" | "long"; // a phase after the short one: starts from the previous phase's weights (TrainOptions.init)
  windowStarts?: "document"; // windows begin at a document start (default: any token)
}

export interface TokenData {
  train: Int32Array; // [nTrainTokens] the training stream, documents separated by BOS
  valid: Int32Array; // [nValidTokens] held-out stream
  trainDocStarts?: Int32Array; // [nTrainDocs] offset of each training document (its BOS) in train
}

export interface HistoryRow {
  step: number; // steps completed
  tokens: number; // training tokens seen
  lr: number;
  trainLoss: number; // mean over the steps since the previous row
  validLoss: number | null; // null when not evaluated at this row
  gradNorm: number;
  seconds: number; // wall time of training so far (summed across resumed runs)
}

export interface TrainResult {
  settings: TrainSettings;
  params: Float32Array; // [nParams] f32, layout paramLayout(settings.shape)
  history: HistoryRow[];
  tokensSeen: number;
  seconds: number;
  finalValidLoss: number;
}

// ─── Batches ─────────────────────────────────────────────────────────────────────────────────────

/** The windows of step `step`: [batch][seqLen+1] tokens at offsets drawn from (seed, step). With
 *  windowStarts "document" a drawn offset moves back to the start of the document holding it, so
 *  documents are chosen in proportion to their length and each window opens with one whole. */
export function trainBatch(s: TrainSettings, data: Int32Array, step: number, docStarts?: Int32Array): Int32Array {
  const width = s.seqLen + 1, out = new Int32Array(s.batch * width);
  if (data.length < width) throw new RangeError(`training stream has ${data.length} tokens, fewer than one window of ${width}`);
  if (s.windowStarts === "document" && !docStarts?.length) throw new RangeError(`${s.name}: windows start at documents, but the stream has no document offsets`);
  const rand = seededRandom((s.seed * 1_000_003 + step * 7919) >>> 0);
  for (let b = 0; b < s.batch; b++) {
    let start = Math.floor(rand() * (data.length - width + 1));
    if (s.windowStarts === "document") start = docStarts![lastAtOrBefore(docStarts!, start)];
    out.set(data.subarray(start, start + width), b * width);
  }
  return out;
}

/** Index of the last entry of the sorted array `a` that is ≤ x (a[0] must be ≤ x). */
function lastAtOrBefore(a: Int32Array, x: number): number {
  let lo = 0, hi = a.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (a[mid] <= x) lo = mid; else hi = mid - 1;
  }
  return lo;
}

/** Evenly spaced, fixed validation windows. */
export function validWindows(s: TrainSettings, data: Int32Array, count: number): Int32Array {
  const width = s.seqLen + 1, n = Math.max(1, Math.min(count, Math.floor(data.length / width)));
  if (data.length < width) throw new RangeError(`validation stream has ${data.length} tokens, fewer than one window of ${width}`);
  const stride = Math.floor((data.length - width) / Math.max(1, n - 1)) || 0;
  const out = new Int32Array(n * width);
  for (let i = 0; i < n; i++) out.set(data.subarray(i * stride, i * stride + width), i * width);
  return out;
}

// ─── Checkpoints ─────────────────────────────────────────────────────────────────────────────────
// File: "LABCKPT1", u32 header bytes, JSON header, zero padding to 4, then params, Adam m, Adam v
// as little-endian f32. Written to a temp file and renamed, so a crash never leaves half a file.

interface CheckpointHeader {
  settings: TrainSettings;
  step: number;
  tokensSeen: number;
  seconds: number;
  history: HistoryRow[];
  nParams: number;
}

const MAGIC = "LABCKPT1";

export async function saveCheckpoint(path: string, header: CheckpointHeader, params: Float32Array, adam: AdamState): Promise<void> {
  const json = Buffer.from(JSON.stringify(header));
  const headLen = 8 + 4 + json.length, pad = (4 - (headLen % 4)) % 4;
  const buf = Buffer.alloc(headLen + pad + 12 * header.nParams);
  buf.write(MAGIC, 0, "latin1");
  buf.writeUInt32LE(json.length, 8);
  json.copy(buf, 12);
  let off = headLen + pad;
  for (const arr of [params, adam.m, adam.v]) {
    Buffer.from(arr.buffer, arr.byteOffset, arr.byteLength).copy(buf, off);
    off += arr.byteLength;
  }
  await writeFile(path + ".tmp", buf);
  await rename(path + ".tmp", path);
}

export async function loadCheckpoint(path: string): Promise<{ header: CheckpointHeader; params: Float32Array; adam: AdamState }> {
  const buf = await readFile(path);
  if (buf.length < 12 || buf.toString("latin1", 0, 8) !== MAGIC) throw new Error(`${path}: not a lab training checkpoint`);
  const jsonLen = buf.readUInt32LE(8), headLen = 12 + jsonLen, pad = (4 - (headLen % 4)) % 4;
  const header = JSON.parse(buf.toString("utf8", 12, headLen)) as CheckpointHeader;
  const n = header.nParams, start = headLen + pad;
  if (buf.length !== start + 12 * n) throw new Error(`${path}: truncated checkpoint (${buf.length} bytes, expected ${start + 12 * n})`);
  const floats = (i: number) => new Float32Array(buf.buffer.slice(buf.byteOffset + start + 4 * n * i, buf.byteOffset + start + 4 * n * (i + 1)));
  return { header, params: floats(0), adam: { m: floats(1), v: floats(2) } };
}

// ─── The loop ────────────────────────────────────────────────────────────────────────────────────

export interface TrainOptions {
  outDir: string; // the loss-curve CSV goes here
  checkpointDir?: string; // <name>.ckpt goes here (default outDir)
  resume?: boolean; // continue from the checkpoint when it exists and matches the settings
  workers?: number; // gradient threads; 0 = inline on this thread
  onProgress?: (p: Progress) => void;
  stopAfterSteps?: number; // stop (after checkpointing) once this many steps are done: for tests
  init?: Float32Array; // [nParams] starting weights instead of a fresh initialisation (the long phase)
}

export interface Progress {
  name: string;
  step: number;
  steps: number;
  trainLoss: number;
  validLoss: number | null;
  tokensPerSecond: number;
  etaSeconds: number;
}

export async function train(s: TrainSettings, data: TokenData, opts: TrainOptions): Promise<TrainResult> {
  await mkdir(opts.outDir, { recursive: true });
  await mkdir(opts.checkpointDir ?? opts.outDir, { recursive: true });
  const layout = paramLayout(s.shape);
  const ckptPath = join(opts.checkpointDir ?? opts.outDir, `${s.name}.ckpt`);
  const pool = await GradientPool.start(s.shape, layout.total, s.batch, s.seqLen, opts.workers ?? 2);
  try {
    let step = 0, tokensSeen = 0, secondsBefore = 0;
    let history: HistoryRow[] = [];
    let adam = newAdamState(layout.total);
    if (opts.resume && existsSync(ckptPath)) {
      const ck = await loadCheckpoint(ckptPath);
      if (JSON.stringify(ck.header.settings) !== JSON.stringify(s)) {
        throw new Error(`${ckptPath} was written with different settings; delete it or train without --resume`);
      }
      pool.params.set(ck.params);
      adam = ck.adam;
      ({ step, tokensSeen, history } = ck.header);
      secondsBefore = ck.header.seconds;
    } else if (opts.init) {
      if (opts.init.length !== layout.total) throw new RangeError(`${s.name}: starting weights have ${opts.init.length} values, the model ${layout.total}`);
      pool.params.set(opts.init);
    } else {
      if (s.phase) throw new Error(`${s.name}: the ${s.phase} phase continues from the previous phase's weights; pass them as init`);
      initParams(s.shape, layout, pool.params, s.seed);
    }
    const optimizer: OptimizerSettings = { ...s.optimizer, totalSteps: s.steps };
    const valid = validWindows(s, data.valid, s.evalWindows);
    const nValid = valid.length / (s.seqLen + 1);
    const evaluate = async () => {
      let lossSum = 0, count = 0;
      for (let i = 0; i < nValid; i += s.batch) {
        const n = Math.min(s.batch, nValid - i);
        const r = await pool.compute(valid.subarray(i * (s.seqLen + 1), (i + n) * (s.seqLen + 1)), n, s.seqLen, false);
        lossSum += r.lossSum;
        count += r.count;
      }
      return lossSum / count;
    };

    const started = performance.now();
    const seconds = () => secondsBefore + (performance.now() - started) / 1000;
    let lossAcc = 0, lossN = 0, lastNorm = 0, lastLr = 0;
    const stepsThisRun = opts.stopAfterSteps ?? Infinity;
    let done = 0;
    const save = () => saveCheckpoint(ckptPath, { settings: s, step, tokensSeen, seconds: seconds(), history, nParams: layout.total }, pool.params, adam);
    while (step < s.steps && done < stepsThisRun) {
      const batch = trainBatch(s, data.train, step, data.trainDocStarts);
      const r = await pool.compute(batch, s.batch, s.seqLen, true);
      const { lr, gradNorm } = adamwStep(optimizer, layout, pool.params, pool.grads, adam, step);
      step++;
      done++;
      tokensSeen += s.batch * s.seqLen;
      lossAcc += r.lossSum / r.count;
      lossN++;
      lastNorm = gradNorm;
      lastLr = lr;
      const evalNow = step % s.evalEvery === 0 || step === s.steps;
      if (evalNow || step % 10 === 0) {
        const validLoss = evalNow ? await evaluate() : null;
        history.push({ step, tokens: tokensSeen, lr: lastLr, trainLoss: lossAcc / lossN, validLoss, gradNorm: lastNorm, seconds: seconds() });
        lossAcc = 0;
        lossN = 0;
      }
      if (opts.onProgress) {
        const last = history.at(-1);
        const elapsed = (performance.now() - started) / 1000;
        const tps = (done * s.batch * s.seqLen) / Math.max(elapsed, 1e-9);
        opts.onProgress({
          name: s.name, step, steps: s.steps, trainLoss: last?.trainLoss ?? r.lossSum / r.count,
          validLoss: [...history].reverse().find((h) => h.validLoss !== null)?.validLoss ?? null,
          tokensPerSecond: tps, etaSeconds: ((s.steps - step) * s.batch * s.seqLen) / Math.max(tps, 1e-9),
        });
      }
      if (step % s.checkpointEvery === 0 || step === s.steps || done === stepsThisRun) {
        await save();
        await writeLossCsv(join(opts.outDir, `${s.name}-loss.csv`), history);
      }
    }
    const finalValidLoss = [...history].reverse().find((h) => h.validLoss !== null)?.validLoss ?? (await evaluate());
    // A resumed run with nothing left to do adds no time: its record is the checkpoint's.
    return { settings: s, params: Float32Array.from(pool.params), history, tokensSeen, seconds: done > 0 ? seconds() : secondsBefore, finalValidLoss };
  } finally {
    await pool.close();
  }
}

/** A finished (or interrupted) run as recorded in its checkpoint. */
export async function resultFromCheckpoint(path: string): Promise<TrainResult> {
  const { header, params } = await loadCheckpoint(path);
  const lastValid = [...header.history].reverse().find((h) => h.validLoss !== null)?.validLoss ?? NaN;
  return { settings: header.settings, params, history: header.history, tokensSeen: header.tokensSeen, seconds: header.seconds, finalValidLoss: lastValid };
}

/** A phase's record from its loss-curve CSV alone (steps, tokens, time, losses; no weights): what
 *  the model card needs of a finished phase whose checkpoint is gone, e.g. a short phase that ran
 *  in an earlier session and whose weights the long phase started from (`--init`). */
export async function resultFromLossCsv(path: string, settings: TrainSettings): Promise<TrainResult> {
  const rows = (await readFile(path, "utf8")).trim().split("\n");
  if (rows[0] !== LOSS_CSV_HEADER) throw new Error(`${path}: not a lab train loss curve`);
  const history: HistoryRow[] = rows.slice(1).map((line, i) => {
    const [step, tokens, lr, trainLoss, validLoss, gradNorm, seconds] = line.split(",");
    const row = { step: Number(step), tokens: Number(tokens), lr: Number(lr), trainLoss: Number(trainLoss),
      validLoss: validLoss === "" ? null : Number(validLoss), gradNorm: Number(gradNorm), seconds: Number(seconds) };
    if (![row.step, row.tokens, row.lr, row.trainLoss, row.gradNorm, row.seconds].every(Number.isFinite)) throw new Error(`${path}:${i + 2}: not a loss-curve row`);
    return row;
  });
  const last = history.at(-1);
  if (!last || last.step !== settings.steps) throw new Error(`${path}: ${last?.step ?? 0} of ${settings.steps} steps recorded; the phase did not finish`);
  const lastValid = [...history].reverse().find((h) => h.validLoss !== null)?.validLoss ?? NaN;
  return { settings, params: new Float32Array(0), history, tokensSeen: last.tokens, seconds: last.seconds, finalValidLoss: lastValid };
}

/** Forward-only mean loss of params on windows of a stream (used by tests and the model card). */
export async function meanLoss(s: TrainSettings, params: Float32Array, stream: Int32Array, windows: number, workers = 0): Promise<number> {
  const layout = paramLayout(s.shape);
  const pool = await GradientPool.start(s.shape, layout.total, s.batch, s.seqLen, workers);
  try {
    pool.params.set(params);
    const w = validWindows(s, stream, windows), n = w.length / (s.seqLen + 1);
    let lossSum = 0, count = 0;
    for (let i = 0; i < n; i += s.batch) {
      const k = Math.min(s.batch, n - i);
      const r = await pool.compute(w.subarray(i * (s.seqLen + 1), (i + k) * (s.seqLen + 1)), k, s.seqLen, false);
      lossSum += r.lossSum;
      count += r.count;
    }
    return lossSum / count;
  } finally {
    await pool.close();
  }
}

/** Training cost in multiply-adds: 3× the forward (forward + two backward products). */
export function trainingMacs(s: TrainSettings): number {
  return 3 * macsPerToken(s.shape, s.seqLen) * s.batch * s.seqLen * s.steps;
}

/** The loss-curve CSV's columns: what writeLossCsv writes and resultFromLossCsv reads back. */
export const LOSS_CSV_HEADER = "step,tokens,lr,train_loss,valid_loss,grad_norm,seconds";

// ─── The loss-curve CSV ──────────────────────────────────────────────────────────────────────────

export async function writeLossCsv(path: string, history: HistoryRow[]): Promise<void> {
  const lines = [LOSS_CSV_HEADER];
  for (const h of history) {
    lines.push([h.step, h.tokens, h.lr.toExponential(4), h.trainLoss.toFixed(5), h.validLoss === null ? "" : h.validLoss.toFixed(5),
      h.gradNorm.toFixed(4), h.seconds.toFixed(2)].join(","));
  }
  await writeFile(path + ".tmp", lines.join("\n") + "\n");
  await rename(path + ".tmp", path);
}
