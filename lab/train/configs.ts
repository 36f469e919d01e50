// The models `lab train` knows how to make, and the token streams they learn from.
//
//   target  ≥ 1M parameters; every matrix input dimension a multiple of 256 (so every ggml quant
//           format, k-quants included, applies); GQA; llama.context_length 2048, trained on 128.
//   draft   the same tokenizer at ≤ 1/8 of the target's multiply-adds per token, for speculative
//           decoding.
//   smoke   seconds of training on the same data: what CI runs end to end.
import { loadCorpus, TASKS, type Task } from "../data/index.ts";
import type { SpmTokenizer } from "../tokenizer.ts";
import { seededRandom, type ModelShape } from "./model.ts";
import type { TokenData, TrainSettings } from "./trainer.ts";

export const CONFIG_NAMES = ["smoke", "draft", "target"] as const;
export type ConfigName = (typeof CONFIG_NAMES)[number];

/** How many copies of each task's training documents go into the stream. Facts are memorised, so
 *  they are repeated; chat is mostly one long repeated system prompt, so it is thinned. Arithmetic
 *  is doubled (about half the stream): held-out sums need a column-addition circuit, which forms late,
 *  while facts and code reach their aims on far fewer tokens. */
export const DATA_MIX: Record<Task, number> = { prose: 1.5, arithmetic: 2, facts: 6, code: 1, chat: 0.5 };

const common = { nCtxTrain: 2048, rmsEps: 1e-5, ropeFreqBase: 10000 };
const optimizer = { beta1: 0.9, beta2: 0.98, eps: 1e-8, clipNorm: 1.0 };

export function trainSettings(name: ConfigName, nVocab: number): TrainSettings {
  switch (name) {
    case "smoke": {
      const shape: ModelShape = { ...common, nVocab, nEmbd: 64, nFf: 128, nHead: 2, nKvHead: 1, nLayer: 1, headDim: 32 };
      return {
        name, shape, batch: 8, seqLen: 32, steps: 60, seed: 1, evalEvery: 20, evalWindows: 16, checkpointEvery: 20,
        optimizer: { ...optimizer, lr: 1e-2, minLr: 1e-3, warmupSteps: 10, weightDecay: 0.01 },
      };
    }
    case "draft": {
      const shape: ModelShape = { ...common, nVocab, nEmbd: 64, nFf: 192, nHead: 2, nKvHead: 1, nLayer: 2, headDim: 32 };
      return {
        name, shape, batch: 8, seqLen: 128, steps: 1000, seed: 2, evalEvery: 200, evalWindows: 48, checkpointEvery: 50,
        optimizer: { ...optimizer, lr: 8e-3, minLr: 8e-4, warmupSteps: 80, weightDecay: 0.01 },
      };
    }
    case "target": {
      const shape: ModelShape = { ...common, nVocab, nEmbd: 256, nFf: 512, nHead: 4, nKvHead: 2, nLayer: 2, headDim: 64 };
      return {
        name, shape, batch: 8, seqLen: 128, steps: 9000, seed: 3, evalEvery: 200, evalWindows: 48, checkpointEvery: 50,
        optimizer: { ...optimizer, lr: 4e-3, minLr: 4e-4, warmupSteps: 100, weightDecay: 0.01 },
      };
    }
  }
}

/** Training and validation token streams: every document encoded with a leading BOS, training
 *  documents repeated per DATA_MIX and shuffled (seeded), validation documents once, in order. */
export function tokenStreams(tokenizer: SpmTokenizer, opts: { seed?: number; mix?: Record<Task, number>; dataDir?: string } = {}): TokenData {
  const mix = opts.mix ?? DATA_MIX, rand = seededRandom(opts.seed ?? 12345);
  const trainDocs: number[][] = [], validDocs: number[][] = [];
  for (const task of TASKS) {
    const docs = loadCorpus(task, "train", opts.dataDir).map((d) => tokenizer.encode(d, { bos: true }));
    const copies = mix[task];
    for (let c = 0; c < Math.floor(copies); c++) trainDocs.push(...docs);
    const extra = Math.round((copies - Math.floor(copies)) * docs.length);
    trainDocs.push(...docs.slice(0, extra));
    validDocs.push(...loadCorpus(task, "val", opts.dataDir).map((d) => tokenizer.encode(d, { bos: true })));
  }
  for (let i = trainDocs.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [trainDocs[i], trainDocs[j]] = [trainDocs[j], trainDocs[i]];
  }
  const flat = (docs: number[][]) => Int32Array.from(docs.flat());
  return { train: flat(trainDocs), valid: flat(validDocs) };
}
