// The one place the lab imports node-llama-cpp. It is an ES module with top-level await, so it must
// be loaded with a real dynamic import(); tslab compiles notebook cells (and the .ts files they
// import) to CommonJS, where `import()` would become require() and fail. A plain .mjs file keeps
// the import() as written.
let pending;

/** node-llama-cpp's module namespace, imported once per process. */
export function importNodeLlamaCpp() {
  pending ??= import("node-llama-cpp");
  return pending;
}

let llama;

/** The process-wide CPU-only Llama instance (never builds, never downloads). */
export function cpuLlama() {
  llama ??= importNodeLlamaCpp().then((m) => m.getLlama({ gpu: false, build: "never", logLevel: m.LlamaLogLevel.error }))
    .catch((err) => { llama = undefined; throw err; });
  return llama;
}
