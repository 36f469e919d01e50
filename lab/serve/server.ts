// `lab serve` as a function: startServer(options) → { url, models, status(), close() }.
//
// An OpenAI-compatible HTTP service (fastify) in front of the engine worker (worker.ts): the HTTP
// thread validates bodies against JSON schemas (openai.ts), applies backpressure, sends each
// request to the worker, and turns the worker's per-step text deltas into SSE chunks or one JSON
// response; it also keeps the Prometheus registry (metrics.ts). Nothing here computes a token, so
// /health and /metrics answer while the engine is saturated.
//
// Endpoints: POST /v1/completions, POST /v1/chat/completions (stream or not), GET /v1/models
// (one id per loaded quantization level), GET /v1/models/:id, GET /health, GET /metrics.
//
// Faults, each answered in OpenAI's error shape ({ error: { message, type, param, code } }):
// - a body that is not JSON, fails the schema, asks for an unsupported feature, names an unknown
//   model or a prompt that does not fit the context: 400, before any engine work;
// - more than maxQueue requests waiting for a batch: 429 with Retry-After (seconds, from the rate
//   at which requests have been finishing);
// - an exception inside one request (its callback, its tokenization): 500 for that request only (a
//   stream that already started gets an SSE error event instead); a step the engine refuses fails
//   the requests of that step; the service keeps serving;
// - a client that disconnects is cancelled: its KV blocks are freed at the next step;
// - close() (SIGTERM in the CLI): new requests get 503, in-flight ones finish (or, past drainMs,
//   are cancelled with an error), then the worker exits.
//
// Reading order: options, one request in flight, startServer (worker, routes, handlers), close.
import { randomUUID } from "node:crypto";
import { Worker } from "node:worker_threads";
import Fastify, { type FastifyReply, type FastifyRequest } from "fastify";
import type { EngineName } from "../engine/engine.ts";
import { llamaHparams, openGguf } from "../gguf/index.ts";
import { ServiceMetrics } from "./metrics.ts";
import { DEFAULT_MODELS, resolveModels } from "./models.ts";
import {
  HttpError, chatBodySchema, chatResponse, checkSupported, chunk, completionBodySchema, completionResponse, errorBody,
  toSubmit, usage, usageChunk, type Kind, type ResponseIds, type Usage,
} from "./openai.ts";
import type { FromWorker, LoadedModel, PrefixCacheChoice, RequestEvent, SubmitMessage, ToWorker, WorkerConfig } from "./protocol.ts";
import type { SchedulingMode } from "./scheduler.ts";

// ---------------------------------------------------------------------------------------------
// Options

export interface ServeOptions {
  /** "NAME[:LEVEL],…" or a list: NAME is target, draft or a GGUF path; LEVEL a llama-quantize name
   *  (quantized by lab/quant, cached in data/cache/quantization). Default "target:Q4_K_M". */
  models?: string | readonly string[];
  /** Default "lab". */
  engine?: EngineName;
  /** Default 127.0.0.1 (loopback only). */
  host?: string;
  /** 0 = any free port. Default 8080. */
  port?: number;
  /** Positions per sequence. Default min(training context, 1024). */
  contextSize?: number;
  /** Requests running at once per model. Default 16. */
  maxRunning?: number;
  /** Tokens one step may hold over all its rows. Default 256. */
  maxBatchTokens?: number;
  /** LabEngine KV pool in blocks. Default: room for maxRunning full contexts. */
  kvBlocks?: number;
  /** Positions per KV block. Default 16. */
  kvBlockSize?: number;
  /** Requests that may wait beyond the batch's maxRunning slots (per model); one more gets 429. Default 64. */
  maxQueue?: number;
  /** Default "off". */
  prefixCache?: PrefixCacheChoice;
  /** Default "continuous". */
  scheduling?: SchedulingMode;
  /** Default true. */
  chunkedPrefill?: boolean;
  /** Speculative decoding: a draft model ("draft", "draft:Q8_0", a path) or "ngram" (prompt lookup). */
  draft?: string;
  /** Draft tokens per decoding row. Default 2. */
  specK?: number;
  /** llama.cpp threads. Default 1. */
  threads?: number;
  /** Where quantized levels are cached. Default data/cache/quantization. */
  cacheDir?: string;
  /** Testing hook: `user: "lab-fault:throw-on-token"` makes that request's token callback throw. */
  faultInjection?: boolean;
  /** Lines about loading (quantizing a level, …). */
  onLog?: (line: string) => void;
}

