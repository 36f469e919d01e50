// lab/gguf: read, validate and write GGUF files. Reading order: format.ts (the container and its
// types), reader.ts, validate.ts (what llama.cpp needs), writer.ts.
export {
  GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GgufError, GgufValueType, getValue, ggufStringFromBytes, ggufStringToBytes, isUtf8Text,
  kv, showGgufString, valueTypeName,
  type GgufArray, type GgufFile, type GgufKv, type GgufTensorInfo, type GgufValue, type GgufValueTypeId,
  type GgufValueTypeName,
} from "./format.ts";
export { alignUp, openGguf, parseGgufBytes, readTensorBytes } from "./reader.ts";
export { llamaHparams, llamaMetadata, validateGguf, type LlamaHparams } from "./validate.ts";
export { encodeGgufHeader, writeGguf, type GgufDocument, type GgufTensorToWrite } from "./writer.ts";
