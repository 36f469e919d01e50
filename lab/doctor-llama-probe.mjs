// Run by `lab doctor` in a child process: loads node-llama-cpp's prebuilt CPU binary and prints one
// JSON line. A separate file (not `node -e`): node-llama-cpp re-runs process.execArgv to test its
// binary, and an `-e` script would be re-run instead of its test.
const m = await import("node-llama-cpp");
const llama = await m.getLlama({ gpu: false, build: "never", logLevel: m.LlamaLogLevel.error });
console.log(JSON.stringify({ buildType: llama.buildType, gpu: llama.gpu, cpuMathCores: llama.cpuMathCores }));
await llama.dispose();
