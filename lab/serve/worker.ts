// The engine side of `lab serve`, run in a worker thread (worker.mjs is its entry): one engine and
// one continuous-batching Scheduler per model, the prefix cache and the drafter each scheduler
// uses, and the loop that steps them. The HTTP thread (server.ts) only ever sees the messages of
// protocol.ts.
//
// The loop: while any scheduler has requests, step each one that has (one forward pass each,
// models in turn), post one "step" message per model step with every request's new text, and let
// the thread's message queue run between steps (setImmediate) so submits and cancels land at once —
// a cancel is applied at the next step, which frees the request's KV blocks. With nothing to do
// the loop waits for a message instead of spinning.
//
// Reading order: per-model hosts (opening engines, caches, drafters), one request's life
// (submit → tokens → text → finish), the loop, the message handler.
import { getPriority, setPriority } from "node:os";
import type { MessagePort } from "node:worker_threads";
import { EngineError, openEngine, type Engine } from "../engine/engine.ts";
import { Sampler } from "../engine/sampler.ts";
import { openPrefixCache, type PrefixCache } from "../prefix-cache/index.ts";
import { checkSameVocabulary } from "../speculative/generate.ts";
import { ModelDrafter } from "../speculative/drafters.ts";
import { ModelBatchDrafter, NgramBatchDrafter } from "./drafter.ts";
import { Scheduler, type BatchDrafter, type StepStats } from "./scheduler.ts";
import { TextStream } from "./text.ts";
import type { FromWorker, LoadedModel, ModelEntry, RequestEvent, StepReport, SubmitMessage, ToWorker, WorkerConfig } from "./protocol.ts";

// ---------------------------------------------------------------------------------------------
// One model: its engine, scheduler, cache and drafter

interface Host {
  info: LoadedModel;
  engine: Engine;
  scheduler: Scheduler;
  cache?: PrefixCache;
  drafter?: BatchDrafter & { dispose?: () => Promise<void> };
  draftEngine?: Engine;
  /** Requests of this model the worker still tracks (accepted, not yet reported finished). */
  live: Map<string, Live>;
  /** Requests whose step threw: they are cancelled and reported as errors with this message. */
  failing: Map<string, string>;
  counters: { prefixQueryTokens: number; prefixHitTokens: number };
}

interface Live {
  stream: TextStream;
  promptTokens: number;
  /** Prompt tokens the prefix cache supplied at the request's first admission. */
  cachedTokens: number;
  admitted: boolean;
  /** Generated tokens already reported. */
  reported: number;
}

