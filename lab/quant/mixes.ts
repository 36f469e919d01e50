// Quantization mixes, as llama-quantize names them (Q4_K_M, …): a file type is not one tensor type but
// a recipe. Most weight matrices get the mix's base type; a few tensors that hurt most when squeezed
// get more bits (the output head, attn_v, ffn_down in some layers); 1-D tensors (norms) stay as they are.
//
// Source of truth: llama_tensor_get_type_impl / tensor_type_fallback / tensor_allows_quantization in
// src/llama-quant.cpp of the llama.cpp that node-llama-cpp 3.21.1 ships. We implement the rules for the
// llama architecture without experts (no MoE, not "70B"); test/quant-mixes.test.ts checks every mix
// against llama_model_quantize itself. Where llama.cpp counts tensors (i_attention_wv, i_ffn_down) in its
// sorted tensor order, that count equals the layer index for a llama model, so we use the layer index.
//
// Differences from llama.cpp: none for the mixes listed. We do not implement the IQ* / TQ* mixes; their
// fallback target IQ4_NL is therefore never needed (the k-quant and legacy fallbacks are all to types we have).
import { BLOCK_GEOMETRY, type GgmlTypeName } from "../ggml-types.ts";

/** When a rule applies, for layer i of n layers (nGqa = nHead / nKvHead). */
export type When =
  | "always"
  | "moreBits" // llama.cpp's use_more_bits(i, n): the first and last eighth, and every third layer between
  | { layerBelow: number } // i < k
  | { layerBelowFraction: number } // i < n / k (integer division)
  | { gqaAtLeast: number };

/** A cell of the table: the first rule whose condition holds picks the type; none → the mix's base type. */
export type Rule = [When, GgmlTypeName][];

export interface QuantMix {
  /** the name llama-quantize accepts, e.g. "Q4_K_M" */
  name: string;
  /** llama_ftype value written to general.file_type */
  ftype: number;
  /** type of every 2-D weight no rule below touches */
  base: GgmlTypeName;
  attnV?: Rule;
  ffnDown?: Rule;
  attnOutput?: Rule;
  summary: string;
}

// ---------------------------------------------------------------------------------------------
// THE table. Also, for every quantized mix (base is a block type):
//   output.weight (and token_embd.weight when the embeddings are tied): Q6_K, or Q8_0 when the base is
//     Q8_0 or the row length is not a multiple of the base's block size;
//   token_embd.weight (untied): the base type;
//   then any type whose block does not divide the row length falls back:
//     Q2_K, Q3_K → Q4_0;  Q4_K → Q5_0;  Q5_K → Q5_1;  Q6_K → Q8_0;  a 32-block type stays;
//     and if even the fallback does not divide the row → F16.
// For the float mixes (F32, F16, BF16) no rule applies: every 2-D weight gets the base type.

const more = (t: GgmlTypeName): Rule => [["moreBits", t]];

