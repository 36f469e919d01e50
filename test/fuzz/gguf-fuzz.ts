// Fuzzing the GGUF reader and validator. Every case is a valid tiny llama file, damaged: cut short,
// bits flipped, counts and lengths made huge, type ids and data offsets pointed anywhere, header
// bytes spliced, or metadata edited (keys dropped, types changed), or strings given bytes that are
// not plain text (a BOM, NUL, a lone continuation byte, a truncated or overlong sequence, an encoded
// surrogate, FF). Each damaged file is written
// to disk and opened the way an engine opens it. The contract: openGguf either succeeds (the damage
// left a valid file, whose tensors must then also read) or throws a GgufError; anything else
// (another exception type, a hang, a crash) is a failure. Each case must finish in under a second.
// A file accepted after a string edit must also write back byte for byte (strings are bytes).
//
// With --llama N, up to N of the files we accepted are then loaded by llama.cpp in a child process
// (tokenize every UTF-8 byte, evaluate a few tokens): an abort or a load error there is a file our
// validator should have rejected, and counts as a failure.
//
//   npx tsx test/fuzz/gguf-fuzz.ts --count 100000 --seed 7 [--llama 200]
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  GgufError, GgufValueType, ggufStringFromBytes, ggufStringToBytes, openGguf, parseGgufBytes, readTensorBytes, type GgufFile,
} from "../../lab/gguf/index.ts";
import { encodeGgufHeader, type GgufDocument } from "../../lab/gguf/writer.ts";
import { NUL_PIECES, TRICKY_PIECES, tinyLlamaDocument } from "./gguf-fixtures.ts";
import { mulberry32 } from "../../lab/random.ts";

// ---------------------------------------------------------------------------------------------
// Seeded randomness (mulberry32)

export function makeRng(seed: number) {
  const next = mulberry32(seed);
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
  return { next, int, pick };
}
type Rng = ReturnType<typeof makeRng>;

// ---------------------------------------------------------------------------------------------
// The seed file and where its fields are

