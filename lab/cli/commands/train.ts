// `lab train`: trains the embedded models from the committed corpus and writes F32 GGUFs that
// llama.cpp runs, loss-curve CSVs, checkpoints (for --resume) and, for the full run, the model card.
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { UsageError } from "../../errors.ts";
import { defaultDataDir, loadTokenizer } from "../../data/index.ts";
import { buildCard, renderModelCard, type TrainedModel } from "../../train/card.ts";
import { CONFIG_NAMES, DATA_MIX, PHASES, phaseMix, tokenStreams, trainPhases, type ConfigName, type TrainMix } from "../../train/configs.ts";
import { exportGguf, importGguf } from "../../train/export.ts";
import { resultFromCheckpoint, resultFromLossCsv, train, type Progress, type TokenData, type TrainResult, type TrainSettings } from "../../train/trainer.ts";
import { compareWithLlamaCpp, type LlamaCppComparison } from "../../train/verify.ts";
import { numberFlag, parseFlags, printJson, say, type Command } from "../command.ts";

const help = `Usage: lab train [--config all|target|draft|smoke] [--out DIR] [--resume] [--workers N]
                 [--phase all|short|chat|long] [--init GGUF] [--steps N] [--chat-steps N] [--long-steps N]
                 [--eval-limit N] [--card-only] [--json]

Trains llama-architecture models in TypeScript (forward, backward, AdamW on worker threads) on the
tiny-world corpus with data/tokenizer.json, in three phases, each continuing from the one before:
  short   pretraining on 128-token windows of every task
  chat    the same windows with dialog added (data/corpus/dialog.train.txt: "User: … / Assistant: …"
          exchanges without the system prompt), so the model learns the answer form
  long    context extension on windows of the full context (1,024; smoke 256) that start at a
          document, so chat transcripts (919-token system prompt, then exchanges) are seen whole
Writes for each model:
  DIR/<name>.gguf          F32 GGUF of the last phase, tokenizer embedded; checked against llama.cpp
  DIR/<name>-loss.csv      step, tokens, lr, train_loss, valid_loss, grad_norm, seconds (short phase)
  DIR/<name>-chat-loss.csv, <name>-long-loss.csv   the same for the later phases
  DIR/checkpoints/<name>{,-chat,-long}.ckpt   parameters + Adam state, for --resume
With --config all (the default) it trains the draft, then the target, and writes DIR/README.md,
the model card (eval accuracies, chat, loss by position, agreement, samples) and DIR/card.json.

Options:
  --config NAME    all (default) | target | draft | smoke (seconds; what CI runs)
  --out DIR        output directory (default data/models; smoke: a temp directory)
  --resume         continue each phase from its checkpoint when present (same settings); a finished
                   phase is not rerun, and the next starts from its weights
  --workers N      gradient threads (default 2)
  --phase P        all (default) | short | chat | long: that phase only; chat and long start from the
                   previous phase's checkpoint, or --init
  --init GGUF      the phase given by --phase starts from this F32 model instead of the previous
                   phase's checkpoint (e.g. a model an earlier run wrote)
  --steps N        override the short phase's steps (changes the schedule; for experiments)
  --chat-steps N   override the chat phase's steps
  --long-steps N   override the long phase's steps
  --eval-limit N   model card: use the first N items of each eval set (default: all)
  --card-only      skip training: write the model card from DIR/checkpoints/{target,draft}{,-chat,-long}.ckpt;
                   a phase without its checkpoint is read from DIR/<name>[-chat|-long]-loss.csv, the last
                   phase's weights then from DIR/{target,draft}.gguf (so \`lab train --card-only --out
                   data/models\` rebuilds the committed card from the committed files)
  --json           print a JSON summary on stdout

Examples:
  lab train --config smoke
  lab train                       # both embedded models, all phases + model card, ~60 min on 2 cores
  lab train --resume              # pick up where an interrupted run stopped
  lab train --config target --phase chat --init data/models/target.gguf   # later phases only
`;

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
    const line = `${p.name.padEnd(11)} ${bar} ${String(p.step).padStart(5)}/${p.steps} loss ${p.trainLoss.toFixed(3)}` +
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
      phase: { type: "string" }, init: { type: "string" }, steps: { type: "string" }, "chat-steps": { type: "string" }, "long-steps": { type: "string" },
      "eval-limit": { type: "string" }, "card-only": { type: "boolean" }, json: { type: "boolean" },
    });
    if (values["card-only"] && values.config !== undefined && values.config !== "all") {
      throw new UsageError("lab train: --card-only writes the card for target and draft; drop --config");
    }
    const config = values.config ?? "all";
    if (config !== "all" && !(CONFIG_NAMES as readonly string[]).includes(config)) {
      throw new UsageError(`lab train: --config must be all, ${CONFIG_NAMES.join(", ")}; got "${config}"`);
    }
    const phase = values.phase ?? "all";
    if (phase !== "all" && !(PHASES as readonly string[]).includes(phase)) throw new UsageError(`lab train: --phase must be all, ${PHASES.join(", ")}; got "${phase}"`);
    if (values.init !== undefined && (phase === "short" || phase === "all")) throw new UsageError("lab train: --init sets the starting weights of the phase --phase names (chat or long)");
    if (values.init !== undefined && config === "all") throw new UsageError("lab train: --init is one model's weights; pick it with --config target|draft|smoke");
    if (config === "all" && phase !== "all" && !values["card-only"]) throw new UsageError("lab train: the model card needs every phase; use --config target|draft with --phase");
    const workers = numberFlag("train", "workers", values.workers, 2, { min: 0, max: 64, integer: true });
    const steps = values.steps === undefined ? undefined : numberFlag("train", "steps", values.steps, 0, { min: 1, integer: true });
    const chatSteps = values["chat-steps"] === undefined ? undefined : numberFlag("train", "chat-steps", values["chat-steps"], 0, { min: 1, integer: true });
    const longSteps = values["long-steps"] === undefined ? undefined : numberFlag("train", "long-steps", values["long-steps"], 0, { min: 1, integer: true });
    const evalLimit = values["eval-limit"] === undefined ? undefined : numberFlag("train", "eval-limit", values["eval-limit"], 0, { min: 1, integer: true });
    const outDir = resolve(values.out ?? (config === "smoke" ? join(tmpdir(), "lab-train-smoke") : join(defaultDataDir(), "models")));
    const ckptDir = join(outDir, "checkpoints");
    await mkdir(ckptDir, { recursive: true });

    const tokenizer = loadTokenizer();
    const t0 = performance.now();
    const streamCache = new Map<TrainMix, TokenData>();
    const streamsFor = (s: TrainSettings): TokenData => {
      const mix = phaseMix(s);
      if (!streamCache.has(mix)) streamCache.set(mix, tokenStreams(tokenizer, { mix }));
      return streamCache.get(mix)!;
    };
    const streams = tokenStreams(tokenizer);
    streamCache.set(DATA_MIX, streams);
    say(`lab train: ${streams.train.length.toLocaleString("en-US")} training tokens (short phase), ` +
      `${streams.valid.length.toLocaleString("en-US")} validation tokens (${((performance.now() - t0) / 1000).toFixed(1)} s to tokenize)`);

    const names: ConfigName[] = config === "all" ? ["draft", "target"] : [config as ConfigName];
    const results = new Map<ConfigName, TrainedModel>();
    const withSteps = (base: TrainSettings, n: number | undefined): TrainSettings =>
      n ? { ...base, steps: n, checkpointEvery: Math.min(base.checkpointEvery, n) } : base;
    for (const name of names) {
      const [shortBase, chatBase, longBase] = trainPhases(name, tokenizer.vocabSize);
      const all = [withSteps(shortBase, steps), withSteps(chatBase, chatSteps), withSteps(longBase, longSteps)];
      const phases: TrainResult[] = [];
      const ckptOf = (s: TrainSettings) => join(ckptDir, `${s.name}.ckpt`), csvOf = (s: TrainSettings) => join(outDir, `${s.name}-loss.csv`);
      if (values["card-only"]) {
        for (const s of all) {
          // An earlier phase whose checkpoint is gone (e.g. it ran in an earlier session and the next
          // phase started from its GGUF with --init) is read from its loss CSV; the last needs weights.
          const gguf = join(outDir, `${name}.gguf`);
          if (s !== all.at(-1) && !existsSync(ckptOf(s)) && existsSync(csvOf(s))) {
            say(`lab train: ${s.name}: no checkpoint; its record is read from ${relative(process.cwd(), csvOf(s))} (a later phase holds the weights)`);
            phases.push(await resultFromLossCsv(csvOf(s), s));
          } else if (s === all.at(-1) && !existsSync(ckptOf(s)) && existsSync(csvOf(s)) && existsSync(gguf)) {
            // The committed models: data/models holds each phase's loss CSV and the final weights as
            // F32 GGUF (exact: the trainer's weights are f32), so the card is rebuilt without training.
            const weights = await importGguf(gguf);
            const want = s.shape, got = weights.shape;
            const dims = ["nVocab", "nEmbd", "nFf", "nHead", "nKvHead", "nLayer", "headDim"] as const;
            const differ = dims.filter((k) => want[k] !== got[k]);
            if (differ.length) throw new UsageError(`lab train: ${relative(process.cwd(), gguf)} is not the ${name} config's shape (${differ.map((k) => `${k} ${got[k]}, config ${want[k]}`).join("; ")})`);
            say(`lab train: ${s.name}: no checkpoint; its record is read from ${relative(process.cwd(), csvOf(s))}, its weights from ${relative(process.cwd(), gguf)}`);
            phases.push({ ...(await resultFromLossCsv(csvOf(s), s)), params: weights.params });
          } else {
            phases.push(await resultFromCheckpoint(ckptOf(s)));
          }
        }
        say(`lab train: ${name}: from its checkpoints (${phases.map((r) => `${r.settings.name} ${r.history.at(-1)?.step ?? 0}/${r.settings.steps}`).join(", ")})`);
      } else {
        const run = async (s: TrainSettings, init?: Float32Array) => {
          say(`lab train: ${s.name}: ${describe(s)}`);
          const r = await train(s, streamsFor(s), { outDir, checkpointDir: ckptDir, resume: values.resume, workers, onProgress: progressPrinter(), init });
          say(`lab train: ${s.name}: valid loss ${r.finalValidLoss.toFixed(3)} on ${s.seqLen}-token windows; ${(r.seconds / 60).toFixed(1)} min`);
          return r;
        };
        const first = phase === "all" ? 0 : PHASES.indexOf(phase as (typeof PHASES)[number]);
        const last = phase === "all" ? all.length - 1 : first;
        let init: Float32Array | undefined;
        if (first > 0) {
          const before = all[first - 1];
          if (values.init !== undefined) {
            init = (await importGguf(values.init)).params;
            say(`lab train: ${all[first].name}: starting from ${values.init}`);
          } else if (existsSync(ckptOf(before))) {
            phases.push(await resultFromCheckpoint(ckptOf(before)));
            init = phases[0].params;
          } else {
            throw new UsageError(`lab train: --phase ${phase} needs the ${before.phase ?? "short"} phase's checkpoint ${ckptOf(before)} or --init GGUF`);
          }
        }
        for (let i = first; i <= last; i++) {
          const r = await run(all[i], init);
          phases.push(r);
          init = r.params;
        }
      }
      const final = phases.at(-1)!;
      const gguf = join(outDir, `${name}.gguf`);
      await exportGguf(gguf, final.settings.shape, final.params, tokenizer, `inference-lab-${name}`);
      const probe = Array.from(streams.valid.subarray(0, 64));
      const check = await compareWithLlamaCpp(gguf, final.settings.shape, final.params, probe);
      say(`lab train: ${name}: wrote ${relative(process.cwd(), gguf)}; ` +
        `llama.cpp max |Δ log p| ${check.maxAbsDiff.toExponential(2)} over ${check.positions} positions; ${(phases.reduce((t, r) => t + r.seconds, 0) / 60).toFixed(1)} min in all`);
      results.set(name, { ...final, phases, gguf, llamaCpp: check });
    }

    let card: Awaited<ReturnType<typeof buildCard>> | undefined;
    if (config === "all") {
      say("lab train: evaluating for the model card …");
      const target = results.get("target")!, draft = results.get("draft")!;
      card = await buildCard(target, draft, tokenizer, streams, evalLimit);
      card.target.llamaCpp = target.llamaCpp;
      card.draft.llamaCpp = draft.llamaCpp;
      const lossFigure = await saveLossFigure(outDir, [...draft.phases, ...target.phases]).catch((err) => { say(`lab train: no loss figure (${(err as Error).message})`); return undefined; });
      await writeFile(join(outDir, "card.json"), JSON.stringify(card, null, 2) + "\n");
      await writeFile(join(outDir, "README.md"), renderModelCard(card, {
        lossFigure, command: "lab train", machine: `${workers} worker threads`,
      }));
      say(`lab train: wrote ${relative(process.cwd(), join(outDir, "README.md"))}`);
    }
    if (values.json) {
      printJson({
        outDir,
        models: [...results.entries()].map(([name, r]) => ({
          name, gguf: r.gguf, llamaCppMaxAbsDiff: r.llamaCpp?.maxAbsDiff ?? null,
          phases: r.phases.map((p) => ({
            name: p.settings.name, seqLen: p.settings.seqLen, steps: p.history.at(-1)?.step ?? 0, tokensSeen: p.tokensSeen,
            seconds: p.seconds, finalValidLoss: p.finalValidLoss, finalTrainLoss: p.history.at(-1)?.trainLoss ?? null,
          })),
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
  // A later phase follows the phases before it in `runs` (a model's short phase starts the count):
  // its tokens count on from there.
  const offset: number[] = [];
  runs.forEach((r, i) => offset.push(r.settings.phase && i > 0 ? offset[i - 1] + runs[i - 1].tokensSeen : 0));
  const rows = runs.flatMap((r, i) => r.history.flatMap((h) => [
    { model: r.settings.name, split: "train", tokens: offset[i] + h.tokens, loss: h.trainLoss },
    ...(h.validLoss !== null ? [{ model: r.settings.name, split: "validation", tokens: offset[i] + h.tokens, loss: h.validLoss }] : []),
  ]));
  const svg = renderFigure({
    title: "Training loss", caption: "Lines: training loss (mean over 10 steps). Circles: validation loss on the phase's window length (128; 1,024 tokens for the -long phases).",
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
