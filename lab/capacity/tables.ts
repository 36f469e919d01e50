// The numbers a capacity plan starts from: GPUs, models, weight formats and the efficiencies we
// assume. Every entry carries a `source` — where the number comes from and what that page says — and
// test/capacity.test.ts fails for an entry without one. A value the source does not give is left
// out (undefined), never filled in: an L4 has no NVLink, an A100 has no FP8 tensor cores.
//
// Units: bytes, bytes per second, FLOP per second (SI: 1 GB = 1e9 bytes, as datasheets use).
import { chooseTensorType, findMix, type QuantMix } from "../quant/mixes.ts";
import { bitsPerWeight, type GgmlTypeName } from "../ggml-types.ts";
import { openGguf, llamaHparams } from "../gguf/index.ts";

/** Where a number comes from: a URL and, in words, what it says there. */
export interface Source {
  url: string;
  says: string;
  /**
   * How the entry was checked after it was first written: which copy of the source was re-read and
   * what it confirmed (or that no copy could be re-read). Set on every GPU, model and default.
   */
  checked?: string;
}

// ---------------------------------------------------------------------------------------------
// GPUs

export interface GpuSpec {
  key: string;
  name: string;
  memoryBytes: number;
  memoryBandwidth: number;
  /** dense (no 2:4 sparsity) tensor-core FLOP/s; undefined where the datasheet gives none */
  denseBf16Flops: number;
  denseFp8Flops?: number;
  denseInt8Ops?: number;
  /** GPU-to-GPU bandwidth per direction, bytes/s (NVIDIA quotes the bidirectional total: we halve it) */
  interconnectBandwidth?: number;
  interconnect: string;
  source: Source;
}

const TB = 1e12;
const GB = 1e9;
const T = 1e12;

