// The model card: every number data/models/README.md reports, measured with the trainer's own
// forward pass on the committed eval sets (chat: LabEngine on the exported F32 GGUF, so the
// 919-token system prompt is prefilled once and forked), then rendered as Markdown.
import { loadCorpus, loadEvalSet, type ChatEvalItem, type ChatEvalKind } from "../data/index.ts";
import { LabEngine } from "../engine/lab-engine.ts";
import { taskResults } from "../measure/quality.ts";
import type { SpmTokenizer } from "../tokenizer.ts";
import { BigramModel, exactMatchAccuracy, greedyAgreement, greedyBatch, windowLoss, type Model } from "./evaluate.ts";
import { macsPerToken, paramLayout } from "./model.ts";
import type { TrainResult, TrainSettings } from "./trainer.ts";
import { LOG_PROB_TOLERANCE, type LlamaCppComparison } from "./verify.ts";
import { validWindows } from "./trainer.ts";

/** A model as `lab train` hands it to the card: its final weights (the last phase's result), every
 *  phase it went through, its GGUF and the llama.cpp check of that file. */
export type TrainedModel = TrainResult & { phases: TrainResult[]; gguf: string; llamaCpp?: LlamaCppComparison };

export const CHAT_KINDS: readonly ChatEvalKind[] = ["person", "sum", "program"];
/** Loss-by-position buckets on 1,024-token windows. */
export const POSITION_EDGES = [0, 128, 256, 512, 1024];

export const EXACT_MATCH_SETS = ["arithmetic", "facts", "code"] as const;

export interface ModelReport {
  name: string;
  shape: Model["shape"];
  parameters: number;
  macsPerToken: number; // forward multiply-adds per token at the training context
  tokensSeen: number; // all phases
  steps: number; // short phase (the one the card's validation loss is measured on)
  seqLen: number;
  batch: number;
  wallSeconds: number; // all phases
  phases: { name: string; seqLen: number; batch: number; steps: number; tokensSeen: number; wallSeconds: number; finalTrainLoss: number; finalValidLoss: number }[];
  finalTrainLoss: number;
  validLoss: number;
  validPerplexity: number;
  exactMatch: Record<string, { accuracy: number; correct: number; total: number }>;
  twoDigitAddition: { accuracy: number; total: number };
  /** Arithmetic exact match by the answer's number of digits: each digit after the first is
   *  predicted at a position whose role (which column of the sum) the model must work out. */
  arithmeticByAnswerDigits: { digits: number; accuracy: number; total: number }[];
  proseLoss: number; // on data/eval/prose.jsonl
  lossByPosition?: { edges: number[]; loss: number[] }; // validation text, 1,024-token windows
  /** Chat eval set: exact match of the assistant's first line, by kind, and the same items asked
   *  in Q/A form (the facts, arithmetic and code sets' prompts). */
  chat?: {
    accuracy: number; total: number;
    byKind: Record<string, { accuracy: number; total: number; qaAccuracy: number }>;
    examples: { question: string; answer: string; got: string }[];
    /** The same items with one thing about the prompt changed (CHAT_PROBES), accuracy by kind: where
     *  the chat answers are lost. Measured for the target only. */
    probes?: Partial<Record<ChatProbe, Partial<Record<ChatEvalKind, number>>>>;
  };
  llamaCpp?: LlamaCppComparison;
}

export interface CardData {
  target: ModelReport;
  draft: ModelReport;
  bigram: { validLoss: number; validPerplexity: number; exactMatch: Record<string, number>; proseLoss: number };
  draftTargetAgreement: number;
  /** The same on chat validation transcripts, at positions after the system prompt: what a draft
   *  proposes when it speculates inside a chat answer. */
  draftTargetChatAgreement?: number;
  chatSample?: { question: string; target: string; draft: string };
  samples: { prompt: string; target: string; draft: string }[];
  evalLimit: number | null;
}

/** All eval items, or the first `limit` of each set. */
function evalItems(name: (typeof EXACT_MATCH_SETS)[number], limit?: number) {
  const items = loadEvalSet(name);
  return limit ? items.slice(0, limit) : items;
}

