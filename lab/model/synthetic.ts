// A small seeded llama model that llama.cpp loads and runs: the kit's stand-in for a real
// checkpoint in tests (quantization proofs, engine cross-checks, GGUF round trips).
//
// Weights are random but shaped like a trained model's where it matters to the kit:
// - every matrix is N(0, 1/in) so activations keep unit scale through the layers;
// - each row gets its own log-normal scale, so rows differ in range as in real checkpoints
//   (a quantizer with one global scale would do visibly worse; per-block scales do not);
// - the residual branches (attn_output, ffn_down) are damped by 1/sqrt(2·nLayer);
// - the output head is scaled up so next-token distributions are peaked, not flat.
// The vocabulary is a real SPM vocabulary: <unk> <s> </s>, the 256 <0xNN> byte tokens (byte
// fallback), then letters, digits, punctuation, and common English words with every prefix
// ("▁t", "▁th", "▁the") so SPM's pairwise merges can reach them: 512 pieces in all.
import { kv, type GgufKv } from "../gguf/format.ts";
import { llamaMetadata } from "../gguf/validate.ts";
import { writeGguf } from "../gguf/writer.ts";

export interface SyntheticLlamaOptions {
  seed: number;
  /** hidden size; default 256 (a multiple of 256 keeps every k-quant usable) */
  nEmbd?: number;
  /** feed-forward size; default 512 */
  nFf?: number;
  nHead?: number; // default 4
  nKvHead?: number; // default 2 (grouped-query attention)
  nLayer?: number; // default 2
  nCtx?: number; // default 256
  vocab?: "spm-small";
}

export interface SyntheticTensor {
  name: string;
  /** ggml order [in, out] */
  ne: number[];
  /** row-major [ne[1]][ne[0]] f32 */
  data: Float32Array;
}

export interface SyntheticLlama {
  metadata: GgufKv[];
  tensors: SyntheticTensor[];
}

// ---------------------------------------------------------------------------------------------
// Seeded randomness: splitmix32 for uniforms, Box–Muller for normals.

function rng(seed: number): { uniform(): number; normal(): number } {
  let state = seed >>> 0;
  const uniform = () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    z = (z ^ (z >>> 16)) >>> 0;
    return (z + 0.5) / 4294967296; // in (0, 1), never 0
  };
  let spare: number | undefined;
  const normal = () => {
    if (spare !== undefined) {
      const s = spare;
      spare = undefined;
      return s;
    }
    const r = Math.sqrt(-2 * Math.log(uniform()));
    const theta = 2 * Math.PI * uniform();
    spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  };
  return { uniform, normal };
}

// ---------------------------------------------------------------------------------------------
// Vocabulary

const TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, BYTE: 6 } as const;

const WORDS = (
  "the of and to a in is it you that he was for on are with as I his they be at one have this from or had by " +
  "word but what some we can out other were all there when up use your how said an each she which do their time " +
  "if will way about many then them write would like so these her long make thing see him two has look more day " +
  "could go come did number sound no most people my over know water than call first who may down side been now find " +
  "any new work part take get place made live where after back little only round man year came show every good me " +
  "give our under name very through just form sentence great think say help low line differ turn cause much mean " +
  "before move right boy old too same tell does set three want air well also play small end put home read hand port " +
  "large spell add even land here must big high such follow act why ask men change went light kind off need house " +
  "picture try us again animal point mother world near build self earth father model token cache quant fast"
).split(" ");

/** The "spm-small" vocabulary: exactly 512 pieces with SPM scores and token types. */
function spmSmallVocabulary(): { tokens: string[]; scores: number[]; types: number[] } {
  const tokens: string[] = ["<unk>", "<s>", "</s>"];
  const types: number[] = [TOKEN_TYPE.UNKNOWN, TOKEN_TYPE.CONTROL, TOKEN_TYPE.CONTROL];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
    types.push(TOKEN_TYPE.BYTE);
  }
  // Every single character a text needs comes first, then common words with all their prefixes
  // ("▁t", "▁th", "▁the"): SPM builds a word by merging adjacent pieces, so each step of the way
  // must be a piece too. Earlier pieces score higher, and SPM merges the best-scoring pair first.
  const seen = new Set(tokens);
  const pieces: string[] = [];
  const add = (piece: string) => {
    if (!seen.has(piece)) {
      seen.add(piece);
      pieces.push(piece);
    }
  };
  const target = 512;
  for (const ch of "▁abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?;:'\"-()+=*/_#") add(ch);
  for (const word of WORDS) {
    const prefixes = Array.from({ length: word.length }, (_, k) => "▁" + word.slice(0, k + 1));
    if (tokens.length + pieces.length + prefixes.filter((p) => !seen.has(p)).length > target) break;
    prefixes.forEach(add);
  }
  for (let i = 0; tokens.length + pieces.length < target; i++) add(`▁${WORDS[i]}s`);
  const scores = tokens.map(() => 0);
  pieces.forEach((piece, i) => {
    tokens.push(piece);
    types.push(TOKEN_TYPE.NORMAL);
    scores.push(-(i + 1));
  });
  return { tokens, scores, types };
}

