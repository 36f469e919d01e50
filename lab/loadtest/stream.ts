// One streaming request to an OpenAI-compatible server, timed chunk by chunk.
//
// The request is plain OpenAI HTTP (what llama-server, vLLM, SGLang and `lab serve` all speak):
// POST {base}/chat/completions with messages, or {base}/completions with a prompt, `stream: true`
// and `stream_options: { include_usage: true }`, which asks for a last chunk carrying `usage`
// (prompt_tokens, completion_tokens, prompt_tokens_details.cached_tokens) with empty `choices`.
// The answer is Server-Sent Events (`data: {json}\n\n` … `data: [DONE]\n\n`), parsed with
// eventsource-parser. Every event is stamped with the clock when it is parsed; a chunk whose delta
// carries text is a "content chunk". What the load test derives (vLLM's benchmark_serving
// definitions):
//   TTFT = first content chunk − send;  ITL = every gap between consecutive content chunks;
//   E2E  = [DONE] − send;               TPOT = (E2E − TTFT) / (output tokens − 1),
// output tokens being usage.completion_tokens when the server reports it (a chunk may carry several
// tokens, e.g. under speculative decoding), else the number of content chunks.
import { createParser } from "eventsource-parser";
import type { LoadPrompt } from "./prompts.ts";

export interface RequestOptions {
  baseUrl: string;
  model: string;
  maxTokens: number;
  temperature: number;
  /** Sent as `seed` (only when given). */
  seed?: number;
  /** Sends `ignore_eos: true` (llama-server, vLLM and SGLang accept it; not OpenAI's API). */
  ignoreEos?: boolean;
  /** Sent as `Authorization: Bearer …` (vLLM --api-key, llama-server --api-key). */
  apiKey?: string;
  /** Milliseconds (any origin): read once when the request is sent and once per SSE event. */
  clock: () => number;
  /** Gives up on the request after this long (error "timeout"). */
  timeoutMs: number;
  /** Aborts the request (error "aborted"). */
  signal?: AbortSignal;
}

/** What one request did. Times are on the load test's clock (milliseconds). */
export interface RequestOutcome {
  kind: LoadPrompt["kind"];
  sentAt: number;
  ok: boolean;
  /** The HTTP status, when the server answered. */
  status?: number;
  /** For a failed request, its error class: the HTTP status ("429", "500", …), "connection",
   *  "timeout", "aborted", "stream error" (an error object inside the stream), "incomplete" (the
   *  stream ended before [DONE]), "bad stream" (an event that is not JSON, or no SSE at all). */
  error?: string;
  /** The server's error message, or what went wrong. */
  message?: string;
  /** Arrival time of each content chunk. */
  contentTimes: number[];
  /** [DONE] (or the end of the body when a failed stream had none). */
  endAt?: number;
  /** usage.completion_tokens when reported, else the number of content chunks. */
  outputTokens: number;
  tokensFrom: "usage" | "chunks";
  promptTokens?: number;
  cachedTokens?: number;
  finishReason?: string;
  text: string;
}

/** The request body for a prompt, as the OpenAI API spells it. */
export function requestBody(prompt: LoadPrompt, o: Pick<RequestOptions, "model" | "maxTokens" | "temperature" | "seed" | "ignoreEos">): Record<string, unknown> {
  return {
    model: o.model,
    ...(prompt.kind === "chat" ? { messages: prompt.messages } : { prompt: prompt.prompt }),
    max_tokens: prompt.maxTokens ?? o.maxTokens,
    temperature: o.temperature,
    ...(o.seed !== undefined ? { seed: o.seed } : {}),
    ...(o.ignoreEos ? { ignore_eos: true } : {}),
    stream: true,
    stream_options: { include_usage: true },
  };
}

