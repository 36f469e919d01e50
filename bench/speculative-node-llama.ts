// Our speculative loop on LlamaCppEngine against node-llama-cpp's own token predictors on the same
// pair and prompts (greedy): DraftSequenceTokenPredictor (the draft model) and
// InputLookupTokenPredictor (prompt lookup), each against plain greedy decoding through the same
// node-llama-cpp sequence API, runs interleaved; their validated/refuted counts beside our
// accepted/drafted. Writes data/results/speculative-node-llama.json.
//
//   npx tsx bench/speculative-node-llama.ts [--k 4] [--tokens 48] [--repeats 3] [--out FILE]
//
// Ours: plain greedy with llama.cpp's own pick (plainGreedy) and speculative decoding whose greedy
// verification asks for the target's pick at each position (step output "argmax"), so neither side
// builds probability Maps.
import { mkdir, writeFile } from "node:fs/promises";
import { loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { openEngine } from "../lab/engine/engine.ts";
import { cpuLlama, importNodeLlamaCpp } from "../lab/engine/node-llama.mjs";
import { ModelDrafter, PromptLookupDrafter, speculativeGenerate } from "../lab/speculative/index.ts";
import { plainGreedy, speculativePrompts } from "../lab/speculative/measure.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const { values } = parseArgs({ options: {
  k: { type: "string", default: "4" }, tokens: { type: "string", default: "48" }, repeats: { type: "string", default: "3" },
  out: { type: "string", default: join(ROOT, "data", "results", "speculative-node-llama.json") },
} });
const k = Number(values.k), maxTokens = Number(values.tokens), repeats = Number(values.repeats);
const TARGET = join(ROOT, "data", "models", "target.gguf");
const DRAFT = join(ROOT, "data", "models", "draft.gguf");

const nlc = await importNodeLlamaCpp();
const llama = await cpuLlama();
const tModel = await llama.loadModel({ modelPath: TARGET });
const dModel = await llama.loadModel({ modelPath: DRAFT });
const tCtx = await tModel.createContext({ contextSize: 512, sequences: 1, threads: 1 });
const dCtx = await dModel.createContext({ contextSize: 512, sequences: 1, threads: 1 });

// Our loop, on our LlamaCppEngine (its own contexts).
const target = await openEngine("llama", TARGET, { contextSize: 512, maxSequences: 2 });
const draft = await openEngine("llama", DRAFT, { contextSize: 512, maxSequences: 2 });
const prompts = (["prose", "arith", "code", "chat"] as const).map((set) => speculativePrompts(target, set, { count: 1 })[0]);

type Kind = "nlc plain" | "nlc draft" | "nlc lookup" | "ours plain" | "ours draft" | "ours lookup";
const totals = new Map<Kind, { tokens: number; ms: number; validated: number; refuted: number }>();
const add = (kind: Kind, tokens: number, ms: number, validated = 0, refuted = 0) => {
  const t = totals.get(kind) ?? { tokens: 0, ms: 0, validated: 0, refuted: 0 };
  t.tokens += tokens; t.ms += ms; t.validated += validated; t.refuted += refuted;
  totals.set(kind, t);
};
const outputs = new Map<string, number[]>();

/** Greedy generation through node-llama-cpp's sequence.evaluate, with an optional token predictor. */
async function nlcGenerate(prompt: number[], predictor: "none" | "draft" | "lookup") {
  const draftSeq = predictor === "draft" ? dCtx.getSequence() : undefined;
  const tokenPredictor = predictor === "draft" ? new nlc.DraftSequenceTokenPredictor(draftSeq!, { maxTokens: k, minTokens: 0, minConfidence: 0 })
    : predictor === "lookup" ? new nlc.InputLookupTokenPredictor({ predictionLength: { min: 1, max: k } })
    : undefined;
  const seq = tCtx.getSequence(tokenPredictor ? { tokenPredictor } : undefined);
  const out: number[] = [];
  const t0 = performance.now();
  for await (const token of seq.evaluate(prompt as never, { temperature: 0 })) {
    out.push(token as unknown as number);
    if (out.length >= maxTokens) break;
  }
  const ms = performance.now() - t0;
  const stats = seq.tokenPredictions;
  seq.dispose();
  draftSeq?.dispose();
  return { out, ms, validated: stats.validated, refuted: stats.refuted };
}