function proseWindows(tokenizer: SpmTokenizer, T: number, limit?: number): Int32Array {
  const texts = loadEvalSet("prose").slice(0, limit ?? undefined);
  const stream = Int32Array.from(texts.flatMap((p) => tokenizer.encode(p.text, { bos: true })));
  const n = Math.floor(stream.length / (T + 1));
  return stream.slice(0, n * (T + 1));
}

export function reportModel(result: TrainedModel, tokenizer: SpmTokenizer, valid: Int32Array, limit?: number): ModelReport {
  const short = result.phases[0] ?? result, s = short.settings, model: Model = { shape: result.settings.shape, params: result.params };
  const exactMatch: ModelReport["exactMatch"] = {};
  let arithmetic: { items: { prompt: string; answer: string }[]; hits: boolean[] } = { items: [], hits: [] };
  for (const name of EXACT_MATCH_SETS) {
    const items = evalItems(name, limit);
    const r = exactMatchAccuracy(model, tokenizer, items);
    exactMatch[name] = { accuracy: r.accuracy, correct: r.correct, total: r.total };
    if (name === "arithmetic") arithmetic = { items, hits: r.hits };
  }
  // Both breakdowns are subsets of the arithmetic pass above, read off its per-item hits.
  const tally = (keep: (it: { prompt: string; answer: string }) => boolean) => {
    let correct = 0, total = 0;
    arithmetic.items.forEach((it, i) => { if (keep(it)) { total++; correct += Number(arithmetic.hits[i]); } });
    return { accuracy: total ? correct / total : 0, total };
  };
  const td = tally((it) => /^Q: \d\d \+ \d\d = \? A:$/.test(it.prompt));
  const answerLengths = [...new Set(arithmetic.items.map((it) => it.answer.length))].sort((a, b) => a - b);
  const arithmeticByAnswerDigits = answerLengths.map((digits) => ({ digits, ...tally((it) => it.answer.length === digits) }));
  const windows = validWindows(s, valid, 256);
  const validLoss = windowLoss(model, windows, s.seqLen).mean;
  const lastTrain = result.history.at(-1)?.trainLoss ?? NaN;
  const phases = result.phases.map((p) => ({
    name: p.settings.name, seqLen: p.settings.seqLen, batch: p.settings.batch, steps: p.history.at(-1)?.step ?? 0,
    tokensSeen: p.tokensSeen, wallSeconds: p.seconds, finalTrainLoss: p.history.at(-1)?.trainLoss ?? NaN, finalValidLoss: p.finalValidLoss,
  }));
  return {
    name: result.settings.name.replace(/-long$/, ""), shape: result.settings.shape, parameters: paramLayout(s.shape).total,
    macsPerToken: macsPerToken(s.shape, s.seqLen), tokensSeen: phases.reduce((n, p) => n + p.tokensSeen, 0), steps: s.steps,
    seqLen: s.seqLen, batch: s.batch, wallSeconds: phases.reduce((n, p) => n + p.wallSeconds, 0), phases,
    finalTrainLoss: lastTrain, validLoss, validPerplexity: Math.exp(validLoss), exactMatch,
    twoDigitAddition: { accuracy: td.accuracy, total: td.total }, arithmeticByAnswerDigits,
    proseLoss: windowLoss(model, proseWindows(tokenizer, s.seqLen, limit), s.seqLen).mean,
  };
}

/** Validation loss by position on windows of the full context (POSITION_EDGES' last edge). */
export function lossByPosition(model: Model, valid: Int32Array, windows = 16): { edges: number[]; loss: number[] } {
  const edges = POSITION_EDGES.filter((e) => e <= model.shape.nCtxTrain), T = edges.at(-1)!;
  const width = T + 1, n = Math.min(windows, Math.floor(valid.length / width));
  const w = new Int32Array(n * width);
  const stride = Math.floor((valid.length - width) / Math.max(1, n - 1));
  for (let i = 0; i < n; i++) w.set(valid.subarray(i * stride, i * stride + width), i * width);
  const r = windowLoss(model, w, T, edges, 2);
  return { edges, loss: r.buckets };
}

function chatItems(limit?: number): ChatEvalItem[] {
  const items = loadEvalSet("chat");
  return limit ? items.slice(0, limit) : items;
}

