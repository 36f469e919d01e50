// Shared by the service tests: a server on the small draft model (quantized levels cached in a temp
// folder), the greedy answer a request gets with no server at all (the engine alone, the same
// chat template, stop strings and leading-space rule), and /metrics read with a real Prometheus
// text parser.
import { fileURLToPath } from "node:url";
import parsePrometheus from "parse-prometheus-text-format";
import { openEngine, type Engine } from "../lab/engine/engine.ts";
import { generateTokens } from "../lab/engine/generate.ts";
import { startServer, type ServeOptions, type ServerHandle } from "../lab/serve/server.ts";
import { tempDir } from "./engine-fixtures.ts";

export const DRAFT_GGUF = fileURLToPath(new URL("../data/models/draft.gguf", import.meta.url));

/** A loopback server on a free port with the draft model; quantized copies go to a temp folder. */
export async function testServer(opts: ServeOptions = {}): Promise<{ server: ServerHandle; cleanup: () => Promise<void> }> {
  const tmp = tempDir("serve-test-");
  const server = await startServer({ models: "draft:F32", port: 0, contextSize: 256, maxRunning: 8, cacheDir: tmp.dir, ...opts });
  return { server, cleanup: async () => { await server.close({ drainMs: 2000 }); tmp.cleanup(); } };
}

/** Greedy text and token count for a prompt, from the engine alone: what the server must answer. */
export async function referenceAnswer(engine: Engine, promptTokens: number[], maxTokens: number, stops: string[] = [], trimLeadingSpace = false) {
  const prefix = engine.tokenizer.decode(promptTokens);
  const ids: number[] = [];
  let text = "";
  let finish = "length";
  for await (const t of generateTokens(engine, promptTokens, { maxTokens })) {
    ids.push(t);
    text = engine.tokenizer.decode([...promptTokens, ...ids]).slice(prefix.length);
    const at = Math.min(...stops.map((s) => text.indexOf(s)).filter((i) => i >= 0));
    if (Number.isFinite(at)) { text = text.slice(0, at); finish = "stop"; break; }
  }
  if (ids.length < maxTokens && finish === "length") finish = "stop"; // EOS
  if (trimLeadingSpace && text.startsWith(" ")) text = text.slice(1);
  return { text, completionTokens: ids.length, finish };
}

export async function openDraftEngine(contextSize = 256): Promise<Engine> {
  return openEngine("lab", DRAFT_GGUF, { contextSize, maxSequences: 1 });
}

export interface MetricFamily {
  name: string;
  help: string;
  type: string;
  metrics: { value?: string; labels?: Record<string, string>; buckets?: Record<string, string>; count?: string; sum?: string }[];
}

/** /metrics parsed by parse-prometheus-text-format. (That parser drops count, sum and labels of a
 *  histogram with labels: read a histogram's count from its +Inf bucket, one model per server.) */
export async function scrape(url: string): Promise<{ text: string; families: MetricFamily[] }> {
  const res = await fetch(`${url}/metrics`);
  const text = await res.text();
  return { text, families: parsePrometheus(text) as MetricFamily[] };
}

/** The value of one counter or gauge series (labels must match exactly the given ones). */
export function value(families: MetricFamily[], name: string, labels: Record<string, string> = {}): number {
  const family = families.find((f) => f.name === name);
  if (!family) throw new Error(`no metric ${name}`);
  const series = family.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v)
    && Object.keys(m.labels ?? {}).length === Object.keys(labels).length);
  if (!series) throw new Error(`no series ${name}${JSON.stringify(labels)}`);
  return Number(series.value);
}

/** Polls until `check` passes (or throws its last failure after `ms`). */
export async function eventually<T>(check: () => Promise<T>, ms = 5000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > until) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