async function openHost(entry: ModelEntry, config: WorkerConfig): Promise<Host> {
  // The slot cache keeps one live sequence per slot; the other caches hold blocks, not sequences.
  const engine = await openEngine(config.engine, entry.path, {
    contextSize: config.contextSize, maxSequences: config.maxRunning, threads: config.threads,
    kvBlockSize: config.kvBlockSize, kvBlocks: config.kvBlocks,
  });
  try {
    if (config.contextSize > engine.hparams.nCtxTrain) {
      throw new EngineError(`context ${config.contextSize} is longer than ${entry.id}'s training context of ${engine.hparams.nCtxTrain}`);
    }
    let cache: PrefixCache | undefined;
    if (config.prefixCache !== "off") {
      if (config.prefixCache !== "slot" && !engine.kv) {
        throw new EngineError(`--prefix-cache ${config.prefixCache} shares KV blocks between sequences, which only the lab engine can (use slot with --engine llama)`);
      }
      cache = openPrefixCache(config.prefixCache, engine);
    }
    let drafter: Host["drafter"];
    let draftEngine: Engine | undefined;
    if (config.draft === "ngram") {
      drafter = new NgramBatchDrafter(engine.tokenizer.vocabSize);
    } else if (config.draft) {
      draftEngine = await openEngine(config.engine, config.draft.path, {
        contextSize: config.contextSize, maxSequences: config.maxRunning, threads: config.threads, kvBlockSize: config.kvBlockSize,
      });
      checkSameVocabulary(engine, new ModelDrafter(draftEngine));
      drafter = new ModelBatchDrafter(draftEngine);
    }
    const scheduler = new Scheduler(engine, {
      mode: config.mode, maxBatchTokens: config.maxBatchTokens, maxRunning: config.maxRunning,
      chunkedPrefill: config.chunkedPrefill, prefixCache: cache,
      speculative: drafter ? { drafter, k: config.specK } : undefined,
      // llama.cpp picks a greedy token itself, without building a 1,024-entry probability map.
      nativeGreedy: config.engine === "llama",
    });
    const mem = engine.memory();
    const info: LoadedModel = {
      ...entry, engine: config.engine, contextSize: engine.contextSize, weightBytes: mem.weightBytes, fileBytes: mem.fileBytes,
      bitsPerWeight: mem.bitsPerWeight, kvBlocksTotal: mem.kv.blocksTotal, kvBlockSize: mem.kv.blockSize,
      kvBytesPerBlock: mem.kv.bytesPerBlock, nVocab: engine.hparams.nVocab,
    };
    return { info, engine, scheduler, cache, drafter, draftEngine, live: new Map(), failing: new Map(), counters: { prefixQueryTokens: 0, prefixHitTokens: 0 } };
  } catch (err) {
    await engine.dispose();
    throw err;
  }
}

async function closeHost(h: Host): Promise<void> {
  await h.drafter?.dispose?.();
  await h.draftEngine?.dispose();
  await h.cache?.dispose();
  await h.engine.dispose();
}

// ---------------------------------------------------------------------------------------------
// The worker

export class EngineWorker {
  private hosts = new Map<string, Host>();
  private wake: (() => void) | undefined;
  private draining = false;
  private exiting = false;
  private memoryAt = -Infinity;
  private lastMemory = { rssBytes: 0, heapUsedBytes: 0 };

  constructor(private readonly port: MessagePort, private readonly config: WorkerConfig) {}

  private post(m: FromWorker): void {
    this.port.postMessage(m);
  }

  async start(): Promise<void> {
    // The HTTP thread must answer (/health, SSE writes) while this thread computes. On Linux a nice
    // value belongs to a thread, so this thread alone steps back by 5 and yields the CPU to the HTTP
    // thread when both want it (elsewhere it would renice the whole process: left alone).
    if (process.platform === "linux") {
      try { setPriority(Math.min(19, getPriority() + 5)); } catch { /* not permitted: keep it */ }
    }
    try {
      for (const entry of this.config.models) this.hosts.set(entry.id, await openHost(entry, this.config));
    } catch (err) {
      for (const h of this.hosts.values()) await closeHost(h);
      this.post({ type: "fatal", message: err instanceof Error ? err.message : String(err) });
      return;
    }
    this.port.on("message", (m: ToWorker) => this.onMessage(m));
    this.post({ type: "ready", models: [...this.hosts.values()].map((h) => h.info) });
    await this.loop();
    for (const h of this.hosts.values()) await closeHost(h);
    this.port.close();
  }

  // -------------------------------------------------------------------------------------------
  // A request's life: submit → (tokens → text)* → finish