/** The fraction of one kind's items answered (hits[i] for items[i]), or undefined with none of that kind. */
function hitRate(items: { kind: ChatEvalKind }[], hits: boolean[], kind: ChatEvalKind): number | undefined {
  const idx = items.flatMap((it, i) => (it.kind === kind ? [i] : []));
  return idx.length ? idx.filter((i) => hits[i]).length / idx.length : undefined;
}

/** Where a chat answer is lost: each probe asks the chat items again with one thing about the prompt
 *  changed, and the rows of the card's table compare them. A probe returns the prompt and the
 *  expected first line for an item, or undefined for a kind it does not apply to. */
export const CHAT_PROBES = {
  noSystemPrompt: {
    label: "without the system prompt (the same earlier exchanges and question)",
    ask: (it: ChatEvalItem) => ({ prompt: it.prompt.split("\n").slice(1).join("\n"), answer: it.answer }),
  },
  questionOnly: {
    label: "the question alone (`User: … / Assistant:`)",
    ask: (it: ChatEvalItem) => ({ prompt: it.prompt.split("\n").slice(-2).join("\n"), answer: it.answer }),
  },
  answerBegun: {
    label: "a sum's answer begun for it, operands and all (`Assistant: 47 - 10 =`)",
    ask: (it: ChatEvalItem) => {
      const sum = it.kind === "sum" ? /^Q: (.+) = \? A:$/.exec(it.qaPrompt)?.[1] : undefined;
      return sum === undefined ? undefined : { prompt: `${it.prompt} ${sum} =`, answer: `${it.qaAnswer}.` };
    },
  },
  qaAfterPrompt: {
    label: "in Q/A form as the assistant's answer, after the system prompt (`Assistant: Q: 47 - 10 = ? A:`)",
    ask: (it: ChatEvalItem) => ({ prompt: `${it.prompt} ${it.qaPrompt}`, answer: it.qaAnswer }),
  },
} as const;
export type ChatProbe = keyof typeof CHAT_PROBES;

/** Chat exact match on LabEngine (the F32 GGUF the trainer just wrote; the system prompt is
 *  prefilled once and forked per item), and the same items in Q/A form with the trainer's forward;
 *  with `probes`, also each of CHAT_PROBES on LabEngine. */
export async function chatReport(model: Model, gguf: string, tokenizer: SpmTokenizer, limit?: number,
  opts: { probes?: boolean } = {}): Promise<NonNullable<ModelReport["chat"]>> {
  const items = chatItems(limit);
  const engine = await LabEngine.load(gguf, { maxSequences: 2 });
  let chat: { hits: boolean[]; said: string[] };
  const probes: NonNullable<NonNullable<ModelReport["chat"]>["probes"]> = {};
  try {
    chat = await taskResults(engine, items);
    for (const [name, probe] of opts.probes ? Object.entries(CHAT_PROBES) : []) {
      const asked = items.flatMap((it) => { const q = probe.ask(it); return q ? [{ kind: it.kind, ...q }] : []; });
      const { hits } = await taskResults(engine, asked);
      const byKind: Partial<Record<ChatEvalKind, number>> = {};
      for (const kind of CHAT_KINDS) {
        const rate = hitRate(asked, hits, kind);
        if (rate !== undefined) byKind[kind] = rate;
      }
      probes[name as ChatProbe] = byKind;
    }
  } finally {
    await engine.dispose();
  }
  const qa = exactMatchAccuracy(model, tokenizer, items.map((it) => ({ prompt: it.qaPrompt, answer: it.qaAnswer })));
  const byKind: NonNullable<ModelReport["chat"]>["byKind"] = {};
  for (const kind of CHAT_KINDS) {
    const total = items.filter((it) => it.kind === kind).length;
    byKind[kind] = { accuracy: hitRate(items, chat.hits, kind) ?? 0, total, qaAccuracy: hitRate(items, qa.hits, kind) ?? 0 };
  }
  const question = (it: ChatEvalItem) => it.prompt.split("\n").at(-2)!.replace(/^User: /, "");
  return {
    accuracy: chat.hits.filter(Boolean).length / Math.max(1, items.length), total: items.length, byKind,
    examples: items.slice(0, 3).map((it, i) => ({ question: question(it), answer: it.answer, got: chat.said[i] })),
    ...(opts.probes ? { probes } : {}),
  };
}