/** Sends one streaming request and times it; never throws (a failure is an outcome). */
export async function sendStreaming(prompt: LoadPrompt, o: RequestOptions): Promise<RequestOutcome> {
  const url = `${o.baseUrl.replace(/\/+$/, "")}/${prompt.kind === "chat" ? "chat/completions" : "completions"}`;
  const timeout = AbortSignal.timeout(o.timeoutMs);
  const signal = o.signal ? AbortSignal.any([o.signal, timeout]) : timeout;
  const out: RequestOutcome = { kind: prompt.kind, sentAt: o.clock(), ok: false, contentTimes: [], outputTokens: 0, tokensFrom: "chunks", text: "" };
  const fail = (error: string, message: string) => {
    out.error ??= error;
    out.message ??= message;
    return out;
  };
  const whyAborted = (): [string, string] => (o.signal?.aborted ? ["aborted", "the load test was aborted"] : ["timeout", `no complete answer within ${o.timeoutMs} ms`]);

  let res: Response;
  try {
    res = await fetch(url, {
      method: "POST", signal,
      headers: { "content-type": "application/json", accept: "text/event-stream", ...(o.apiKey ? { authorization: `Bearer ${o.apiKey}` } : {}) },
      body: JSON.stringify(requestBody(prompt, o)),
    });
  } catch (err) {
    if (signal.aborted) return fail(...whyAborted());
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return fail("connection", `POST ${url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
  }
  out.status = res.status;
  if (res.status !== 200) {
    let message = `HTTP ${res.status}`;
    try {
      const body = await res.text();
      const json = JSON.parse(body) as { error?: { message?: string } | string; message?: string };
      message = typeof json.error === "string" ? json.error : json.error?.message ?? json.message ?? body.slice(0, 200);
    } catch { /* a body that is not JSON: the status says enough */ }
    return fail(String(res.status), message);
  }
  if (!/text\/event-stream/.test(res.headers.get("content-type") ?? "") || !res.body) {
    await res.body?.cancel();
    return fail("bad stream", `expected text/event-stream, got ${res.headers.get("content-type") ?? "no content type"} (does the server stream?)`);
  }

  let done = false;
  const parser = createParser({
    onEvent(event) {
      const t = o.clock();
      if (done) return;
      if (event.data === "[DONE]") {
        done = true;
        out.endAt = t;
        return;
      }
      let chunk: StreamChunk;
      try {
        chunk = JSON.parse(event.data) as StreamChunk;
      } catch {
        fail("bad stream", `an event that is not JSON: ${JSON.stringify(event.data.slice(0, 80))}`);
        return;
      }
      if (chunk.error !== undefined) {
        fail("stream error", typeof chunk.error === "string" ? chunk.error : chunk.error.message ?? JSON.stringify(chunk.error));
        return;
      }
      if (chunk.usage) {
        if (typeof chunk.usage.completion_tokens === "number") {
          out.outputTokens = chunk.usage.completion_tokens;
          out.tokensFrom = "usage";
        }
        if (typeof chunk.usage.prompt_tokens === "number") out.promptTokens = chunk.usage.prompt_tokens;
        const cached = chunk.usage.prompt_tokens_details?.cached_tokens;
        if (typeof cached === "number") out.cachedTokens = cached;
      }
      const choice = chunk.choices?.[0];
      if (!choice) return;
      const content = choice.delta?.content ?? choice.text;
      if (typeof content === "string" && content.length > 0) {
        out.contentTimes.push(t);
        out.text += content;
      }
      if (choice.finish_reason) out.finishReason = choice.finish_reason;
    },
  });
  const decoder = new TextDecoder();
  const reader = res.body.getReader();
  try {
    for (;;) {
      const { value, done: ended } = await reader.read();
      if (ended) break;
      parser.feed(decoder.decode(value, { stream: true }));
      if (out.error) break;
    }
  } catch (err) {
    if (signal.aborted) return fail(...whyAborted());
    return fail("incomplete", `the stream broke: ${(err as Error).message}`);
  } finally {
    if (out.error) await reader.cancel().catch(() => {});
  }
  if (out.error) return out;
  if (!done) {
    out.endAt = o.clock();
    return fail("incomplete", "the stream ended without data: [DONE]");
  }
  if (out.tokensFrom === "chunks") out.outputTokens = out.contentTimes.length;
  out.ok = true;
  return out;
}

interface StreamChunk {
  error?: { message?: string } | string;
  usage?: { prompt_tokens?: number; completion_tokens?: number; prompt_tokens_details?: { cached_tokens?: number } | null } | null;
  choices?: { delta?: { content?: string | null }; text?: string; finish_reason?: string | null }[];
}