export const MIXES: QuantMix[] = [
  { name: "F32", ftype: 0, base: "F32", summary: "32.0 bpw, lossless reference" },
  { name: "F16", ftype: 1, base: "F16", summary: "16.0 bpw, IEEE half" },
  { name: "BF16", ftype: 32, base: "BF16", summary: "16.0 bpw, bfloat16" },
  { name: "Q8_0", ftype: 7, base: "Q8_0", summary: "8.5 bpw, near lossless" },
  { name: "Q6_K", ftype: 18, base: "Q6_K", summary: "6.56 bpw" },
  { name: "Q5_1", ftype: 9, base: "Q5_1", summary: "6.0 bpw legacy, output Q6_K" },
  { name: "Q5_0", ftype: 8, base: "Q5_0", summary: "5.5 bpw legacy, output Q6_K" },
  { name: "Q5_K_M", ftype: 17, base: "Q5_K", attnV: more("Q6_K"), ffnDown: more("Q6_K"), summary: "5.5 bpw + Q6_K where it matters" },
  { name: "Q5_K_S", ftype: 16, base: "Q5_K", summary: "5.5 bpw" },
  { name: "Q4_1", ftype: 3, base: "Q4_1", summary: "5.0 bpw legacy, output Q6_K" },
  { name: "Q4_K_M", ftype: 15, base: "Q4_K", attnV: more("Q6_K"), ffnDown: more("Q6_K"), summary: "4.5 bpw + Q6_K where it matters (the usual default)" },
  { name: "Q4_K_S", ftype: 14, base: "Q4_K", attnV: [[{ layerBelow: 4 }, "Q5_K"]], ffnDown: [[{ layerBelowFraction: 8 }, "Q5_K"]], summary: "4.5 bpw, first layers Q5_K" },
  { name: "Q4_0", ftype: 2, base: "Q4_0", summary: "4.5 bpw legacy, output Q6_K" },
  { name: "Q3_K_L", ftype: 13, base: "Q3_K", attnV: [["always", "Q5_K"]], ffnDown: [["always", "Q5_K"]], attnOutput: [["always", "Q5_K"]], summary: "3.44 bpw + Q5_K attn_v/ffn_down/attn_output" },
  { name: "Q3_K_M", ftype: 12, base: "Q3_K", attnV: [[{ layerBelow: 2 }, "Q5_K"], ["always", "Q4_K"]],
    ffnDown: [[{ layerBelowFraction: 16 }, "Q5_K"], ["always", "Q4_K"]], attnOutput: [["always", "Q4_K"]], summary: "3.44 bpw + Q4_K/Q5_K where it matters" },
  { name: "Q3_K_S", ftype: 11, base: "Q3_K", summary: "3.44 bpw" },
  { name: "Q2_K", ftype: 10, base: "Q2_K", attnV: [[{ gqaAtLeast: 4 }, "Q4_K"], ["always", "Q3_K"]], ffnDown: [["always", "Q3_K"]],
    attnOutput: [["always", "Q3_K"]], summary: "2.63 bpw + Q3_K/Q4_K where it matters" },
];

export function findMix(name: string): QuantMix | undefined {
  return MIXES.find((m) => m.name === name.toUpperCase());
}

// ---------------------------------------------------------------------------------------------
// Applying the table to one tensor

export function useMoreBits(i: number, n: number): boolean {
  const eighth = Math.floor(n / 8);
  return i < eighth || i >= Math.floor((7 * n) / 8) || (i - eighth) % 3 === 2;
}

function holds(when: When, i: number, n: number, nGqa: number): boolean {
  if (when === "always") return true;
  if (when === "moreBits") return useMoreBits(i, n);
  if ("layerBelow" in when) return i < when.layerBelow;
  if ("layerBelowFraction" in when) return i < Math.floor(n / when.layerBelowFraction);
  return nGqa >= when.gqaAtLeast;
}

function applyRule(rule: Rule | undefined, fallback: GgmlTypeName, i: number, n: number, nGqa: number): GgmlTypeName {
  for (const [when, type] of rule ?? []) if (holds(when, i, n, nGqa)) return type;
  return fallback;
}

const isBlockType = (t: GgmlTypeName) => BLOCK_GEOMETRY[t].blockSize > 1;

/** llama.cpp's tensor_type_fallback: a type whose block does not divide the row length is demoted. */
export function fallbackType(type: GgmlTypeName, rowLength: number): GgmlTypeName {
  const block = BLOCK_GEOMETRY[type].blockSize;
  if (rowLength % block === 0) return type;
  const demoted: Partial<Record<GgmlTypeName, GgmlTypeName>> = { Q2_K: "Q4_0", Q3_K: "Q4_0", Q4_K: "Q5_0", Q5_K: "Q5_1", Q6_K: "Q8_0" };
  const next = demoted[type] ?? (block <= 32 ? type : undefined);
  if (!next) throw new Error(`no fallback type for ${type} with row length ${rowLength}`);
  return rowLength % BLOCK_GEOMETRY[next].blockSize === 0 ? next : "F16";
}