function serialize(doc: GgufDocument): Uint8Array {
  const { header, alignment } = encodeGgufHeader(doc);
  const parts: Uint8Array[] = [header];
  for (const t of doc.tensors) {
    parts.push(t.data, new Uint8Array(Math.ceil(t.data.length / alignment) * alignment - t.data.length));
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

interface Fields {
  /** byte positions of u64 counts and lengths: header counts, key lengths, array counts, name lengths, dims */
  u64Counts: number[];
  /** byte positions of u32 type ids: value types, array item types, tensor ggml types, n_dims */
  u32Types: number[];
  /** byte positions of the tensors' u64 data offsets */
  dataOffsets: number[];
  /** where string bytes lie (keys, string values, array items, tensor names), non-empty ones only */
  strings: { at: number; length: number }[];
  headerEnd: number;
}

function locateFields(file: GgufFile): Fields {
  const f: Fields = { u64Counts: [8, 16], u32Types: [], dataOffsets: [], headerEnd: file.dataOffset, strings: [] };
  const addString = (at: number, length: number) => { if (length > 0) f.strings.push({ at, length }); };
  for (const e of file.metadata.values()) {
    const keyLen = e.entryOffset!;
    f.u64Counts.push(keyLen);
    addString(keyLen + 8, Buffer.byteLength(e.key));
    const typeAt = keyLen + 8 + Buffer.byteLength(e.key);
    f.u32Types.push(typeAt);
    if (e.type === GgufValueType.ARRAY) {
      f.u32Types.push(typeAt + 4);
      f.u64Counts.push(typeAt + 8);
      if (e.itemType === GgufValueType.STRING) {
        let at = typeAt + 16;
        for (const item of e.value as string[]) {
          const n = ggufStringToBytes(item).length;
          addString(at + 8, n);
          at += 8 + n;
        }
      }
    } else if (e.type === GgufValueType.STRING) {
      f.u64Counts.push(typeAt + 4);
      addString(typeAt + 12, ggufStringToBytes(e.value as string).length);
    }
  }
  for (const t of file.tensors) {
    f.u64Counts.push(t.infoOffset);
    addString(t.infoOffset + 8, Buffer.byteLength(t.name));
    const dimsAt = t.infoOffset + 8 + Buffer.byteLength(t.name);
    f.u32Types.push(dimsAt);
    t.ne.forEach((_, d) => f.u64Counts.push(dimsAt + 4 + 8 * d));
    const typeAt = dimsAt + 4 + 8 * t.ne.length;
    f.u32Types.push(typeAt);
    f.dataOffsets.push(typeAt + 4);
  }
  return f;
}

// ---------------------------------------------------------------------------------------------
// Mutations

const HUGE = [1n << 60n, (1n << 64n) - 1n, 1n << 63n, 1n << 32n, (1n << 31n) - 1n, 1n << 53n, 0n];

/** Byte sequences that are not plain text, or that a careless decoder changes (a BOM). */
const STRING_BYTES = [...TRICKY_PIECES, ...NUL_PIECES].map(([, b]) => b).filter((b) => b.length > 0);

type Mutator = (bytes: Uint8Array, f: Fields, rng: Rng) => Uint8Array;

/** Positions in the header three times out of four: that is where the parser lives. */
const position = (bytes: Uint8Array, f: Fields, rng: Rng) => (rng.next() < 0.75 ? rng.int(f.headerEnd) : rng.int(bytes.length));

const setU64 = (bytes: Uint8Array, at: number, v: bigint) => {
  const out = bytes.slice();
  new DataView(out.buffer).setBigUint64(at, BigInt.asUintN(64, v), true);
  return out;
};
const setU32 = (bytes: Uint8Array, at: number, v: number) => {
  const out = bytes.slice();
  new DataView(out.buffer).setUint32(at, v >>> 0, true);
  return out;
};

export const MUTATORS: Record<string, Mutator> = {
  truncate: (b, f, rng) => b.subarray(0, position(b, f, rng)),
  flipBits: (b, f, rng) => {
    const out = b.slice();
    for (let i = 1 + rng.int(8); i > 0; i--) out[position(b, f, rng)] ^= 1 << rng.int(8);
    return out;
  },
  randomBytes: (b, f, rng) => {
    const out = b.slice();
    const at = position(b, f, rng);
    for (let i = 0; i < 1 + rng.int(16) && at + i < out.length; i++) out[at + i] = rng.int(256);
    return out;
  },
  hugeCount: (b, f, rng) => setU64(b, rng.pick(f.u64Counts), rng.pick(HUGE)),
  nudgedCount: (b, f, rng) => {
    const at = rng.pick(f.u64Counts);
    const v = new DataView(b.buffer, b.byteOffset).getBigUint64(at, true);
    return setU64(b, at, v + BigInt(rng.int(5) - 2));
  },
  badTypeId: (b, f, rng) => setU32(b, rng.pick(f.u32Types), rng.pick([9, 13, 31, 39, 40, 255, 0xffffffff, rng.int(64)])),
  offsetOutside: (b, f, rng) => {
    const at = rng.pick(f.dataOffsets);
    const v = new DataView(b.buffer, b.byteOffset).getBigUint64(at, true);
    return setU64(b, at, rng.pick([BigInt(b.length), v + 1n, v + 32n, v - 32n, 1n << 40n, (1n << 64n) - 32n, 0n]));
  },
  /** a string's bytes (key, value, token, tensor name) partly overwritten, its length kept */
  stringBytes: (b, f, rng) => {
    const s = rng.pick(f.strings);
    const seq = rng.pick(STRING_BYTES).subarray(0, s.length);
    const out = b.slice();
    out.set(seq, s.at + rng.int(s.length - seq.length + 1));
    return out;
  },
  spliceHeader: (b, f, rng) => {
    const at = rng.int(f.headerEnd);
    const len = 1 + rng.int(64);
    if (rng.next() < 0.5) return new Uint8Array([...b.subarray(0, at), ...b.subarray(at + len)]); // delete
    return new Uint8Array([...b.subarray(0, at), ...b.subarray(at, at + len), ...b.subarray(at)]); // duplicate
  },
};

/** A token or a string value replaced by (or prefixed with) bytes that are not plain text. */
function stringMutation(rng: Rng): Uint8Array {
  const doc = tinyLlamaDocument();
  const odd = ggufStringFromBytes(rng.pick(STRING_BYTES));
  const strings = doc.metadata.filter((e) => e.type === GgufValueType.STRING || (e.type === GgufValueType.ARRAY && e.itemType === GgufValueType.STRING));
  const entry = rng.next() < 0.7 ? doc.metadata.find((e) => e.key === "tokenizer.ggml.tokens")! : rng.pick(strings);
  const edit = (s: string) => (rng.next() < 0.5 ? odd : rng.next() < 0.5 ? odd + s : s + odd);
  if (entry.type === GgufValueType.STRING) entry.value = edit(entry.value as string);
  else {
    const items = [...(entry.value as string[])];
    const i = rng.int(items.length);
    items[i] = edit(items[i]);
    entry.value = items;
  }
  return serialize(doc);
}

/** A file accepted after a string edit must encode back to its own header, byte for byte. */
function headerRoundTrips(file: GgufFile, bytes: Uint8Array): boolean {
  const tensors = file.tensors.map((t) => ({ name: t.name, type: t.type, ne: t.ne, data: new Uint8Array(t.byteSize) }));
  const { header } = encodeGgufHeader({ version: file.version as 2 | 3, alignment: file.alignment, metadata: [...file.metadata.values()], tensors });
  return Buffer.from(header).equals(Buffer.from(bytes.subarray(0, file.dataOffset)));
}

/** Edits at the document level: still well-formed GGUF, but maybe no longer a loadable llama. */
function semanticMutation(rng: Rng): Uint8Array {
  const doc = tinyLlamaDocument();
  const i = rng.int(doc.metadata.length);
  const entry = doc.metadata[i];
  switch (rng.int(4)) {
    case 0:
      doc.metadata.splice(i, 1);
      break;
    case 1: // same number, another integer type
      if (typeof entry.value === "number") entry.type = rng.pick([GgufValueType.INT32, GgufValueType.UINT16, GgufValueType.UINT8, GgufValueType.UINT32]);
      else if (entry.type === GgufValueType.ARRAY && entry.itemType === GgufValueType.INT32) entry.itemType = GgufValueType.UINT32;
      else doc.metadata.splice(i, 1);
      break;
    case 2:
      doc.tensors.splice(rng.int(doc.tensors.length), 1);
      break;
    default: { // a token renamed to one that exists already, or to a fresh string
      const tokens = [...(doc.metadata.find((e) => e.key === "tokenizer.ggml.tokens")!.value as string[])];
      tokens[rng.int(tokens.length)] = rng.next() < 0.5 ? tokens[rng.int(tokens.length)] : `fresh${rng.int(1000)}`;
      doc.metadata.find((e) => e.key === "tokenizer.ggml.tokens")!.value = tokens;
    }
  }
  try {
    return serialize(doc);
  } catch {
    return serialize(tinyLlamaDocument()); // the writer refused the edit (e.g. a value out of range): keep the seed
  }
}

// ---------------------------------------------------------------------------------------------
// The run

export interface FuzzResult {
  cases: number;
  rejected: number;
  accepted: number;
  failures: { case: number; mutation: string; error: string }[];
  maxCaseMs: number;
  byMutation: Record<string, { rejected: number; accepted: number }>;
  /** accepted files that llama.cpp also loaded and ran (only with llamaCheck) */
  llamaLoaded: number;
}

const CHECKER = join(import.meta.dirname, "gguf-llama-check.mjs");

/** Loads each file in llama.cpp in a child process; returns the files llama.cpp did not take. */
export function llamaCppDisagreements(paths: string[]): { path: string; error: string }[] {
  const bad: { path: string; error: string }[] = [];
  let from = 0;
  while (from < paths.length) {
    const batch = paths.slice(from);
    const r = spawnSync(process.execPath, [CHECKER, ...batch], { encoding: "utf8", timeout: 120_000, maxBuffer: 16 << 20 });
    let started = -1;
    let finished = -1;
    for (const line of r.stdout.split("\n")) {
      const [word, index, ...rest] = line.split(" ");
      const i = Number(index);
      if (word === "start") started = i;
      if (word === "ok") finished = i;
      if (word === "error") {
        finished = i;
        bad.push({ path: batch[i], error: `llama.cpp refused a file we accepted: ${rest.join(" ")}` });
      }
    }
    if (finished === batch.length - 1) break;
    // The child died inside file `started` (an abort, a signal, or a timeout).
    const culprit = Math.max(started, finished + 1);
    bad.push({ path: batch[culprit], error: `llama.cpp died (${r.signal ?? `exit ${r.status}`}) on a file we accepted: ${r.stderr.slice(-300)}` });
    from += culprit + 1;
  }
  return bad;
}

export async function runFuzz(opts: { count: number; seed: number; llamaCheck?: number; keepFailuresIn?: string;
  /** sees every rejected case (for studying where we are stricter than llama.cpp) */
  onRejected?: (c: number, mutation: string, bytes: Uint8Array, err: GgufError) => void;
  log?: (line: string) => void }): Promise<FuzzResult> {
  const rng = makeRng(opts.seed);
  const seedBytes = serialize(tinyLlamaDocument());
  const fields = locateFields(parseGgufBytes(seedBytes));
  const dir = mkdtempSync(join(tmpdir(), "gguf-fuzz-"));
  const result: FuzzResult = { cases: 0, rejected: 0, accepted: 0, failures: [], maxCaseMs: 0, byMutation: {}, llamaLoaded: 0 };
  const kept: { path: string; case: number; mutation: string }[] = [];
  const names = [...Object.keys(MUTATORS), "semantic", "semanticString"];
  try {
    for (let c = 0; c < opts.count; c++) {
      const mutation = rng.pick(names);
      const bytes = mutation === "semantic" ? semanticMutation(rng) : mutation === "semanticString" ? stringMutation(rng) :
        MUTATORS[mutation](seedBytes, fields, rng);
      const path = join(dir, `case-${c % 16}.gguf`);
      writeFileSync(path, bytes);
      const stats = (result.byMutation[mutation] ??= { rejected: 0, accepted: 0 });
      const t0 = performance.now();
      try {
        const file = await openGguf(path);
        // A file that passed must hold its tensors: read the last one (the one nearest the end).
        const last = file.tensors[file.tensors.length - 1];
        const data = await readTensorBytes(file, last.name);
        if (data.length !== last.byteSize) throw new Error(`tensor ${last.name}: read ${data.length} of ${last.byteSize} bytes`);
        if ((mutation === "stringBytes" || mutation === "semanticString") && !headerRoundTrips(file, bytes)) {
          throw new Error("the header did not write back byte for byte");
        }
        result.accepted++;
        stats.accepted++;
        // Only files that still claim to be llama models go to llama.cpp: a file that lost its
        // architecture is a valid container but no model, and llamaHparams refuses it.
        if (kept.length < (opts.llamaCheck ?? 0) && file.metadata.get("general.architecture")?.value === "llama") {
          const copy = join(dir, `accepted-${c}.gguf`);
          copyFileSync(path, copy);
          kept.push({ path: copy, case: c, mutation });
        }
      } catch (err) {
        if (err instanceof GgufError) {
          result.rejected++;
          stats.rejected++;
          opts.onRejected?.(c, mutation, bytes, err);
        } else {
          result.failures.push({ case: c, mutation, error: String((err as Error)?.stack ?? err) });
        }
      }
      const ms = performance.now() - t0;
      result.maxCaseMs = Math.max(result.maxCaseMs, ms);
      if (ms > 1000) result.failures.push({ case: c, mutation, error: `took ${ms.toFixed(0)} ms` });
      result.cases++;
      if (opts.log && (c + 1) % 10000 === 0) opts.log(`${c + 1} cases, ${result.failures.length} failures`);
    }
    if (kept.length) {
      const bad = llamaCppDisagreements(kept.map((k) => k.path));
      for (const b of bad) {
        const k = kept.find((x) => x.path === b.path)!;
        result.failures.push({ case: k.case, mutation: k.mutation, error: b.error });
        if (opts.keepFailuresIn) copyFileSync(k.path, join(opts.keepFailuresIn, `case-${k.case}-${k.mutation}.gguf`));
      }
      result.llamaLoaded = kept.length - bad.length;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Standalone

const isMain = process.argv[1] && import.meta.url.endsWith(process.argv[1].split("/").pop()!);
if (isMain) {
  const args = process.argv.slice(2);
  const flag = (name: string, fallback: number) => {
    const i = args.indexOf(`--${name}`);
    const v = i >= 0 ? Number(args[i + 1]) : fallback;
    if (!Number.isInteger(v) || v < 0) throw new Error(`--${name} must be a non-negative integer`);
    return v;
  };
  const count = flag("count", 1000);
  const seed = flag("seed", 7);
  const llamaCheck = flag("llama", 0);
  const t0 = performance.now();
  const keepI = args.indexOf("--keep");
  const keepFailuresIn = keepI >= 0 ? args[keepI + 1] : undefined;
  const r = await runFuzz({ count, seed, llamaCheck, keepFailuresIn, log: (line) => process.stderr.write(line + "\n") });
  const seconds = (performance.now() - t0) / 1000;
  process.stdout.write(JSON.stringify({ ...r, failures: r.failures.slice(0, 20), seconds: +seconds.toFixed(1) }, null, 2) + "\n");
  process.exitCode = r.failures.length ? 1 : 0;
}