export interface ServiceStatus {
  running: number;
  waiting: number;
  /** Accepted requests not yet answered (including those the worker has not acknowledged). */
  inFlight: number;
  kvBlocksUsed: number;
  kvBlocksTotal: number;
  /** Tokens generated since the server started (all models). */
  generatedTokens: number;
  requestsFinished: number;
  rssBytes: number;
  healthy: boolean;
  draining: boolean;
}

export interface ServerHandle {
  url: string;
  port: number;
  models: LoadedModel[];
  options: Required<Pick<ServeOptions, "engine" | "contextSize" | "maxRunning" | "maxBatchTokens" | "maxQueue" | "prefixCache" | "scheduling" | "chunkedPrefill" | "specK">> & { draft?: string };
  status(): ServiceStatus;
  /** Stops accepting (503), lets in-flight requests finish for up to drainMs (default 30 s), cancels
   *  the rest with an error, stops the worker. Idempotent. */
  close(opts?: { drainMs?: number }): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// One request in flight, as the HTTP thread sees it

interface Flight {
  id: string;
  model: string;
  /** performance.now() when the request arrived. */
  arrival: number;
  lastTokenAt?: number;
  acked: (m: { promptTokens: number } | { status: number; message: string; param?: string; code?: string }) => void;
  /** Called with each of its events; the last has `finish`. */
  onEvent: (e: RequestEvent) => void;
  finished: boolean;
}

function deferred<T>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => { resolve = r; });
  return { promise, resolve };
}

// ---------------------------------------------------------------------------------------------
// startServer

