// The expected bytes of tasks 1.1 and 1.2, as ggml itself produced them. The graded tests compare a
// student's Q8_0/Q4_0 with these recorded vectors, not with lab/quant: comparing with the kit's own
// quantizer would let a stub that calls it pass, and would grade ggml-compatibility by proxy.
// Vectors were recorded once from node-llama-cpp's shipped libggml through our C harness
// (test/oracle/ggml-oracle.c: ggml_quantize_chunk with no importance matrix, and the type's
// to_float), so grading needs no C compiler; test/exercises/ggml-vectors.test.ts re-derives them from
// the oracle and fails when they drift. Re-record: `npx tsx test/exercises/ggml-vectors.ts --record`.
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const VECTORS_FILE = fileURLToPath(new URL("./ggml-vectors.json", import.meta.url));

/** Deterministic test rows: sums of three uniforms, roughly Gaussian on [-3, 3). Float32Array[n]. */
export function testRow(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const next = () => ((s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0) / 2 ** 32);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = (next() + next() + next() - 1.5) * 2;
  return x;
}

/** Five blocks of 32 weights (Float32Array[160]) that catch rounding, sign and tie-breaking bugs. */
export function specialBlocks(): Float32Array {
  const blocks: number[][] = [
    new Array(32).fill(0), // all zero: d = 0, must not produce NaN
    new Array(32).fill(-1.25), // constant negative
    Array.from({ length: 32 }, (_, j) => (j - 16) / 4), // a ramp that hits .5 after scaling
    Array.from({ length: 32 }, (_, j) => (j === 7 ? 100 : (j % 5) - 2)), // one outlier
    Array.from({ length: 32 }, (_, j) => (j === 3 ? -3 : j === 9 ? 3 : j / 16)), // tie in |max|: first wins
  ];
  return new Float32Array(blocks.flat());
}

export type VectorType = "Q8_0" | "Q4_0";
type Input = { kind: "random"; n: number; seed: number } | { kind: "special" };

/** One recorded case: an input row, ggml's bytes for it, and ggml's dequantization of those bytes. */
export interface GgmlVector {
  type: VectorType;
  input: Input;
  /** sha256 of the input's float32 bytes: the generator above must not drift from the recording */
  inputSha256: string;
  /** ggml_quantize_chunk(type, input, one row): (n / 32) blocks of 34 (Q8_0) or 18 (Q4_0) bytes, base64 */
  bytes: string;
  /** ggml's to_float of `bytes`: Float32Array[n] as little-endian float32 bytes, base64 */
  values: string;
}

export interface GgmlVectorsFile {
  provenance: Record<string, string>;
  vectors: Record<string, GgmlVector>;
}

/** The cases, by name: random rows of 32, 256 and 4096 weights and the special blocks, per type. */
export const CASES: Record<string, { type: VectorType; input: Input }> = {
  "Q8_0 row of 32": { type: "Q8_0", input: { kind: "random", n: 32, seed: 2 } },
  "Q8_0 row of 256": { type: "Q8_0", input: { kind: "random", n: 256, seed: 3 } },
  "Q8_0 row of 4096": { type: "Q8_0", input: { kind: "random", n: 4096, seed: 4 } },
  "Q8_0 special blocks": { type: "Q8_0", input: { kind: "special" } },
  "Q8_0 row of 512": { type: "Q8_0", input: { kind: "random", n: 512, seed: 5 } },
  "Q4_0 row of 32": { type: "Q4_0", input: { kind: "random", n: 32, seed: 8 } },
  "Q4_0 row of 256": { type: "Q4_0", input: { kind: "random", n: 256, seed: 9 } },
  "Q4_0 row of 4096": { type: "Q4_0", input: { kind: "random", n: 4096, seed: 10 } },
  "Q4_0 special blocks": { type: "Q4_0", input: { kind: "special" } },
  "Q4_0 row of 512": { type: "Q4_0", input: { kind: "random", n: 512, seed: 11 } },
};

