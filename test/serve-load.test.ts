// `lab serve` under load, with the official openai client: 64 concurrent streaming clients against
// --max-running 8 --max-queue 16 (the rest get 429 as the SDK's RateLimitError, with Retry-After;
// every accepted one completes with exactly the greedy text it gets alone), a KV pool small enough
// to force preemption (outputs unchanged), the prefix cache inside the service (cached_tokens, the
// hit counters, unchanged outputs) and speculative decoding per deployment (unchanged greedy
// outputs, the spec-decode counters). LabEngine computes each row of a batch exactly as alone, so
// "the same text" is exact equality, no tolerance.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import OpenAI from "openai";
import type { Engine } from "../lab/engine/engine.ts";
import { chatPrompt, CHAT_STOP } from "../lab/serve/text.ts";
import { openDraftEngine, referenceAnswer, scrape, testServer, value } from "./serve-fixtures.ts";

let engine: Engine;
beforeAll(async () => { engine = await openDraftEngine(); }, 60_000);
afterAll(async () => { await engine?.dispose(); });

const client = (url: string) => new OpenAI({ baseURL: `${url}/v1`, apiKey: "unused", maxRetries: 0, timeout: 60_000 });
const storyPrompt = (i: number) => `Story ${i}: once upon a time in the town of`;

async function streamText(c: OpenAI, model: string, prompt: string, maxTokens: number) {
  const stream = await c.completions.create({ model, prompt, max_tokens: maxTokens, temperature: 0, stream: true, stream_options: { include_usage: true } });
  let text = "";
  let usage: OpenAI.CompletionUsage | undefined;
  for await (const ch of stream) {
    text += ch.choices[0]?.text ?? "";
    if (ch.usage) usage = ch.usage;
  }
  return { text, usage };
}

describe("64 concurrent streaming clients, --max-running 8 --max-queue 16", () => {
  it("up to 8 + 16 are accepted at once, the rest get RateLimitError (429, Retry-After); every accepted stream is the greedy text it gets alone", async () => {
    const { server, cleanup } = await testServer({ maxRunning: 8, maxQueue: 16 });
    try {
      const c = client(server.url);
      const maxTokens = 48;
      const refs = [];
      for (let i = 0; i < 64; i++) refs.push(await referenceAnswer(engine, engine.tokenizer.encode(storyPrompt(i), { bos: true }), maxTokens));
      const results = await Promise.all(Array.from({ length: 64 }, (_, i) => streamText(c, "draft-f32", storyPrompt(i), maxTokens).then(
        (r) => ({ i, ok: true as const, ...r }),
        (err) => ({ i, ok: false as const, err }))));
      const accepted = results.filter((r) => r.ok);
      const refused = results.filter((r) => !r.ok);
      expect(accepted.length).toBeGreaterThanOrEqual(24);
      expect(refused.length).toBeGreaterThan(0);
      expect(accepted.length + refused.length).toBe(64);
      for (const r of refused) {
        const err = (r as { err: unknown }).err as InstanceType<typeof OpenAI.RateLimitError>;
        expect(err).toBeInstanceOf(OpenAI.RateLimitError);
        expect(err.status).toBe(429);
        expect(Number(err.headers?.get("retry-after"))).toBeGreaterThanOrEqual(1);
        expect(err.message).toMatch(/--max-queue 16/);
      }
      for (const r of accepted) {
        const ok = r as { i: number; text: string; usage?: OpenAI.CompletionUsage };
        expect(ok.text, `request ${ok.i}`).toBe(refs[ok.i].text);
        expect(ok.usage?.completion_tokens).toBe(maxTokens);
      }
      const { families } = await scrape(server.url);
      expect(value(families, "lab:http_rejections_total", { status: "429" })).toBe(refused.length);
      expect(value(families, "vllm:generation_tokens_total", { model_name: "draft-f32" })).toBe(accepted.length * maxTokens);
      // Still serving, and the queue is empty again.
      expect((await c.completions.create({ model: "draft-f32", prompt: "Once", max_tokens: 3, temperature: 0 })).usage!.completion_tokens).toBe(3);
      expect(server.status()).toMatchObject({ inFlight: 0, running: 0, waiting: 0 });
    } finally {
      await cleanup();
    }
  }, 120_000);
});

