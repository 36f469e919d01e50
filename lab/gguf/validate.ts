// The gate in front of every engine: a GGUF file passes only if llama.cpp (the build node-llama-cpp
// 3.21.1 ships) would load it, and every failure is a GgufError naming the key, tensor or byte
// offset. Some of llama.cpp's failures are not errors but process aborts (GGML_ASSERT): a missing
// llama.feed_forward_length or llama.attention.head_count, duplicate vocabulary entries, a missing
// <0xNN> byte token. Those are the checks that matter most here.
//
// Sources of truth (llama.cpp): ggml/src/gguf.cpp gguf_init_from_file_impl (container rules),
// src/llama-model-loader.cpp GGUFMeta::GKV::get_kv (a scalar key must have EXACTLY the expected
// type: a u32 key stored as i32 is an error), get_arr / get_key_or_arr (per-layer arrays accept
// u32, i32 or bool items), src/llama-model.cpp load_hparams, src/models/llama.cpp, and
// src/llama-vocab.cpp impl::load.
//
// Deliberately stricter than llama.cpp, because such files are broken even where llama.cpp limps on:
// zero-sized dimensions, special token ids outside the vocabulary (llama.cpp warns and ignores
// them), an SPM vocabulary without all 256 byte tokens (llama.cpp aborts only once a text needs the
// missing byte), missing feed_forward_length / head_count (llama.cpp aborts), and MoE llama files
// (llama.expert_count > 0), which the kit does not check tensor by tensor and so refuses.
// Also refused: NUL bytes inside metadata keys and tensor names (in any file), and inside any string
// of a llama file (tokens, merges, names, templates): llama.cpp reads all of them as C strings, cut
// at the NUL, so two tokens can collide there and not here (an abort), and llama_model_quantize
// writes every string cut short (gguf_set_kv copies through c_str()). Every other byte is fine:
// strings are kept byte for byte (format.ts, "Strings are bytes"), as llama.cpp keeps them.
// Tensor types are checked against what llama.cpp's CPU backend can run (found by loading every
// type in every role): 1-D weights (norms, biases) must be F32; matrices may be any float or
// quant format except F64, the integer types and Q8_1/Q8_K.
import { BLOCK_GEOMETRY } from "../ggml-types.ts";
import { GgufError, GgufValueType, kv, showGgufString, valueTypeName, type GgufFile, type GgufKv, type GgufTensorInfo } from "./format.ts";

const GGML_MAX_NAME = 64; // tensor names are stored in char[64] with a terminator
const GGML_MAX_DIMS = 4;
const LLAMA_MAX_LAYERS = 512;
/** Valid ggml types that are not weight formats: integer/F64 tensors and the dot-product-only Q8_1/Q8_K. */
const UNUSABLE_WEIGHT_TYPES = new Set(["F64", "I8", "I16", "I32", "I64", "Q8_1", "Q8_K"]);

/** Throws GgufError on the first problem; returns quietly for a file llama.cpp would load. */
export function validateGguf(file: GgufFile): void {
  validateContainer(file);
  const arch = file.metadata.get("general.architecture");
  if (arch === undefined) return; // a plain GGUF container (no model): nothing more to check
  if (arch.type !== GgufValueType.STRING) throw typeError(arch, "STRING");
  rejectNul(arch.value as string, { key: arch.key });
  if (arch.value === "llama") {
    rejectNulInStrings(file);
    validateLlama(file);
  }
}

/**
 * llama.cpp reads tensor names, tokens and string values as C strings, so "llama\0junk" is "llama"
 * to it and two tokens that differ only after a NUL collide (an abort). Names of things with a NUL
 * inside are refused instead of being read two different ways.
 */
function rejectNul(text: string, where: { key?: string; tensor?: string; offset?: number }, what = "value"): void {
  const at = text.indexOf("\0");
  if (at >= 0) throw new GgufError(`${what} ${showGgufString(text)} contains a NUL byte at character ${at}; llama.cpp would cut it there`, where);
}