export function inputOf(input: Input): Float32Array {
  return input.kind === "special" ? specialBlocks() : testRow(input.n, input.seed);
}

const sha256 = (x: Float32Array) => createHash("sha256").update(new Uint8Array(x.buffer, x.byteOffset, x.byteLength)).digest("hex");
const toBase64 = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("base64");

/** A case ready to grade: the input row and what ggml made of it. */
export interface ExpectedCase {
  input: Float32Array;
  /** ggml's bytes, Uint8Array[(n / 32) × block bytes] */
  bytes: Uint8Array;
  /** ggml's dequantized values of `bytes`, Float32Array[n] */
  values: Float32Array;
}

let loaded: GgmlVectorsFile | undefined;

/** The recorded case `name`, with its input regenerated and checked against the recording's hash. */
export function ggmlCase(name: keyof typeof CASES & string): ExpectedCase {
  loaded ??= JSON.parse(readFileSync(VECTORS_FILE, "utf8")) as GgmlVectorsFile;
  const v = loaded.vectors[name];
  if (!v) throw new Error(`${VECTORS_FILE} has no vector "${name}": re-record with npx tsx test/exercises/ggml-vectors.ts --record`);
  const input = inputOf(v.input);
  if (sha256(input) !== v.inputSha256) throw new Error(`vector "${name}": the input generator no longer gives the recorded input; re-record the vectors`);
  const raw = Buffer.from(v.values, "base64");
  const values = new Float32Array(raw.byteLength / 4);
  new Uint8Array(values.buffer).set(raw);
  return { input, bytes: new Uint8Array(Buffer.from(v.bytes, "base64")), values };
}

/** Every case computed by ggml now (needs gcc and node-llama-cpp's libraries: test/oracle/ggml.ts). */
export async function recordVectors(): Promise<GgmlVectorsFile> {
  const { ggmlQuantize, ggmlDequantize, LLAMA_BINS_DIR } = await import("../oracle/ggml.ts");
  const llamaInfo = JSON.parse(readFileSync(fileURLToPath(new URL("../../node_modules/node-llama-cpp/llama/llama.cpp.info.json", import.meta.url)), "utf8")) as { tag: string; llamaCppGithubRepo: string };
  const platform = JSON.parse(readFileSync(fileURLToPath(new URL("../../node_modules/@node-llama-cpp/linux-x64/package.json", import.meta.url)), "utf8")) as { name: string; version: string };
  const lib = readFileSync(`${LLAMA_BINS_DIR}/libggml-base.so`);
  const vectors: Record<string, GgmlVector> = {};
  for (const [name, c] of Object.entries(CASES)) {
    const input = inputOf(c.input);
    const bytes = ggmlQuantize(c.type, input, input.length);
    const values = ggmlDequantize(c.type, bytes, input.length);
    vectors[name] = { type: c.type, input: c.input, inputSha256: sha256(input), bytes: toBase64(bytes), values: toBase64(new Uint8Array(values.buffer, values.byteOffset, values.byteLength)) };
  }
  return {
    provenance: {
      producer: "ggml_quantize_chunk(type, x, 0, 1, n, NULL) and ggml_get_type_traits(type)->to_float, through test/oracle/ggml-oracle.c",
      library: `libggml-base.so of ${platform.name} ${platform.version} (${llamaInfo.llamaCppGithubRepo} ${llamaInfo.tag}), sha256 ${createHash("sha256").update(lib).digest("hex")}`,
      inputs: "test/exercises/ggml-vectors.ts testRow(n, seed) / specialBlocks()",
      recordedWith: "npx tsx test/exercises/ggml-vectors.ts --record",
      checkedBy: "test/exercises/ggml-vectors.test.ts (recomputes every vector with the oracle)",
    },
    vectors,
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1] && process.argv.includes("--record")) {
  const file = await recordVectors();
  writeFileSync(VECTORS_FILE, JSON.stringify(file, null, 1) + "\n");
  console.error(`wrote ${Object.keys(file.vectors).length} vectors to ${VECTORS_FILE}`);
}