/** Greedy next-token agreement of two models on chat validation transcripts (whole, from their
 *  BOS), counted only after the system prompt. */
export function chatAgreement(a: Model, b: Model, tokenizer: SpmTokenizer, systemPromptTokens: number): number {
  const T = Math.min(a.shape.nCtxTrain, b.shape.nCtxTrain);
  const docs = loadCorpus("chat", "val").map((d) => tokenizer.encode(d, { bos: true }).slice(0, T + 1)).filter((d) => d.length === T + 1);
  if (docs.length === 0) return NaN;
  const windows = Int32Array.from(docs.flat());
  const x = windowLoss(a, windows, T, [0, T], 2).argmax, y = windowLoss(b, windows, T, [0, T], 2).argmax;
  let same = 0, n = 0;
  for (let w = 0; w < docs.length; w++) {
    for (let t = systemPromptTokens; t < T; t++) { n++; if (x[w * T + t] === y[w * T + t]) same++; }
  }
  return same / Math.max(1, n);
}

export async function buildCard(target: TrainedModel, draft: TrainedModel, tokenizer: SpmTokenizer,
  streams: { train: Int32Array; valid: Int32Array }, limit?: number): Promise<CardData> {
  const targetModel = { shape: target.settings.shape, params: target.params };
  const draftModel = { shape: draft.settings.shape, params: draft.params };
  const t = reportModel(target, tokenizer, streams.valid, limit);
  const d = reportModel(draft, tokenizer, streams.valid, limit);
  t.lossByPosition = lossByPosition(targetModel, streams.valid);
  d.lossByPosition = lossByPosition(draftModel, streams.valid);
  t.chat = await chatReport(targetModel, target.gguf, tokenizer, limit, { probes: true });
  d.chat = await chatReport(draftModel, draft.gguf, tokenizer, limit);
  const shortSettings = target.phases[0]?.settings ?? target.settings;
  const bigram = new BigramModel(tokenizer.vocabSize, streams.train);
  const bigramWindows = validWindows(shortSettings, streams.valid, 256);
  const bigramLoss = bigram.meanLoss(bigramWindows, shortSettings.seqLen);
  const exact: Record<string, number> = {};
  for (const name of EXACT_MATCH_SETS) exact[name] = bigram.exactMatchAccuracy(tokenizer, evalItems(name, limit));
  exact.chat = bigram.exactMatchAccuracy(tokenizer, chatItems(limit));
  const proseW = proseWindows(tokenizer, shortSettings.seqLen, limit);
  const agreementWindows = validWindows(shortSettings, streams.valid, 128);
  const samplePrompts = [
    loadEvalSet("prose")[0].text.split(" ").slice(0, 6).join(" "),
    loadEvalSet("facts")[0].prompt,
    loadEvalSet("code")[0].prompt,
  ];
  const encoded = samplePrompts.map((p) => tokenizer.encode(p, { bos: true }));
  const targetOut = greedyBatch(targetModel, tokenizer, encoded, 48, "\n\n");
  const draftOut = greedyBatch(draftModel, tokenizer, encoded, 48, "\n\n");
  const systemPromptTokens = tokenizer.encode(loadCorpus("chat", "val")[0].split("\n", 1)[0], { bos: true }).length;
  const chatSample = t.chat.examples[0] && d.chat.examples[0]
    ? { question: t.chat.examples[0].question, target: t.chat.examples[0].got, draft: d.chat.examples[0].got } : undefined;
  return {
    target: t, draft: d,
    bigram: { validLoss: bigramLoss, validPerplexity: Math.exp(bigramLoss), exactMatch: exact, proseLoss: bigram.meanLoss(proseW, shortSettings.seqLen) },
    draftTargetAgreement: greedyAgreement(targetModel, draftModel, agreementWindows, shortSettings.seqLen),
    draftTargetChatAgreement: chatAgreement(targetModel, draftModel, tokenizer, systemPromptTokens),
    chatSample,
    samples: samplePrompts.map((prompt, i) => ({ prompt, target: targetOut[i], draft: draftOut[i] })),
    evalLimit: limit ?? null,
  };
}

// ─── The aims (issue: "quality to aim for and report honestly") ───────────────────────────────────

export const TRAIN_BUDGET_SECONDS = 60 * 60;

