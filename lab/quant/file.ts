// Quantizing a whole GGUF model file, like llama-quantize: validate the input, pick each tensor's type
// from the mix table (mixes.ts), convert tensor by tensor, keep every metadata entry, stamp
// general.file_type and general.quantization_version, and write the result atomically (temp file +
// rename, by writeGguf) so a crash never leaves a half-written output.
import { realpath, stat } from "node:fs/promises";
import type { GgmlTypeName } from "../ggml-types.ts";
import { kv, llamaHparams, openGguf, readTensorBytes, writeGguf, type GgufKv, type GgufTensorToWrite } from "../gguf/index.ts";
import { dequantizeTensor, isSupportedType, quantizeTensor, supportedTypes } from "./index.ts";
import { chooseTensorType, findMix, MIXES, type QuantMix } from "./mixes.ts";

/** ggml's GGML_QNT_VERSION: the block layouts' version, which llama-quantize writes into every file. */
export const QUANTIZATION_VERSION = 2;

/** A request we refuse before touching anything (bad type, output = input, requantizing). */
export class QuantizeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "QuantizeError";
  }
}

export interface TensorReport {
  name: string;
  ne: number[];
  from: GgmlTypeName;
  to: GgmlTypeName;
  reason: string;
  bytes: number;
}

export interface QuantizeReport {
  input: string;
  output: string;
  mix: string;
  ftype: number;
  inputBytes: number;
  outputBytes: number;
  /** 8 × tensor data bytes / weights, over all tensors of the output */
  bitsPerWeight: number;
  seconds: number;
  tensors: TensorReport[];
}

export interface QuantizeOptions {
  /** allow converting tensors that are already block-quantized (lossy twice); llama-quantize's --allow-requantize */
  allowRequantize?: boolean;
  /** called after each tensor: done of total */
  onProgress?: (done: number, total: number, tensor: string) => void;
}

const FLOAT_TYPES: GgmlTypeName[] = ["F32", "F16", "BF16"];

/** The same file, even through a symlink or a hard link? */
async function sameFile(a: string, b: string): Promise<boolean> {
  try {
    if ((await realpath(a)) === (await realpath(b))) return true;
    const [sa, sb] = await Promise.all([stat(a), stat(b)]);
    return sa.dev === sb.dev && sa.ino === sb.ino;
  } catch {
    return false; // b does not exist yet
  }
}

/** gguf_set_val semantics: an existing entry is removed and the new one appended at the end. */
function setKv(metadata: GgufKv[], entry: GgufKv): void {
  const at = metadata.findIndex((m) => m.key === entry.key);
  if (at >= 0) metadata.splice(at, 1);
  metadata.push(entry);
}

/** llama.cpp's tensor order (llama_model_loader's weight_name_comparer): by layer number, non-layer tensors first, then by name. */
function llamaTensorOrder(a: { name: string }, b: { name: string }): number {
  const layer = (name: string) => Number(/^blk\.(\d+)\./.exec(name)?.[1] ?? -1);
  const la = layer(a.name);
  const lb = layer(b.name);
  if (la !== lb) return la - lb;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

export async function quantizeGgufFile(input: string, output: string, mixName: string, opts: QuantizeOptions = {}): Promise<QuantizeReport> {
  const started = performance.now();
  const mix: QuantMix | undefined = findMix(mixName);
  if (!mix) throw new QuantizeError(`unknown type "${mixName}"; expected one of ${MIXES.map((m) => m.name).join(", ")}`);
  if (await sameFile(input, output)) throw new QuantizeError(`refusing to overwrite the input file ${input}`);

  const file = await openGguf(input); // validates: a bad input fails here, before any output exists
  const hp = llamaHparams(file);
  const model = { nLayer: hp.nLayer, nGqa: hp.nHead / hp.nKvHead, tiedEmbeddings: !file.tensors.some((t) => t.name === "output.weight") };
  // Tensors are written in llama-quantize's order, so our output is byte-identical to its output.
  const plan = [...file.tensors].sort(llamaTensorOrder).map((t) => ({ info: t, choice: chooseTensorType(mix, t, model) }));
  for (const { info, choice } of plan) {
    if (choice.type === info.type) continue;
    if (!isSupportedType(choice.type)) throw new QuantizeError(`${info.name}: type ${choice.type} is not implemented (have ${supportedTypes().join(", ")})`);
    if (!isSupportedType(info.type)) throw new QuantizeError(`${info.name}: cannot read input type ${info.type}`);
    if (!FLOAT_TYPES.includes(info.type) && !opts.allowRequantize) {
      throw new QuantizeError(`${info.name} is already ${info.type}; requantizing loses quality twice (pass allowRequantize / --allow-requantize)`);
    }
  }

  const tensors: GgufTensorToWrite[] = [];
  const reports: TensorReport[] = [];
  let weights = 0;
  let dataBytes = 0;
  for (const [k, { info, choice }] of plan.entries()) {
    const raw = await readTensorBytes(file, info.name);
    const data = choice.type === info.type ? raw : quantizeTensor(choice.type, dequantizeTensor(info.type, raw, info.ne), info.ne);
    tensors.push({ name: info.name, type: choice.type, ne: info.ne, data });
    reports.push({ name: info.name, ne: info.ne, from: info.type, to: choice.type, reason: choice.reason, bytes: data.length });
    weights += info.ne.reduce((a, b) => a * b, 1);
    dataBytes += data.length;
    opts.onProgress?.(k + 1, plan.length, info.name);
  }

  const metadata = [...file.metadata.values()].map(({ key, type, value, itemType }) => ({ key, type, value, itemType }));
  setKv(metadata, kv.u32("general.quantization_version", QUANTIZATION_VERSION));
  setKv(metadata, kv.u32("general.file_type", mix.ftype));
  await writeGguf(output, { alignment: file.alignment, metadata, tensors });

  return {
    input, output, mix: mix.name, ftype: mix.ftype,
    inputBytes: file.fileSize, outputBytes: (await stat(output)).size,
    bitsPerWeight: (8 * dataBytes) / weights,
    seconds: (performance.now() - started) / 1000,
    tensors: reports,
  };
}