describe("a KV pool too small for the batch", () => {
  it("12 blocks of 16 for 8 requests of ~60 positions: requests are preempted and recomputed, and every output is unchanged", async () => {
    const { server, cleanup } = await testServer({ maxRunning: 8, kvBlocks: 12, kvBlockSize: 16, maxBatchTokens: 64 });
    try {
      const c = client(server.url);
      const maxTokens = 48;
      const refs = [];
      for (let i = 0; i < 8; i++) refs.push(await referenceAnswer(engine, engine.tokenizer.encode(storyPrompt(i), { bos: true }), maxTokens));
      const got = await Promise.all(Array.from({ length: 8 }, (_, i) => streamText(c, "draft-f32", storyPrompt(i), maxTokens)));
      expect(got.map((g) => g.text)).toEqual(refs.map((r) => r.text));
      const { families } = await scrape(server.url);
      expect(value(families, "vllm:num_preemptions_total", { model_name: "draft-f32" })).toBeGreaterThan(0);
      expect(value(families, "lab:kv_cache_blocks", { model_name: "draft-f32", state: "used" })).toBe(0);
      expect(value(families, "lab:kv_cache_blocks", { model_name: "draft-f32", state: "free" })).toBe(12);
    } finally {
      await cleanup();
    }
  }, 120_000);
});

describe("the prefix cache inside the service", () => {
  for (const method of ["block", "radix"] as const) {
    it(`${method}: a repeated system prompt is served from the cache (cached_tokens, hit counters in tokens), answers unchanged`, async () => {
      const { server, cleanup } = await testServer({ prefixCache: method });
      try {
        const c = client(server.url);
        const system = "You are Tilly, the friendly guide of the Valley of Rivers. You help the people of the valley and the visitors who come to it. Be kind and be brief.";
        const ask = (q: string) => c.chat.completions.create({ model: "draft-f32", messages: [{ role: "system", content: system }, { role: "user", content: q }], temperature: 0, max_tokens: 24 });
        const questions = ["What is the job of Daeko?", "Where does Sorara live?", "What pet does Rares have?"];
        const answers = [];
        for (const q of questions) answers.push(await ask(q));
        for (const [i, q] of questions.entries()) {
          const messages = [{ role: "system" as const, content: system }, { role: "user" as const, content: q }];
          const ref = await referenceAnswer(engine, engine.tokenizer.encode(chatPrompt(messages), { bos: true }), 24, CHAT_STOP, true);
          expect(answers[i].choices[0].message.content).toBe(ref.text);
        }
        const cached = answers.map((a) => a.usage!.prompt_tokens_details!.cached_tokens!);
        expect(cached[0]).toBe(0);
        expect(cached[1]).toBeGreaterThan(20); // the system prompt's tokens
        expect(cached[2]).toBeGreaterThan(20);
        const { families } = await scrape(server.url);
        expect(value(families, "vllm:prefix_cache_hits_total", { model_name: "draft-f32" })).toBe(cached.reduce((a, b) => a + b, 0));
        expect(value(families, "vllm:prefix_cache_queries_total", { model_name: "draft-f32" })).toBe(answers.reduce((s, a) => s + a.usage!.prompt_tokens, 0));
      } finally {
        await cleanup();
      }
    }, 120_000);
  }
});

describe("speculative decoding per deployment", () => {
  for (const draft of ["draft", "ngram"]) {
    it(`--draft ${draft}: concurrent greedy answers unchanged, the spec-decode counters count drafts and acceptances`, async () => {
      const { server, cleanup } = await testServer({ draft, specK: 3 });
      try {
        const c = client(server.url);
        const prompts = Array.from({ length: 4 }, (_, i) => storyPrompt(i));
        const refs = [];
        for (const p of prompts) refs.push(await referenceAnswer(engine, engine.tokenizer.encode(p, { bos: true }), 32));
        const got = await Promise.all(prompts.map((p) => streamText(c, "draft-f32", p, 32)));
        expect(got.map((g) => g.text)).toEqual(refs.map((r) => r.text));
        expect(got.map((g) => g.usage?.completion_tokens)).toEqual([32, 32, 32, 32]);
        const { families } = await scrape(server.url);
        const drafted = value(families, "vllm:spec_decode_num_draft_tokens_total", { model_name: "draft-f32" });
        const accepted = value(families, "vllm:spec_decode_num_accepted_tokens_total", { model_name: "draft-f32" });
        expect(drafted).toBeGreaterThan(0);
        expect(accepted).toBeLessThanOrEqual(drafted);
        // The draft model drafting for itself is right almost always.
        if (draft === "draft") expect(accepted / drafted).toBeGreaterThan(0.9);
        expect(value(families, "vllm:generation_tokens_total", { model_name: "draft-f32" })).toBe(4 * 32);
      } finally {
        await cleanup();
      }
    }, 120_000);
  }
});