  /** Tokenizes and checks a request; it is queued, or refused with an OpenAI-style 400. */
  private submit(m: SubmitMessage): void {
    const reject = (status: number, message: string, param?: string, code?: string) =>
      this.post({ type: "rejected", id: m.id, status, message, param, code });
    const host = this.hosts.get(m.model);
    if (!host) return reject(404, `The model "${m.model}" does not exist`, "model", "model_not_found");
    if (this.draining) return reject(503, "the server is shutting down");
    const { engine, scheduler } = host;
    let prompt: number[];
    if ("text" in m.prompt) prompt = engine.tokenizer.encode(m.prompt.text, { bos: true });
    else {
      prompt = m.prompt.tokens;
      const bad = prompt.find((t) => !Number.isInteger(t) || t < 0 || t >= engine.hparams.nVocab);
      if (bad !== undefined) return reject(400, `token id ${bad} is outside the vocabulary [0, ${engine.hparams.nVocab})`, "prompt");
      if (prompt.length === 0) return reject(400, "the prompt is empty", "prompt");
    }
    const ctx = engine.contextSize;
    if (prompt.length >= ctx) {
      return reject(400, `This model's maximum context length is ${ctx} tokens. However, your prompt has ${prompt.length} tokens, which leaves no room to generate.`, "messages", "context_length_exceeded");
    }
    if (m.maxTokens !== undefined && prompt.length + m.maxTokens > ctx) {
      return reject(400, `This model's maximum context length is ${ctx} tokens. However, you requested ${prompt.length + m.maxTokens} tokens (${prompt.length} in the prompt, ${m.maxTokens} in the completion). Please reduce the length of the prompt or max_tokens.`, "max_tokens", "context_length_exceeded");
    }
    let sampler: Sampler;
    try {
      sampler = new Sampler({ temperature: m.temperature, topK: m.topK, topP: m.topP, seed: m.seed });
    } catch (err) {
      return reject(400, (err as Error).message);
    }
    const stream = new TextStream(engine.tokenizer, prompt, m.stop, m.trimLeadingSpace);
    const live: Live = { stream, promptTokens: prompt.length, cachedTokens: 0, admitted: false, reported: 0 };
    let faultAt = m.fault === "throw-on-token" && this.config.faultInjection ? 2 : -1;
    try {
      scheduler.submit({
        id: m.id, prompt, maxTokens: m.maxTokens ?? ctx - prompt.length, sampler, stopAtEos: m.stopAtEos,
        stop: (generated) => stream.update(generated),
        onToken: faultAt > 0 ? (_t, record) => {
          if (record.generated.length === faultAt) { faultAt = -1; throw new Error("injected fault (lab-fault:throw-on-token)"); }
        } : undefined,
      });
    } catch (err) {
      return reject(400, (err as Error).message);
    }
    host.live.set(m.id, live);
    this.post({ type: "accepted", id: m.id, promptTokens: prompt.length });
    this.wake?.();
  }

  /** After a step: every touched request's new text, and a finish with its usage. */
  private events(host: Host, stats: StepStats | undefined): RequestEvent[] {
    const events: RequestEvent[] = [];
    if (!stats) return events;
    for (const id of stats.admitted) {
      const live = host.live.get(id);
      if (!live || live.admitted) continue; // a readmission after preemption is not a new lookup
      live.admitted = true;
      live.cachedTokens = host.scheduler.record(id)?.cachedTokens ?? 0;
      if (host.cache) {
        host.counters.prefixQueryTokens += live.promptTokens;
        host.counters.prefixHitTokens += live.cachedTokens;
      }
    }
    const touched = new Set([...stats.scheduled.map((s) => s.id), ...stats.finished]);
    for (const id of touched) {
      const live = host.live.get(id);
      const record = host.scheduler.record(id);
      if (!live || !record) continue;
      const finished = record.state === "finished";
      const tokens = record.generated.length - live.reported;
      live.reported = record.generated.length;
      if (!finished) live.stream.update(record.generated); // no-op when the stop callback already did
      const text = live.stream.take(finished);
      if (!finished && tokens === 0 && text === "") continue;
      const event: RequestEvent = { id, text, tokens };
      if (finished) {
        let reason = record.finishReason!;
        let error = record.error;
        if (host.failing.has(id)) { reason = "error"; error = host.failing.get(id); host.failing.delete(id); }
        event.finish = reason;
        if (error) event.error = error;
        // A request cut off by its context reports "length", as OpenAI does.
        event.usage = { promptTokens: live.promptTokens, completionTokens: record.generated.length, cachedTokens: live.cachedTokens };
        host.live.delete(id);
      }
      events.push(event);
    }
    return events;
  }

