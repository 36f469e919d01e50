// Heavier bit-exactness check than the unit tests can afford: every format lab/quant supports,
// quantized by us and by ggml (ggml_quantize_chunk, no imatrix) on many seeded rows of several
// distributions, bytes compared; then our dequantization of ggml's bytes compared with ggml's to_float.
//
//   npx tsx test/oracle/stress.ts [--weights N] [--seed S] [--types Q4_0,Q4_K,...]
// Exits 1 on any mismatch.
import { parseArgs } from "node:util";
import type { GgmlTypeName } from "../../lab/ggml-types.ts";
import { dequantizeTensor, quantFormat, quantizeTensor, supportedTypes } from "../../lab/quant/index.ts";
import { ggmlDequantize, ggmlQuantize } from "./ggml.ts";
import { mulberry32 } from "../../lab/random.ts";

const { values } = parseArgs({
  options: { weights: { type: "string", default: String(1 << 22) }, seed: { type: "string", default: "1" }, types: { type: "string" } },
});
const ROW = 4096;
const nRows = Math.max(1, Math.floor(Number(values.weights) / ROW));
const types = (values.types?.split(",") ?? supportedTypes()) as GgmlTypeName[];

const rng = mulberry32;

/** Rows drawn from a different distribution each: gaussian, uniform, heavy-tailed, one-signed, tiny, huge, sparse. */
function data(seed: number): Float32Array {
  const r = rng(seed);
  const x = new Float32Array(nRows * ROW);
  for (let row = 0; row < nRows; row++) {
    const kind = row % 7;
    const scale = Math.exp(6 * (r() - 0.5));
    for (let i = 0; i < ROW; i++) {
      const g = r() + r() + r() + r() - 2;
      const v = kind === 0 ? g : kind === 1 ? r() - 0.5 : kind === 2 ? g / Math.max(1e-3, r()) : kind === 3 ? Math.abs(g)
        : kind === 4 ? g * 1e-7 : kind === 5 ? g * 1e4 : r() < 0.9 ? 0 : g;
      x[row * ROW + i] = v * scale;
    }
  }
  return x;
}

const x = data(Number(values.seed));
let failures = 0;
for (const type of types) {
  const f = quantFormat(type);
  if (ROW % f.blockSize !== 0) continue;
  const t0 = performance.now();
  const ours = quantizeTensor(type, x, [ROW, nRows]);
  const theirs = ggmlQuantize(type, x, ROW);
  let byteDiffs = 0;
  for (let i = 0; i < ours.length; i++) if (ours[i] !== theirs[i]) byteDiffs++;
  const a = new Uint32Array(dequantizeTensor(type, theirs, [ROW, nRows]).buffer);
  const b = new Uint32Array(ggmlDequantize(type, theirs, ROW * nRows).buffer);
  let valueDiffs = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) valueDiffs++; // IEEE bits: -0 vs 0 counts too
  const ok = byteDiffs === 0 && ours.length === theirs.length && valueDiffs === 0;
  if (!ok) failures++;
  console.log(`${type.padEnd(5)} ${ok ? "bit-exact" : "MISMATCH "}  ${nRows * ROW} weights  bytes differing: ${byteDiffs}  ` +
    `dequantized values differing: ${valueDiffs}  (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
}
process.exitCode = failures ? 1 : 0;