// ---------------------------------------------------------------------------------------------
// The model

export function syntheticLlama(opts: SyntheticLlamaOptions): SyntheticLlama {
  const nEmbd = opts.nEmbd ?? 256;
  const nFf = opts.nFf ?? 512;
  const nHead = opts.nHead ?? 4;
  const nKvHead = opts.nKvHead ?? 2;
  const nLayer = opts.nLayer ?? 2;
  const nCtx = opts.nCtx ?? 256;
  if (nEmbd % nHead !== 0) throw new RangeError(`nEmbd ${nEmbd} must be a multiple of nHead ${nHead}`);
  if (nHead % nKvHead !== 0) throw new RangeError(`nHead ${nHead} must be a multiple of nKvHead ${nKvHead}`);
  const headDim = nEmbd / nHead;
  if (headDim % 2 !== 0) throw new RangeError(`head size ${headDim} must be even (RoPE rotates pairs)`);
  const vocab = spmSmallVocabulary();
  const nVocab = vocab.tokens.length;
  const r = rng(opts.seed);

  /** [nOut][nIn] with N(0, gain²/nIn) entries and a log-normal scale per row. */
  const matrix = (nIn: number, nOut: number, gain = 1): Float32Array => {
    const w = new Float32Array(nIn * nOut);
    const std = gain / Math.sqrt(nIn);
    for (let row = 0; row < nOut; row++) {
      const rowScale = std * Math.exp(0.25 * r.normal());
      for (let i = 0; i < nIn; i++) w[row * nIn + i] = rowScale * r.normal();
    }
    return w;
  };
  const norm = (n: number): Float32Array => Float32Array.from({ length: n }, () => 1 + 0.1 * r.normal());

  const residualGain = 1 / Math.sqrt(2 * nLayer);
  const tensors: SyntheticTensor[] = [];
  const push = (name: string, ne: number[], data: Float32Array) => tensors.push({ name, ne, data });
  push("token_embd.weight", [nEmbd, nVocab], matrix(nEmbd, nVocab, Math.sqrt(nEmbd)));
  for (let l = 0; l < nLayer; l++) {
    push(`blk.${l}.attn_norm.weight`, [nEmbd], norm(nEmbd));
    push(`blk.${l}.attn_q.weight`, [nEmbd, nHead * headDim], matrix(nEmbd, nHead * headDim));
    push(`blk.${l}.attn_k.weight`, [nEmbd, nKvHead * headDim], matrix(nEmbd, nKvHead * headDim));
    push(`blk.${l}.attn_v.weight`, [nEmbd, nKvHead * headDim], matrix(nEmbd, nKvHead * headDim));
    push(`blk.${l}.attn_output.weight`, [nHead * headDim, nEmbd], matrix(nHead * headDim, nEmbd, residualGain));
    push(`blk.${l}.ffn_norm.weight`, [nEmbd], norm(nEmbd));
    push(`blk.${l}.ffn_gate.weight`, [nEmbd, nFf], matrix(nEmbd, nFf));
    push(`blk.${l}.ffn_up.weight`, [nEmbd, nFf], matrix(nEmbd, nFf));
    push(`blk.${l}.ffn_down.weight`, [nFf, nEmbd], matrix(nFf, nEmbd, residualGain));
  }
  push("output_norm.weight", [nEmbd], norm(nEmbd));
  push("output.weight", [nEmbd, nVocab], matrix(nEmbd, nVocab, 4));

  const metadata: GgufKv[] = [
    ...llamaMetadata({ nVocab, nCtxTrain: nCtx, nEmbd, nFf, nHead, nKvHead, nLayer, headDim, rmsEps: 1e-5, ropeFreqBase: 10000 },
      `synthetic-llama-seed${opts.seed}`),
    kv.u32("general.alignment", 32),
    kv.str("tokenizer.ggml.model", "llama"),
    kv.strings("tokenizer.ggml.tokens", vocab.tokens),
    kv.f32s("tokenizer.ggml.scores", vocab.scores),
    kv.i32s("tokenizer.ggml.token_type", vocab.types),
    kv.u32("tokenizer.ggml.unknown_token_id", 0),
    kv.u32("tokenizer.ggml.bos_token_id", 1),
    kv.u32("tokenizer.ggml.eos_token_id", 2),
    kv.bool("tokenizer.ggml.add_bos_token", true),
    kv.bool("tokenizer.ggml.add_eos_token", false),
  ];
  return { metadata, tensors };
}

/** Writes the synthetic model as an F32 GGUF file. */
export async function writeSyntheticLlama(path: string, opts: SyntheticLlamaOptions): Promise<void> {
  const model = syntheticLlama(opts);
  await writeGguf(path, {
    metadata: model.metadata,
    tensors: model.tensors.map((t) => ({
      name: t.name, type: "F32" as const, ne: t.ne,
      data: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
    })),
  });
}