const loadStart = loadavg();
for (let r = 0; r < repeats; r++) {
  for (const [i, prompt] of prompts.entries()) {
    // Rotate the order per run, so no predictor always runs first (on a warm or a cold cache).
    const order = (["none", "draft", "lookup"] as const).map((_, j, all) => all[(j + r + i) % 3]);
    for (const p of order) {
      const x = await nlcGenerate(prompt, p);
      add(p === "none" ? "nlc plain" : p === "draft" ? "nlc draft" : "nlc lookup", x.out.length, x.ms, x.validated, x.refuted);
      outputs.set(`nlc ${p} ${i}`, x.out);
    }
    let t0 = performance.now();
    const plain = await plainGreedy(target, prompt, maxTokens); // llama.cpp's own greedy pick, no probability Map
    add("ours plain", plain.length, performance.now() - t0);
    outputs.set(`ours plain ${i}`, plain);
    for (const kind of ["draft", "lookup"] as const) {
      const drafter = kind === "draft" ? new ModelDrafter(draft) : new PromptLookupDrafter(target.tokenizer.vocabSize);
      t0 = performance.now();
      const s = await speculativeGenerate(target, drafter, prompt, { k, maxTokens });
      add(kind === "draft" ? "ours draft" : "ours lookup", s.tokens.length, performance.now() - t0, s.accepted, s.drafted - s.accepted);
      await drafter.dispose();
      outputs.set(`ours ${kind} ${i}`, s.tokens);
    }
  }
}

const rows = [...totals].map(([kind, t]) => ({ kind, tokensPerSecond: t.tokens / (t.ms / 1000), tokens: t.tokens, validatedOrAccepted: t.validated, refutedOrRejected: t.refuted }));
const tps = (kind: Kind) => rows.find((r) => r.kind === kind)!.tokensPerSecond;
const same = (a: string, b: string) => prompts.every((_, i) => JSON.stringify(outputs.get(`${a} ${i}`)) === JSON.stringify(outputs.get(`${b} ${i}`)));
const doc = {
  generated: new Date().toISOString(), k, maxTokens, repeats, loadAverageAtStart: loadStart, loadAverageAtEnd: loadavg(),
  note: "one run on a loaded shared 2-core machine; node-llama-cpp's predictors with minConfidence 0 and at most k tokens; ours: rejected = drafted − accepted",
  rows,
  ratios: {
    oursOverTheirsDraft: tps("ours draft") / tps("nlc draft"),
    oursOverTheirsLookup: tps("ours lookup") / tps("nlc lookup"),
    theirsDraftSpeedup: tps("nlc draft") / tps("nlc plain"),
    theirsLookupSpeedup: tps("nlc lookup") / tps("nlc plain"),
    oursDraftSpeedup: tps("ours draft") / tps("ours plain"),
    oursLookupSpeedup: tps("ours lookup") / tps("ours plain"),
  },
  identical: { theirsDraftVsTheirsPlain: same("nlc draft", "nlc none"), theirsLookupVsTheirsPlain: same("nlc lookup", "nlc none"),
    oursDraftVsOursPlain: same("ours draft", "ours plain"), oursPlainVsTheirsPlain: same("ours plain", "nlc none") },
};
const out = values.out!;
await mkdir(dirname(out), { recursive: true });
await writeFile(out, JSON.stringify(doc, null, 2) + "\n");
console.log(JSON.stringify(doc, null, 2));
await target.dispose(); await draft.dispose();
await tCtx.dispose(); await dCtx.dispose(); await tModel.dispose(); await dModel.dispose();