  private report(host: Host, stats: StepStats | undefined, stepMs: number): StepReport {
    // The step's own counts when it ran (engine.memory() reads the process's RSS: not per step).
    const kv = stats ?? (() => { const k = host.engine.memory().kv; return { kvBlocksUsed: k.blocksUsed, kvBlocksFree: k.blocksFree }; })();
    const r: StepReport = {
      model: host.info.id, running: host.scheduler.runningCount, waiting: host.scheduler.waitingCount,
      kvBlocksUsed: kv.kvBlocksUsed, kvBlocksFree: kv.kvBlocksFree, kvBlocksTotal: host.info.kvBlocksTotal,
      prefixQueryTokens: host.counters.prefixQueryTokens, prefixHitTokens: host.counters.prefixHitTokens,
      preemptions: stats?.preempted.length ?? 0,
      specDrafts: stats?.draftRows ?? 0, specDraftTokens: stats?.draftTokens ?? 0, specAcceptedTokens: stats?.acceptedTokens ?? 0,
      prefillTokens: stats?.prefillTokens ?? 0, decodeTokens: stats?.decodeTokens ?? 0, rows: stats?.rows ?? 0, stepMs,
    };
    host.counters.prefixQueryTokens = host.counters.prefixHitTokens = 0;
    return r;
  }

  // -------------------------------------------------------------------------------------------
  // The loop

  private async loop(): Promise<void> {
    for (;;) {
      // Let submits and cancels that arrived during the last step in.
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (this.exiting) return;
      const busy = [...this.hosts.values()].filter((h) => h.scheduler.pending > 0);
      if (busy.length === 0) {
        if (this.draining) this.post({ type: "drained" });
        await new Promise<void>((resolve) => { this.wake = resolve; });
        this.wake = undefined;
        continue;
      }
      for (const host of busy) await this.stepHost(host);
    }
  }

  private async stepHost(host: Host): Promise<void> {
    const t0 = performance.now();
    let stats: StepStats | undefined;
    try {
      stats = await host.scheduler.step();
    } catch (err) {
      // The engine refused the whole step (it writes nothing then): every request of this model
      // that is waiting or running fails with the reason, and the next step releases them.
      const message = `the engine failed a step: ${err instanceof Error ? err.message : String(err)}`;
      for (const id of host.live.keys()) {
        if (host.scheduler.cancel(id)) host.failing.set(id, message);
      }
    }
    const events = this.events(host, stats);
    if (stats && stats.finished.length > 0) host.scheduler.forgetFinished(); // their records were read above
    this.post({ type: "step", report: this.report(host, stats, performance.now() - t0), events, memory: this.memory() });
  }

  /** RSS and heap, read at most every 250 ms (process.memoryUsage() is a system call). */
  private memory(): { rssBytes: number; heapUsedBytes: number } {
    const now = performance.now();
    if (now - this.memoryAt > 250) {
      const m = process.memoryUsage();
      this.lastMemory = { rssBytes: m.rss, heapUsedBytes: m.heapUsed };
      this.memoryAt = now;
    }
    return this.lastMemory;
  }

  // -------------------------------------------------------------------------------------------
  // Messages from the HTTP thread

  private onMessage(m: ToWorker): void {
    try {
      if (m.type === "submit") this.submit(m);
      else if (m.type === "cancel") {
        for (const h of this.hosts.values()) h.scheduler.cancel(m.id);
      } else if (m.type === "drain") {
        this.draining = true;
      } else if (m.type === "exit") {
        this.exiting = true;
        for (const h of this.hosts.values()) for (const id of h.live.keys()) h.scheduler.cancel(id);
      }
    } catch (err) {
      if (m.type === "submit") this.post({ type: "rejected", id: m.id, status: 500, message: err instanceof Error ? err.message : String(err) });
    }
    this.wake?.();
  }
}
