// The OpenAI wire format the service speaks: the JSON schemas fastify validates request bodies
// against, the checks a schema cannot express (unsupported features, said so), the translation of
// a valid body into a worker request, and the response and chunk objects.
//
// What is supported, as in OpenAI's API reference for /v1/completions and /v1/chat/completions:
// model, prompt (a string or token ids) / messages, max_tokens (max_completion_tokens), temperature
// (default 1, as OpenAI), top_p, top_k (vLLM's extension; 0 or -1 = off), seed, stop (a string or up
// to 4), stream, stream_options.include_usage, user, and vLLM's ignore_eos (generate max_tokens
// whatever the model would end with: the end-of-sequence token, and for chat the end of the turn,
// which in this transcript format is the next "User:" line). Refused with a 400 that names the field: n
// other than 1, best_of > 1, logprobs / top_logprobs, echo, suffix, tools / functions, non-zero
// presence or frequency penalties, logit_bias, a response_format other than text, a batch of
// several prompts. Unknown fields are ignored, as vLLM and llama-server do.
import type { SubmitMessage } from "./protocol.ts";
import { CHAT_STOP, chatPrompt, type ChatMessage } from "./text.ts";

// ---------------------------------------------------------------------------------------------
// Schemas (JSON Schema draft 7, checked by fastify's Ajv with type coercion off)

const nullable = (schema: Record<string, unknown>) => ({ anyOf: [schema, { type: "null" }] });

const sampling = {
  model: { type: "string", minLength: 1 },
  max_tokens: nullable({ type: "integer", minimum: 1 }),
  temperature: nullable({ type: "number", minimum: 0, maximum: 2 }),
  top_p: nullable({ type: "number", exclusiveMinimum: 0, maximum: 1 }),
  top_k: nullable({ type: "integer", minimum: -1 }),
  seed: nullable({ type: "integer" }),
  stop: { anyOf: [{ type: "string", minLength: 1 }, { type: "array", items: { type: "string", minLength: 1 }, maxItems: 4 }, { type: "null" }] },
  stream: nullable({ type: "boolean" }),
  stream_options: nullable({ type: "object", properties: { include_usage: nullable({ type: "boolean" }) } }),
  n: nullable({ type: "integer", minimum: 1 }),
  presence_penalty: nullable({ type: "number" }),
  frequency_penalty: nullable({ type: "number" }),
  logit_bias: nullable({ type: "object" }),
  user: nullable({ type: "string" }),
  ignore_eos: nullable({ type: "boolean" }),
} as const;

export const completionBodySchema = {
  type: "object",
  required: ["model", "prompt"],
  properties: {
    ...sampling,
    prompt: {
      anyOf: [
        { type: "string" },
        { type: "array", items: { type: "integer" }, minItems: 1 },
        { type: "array", items: { type: "string" }, minItems: 1 },
        { type: "array", items: { type: "array", items: { type: "integer" }, minItems: 1 }, minItems: 1 },
      ],
    },
    echo: nullable({ type: "boolean" }),
    suffix: nullable({ type: "string" }),
    best_of: nullable({ type: "integer", minimum: 1 }),
    logprobs: nullable({ type: "integer", minimum: 0 }),
  },
} as const;

const contentPart = { type: "object", required: ["type"], properties: { type: { type: "string" }, text: { type: "string" } } };

export const chatBodySchema = {
  type: "object",
  required: ["model", "messages"],
  properties: {
    ...sampling,
    max_completion_tokens: nullable({ type: "integer", minimum: 1 }),
    messages: {
      type: "array",
      minItems: 1,
      items: {
        type: "object",
        required: ["role"],
        properties: {
          role: { enum: ["system", "developer", "user", "assistant", "tool", "function"] },
          content: { anyOf: [{ type: "string" }, { type: "array", items: contentPart }, { type: "null" }] },
          name: { type: "string" },
        },
      },
    },
    logprobs: nullable({ type: "boolean" }),
    top_logprobs: nullable({ type: "integer" }),
    tools: nullable({ type: "array" }),
    tool_choice: {},
    functions: nullable({ type: "array" }),
    function_call: {},
    response_format: nullable({ type: "object", properties: { type: { type: "string" } } }),
  },
} as const;

// ---------------------------------------------------------------------------------------------
// Errors in OpenAI's shape

export interface OpenAiErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly param: string | null = null, readonly code: string | null = null) {
    super(message);
    this.name = "HttpError";
  }
}

export function errorBody(status: number, message: string, param: string | null = null, code: string | null = null): OpenAiErrorBody {
  const type = status === 429 ? "rate_limit_exceeded" : status === 503 ? "service_unavailable"
    : status >= 500 ? "server_error" : status === 404 ? "not_found_error" : "invalid_request_error";
  return { error: { message, type, param, code } };
}

// ---------------------------------------------------------------------------------------------
// From a validated body to a worker request

export type Kind = "chat" | "completion";

type Body = Record<string, unknown>;

