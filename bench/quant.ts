// Quantization throughput, reported not asserted: for every format, quantize / dequantize / dotRow
// speed in MB/s of f32 weights, and each as a ratio to a plain Float32Array copy of the same size timed
// in the same run (so the ratio means something on any machine, even a busy one). Medians over repeats.
//
//   npx tsx bench/quant.ts [--weights N] [--repeats R] [--types Q4_0,Q8_0,...] [--json]
import { parseArgs } from "node:util";
import type { GgmlTypeName } from "../lab/ggml-types.ts";
import { quantFormat, supportedTypes } from "../lab/quant/index.ts";

const { values } = parseArgs({
  options: {
    weights: { type: "string", default: String(1 << 20) },
    repeats: { type: "string", default: "9" },
    types: { type: "string" },
    json: { type: "boolean", default: false },
  },
});
const ROW = 4096; // weights per row: a typical hidden size, a multiple of every block size
const nWeights = Math.max(ROW, Math.floor(Number(values.weights) / ROW) * ROW);
const repeats = Math.max(1, Number(values.repeats));
const types = (values.types?.split(",") ?? supportedTypes()) as GgmlTypeName[];

// Seeded, weight-like data: gaussian-ish with a per-row scale.
function testWeights(n: number, seed = 1): Float32Array {
  let s = seed >>> 0;
  const uniform = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const w = new Float32Array(n);
  for (let r = 0; r < n / ROW; r++) {
    const scale = 0.02 * Math.exp(0.5 * (uniform() - 0.5));
    for (let i = 0; i < ROW; i++) w[r * ROW + i] = scale * (uniform() + uniform() + uniform() - 1.5);
  }
  return w;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Median seconds of fn over the repeats, after warm-up calls that let the JIT optimize it. */
function time(fn: () => void): number {
  for (let w = 0; w < 3; w++) fn();
  const t: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    fn();
    t.push((performance.now() - t0) / 1000);
  }
  return median(t);
}

const src = testWeights(nWeights);
const mb = (4 * nWeights) / 1e6; // MB of f32 input
const copyTarget = new Float32Array(nWeights);
const copySeconds = time(() => copyTarget.set(src));
const x = testWeights(ROW, 2);
let sink = 0;

interface Row { type: string; bpw: number; quantizeMBs: number; dequantizeMBs: number; dotMBs: number;
  quantizeVsCopy: number; dequantizeVsCopy: number; dotVsCopy: number }
const rows: Row[] = [];
for (const type of types) {
  const f = quantFormat(type);
  const rowBytes = (ROW / f.blockSize) * f.typeSize;
  const nRows = nWeights / ROW;
  const bytes = new Uint8Array(rowBytes * nRows);
  const out = new Float32Array(nWeights);
  const quantize = time(() => {
    for (let r = 0; r < nRows; r++) f.quantizeRow(src.subarray(r * ROW, (r + 1) * ROW), bytes, r * rowBytes);
  });
  const dequantize = time(() => {
    for (let r = 0; r < nRows; r++) f.dequantizeRow(bytes, r * rowBytes, out.subarray(r * ROW, (r + 1) * ROW));
  });
  const dot = time(() => {
    for (let r = 0; r < nRows; r++) sink += f.dotRow(bytes, r * rowBytes, x, 0, ROW);
  });
  rows.push({
    type, bpw: f.bitsPerWeight,
    quantizeMBs: mb / quantize, dequantizeMBs: mb / dequantize, dotMBs: mb / dot,
    quantizeVsCopy: copySeconds / quantize, dequantizeVsCopy: copySeconds / dequantize, dotVsCopy: copySeconds / dot,
  });
}

const report = { weights: nWeights, repeats, copyMBs: mb / copySeconds, rows, sink: Number.isFinite(sink) };
if (values.json) {
  process.stdout.write(JSON.stringify(report, null, 2) + "\n");
} else {
  const fmt = (v: number, d = 1) => v.toFixed(d).padStart(9);
  console.log(`${nWeights} weights (${mb.toFixed(1)} MB f32), median of ${repeats}; Float32Array copy: ${(mb / copySeconds).toFixed(0)} MB/s`);
  console.log(`${"type".padEnd(6)} ${"bpw".padStart(7)} ${"quant MB/s".padStart(11)} ${"dequant".padStart(9)} ${"dot".padStart(9)}   ${"quant/copy".padStart(11)} ${"deq/copy".padStart(9)} ${"dot/copy".padStart(9)}`);
  for (const r of rows) {
    console.log(`${r.type.padEnd(6)} ${r.bpw.toFixed(3).padStart(7)} ${fmt(r.quantizeMBs).padStart(11)} ${fmt(r.dequantizeMBs)} ${fmt(r.dotMBs)}   ` +
      `${fmt(r.quantizeVsCopy, 4).padStart(11)} ${fmt(r.dequantizeVsCopy, 4)} ${fmt(r.dotVsCopy, 4)}`);
  }
}