// NVIDIA's pages quote tensor FLOP/s "with sparsity"; dense is half of that (their footnote).
export const GPUS: GpuSpec[] = [
  {
    key: "a100-40gb", name: "NVIDIA A100 40GB SXM", memoryBytes: 40 * GB, memoryBandwidth: 1555 * GB,
    denseBf16Flops: 312 * T, denseInt8Ops: 624 * T, interconnectBandwidth: 300 * GB, interconnect: "NVLink 3 (600 GB/s bidirectional)",
    source: { url: "https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/a100/pdf/nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf",
      says: "A100 40GB SXM: 40 GB HBM2, 1,555 GB/s; BF16 Tensor Core 312 TFLOPS (624 with sparsity); INT8 624 TOPS (1,248 with sparsity); NVLink 600 GB/s; no FP8",
      checked: "re-read: the datasheet's figures as quoted by glennklockwood.com/garden/processors/A100 (footnoted to this PDF): 40 GB HBM2, 1.555 TB/s, BF16 312 / 624 sparse, INT8 624 / 1248 sparse, NVLink 300+300 GB/s — all as entered" },
  },
  {
    key: "a100-80gb", name: "NVIDIA A100 80GB SXM", memoryBytes: 80 * GB, memoryBandwidth: 2039 * GB,
    denseBf16Flops: 312 * T, denseInt8Ops: 624 * T, interconnectBandwidth: 300 * GB, interconnect: "NVLink 3 (600 GB/s bidirectional)",
    source: { url: "https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/a100/pdf/nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf",
      says: "A100 80GB SXM: 80 GB HBM2e, 2,039 GB/s; BF16 Tensor Core 312 TFLOPS (624 with sparsity); INT8 624 TOPS (1,248 with sparsity); NVLink 600 GB/s; no FP8",
      checked: "re-read: glennklockwood.com/garden/processors/A100 (citing this PDF): 80 GB HBM2e, 2,039 GB/s, same FLOP/s as the 40 GB part — as entered" },
  },
  {
    key: "h100-sxm", name: "NVIDIA H100 SXM", memoryBytes: 80 * GB, memoryBandwidth: 3.35 * TB,
    denseBf16Flops: 989.5 * T, denseFp8Flops: 1979 * T, denseInt8Ops: 1979 * T, interconnectBandwidth: 450 * GB, interconnect: "NVLink 4 (900 GB/s bidirectional)",
    source: { url: "https://www.nvidia.com/en-us/data-center/h100/",
      says: "H100 SXM: 80 GB, 3.35 TB/s; BF16 Tensor Core 1,979 TFLOPS, FP8 3,958 TFLOPS, INT8 3,958 TOPS (all 'with sparsity'; dense is half); NVLink 900 GB/s",
      checked: "re-read: a copy of NVIDIA's H100 table (archive-lib.hpctech.co.jp/gpuproduct/nvidia-h100.html: 3,350 GB/s, BF16 1,979*, FP8 3,958*, INT8 3,958*, '* Shown with sparsity. Specifications 1/2 lower without sparsity', NVLink 900 GB/s) and glennklockwood.com (dense BF16 989.4 TFLOPS) — as entered" },
  },
  {
    key: "h200", name: "NVIDIA H200 SXM", memoryBytes: 141 * GB, memoryBandwidth: 4.8 * TB,
    denseBf16Flops: 989.5 * T, denseFp8Flops: 1979 * T, denseInt8Ops: 1979 * T, interconnectBandwidth: 450 * GB, interconnect: "NVLink 4 (900 GB/s bidirectional)",
    source: { url: "https://www.nvidia.com/en-us/data-center/h200/",
      says: "H200 SXM: 141 GB HBM3e, 4.8 TB/s; BF16 Tensor Core 1,979 TFLOPS, FP8 3,958 TFLOPS, INT8 3,958 TOPS (all 'with sparsity'; dense is half); NVLink 900 GB/s",
      checked: "re-read: copies of NVIDIA's H200 figures (141 GB HBM3e, 4.8 TB/s, FP8 3,958 TFLOPS and BF16 1,979 with sparsity, NVLink 900 GB/s bidirectional = 450 GB/s each way) on several spec pages — as entered; the H200 NVL (PCIe) part is slower and is not this entry" },
  },
  {
    key: "l4", name: "NVIDIA L4", memoryBytes: 24 * GB, memoryBandwidth: 300 * GB,
    denseBf16Flops: 121 * T, denseFp8Flops: 242.5 * T, denseInt8Ops: 242.5 * T, interconnectBandwidth: 32 * GB, interconnect: "PCIe Gen4 x16 (64 GB/s bidirectional), no NVLink",
    source: { url: "https://www.nvidia.com/en-us/data-center/l4/",
      says: "L4: 24 GB GDDR6, 300 GB/s; BF16 Tensor Core 242 TFLOPS, FP8 485 TFLOPS, INT8 485 TOPS (all 'with sparsity'; dense is half); PCIe Gen4 x16 64 GB/s",
      checked: "re-read: vendor copies of NVIDIA's L4 sheet (24 GB GDDR6, 300 GB/s, FP16/BF16 242 TFLOPS and FP8/INT8 485 with sparsity, PCIe Gen4 x16) — as entered; NVIDIA rounds, so dense FP8 is 242.5 ± 0.5" },
  },
];

/**
 * "This machine": a GpuSpec from measured numbers. The calibration benchmark (STREAM-like triad,
 * matrix product) is not in the kit yet, so nothing here is measured by default: the caller passes
 * what it measured, and the source says how.
 */
export function measuredMachine(measured: { memoryBytes: number; memoryBandwidth: number; flops: number; how: string }): GpuSpec {
  for (const [k, v] of Object.entries({ memoryBytes: measured.memoryBytes, memoryBandwidth: measured.memoryBandwidth, flops: measured.flops })) {
    if (!(v > 0) || !Number.isFinite(v)) throw new RangeError(`measuredMachine: ${k} must be a positive number, got ${v}`);
  }
  return {
    key: "this-machine", name: "this machine (measured)", memoryBytes: measured.memoryBytes, memoryBandwidth: measured.memoryBandwidth,
    denseBf16Flops: measured.flops, interconnect: "none (one device)",
    source: { url: "local measurement", says: measured.how },
  };
}

export function findGpu(key: string): GpuSpec {
  const gpu = GPUS.find((g) => g.key === key.toLowerCase());
  if (!gpu) throw new RangeError(`unknown GPU "${key}"; known: ${GPUS.map((g) => g.key).join(", ")}`);
  return gpu;
}

// ---------------------------------------------------------------------------------------------
// Models (llama architecture: RMSNorm, SwiGLU FFN with gate/up/down, GQA, untied output head
// unless `tiedEmbeddings`)