/** Is this tensor quantized at all? (llama.cpp: at least 2-D, name ends in "weight", not a norm.) */
export function isQuantizable(name: string, ne: number[]): boolean {
  let nDims = ne.length;
  while (nDims > 1 && ne[nDims - 1] === 1) nDims--; // ggml_n_dims ignores trailing 1s
  return nDims >= 2 && name.endsWith("weight") && !name.includes("_norm.weight") && !name.includes("ffn_gate_inp.weight");
}

export interface ModelShape {
  nLayer: number;
  /** nHead / nKvHead */
  nGqa: number;
  /** true when the file has no output.weight (the embedding matrix doubles as the output head) */
  tiedEmbeddings: boolean;
}

export interface TensorChoice {
  type: GgmlTypeName;
  /** why, in words: "base", "output head", "attn_v rule", "fallback from Q4_K", "not quantized (1-D)" … */
  reason: string;
}

/** The type llama-quantize gives one tensor of a llama model under a mix. */
export function chooseTensorType(mix: QuantMix, tensor: { name: string; ne: number[]; type: GgmlTypeName }, model: ModelShape): TensorChoice {
  if (!isQuantizable(tensor.name, tensor.ne)) return { type: tensor.type, reason: "kept (1-D or norm)" };
  if (!isBlockType(mix.base)) return { type: mix.base, reason: "base" };
  const rowLength = tensor.ne[0];
  const layer = /^blk\.(\d+)\./.exec(tensor.name);
  const i = layer ? Number(layer[1]) : -1;
  const n = model.nLayer;
  let type: GgmlTypeName = mix.base;
  let reason = "base";
  const isOutput = tensor.name === "output.weight" || (model.tiedEmbeddings && tensor.name === "token_embd.weight");
  if (isOutput) {
    type = mix.base === "Q8_0" || rowLength % BLOCK_GEOMETRY[mix.base].blockSize !== 0 ? "Q8_0" : "Q6_K";
    reason = "output head";
  } else if (tensor.name.includes("attn_v.weight")) {
    type = applyRule(mix.attnV, mix.base, i, n, model.nGqa);
    if (type !== mix.base) reason = "attn_v rule";
  } else if (tensor.name.includes("ffn_down")) {
    type = applyRule(mix.ffnDown, mix.base, i, n, model.nGqa);
    if (type !== mix.base) reason = "ffn_down rule";
  } else if (tensor.name.includes("attn_output.weight")) {
    type = applyRule(mix.attnOutput, mix.base, i, n, model.nGqa);
    if (type !== mix.base) reason = "attn_output rule";
  }
  const fitted = fallbackType(type, rowLength);
  if (fitted !== type) {
    const why = `fallback from ${type} (row ${rowLength} not a multiple of ${BLOCK_GEOMETRY[type].blockSize})`;
    return { type: fitted, reason: reason === "base" ? why : `${reason}, ${why}` };
  }
  return { type, reason };
}

// ---------------------------------------------------------------------------------------------
// The table in words, for `lab quantize --help`

function whenText(w: When): string {
  if (w === "always") return "";
  if (w === "moreBits") return " if use_more_bits(i,n)";
  if ("layerBelow" in w) return ` if i<${w.layerBelow}`;
  if ("layerBelowFraction" in w) return ` if i<n/${w.layerBelowFraction}`;
  return ` if nHead/nKvHead>=${w.gqaAtLeast}`;
}

function ruleText(rule: Rule | undefined): string {
  if (!rule) return "-";
  return rule.map(([w, t]) => t + whenText(w)).join(", else ");
}

export function mixTableText(): string {
  const rows = MIXES.map((m) => {
    const quantized = isBlockType(m.base);
    const output = !quantized ? m.base : m.base === "Q8_0" ? "Q8_0" : "Q6_K";
    return [m.name, String(m.ftype), m.base, output, ruleText(m.attnV), ruleText(m.ffnDown), ruleText(m.attnOutput), m.summary];
  });
  const head = ["mix", "ftype", "base", "output", "attn_v", "ffn_down", "attn_output", ""];
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (r: string[]) => r.map((cell, c) => cell.padEnd(widths[c])).join("  ").trimEnd();
  return [line(head), ...rows.map(line)].join("\n");
}
