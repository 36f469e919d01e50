// The service's Prometheus metrics (prom-client), named as vLLM names them, so a vLLM user's
// dashboards, alerts and the kit's `lab loadtest` read this server and a vLLM one alike:
//
//   vllm:num_requests_running / _waiting        gauge      requests in a batch / queued, per model
//   vllm:kv_cache_usage_perc                    gauge      KV blocks in use ÷ blocks in the pool (0..1)
//   vllm:prefix_cache_queries_total / _hits     counter    prompt TOKENS looked up / found cached
//   vllm:time_to_first_token_seconds            histogram  HTTP arrival → first token leaves the engine
//   vllm:inter_token_latency_seconds            histogram  gap between a request's successive token events
//   vllm:e2e_request_latency_seconds            histogram  HTTP arrival → last token
//   vllm:prompt_tokens_total / generation_tokens_total   counter   the sums of every response's usage
//   vllm:request_success_total{finished_reason}          counter   stop | length
//   vllm:num_preemptions_total                  counter    requests preempted (KV pool full)
//   vllm:spec_decode_num_drafts_total / _num_draft_tokens_total / _num_accepted_tokens_total
//   lab:kv_cache_blocks{state="used"|"free"}    gauge      the pool in blocks (llama.cpp: token cells)
//   lab:model_weight_bytes                      gauge      weights resident per model (quantization level)
//   lab:engine_heap_used_bytes                  gauge      the engine worker's own V8 heap
//   lab:request_failures_total{reason}          counter    cancelled (client went away) | error
//   lab:http_rejections_total{status}           counter    400 / 429 / 503 answered before any engine work
//   lab:engine_step_seconds                     histogram  one scheduler step of one model
//   process_resident_memory_bytes, nodejs_heap_size_used_bytes, …  prom-client's default process metrics
//
// Every latency is measured on the HTTP thread (what a client sees, minus the network), and every
// series carries model_name, as vLLM's do. One registry per server, so several servers in one
// process (tests, notebooks) never share counters.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { LoadedModel, StepReport, WorkerMemory } from "./protocol.ts";

// vLLM's buckets (vllm/v1/metrics/loggers.py), with finer ones below 10 ms: a CPU step of a small
// model takes a few milliseconds.
const TTFT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80];
const ITL_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 10];
const E2E_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480];

export class ServiceMetrics {
  readonly registry = new Registry();
  private readonly m;

  constructor(models: readonly LoadedModel[]) {
    const registers = [this.registry];
    const model = ["model_name"] as const;
    this.m = {
      running: new Gauge({ name: "vllm:num_requests_running", help: "Requests in the running batch.", labelNames: model, registers }),
      waiting: new Gauge({ name: "vllm:num_requests_waiting", help: "Requests waiting to be admitted to the batch.", labelNames: model, registers }),
      kvUsage: new Gauge({ name: "vllm:kv_cache_usage_perc", help: "KV-cache usage: blocks in use / blocks in the pool (1 = full).", labelNames: model, registers }),
      kvBlocks: new Gauge({ name: "lab:kv_cache_blocks", help: "KV-cache blocks by state (llama.cpp: one-token cells).", labelNames: ["model_name", "state"] as const, registers }),
      prefixQueries: new Counter({ name: "vllm:prefix_cache_queries_total", help: "Prompt tokens looked up in the prefix cache (first admission of each request).", labelNames: model, registers }),
      prefixHits: new Counter({ name: "vllm:prefix_cache_hits_total", help: "Prompt tokens found in the prefix cache.", labelNames: model, registers }),
      ttft: new Histogram({ name: "vllm:time_to_first_token_seconds", help: "Time to first token: HTTP arrival to the first generated token.", labelNames: model, buckets: TTFT_BUCKETS, registers }),
      itl: new Histogram({ name: "vllm:inter_token_latency_seconds", help: "Time between a request's successive token events.", labelNames: model, buckets: ITL_BUCKETS, registers }),
      e2e: new Histogram({ name: "vllm:e2e_request_latency_seconds", help: "End-to-end latency: HTTP arrival to the last token.", labelNames: model, buckets: E2E_BUCKETS, registers }),
      promptTokens: new Counter({ name: "vllm:prompt_tokens_total", help: "Prompt tokens of finished requests (their usage.prompt_tokens).", labelNames: model, registers }),
      generationTokens: new Counter({ name: "vllm:generation_tokens_total", help: "Generated tokens of finished requests (their usage.completion_tokens).", labelNames: model, registers }),
      success: new Counter({ name: "vllm:request_success_total", help: "Requests finished with an answer, by finish reason.", labelNames: ["model_name", "finished_reason"] as const, registers }),
      preemptions: new Counter({ name: "vllm:num_preemptions_total", help: "Requests preempted because the KV pool was full (recomputed later).", labelNames: model, registers }),
      specDrafts: new Counter({ name: "vllm:spec_decode_num_drafts_total", help: "Speculative rows: decoding rows that carried draft tokens.", labelNames: model, registers }),
      specDraftTokens: new Counter({ name: "vllm:spec_decode_num_draft_tokens_total", help: "Draft tokens verified.", labelNames: model, registers }),
      specAccepted: new Counter({ name: "vllm:spec_decode_num_accepted_tokens_total", help: "Draft tokens accepted.", labelNames: model, registers }),
      weights: new Gauge({ name: "lab:model_weight_bytes", help: "Weight bytes the engine keeps resident, per model (its quantization level).", labelNames: ["model_name", "level"] as const, registers }),
      engineHeap: new Gauge({ name: "lab:engine_heap_used_bytes", help: "V8 heap used by the engine worker thread.", registers }),
      failures: new Counter({ name: "lab:request_failures_total", help: "Accepted requests that ended without an answer: cancelled (the client went away) or error.", labelNames: ["model_name", "reason"] as const, registers }),
      rejections: new Counter({ name: "lab:http_rejections_total", help: "Requests refused before any engine work, by HTTP status.", labelNames: ["status"] as const, registers }),
      step: new Histogram({ name: "lab:engine_step_seconds", help: "One scheduler step of one model (a forward pass over the batch).", labelNames: model, buckets: ITL_BUCKETS, registers }),
    };
    collectDefaultMetrics({ register: this.registry });
    for (const info of models) {
      this.m.weights.set({ model_name: info.id, level: info.level }, info.weightBytes);
      this.m.running.set({ model_name: info.id }, 0);
      this.m.waiting.set({ model_name: info.id }, 0);
      this.m.kvUsage.set({ model_name: info.id }, 0);
      this.m.kvBlocks.set({ model_name: info.id, state: "used" }, 0);
      this.m.kvBlocks.set({ model_name: info.id, state: "free" }, info.kvBlocksTotal);
      // Counters start at 0 for every model, so a scrape before any traffic already lists them.
      for (const reason of ["cancelled", "error"]) this.m.failures.inc({ model_name: info.id, reason }, 0);
      for (const reason of ["stop", "length"]) this.m.success.inc({ model_name: info.id, finished_reason: reason }, 0);
      for (const c of [this.m.prefixQueries, this.m.prefixHits, this.m.promptTokens, this.m.generationTokens, this.m.preemptions, this.m.specDrafts, this.m.specDraftTokens, this.m.specAccepted]) c.inc({ model_name: info.id }, 0);
    }
  }

