// The measuring side of the trainer: batched greedy decoding equals one-prompt-at-a-time decoding
// (padding never leaks into a shorter prompt), data-parallel gradients equal single-thread ones,
// the bigram baseline counts what it sees, and the CLI rejects bad flags with exit code 2.
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { loadEvalSet, loadTokenizer } from "../lab/data/index.ts";
import { aims, CHAT_PROBES, renderModelCard, SHORT_WINDOW_CARD, type CardData, type ModelReport } from "../lab/train/card.ts";
import { BigramModel, greedyBatch, isExactMatch, windowLoss } from "../lab/train/evaluate.ts";
import { initParams, paramLayout, seededRandom, type ModelShape } from "../lab/train/model.ts";
import { GradientPool } from "../lab/train/parallel.ts";

const tokenizer = loadTokenizer();
const shape: ModelShape = {
  nVocab: tokenizer.vocabSize, nCtxTrain: 256, nEmbd: 32, nFf: 64, nHead: 4, nKvHead: 2, nLayer: 2, headDim: 8, rmsEps: 1e-5, ropeFreqBase: 10000,
};
function randomModel(seed: number) {
  const layout = paramLayout(shape);
  const params = new Float32Array(layout.total);
  initParams(shape, layout, params, seed);
  for (let i = 0; i < params.length; i++) params[i] *= 40; // peaked distributions, varied argmaxes
  for (const p of layout.slots) if (p.kind === "norm") params.fill(1, p.offset, p.offset + p.size);
  return { shape, params };
}

describe("greedy decoding", () => {
  it("batched equals one prompt at a time, whatever the prompt lengths", () => {
    const model = randomModel(5);
    const prompts = ["Q: 12 + 7 = ? A:", "Once", "Code: x = 3; print(x) Output:", "Q: Where does Mira live? A:", "The"]
      .map((p) => tokenizer.encode(p, { bos: true }));
    const batched = greedyBatch(model, tokenizer, prompts, 6, "\n", 5);
    const single = prompts.map((p) => greedyBatch(model, tokenizer, [p], 6, "\n", 1)[0]);
    expect(batched).toEqual(single);
    expect(new Set(batched).size).toBeGreaterThan(1);
  });

  it("scores exact match on the first line only", () => {
    expect(isExactMatch(" 432\nQ: 1 + 1", "432")).toBe(true);
    expect(isExactMatch(" 4321", "432")).toBe(false);
  });

  it("windowLoss buckets average to the mean", () => {
    const model = randomModel(6), T = 16, rand = seededRandom(2);
    const windows = Int32Array.from({ length: 3 * (T + 1) }, () => Math.floor(rand() * shape.nVocab));
    const r = windowLoss(model, windows, T, [0, 8, 16], 2);
    expect((r.buckets[0] + r.buckets[1]) / 2).toBeCloseTo(r.mean, 5);
  });
});

describe("data-parallel gradients", () => {
  it("two workers give the single-thread gradient to float32 rounding", async () => {
    const layout = paramLayout(shape), rand = seededRandom(8), B = 4, T = 12;
    const seqs = Int32Array.from({ length: B * (T + 1) }, () => Math.floor(rand() * shape.nVocab));
    const [inline, pool] = await Promise.all([GradientPool.start(shape, layout.total, B, T, 0), GradientPool.start(shape, layout.total, B, T, 2)]);
    try {
      expect(pool.workerCount).toBe(2);
      initParams(shape, layout, inline.params, 3);
      initParams(shape, layout, pool.params, 3);
      const a = await inline.compute(seqs, B, T), b = await pool.compute(seqs, B, T);
      expect(b.count).toBe(a.count);
      expect(b.lossSum).toBeCloseTo(a.lossSum, 3);
      let maxG = 0, maxErr = 0;
      for (let i = 0; i < layout.total; i++) {
        maxG = Math.max(maxG, Math.abs(inline.grads[i]));
        maxErr = Math.max(maxErr, Math.abs(inline.grads[i] - pool.grads[i]));
      }
      expect(maxErr / maxG).toBeLessThan(1e-5);
    } finally {
      await inline.close();
      await pool.close();
    }
  });
});

describe("bigram baseline", () => {
  it("predicts the most frequent successor and smooths unseen pairs", () => {
    const m = new BigramModel(4, Int32Array.from([0, 1, 0, 1, 0, 2, 3, 3]));
    expect(m.next(0)).toBe(1);
    expect(Math.exp(m.logProb(0, 1))).toBeGreaterThan(0.6);
    expect(Number.isFinite(m.logProb(2, 0))).toBe(true);
  });
});

