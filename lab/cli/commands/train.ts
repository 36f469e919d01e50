// `lab train`: trains the embedded models from the committed corpus and writes F32 GGUFs that
// llama.cpp runs, loss-curve CSVs, checkpoints (for --resume) and, for the full run, the model card.
import { mkdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { UsageError } from "../../errors.ts";
import { defaultDataDir, loadTokenizer } from "../../data/index.ts";
import { buildCard, renderModelCard } from "../../train/card.ts";
import { CONFIG_NAMES, tokenStreams, trainSettings, type ConfigName } from "../../train/configs.ts";
import { exportGguf } from "../../train/export.ts";
import { resultFromCheckpoint, train, type Progress, type TrainResult, type TrainSettings } from "../../train/trainer.ts";
import { compareWithLlamaCpp, type LlamaCppComparison } from "../../train/verify.ts";
import { numberFlag, parseFlags, printJson, say, type Command } from "../command.ts";

const help = `Usage: lab train [--config all|target|draft|smoke] [--out DIR] [--resume] [--workers N]
                 [--steps N] [--eval-limit N] [--card-only] [--json]

Trains llama-architecture models in TypeScript (forward, backward, AdamW on worker threads) on the
tiny-world corpus with data/tokenizer.json, and writes for each model:
  DIR/<name>.gguf          F32 GGUF, tokenizer embedded; checked against llama.cpp's log-probs
  DIR/<name>-loss.csv      step, tokens, lr, train_loss, valid_loss, grad_norm, seconds
  DIR/checkpoints/<name>.ckpt   parameters + Adam state, for --resume
With --config all (the default) it trains the draft, then the target, and writes DIR/README.md,
the model card (eval accuracies, perplexity, agreement, samples) and DIR/card.json.

Options:
  --config NAME    all (default) | target | draft | smoke (seconds; what CI runs)
  --out DIR        output directory (default data/models; smoke: a temp directory)
  --resume         continue from DIR/checkpoints/<name>.ckpt when present (same settings)
  --workers N      gradient threads (default 2)
  --steps N        override the number of steps (changes the schedule; for experiments)
  --eval-limit N   model card: use the first N items of each eval set (default: all)
  --card-only      skip training: write the model card from DIR/checkpoints/{target,draft}.ckpt
  --json           print a JSON summary on stdout

Examples:
  lab train --config smoke
  lab train                       # both embedded models + model card, ~40 min on 2 cores
  lab train --resume              # pick up where an interrupted run stopped`;

function progressPrinter(): (p: Progress) => void {
  const tty = process.stderr.isTTY;
  let lastPrint = 0;
  return (p) => {
    const now = Date.now();
    if (!tty && now - lastPrint < 15_000 && p.step !== p.steps) return;
    lastPrint = now;
    const width = 24, filled = Math.round((width * p.step) / p.steps);
    const bar = "█".repeat(filled) + "░".repeat(width - filled);
    const eta = p.etaSeconds >= 60 ? `${Math.floor(p.etaSeconds / 60)}m${String(Math.round(p.etaSeconds % 60)).padStart(2, "0")}s` : `${Math.round(p.etaSeconds)}s`;
    const line = `${p.name.padEnd(6)} ${bar} ${String(p.step).padStart(5)}/${p.steps} loss ${p.trainLoss.toFixed(3)}` +
      `${p.validLoss !== null ? ` val ${p.validLoss.toFixed(3)}` : ""} | ${Math.round(p.tokensPerSecond)} tok/s | ETA ${eta}`;
    process.stderr.write(tty ? `\r${line}\x1b[K${p.step === p.steps ? "\n" : ""}` : line + "\n");
  };
}

export const trainCommand: Command = {
  name: "train",
  summary: "Train the embedded target/draft models (or a smoke model) and export GGUF",
  help,
  async run(args) {
    const { values } = parseFlags("train", args, {
      config: { type: "string" }, out: { type: "string" }, resume: { type: "boolean" }, workers: { type: "string" },
      steps: { type: "string" }, "eval-limit": { type: "string" }, "card-only": { type: "boolean" }, json: { type: "boolean" },
    });
    if (values["card-only"] && values.config !== undefined && values.config !== "all") {
      throw new UsageError("lab train: --card-only writes the card for target and draft; drop --config");
    }
    const config = values.config ?? "all";
    if (config !== "all" && !(CONFIG_NAMES as readonly string[]).includes(config)) {
      throw new UsageError(`lab train: --config must be all, ${CONFIG_NAMES.join(", ")}; got "${config}"`);
    }
    const workers = numberFlag("train", "workers", values.workers, 2, { min: 0, max: 64, integer: true });
    const steps = values.steps === undefined ? undefined : numberFlag("train", "steps", values.steps, 0, { min: 1, integer: true });
    const evalLimit = values["eval-limit"] === undefined ? undefined : numberFlag("train", "eval-limit", values["eval-limit"], 0, { min: 1, integer: true });
    const outDir = resolve(values.out ?? (config === "smoke" ? join(tmpdir(), "lab-train-smoke") : join(defaultDataDir(), "models")));
    await mkdir(join(outDir, "checkpoints"), { recursive: true });

    const tokenizer = loadTokenizer();
    const t0 = performance.now();
    const streams = tokenStreams(tokenizer);
    say(`lab train: ${streams.train.length.toLocaleString("en-US")} training tokens, ${streams.valid.length.toLocaleString("en-US")} validation tokens (${((performance.now() - t0) / 1000).toFixed(1)} s to tokenize)`);

    const names: ConfigName[] = config === "all" ? ["draft", "target"] : [config as ConfigName];
    const results = new Map<ConfigName, TrainResult & { gguf: string; llamaCpp: LlamaCppComparison }>();
    for (const name of values["card-only"] ? names : []) {
      const result = await resultFromCheckpoint(join(outDir, "checkpoints", `${name}.ckpt`));
      const gguf = join(outDir, `${name}.gguf`);
      await exportGguf(gguf, result.settings.shape, result.params, tokenizer, `inference-lab-${name}`);
      const check = await compareWithLlamaCpp(gguf, result.settings.shape, result.params, Array.from(streams.valid.subarray(0, 64)));
      say(`lab train: ${name}: from its checkpoint (${result.history.at(-1)?.step ?? 0}/${result.settings.steps} steps); llama.cpp max |Δ log p| ${check.maxAbsDiff.toExponential(2)}`);
      results.set(name, { ...result, gguf, llamaCpp: check });
    }
    for (const name of values["card-only"] ? [] : names) {
      const base = trainSettings(name, tokenizer.vocabSize);
      const settings: TrainSettings = steps ? { ...base, steps, checkpointEvery: Math.min(base.checkpointEvery, steps) } : base;
      say(`lab train: ${name}: ${describe(settings)}`);
      const result = await train(settings, streams, {
        outDir, checkpointDir: join(outDir, "checkpoints"), resume: values.resume, workers, onProgress: progressPrinter(),
      });
      const gguf = join(outDir, `${name}.gguf`);
      await exportGguf(gguf, settings.shape, result.params, tokenizer, `inference-lab-${name}`);
      const probe = Array.from(streams.valid.subarray(0, 64));
      const check = await compareWithLlamaCpp(gguf, settings.shape, result.params, probe);
      say(`lab train: ${name}: wrote ${relative(process.cwd(), gguf)}; valid loss ${result.finalValidLoss.toFixed(3)}; ` +
        `llama.cpp max |Δ log p| ${check.maxAbsDiff.toExponential(2)} over ${check.positions} positions; ${(result.seconds / 60).toFixed(1)} min`);
      results.set(name, { ...result, gguf, llamaCpp: check });
    }

    let card: ReturnType<typeof buildCard> | undefined;
    if (config === "all") {
      say("lab train: evaluating for the model card …");
      const target = results.get("target")!, draft = results.get("draft")!;
      card = buildCard(target, draft, tokenizer, streams, evalLimit);
      card.target.llamaCpp = target.llamaCpp;
      card.draft.llamaCpp = draft.llamaCpp;
      const lossFigure = await saveLossFigure(outDir, [draft, target]).catch((err) => { say(`lab train: no loss figure (${(err as Error).message})`); return undefined; });
      await writeFile(join(outDir, "card.json"), JSON.stringify(card, null, 2) + "\n");
      await writeFile(join(outDir, "README.md"), renderModelCard(card, {
        lossFigure, command: "lab train", machine: `${workers} worker threads`,
      }));
      say(`lab train: wrote ${relative(process.cwd(), join(outDir, "README.md"))}`);
    }
    if (values.json) {
      printJson({
        outDir,
        models: [...results.values()].map((r) => ({
          name: r.settings.name, gguf: r.gguf, tokensSeen: r.tokensSeen, seconds: r.seconds, finalValidLoss: r.finalValidLoss,
          finalTrainLoss: r.history.at(-1)?.trainLoss ?? null, llamaCppMaxAbsDiff: r.llamaCpp.maxAbsDiff,
        })),
        card: card ?? null,
      });
    }
    return 0;
  },
};

function describe(s: TrainSettings): string {
  const m = s.shape;
  return `nEmbd ${m.nEmbd}, nFf ${m.nFf}, ${m.nLayer} layers, ${m.nHead}/${m.nKvHead} heads; ${s.steps} steps × ${s.batch} × ${s.seqLen} tokens`;
}

/** The two loss curves as an SVG next to the card, drawn with lab/plot. */
async function saveLossFigure(outDir: string, runs: TrainResult[]): Promise<string> {
  const { Plot, renderFigure } = await import("../../plot/index.ts");
  const rows = runs.flatMap((r) => r.history.flatMap((h) => [
    { model: r.settings.name, split: "train", tokens: h.tokens, loss: h.trainLoss },
    ...(h.validLoss !== null ? [{ model: r.settings.name, split: "validation", tokens: h.tokens, loss: h.validLoss }] : []),
  ]));
  const svg = renderFigure({
    title: "Training loss", caption: "Lines: training loss (mean over 10 steps). Circles: validation loss.",
    width: 640, height: 320, grid: true, color: { legend: true },
    x: { label: "tokens seen" }, y: { label: "loss (nats/token, log scale)", type: "log" },
    marks: [
      Plot.line(rows.filter((r) => r.split === "train"), { x: "tokens", y: "loss", stroke: "model" }),
      Plot.dot(rows.filter((r) => r.split === "validation"), { x: "tokens", y: "loss", stroke: "model", symbol: "circle" }),
    ],
  });
  await writeFile(join(outDir, "loss.svg"), svg);
  return "loss.svg";
}
