// Child process for the fuzzer: loads each GGUF path given on argv into llama.cpp (CPU), tokenizes
// text with every byte value, and evaluates a few tokens. Prints "start I" before and "ok I" /
// "error I MESSAGE" after each file, so when llama.cpp aborts the process the parent knows which
// file did it. Plain ESM so it runs without tsx: node test/fuzz/gguf-llama-check.mjs A.gguf B.gguf
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.disabled });
// Characters whose UTF-8 encodings use every byte that valid UTF-8 can contain (ASCII, every lead
// byte C2..F4, every continuation byte), so byte fallback needs every such <0xNN> token.
const codePoints = [];
for (let c = 1; c < 0x80; c++) codePoints.push(c);
for (let c = 0x80; c < 0x800; c += 0x40) codePoints.push(c + (c >> 6) % 64);
for (let c = 0x800; c < 0x10000; c += 0x1000) if (c < 0xd800 || c > 0xdfff) codePoints.push(c + 0x3f);
for (let c = 0x10000; c < 0x110000; c += 0x40000) codePoints.push(c + 0x1234);
const text = `the one word ${String.fromCodePoint(...codePoints)} 😀 naïve`;
const paths = process.argv.slice(2);
for (let i = 0; i < paths.length; i++) {
  process.stdout.write(`start ${i}\n`);
  try {
    const model = await llama.loadModel({ modelPath: paths[i] });
    const ids = model.tokenize(text);
    model.detokenize(ids);
    const context = await model.createContext({ contextSize: 64, threads: 1 });
    const sequence = context.getSequence();
    await sequence.controlledEvaluate(ids.slice(0, 16).map((t, j, a) => (j === a.length - 1 ? [t, { generateNext: { token: true } }] : t)));
    await context.dispose();
    await model.dispose();
    process.stdout.write(`ok ${i}\n`);
  } catch (err) {
    process.stdout.write(`error ${i} ${String(err?.message ?? err).replace(/\s+/g, " ")}\n`);
  }
}