/** The short-window models' card (before the context-extension phase existed): the long phase must
 *  not cost any task more than 3 points, nor prose more than 0.03 nats/token. */
export const SHORT_WINDOW_CARD = { arithmetic: 0.933, facts: 0.997, code: 0.56, proseLoss: 0.665 } as const;

/** Each quality aim of the model factory with its measured value: the card prints them all, met or not. */
export function aims(c: CardData): { aim: string; measured: string; met: boolean }[] {
  const t = c.target, d = c.draft;
  const beats = (other: (n: (typeof EXACT_MATCH_SETS)[number]) => number, otherProse: number) =>
    EXACT_MATCH_SETS.every((n) => t.exactMatch[n].accuracy > other(n)) && t.proseLoss < otherProse;
  const list = (other: (n: (typeof EXACT_MATCH_SETS)[number]) => number, otherProse: number) =>
    [...EXACT_MATCH_SETS.map((n) => `${n} ${pct(t.exactMatch[n].accuracy)} vs ${pct(other(n))}`),
      `prose loss ${f3(t.proseLoss)} vs ${f3(otherProse)}`].join("; ");
  const wall = t.wallSeconds + d.wallSeconds;
  const out = [
    { aim: "target beats the draft on every task", measured: list((n) => d.exactMatch[n].accuracy, d.proseLoss), met: beats((n) => d.exactMatch[n].accuracy, d.proseLoss) },
    { aim: "target beats the bigram baseline on every task", measured: list((n) => c.bigram.exactMatch[n], c.bigram.proseLoss), met: beats((n) => c.bigram.exactMatch[n], c.bigram.proseLoss) },
    { aim: "fact recall ≥ 80%", measured: pct(t.exactMatch.facts.accuracy), met: t.exactMatch.facts.accuracy >= 0.8 },
    { aim: "2-digit addition ≥ 50%", measured: `${pct(t.twoDigitAddition.accuracy)} of ${t.twoDigitAddition.total}`, met: t.twoDigitAddition.accuracy >= 0.5 },
    { aim: "draft–target greedy agreement ≥ 0.6", measured: c.draftTargetAgreement.toFixed(3), met: c.draftTargetAgreement >= 0.6 },
  ];
  const before = SHORT_WINDOW_CARD;
  const drops = EXACT_MATCH_SETS.map((n) => ({ n, drop: before[n] - t.exactMatch[n].accuracy }));
  out.push({
    aim: "no task more than 3 points below the short-window card, prose loss within 0.03",
    measured: drops.map(({ n }) => `${n} ${pct(t.exactMatch[n].accuracy)} (was ${pct(before[n])})`).join("; ") + `; prose loss ${f3(t.proseLoss)} (was ${f3(before.proseLoss)})`,
    met: drops.every((x) => x.drop <= 0.03 + 1e-9) && t.proseLoss - before.proseLoss <= 0.03 + 1e-9,
  });
  if (t.lossByPosition && t.lossByPosition.loss.length >= 2) {
    const { edges, loss } = t.lossByPosition, gap = loss.at(-1)! - loss[0];
    out.push({ aim: `loss at positions ${edges.at(-2)}–${edges.at(-1)! - 1} within 0.15 nats/token of positions 0–${edges[1] - 1}`,
      measured: `${f3(loss.at(-1)!)} vs ${f3(loss[0])} (${gap >= 0 ? "+" : ""}${f3(gap)})`, met: gap <= 0.15 });
  }
  if (t.chat) {
    const k = t.chat.byKind;
    out.push({ aim: "chat exact match ≥ 90% on person questions", measured: `${pct(k.person.accuracy)} of ${k.person.total}`, met: k.person.accuracy >= 0.9 });
    for (const kind of ["sum", "program"] as const) {
      out.push({ aim: `chat ${kind}s within 5 points of the same items in Q/A form`, measured: `${pct(k[kind].accuracy)} vs ${pct(k[kind].qaAccuracy)} (${k[kind].total} items)`,
        met: k[kind].accuracy >= k[kind].qaAccuracy - 0.05 - 1e-9 });
    }
  }
  if (c.draftTargetChatAgreement !== undefined) {
    out.push({ aim: "draft–target greedy agreement ≥ 0.7 on chat continuations", measured: c.draftTargetChatAgreement.toFixed(3), met: c.draftTargetChatAgreement >= 0.7 });
  }
  out.push({ aim: "both models trained (all phases) in ≤ 60 min on 2 cores", measured: `${(wall / 60).toFixed(1)} min`, met: wall <= TRAIN_BUDGET_SECONDS });
  return out;
}