export interface ModelSpec {
  key: string;
  name: string;
  layers: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  ffn: number;
  vocab: number;
  maxContext: number;
  tiedEmbeddings: boolean;
  /** the model's tensors, GGUF names and shapes (ne[0] = row length); derived from the shape when absent */
  tensors?: TensorShape[];
  source: Source;
}

export interface TensorShape {
  name: string;
  ne: number[];
}

export const MODELS: ModelSpec[] = [
  {
    key: "llama-2-70b", name: "Llama-2-70B", layers: 80, hidden: 8192, heads: 64, kvHeads: 8, headDim: 128, ffn: 28672, vocab: 32000,
    maxContext: 4096, tiedEmbeddings: false,
    source: { url: "https://huggingface.co/meta-llama/Llama-2-70b-hf/blob/main/config.json",
      says: "num_hidden_layers 80, hidden_size 8192, num_attention_heads 64, num_key_value_heads 8, intermediate_size 28672, vocab_size 32000, max_position_embeddings 4096, tie_word_embeddings false",
      checked: "re-read: a verbatim copy of this config.json (transformers_version 4.32.0.dev0) in AI-Hypercomputer/torchprime torchprime/mfu/tests/test_mfu.py: every field as entered; parameterCount gives 68,976,648,192" },
  },
  {
    key: "llama-3-70b", name: "Llama-3-70B", layers: 80, hidden: 8192, heads: 64, kvHeads: 8, headDim: 128, ffn: 28672, vocab: 128256,
    maxContext: 8192, tiedEmbeddings: false,
    source: { url: "https://huggingface.co/meta-llama/Meta-Llama-3-70B/blob/main/config.json",
      says: "num_hidden_layers 80, hidden_size 8192, num_attention_heads 64, num_key_value_heads 8, intermediate_size 28672, vocab_size 128256, max_position_embeddings 8192, tie_word_embeddings false",
      checked: "re-read: a verbatim copy of this config.json (rope_theta 500000, transformers_version 4.40.0.dev0) in AI-Hypercomputer/torchprime torchprime/mfu/tests/test_mfu.py: every field as entered; 70,553,706,496 parameters" },
  },
  {
    key: "llama-3-8b", name: "Llama-3-8B", layers: 32, hidden: 4096, heads: 32, kvHeads: 8, headDim: 128, ffn: 14336, vocab: 128256,
    maxContext: 8192, tiedEmbeddings: false,
    source: { url: "https://huggingface.co/meta-llama/Meta-Llama-3-8B/blob/main/config.json",
      says: "num_hidden_layers 32, hidden_size 4096, num_attention_heads 32, num_key_value_heads 8, intermediate_size 14336, vocab_size 128256, max_position_embeddings 8192, tie_word_embeddings false",
      checked: "re-read: copies of this config (a GGUF-style header naming hf_hub_model_id meta-llama/Meta-Llama-3-8B: vocabulary 128256, context 8192, width 4096, FFN 14336, 32 layers, 32 heads, 8 KV heads; oumi's Llama 3.1 8B table agrees on the shape) — as entered; 8,030,261,248 parameters" },
  },
  {
    key: "llama-2-7b", name: "Llama-2-7B", layers: 32, hidden: 4096, heads: 32, kvHeads: 32, headDim: 128, ffn: 11008, vocab: 32000,
    maxContext: 4096, tiedEmbeddings: false,
    source: { url: "https://huggingface.co/meta-llama/Llama-2-7b-hf/blob/main/config.json",
      says: "num_hidden_layers 32, hidden_size 4096, num_attention_heads 32, num_key_value_heads 32, intermediate_size 11008, vocab_size 32000, max_position_embeddings 4096, tie_word_embeddings false",
      checked: "re-read: a verbatim copy of this config.json (_name_or_path meta-llama/Llama-2-7b-hf) in AI-Hypercomputer/torchprime torchprime/mfu/tests/test_mfu.py: 32 KV heads (no GQA), max_position_embeddings 4096 — as entered; 6,738,415,616 parameters" },
  },
];