/** Every STRING value and STRING array item of the file, named `item i` for arrays. */
function rejectNulInStrings(file: GgufFile): void {
  for (const entry of file.metadata.values()) {
    const where = { key: entry.key, offset: entry.entryOffset };
    if (entry.type === GgufValueType.STRING) rejectNul(entry.value as string, where);
    if (entry.type === GgufValueType.ARRAY && entry.itemType === GgufValueType.STRING) {
      (entry.value as string[]).forEach((item, i) => rejectNul(item, where, entry.key === "tokenizer.ggml.tokens" ? `token ${i}` : `item ${i}`));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Container: what ggml's gguf reader and llama.cpp's loader require of any file

function validateContainer(file: GgufFile): void {
  for (const entry of file.metadata.values()) {
    if (entry.key === "") throw new GgufError("empty metadata key", { offset: entry.entryOffset });
    rejectNul(entry.key, { offset: entry.entryOffset }, "metadata key");
    if (entry.type === GgufValueType.ARRAY && entry.itemType === GgufValueType.ARRAY) {
      throw new GgufError("nested arrays are valid GGUF but ggml's reader rejects them", { key: entry.key, offset: entry.entryOffset });
    }
  }

  const seen = new Set<string>();
  let expectedOffset = 0;
  for (const t of file.tensors) {
    const where = { tensor: t.name, offset: t.infoOffset };
    rejectNul(t.name, where, "tensor name");
    if (seen.has(t.name)) throw new GgufError("duplicate tensor name", where);
    seen.add(t.name);
    if (Buffer.byteLength(t.name) >= GGML_MAX_NAME) throw new GgufError(`tensor name longer than ${GGML_MAX_NAME - 1} bytes`, where);
    if (t.ne.length > GGML_MAX_DIMS) throw new GgufError(`${t.ne.length} dimensions; ggml allows at most ${GGML_MAX_DIMS}`, where);
    if (t.ne.some((n) => n === 0)) throw new GgufError(`shape [${t.ne.join(", ")}] has a zero dimension`, where);
    const { blockSize } = BLOCK_GEOMETRY[t.type];
    if ((t.ne[0] ?? 1) % blockSize !== 0) {
      throw new GgufError(`row length ${t.ne[0]} is not a multiple of ${t.type}'s block size ${blockSize}`, where);
    }
    // ggml lays tensors out back to back in header order, each padded to the alignment, and
    // refuses any other layout; that also rules out overlaps, gaps and misaligned data.
    if (t.relativeOffset % file.alignment !== 0) {
      throw new GgufError(`data offset ${t.relativeOffset} is not a multiple of the alignment ${file.alignment}`, where);
    }
    if (t.relativeOffset < expectedOffset) {
      throw new GgufError(`data at offset ${t.relativeOffset} overlaps the previous tensor (which ends at ${expectedOffset})`, where);
    }
    if (t.relativeOffset !== expectedOffset) {
      throw new GgufError(`data offset ${t.relativeOffset}, but ggml requires tensors back to back: expected ${expectedOffset}`, where);
    }
    if (t.offset + t.byteSize > file.fileSize) {
      throw new GgufError(`data [${t.offset}, ${t.offset + t.byteSize}) runs past the end of the file (${file.fileSize} bytes)`, where);
    }
    expectedOffset += Math.ceil(t.byteSize / file.alignment) * file.alignment;
  }
}

// ---------------------------------------------------------------------------------------------
// Typed key access, as llama.cpp's get_key does it

function typeError(entry: GgufKv, expected: string): GgufError {
  const got = entry.type === GgufValueType.ARRAY ? `ARRAY of ${valueTypeName(entry.itemType ?? -1)}` : valueTypeName(entry.type);
  return new GgufError(`has type ${got} but llama.cpp expects ${expected}`, { key: entry.key, offset: entry.entryOffset });
}

function scalar<V>(file: GgufFile, key: string, type: number, required: boolean): V | undefined {
  const entry = file.metadata.get(key);
  if (!entry) {
    if (required) throw new GgufError("required key is missing", { key });
    return undefined;
  }
  if (entry.type !== type) throw typeError(entry, valueTypeName(type));
  return entry.value as V;
}
const u32 = (f: GgufFile, key: string, required = false) => scalar<number>(f, key, GgufValueType.UINT32, required);
const f32 = (f: GgufFile, key: string, required = false) => scalar<number>(f, key, GgufValueType.FLOAT32, required);
const str = (f: GgufFile, key: string, required = false) => scalar<string>(f, key, GgufValueType.STRING, required);
const bool = (f: GgufFile, key: string) => scalar<boolean>(f, key, GgufValueType.BOOL, false);

/**
 * A per-layer u32 (llama.cpp's get_key_or_arr): either a u32 scalar, or an array of exactly
 * nLayer u32 / i32 / bool items. Returns one value per layer, or undefined if absent.
 */
function perLayer(file: GgufFile, key: string, nLayer: number, required: boolean): number[] | undefined {
  const entry = file.metadata.get(key);
  if (!entry) {
    if (required) throw new GgufError("required key is missing (llama.cpp would abort the process)", { key });
    return undefined;
  }
  if (entry.type === GgufValueType.ARRAY) {
    const ok = entry.itemType === GgufValueType.UINT32 || entry.itemType === GgufValueType.INT32 || entry.itemType === GgufValueType.BOOL;
    if (!ok) throw typeError(entry, "UINT32, or an ARRAY of UINT32/INT32 per layer");
    const items = entry.value as (number | boolean)[];
    if (items.length !== nLayer) {
      throw new GgufError(`per-layer array has ${items.length} entries but block_count is ${nLayer}`, { key, offset: entry.entryOffset });
    }
    return items.map((x) => (typeof x === "boolean" ? Number(x) : x >>> 0));
  }
  if (entry.type !== GgufValueType.UINT32) throw typeError(entry, "UINT32 (or a per-layer ARRAY)");
  return new Array<number>(nLayer).fill(entry.value as number);
}

function stringArray(file: GgufFile, key: string): string[] | undefined {
  const entry = file.metadata.get(key);
  if (!entry) return undefined;
  if (entry.type !== GgufValueType.ARRAY || entry.itemType !== GgufValueType.STRING) throw typeError(entry, "ARRAY of STRING");
  return entry.value as string[];
}

// ---------------------------------------------------------------------------------------------
// Hyperparameters

export interface LlamaHparams {
  nVocab: number;
  nCtxTrain: number;
  nEmbd: number;
  nFf: number;
  nHead: number;
  nKvHead: number;
  nLayer: number;
  /** per-head dimension of q, k and v */
  headDim: number;
  rmsEps: number;
  ropeFreqBase: number;
}

interface LlamaShape extends Omit<LlamaHparams, "nFf" | "nHead" | "nKvHead"> {
  nFf: number[]; // per layer
  nHead: number[];
  nKvHead: number[];
  headDimV: number;
  ropeScaling?: string;
}

const A = (key: string) => `llama.${key}`;

function readLlamaShape(file: GgufFile): LlamaShape {
  const nCtxTrain = u32(file, A("context_length"), true)!;
  const nEmbd = u32(file, A("embedding_length"), true)!;
  const nLayer = u32(file, A("block_count"), true)!;
  if (nLayer < 1 || nLayer > LLAMA_MAX_LAYERS) {
    throw new GgufError(`block_count ${nLayer} must be in [1, ${LLAMA_MAX_LAYERS}] (llama.cpp asserts this)`, { key: A("block_count") });
  }
  // MoE fields: llama.cpp asserts (aborts) unless they are consistent.
  const nExpert = u32(file, A("expert_count")) ?? 0;
  if (nExpert > 0) throw new GgufError("mixture-of-experts llama files are not supported by the kit", { key: A("expert_count") });
  const used = perLayer(file, A("expert_used_count"), nLayer, false);
  if (used?.some((n) => n !== 0)) throw new GgufError("expert_used_count > 0 without experts (llama.cpp would abort)", { key: A("expert_used_count") });
  if ((u32(file, A("expert_group_count")) ?? 0) !== 0) {
    throw new GgufError("expert_group_count > 0 without experts (llama.cpp would abort)", { key: A("expert_group_count") });
  }
  u32(file, A("expert_group_used_count"));
  if ((u32(file, A("nextn_predict_layers")) ?? 0) > nLayer) {
    throw new GgufError("nextn_predict_layers exceeds block_count (llama.cpp would abort)", { key: A("nextn_predict_layers") });
  }

  const nFf = perLayer(file, A("feed_forward_length"), nLayer, true)!;
  const nHead = perLayer(file, A("attention.head_count"), nLayer, true)!;
  const nKvHead = perLayer(file, A("attention.head_count_kv"), nLayer, false) ?? nHead;
  if (nFf.some((n) => n === 0)) throw new GgufError("feed_forward_length is 0", { key: A("feed_forward_length") });
  if (nHead[0] === 0 || nHead.some((n) => n === 0)) throw new GgufError("head_count is 0 (llama.cpp would abort)", { key: A("attention.head_count") });
  nKvHead.forEach((kv, i) => {
    if (kv === 0 || nHead[i] % kv !== 0) {
      throw new GgufError(`layer ${i}: head_count ${nHead[i]} is not a multiple of head_count_kv ${kv}`, { key: A("attention.head_count_kv") });
    }
  });

  // llama.cpp takes the head size from layer 0's head count unless key_length says otherwise.
  const defaultHeadDim = Math.floor(nEmbd / nHead[0]);
  const headDim = u32(file, A("attention.key_length")) ?? defaultHeadDim;
  const headDimV = u32(file, A("attention.value_length")) ?? defaultHeadDim;
  const nRot = u32(file, A("rope.dimension_count")) ?? headDim;
  if (nRot !== headDim) throw new GgufError(`rope.dimension_count ${nRot} must equal the head size ${headDim}`, { key: A("rope.dimension_count") });
  if (headDim === 0 || headDimV !== headDim) {
    throw new GgufError(`key head size ${headDim} and value head size ${headDimV} must be equal and non-zero`, { key: A("attention.key_length") });
  }
  const rmsEps = f32(file, A("attention.layer_norm_rms_epsilon"), true)!;
  const ropeFreqBase = f32(file, A("rope.freq_base")) ?? 10000;

  // Optional keys llama.cpp reads with a fixed type; a wrong type is an error there too.
  u32(file, A("embedding_length_out"));
  bool(file, A("attention.causal"));
  u32(file, A("pooling_type"));
  u32(file, A("vocab_size"));
  bool(file, A("rope.scaling.finetuned"));
  u32(file, A("rope.scaling.original_context_length"));
  f32(file, A("rope.scaling.factor"));
  f32(file, A("rope.scale_linear"));
  f32(file, A("rope.scaling.attn_factor"));
  f32(file, A("rope.scaling.alpha"));
  const scaling = str(file, A("rope.scaling.type"));
  if (scaling !== undefined && !["none", "linear", "yarn", "longrope"].includes(scaling)) {
    throw new GgufError(`unknown rope scaling type "${scaling}" (llama.cpp would abort)`, { key: A("rope.scaling.type") });
  }

  const tokens = stringArray(file, "tokenizer.ggml.tokens");
  const nVocab = tokens?.length ?? 0;
  return { nVocab, nCtxTrain, nEmbd, nFf, nHead, nKvHead, nLayer, headDim, headDimV, rmsEps, ropeFreqBase, ropeScaling: scaling };
}

/** The hyperparameters of a llama file, uniform across layers (the kit's engines assume that). */
export function llamaHparams(file: GgufFile): LlamaHparams {
  const arch = getArch(file);
  if (arch !== "llama") throw new GgufError(`expected general.architecture "llama", got ${arch === undefined ? "none" : `"${arch}"`}`, { key: "general.architecture" });
  const s = readLlamaShape(file);
  const uniform = (values: number[], key: string) => {
    if (values.some((v) => v !== values[0])) throw new GgufError("per-layer values differ; the kit supports uniform layers only", { key: A(key) });
    return values[0];
  };
  return {
    nVocab: s.nVocab, nCtxTrain: s.nCtxTrain, nEmbd: s.nEmbd,
    nFf: uniform(s.nFf, "feed_forward_length"), nHead: uniform(s.nHead, "attention.head_count"),
    nKvHead: uniform(s.nKvHead, "attention.head_count_kv"), nLayer: s.nLayer, headDim: s.headDim,
    rmsEps: s.rmsEps, ropeFreqBase: s.ropeFreqBase,
  };
}

/**
 * The inverse of llamaHparams: the general.* and llama.* entries a llama file needs, with the exact
 * value types llama.cpp checks (u32 counts, f32 epsilon and RoPE base). The tokenizer's entries
 * come from SpmTokenizer.toGgufMetadata().
 */
export function llamaMetadata(hp: LlamaHparams, name: string): GgufKv[] {
  return [
    kv.str("general.architecture", "llama"),
    kv.str("general.name", name),
    kv.u32("general.file_type", 0), // LLAMA_FTYPE_ALL_F32
    kv.u32("llama.context_length", hp.nCtxTrain),
    kv.u32("llama.embedding_length", hp.nEmbd),
    kv.u32("llama.block_count", hp.nLayer),
    kv.u32("llama.feed_forward_length", hp.nFf),
    kv.u32("llama.attention.head_count", hp.nHead),
    kv.u32("llama.attention.head_count_kv", hp.nKvHead),
    kv.u32("llama.rope.dimension_count", hp.headDim),
    kv.f32("llama.rope.freq_base", hp.ropeFreqBase),
    kv.f32("llama.attention.layer_norm_rms_epsilon", hp.rmsEps),
    kv.u32("llama.vocab_size", hp.nVocab),
  ];
}

function getArch(file: GgufFile): string | undefined {
  const v = file.metadata.get("general.architecture")?.value;
  return typeof v === "string" ? v : undefined;
}

// ---------------------------------------------------------------------------------------------
// Vocabulary (src/llama-vocab.cpp impl::load)

const KNOWN_TOKENIZERS = ["no_vocab", "none", "llama", "bert", "gpt2", "hybriddna", "whitespace", "t5", "rwkv", "plamo2", "gemma4"];
const SPECIAL_ID_KEYS = ["bos", "eos", "eot", "eom", "unknown", "seperator", "padding", "mask",
  "fim_pre", "fim_suf", "fim_mid", "fim_pad", "fim_rep", "fim_sep", "prefix", "suffix", "middle"]
  .map((name) => `tokenizer.ggml.${name}_token_id`);

function validateVocab(file: GgufFile): number {
  const model = str(file, "tokenizer.ggml.model", true)!; // NUL in any string: rejectNulInStrings
  if (!KNOWN_TOKENIZERS.includes(model)) throw new GgufError(`unknown tokenizer "${model}"`, { key: "tokenizer.ggml.model" });
  str(file, "tokenizer.ggml.pre");
  u32(file, "tokenizer.ggml.token_type_count");
  for (const key of ["add_space_prefix", "remove_extra_whitespaces", "add_bos_token", "add_eos_token", "add_sep_token",
    "normalizer.lowercase", "normalizer.strip_accents"]) {
    bool(file, `tokenizer.ggml.${key}`);
  }
  const suppress = file.metadata.get("tokenizer.ggml.suppress_tokens");
  if (suppress && (suppress.type !== GgufValueType.ARRAY || suppress.itemType !== GgufValueType.INT32)) throw typeError(suppress, "ARRAY of INT32");
  if (model === "no_vocab" || model === "none") return u32(file, A("vocab_size")) ?? 0;

  const tokens = stringArray(file, "tokenizer.ggml.tokens");
  if (!tokens) throw new GgufError("required key is missing", { key: "tokenizer.ggml.tokens" });
  if (tokens.length === 0) throw new GgufError("the vocabulary is empty", { key: "tokenizer.ggml.tokens" });

  const scores = file.metadata.get("tokenizer.ggml.scores");
  if (scores) {
    if (scores.type !== GgufValueType.ARRAY || (scores.itemType !== GgufValueType.FLOAT32 && scores.itemType !== GgufValueType.INT32)) {
      throw typeError(scores, "ARRAY of FLOAT32 or INT32");
    }
    const n = (scores.value as unknown[]).length;
    if (n < tokens.length) throw new GgufError(`${n} scores for ${tokens.length} tokens`, { key: scores.key });
  }
  const types = file.metadata.get("tokenizer.ggml.token_type");
  if (types) {
    if (types.type !== GgufValueType.ARRAY || types.itemType !== GgufValueType.INT32) throw typeError(types, "ARRAY of INT32");
    const n = (types.value as unknown[]).length;
    if (n < tokens.length) throw new GgufError(`${n} token types for ${tokens.length} tokens`, { key: types.key });
  }
  if (model === "gpt2" || model === "hybriddna" || model === "whitespace") {
    const merges = file.metadata.get("tokenizer.ggml.merges");
    if (!merges && str(file, "tokenizer.ggml.pre") !== "kimi-k2") throw new GgufError("BPE vocabulary without merges", { key: "tokenizer.ggml.merges" });
    if (merges) stringArray(file, "tokenizer.ggml.merges");
  }

  // llama.cpp maps text → id and asserts that no two ids share a text (an abort, not an error).
  // Empty tokens are renamed "[EMPTY_i]" first, so they take part in that check under the new name.
  const ids = new Map<string, number>();
  tokens.forEach((raw, i) => {
    const text = raw === "" ? `[EMPTY_${i}]` : raw;
    const first = ids.get(text);
    if (first !== undefined) {
      throw new GgufError(`token ${i} ${JSON.stringify(text)} duplicates token ${first} (llama.cpp would abort)`, { key: "tokenizer.ggml.tokens" });
    }
    ids.set(text, i);
  });

  if (model === "llama") {
    for (let b = 0; b < 256; b++) {
      const piece = `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`;
      if (!ids.has(piece)) {
        throw new GgufError(`SPM vocabulary lacks the byte token ${piece} (llama.cpp aborts on text that needs it)`, { key: "tokenizer.ggml.tokens" });
      }
    }
  }

  for (const key of SPECIAL_ID_KEYS) {
    const id = u32(file, key);
    if (id !== undefined && id >= tokens.length) {
      throw new GgufError(`special token id ${id} is outside the vocabulary of ${tokens.length}`, { key });
    }
  }
  return tokens.length;
}

// ---------------------------------------------------------------------------------------------
// Llama: keys, vocabulary, and the exact tensor set llama.cpp creates

function validateLlama(file: GgufFile): void {
  // Keys llama.cpp's loader reads for every architecture, with their exact types.
  str(file, "general.name");
  u32(file, "general.file_type");
  const nSplit = scalar<number>(file, "split.count", GgufValueType.UINT16, false) ?? 0;
  if (nSplit > 1) throw new GgufError(`model is split over ${nSplit} files; the kit reads single-file models only`, { key: "split.count" });
  stringArray(file, A("classifier.output_labels"));
  const s = readLlamaShape(file);
  const nVocab = validateVocab(file);

  const byName = new Map(file.tensors.map((t) => [t.name, t]));
  const used = new Set<string>();
  const expect = (name: string, ne: number[], required = true): GgufTensorInfo | undefined => {
    const t = byName.get(name);
    if (!t) {
      if (required) throw new GgufError(`required tensor is missing; expected shape [${ne.join(", ")}]`, { tensor: name });
      return undefined;
    }
    const padded = (dims: number[]) => [...dims, 1, 1, 1, 1].slice(0, GGML_MAX_DIMS);
    const want = padded(ne);
    const got = padded(t.ne);
    if (t.ne.length > GGML_MAX_DIMS || want.some((n, i) => n !== got[i])) {
      throw new GgufError(`wrong shape [${t.ne.join(", ")}]; the hyperparameters require [${ne.join(", ")}]`, { tensor: name, offset: t.infoOffset });
    }
    // Types llama.cpp's CPU backend cannot compute with crash the process (measured with 3.21.1:
    // SIGABRT or SIGSEGV), so they are refused here rather than discovered there.
    if (ne.length === 1 && t.type !== "F32") {
      throw new GgufError(`1-D weights must be F32, not ${t.type} (llama.cpp aborts on anything else)`, { tensor: name, offset: t.infoOffset });
    }
    if (ne.length > 1 && UNUSABLE_WEIGHT_TYPES.has(t.type)) {
      throw new GgufError(`${t.type} cannot be a weight matrix (llama.cpp crashes computing with it)`, { tensor: name, offset: t.infoOffset });
    }
    used.add(name);
    return t;
  };

  const { nEmbd, nLayer, headDim } = s;
  expect("token_embd.weight", [nEmbd, nVocab]);
  expect("output_norm.weight", [nEmbd]);
  expect("output.weight", [nEmbd, nVocab], false);
  for (let i = 0; i < nLayer; i++) {
    const b = (name: string) => `blk.${i}.${name}`;
    const nQ = headDim * s.nHead[i];
    const nKv = headDim * s.nKvHead[i];
    const nFf = s.nFf[i];
    expect(b("attn_norm.weight"), [nEmbd]);
    if (byName.has(b("attn_qkv.weight"))) {
      expect(b("attn_qkv.weight"), [nEmbd, nQ + 2 * nKv]);
      expect(b("attn_qkv.bias"), [nQ + 2 * nKv], false);
    } else {
      expect(b("attn_q.weight"), [nEmbd, nQ]);
      expect(b("attn_k.weight"), [nEmbd, nKv]);
      expect(b("attn_v.weight"), [nEmbd, nKv]);
      expect(b("attn_q.bias"), [nQ], false);
      expect(b("attn_k.bias"), [nKv], false);
      expect(b("attn_v.bias"), [nKv], false);
    }
    expect(b("attn_output.weight"), [nQ, nEmbd]);
    expect(b("attn_output.bias"), [nEmbd], false);
    expect(b("ffn_norm.weight"), [nEmbd]);
    expect(b("ffn_gate.weight"), [nEmbd, nFf]);
    expect(b("ffn_down.weight"), [nFf, nEmbd]);
    expect(b("ffn_up.weight"), [nEmbd, nFf]);
    expect(b("ffn_gate.bias"), [nFf], false);
    expect(b("ffn_down.bias"), [nEmbd], false);
    expect(b("ffn_up.bias"), [nFf], false);
    // Optional RoPE frequency factors: one global tensor shared by every layer.
    if (i === 0) {
      if (s.ropeScaling === "longrope") {
        expect("rope_factors_long.weight", [headDim / 2], false);
        expect("rope_factors_short.weight", [headDim / 2], false);
      } else {
        expect("rope_freqs.weight", [headDim / 2], false);
      }
    }
  }
  const unused = file.tensors.find((t) => !used.has(t.name));
  if (unused) {
    throw new GgufError(`tensor is not part of a llama model (llama.cpp rejects files with extra tensors)`, { tensor: unused.name, offset: unused.infoOffset });
  }
}
