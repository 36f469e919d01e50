// `lab prefix-bench MODEL`: one workload under every prefix cache method plus none (lab/prefix-cache/bench.ts).
import { writeFile, mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { UsageError } from "../../errors.ts";
import { numberFlag, parseFlags, printJson, say, type Command } from "../command.ts";
import type { EngineName } from "../../engine/engine.ts";
import { WORKLOADS, runPrefixBench, type PrefixBenchReport, type Workload } from "../../prefix-cache/bench.ts";
import { BLOCK_HASHES, type BlockHashName } from "../../prefix-cache/block-cache.ts";
import { formatTable } from "../../table.ts";
import { engineFlag } from "./generate.ts";

export function prefixBenchText(report: PrefixBenchReport): string {
  const rows = Object.entries(report.methods).map(([method, m]) => ({
    method, "hit rate": m.hitRate, "TTFT p50 ms": m.ttftMs.p50, "TTFT p90 ms": m.ttftMs.p90,
    "hit ÷ cold": m.ttftHitOverCold, "prefill tokens": m.prefillTokens, evictions: m.evictions,
    "blocks held": m.blocksHeld, "same tokens": m.sameTokensAsNone ? "yes" : "NO",
  }));
  return `${report.workload} on ${report.engine}: ${report.requests} requests of ${report.promptTokens.min}–${report.promptTokens.max} tokens, block size ${report.blockSize}` +
    `${report.engine === "lab" ? `, block hash ${report.hash}` : ""}\n` +
    formatTable(rows, { digits: 3 });
}

export const prefixBenchCommand: Command = {
  name: "prefix-bench",
  summary: "Prefix KV caching (block hash, radix, slot) against none on one workload: hit rate, TTFT, prefill tokens",
  help: `Usage: lab prefix-bench MODEL [--engine lab|llama] [--workload W] [options]

Runs the workload's requests under every method — none, block (vLLM block hashing), radix (SGLang
radix tree), slot (llama-server cache_prompt) — each on its own engine over MODEL, interleaved per
request. llama.cpp shares no KV between sequences, so --engine llama runs none and slot only.
JSON: methods.<none|block|radix|slot>.{ hitRate, ttftMs: { p50, p90 }, ttftHitOverCold, prefillTokens,
evictions, blocksHeld, sameTokensAsNone }.

Options:
  --engine NAME        lab | llama (default lab)
  --workload W         ${WORKLOADS.join(" | ")} (default system-prompt)
  --requests N         requests (default 8)
  --decode-tokens N    greedy tokens per request, the first included (default 4)
  --cache-blocks N     most KV blocks a block/radix cache holds (default: the pool; 0 = off)
  --block-size B       LabEngine KV block size, a power of two (default 16)
  --slots N            live sequences = slot cache slots (default 4)
  --hash H             the block cache's chained hash: ${BLOCK_HASHES.join(" | ")} (default sha256)
  --out FILE           also write the JSON report to FILE
  --json               print the report as JSON

Example:
  lab prefix-bench data/models/target.gguf --workload few-shot --requests 2 --json`,
  async run(args) {
    const { values, positionals } = parseFlags("prefix-bench", args, {
      engine: { type: "string" }, workload: { type: "string" }, requests: { type: "string" },
      "decode-tokens": { type: "string" }, "cache-blocks": { type: "string" }, "block-size": { type: "string" },
      slots: { type: "string" }, hash: { type: "string" }, out: { type: "string" }, json: { type: "boolean" },
    }, { min: 1, max: 1 });
    const engine = engineFlag("prefix-bench", values.engine) as EngineName;
    const workload = (values.workload ?? "system-prompt") as Workload;
    if (!WORKLOADS.includes(workload)) throw new UsageError(`lab prefix-bench: unknown workload "${workload}" (expected ${WORKLOADS.join(" | ")})`);
    const hash = (values.hash ?? "sha256") as BlockHashName;
    if (!BLOCK_HASHES.includes(hash)) throw new UsageError(`lab prefix-bench: unknown --hash "${hash}" (expected ${BLOCK_HASHES.join(" | ")})`);
    const blockSize = numberFlag("prefix-bench", "block-size", values["block-size"], 16, { min: 1, max: 2048, integer: true });
    if ((blockSize & (blockSize - 1)) !== 0) throw new UsageError(`lab prefix-bench: --block-size must be a power of two, got ${blockSize}`);
    const report = await runPrefixBench({
      model: positionals[0], engine, workload, blockSize, hash,
      requests: numberFlag("prefix-bench", "requests", values.requests, 8, { min: 1, max: 1000, integer: true }),
      decodeTokens: numberFlag("prefix-bench", "decode-tokens", values["decode-tokens"], 4, { min: 1, max: 256, integer: true }),
      cacheBlocks: values["cache-blocks"] === undefined ? undefined : numberFlag("prefix-bench", "cache-blocks", values["cache-blocks"], 0, { min: 0, integer: true }),
      slots: numberFlag("prefix-bench", "slots", values.slots, 4, { min: 1, max: 64, integer: true }),
      onProgress: values.json ? undefined : (line) => say(line),
    });
    if (values.out) {
      await mkdir(dirname(values.out), { recursive: true });
      await writeFile(values.out, JSON.stringify(report, null, 2) + "\n");
    }
    if (values.json) printJson(report);
    else say(prefixBenchText(report));
    return 0;
  },
};
