// `lab serve` end to end, with the official openai client where a client would use it: models
// list, chat and completions (streaming and not) with the exact greedy answer the engine gives
// alone, usage fields, stop strings, seeds, the OpenAI error shape for 20 kinds of malformed
// request (the server keeps serving), an exception inside one request (500 for it only), a client
// that disconnects mid-stream (its KV blocks come back), /metrics through a real Prometheus text
// parser (one HELP and TYPE per family; counters equal the sums of the responses' usage), and the
// same service on llama.cpp inside the worker thread. On the small draft model, loopback only.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import OpenAI from "openai";
import type { Engine } from "../lab/engine/engine.ts";
import { chatPrompt, CHAT_STOP } from "../lab/serve/text.ts";
import type { ServerHandle } from "../lab/serve/server.ts";
import { eventually, openDraftEngine, referenceAnswer, scrape, testServer, value } from "./serve-fixtures.ts";

const question = [{ role: "system" as const, content: "You are Tilly." }, { role: "user" as const, content: "What is the job of Daeko?" }];

describe("lab serve (lab engine, draft model F32 and Q8_0)", () => {
  let server: ServerHandle;
  let cleanup: () => Promise<void>;
  let client: OpenAI;
  let engine: Engine;
  beforeAll(async () => {
    ({ server, cleanup } = await testServer({ models: "draft:F32,draft:Q8_0", faultInjection: true }));
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0, timeout: 30_000 });
    engine = await openDraftEngine();
  }, 120_000);
  afterAll(async () => {
    await cleanup?.();
    await engine?.dispose();
  });

  it("GET /v1/models lists one id per level, with its engine, level, context and weight bytes; /health is ok", async () => {
    const list = await client.models.list();
    expect(list.data.map((m) => m.id)).toEqual(["draft-f32", "draft-q8_0"]);
    const q8 = await client.models.retrieve("draft-q8_0");
    expect(q8).toMatchObject({ id: "draft-q8_0", object: "model", level: "Q8_0", engine: "lab", max_model_len: 256 });
    const [f32] = list.data as unknown as { weight_bytes: number }[];
    expect(f32.weight_bytes).toBeGreaterThan(3 * (q8 as unknown as { weight_bytes: number }).weight_bytes); // 32 vs 8.5 bits per weight
    const health = await fetch(`${server.url}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: "ok" });
  });

  it("chat, not streamed: the corpus's template, the engine's greedy answer up to the end of the turn, usage", async () => {
    const r = await client.chat.completions.create({ model: "draft-f32", messages: question, temperature: 0, max_tokens: 40 });
    const prompt = engine.tokenizer.encode(chatPrompt(question), { bos: true });
    expect(chatPrompt(question)).toBe("System: You are Tilly.\nUser: What is the job of Daeko?\nAssistant:");
    const ref = await referenceAnswer(engine, prompt, 40, CHAT_STOP, true);
    expect(r.object).toBe("chat.completion");
    expect(r.model).toBe("draft-f32");
    expect(r.choices).toHaveLength(1);
    expect(r.choices[0].message).toEqual({ role: "assistant", content: ref.text });
    expect(r.choices[0].finish_reason).toBe(ref.finish);
    expect(r.usage).toEqual({
      prompt_tokens: prompt.length, completion_tokens: ref.completionTokens, total_tokens: prompt.length + ref.completionTokens,
      prompt_tokens_details: { cached_tokens: 0 },
    });
  });

  it("chat, streamed with include_usage: a role chunk, content deltas that add up to the same answer, a finish chunk, a usage chunk with no choices", async () => {
    const plain = await client.chat.completions.create({ model: "draft-f32", messages: question, temperature: 0, max_tokens: 40 });
    const stream = await client.chat.completions.create({ model: "draft-f32", messages: question, temperature: 0, max_tokens: 40, stream: true, stream_options: { include_usage: true } });
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const c of stream) chunks.push(c);
    expect(chunks.every((c) => c.object === "chat.completion.chunk" && c.id === chunks[0].id)).toBe(true);
    expect(chunks[0].choices[0].delta.role).toBe("assistant");
    const content = chunks.flatMap((c) => c.choices.map((ch) => ch.delta.content ?? "")).join("");
    expect(content).toBe(plain.choices[0].message.content);
    const finish = chunks.filter((c) => c.choices[0]?.finish_reason);
    expect(finish.map((c) => c.choices[0].finish_reason)).toEqual([plain.choices[0].finish_reason]);
    const last = chunks[chunks.length - 1];
    expect(last.choices).toEqual([]);
    expect(last.usage).toEqual(plain.usage);
    expect(chunks.filter((c) => c.usage).length).toBe(1);
  });

  it("completions, streamed and not, on both levels: the engine's greedy continuation of the text (Q8_0 answers with Q8_0 weights)", async () => {
    const prompt = "Once upon a time";
    const ids = engine.tokenizer.encode(prompt, { bos: true });
    const ref = await referenceAnswer(engine, ids, 24);
    const r = await client.completions.create({ model: "draft-f32", prompt, max_tokens: 24, temperature: 0 });
    expect(r.choices[0]).toMatchObject({ index: 0, text: ref.text, finish_reason: "length" });
    expect(r.usage).toMatchObject({ prompt_tokens: ids.length, completion_tokens: 24, total_tokens: ids.length + 24 });
    const stream = await client.completions.create({ model: "draft-f32", prompt, max_tokens: 24, temperature: 0, stream: true, stream_options: { include_usage: true } });
    let text = "";
    let usage;
    for await (const c of stream) {
      text += c.choices[0]?.text ?? "";
      if (c.usage) usage = c.usage;
    }
    expect(text).toBe(ref.text);
    expect(usage).toEqual(r.usage);
    // Token ids as the prompt give the same answer.
    const byIds = await client.completions.create({ model: "draft-f32", prompt: ids, max_tokens: 24, temperature: 0 });
    expect(byIds.choices[0].text).toBe(ref.text);
    // The Q8_0 model is another set of weights: its answer is the Q8_0 file's own greedy text.
    const q8 = await client.completions.create({ model: "draft-q8_0", prompt, max_tokens: 24, temperature: 0 });
    const q8Engine = await (await import("../lab/engine/engine.ts")).openEngine("lab", server.models[1].path, { contextSize: 256, maxSequences: 1 });
    try {
      expect(q8.choices[0].text).toBe((await referenceAnswer(q8Engine, ids, 24)).text);
    } finally {
      await q8Engine.dispose();
    }
  });

  it("stop strings cut the text before the first match (finish_reason stop); max_tokens defaults to 16 for completions", async () => {
    const prompt = "Once upon a time";
    const full = (await client.completions.create({ model: "draft-f32", prompt, max_tokens: 24, temperature: 0 })).choices[0].text;
    const word = full.split(" ").filter((w) => w.length >= 3)[2];
    const cut = await client.completions.create({ model: "draft-f32", prompt, max_tokens: 24, temperature: 0, stop: [word, "zzzz"] });
    expect(cut.choices[0].text).toBe(full.slice(0, full.indexOf(word)));
    expect(cut.choices[0].finish_reason).toBe("stop");
    expect(cut.usage!.completion_tokens).toBeLessThan(24);
    const dflt = await client.completions.create({ model: "draft-f32", prompt, temperature: 0 });
    expect(dflt.usage!.completion_tokens).toBe(16);
  });

  it("sampling: the same seed gives the same text, other seeds other texts; temperature defaults to 1 as OpenAI's", async () => {
    const ask = (seed?: number, temperature?: number) => client.completions.create({ model: "draft-f32", prompt: "Once upon a time", max_tokens: 20, seed, temperature, top_p: 0.95, top_k: 40 } as OpenAI.CompletionCreateParamsNonStreaming)
      .then((r) => r.choices[0].text);
    const a = await ask(11, 1);
    expect(await ask(11, 1)).toBe(a);
    const others = new Set([a, await ask(12, 1), await ask(13, 1), await ask(14, 1)]);
    expect(others.size).toBeGreaterThan(1);
    const greedy = await ask(11, 0);
    const unseeded = new Set([await ask(), await ask(), await ask()]);
    expect([...unseeded].some((t) => t !== greedy)).toBe(true);
  });

  it("20 kinds of malformed request get 400 with an OpenAI error body naming the problem, and the server still answers", async () => {
    const post = (path: string, body: string, type = "application/json") => fetch(`${server.url}${path}`, { method: "POST", headers: { "content-type": type }, body });
    const chat = (patch: Record<string, unknown>) => JSON.stringify({ model: "draft-f32", messages: [{ role: "user", content: "hi" }], ...patch });
    const bad: [string, string, string, RegExp][] = [
      ["invalid JSON", "/v1/chat/completions", "{\"model\": ", /not valid JSON/],
      ["empty body", "/v1/chat/completions", "", /cannot be empty/i],
      ["body is an array", "/v1/chat/completions", "[1, 2]", /must be object/],
      ["no model", "/v1/chat/completions", JSON.stringify({ messages: [{ role: "user", content: "hi" }] }), /must have required property 'model'/],
      ["unknown model", "/v1/chat/completions", chat({ model: "gpt-4" }), /The model "gpt-4" does not exist; this server has: draft-f32, draft-q8_0/],
      ["model is a number", "/v1/chat/completions", chat({ model: 7 }), /model must be string/],
      ["no messages", "/v1/chat/completions", JSON.stringify({ model: "draft-f32" }), /required property 'messages'/],
      ["empty messages", "/v1/chat/completions", chat({ messages: [] }), /messages must NOT have fewer than 1 items/],
      ["message without a role", "/v1/chat/completions", chat({ messages: [{ content: "hi" }] }), /required property 'role'/],
      ["unknown role", "/v1/chat/completions", chat({ messages: [{ role: "wizard", content: "hi" }] }), /role must be equal to one of the allowed values/],
      ["content is a number", "/v1/chat/completions", chat({ messages: [{ role: "user", content: 5 }] }), /content must be string/],
      ["max_tokens 0", "/v1/chat/completions", chat({ max_tokens: 0 }), /max_tokens must be >= 1/],
      ["max_tokens negative", "/v1/completions", JSON.stringify({ model: "draft-f32", prompt: "x", max_tokens: -3 }), /max_tokens must be >= 1/],
      ["max_tokens a string", "/v1/chat/completions", chat({ max_tokens: "10" }), /max_tokens must be integer/],
      ["max_tokens fractional", "/v1/chat/completions", chat({ max_tokens: 1.5 }), /max_tokens must be integer/],
      ["temperature above 2", "/v1/chat/completions", chat({ temperature: 3 }), /temperature must be <= 2/],
      ["top_p 0", "/v1/chat/completions", chat({ top_p: 0 }), /top_p must be > 0/],
      ["n = 2", "/v1/chat/completions", chat({ n: 2 }), /n = 2 \(several choices per request\) is not supported/],
      ["logprobs", "/v1/chat/completions", chat({ logprobs: true }), /logprobs is not supported/],
      ["tools", "/v1/chat/completions", chat({ tools: [{ type: "function", function: { name: "f" } }] }), /tools \(function calling\) is not supported/],
      ["five stop strings", "/v1/chat/completions", chat({ stop: ["a", "b", "c", "d", "e"] }), /stop/],
      ["stream not a boolean", "/v1/chat/completions", chat({ stream: "yes" }), /stream must be boolean/],
      ["completions without a prompt", "/v1/completions", JSON.stringify({ model: "draft-f32" }), /required property 'prompt'/],
      ["token id outside the vocabulary", "/v1/completions", JSON.stringify({ model: "draft-f32", prompt: [1, 5000] }), /token id 5000 is outside the vocabulary \[0, 1024\)/],
      ["prompt longer than the context", "/v1/completions", JSON.stringify({ model: "draft-f32", prompt: "one two three ".repeat(200) }), /maximum context length is 256 tokens\. However, your prompt has \d+ tokens/],
      ["prompt + max_tokens past the context", "/v1/completions", JSON.stringify({ model: "draft-f32", prompt: "hello", max_tokens: 300 }), /you requested \d+ tokens \(\d+ in the prompt, 300 in the completion\)/],
    ];
    expect(bad.length).toBeGreaterThanOrEqual(20);
    for (const [what, path, body, message] of bad) {
      const r = await post(path, body);
      const json = await r.json() as { error: { message: string; type: string; param: string | null; code: string | null } };
      expect(r.status, what).toBe(400);
      expect(json.error.type, what).toBe("invalid_request_error");
      expect(json.error.message, what).toMatch(message);
      expect(Object.keys(json.error).sort(), what).toEqual(["code", "message", "param", "type"]);
    }
    // The SDK surfaces one as BadRequestError, with the parameter named.
    const err = await client.chat.completions.create({ model: "draft-f32", messages: question, max_tokens: 0 }).catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err.param).toBe("max_tokens");
    // Still serving.
    const ok = await client.chat.completions.create({ model: "draft-f32", messages: question, temperature: 0, max_tokens: 5 });
    expect(ok.choices[0].finish_reason).toMatch(/stop|length/);
  });

  it("an exception inside one request fails it with 500 (streamed: an error event the SDK throws), the others finish, the server keeps serving", async () => {
    const fault = { user: "lab-fault:throw-on-token" };
    const good = client.completions.create({ model: "draft-f32", prompt: "Once upon a time", max_tokens: 30, temperature: 0 });
    const bad = await client.completions.create({ model: "draft-f32", prompt: "Once upon a time", max_tokens: 30, temperature: 0, ...fault }).catch((e) => e);
    expect(bad).toBeInstanceOf(OpenAI.InternalServerError);
    expect(bad.status).toBe(500);
    expect(bad.message).toMatch(/injected fault/);
    const stream = await client.chat.completions.create({ model: "draft-f32", messages: question, max_tokens: 30, temperature: 0, stream: true, ...fault });
    const streamed = await (async () => { for await (const _ of stream) { /* read on */ } })().catch((e) => e);
    expect(streamed).toBeInstanceOf(OpenAI.APIError);
    expect(String(streamed.message)).toMatch(/injected fault/);
    expect((await good).usage!.completion_tokens).toBe(30);
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    const after = await client.completions.create({ model: "draft-f32", prompt: "Once upon a time", max_tokens: 4, temperature: 0 });
    expect(after.usage!.completion_tokens).toBe(4);
    const { families } = await scrape(server.url);
    expect(value(families, "lab:request_failures_total", { model_name: "draft-f32", reason: "error" })).toBe(2);
  });

  it("a client that disconnects mid-stream is cancelled: KV blocks in use go back to their baseline (0, no prefix cache)", async () => {
    const used = async () => value((await scrape(server.url)).families, "lab:kv_cache_blocks", { model_name: "draft-f32", state: "used" });
    await eventually(async () => expect(await used()).toBe(0));
    const before = value((await scrape(server.url)).families, "lab:request_failures_total", { model_name: "draft-f32", reason: "cancelled" });
    const abort = new AbortController();
    const res = await fetch(`${server.url}/v1/completions`, {
      method: "POST", headers: { "content-type": "application/json" }, signal: abort.signal,
      body: JSON.stringify({ model: "draft-f32", prompt: "Once upon a time", max_tokens: 200, temperature: 0, stream: true }),
    });
    const reader = res.body!.getReader();
    let seen = "";
    while ((seen.match(/data: /g) ?? []).length < 3) seen += new TextDecoder().decode((await reader.read()).value);
    expect(await used()).toBeGreaterThan(0);
    abort.abort();
    await eventually(async () => expect(await used()).toBe(0));
    await eventually(async () => expect(value((await scrape(server.url)).families, "lab:request_failures_total", { model_name: "draft-f32", reason: "cancelled" })).toBe(before + 1));
  });

  it("/metrics: one HELP and TYPE per family, vLLM's names; counters grow by exactly the responses' usage; histograms count every request", async () => {
    const before = (await scrape(server.url)).families;
    const get = (fams: typeof before, name: string) => value(fams, name, { model_name: "draft-q8_0" });
    const infBucket = (fams: typeof before, name: string) => Number(fams.find((f) => f.name === name)!.metrics.flatMap((m) => Object.entries(m.buckets ?? {})).find(([le]) => le === "+Inf")?.[1] ?? 0);
    const responses = await Promise.all([5, 9, 13, 17].map((n, i) => client.completions.create({ model: "draft-q8_0", prompt: `Once upon a time ${"and ".repeat(i)}`, max_tokens: n, temperature: 0 })));
    const { text, families } = await scrape(server.url);
    // One HELP and one TYPE line per family, and every sample belongs to a family that has them.
    const helps = [...text.matchAll(/^# HELP (\S+)/gm)].map((m) => m[1]);
    const types = [...text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]);
    expect(new Set(helps).size).toBe(helps.length);
    expect(types).toEqual(helps);
    for (const line of text.split("\n").filter((l) => l && !l.startsWith("#"))) {
      const name = line.split(/[{ ]/)[0];
      expect(helps.some((h) => name === h || name.startsWith(`${h}_`)), line).toBe(true);
    }
    for (const name of ["vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc", "vllm:prefix_cache_queries_total", "vllm:prefix_cache_hits_total",
      "vllm:time_to_first_token_seconds", "vllm:inter_token_latency_seconds", "vllm:e2e_request_latency_seconds", "vllm:prompt_tokens_total", "vllm:generation_tokens_total",
      "vllm:spec_decode_num_drafts_total", "vllm:spec_decode_num_draft_tokens_total", "vllm:spec_decode_num_accepted_tokens_total", "lab:model_weight_bytes",
      "lab:kv_cache_blocks", "process_resident_memory_bytes", "nodejs_heap_size_used_bytes", "lab:engine_heap_used_bytes"]) {
      expect(families.map((f) => f.name), name).toContain(name);
    }
    const sum = (f: (u: OpenAI.CompletionUsage) => number) => responses.reduce((s, r) => s + f(r.usage!), 0);
    expect(get(families, "vllm:prompt_tokens_total") - get(before, "vllm:prompt_tokens_total")).toBe(sum((u) => u.prompt_tokens));
    expect(get(families, "vllm:generation_tokens_total") - get(before, "vllm:generation_tokens_total")).toBe(sum((u) => u.completion_tokens));
    expect(sum((u) => u.completion_tokens)).toBe(5 + 9 + 13 + 17);
    const success = (fams: typeof before) => (fams.find((f) => f.name === "vllm:request_success_total")?.metrics ?? [])
      .filter((m) => m.labels?.model_name === "draft-q8_0").reduce((s, m) => s + Number(m.value), 0);
    expect(success(families) - success(before)).toBe(4);
    // Histograms (labelled histograms lose their labels in this parser: the +Inf bucket sums both models).
    expect(infBucket(families, "vllm:e2e_request_latency_seconds") - infBucket(before, "vllm:e2e_request_latency_seconds")).toBe(4);
    expect(infBucket(families, "vllm:time_to_first_token_seconds") - infBucket(before, "vllm:time_to_first_token_seconds")).toBe(4);
    expect(value(families, "lab:model_weight_bytes", { model_name: "draft-q8_0", level: "Q8_0" })).toBe(server.models[1].weightBytes);
    expect(value(families, "vllm:num_requests_running", { model_name: "draft-q8_0" })).toBe(0);
  });

  it("/health answers at once while the engine works through a long batch", async () => {
    const load = Array.from({ length: 8 }, (_, i) => client.completions.create({ model: "draft-f32", prompt: `Story ${i}: once upon a time`, max_tokens: 200, temperature: 0 }));
    await eventually(async () => expect(value((await scrape(server.url)).families, "vllm:num_requests_running", { model_name: "draft-f32" })).toBeGreaterThan(0));
    const times: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      const r = await fetch(`${server.url}/health`);
      times.push(performance.now() - t0);
      expect(r.status).toBe(200);
    }
    await Promise.all(load);
    // Not a speed check (bench/serve.ts measures the p99 under saturation): no answer waits for
    // the batch to finish.
    expect(Math.max(...times)).toBeLessThan(1000);
  });
});

describe("lab serve on llama.cpp (LlamaCppEngine inside the worker thread)", () => {
  let server: ServerHandle;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    ({ server, cleanup } = await testServer({ engine: "llama", maxRunning: 4, prefixCache: "slot" }));
  }, 120_000);
  afterAll(async () => { await cleanup?.(); });

  it("answers chat and completions with llama.cpp's greedy text, concurrent requests batched", async () => {
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0, timeout: 30_000 });
    expect((await client.models.list()).data.map((m) => m.id)).toEqual(["draft-f32"]);
    const { openEngine } = await import("../lab/engine/engine.ts");
    const alone = await openEngine("llama", server.models[0].path, { contextSize: 256, maxSequences: 1 });
    try {
      const prompts = ["Once upon a time", "The river", "In the town of"];
      const refs = [];
      for (const p of prompts) refs.push((await referenceAnswer(alone, alone.tokenizer.encode(p, { bos: true }), 16)).text);
      const got = await Promise.all(prompts.map((prompt) => client.completions.create({ model: "draft-f32", prompt, max_tokens: 16, temperature: 0 })));
      // llama.cpp's batched kernels may round differently from one sequence alone; on this model
      // and these prompts the greedy texts agree exactly.
      expect(got.map((r) => r.choices[0].text)).toEqual(refs);
      const chat = await client.chat.completions.create({ model: "draft-f32", messages: question, max_tokens: 20, temperature: 0 });
      const ref = await referenceAnswer(alone, alone.tokenizer.encode(chatPrompt(question), { bos: true }), 20, CHAT_STOP, true);
      expect(chat.choices[0].message.content).toBe(ref.text);
      // The slot cache reuses a repeated prompt's prefix on llama.cpp.
      const again = await client.chat.completions.create({ model: "draft-f32", messages: question, max_tokens: 20, temperature: 0 });
      expect(again.usage!.prompt_tokens_details!.cached_tokens).toBeGreaterThan(0);
      expect(again.choices[0].message.content).toBe(ref.text);
    } finally {
      await alone.dispose();
    }
  });
});