describe("model card aims", () => {
  type Extra = { chat?: ModelReport["chat"]; lossByPosition?: ModelReport["lossByPosition"] };
  const report = (name: string, acc: [number, number, number], twoDigit: number, proseLoss: number, minutes: number, extra: Extra = {}): ModelReport => ({
    name, shape, parameters: 1, macsPerToken: 1, tokensSeen: 1, steps: 1, seqLen: 128, batch: 8, wallSeconds: minutes * 60,
    phases: [{ name, seqLen: 128, batch: 8, steps: 1, tokensSeen: 1, wallSeconds: minutes * 60, finalTrainLoss: 1, finalValidLoss: 1 }],
    finalTrainLoss: 1, validLoss: 1, validPerplexity: Math.E,
    exactMatch: { arithmetic: { accuracy: acc[0], correct: 0, total: 300 }, facts: { accuracy: acc[1], correct: 0, total: 300 }, code: { accuracy: acc[2], correct: 0, total: 300 } },
    twoDigitAddition: { accuracy: twoDigit, total: 18 }, arithmeticByAnswerDigits: [{ digits: 1, accuracy: acc[0], total: 300 }], proseLoss,
    ...extra,
  });
  const chat = (person: number, sum: [number, number], program: [number, number]): ModelReport["chat"] => ({
    accuracy: person, total: 250, examples: [],
    byKind: { person: { accuracy: person, total: 150, qaAccuracy: 1 }, sum: { accuracy: sum[0], total: 50, qaAccuracy: sum[1] }, program: { accuracy: program[0], total: 50, qaAccuracy: program[1] } },
  });
  const card = (target: ModelReport, agreement: number, chatAgreement?: number): CardData => ({
    target, draft: report("draft", [0.1, 0.2, 0.3], 0, 1.0, 2, { chat: chat(0.1, [0, 0], [0.2, 0.2]) }),
    bigram: { validLoss: 2, validPerplexity: Math.exp(2), exactMatch: { arithmetic: 0, facts: 0, code: 0.05, chat: 0 }, proseLoss: 2 },
    draftTargetAgreement: agreement, draftTargetChatAgreement: chatAgreement, samples: [], evalLimit: null,
  });
  const met = (c: CardData) => Object.fromEntries(aims(c).map((a) => [a.aim, a.met]));

  it("marks each aim met or not from the measured numbers, and the card prints every one", () => {
    const good = card(report("target", [0.92, 0.99, 0.55], 0.5, 0.68, 50, {
      chat: chat(0.95, [0.88, 0.9], [0.5, 0.52]), lossByPosition: { edges: [0, 128, 256, 512, 1024], loss: [0.7, 0.6, 0.6, 0.84] },
    }), 0.7, 0.75);
    expect(Object.values(met(good)).every(Boolean)).toBe(true);
    expect(aims(good)).toHaveLength(12);
    const bad = card(report("target", [0.6, 0.79, 0.25], 0.45, 0.7, 59, {
      chat: chat(0.89, [0.8, 0.9], [0.5, 0.5]), lossByPosition: { edges: [0, 128, 256, 512, 1024], loss: [0.7, 0.6, 0.6, 0.86] },
    }), 0.59, 0.69);
    expect(met(bad)).toEqual({
      "target beats the draft on every task": false, // code 25% < draft 30%
      "target beats the bigram baseline on every task": true,
      "fact recall ≥ 80%": false,
      "2-digit addition ≥ 50%": false,
      "draft–target greedy agreement ≥ 0.6": false,
      "no task more than 3 points below the short-window card, prose loss within 0.03": false,
      "loss at positions 512–1023 within 0.15 nats/token of positions 0–127": false, // +0.16
      "chat exact match ≥ 90% on person questions": false,
      "chat sums within 5 points of the same items in Q/A form": false, // 10 points below
      "chat programs within 5 points of the same items in Q/A form": true,
      "draft–target greedy agreement ≥ 0.7 on chat continuations": false,
      "both models trained (all phases) in ≤ 60 min on 2 cores": false, // 59 + 2 min
    });
    const md = renderModelCard(bad, { command: "lab train", machine: "test" });
    for (const a of aims(bad)) expect(md).toContain(`| ${a.aim} | ${a.measured} | ${a.met ? "yes" : "**no**"} |`);
    expect(md).toContain("| answer digits | 1 (300 items) |");
    expect(md).toContain("| 512–1023 |");
    expect(md).toContain("| sum (50 items) | 80.0% | 90.0% |");
  });

  it("prints the chat probes as one row each, in CHAT_PROBES order, a dash where a probe skips a kind", () => {
    const c = card(report("target", [0.92, 0.99, 0.55], 0.5, 0.68, 50, { chat: {
      ...chat(0.6, [0, 0.9], [0.1, 0.5])!,
      probes: { qaAfterPrompt: { person: 0.7, sum: 0.58, program: 0.42 }, noSystemPrompt: { person: 0.67, sum: 0, program: 0.1 }, answerBegun: { sum: 0 } },
    } }), 0.7, 0.75);
    const md = renderModelCard(c, { command: "lab train", machine: "test" });
    const rows = md.split("\n").filter((l) => l.startsWith("| as the eval asks") || Object.values(CHAT_PROBES).some((p) => l.startsWith(`| ${p.label} |`)) || l.startsWith("| in Q/A form alone"));
    expect(rows).toEqual([
      "| as the eval asks them (system prompt, earlier exchanges, question) | 60.0% | 0.0% | 10.0% |",
      `| ${CHAT_PROBES.noSystemPrompt.label} | 67.0% | 0.0% | 10.0% |`,
      `| ${CHAT_PROBES.answerBegun.label} | – | 0.0% | – |`,
      `| ${CHAT_PROBES.qaAfterPrompt.label} | 70.0% | 58.0% | 42.0% |`,
      "| in Q/A form alone (`Q: 47 - 10 = ? A:`) | 100.0% | 90.0% | 50.0% |",
    ]);
    // A card without probes (card.json from before they existed) has no such table.
    expect(renderModelCard(card(report("target", [0.92, 0.99, 0.55], 0.5, 0.68, 50, { chat: chat(0.6, [0, 0.9], [0.1, 0.5]) }), 0.7), { command: "lab train", machine: "test" }))
      .not.toContain("| the same items, asked … |");
  });

  it("each chat probe changes one thing about a real eval item's prompt, and expects what the chat answer would say", () => {
    const items = loadEvalSet("chat");
    const sum = items.find((it) => it.kind === "sum")!, person = items.find((it) => it.kind === "person")!;
    const noSystem = CHAT_PROBES.noSystemPrompt.ask(sum);
    expect(sum.prompt.startsWith("System: ")).toBe(true);
    expect(noSystem.prompt).toBe(sum.prompt.slice(sum.prompt.indexOf("\n") + 1));
    expect(noSystem.prompt).toMatch(/^User: /);
    expect(CHAT_PROBES.questionOnly.ask(sum).prompt).toMatch(/^User: What is \d+ [-+] \d+\?\nAssistant:$/);
    // The begun answer and its expected rest make up exactly the chat answer.
    const begun = CHAT_PROBES.answerBegun.ask(sum)!;
    expect(`${begun.prompt.slice(sum.prompt.length + 1)} ${begun.answer}`).toBe(sum.answer);
    expect(CHAT_PROBES.answerBegun.ask(person)).toBeUndefined();
    const qa = CHAT_PROBES.qaAfterPrompt.ask(person);
    expect(qa).toEqual({ prompt: `${person.prompt} ${person.qaPrompt}`, answer: person.qaAnswer });
  });

  it("a drop of more than 3 points on one task, or prose loss up by more than 0.03, fails the no-regression aim", () => {
    const aim = "no task more than 3 points below the short-window card, prose loss within 0.03";
    const base = [SHORT_WINDOW_CARD.arithmetic, SHORT_WINDOW_CARD.facts, SHORT_WINDOW_CARD.code] as [number, number, number];
    expect(met(card(report("target", base, 0.9, SHORT_WINDOW_CARD.proseLoss + 0.03, 1), 0.8))[aim]).toBe(true);
    expect(met(card(report("target", [base[0] - 0.031, base[1], base[2]], 0.9, SHORT_WINDOW_CARD.proseLoss, 1), 0.8))[aim]).toBe(false);
    expect(met(card(report("target", base, 0.9, SHORT_WINDOW_CARD.proseLoss + 0.031, 1), 0.8))[aim]).toBe(false);
  });
});

describe("lab train flags", () => {
  it("rejects an unknown config with usage exit code 2", () => {
    let code = 0, stderr = "";
    try {
      execFileSync(process.execPath, ["lab/cli/bin.mjs", "train", "--config", "huge"], { stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" });
    } catch (err) {
      code = (err as { status: number }).status;
      stderr = String((err as { stderr: string }).stderr);
    }
    expect(code).toBe(2);
    expect(stderr).toMatch(/--config must be/);
  });
});