/** The kit's embedded target model, read from its GGUF header (shape and real tensor list). */
export async function loadGgufModel(path: string, key = "target"): Promise<ModelSpec> {
  const file = await openGguf(path);
  const hp = llamaHparams(file);
  const tensors = file.tensors.map((t) => ({ name: t.name, ne: [...t.ne].map(Number) }));
  return {
    key, name: `our ${key} (${path})`, layers: hp.nLayer, hidden: hp.nEmbd, heads: hp.nHead, kvHeads: hp.nKvHead, headDim: hp.headDim,
    ffn: hp.nFf, vocab: hp.nVocab, maxContext: hp.nCtxTrain, tiedEmbeddings: !tensors.some((t) => t.name === "output.weight"), tensors,
    source: { url: path, says: "llama.* hyperparameters and the tensor table of the GGUF header, read by lab/gguf llamaHparams" },
  };
}

export const TARGET_GGUF = "data/models/target.gguf";

/** A model by key; "target" reads data/models/target.gguf. Unknown keys list the known ones. */
export async function findModel(key: string): Promise<ModelSpec> {
  const k = key.toLowerCase();
  if (k === "target") return loadGgufModel(TARGET_GGUF);
  const model = MODELS.find((m) => m.key === k);
  if (!model) throw new RangeError(`unknown model "${key}"; known: ${[...MODELS.map((m) => m.key), "target"].join(", ")}`);
  return model;
}

/** The tensors of a llama model under GGUF names, from its shape (or the file's own list). */
export function modelTensors(m: ModelSpec): TensorShape[] {
  if (m.tensors) return m.tensors;
  const q = m.heads * m.headDim;
  const kv = m.kvHeads * m.headDim;
  const out: TensorShape[] = [{ name: "token_embd.weight", ne: [m.hidden, m.vocab] }];
  for (let i = 0; i < m.layers; i++) {
    const b = `blk.${i}.`;
    out.push(
      { name: b + "attn_norm.weight", ne: [m.hidden] },
      { name: b + "attn_q.weight", ne: [m.hidden, q] },
      { name: b + "attn_k.weight", ne: [m.hidden, kv] },
      { name: b + "attn_v.weight", ne: [m.hidden, kv] },
      { name: b + "attn_output.weight", ne: [q, m.hidden] },
      { name: b + "ffn_norm.weight", ne: [m.hidden] },
      { name: b + "ffn_gate.weight", ne: [m.hidden, m.ffn] },
      { name: b + "ffn_up.weight", ne: [m.hidden, m.ffn] },
      { name: b + "ffn_down.weight", ne: [m.ffn, m.hidden] },
    );
  }
  out.push({ name: "output_norm.weight", ne: [m.hidden] });
  if (!m.tiedEmbeddings) out.push({ name: "output.weight", ne: [m.hidden, m.vocab] });
  return out;
}

const elements = (t: TensorShape) => t.ne.reduce((a, b) => a * b, 1);

/** Parameters, counted from the tensors (Llama-2-70B: 68,976,648,192). */
export function parameterCount(m: ModelSpec): number {
  return modelTensors(m).reduce((s, t) => s + elements(t), 0);
}

/** Parameters a token's forward pass multiplies with: all but the embedding lookup table. */
export function matmulParameters(m: ModelSpec): number {
  const embd = m.hidden * m.vocab;
  // tied: the table is also the output head, which is a matmul
  return parameterCount(m) - (m.tiedEmbeddings ? 0 : embd);
}

// ---------------------------------------------------------------------------------------------
// Weight formats

export type ComputeKind = "bf16" | "fp8" | "int8";

export interface WeightFormat {
  key: string;
  name: string;
  /** bits per weight of the decoder's 2-D linear weights, scales included */
  linearBits?: number;
  /** the GGUF mix that decides each tensor's type (then bits come from lab/quant's block geometry) */
  ggufMix?: string;
  /** bits of the embedding table and output head: checkpoints in these formats keep them in 16 bits */
  embeddingBits?: number;
  /** the tensor-core math the matmuls run in (weight-only formats dequantize to BF16/FP16) */
  compute: ComputeKind;
  source: Source;
}