// ─── Markdown ────────────────────────────────────────────────────────────────────────────────────

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const f3 = (x: number) => x.toFixed(3);

function dims(r: ModelReport): string {
  const s = r.shape;
  return `nEmbd ${s.nEmbd}, nFf ${s.nFf}, ${s.nLayer} layers, ${s.nHead} heads × ${s.headDim} (${s.nKvHead} KV heads), vocab ${s.nVocab}, context_length ${s.nCtxTrain}`;
}

export function renderModelCard(c: CardData, extra: { lossFigure?: string; command: string; machine: string }): string {
  const t = c.target, d = c.draft;
  const row = (label: string, f: (r: ModelReport) => string) => `| ${label} | ${f(t)} | ${f(d)} |`;
  const lines = [
    "# The embedded models: target and draft",
    "",
    "Two small llama-architecture models trained from scratch by `lab train` (lab/train/) on the",
    "tiny-world corpus (data/corpus, tokenizer data/tokenizer.json), stored as F32 GGUF. Both run in",
    "llama.cpp (node-llama-cpp) unchanged. `target.gguf` is the model the labs quantize, serve and",
    "measure; `draft.gguf` shares its tokenizer at a fraction of its cost, for speculative decoding.",
    "",
    `Regenerate with \`${extra.command}\` (${extra.machine}). Every number below is measured by`,
    "lab/train/card.ts with the trainer's own forward pass (greedy decoding for exact match)",
    c.evalLimit ? `on the first ${c.evalLimit} items of each eval set.` : "on the full eval sets in data/eval.",
    "",
    "## Architecture and training",
    "",
    "Three phases, each continuing from the one before with a fresh optimizer (lab/train/configs.ts): pretraining",
    "on 128-token windows of every task; a chat phase on the same windows with dialog added (short",
    "`User: … / Assistant: …` exchanges without the system prompt, data/corpus/dialog.train.txt), where the model",
    "learns the answer form; and context extension on windows of the full context that open at a document, where",
    "it learns to answer ~900 tokens after the system prompt.",
    "",
    "| | target | draft |",
    "|---|---|---|",
    row("dimensions", dims),
    row("parameters", (r) => r.parameters.toLocaleString("en-US")),
    row("multiply-adds / token (ctx 128)", (r) => `${(r.macsPerToken / 1e6).toFixed(2)} M`),
    row("steps × batch × seq, per phase", (r) => r.phases.map((p) => `${p.steps} × ${p.batch} × ${p.seqLen}`).join(", then ")),
    row("tokens seen", (r) => r.phases.map((p) => p.tokensSeen.toLocaleString("en-US")).join(" + ")),
    row("wall time, per phase", (r) => r.phases.map((p) => `${(p.wallSeconds / 60).toFixed(1)}`).join(" + ") + (r.phases.length > 1 ? ` = ${(r.wallSeconds / 60).toFixed(1)}` : "") + " min"),
    row("final train loss, per phase", (r) => r.phases.map((p) => f3(p.finalTrainLoss)).join(", ")),
    row("validation loss (128-token windows)", (r) => f3(r.validLoss)),
    row("validation perplexity", (r) => r.validPerplexity.toFixed(2)),
    row("llama.cpp vs own forward, max abs Δ log p", (r) => (r.llamaCpp
      ? `${r.llamaCpp.maxAbsDiff.toExponential(1)} (${r.llamaCpp.positionsOverTolerance} of ${r.llamaCpp.positions} positions above ${LOG_PROB_TOLERANCE.toExponential(0)}; same argmax at ${pct(r.llamaCpp.argmaxAgreement)})`
      : "–")),
    "",
    `The llama.cpp check runs the exported GGUF in node-llama-cpp (F32 weights and KV cache, flash attention off, 1 thread) on the first`,
    `validation tokens and takes the largest |Δ log p| over every position and all ${t.shape.nVocab} tokens. The trainer's tests require ≤ ${LOG_PROB_TOLERANCE.toExponential(0)} of`,
    "the smoke model (CI). A trained model's logits span tens of nats, and float32 sums taken in a different order",
    "(ggml's vectorised dot products against the trainer's SIMD matmuls) can move a few of them by more: against a float64",
    "forward of the same weights, " + [t, d].map((r) => r.llamaCpp?.float64Reference
      ? `the ${r.name}'s float32 log-probabilities differ by up to ${r.llamaCpp.float64Reference.ours.toExponential(1)} (ours) and ${r.llamaCpp.float64Reference.llamaCpp.toExponential(1)} (llama.cpp)`
      : `the ${r.name} was not measured`).join("; ") + ".",
    "",
    `The draft costs ${(d.macsPerToken / t.macsPerToken).toFixed(3)} of the target's multiply-adds per token (limit 1/8 = 0.125).`,
    "",
    "## Quality",
    "",
    "Exact match: greedy continuation of the prompt, up to the first newline, equals the answer.",
    "Arithmetic is 1–2 digit addition and subtraction: the single-digit table is taught in full, and every eval",
    "problem has a 2-digit operand and never appears in training, so the model must add columns, not recall sums.",
    "",
    "| task | target | draft | bigram baseline |",
    "|---|---|---|---|",
    ...EXACT_MATCH_SETS.map((n) => `| ${n} (${t.exactMatch[n].total} items) | ${pct(t.exactMatch[n].accuracy)} | ${pct(d.exactMatch[n].accuracy)} | ${pct(c.bigram.exactMatch[n])} |`),
    `| 2-digit addition (${t.twoDigitAddition.total} items) | ${pct(t.twoDigitAddition.accuracy)} | ${pct(d.twoDigitAddition.accuracy)} | – |`,
    `| prose loss (nats/token, eval stories) | ${f3(t.proseLoss)} | ${f3(d.proseLoss)} | ${f3(c.bigram.proseLoss)} |`,
    ...(t.chat && d.chat ? [`| chat, after the system prompt (${t.chat.total} items) | ${pct(t.chat.accuracy)} | ${pct(d.chat.accuracy)} | ${pct(c.bigram.exactMatch.chat ?? NaN)} |`] : []),
    `| validation perplexity | ${t.validPerplexity.toFixed(2)} | ${d.validPerplexity.toFixed(2)} | ${c.bigram.validPerplexity.toFixed(2)} |`,
    "",
    `Draft–target greedy next-token agreement on held-out validation text: **${pct(c.draftTargetAgreement)}**` +
      (c.draftTargetChatAgreement !== undefined ? `; on chat validation transcripts after the system prompt: **${pct(c.draftTargetChatAgreement)}**.` : "."),
    "",
    "Arithmetic by the number of digits in the answer (the first digit is predicted right after `A:`; each later",
    "one at a position that must first work out which column of the sum it is):",
    "",
    "| answer digits | " + t.arithmeticByAnswerDigits.map((g) => `${g.digits} (${g.total} items)`).join(" | ") + " |",
    "|---|" + t.arithmeticByAnswerDigits.map(() => "---|").join(""),
    "| target | " + t.arithmeticByAnswerDigits.map((g) => pct(g.accuracy)).join(" | ") + " |",
    "| draft | " + d.arithmeticByAnswerDigits.map((g) => pct(g.accuracy)).join(" | ") + " |",
    "",
    "### The aims, checked",
    "",
    "| aim | measured | met |",
    "|---|---|---|",
    ...aims(c).map((a) => `| ${a.aim} | ${a.measured} | ${a.met ? "yes" : "**no**"} |`),
    "",
  ];
  if (t.chat && d.chat) {
    lines.push("### Chat after the system prompt", "",
      "data/eval/chat.jsonl: the 919-token system prompt, 1–3 earlier exchanges, then a question; exact match of the",
      "assistant's first line (e.g. `Duelo likes white.`). Measured on LabEngine with the exported F32 GGUF, the system",
      "prompt prefilled once and forked per item. The Q/A column asks the very same items in the facts, arithmetic and",
      "code sets' form (`Q: … A:`), with the trainer's forward.", "",
      "| kind | target chat | target Q/A, same items | draft chat | draft Q/A |",
      "|---|---|---|---|---|",
      ...CHAT_KINDS.map((k) => `| ${k} (${t.chat!.byKind[k].total} items) | ${pct(t.chat!.byKind[k].accuracy)} | ${pct(t.chat!.byKind[k].qaAccuracy)} | ${pct(d.chat!.byKind[k].accuracy)} | ${pct(d.chat!.byKind[k].qaAccuracy)} |`),
      "");
    const probes = t.chat.probes;
    if (probes && Object.keys(probes).length) {
      const cell = (v: number | undefined) => (v === undefined ? "–" : pct(v));
      const k = t.chat.byKind;
      lines.push("Where the target's chat answers are lost: the same items asked again with one thing about the prompt",
        "changed (LabEngine; the last row is the trainer's forward). Comparing rows separates what the system prompt",
        "costs, what the earlier exchanges cost, and what the chat answer's form costs against the same question in",
        "the Q/A form the model learned its tasks in.", "",
        "| the same items, asked … | person | sum | program |",
        "|---|---|---|---|",
        `| as the eval asks them (system prompt, earlier exchanges, question) | ${CHAT_KINDS.map((kind) => pct(k[kind].accuracy)).join(" | ")} |`,
        ...(Object.keys(CHAT_PROBES) as ChatProbe[]).filter((p) => probes[p]).map((p) =>
          `| ${CHAT_PROBES[p].label} | ${CHAT_KINDS.map((kind) => cell(probes[p]![kind])).join(" | ")} |`),
        `| in Q/A form alone (\`Q: 47 - 10 = ? A:\`) | ${CHAT_KINDS.map((kind) => pct(k[kind].qaAccuracy)).join(" | ")} |`,
        "");
    }
    if (c.chatSample) {
      lines.push("A chat sample (greedy; the prompt is the system prompt, earlier exchanges, then this question):", "",
        "```text", `User: ${c.chatSample.question}`, `TARGET: ${c.chatSample.target}`, `DRAFT:  ${c.chatSample.draft}`, "```", "");
    }
  }
  if (t.lossByPosition) {
    const { edges, loss } = t.lossByPosition;
    lines.push("### Loss by position", "",
      `Both models declare llama.context_length ${t.shape.nCtxTrain}, the window of their context-extension phase`,
      "(engines open them with that context by default). Validation loss by position on",
      `${edges.at(-1)}-token windows of the validation stream (documents packed, so a window starts mid-document):`, "",
      "| positions | " + loss.map((_, k) => `${edges[k]}–${edges[k + 1] - 1}`).join(" | ") + " |",
      "|---|" + loss.map(() => "---|").join(""),
      "| target | " + loss.map(f3).join(" | ") + " |",
      ...(d.lossByPosition ? ["| draft | " + d.lossByPosition.loss.map(f3).join(" | ") + " |"] : []), "",
      loss.at(-1)! > loss[0] + 0.15
        ? `Late positions lose ${f3(loss.at(-1)! - loss[0])} nats/token more than the first 128: the context-extension phase did not reach them well enough.`
        : `Late positions are within ${f3(Math.abs(loss.at(-1)! - loss[0]))} nats/token of the first 128 (${loss.at(-1)! < loss[0] ? "lower: they see more of their document" : "higher"}).`,
      "");
  }
  lines.push("## Samples (greedy, target then draft)", "");
  for (const s of c.samples) {
    lines.push("```text", `PROMPT: ${s.prompt}`, `TARGET: ${s.target.trim()}`, `DRAFT:  ${s.draft.trim()}`, "```", "");
  }
  lines.push("## Loss curves", "");
  if (extra.lossFigure) lines.push(`![loss curves](${extra.lossFigure})`, "");
  lines.push("Per-step values: `target-loss.csv`, `draft-loss.csv` (short phase), `target-chat-loss.csv`, `draft-chat-loss.csv`",
    "(chat phase) and `target-long-loss.csv`, `draft-long-loss.csv` (context extension): step, tokens, lr, train_loss,",
    "valid_loss, grad_norm, seconds.",
    "Training loss sits above validation loss because the training mix repeats the fact documents 6× (their answer",
    "tokens are memorised, hence hard) while the validation split keeps the natural mix (lab/train/configs.ts DATA_MIX).", "");
  return lines.join("\n");
}
