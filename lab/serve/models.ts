// Which files the service serves: `--models target:Q4_K_M,target:Q8_0,target:F32` → one model id
// per level ("target-q4_k_m", …), each a GGUF quantized by lab/quant and cached where notebook 01
// caches its levels (data/cache/quantization/<source sha>-<quantizer sha>/LEVEL.gguf), so the
// client picks the quantization level per request with the `model` field.
import { existsSync } from "node:fs";
import { basename, join } from "node:path";
import { EngineError } from "../engine/engine.ts";
import { findMix } from "../quant/mixes.ts";
import { REPO_ROOT, quantizeLevels } from "../study/quantization.ts";
import type { ModelEntry } from "./protocol.ts";

/** Short names for the embedded models. */
export const MODEL_ALIASES: Record<string, string> = {
  target: join(REPO_ROOT, "data", "models", "target.gguf"),
  draft: join(REPO_ROOT, "data", "models", "draft.gguf"),
};

export const DEFAULT_MODELS = "target:Q4_K_M";

export interface ModelRef {
  /** What was written: "target", or a path. */
  name: string;
  path: string;
  /** A llama-quantize name, or undefined for the file as stored. */
  level?: string;
}

/** One "NAME[:LEVEL]" item: NAME is an alias (target, draft) or a path to a GGUF. */
export function parseModelRef(item: string): ModelRef {
  const text = item.trim();
  if (text === "") throw new EngineError("empty model name in the model list");
  let name = text;
  let level: string | undefined;
  const colon = text.lastIndexOf(":");
  if (colon > 0) {
    const tail = text.slice(colon + 1);
    const mix = findMix(tail);
    if (!mix) throw new EngineError(`unknown quantization level "${tail}" in "${text}" (use a llama-quantize name such as Q8_0 or Q4_K_M)`);
    name = text.slice(0, colon);
    level = mix.name;
  }
  const path = MODEL_ALIASES[name] ?? name;
  if (!existsSync(path)) {
    throw new EngineError(`no model "${name}": not one of ${Object.keys(MODEL_ALIASES).join(", ")} and no file at ${path}`);
  }
  return { name, path, level };
}

/** The model id a client asks for: the file's base name, plus the level in lower case. */
export function modelId(ref: ModelRef): string {
  const base = basename(ref.name).replace(/\.gguf$/i, "");
  return ref.level ? `${base}-${ref.level.toLowerCase()}` : base;
}

/** Parses a comma-separated list and quantizes (or takes from the cache) every level in it. */
export async function resolveModels(list: string | readonly string[], opts: { cacheDir?: string; onQuantize?: (what: string) => void } = {}): Promise<ModelEntry[]> {
  const items = typeof list === "string" ? list.split(",") : [...list];
  const refs = items.map(parseModelRef);
  const out: ModelEntry[] = [];
  for (const ref of refs) {
    const id = modelId(ref);
    if (out.some((m) => m.id === id)) throw new EngineError(`model "${id}" is listed twice`);
    let path = ref.path;
    if (ref.level) {
      const [file] = await quantizeLevels(ref.path, [ref.level], { cacheDir: opts.cacheDir });
      if (!file.cached) opts.onQuantize?.(`quantized ${ref.path} to ${file.level}: ${file.path}`);
      path = file.path;
    }
    out.push({ id, path, level: ref.level ?? "as stored", source: ref.path });
  }
  if (out.length === 0) throw new EngineError("no models to serve");
  return out;
}