export const WEIGHT_FORMATS: WeightFormat[] = [
  { key: "fp16", name: "FP16", linearBits: 16, embeddingBits: 16, compute: "bf16",
    source: { url: "https://en.wikipedia.org/wiki/Half-precision_floating-point_format", says: "IEEE 754 binary16: 16 bits per value" } },
  { key: "bf16", name: "BF16", linearBits: 16, embeddingBits: 16, compute: "bf16",
    source: { url: "https://cloud.google.com/tpu/docs/bfloat16", says: "bfloat16: 1 sign, 8 exponent, 7 mantissa bits = 16 bits per value" } },
  { key: "fp8", name: "FP8 (E4M3, per-tensor scale)", linearBits: 8, embeddingBits: 16, compute: "fp8",
    source: { url: "https://arxiv.org/abs/2209.05433",
      says: "FP8 Formats for Deep Learning (Micikevicius et al. 2022): E4M3 and E5M2, 8 bits per value; one scale per tensor adds nothing measurable. vLLM's FP8 leaves lm_head unquantized" } },
  { key: "int8", name: "INT8 (W8A8, per-channel scale)", linearBits: 8, embeddingBits: 16, compute: "int8",
    source: { url: "https://arxiv.org/abs/2211.10438",
      says: "SmoothQuant (Xiao et al. 2022): W8A8 INT8 weights and activations; one FP16 scale per output channel, 16 bits per row of ≥ 4,096 weights (< 0.004 bits per weight, left out)" } },
  { key: "awq-int4", name: "AWQ 4-bit, group 128", linearBits: 4 + (16 + 4) / 128, embeddingBits: 16, compute: "bf16",
    source: { url: "https://arxiv.org/abs/2306.00978",
      says: "AWQ (Lin et al. 2023): INT4 weight-only, group size 128; per group an FP16 scale and a 4-bit zero point (AutoAWQ packs qzeros as int4) = 4 + 20/128 bits; embeddings and lm_head not quantized" } },
  { key: "gptq-int4", name: "GPTQ 4-bit, group 128", linearBits: 4 + (16 + 4) / 128, embeddingBits: 16, compute: "bf16",
    source: { url: "https://arxiv.org/abs/2210.17323",
      says: "GPTQ (Frantar et al. 2022): 4-bit weight-only; with group size 128 (as AutoGPTQ checkpoints ship) an FP16 scale and a packed 4-bit zero per group = 4 + 20/128 bits; lm_head not quantized" } },
  { key: "f32", name: "GGUF F32", ggufMix: "F32", compute: "bf16",
    source: { url: "lab/quant/mixes.ts", says: "llama-quantize's F32 'mix': every tensor IEEE 754 binary32, 32 bits per weight (the kit's embedded target is stored this way)" } },
  { key: "q8_0", name: "GGUF Q8_0", ggufMix: "Q8_0", compute: "bf16",
    source: { url: "lab/quant/mixes.ts", says: "llama-quantize's Q8_0 mix applied per tensor; bits per weight from ggml's block geometry (34 bytes per 32 weights = 8.5)" } },
  { key: "q4_k_m", name: "GGUF Q4_K_M", ggufMix: "Q4_K_M", compute: "bf16",
    source: { url: "lab/quant/mixes.ts", says: "llama-quantize's Q4_K_M mix applied per tensor (Q4_K base, Q6_K for some attn_v/ffn_down and the output head); bits from ggml's block geometry. The kit omits llama.cpp's 70B-only attn_v bump to Q5_K (attn_v is 1/8 of attn_q there)" } },
];

export function findFormat(key: string): WeightFormat {
  const f = WEIGHT_FORMATS.find((w) => w.key === key.toLowerCase());
  if (!f) throw new RangeError(`unknown weight format "${key}"; known: ${WEIGHT_FORMATS.map((w) => w.key).join(", ")}`);
  return f;
}

const isEmbeddingOrHead = (name: string) => name === "token_embd.weight" || name === "output.weight";

/** Bytes of a model's weights in a format, tensor by tensor (1-D norms at 16 bits, GGUF norms F32). */
export function weightBytes(m: ModelSpec, format: WeightFormat): number {
  return tensorBytes(m, format, () => true);
}

/**
 * Bytes a forward pass reads: every weight but the embedding table, of which it reads only the rows
 * of its tokens (unless tied, when the table is also the output head and is read whole).
 */
export function streamedWeightBytes(m: ModelSpec, format: WeightFormat): number {
  return tensorBytes(m, format, (name) => m.tiedEmbeddings || name !== "token_embd.weight");
}

