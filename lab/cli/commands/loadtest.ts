// `lab loadtest --base-url URL --model ID`: the load generator (lab/loadtest) against any
// OpenAI-compatible server — `lab serve`, llama-server, vLLM, SGLang.
import { mkdir, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import cliProgress from "cli-progress";
import { UsageError } from "../../errors.ts";
import { numberFlag, parseFlags, printJson, say, type Command } from "../command.ts";
import {
  PROMPT_SETS, formatReport, loadTestPrompts, parseSlo, poissonArrivalsMs, requestBody, runLoadTest,
  type LoadTestReport, type PromptSet, type Slo,
} from "../../loadtest/index.ts";

export const loadtestCommand: Command = {
  name: "loadtest",
  summary: "Load-test an OpenAI-compatible server: TTFT, TPOT, ITL, E2E percentiles, throughput, goodput, errors",
  help: `Usage: lab loadtest --base-url URL --model ID [--rate R | --concurrency C] [options]

Sends streaming requests (POST /chat/completions or /completions with stream_options.include_usage)
to an OpenAI-compatible server — \`lab serve\`, llama-server, vLLM, SGLang — and times every chunk:
TTFT (send → first content chunk), TPOT ((E2E − TTFT) / (output tokens − 1)), ITL (every gap between
chunks) and E2E (send → [DONE]), each at p50/p90/p99; request and output-token throughput; goodput
(requests per second meeting every SLO); failed requests by error (HTTP status, connection, timeout);
and the change of the server's counters on its Prometheus /metrics page (when it has one).

Arrivals: --rate R sends at Poisson-distributed times, R requests per second on average (open loop:
a slow server builds a queue); --concurrency C keeps C requests in flight, each user sending again
when its answer ends (closed loop). Both: Poisson arrivals, at most C in flight. Default: --concurrency 1.

Options:
  --base-url URL       the API root, e.g. http://localhost:8080/v1 (required)
  --model ID           the model id to request (default: the only one GET /models lists)
  --rate R             requests per second, Poisson arrivals ("inf": all at once)
  --concurrency C      requests in flight
  --requests N         requests to send (default 50)
  --prompts SET        ${PROMPT_SETS.join(" | ")} (default chat): chat = a conversation of data/corpus/chat.val.txt
                       as chat messages (its ~920-token system prompt repeats); prose = the first
                       sentences of a held-out story (data/eval/prose.jsonl) to /completions
  --max-tokens M       output tokens per request at most (default 64)
  --ignore-eos         send ignore_eos: true, so every answer is --max-tokens long (llama-server,
                       vLLM and SGLang accept it; it is not part of OpenAI's API)
  --temperature T      default 0 (greedy); above 0 each request gets seed = --seed + its index
  --seed S             seeds the prompts and the arrival times (default 0)
  --slo LIST           latency objectives in ms for goodput, e.g. ttft=500,tpot=50 (keys: ttft, tpot,
                       itl, e2e); without it every completed request counts
  --api-key KEY        sent as Authorization: Bearer KEY (default: $OPENAI_API_KEY if set)
  --metrics-url URL    the server's Prometheus page (default: the base URL's origin + /metrics)
  --no-metrics         do not read /metrics
  --timeout S          per request, seconds (default 300)
  --detailed           add perRequest (every request's times, tokens and text) to the JSON
  --out FILE           also write the JSON report to FILE
  --dry-run            check the flags, print the arrival schedule and the first request, send nothing
  --json               one JSON document: ttftMs, tpotMs, itlMs, e2eMs (each { p50, p90, p99, mean, n }),
                       requestThroughput, outputTokenThroughput, goodput, errors, serverMetrics, …

Exit code 0 when at least one request completed (failures are in the report), 1 when none did.

Examples:
  lab loadtest --base-url http://localhost:8080/v1 --model target-q4_k_m --rate 2 --requests 20 --dry-run
  lab loadtest --base-url http://localhost:8080/v1 --model target-q4_k_m --concurrency 4 --requests 8 --prompts prose --max-tokens 16 --dry-run`,
  async run(args) {
    const { values } = parseFlags("loadtest", args, {
      "base-url": { type: "string" }, model: { type: "string" }, rate: { type: "string" }, concurrency: { type: "string" },
      requests: { type: "string" }, prompts: { type: "string" }, "max-tokens": { type: "string" }, "ignore-eos": { type: "boolean" },
      temperature: { type: "string" }, seed: { type: "string" }, slo: { type: "string" }, "api-key": { type: "string" },
      "metrics-url": { type: "string" }, "no-metrics": { type: "boolean" }, timeout: { type: "string" },
      detailed: { type: "boolean" }, out: { type: "string" }, "dry-run": { type: "boolean" }, json: { type: "boolean" },
    });
    const baseUrl = values["base-url"];
    if (!baseUrl) throw new UsageError("lab loadtest: --base-url URL is required (e.g. http://localhost:8080/v1)");
    try {
      const u = new URL(baseUrl);
      if (!/^https?:$/.test(u.protocol)) throw new Error();
    } catch {
      throw new UsageError(`lab loadtest: --base-url must be an http(s) URL such as http://localhost:8080/v1, got "${baseUrl}"`);
    }
    const rate = values.rate === undefined ? undefined
      : /^inf(inity)?$/i.test(values.rate) ? Infinity
      : numberFlag("loadtest", "rate", values.rate, 1, { min: Number.MIN_VALUE, max: 1e6 });
    const concurrency = values.concurrency === undefined ? undefined : numberFlag("loadtest", "concurrency", values.concurrency, 1, { min: 1, max: 10_000, integer: true });
    const requests = numberFlag("loadtest", "requests", values.requests, 50, { min: 1, max: 1_000_000, integer: true });
    const set = (values.prompts ?? "chat") as PromptSet;
    if (!PROMPT_SETS.includes(set)) throw new UsageError(`lab loadtest: unknown --prompts "${set}" (expected ${PROMPT_SETS.join(" | ")})`);
    const maxTokens = numberFlag("loadtest", "max-tokens", values["max-tokens"], 64, { min: 1, max: 1_000_000, integer: true });
    const temperature = numberFlag("loadtest", "temperature", values.temperature, 0, { min: 0, max: 100 });
    const seed = numberFlag("loadtest", "seed", values.seed, 0, { min: 0, max: 2 ** 32 - 1, integer: true });
    const timeoutS = numberFlag("loadtest", "timeout", values.timeout, 300, { min: 0.001, max: 86_400 });
    let slo: Slo = {};
    if (values.slo !== undefined) {
      try { slo = parseSlo(values.slo); } catch (err) { throw new UsageError(`lab loadtest: --slo: ${(err as Error).message}`); }
    }
    if (values["no-metrics"] && values["metrics-url"]) throw new UsageError("lab loadtest: give --metrics-url or --no-metrics, not both");
    const metricsUrl = values["no-metrics"] ? null : values["metrics-url"];
    const apiKey = values["api-key"] ?? process.env.OPENAI_API_KEY;

    if (values["dry-run"]) {
      const model = values.model ?? "(the only model GET /models lists)";
      const prompts = loadTestPrompts(set, requests, seed);
      const plan = {
        dryRun: true, baseUrl, model, requests, prompts: set, maxTokens, slo,
        arrivals: rate !== undefined ? { kind: "poisson", rate, maxConcurrency: concurrency ?? null } : { kind: "closed", concurrency: concurrency ?? 1 },
        sendTimesMs: rate !== undefined ? poissonArrivalsMs(rate, requests, seed).map((t) => Math.round(t * 1000) / 1000) : null,
        endpoints: [...new Set(prompts.map((p) => (p.kind === "chat" ? "/chat/completions" : "/completions")))],
        firstRequest: requestBody(prompts[0]!, { model, maxTokens, temperature, ignoreEos: values["ignore-eos"] }),
      };
      if (values.json) printJson(plan);
      else {
        say(`dry run: ${requests} requests to ${baseUrl} (${plan.endpoints.join(", ")}), model ${model}, ${set} prompts, max ${maxTokens} tokens`);
        say(rate !== undefined ? `Poisson arrivals at ${rate} req/s: first sends at ${plan.sendTimesMs!.slice(0, 5).map((t) => t.toFixed(0)).join(", ")} ms …` : `closed loop, ${concurrency ?? 1} concurrent`);
        say(`first request: ${JSON.stringify(plan.firstRequest).slice(0, 300)}…`);
      }
      return 0;
    }

    const model = values.model ?? await onlyModel(baseUrl, apiKey);
    const bar = !values.json && process.stderr.isTTY
      ? new cliProgress.SingleBar({ stream: process.stderr, format: "loadtest [{bar}] {value}/{total} requests | failed {failed} | {duration_formatted}", hideCursor: true }, cliProgress.Presets.shades_classic)
      : undefined;
    bar?.start(requests, 0, { failed: 0 });
    const controller = new AbortController();
    const onSigint = () => controller.abort();
    process.once("SIGINT", onSigint);
    let report: LoadTestReport;
    try {
      report = await runLoadTest({
        baseUrl, model, rate, concurrency, requests, prompts: set, maxTokens, temperature, seed, slo,
        ignoreEos: values["ignore-eos"], apiKey, metricsUrl, requestTimeoutMs: timeoutS * 1000, signal: controller.signal,
        onProgress: (done, _total, failed) => bar?.update(done, { failed }),
      });
    } finally {
      bar?.stop();
      process.off("SIGINT", onSigint);
    }
    const { perRequest, ...summary } = report;
    const doc = values.detailed ? report : summary;
    if (values.out) {
      await mkdir(dirname(values.out), { recursive: true });
      await writeFile(values.out, JSON.stringify(doc, null, 2) + "\n");
    }
    if (values.json) printJson(doc);
    else say(formatReport(report));
    void perRequest;
    return report.completed > 0 ? 0 : 1;
  },
};

/** The model id when the server serves exactly one (GET {base}/models); else a UsageError listing them. */
async function onlyModel(baseUrl: string, apiKey: string | undefined): Promise<string> {
  const url = `${baseUrl.replace(/\/+$/, "")}/models`;
  let ids: string[];
  try {
    const res = await fetch(url, { headers: apiKey ? { authorization: `Bearer ${apiKey}` } : {}, signal: AbortSignal.timeout(10_000) });
    if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
    ids = ((await res.json()) as { data?: { id: string }[] }).data?.map((m) => m.id) ?? [];
  } catch (err) {
    throw new UsageError(`lab loadtest: no --model given and GET ${url} failed (${(err as Error).message}); pass --model ID`);
  }
  if (ids.length !== 1) throw new UsageError(`lab loadtest: no --model given and the server lists ${ids.length ? ids.join(", ") : "no models"}; pass --model ID`);
  say(`model: ${ids[0]} (the only one ${url} lists)`);
  return ids[0]!;
}
