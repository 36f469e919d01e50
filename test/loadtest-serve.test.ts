// The load generator against the real `lab serve` (startServer, the draft model, loopback): every
// request completes with the greedy text it gets alone, the client's token counts equal the server's
// own counters diffed from /metrics, the timings are consistent with each other, and past
// --max-queue the 429s land under errors.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Engine } from "../lab/engine/engine.ts";
import { runLoadTest, type LoadPrompt } from "../lab/loadtest/index.ts";
import { openDraftEngine, referenceAnswer, testServer } from "./serve-fixtures.ts";

let engine: Engine;
beforeAll(async () => { engine = await openDraftEngine(); }, 120_000);
afterAll(async () => { await engine?.dispose(); });

const prompts: LoadPrompt[] = Array.from({ length: 6 }, (_, i) => ({ kind: "completion", prompt: `Story ${i}: once upon a time in the town of` }));

describe("lab loadtest against lab serve", () => {
  it("closed loop of 3: greedy texts as alone, usage = the server's counters, TTFT ≤ E2E", async () => {
    const { server, cleanup } = await testServer({ maxRunning: 4 });
    try {
      const model = server.models[0]!.id;
      const report = await runLoadTest({ baseUrl: `${server.url}/v1`, model, concurrency: 3, requests: 6, prompts, maxTokens: 16, requestTimeoutMs: 120_000 });
      expect(report.completed, JSON.stringify(report.errorMessages)).toBe(6);
      for (const r of report.perRequest) {
        const p = prompts[r.index]!;
        const ref = await referenceAnswer(engine, engine.tokenizer.encode(p.kind === "completion" ? p.prompt : "", { bos: true }), 16);
        expect(r.text, `request ${r.index}`).toBe(ref.text);
        expect(r.outputTokens).toBe(ref.completionTokens);
        expect(r.ttftMs!).toBeLessThanOrEqual(r.e2eMs!);
      }
      const c = report.serverMetrics!.counters;
      expect(c[`vllm:generation_tokens_total{model_name="${model}"}`]).toBe(report.outputTokens);
      expect(c[`vllm:prompt_tokens_total{model_name="${model}"}`]).toBe(report.promptTokens);
      expect(c[`vllm:e2e_request_latency_seconds_count{model_name="${model}"}`]).toBe(6);
      expect(report.outputTokenThroughput).toBeGreaterThan(0);
    } finally {
      await cleanup();
    }
  }, 300_000);

  it("all at once past --max-queue: the overflow is counted as 429s and the rest complete", async () => {
    const { server, cleanup } = await testServer({ maxRunning: 2, maxQueue: 2 });
    try {
      const many = Array.from({ length: 12 }, (_, i): LoadPrompt => ({ kind: "completion", prompt: `Story ${i}: the river was` }));
      const report = await runLoadTest({ baseUrl: `${server.url}/v1`, model: server.models[0]!.id, rate: Infinity, requests: 12, prompts: many, maxTokens: 24, ignoreEos: true, requestTimeoutMs: 120_000 });
      expect(report.errors["429"] ?? 0).toBeGreaterThan(0);
      expect(report.completed + (report.errors["429"] ?? 0)).toBe(12);
      expect(report.completed).toBeGreaterThanOrEqual(4);
      expect(report.perRequest.filter((r) => r.ok).every((r) => r.outputTokens === 24)).toBe(true); // ignore_eos honoured
    } finally {
      await cleanup();
    }
  }, 300_000);
});
