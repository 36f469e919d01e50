// Trainer speed, measured side by side in one process so the ratios survive a noisy machine:
//   1. the matmul kernel: textbook JS loop vs 4×4 register-blocked JS vs WebAssembly SIMD (GFLOP/s)
//   2. training throughput (tokens/s) of the target and draft configs: 1 thread inline vs N workers,
//      and the projected wall time of their full schedules.
// Usage: npx tsx bench/train.ts [--seconds S] [--workers N] [--json]
// Rounds alternate between the variants; medians are reported.
import { parseArgs } from "node:util";
import { GradientPool } from "../lab/train/parallel.ts";
import { matmulNT, matmulNTNaive } from "../lab/train/matmul.ts";
import { initParams, macsPerToken, paramLayout, seededRandom } from "../lab/train/model.ts";
import { SimdArena } from "../lab/train/simd.ts";
import { trainSettings } from "../lab/train/configs.ts";
import { trainBatch } from "../lab/train/trainer.ts";

const { values } = parseArgs({ options: { seconds: { type: "string" }, workers: { type: "string" }, json: { type: "boolean" } } });
const seconds = Number(values.seconds ?? 3);
const workers = Number(values.workers ?? 2);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const log = (...s: unknown[]) => process.stderr.write(s.join(" ") + "\n");

// ─── 1. Matmul kernels ───────────────────────────────────────────────────────────────────────────
// The shape of a forward projection in the target: 512 positions × 256 inputs → 512 outputs.

const M = 512, N = 512, K = 256;
const arena = SimdArena.create(M * K + N * K + M * N, 3);
if (!arena) throw new Error("WebAssembly SIMD is unavailable in this Node");
const A = arena.alloc(M * K), B = arena.alloc(N * K), C = arena.alloc(M * N);
const rand = seededRandom(1);
for (let i = 0; i < A.length; i++) A[i] = rand() - 0.5;
for (let i = 0; i < B.length; i++) B[i] = rand() - 0.5;
const jsA = Float32Array.from(A), jsB = Float32Array.from(B), jsC = new Float32Array(M * N);
const kernels: Record<string, () => void> = {
  "JS triple loop": () => matmulNTNaive(jsC, jsA, jsB, M, N, K),
  "JS 4×4 register-blocked": () => matmulNT(jsC, jsA, jsB, M, N, K),
  "WebAssembly SIMD 2×4": () => matmulNT(C, A, B, M, N, K),
};
const gflops: Record<string, number[]> = Object.fromEntries(Object.keys(kernels).map((k) => [k, []]));
for (const f of Object.values(kernels)) f(); // warm up
const rounds = 5;
for (let r = 0; r < rounds; r++) {
  for (const [name, f] of Object.entries(kernels)) {
    const t0 = performance.now();
    let n = 0;
    while (performance.now() - t0 < (seconds * 1000) / (3 * rounds) || n < 2) { f(); n++; }
    gflops[name].push((2 * M * N * K * n) / ((performance.now() - t0) / 1000) / 1e9);
  }
}
const kernelRows = Object.entries(gflops).map(([name, xs]) => ({ kernel: name, gflops: median(xs) }));
const naive = kernelRows[0].gflops;
log(`matmul ${M}×${K} · (${N}×${K})ᵀ, median of ${rounds} rounds:`);
for (const k of kernelRows) log(`  ${k.kernel.padEnd(26)} ${k.gflops.toFixed(2).padStart(6)} GFLOP/s   ×${(k.gflops / naive).toFixed(2)} vs the triple loop`);

// ─── 2. Training throughput ──────────────────────────────────────────────────────────────────────

const nVocab = 1024;
const stream = Int32Array.from({ length: 200_000 }, () => Math.floor(rand() * nVocab));
const throughput: { config: string; threads: number; tokensPerSecond: number; projectedMinutes: number }[] = [];
for (const config of ["target", "draft"] as const) {
  const s = trainSettings(config, nVocab);
  const layout = paramLayout(s.shape);
  const pools = await Promise.all([0, workers].map((w) => GradientPool.start(s.shape, layout.total, s.batch, s.seqLen, w)));
  for (const p of pools) initParams(s.shape, layout, p.params, 1);
  const rates: number[][] = pools.map(() => []);
  for (let r = 0; r < 3; r++) {
    for (let i = 0; i < pools.length; i++) {
      await pools[i].compute(trainBatch(s, stream, r), s.batch, s.seqLen); // warm-up / JIT
      const t0 = performance.now();
      let steps = 0;
      while (performance.now() - t0 < (seconds * 1000) / 3 || steps < 1) {
        await pools[i].compute(trainBatch(s, stream, steps), s.batch, s.seqLen);
        steps++;
      }
      rates[i].push((steps * s.batch * s.seqLen) / ((performance.now() - t0) / 1000));
    }
  }
  for (const p of pools) await p.close();
  const inline = median(rates[0]), parallel = median(rates[1]);
  const total = s.steps * s.batch * s.seqLen;
  throughput.push({ config, threads: 1, tokensPerSecond: inline, projectedMinutes: total / inline / 60 });
  throughput.push({ config, threads: workers, tokensPerSecond: parallel, projectedMinutes: total / parallel / 60 });
  log(`${config}: ${(macsPerToken(s.shape, s.seqLen) / 1e6).toFixed(2)} M multiply-adds/token, ${total.toLocaleString("en-US")} tokens in its schedule`);
  log(`  1 thread   ${inline.toFixed(0).padStart(6)} tok/s   → ${(total / inline / 60).toFixed(1)} min`);
  log(`  ${workers} workers  ${parallel.toFixed(0).padStart(6)} tok/s   → ${(total / parallel / 60).toFixed(1)} min   ×${(parallel / inline).toFixed(2)} vs 1 thread`);
}
const both = throughput.filter((t) => t.threads === workers).reduce((a, t) => a + t.projectedMinutes, 0);
log(`projected \`lab train\` (target + draft, ${workers} workers, excluding evaluation): ${both.toFixed(1)} min`);
if (values.json) process.stdout.write(JSON.stringify({ matmul: kernelRows, throughput, projectedMinutes: both }, null, 2) + "\n");
