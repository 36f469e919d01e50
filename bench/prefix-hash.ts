// The block cache's chained hash: sha256 (node:crypto) against xxh64 (xxhash-wasm), on what a lookup
// hashes — every full 16-token block of the chat prompts — and on whole lookups of a warm block cache.
//
//   npx tsx bench/prefix-hash.ts [--model PATH] [--rounds 200] [--out FILE]
//
// Rounds alternate the two hashes (sha256 first on even rounds), so a loaded machine slows both
// alike; the report gives medians per block and per lookup, and the ratio sha256 ÷ xxh64.
// Writes data/results/prefix-hash.json (or --out).
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { cpus, loadavg } from "node:os";
import { openEngine } from "../lab/engine/engine.ts";
import { BlockHashCache, blockHashes, sha256BlockHash, xxh64BlockHash, type BlockHashFn } from "../lab/prefix-cache/block-cache.ts";
import { prefillCached } from "../lab/prefix-cache/cache.ts";
import { workloadPrompts } from "../lab/prefix-cache/bench.ts";
import { median } from "../lab/measure/stats.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { values } = parseArgs({ options: { model: { type: "string" }, rounds: { type: "string" }, out: { type: "string" } } });
const model = values.model ?? join(root, "data/models/target.gguf");
const rounds = Number(values.rounds ?? 200);
const out = values.out ?? join(root, "data/results/prefix-hash.json");
const B = 16;

const engine = await openEngine("lab", model, { contextSize: 2048, maxSequences: 2, threads: 1, kvBlockSize: B });
const prompts = workloadPrompts("system-prompt", 8).map((t) => engine.tokenizer.encode(t, { bos: true }));
const hashes: Record<"sha256" | "xxh64", BlockHashFn> = { sha256: sha256BlockHash, xxh64: await xxh64BlockHash() };
const blocksPerRound = prompts.reduce((s, p) => s + Math.floor(p.length / B), 0);

// 1. Hashing alone: every full block of every prompt, chained.
const perBlockUs: Record<string, number[]> = { sha256: [], xxh64: [] };
for (let r = 0; r < rounds; r++) {
  for (const name of (r % 2 === 0 ? ["sha256", "xxh64"] : ["xxh64", "sha256"]) as ("sha256" | "xxh64")[]) {
    const t0 = performance.now();
    for (const p of prompts) blockHashes(p, B, hashes[name]);
    perBlockUs[name].push((1000 * (performance.now() - t0)) / blocksPerRound);
  }
}

// 2. Whole lookups on a warm cache (hash every block, check tokens, adopt the blocks, release).
const perLookupUs: Record<string, number[]> = { sha256: [], xxh64: [] };
const caches = { sha256: new BlockHashCache(engine, { hash: hashes.sha256 }), xxh64: new BlockHashCache(engine, { hash: hashes.xxh64 }) };
for (const c of Object.values(caches)) await c.release((await prefillCached(engine, c, prompts[0]!)).sequence);
for (let r = 0; r < Math.max(1, Math.floor(rounds / 4)); r++) {
  for (const name of (r % 2 === 0 ? ["sha256", "xxh64"] : ["xxh64", "sha256"]) as ("sha256" | "xxh64")[]) {
    const t0 = performance.now();
    const hit = await caches[name].lookup(prompts[1]!);
    perLookupUs[name].push(1000 * (performance.now() - t0));
    await caches[name].release(hit.sequence);
  }
}
const cachedTokens = { sha256: (await caches.sha256.lookup(prompts[1]!)).cachedTokens, xxh64: (await caches.xxh64.lookup(prompts[1]!)).cachedTokens };
await engine.dispose();

const report = {
  model, blockSize: B, rounds, blocksPerRound, node: process.version, date: new Date().toISOString(),
  machine: { cpus: cpus().length, loadavg1m: loadavg()[0], note: "a shared machine: compare the ratios, measured side by side, not absolute times" },
  perBlockUs: { sha256: median(perBlockUs.sha256), xxh64: median(perBlockUs.xxh64), ratio: median(perBlockUs.sha256) / median(perBlockUs.xxh64) },
  perLookupUs: { sha256: median(perLookupUs.sha256), xxh64: median(perLookupUs.xxh64), ratio: median(perLookupUs.sha256) / median(perLookupUs.xxh64) },
  lookupTokens: prompts[1]!.length,
  sameHits: cachedTokens.sha256 === cachedTokens.xxh64,
};
await mkdir(dirname(out), { recursive: true });
await writeFile(out, JSON.stringify(report, null, 2) + "\n");
process.stderr.write(`per block: sha256 ${report.perBlockUs.sha256.toFixed(2)} µs, xxh64 ${report.perBlockUs.xxh64.toFixed(2)} µs (${report.perBlockUs.ratio.toFixed(2)}×); ` +
  `per ${report.lookupTokens}-token lookup: sha256 ${report.perLookupUs.sha256.toFixed(0)} µs, xxh64 ${report.perLookupUs.xxh64.toFixed(0)} µs (${report.perLookupUs.ratio.toFixed(2)}×); same hits: ${report.sameHits}\nwrote ${out}\n`);