export async function startServer(opts: ServeOptions = {}): Promise<ServerHandle> {
  const engine = opts.engine ?? "lab";
  if (engine !== "lab" && engine !== "llama") throw new RangeError(`unknown engine "${engine}" (expected lab | llama)`);
  const models = await resolveModels(opts.models ?? DEFAULT_MODELS, { cacheDir: opts.cacheDir, onQuantize: opts.onLog });
  let contextSize = opts.contextSize;
  if (contextSize === undefined) {
    const hp = llamaHparams(await openGguf(models[0].path));
    contextSize = Math.min(hp.nCtxTrain, 1024);
  }
  const draftRef = opts.draft === undefined ? undefined : opts.draft === "ngram" ? "ngram" as const : (await resolveModels([opts.draft], { cacheDir: opts.cacheDir, onQuantize: opts.onLog }))[0];
  const config: WorkerConfig = {
    models, engine, contextSize,
    maxRunning: opts.maxRunning ?? 16,
    maxBatchTokens: opts.maxBatchTokens ?? 256,
    kvBlocks: opts.kvBlocks,
    kvBlockSize: opts.kvBlockSize ?? 16,
    prefixCache: opts.prefixCache ?? "off",
    mode: opts.scheduling ?? "continuous",
    chunkedPrefill: opts.chunkedPrefill ?? true,
    draft: draftRef,
    specK: opts.specK ?? 2,
    threads: opts.threads ?? 1,
    faultInjection: opts.faultInjection ?? false,
  };
  const maxQueue = opts.maxQueue ?? 64;
  if (!Number.isInteger(maxQueue) || maxQueue < 0) throw new RangeError(`maxQueue must be an integer >= 0, got ${maxQueue}`);

  // ---- the worker --------------------------------------------------------------------------
  const worker = new Worker(new URL("./worker.mjs", import.meta.url), { workerData: config });
  const send = (m: ToWorker) => worker.postMessage(m);
  const loaded = await new Promise<LoadedModel[]>((resolve, reject) => {
    const onMessage = (m: FromWorker) => {
      if (m.type === "ready") { worker.off("message", onMessage); resolve(m.models); }
      if (m.type === "fatal") { worker.off("message", onMessage); reject(new Error(m.message)); }
    };
    worker.on("message", onMessage);
    worker.once("error", reject);
    worker.once("exit", (code) => reject(new Error(`the engine worker exited (code ${code}) while loading`)));
  }).catch(async (err) => {
    await worker.terminate();
    throw err;
  });
  worker.removeAllListeners("error");
  worker.removeAllListeners("exit");

  const metrics = new ServiceMetrics(loaded);
  const flights = new Map<string, Flight>();
  const running = new Map<string, number>(loaded.map((m) => [m.id, 0]));
  const waiting = new Map<string, number>(loaded.map((m) => [m.id, 0]));
  const kv = new Map<string, { used: number; total: number }>(loaded.map((m) => [m.id, { used: 0, total: m.kvBlocksTotal }]));
  const finishTimes: number[] = []; // performance.now() of recent finishes, for Retry-After
  let generatedTokens = 0, requestsFinished = 0, rssBytes = process.memoryUsage().rss;
  let healthy = true, draining = false, closed = false;
  let drained = deferred<void>();

  const finishFlight = (f: Flight, e: RequestEvent) => {
    f.finished = true;
    flights.delete(f.id);
    requestsFinished++;
    finishTimes.push(performance.now());
    if (finishTimes.length > 256) finishTimes.splice(0, finishTimes.length - 256);
    const u = e.usage ?? { promptTokens: 0, completionTokens: 0, cachedTokens: 0 };
    metrics.finished(f.model, e.finish!, (performance.now() - f.arrival) / 1000, u.promptTokens, u.completionTokens);
  };

  worker.on("message", (m: FromWorker) => {
    if (m.type === "accepted" || m.type === "rejected") {
      const f = flights.get(m.id);
      if (!f) return;
      if (m.type === "rejected") flights.delete(m.id);
      f.acked(m.type === "accepted" ? { promptTokens: m.promptTokens } : m);
    } else if (m.type === "step") {
      const r = m.report;
      metrics.step(r, m.memory);
      running.set(r.model, r.running);
      waiting.set(r.model, r.waiting);
      kv.set(r.model, { used: r.kvBlocksUsed, total: r.kvBlocksTotal });
      rssBytes = m.memory.rssBytes;
      const now = performance.now();
      for (const e of m.events) {
        generatedTokens += e.tokens;
        const f = flights.get(e.id);
        if (!f) continue;
        if (e.tokens > 0) {
          if (f.lastTokenAt === undefined) metrics.firstToken(f.model, (now - f.arrival) / 1000);
          else metrics.interToken(f.model, (now - f.lastTokenAt) / 1000);
          f.lastTokenAt = now;
        }
        if (e.finish) finishFlight(f, e);
        f.onEvent(e);
      }
    } else if (m.type === "drained") {
      drained.resolve();
    }
  });
  const failAll = (message: string) => {
    healthy = false;
    for (const f of [...flights.values()]) {
      f.acked({ status: 500, message });
      const e: RequestEvent = { id: f.id, text: "", tokens: 0, finish: "error", error: message };
      finishFlight(f, e);
      f.onEvent(e);
    }
    drained.resolve();
  };
  worker.on("error", (err) => failAll(`the engine worker failed: ${err.message}`));
  worker.on("exit", (code) => { if (!closed) failAll(`the engine worker exited (code ${code})`); });

  // ---- HTTP ----------------------------------------------------------------------------------
  const app = Fastify({
    logger: false,
    bodyLimit: 16 * 1024 * 1024,
    // Wrong types are errors, not conversions ("5" is not an integer); no field is added or removed.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false } },
  });

  app.setErrorHandler((err: Error & { statusCode?: number; validation?: { instancePath: string; message?: string }[] }, _req, reply) => {
    let status = err instanceof HttpError ? err.status : err.statusCode ?? 500;
    let param: string | null = err instanceof HttpError ? err.param : null;
    let message = err.message;
    if (err.validation && err.validation.length > 0) {
      const v = err.validation[0];
      param = v.instancePath.replace(/^\//, "").replace(/\//g, ".") || null;
      message = `Invalid request: ${err.message}`;
      status = 400;
    }
    if (status < 400 || status > 599) status = 500;
    metrics.rejected(status);
    void reply.code(status).send(errorBody(status, message, param, err instanceof HttpError ? err.code : null));
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send(errorBody(404, `${req.method} ${req.url} is not an endpoint of this server (see GET /v1/models)`));
  });

  app.get("/health", async (_req, reply) => {
    if (!healthy || draining) return reply.code(503).send({ status: draining ? "draining" : "unhealthy" });
    return { status: "ok" };
  });

  app.get("/metrics", async (_req, reply) => {
    return reply.header("content-type", metrics.contentType).send(await metrics.text());
  });

  const modelObject = (m: LoadedModel) => ({
    id: m.id, object: "model", created: startedAt, owned_by: "inference-lab",
    root: m.source, level: m.level, engine: m.engine, max_model_len: m.contextSize,
    weight_bytes: m.weightBytes, bits_per_weight: m.bitsPerWeight,
  });
  const startedAt = Math.floor(Date.now() / 1000);
  app.get("/v1/models", async () => ({ object: "list", data: loaded.map(modelObject) }));
  app.get<{ Params: { id: string } }>("/v1/models/:id", async (req) => {
    const m = loaded.find((x) => x.id === req.params.id);
    if (!m) throw new HttpError(404, `The model "${req.params.id}" does not exist`, "model", "model_not_found");
    return modelObject(m);
  });

  /** Requests that must wait for a batch slot: per model, those beyond its maxRunning slots. (The
   *  scheduler may hold more back when KV blocks run short; this bound is on the slots, so it is
   *  known the moment a request arrives, without asking the worker.) */
  const queued = () => {
    const perModel = new Map<string, number>();
    for (const f of flights.values()) perModel.set(f.model, (perModel.get(f.model) ?? 0) + 1);
    let n = 0;
    for (const count of perModel.values()) n += Math.max(0, count - config.maxRunning);
    return n;
  };
  const flightsOf = (model: string) => { let n = 0; for (const f of flights.values()) if (f.model === model) n++; return n; };
  /** Seconds until a queue slot is likely free: the queue over the recent finishing rate. */
  const retryAfter = () => {
    const now = performance.now();
    const recent = finishTimes.filter((t) => now - t < 10_000);
    const rate = recent.length / 10;
    return rate > 0 ? Math.min(60, Math.max(1, Math.ceil((queued() - maxQueue + 1) / rate))) : 1;
  };

  const handle = (kind: Kind) => async (req: FastifyRequest, reply: FastifyReply) => {
    const arrival = performance.now();
    const body = req.body as Record<string, unknown>;
    checkSupported(body, kind);
    const model = body.model as string;
    if (!loaded.some((m) => m.id === model)) {
      throw new HttpError(400, `The model "${model}" does not exist; this server has: ${loaded.map((m) => m.id).join(", ")}`, "model", "model_not_found");
    }
    if (draining || !healthy) throw new HttpError(503, draining ? "the server is shutting down" : "the engine worker is not running");
    if (queued() >= maxQueue && flightsOf(model) >= config.maxRunning) {
      void reply.header("retry-after", String(retryAfter()));
      throw new HttpError(429, `too many requests: ${queued()} are waiting for a batch slot (--max-queue ${maxQueue}); retry later`, null, "rate_limit_exceeded");
    }
    const submit: SubmitMessage = { type: "submit", id: `${kind === "chat" ? "chatcmpl" : "cmpl"}-${randomUUID().replace(/-/g, "").slice(0, 24)}`, ...toSubmit(body, kind) };
    if (config.faultInjection && body.user === "lab-fault:throw-on-token") submit.fault = "throw-on-token";
    const ids: ResponseIds = { id: submit.id, created: Math.floor(Date.now() / 1000), model };
    const ack = deferred<Parameters<Flight["acked"]>[0]>();
    let onEvent: (e: RequestEvent) => void = () => {};
    const flight: Flight = { id: submit.id, model, arrival, acked: ack.resolve, onEvent: (e) => onEvent(e), finished: false };
    flights.set(submit.id, flight);
    // A client that goes away before its answer is complete is cancelled (KV freed next step).
    reply.raw.on("close", () => { if (!flight.finished) send({ type: "cancel", id: flight.id }); });
    send(submit);
    const acked = await ack.promise;
    if ("status" in acked) {
      const param = acked.param === "messages" && kind === "completion" ? "prompt" : acked.param ?? null;
      throw new HttpError(acked.status, acked.message, param, acked.code ?? null);
    }

    const stream = body.stream === true;
    if (!stream) {
      const parts: string[] = [];
      const done = deferred<RequestEvent>();
      onEvent = (e) => { parts.push(e.text); if (e.finish) done.resolve(e); };
      const last = await done.promise;
      if (last.finish === "error" || last.finish === "cancelled") {
        throw new HttpError(last.finish === "error" ? 500 : 503, last.error ?? "the request was cancelled (the server is shutting down)");
      }
      const u = usage(last.usage!);
      const text = parts.join("");
      return kind === "chat" ? chatResponse(ids, text, last.finish!, u) : completionResponse(ids, text, last.finish!, u);
    }

    // Streaming: SSE, one chunk per step that produced text, then the finish, usage, [DONE].
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", connection: "keep-alive", "x-request-id": ids.id });
    const write = (obj: unknown) => { if (!res.writableEnded && !res.destroyed) res.write(`data: ${JSON.stringify(obj)}\n\n`); };
    const includeUsage = (body.stream_options as { include_usage?: boolean } | null | undefined)?.include_usage === true;
    let first = kind === "chat";
    if (first) { write(chunk(kind, ids, "", null, true)); first = false; }
    onEvent = (e) => {
      if (e.text !== "") write(chunk(kind, ids, e.text, null));
      if (!e.finish) return;
      if (e.finish === "error" || e.finish === "cancelled") {
        write(errorBody(e.finish === "error" ? 500 : 503, e.error ?? "the request was cancelled (the server is shutting down)"));
      } else {
        write(kind === "chat" ? chunk(kind, ids, undefined, e.finish) : chunk(kind, ids, "", e.finish));
        if (includeUsage) write(usageChunk(kind, ids, usage(e.usage!) as Usage));
      }
      if (!res.writableEnded && !res.destroyed) res.end("data: [DONE]\n\n");
    };
  };

  app.post("/v1/completions", { schema: { body: completionBodySchema } }, handle("completion"));
  app.post("/v1/chat/completions", { schema: { body: chatBodySchema } }, handle("chat"));

  const host = opts.host ?? "127.0.0.1";
  try {
    await app.listen({ host, port: opts.port ?? 8080 });
  } catch (err) {
    closed = true;
    send({ type: "exit" });
    await worker.terminate();
    throw err;
  }
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : opts.port ?? 8080;

  // ---- close -----------------------------------------------------------------------------------
  let closing: Promise<void> | undefined;
  const close = (closeOpts: { drainMs?: number } = {}) => {
    closing ??= (async () => {
      draining = true;
      drained = deferred<void>();
      send({ type: "drain" });
      const httpClosed = app.close(); // no new connections; keep-alive ones get 503 for new requests
      const drainMs = closeOpts.drainMs ?? 30_000;
      const timer = setTimeout(() => {
        // Past the deadline: cancel what is left; each gets an error answer.
        for (const f of flights.values()) send({ type: "cancel", id: f.id });
      }, drainMs);
      if (flights.size > 0 && healthy) await drained.promise;
      clearTimeout(timer);
      await httpClosed;
      closed = true;
      send({ type: "exit" });
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => { void worker.terminate().then(() => resolve()); }, 10_000);
        worker.once("exit", () => { clearTimeout(t); resolve(); });
      });
    })();
    return closing;
  };

  const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
  return {
    url: `http://${host.includes(":") ? `[${host}]` : host}:${port}`,
    port,
    models: loaded,
    options: {
      engine, contextSize, maxRunning: config.maxRunning, maxBatchTokens: config.maxBatchTokens, maxQueue,
      prefixCache: config.prefixCache, scheduling: config.mode, chunkedPrefill: config.chunkedPrefill, specK: config.specK, draft: opts.draft,
    },
    status: () => ({
      running: sum(running), waiting: sum(waiting), inFlight: flights.size,
      kvBlocksUsed: [...kv.values()].reduce((a, b) => a + b.used, 0), kvBlocksTotal: [...kv.values()].reduce((a, b) => a + b.total, 0),
      generatedTokens, requestsFinished, rssBytes, healthy, draining,
    }),
    close,
  };
}