function tensorBytes(m: ModelSpec, format: WeightFormat, include: (name: string) => boolean): number {
  let bits = 0;
  const mix: QuantMix | undefined = format.ggufMix ? findMix(format.ggufMix) : undefined;
  const shape = { nLayer: m.layers, nGqa: m.heads / m.kvHeads, tiedEmbeddings: m.tiedEmbeddings };
  for (const t of modelTensors(m)) {
    if (!include(t.name)) continue;
    const n = elements(t);
    if (mix) {
      const from: GgmlTypeName = t.ne.length === 1 ? "F32" : "F16";
      bits += n * bitsPerWeight(chooseTensorType(mix, { name: t.name, ne: t.ne, type: from }, shape).type);
    } else if (t.ne.length === 1) bits += n * 16;
    else bits += n * (isEmbeddingOrHead(t.name) ? format.embeddingBits! : format.linearBits!);
  }
  return bits / 8;
}

/** Average bits per weight of a model in a format (what the whole file costs per parameter). */
export function averageBitsPerWeight(m: ModelSpec, format: WeightFormat): number {
  return (8 * weightBytes(m, format)) / parameterCount(m);
}

// ---------------------------------------------------------------------------------------------
// KV cache element formats

export interface KvFormat {
  key: "fp16" | "fp8" | "f32";
  bytesPerElement: number;
  source: Source;
}

export const KV_FORMATS: KvFormat[] = [
  { key: "fp16", bytesPerElement: 2, source: { url: "https://en.wikipedia.org/wiki/Half-precision_floating-point_format", says: "16-bit (2-byte) values; vLLM's default kv_cache_dtype 'auto' keeps the model's FP16/BF16" } },
  { key: "fp8", bytesPerElement: 1, source: { url: "https://docs.vllm.ai/en/latest/features/quantization/quantized_kvcache.html", says: "vLLM kv_cache_dtype fp8 (E4M3/E5M2): one byte per element, halving KV memory" } },
  { key: "f32", bytesPerElement: 4, source: { url: "lab/engine/lab-engine.ts", says: "LabEngine keeps keys and values in F32 (4 bytes per element) in its paged KV pool, whatever the weights' format" } },
];

export function findKvFormat(key: string): KvFormat {
  const f = KV_FORMATS.find((k) => k.key === key.toLowerCase());
  if (!f) throw new RangeError(`unknown KV cache format "${key}"; known: ${KV_FORMATS.map((k) => k.key).join(", ")}`);
  return f;
}

// ---------------------------------------------------------------------------------------------
// Efficiencies and headroom: inputs with cited defaults, not constants buried in formulas

export interface SourcedValue {
  value: number;
  source: Source;
}

export const DEFAULTS = {
  /** fraction of peak FLOP/s a prefill reaches */
  mfu: { value: 0.76, source: { url: "https://arxiv.org/abs/2211.05102",
    says: "Efficiently Scaling Transformer Inference (Pope et al. 2022): 76% MFU during large-batch processing of input tokens (PaLM 540B, TPU v4)",
    checked: "re-read: the abstract (MLSys 2023 proceedings page): 'a 76% MFU during large-batch-size processing of input tokens … on the PaLM 540B parameter model' — as entered. It is a TPU figure for a well-partitioned 540B model: an upper end for GPU prefill" } },
  /** fraction of peak memory bandwidth a decode step reaches */
  mbu: { value: 0.5, source: { url: "https://www.databricks.com/blog/llm-inference-performance-engineering-best-practices",
    says: "Databricks/MosaicML, LLM Inference Performance Engineering: MBU defined as achieved/peak bandwidth; their worked example runs at an MBU of 50%",
    checked: "NOT re-read: no stored copy of the post's English text was reachable (a Japanese translation on qiita.com exists; its opening was read, not the MBU example). The definition (achieved ÷ peak bandwidth, (parameter bytes + KV bytes) ÷ TPOT) is confirmed by secondary pages; the 50% stands as first entered" } },
  /** fraction of GPU memory held back for activations, CUDA graphs, allocator slack */
  headroom: { value: 0.1, source: { url: "https://docs.vllm.ai/en/latest/configuration/engine_args.html",
    says: "vLLM --gpu-memory-utilization defaults to 0.9: the engine uses 90% of GPU memory for weights, activations and KV cache, leaving 10%",
    checked: "re-read: vLLM engine-argument docs and their copies ('--gpu-memory-utilization … Default 0.9') — as entered. TensorRT-LLM's analogue, kv_cache_free_gpu_mem_fraction 0.9, is a fraction of the memory left after the weights (used by the published throughput points)" } },
} satisfies Record<string, SourcedValue>;