  step(r: StepReport, memory: WorkerMemory): void {
    const model_name = r.model;
    this.m.running.set({ model_name }, r.running);
    this.m.waiting.set({ model_name }, r.waiting);
    this.m.kvUsage.set({ model_name }, r.kvBlocksTotal > 0 ? r.kvBlocksUsed / r.kvBlocksTotal : 0);
    this.m.kvBlocks.set({ model_name, state: "used" }, r.kvBlocksUsed);
    this.m.kvBlocks.set({ model_name, state: "free" }, r.kvBlocksFree);
    if (r.prefixQueryTokens) this.m.prefixQueries.inc({ model_name }, r.prefixQueryTokens);
    if (r.prefixHitTokens) this.m.prefixHits.inc({ model_name }, r.prefixHitTokens);
    if (r.preemptions) this.m.preemptions.inc({ model_name }, r.preemptions);
    if (r.specDrafts) this.m.specDrafts.inc({ model_name }, r.specDrafts);
    if (r.specDraftTokens) this.m.specDraftTokens.inc({ model_name }, r.specDraftTokens);
    if (r.specAcceptedTokens) this.m.specAccepted.inc({ model_name }, r.specAcceptedTokens);
    if (r.rows > 0) this.m.step.observe({ model_name }, r.stepMs / 1000);
    this.m.engineHeap.set(memory.heapUsedBytes);
  }

  firstToken(model_name: string, seconds: number): void { this.child(this.ttftChildren, this.m.ttft, model_name).observe(seconds); }
  /** Once per token event of every stream: through a cached labelled child (no label hashing). */
  interToken(model_name: string, seconds: number): void { this.child(this.itlChildren, this.m.itl, model_name).observe(seconds); }

  private readonly ttftChildren = new Map<string, { observe(v: number): void }>();
  private readonly itlChildren = new Map<string, { observe(v: number): void }>();
  private child(cache: Map<string, { observe(v: number): void }>, h: Histogram<"model_name">, model_name: string) {
    let c = cache.get(model_name);
    if (!c) { c = h.labels({ model_name }); cache.set(model_name, c); }
    return c;
  }

  finished(model_name: string, reason: string, seconds: number, promptTokens: number, completionTokens: number): void {
    this.m.promptTokens.inc({ model_name }, promptTokens);
    this.m.generationTokens.inc({ model_name }, completionTokens);
    if (reason === "stop" || reason === "length") {
      this.m.success.inc({ model_name, finished_reason: reason });
      this.m.e2e.observe({ model_name }, seconds);
    } else {
      this.m.failures.inc({ model_name, reason });
    }
  }

  rejected(status: number): void { this.m.rejections.inc({ status: String(status) }); }

  async text(): Promise<string> { return this.registry.metrics(); }

  get contentType(): string { return this.registry.contentType; }
}
