// The heavy version of test/tokenizer.test.ts, for `lab data check --llama`: encode and decode every
// document of the corpus with our SpmTokenizer and with llama.cpp (node-llama-cpp, loading only the
// vocabulary from a GGUF file we write), and count the differences.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { importNodeLlamaCpp } from "../engine/node-llama.mjs";
import { kv, writeGguf, type GgufKv } from "../gguf/index.ts";
import type { SpmTokenizer } from "../tokenizer.ts";

/** The llama hyperparameters llama.cpp requires even when it loads only the vocabulary. */
export const VOCAB_ONLY_LLAMA_KEYS: GgufKv[] = [
  kv.str("general.architecture", "llama"),
  kv.u32("llama.context_length", 256),
  kv.u32("llama.embedding_length", 64),
  kv.u32("llama.block_count", 1),
  kv.u32("llama.feed_forward_length", 128),
  kv.u32("llama.attention.head_count", 2),
  kv.u32("llama.attention.head_count_kv", 2),
  kv.u32("llama.rope.dimension_count", 32),
  kv.f32("llama.rope.freq_base", 10000),
  kv.f32("llama.attention.layer_norm_rms_epsilon", 1e-5),
];

export interface LlamaComparison {
  texts: number;
  tokens: number;
  /** texts whose ids or decoded text differ */
  mismatches: number;
  /** the first few differences, for the report */
  examples: string[];
  oursSeconds: number;
  llamaSeconds: number;
}

/** Tokenizes every text with both tokenizers (no BOS) and compares ids and decoded text. */
export async function compareWithLlamaCpp(tok: SpmTokenizer, texts: string[]): Promise<LlamaComparison> {
  const dir = mkdtempSync(join(tmpdir(), "lab-vocab-"));
  const m = await importNodeLlamaCpp();
  // Logging off: node-llama-cpp first simulates a full load (to size GPU layers), which logs an error
  // for a file without tensors before the vocabulary-only load itself succeeds.
  const llama = await m.getLlama({ gpu: false, build: "never", logLevel: m.LlamaLogLevel.disabled });
  try {
    const path = join(dir, "vocab.gguf");
    await writeGguf(path, { metadata: [...VOCAB_ONLY_LLAMA_KEYS, ...tok.toGgufMetadata()], tensors: [] });
    const model = await llama.loadModel({ modelPath: path, vocabOnly: true, gpuLayers: 0 });
    let t0 = performance.now();
    const ours = texts.map((t) => tok.encode(t));
    const oursSeconds = (performance.now() - t0) / 1000;
    t0 = performance.now();
    const theirs = texts.map((t) => Array.from(model.tokenize(t, false)));
    const llamaSeconds = (performance.now() - t0) / 1000;
    const result: LlamaComparison = { texts: texts.length, tokens: 0, mismatches: 0, examples: [], oursSeconds, llamaSeconds };
    texts.forEach((text, i) => {
      const a = ours[i], b = theirs[i];
      result.tokens += a.length;
      const same = a.length === b.length && a.every((id, k) => id === b[k]) && tok.decode(a) === model.detokenize(b, false);
      if (!same) {
        result.mismatches++;
        if (result.examples.length < 5) result.examples.push(`${JSON.stringify(text.slice(0, 60))}: ours [${a.slice(0, 10)}] llama.cpp [${b.slice(0, 10)}]`);
      }
    });
    await model.dispose();
    return result;
  } finally {
    await llama.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}