/** Throws HttpError(400) for a feature the service does not have, naming the field. */
export function checkSupported(body: Body, kind: Kind): void {
  const no = (param: string, what: string) => { throw new HttpError(400, `${what} is not supported by this server`, param, "unsupported"); };
  if (body.n != null && body.n !== 1) no("n", `n = ${body.n} (several choices per request)`);
  if (body.best_of != null && body.best_of !== 1) no("best_of", "best_of");
  if (kind === "completion" && body.logprobs != null) no("logprobs", "logprobs");
  if (kind === "chat" && body.logprobs === true) no("logprobs", "logprobs");
  if (body.top_logprobs != null) no("top_logprobs", "top_logprobs");
  if (body.echo === true) no("echo", "echo");
  if (typeof body.suffix === "string" && body.suffix !== "") no("suffix", "suffix");
  if (Array.isArray(body.tools) && body.tools.length > 0) no("tools", "tools (function calling)");
  if (body.tool_choice != null && body.tool_choice !== "none") no("tool_choice", "tool_choice");
  if (Array.isArray(body.functions) && body.functions.length > 0) no("functions", "functions (function calling)");
  if (body.function_call != null && body.function_call !== "none") no("function_call", "function_call");
  for (const p of ["presence_penalty", "frequency_penalty"]) {
    if (body[p] != null && body[p] !== 0) no(p, p);
  }
  if (body.logit_bias != null && Object.keys(body.logit_bias as object).length > 0) no("logit_bias", "logit_bias");
  const format = body.response_format as { type?: string } | null | undefined;
  if (format != null && format.type !== undefined && format.type !== "text") no("response_format", `response_format ${format.type}`);
  if (kind === "completion" && Array.isArray(body.prompt) && body.prompt.length > 1 && typeof body.prompt[0] !== "number") {
    no("prompt", "a batch of several prompts in one request");
  }
  if (kind === "chat") {
    for (const [i, m] of (body.messages as { role: string }[]).entries()) {
      if (m.role === "tool" || m.role === "function") no(`messages[${i}].role`, `a "${m.role}" message`);
    }
  }
}

function messageText(m: { content?: unknown }, i: number): string {
  const c = m.content;
  if (c == null) return "";
  if (typeof c === "string") return c;
  return (c as { type: string; text?: string }[]).map((part, j) => {
    if (part.type !== "text" || typeof part.text !== "string") {
      throw new HttpError(400, `content part of type "${part.type}" is not supported (text only)`, `messages[${i}].content[${j}]`, "unsupported");
    }
    return part.text;
  }).join("");
}

/** The worker request of a validated, supported body (its id and fault hook added by the server). */
export function toSubmit(body: Body, kind: Kind): Omit<SubmitMessage, "type" | "id"> {
  const stop = body.stop == null ? [] : typeof body.stop === "string" ? [body.stop] : [...(body.stop as string[])];
  let prompt: SubmitMessage["prompt"];
  if (kind === "chat") {
    const messages = (body.messages as { role: ChatMessage["role"]; content?: unknown }[]).map((m, i) => ({ role: m.role, content: messageText(m, i) }));
    prompt = { text: chatPrompt(messages) };
    if (body.ignore_eos !== true) stop.push(...CHAT_STOP);
  } else {
    const p = body.prompt as string | number[] | string[] | number[][];
    if (typeof p === "string") prompt = { text: p };
    else if (typeof p[0] === "number") prompt = { tokens: p as number[] };
    else if (typeof p[0] === "string") prompt = { text: p[0] as string };
    else prompt = { tokens: (p as number[][])[0] };
  }
  const maxTokens = (kind === "chat" ? (body.max_completion_tokens ?? body.max_tokens) : body.max_tokens) as number | null | undefined;
  const topK = (body.top_k as number | null | undefined) ?? 0;
  return {
    model: body.model as string,
    prompt,
    // OpenAI's legacy completions default to 16 tokens; chat answers run to a stop or the context.
    maxTokens: maxTokens ?? (kind === "completion" ? 16 : undefined),
    temperature: (body.temperature as number | null | undefined) ?? 1,
    topP: (body.top_p as number | null | undefined) ?? 1,
    topK: topK < 0 ? 0 : topK,
    seed: (body.seed as number | null | undefined) ?? Math.floor(Math.random() * 2 ** 31),
    stop,
    stopAtEos: body.ignore_eos !== true,
    trimLeadingSpace: kind === "chat",
  };
}

// ---------------------------------------------------------------------------------------------
// Responses and stream chunks

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
}

export function usage(u: { promptTokens: number; completionTokens: number; cachedTokens: number }): Usage {
  return {
    prompt_tokens: u.promptTokens, completion_tokens: u.completionTokens, total_tokens: u.promptTokens + u.completionTokens,
    prompt_tokens_details: { cached_tokens: u.cachedTokens },
  };
}

export interface ResponseIds {
  id: string;
  created: number;
  model: string;
}

export function completionResponse(ids: ResponseIds, text: string, finish: string, u: Usage) {
  return {
    id: ids.id, object: "text_completion", created: ids.created, model: ids.model,
    choices: [{ index: 0, text, logprobs: null, finish_reason: finish }], usage: u,
  };
}

export function chatResponse(ids: ResponseIds, text: string, finish: string, u: Usage) {
  return {
    id: ids.id, object: "chat.completion", created: ids.created, model: ids.model,
    choices: [{ index: 0, message: { role: "assistant", content: text }, logprobs: null, finish_reason: finish }], usage: u,
  };
}

/** One SSE chunk: some text (and the finish reason on the last one). */
export function chunk(kind: Kind, ids: ResponseIds, text: string | undefined, finish: string | null, first = false) {
  if (kind === "completion") {
    return {
      id: ids.id, object: "text_completion", created: ids.created, model: ids.model,
      choices: [{ index: 0, text: text ?? "", logprobs: null, finish_reason: finish }],
    };
  }
  const delta: { role?: string; content?: string } = {};
  if (first) delta.role = "assistant";
  if (text !== undefined) delta.content = text;
  return {
    id: ids.id, object: "chat.completion.chunk", created: ids.created, model: ids.model,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
  };
}

/** The final chunk of stream_options.include_usage: no choices, only usage. */
export function usageChunk(kind: Kind, ids: ResponseIds, u: Usage) {
  return { id: ids.id, object: kind === "chat" ? "chat.completion.chunk" : "text_completion", created: ids.created, model: ids.model, choices: [], usage: u };
}
