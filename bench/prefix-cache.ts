// Prefix KV caching on the embedded model: every workload under none / block / radix / slot on
// LabEngine, and none / slot on llama.cpp (the only cache node-llama-cpp allows), measured with
// lab/prefix-cache/bench.ts (methods interleaved per request, each on its own engine).
//
//   npx tsx bench/prefix-cache.ts [--model PATH] [--requests 6] [--decode-tokens 2] [--out FILE]
//
// Checks the aims and prints each as met or not (it does not fail on them: timings on a
// shared machine vary):
//   system-prompt: TTFT of a hit ÷ TTFT cold <= 0.1 on LabEngine (block, radix), <= 0.25 on llama.cpp (slot);
//   unique: TTFT with each cache within 3% of none (the overhead of looking up and indexing), read as
//           the median over requests of the paired ratio (same prompt, adjacent in time);
//   every workload: identical greedy tokens with and without each cache.
// Writes data/results/prefix-cache.json (or --out).
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { cpus, loadavg } from "node:os";
import { WORKLOADS, runPrefixBench, type PrefixBenchReport } from "../lab/prefix-cache/bench.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { values } = parseArgs({
  options: { model: { type: "string" }, requests: { type: "string" }, "decode-tokens": { type: "string" }, out: { type: "string" } },
});
const model = values.model ?? join(root, "data/models/target.gguf");
const requests = Number(values.requests ?? 6);
const decodeTokens = Number(values["decode-tokens"] ?? 2);
const out = values.out ?? join(root, "data/results/prefix-cache.json");

const runs: PrefixBenchReport[] = [];
for (const engine of ["lab", "llama"] as const) {
  for (const workload of WORKLOADS) {
    process.stderr.write(`${engine} ${workload}…\n`);
    const r = await runPrefixBench({ model, engine, workload, requests, decodeTokens, onProgress: (l) => process.stderr.write(`  ${l}\n`) });
    runs.push(r);
  }
}

const find = (engine: string, workload: string) => runs.find((r) => r.engine === engine && r.workload === workload)!;
const aims: { aim: string; value: number | boolean | null; met: boolean }[] = [];
for (const [engine, method, bound] of [["lab", "block", 0.1], ["lab", "radix", 0.1], ["llama", "slot", 0.25]] as const) {
  const v = find(engine, "system-prompt").methods[method]?.ttftHitOverCold ?? null;
  aims.push({ aim: `system-prompt, ${engine} ${method}: TTFT hit ÷ cold <= ${bound}`, value: v, met: v !== null && v <= bound });
}
for (const engine of ["lab", "llama"] as const) {
  const u = find(engine, "unique").methods;
  for (const [method, m] of Object.entries(u)) {
    if (method === "none") continue;
    const v = m.ttftOverNone;
    aims.push({ aim: `unique, ${engine} ${method}: TTFT with the cache ÷ without (median of per-request ratios) <= 1.03`, value: v, met: v <= 1.03 });
  }
}
const same = runs.every((r) => Object.values(r.methods).every((m) => m.sameTokensAsNone));
aims.push({ aim: "identical greedy tokens with and without every cache, every workload", value: same, met: same });

const report = {
  model, requests, decodeTokens, node: process.version, date: new Date().toISOString(),
  machine: { cpus: cpus().length, loadavg1m: loadavg()[0], note: "a shared machine: compare ratios measured in one run, not absolute times" },
  aims, runs,
};
await mkdir(dirname(out), { recursive: true });
await writeFile(out, JSON.stringify(report, null, 2) + "\n");
for (const a of aims) process.stderr.write(`${a.met ? "met    " : "NOT MET"} ${a.aim}: ${typeof a.value === "number" ? a.value.toFixed(3) : a.value}\n`);
process.stderr.write(`wrote ${out}\n`);
