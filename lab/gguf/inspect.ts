// What is inside a GGUF file, for people (a report) and for programs (plain JSON). Used by
// `lab gguf inspect` and by notebooks.
import { bitsPerWeight } from "../ggml-types.ts";
import { GgufValueType, showGgufString, type GgufArray, type GgufFile } from "./format.ts";
import { llamaHparams, type LlamaHparams } from "./validate.ts";

export interface GgufTotals {
  parameters: number;
  tensorBytes: number;
  /** 8 × tensorBytes / parameters */
  bitsPerWeight: number;
}

export interface GgufInspectJson {
  metadata: Record<string, unknown>;
  tensors: { name: string; type: string; shape: number[]; bytes: number }[];
  totals: GgufTotals;
}

/** A metadata value as JSON: u64/i64 become numbers when exact, else decimal strings. */
export function jsonValue(value: unknown): unknown {
  if (typeof value === "bigint") {
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value.toString();
  }
  if (typeof value === "number" && !Number.isFinite(value)) return String(value); // JSON has no NaN/Infinity
  if (Array.isArray(value)) return value.map(jsonValue);
  if (value && typeof value === "object" && "itemType" in value) return jsonValue((value as GgufArray).value);
  return value;
}

export function tensorTotals(file: GgufFile): GgufTotals {
  let parameters = 0;
  let tensorBytes = 0;
  for (const t of file.tensors) {
    parameters += t.ne.reduce((a, b) => a * b, 1);
    tensorBytes += t.byteSize;
  }
  return { parameters, tensorBytes, bitsPerWeight: parameters ? (8 * tensorBytes) / parameters : 0 };
}

export function inspectJson(file: GgufFile): GgufInspectJson {
  const metadata: Record<string, unknown> = {};
  for (const [key, entry] of file.metadata) metadata[key] = jsonValue(entry.value);
  return {
    metadata,
    tensors: file.tensors.map((t) => ({ name: t.name, type: t.type, shape: t.ne, bytes: t.byteSize })),
    totals: tensorTotals(file),
  };
}

// ---------------------------------------------------------------------------------------------
// The human report

export interface TokenizerSummary {
  model: string;
  vocabSize: number;
  byteTokens: number;
  special: Record<string, number>;
}

export function tokenizerSummary(file: GgufFile): TokenizerSummary | undefined {
  const model = file.metadata.get("tokenizer.ggml.model")?.value;
  if (typeof model !== "string") return undefined;
  const tokensKv = file.metadata.get("tokenizer.ggml.tokens");
  const tokens = tokensKv?.type === GgufValueType.ARRAY && tokensKv.itemType === GgufValueType.STRING ? (tokensKv.value as string[]) : [];
  const special: Record<string, number> = {};
  for (const [key, entry] of file.metadata) {
    const m = /^tokenizer\.ggml\.(\w+)_token_id$/.exec(key);
    if (m && typeof entry.value === "number") special[m[1]] = entry.value;
  }
  const byteTokens = tokens.filter((t) => /^<0x[0-9A-F]{2}>$/.test(t)).length;
  return { model, vocabSize: tokens.length, byteTokens, special };
}

/** The shortest decimal that reads back as the same f32 (1e-5, not 0.000009999999747378752). */
export function shortF32(x: number): string {
  if (!Number.isFinite(x) || Math.fround(x) !== x) return String(x);
  for (let digits = 1; digits < 17; digits++) {
    const s = x.toPrecision(digits);
    if (Math.fround(Number(s)) === x) return String(Number(s));
  }
  return String(x);
}

function human(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return String(n);
}

/** A short value for the report: long arrays show their length and first items; a string's bytes
 *  that are not UTF-8 show as \xNN (in --json they stay lone surrogates "\udcNN", which JSON keeps). */
function brief(value: unknown, isF32: boolean): string {
  const v = jsonValue(value);
  const show = (x: unknown) => (typeof x === "string" ? showGgufString(x) : JSON.stringify(x));
  if (isF32 && typeof v === "number") return shortF32(v);
  if (Array.isArray(v)) {
    const head = v.slice(0, 4).map(show).join(", ");
    return v.length > 4 ? `[${head}, … ${v.length} items]` : `[${head}]`;
  }
  const s = show(v);
  return s.length > 80 ? s.slice(0, 77) + "…" : s;
}

export function inspectReport(file: GgufFile): string {
  const lines: string[] = [];
  const arch = file.metadata.get("general.architecture")?.value;
  lines.push(`${file.path}: GGUF v${file.version}, ${human(file.fileSize)}B, ${file.metadata.size} metadata keys, ` +
    `${file.tensors.length} tensors, alignment ${file.alignment}`);
  lines.push(`architecture: ${typeof arch === "string" ? arch : "(none)"}`);
  if (arch === "llama") {
    const hp: LlamaHparams = llamaHparams(file);
    lines.push(`hyperparameters: ${Object.entries(hp).map(([k, v]) => `${k}=${shortF32(v)}`).join(" ")}`);
    lines.push(`context: ${hp.nCtxTrain} tokens (llama.context_length, the context the model was trained to); ` +
      `LabEngine and LlamaCppEngine open it with contextSize ${Math.min(hp.nCtxTrain, 2048)} unless told otherwise`);
  }
  const tok = tokenizerSummary(file);
  if (tok) {
    const special = Object.entries(tok.special).map(([k, v]) => `${k}=${v}`).join(" ");
    lines.push(`tokenizer: ${tok.model}, vocab ${tok.vocabSize}, ${tok.byteTokens} byte tokens${special ? `, special ${special}` : ""}`);
  }
  lines.push("", "metadata:");
  for (const [key, entry] of file.metadata) lines.push(`  ${key} = ${brief(entry.value, entry.type === GgufValueType.FLOAT32)}`);

  lines.push("", "tensors:");
  const nameWidth = Math.max(4, ...file.tensors.map((t) => t.name.length));
  lines.push(`  ${"name".padEnd(nameWidth)}  ${"type".padEnd(7)} ${"shape".padEnd(16)} ${"bytes".padStart(12)}  bpw`);
  for (const t of file.tensors) {
    lines.push(`  ${t.name.padEnd(nameWidth)}  ${t.type.padEnd(7)} ${`[${t.ne.join(", ")}]`.padEnd(16)} ${String(t.byteSize).padStart(12)}  ${bitsPerWeight(t.type).toFixed(4).replace(/\.?0+$/, "")}`);
  }
  const totals = tensorTotals(file);
  lines.push("", `totals: ${totals.parameters} parameters (${human(totals.parameters)}), ${totals.tensorBytes} tensor bytes ` +
    `(${human(totals.tensorBytes)}B), ${totals.bitsPerWeight.toFixed(3)} bits per weight`);
  return lines.join("\n");
}
