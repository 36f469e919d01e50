// `lab serve`: the OpenAI-compatible inference service (lab/serve/server.ts) on a port, with a
// status line every few seconds, until SIGTERM or Ctrl-C (which drain in-flight requests, exit 0).
import { UsageError } from "../../errors.ts";
import { numberFlag, parseFlags, printJson, say, type Command } from "../command.ts";
import type { EngineName } from "../../engine/engine.ts";
import { engineFlag } from "./generate.ts";
import { DEFAULT_MODELS } from "../../serve/models.ts";
import { PREFIX_CACHE_CHOICES, type PrefixCacheChoice } from "../../serve/protocol.ts";
import { startServer, type ServerHandle } from "../../serve/server.ts";

const MiB = 1024 * 1024;
const mib = (bytes: number) => `${(bytes / MiB).toFixed(bytes < 10 * MiB ? 2 : 1)} MiB`;

export const serveCommand: Command = {
  name: "serve",
  summary: "OpenAI-compatible inference service: continuous batching, several quantization levels, /metrics",
  help: `Usage: lab serve [options]

Serves /v1/completions and /v1/chat/completions (streaming or not), /v1/models, /health and
/metrics (Prometheus, vLLM's metric names). Each --models entry is one model id a client picks
with "model": target:Q4_K_M is served as target-q4_k_m (quantized by lab/quant on first use and
cached in data/cache/quantization). Engine work runs in a worker thread; requests from every
client are batched step by step (continuous batching, chunked prefill, preemption when the KV
pool is full). Prints the URL, the models and their memory, then a status line every few
seconds. SIGTERM or Ctrl-C: new requests get 503, in-flight ones finish, exit 0.

Options:
  --models LIST          NAME[:LEVEL],… NAME: target | draft | a GGUF path; LEVEL: Q8_0, Q4_K_M, …
                         (default ${DEFAULT_MODELS})
  --engine NAME          lab | llama (default lab)
  --host HOST            interface to listen on (default 127.0.0.1)
  --port N               (default 8080; 0 = any free port)
  --context N            positions per sequence (default: the model's training context, at most 1024)
  --max-running N        requests in the batch at once, per model (default 16)
  --max-batch-tokens N   tokens one step may hold, prefill chunks included (default 256)
  --kv-blocks N          lab engine: KV pool size in blocks (default: room for --max-running full contexts)
  --kv-block-size N      lab engine: positions per KV block (default 16)
  --max-queue N          requests that may wait for a slot beyond --max-running; one more gets 429
                         with Retry-After (default 64)
  --prefix-cache METHOD  ${PREFIX_CACHE_CHOICES.join(" | ")} (default off; block and radix need --engine lab)
  --scheduling MODE      continuous | static (default continuous; static runs each batch to completion)
  --chunked-prefill X    on | off (default on)
  --draft MODEL          speculative decoding with a draft model (draft, draft:Q8_0, a path) or ngram
  --spec-k K             draft tokens per decoding step (default 2)
  --threads N            llama.cpp threads (default 1)
  --status-every S       seconds between status lines, 0 = none (default 5)
  --drain-timeout S      on SIGTERM, seconds to let in-flight requests finish before cancelling them (default 30)
  --json                 when ready, print {url, models, options} as one JSON document on stdout

Example:
  lab serve --models target:Q4_K_M,target:Q8_0,target:F32 --port 8080`,
  async run(args) {
    const { values } = parseFlags("serve", args, {
      models: { type: "string" }, engine: { type: "string" }, host: { type: "string" }, port: { type: "string" },
      context: { type: "string" }, "max-running": { type: "string" }, "max-batch-tokens": { type: "string" },
      "kv-blocks": { type: "string" }, "kv-block-size": { type: "string" }, "max-queue": { type: "string" },
      "prefix-cache": { type: "string" }, scheduling: { type: "string" }, "chunked-prefill": { type: "string" },
      draft: { type: "string" }, "spec-k": { type: "string" }, threads: { type: "string" },
      "status-every": { type: "string" }, "drain-timeout": { type: "string" }, json: { type: "boolean" },
    });
    const int = (flag: string, fallback: number | undefined, min: number, max: number) =>
      values[flag as keyof typeof values] === undefined ? fallback : numberFlag("serve", flag, values[flag as keyof typeof values] as string, 0, { min, max, integer: true });
    const engine = engineFlag("serve", values.engine) as EngineName;
    const prefixCache = (values["prefix-cache"] ?? "off") as PrefixCacheChoice;
    if (!PREFIX_CACHE_CHOICES.includes(prefixCache)) throw new UsageError(`lab serve: unknown --prefix-cache "${prefixCache}" (expected ${PREFIX_CACHE_CHOICES.join(" | ")})`);
    const scheduling = values.scheduling ?? "continuous";
    if (scheduling !== "continuous" && scheduling !== "static") throw new UsageError(`lab serve: unknown --scheduling "${scheduling}" (expected continuous | static)`);
    const chunked = values["chunked-prefill"] ?? "on";
    if (chunked !== "on" && chunked !== "off") throw new UsageError(`lab serve: --chunked-prefill must be on or off, got "${chunked}"`);
    const statusEvery = numberFlag("serve", "status-every", values["status-every"], 5, { min: 0, max: 3600 });
    const drainTimeout = numberFlag("serve", "drain-timeout", values["drain-timeout"], 30, { min: 0, max: 3600 });
    const options = {
      models: values.models ?? DEFAULT_MODELS, engine, host: values.host ?? "127.0.0.1",
      port: int("port", 8080, 0, 65535), contextSize: int("context", undefined, 2, 1 << 20),
      maxRunning: int("max-running", 16, 1, 4096), maxBatchTokens: int("max-batch-tokens", 256, 1, 1 << 20),
      kvBlocks: int("kv-blocks", undefined, 1, 1 << 24), kvBlockSize: int("kv-block-size", 16, 1, 4096),
      maxQueue: int("max-queue", 64, 0, 1 << 20), prefixCache, scheduling: scheduling as "continuous" | "static",
      chunkedPrefill: chunked === "on", draft: values.draft, specK: int("spec-k", 2, 1, 32), threads: int("threads", 1, 1, 256),
      onLog: (line: string) => say(line),
    };

    say(`loading ${options.models} on the ${engine} engine…`);
    let server: ServerHandle;
    try {
      server = await startServer(options);
    } catch (err) {
      const e = err as Error & { code?: string };
      if (e.code === "EADDRINUSE") throw new Error(`port ${options.port} is in use (choose another with --port, or 0 for any free port)`);
      throw err;
    }
    const o = server.options;
    say(`serving on ${server.url}  (engine ${o.engine}, context ${o.contextSize}, max running ${o.maxRunning}, max batch tokens ${o.maxBatchTokens}, ` +
      `max queue ${o.maxQueue}, prefix cache ${o.prefixCache}, ${o.scheduling} batching, chunked prefill ${o.chunkedPrefill ? "on" : "off"}` +
      `${o.draft ? `, speculative ${o.draft} k=${o.specK}` : ""})`);
    for (const m of server.models) {
      say(`  model ${m.id.padEnd(16)} ${m.level.padEnd(9)} weights ${mib(m.weightBytes).padStart(10)} (${m.bitsPerWeight.toFixed(2)} bits/weight)   ` +
        `KV pool ${m.kvBlocksTotal} blocks × ${m.kvBlockSize} = ${mib(m.kvBlocksTotal * m.kvBytesPerBlock)}`);
    }
    say(`  process RSS ${mib(server.status().rssBytes)}`);
    say(`try: curl ${server.url}/v1/chat/completions -H 'content-type: application/json' -d '{"model":"${server.models[0].id}","messages":[{"role":"user","content":"What is the job of Daeko?"}]}'`);
    if (values.json) printJson({ url: server.url, models: server.models, options: server.options });
    else process.stdout.write(`${server.url}\n`);

    let last = { t: performance.now(), tokens: 0 };
    const timer = statusEvery > 0 ? setInterval(() => {
      const s = server.status();
      const now = performance.now();
      const rate = ((s.generatedTokens - last.tokens) * 1000) / (now - last.t);
      last = { t: now, tokens: s.generatedTokens };
      say(`running ${s.running}  waiting ${s.waiting}  KV ${s.kvBlocksUsed}/${s.kvBlocksTotal} blocks used (${s.kvBlocksTotal - s.kvBlocksUsed} free)  ` +
        `${rate.toFixed(1)} tokens/s  finished ${s.requestsFinished}  RSS ${mib(s.rssBytes)}${s.healthy ? "" : "  UNHEALTHY"}`);
    }, statusEvery * 1000) : undefined;

    await new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        process.off("SIGTERM", onTerm);
        process.off("SIGINT", onInt);
        say(`${signal}: not accepting new requests; finishing ${server.status().inFlight} in flight (at most ${drainTimeout} s)…`);
        void server.close({ drainMs: drainTimeout * 1000 }).then(resolve);
      };
      const onTerm = () => stop("SIGTERM");
      const onInt = () => stop("SIGINT");
      process.on("SIGTERM", onTerm);
      process.on("SIGINT", onInt);
    });
    if (timer) clearInterval(timer);
    say("stopped");
    return 0;
  },
};
