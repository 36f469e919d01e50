// Test-only oracle: ggml itself, as shipped in node-llama-cpp's prebuilt libraries, driven through a
// tiny C program of ours (ggml-oracle.c) that is compiled with gcc on first use into a temp dir and
// cached there by the hash of its source. Tests compare our TypeScript quantizers against it byte for
// byte. Synchronous on purpose: tests call it like a pure function.
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { GgmlType, type GgmlTypeName } from "../../lab/ggml-types.ts";

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, "../..");

/** Folder holding libggml-base.so and libllama.v0.4.0.so of the installed node-llama-cpp. */
export const LLAMA_BINS_DIR = join(REPO, "node_modules/@node-llama-cpp/linux-x64/bins/linux-x64");

/**
 * Compiles a C source file of ours against the shipped libraries (once per source hash) and returns
 * the executable's path. `libs` are linker names, e.g. ["ggml-base"] or [":libllama.v0.4.0.so"].
 */
export function buildOracle(sourceFile: string, libs: string[]): string {
  const source = readFileSync(sourceFile);
  const hash = createHash("sha256").update(source).update(libs.join(",")).update(LLAMA_BINS_DIR).digest("hex").slice(0, 16);
  const dir = join(tmpdir(), "inference-lab-oracle");
  const exe = join(dir, `${sourceFile.split("/").pop()!.replace(/\.c$/, "")}-${hash}`);
  if (existsSync(exe)) return exe;
  if (!existsSync(join(LLAMA_BINS_DIR, "libggml-base.so"))) {
    throw new Error(`ggml oracle: node-llama-cpp's prebuilt libraries are missing at ${LLAMA_BINS_DIR} (run npm ci)`);
  }
  mkdirSync(dir, { recursive: true });
  // Build under a unique name, then rename: parallel test workers may race to build the same oracle.
  const partial = `${exe}.${process.pid}.partial`;
  execFileSync("gcc", ["-O1", "-std=c11", "-o", partial, sourceFile, `-L${LLAMA_BINS_DIR}`,
    ...libs.map((l) => `-l${l}`), `-Wl,-rpath,${LLAMA_BINS_DIR}`], { stdio: ["ignore", "ignore", "pipe"] });
  renameSync(partial, exe);
  return exe;
}

let ggmlExe: string | undefined;
function ggmlOracle(): string {
  ggmlExe ??= buildOracle(join(HERE, "ggml-oracle.c"), ["ggml-base"]);
  return ggmlExe;
}

function run(args: string[], input: Uint8Array): Buffer {
  const r = spawnSync(ggmlOracle(), args, { input, maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`ggml oracle ${args.join(" ")} failed (${r.status ?? r.signal}): ${r.stderr}`);
  return r.stdout;
}

/** ggml_quantize_chunk(type, rows of nPerRow weights, imatrix = NULL): the bytes llama-quantize writes. */
export function ggmlQuantize(type: GgmlTypeName, f32: Float32Array, nPerRow: number): Uint8Array {
  if (f32.length % nPerRow !== 0) throw new RangeError(`ggmlQuantize: ${f32.length} values are not whole rows of ${nPerRow}`);
  const out = run(["quantize", String(GgmlType[type]), String(nPerRow)], new Uint8Array(f32.buffer, f32.byteOffset, f32.byteLength));
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** ggml's own to_float of n weights stored as `type`. */
export function ggmlDequantize(type: GgmlTypeName, bytes: Uint8Array, n: number): Float32Array {
  const out = run(["dequantize", String(GgmlType[type]), String(n)], bytes);
  // Copy: Buffer memory may be pooled and unaligned for a Float32Array view.
  return new Float32Array(new Uint8Array(out).buffer);
}

/** ggml_row_size(type, n). */
export function ggmlRowSize(type: GgmlTypeName, n: number): number {
  return Number(run(["row-size", String(GgmlType[type]), String(n)], new Uint8Array()).toString().trim());
}
