// From the trainer's flat parameter vector to a GGUF file llama.cpp loads, and back. The trainer's
// layout already is llama.cpp's: matrices row-major [out][in] (ggml ne = [in, out]) and RoPE on
// adjacent pairs, so tensors are written as they are, in F32, with no permutation.
import { GgufError, llamaHparams, llamaMetadata, openGguf, readTensorBytes, writeGguf, type GgufKv } from "../gguf/index.ts";
import type { SpmTokenizer } from "../tokenizer.ts";
import { paramLayout, type ModelShape } from "./model.ts";

/** Writes params (layout paramLayout(shape)) as an F32 GGUF with the tokenizer embedded. */
export async function exportGguf(path: string, shape: ModelShape, params: Float32Array, tokenizer: SpmTokenizer,
  name: string, extra: GgufKv[] = []): Promise<void> {
  if (tokenizer.vocabSize !== shape.nVocab) {
    throw new GgufError(`tokenizer has ${tokenizer.vocabSize} tokens but the model's vocabulary is ${shape.nVocab}`);
  }
  const layout = paramLayout(shape);
  if (params.length !== layout.total) throw new GgufError(`params has ${params.length} values, the layout needs ${layout.total}`);
  const tensors = layout.slots.map((p) => {
    const values = params.slice(p.offset, p.offset + p.size);
    return { name: p.name, type: "F32" as const, ne: p.ne, data: new Uint8Array(values.buffer) };
  });
  await writeGguf(path, { metadata: [...llamaMetadata(shape, name), ...tokenizer.toGgufMetadata(), ...extra], tensors });
}

/** Reads an F32 llama GGUF back into the trainer's shape and flat parameter vector. */
export async function importGguf(path: string): Promise<{ shape: ModelShape; params: Float32Array }> {
  const file = await openGguf(path);
  const shape: ModelShape = { ...llamaHparams(file) };
  const layout = paramLayout(shape);
  const params = new Float32Array(layout.total);
  for (const p of layout.slots) {
    const info = file.tensors.find((t) => t.name === p.name);
    if (!info) throw new GgufError(`${path}: tensor ${p.name} is missing`, { tensor: p.name });
    if (info.type !== "F32") throw new GgufError(`${path}: tensor ${p.name} is ${info.type}; the trainer reads F32 only`, { tensor: p.name });
    const bytes = await readTensorBytes(file, p.name);
    params.set(new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)), p.offset);
  }
  return { shape, params };
}
