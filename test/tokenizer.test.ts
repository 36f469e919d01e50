// SpmTokenizer against llama.cpp itself: our encode/decode must give exactly the ids and text that
// node-llama-cpp (llama.cpp's llm_tokenizer_spm) gives for the same vocabulary in a GGUF file — on every
// eval text, the validation corpus, an adversarial list and seeded random strings — plus round trips,
// storage round trips, and clear errors for bad vocabularies.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LlamaModel, Token } from "node-llama-cpp";
import { EVAL_SETS, TASKS, loadCorpus, loadEvalSet, loadTokenizer, Rng } from "../lab/data/index.ts";
import { VOCAB_ONLY_LLAMA_KEYS } from "../lab/data/llama-check.ts";
import { ggufStringToBytes, openGguf, writeGguf, type GgufKv } from "../lab/gguf/index.ts";
import { SPACE, SpmTokenizer, TokenType, TokenizerError, type Vocabulary } from "../lab/tokenizer.ts";
import { TRICKY_PIECES, trickyLlamaDocument } from "./fuzz/gguf-fixtures.ts";

const dir = mkdtempSync(join(tmpdir(), "lab-tokenizer-test-"));
let disposeLlama: (() => Promise<void>) | undefined;
afterAll(async () => {
  await disposeLlama?.();
  rmSync(dir, { recursive: true, force: true });
});

async function loadVocabInLlamaCpp(tok: SpmTokenizer, name: string): Promise<{ model: LlamaModel; path: string }> {
  const path = join(dir, `${name}.gguf`);
  await writeGguf(path, { metadata: [...VOCAB_ONLY_LLAMA_KEYS, ...tok.toGgufMetadata()], tensors: [] });
  const m = await import("node-llama-cpp");
  // Disabled logging: node-llama-cpp first "simulates" a full load to size GPU layers, which logs an
  // error for a file without tensors before the real vocabulary-only load succeeds.
  const llama = await m.getLlama({ gpu: false, build: "never", logLevel: m.LlamaLogLevel.disabled });
  disposeLlama ??= () => llama.dispose();
  const model = await llama.loadModel({ modelPath: path, vocabOnly: true, gpuLayers: 0 });
  return { model, path };
}

/** Strings that stress every branch: byte fallback, multi-byte and astral characters, whitespace runs,
 *  special-token look-alikes, leading/trailing spaces, the empty string. */
const ADVERSARIAL = [
  "", " ", "  ", "   ", "\t", "\n", "\n\n", " \n ", "a", " a", "a ", "  a  b  ", "hello world", "Hello,  World!",
  "tab\tseparated\tvalues", "line one\nline two\r\nline three", "trailing spaces   ", "   leading spaces",
  "日本語のテキスト", "中文 测试 文本", "한국어", "Ελληνικά", "Привет, мир", "עברית", "العربية",
  "emoji 🙂👍🏽🏳️‍🌈 and 👨‍👩‍👧‍👦", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛", "combining e\u0301 a\u0308 n\u0303", "zero\u200bwidth", "nbsp\u00a0here",
  "<s>", "</s>", "<unk>", "<0x41>", "<s>hello</s>", "▁", "▁▁ ▁", "text with ▁ inside", "\u0000nul\u0000",
  "\u007f\u0001\u001b[31m", "ÿþý", "€100 £5 ¥7", "Q: 47 + 385 = ? A: 432", "Code: x = 3; y = x * 2; print(y + 1) Output: 7",
  "aaaaaaaaaaaaaaaaaaaaaaaaaaaa", "eeeeeeeeeeeee", "the the the the", "ababababab", "0000000000", "1234567890",
  "Mira lives in Tolven.", "User: Hello!\nAssistant: Hello! How can I help you today?", "!!!???...,,,", "'\"`~@#$%^&*()_+-=[]{}|\\:;<>/",
  "x".repeat(3000), " y".repeat(500),
];

/** Seeded random strings over an alphabet mixing frequent pieces, spaces, newlines and exotic text. */
function fuzzStrings(tok: SpmTokenizer, count: number, seed: number): string[] {
  const rng = new Rng(seed);
  const pieces = tok.vocab.tokens.filter((_, i) => tok.vocab.types[i] === TokenType.NORMAL).map((t) => t.replaceAll(SPACE, " "));
  const exotic = [" ", "  ", "\n", "\t", "é", "ß", "日", "本", "🙂", "👍🏽", "\u0301", "<s>", "<0x0A>", "\u0000", "€", "ё", "\r"];
  return Array.from({ length: count }, () => {
    let s = "";
    const n = rng.int(0, 24);
    for (let i = 0; i < n; i++) s += rng.chance(0.7) ? rng.pick(pieces) : rng.pick(exotic);
    return s;
  });
}

function expectSameAsLlama(tok: SpmTokenizer, model: LlamaModel, texts: string[]): void {
  let mismatches = 0;
  const first: string[] = [];
  for (const text of texts) {
    const ours = tok.encode(text);
    const theirs = Array.from(model.tokenize(text, false));
    const oursText = tok.decode(ours);
    const theirsText = model.detokenize(theirs, false);
    const same = ours.length === theirs.length && ours.every((id, i) => id === theirs[i]) && oursText === theirsText;
    if (!same) {
      mismatches++;
      if (first.length < 3) first.push(`${JSON.stringify(text.slice(0, 60))}: ours ${ours.slice(0, 12)} llama.cpp ${theirs.slice(0, 12)}`);
    }
  }
  expect(first).toEqual([]);
  expect(mismatches).toBe(0);
}

describe("the committed tokenizer (data/tokenizer.json) against llama.cpp", () => {
  const tok = loadTokenizer();
  let model: LlamaModel;
  let path: string;
  beforeAll(async () => {
    ({ model, path } = await loadVocabInLlamaCpp(tok, "committed"));
  });

  it("encodes and decodes every eval text exactly as llama.cpp does", () => {
    const texts: string[] = loadEvalSet("prose").map((e) => e.text);
    for (const name of EVAL_SETS.filter((n) => n !== "prose")) {
      for (const e of loadEvalSet(name)) texts.push(e.prompt, e.answer, `${e.prompt} ${e.answer}`);
    }
    expect(texts.length).toBeGreaterThan(2000);
    expectSameAsLlama(tok, model, texts);
  });

  it("encodes every validation document exactly as llama.cpp does", () => {
    expectSameAsLlama(tok, model, TASKS.flatMap((t) => loadCorpus(t, "val")));
  });

  it("encodes the adversarial list and 2000 seeded random strings exactly as llama.cpp does", () => {
    expectSameAsLlama(tok, model, [...ADVERSARIAL, ...fuzzStrings(tok, 2000, 7)]);
  });

  it("decodes arbitrary id sequences (cut UTF-8, control tokens, bytes) exactly as llama.cpp does", () => {
    const rng = new Rng(11);
    const byteIds = Array.from({ length: 256 }, (_, b) => 3 + b);
    for (let k = 0; k < 1500; k++) {
      const n = rng.int(1, 12);
      const ids = Array.from({ length: n }, () => (rng.chance(0.4) ? rng.pick(byteIds) : rng.int(0, tok.vocabSize - 1)));
      expect(tok.decode(ids)).toBe(model.detokenize(ids as Token[], false));
    }
  });

  it("round-trips decode(encode(s)) === s on the adversarial list, random strings and eval texts", () => {
    // Text that already contains "▁" cannot round-trip in any SentencePiece tokenizer (it decodes as a space).
    const texts = [...ADVERSARIAL, ...fuzzStrings(tok, 500, 3), ...loadEvalSet("prose").map((e) => e.text)].filter((s) => !s.includes(SPACE));
    expect(texts.length).toBeGreaterThan(700);
    for (const s of texts) expect(tok.decode(tok.encode(s))).toBe(s);
  });

  it("reads the same vocabulary back from the GGUF file (fromGguf)", async () => {
    const fromFile = SpmTokenizer.fromGguf(await openGguf(path, { validate: false }));
    expect(fromFile.toJSON()).toEqual(tok.toJSON());
    expect(SpmTokenizer.fromJSON(JSON.parse(JSON.stringify(tok.toJSON()))).encode("Mira lives in Tolven.")).toEqual(tok.encode("Mira lives in Tolven."));
  });

  it("adds BOS/EOS only when asked, and maps a lone surrogate like llama.cpp (to U+FFFD)", () => {
    const ids = tok.encode("hello");
    expect(tok.encode("hello", { bos: true })).toEqual([tok.bosId, ...ids]);
    expect(tok.encode("hello", { bos: true, eos: true })).toEqual([tok.bosId, ...ids, tok.eosId]);
    expect(tok.encode("", { bos: true })).toEqual([tok.bosId]);
    // With BOS first, the leading space of the next token survives, in llama.cpp as here.
    const withBos = tok.encode("hello", { bos: true, eos: true });
    expect(tok.decode(withBos)).toBe(" hello");
    expect(model.detokenize(withBos as Token[], false)).toBe(" hello");
    expect(tok.encode("x\uD800y")).toEqual(Array.from(model.tokenize("x\uD800y", false)));
    expect(tok.encode("x\uD800y")).toEqual(tok.encode("x\uFFFDy"));
  });

  it("learned a vocabulary that fits the corpus: one token per digit, the first carrying the space", () => {
    expect(tok.vocabSize).toBe(1024);
    const pieces = (s: string) => tok.encode(s).map((id) => tok.piece(id));
    expect(pieces("Q: 47 + 385 = ? A: 432")).toEqual(["▁Q:", "▁4", "7", "▁+", "▁3", "8", "5", "▁=", "▁?", "▁A:", "▁4", "3", "2"]);
    const withDigits: string[] = [];
    for (let i = 0; i < tok.vocabSize; i++) {
      const t = tok.piece(i);
      if (tok.vocab.types[i] === TokenType.NORMAL && [...t].length > 1 && /[0-9]/.test(t)) withDigits.push(t);
    }
    expect(withDigits.sort()).toEqual([..."0123456789"].map((d) => "▁" + d));
  });
});

describe("a hand-made vocabulary with tied scores and inner spaces, against llama.cpp", () => {
  // Exercises what training never produces: equal scores (ties go to the leftmost pair), pieces with
  // "▁" inside (no cutting at spaces), a multi-byte piece, and a single character missing (bytes).
  const specials = ["<unk>", "<s>", "</s>"];
  const bytes = Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
  const normal: [string, number][] = [
    ["▁", -1], ["a", -1], ["b", -1], ["c", -1], ["日", -1], ["本", -1],
    ["aa", 0], ["ab", 0], ["ba", 0], ["aaa", -2], ["▁▁", 0], ["▁a", 0], ["a▁", 0], ["▁▁▁▁", 1], ["bc", -3], ["abc", -0.5],
    ["日本", 2], ["c▁b", 0.25],
  ];
  const tokens = [...specials, ...bytes, ...normal.map(([t]) => t)];
  const vocab: Vocabulary = {
    tokens,
    scores: Float32Array.from([0, 0, 0, ...bytes.map(() => 0), ...normal.map(([, s]) => s)]),
    types: Int32Array.from([TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL, ...bytes.map(() => TokenType.BYTE), ...normal.map(() => TokenType.NORMAL)]),
    bosId: 1, eosId: 2, unkId: 0, addSpacePrefix: true, addBos: true, addEos: false,
  };
  const tok = new SpmTokenizer(vocab);
  let model: LlamaModel;
  beforeAll(async () => {
    ({ model } = await loadVocabInLlamaCpp(tok, "handmade"));
  });

  it("merges by score, ties to the leftmost pair", () => {
    const pieces = (s: string) => tok.encode(s).map((id) => tok.piece(id));
    expect(pieces("aaa")).toEqual(["▁a", "aa"]);
    expect(pieces("abc")).toEqual(["▁a", "bc"]);
    expect(pieces("日本")).toEqual(["▁", "日本"]);
    expect(pieces("d")).toEqual(["▁", "<0x64>"]);
  });

  const randomTexts = (seed: number) => {
    const rng = new Rng(seed);
    const alphabet = ["a", "b", "c", " ", "  ", "日", "本", "d", "\n", "é"];
    return Array.from({ length: 3000 }, () => Array.from({ length: rng.int(0, 16) }, () => rng.pick(alphabet)).join(""));
  };

  it("matches llama.cpp on seeded random strings over its alphabet", () => {
    expectSameAsLlama(tok, model, randomTexts(5));
  });

  it("cuts out user-defined tokens like llama.cpp (and re-adds the space prefix after them)", async () => {
    const extra = ["<tag>", "<tagg>", "x y", "zz"];
    const withUser = new SpmTokenizer({
      ...vocab,
      tokens: [...vocab.tokens, ...extra],
      scores: Float32Array.from([...vocab.scores, ...extra.map(() => 0)]),
      types: Int32Array.from([...vocab.types, ...extra.map(() => TokenType.USER_DEFINED)]),
    });
    const id = (t: string) => withUser.vocab.tokens.indexOf(t);
    expect(withUser.encode("a<tag>a")).toEqual([...withUser.encode("a"), id("<tag>"), ...withUser.encode("a")]);
    const { model: m3 } = await loadVocabInLlamaCpp(withUser, "handmade-user-defined");
    const rng = new Rng(8);
    const alphabet = ["a", "b", " ", "<tag>", "<tagg>", "<ta", "g>", "x", "y", "z", " ", "日"];
    const texts = Array.from({ length: 3000 }, () => Array.from({ length: rng.int(0, 14) }, () => rng.pick(alphabet)).join(""));
    expectSameAsLlama(withUser, m3, texts);
  });

  it("matches llama.cpp with add_space_prefix = false too", async () => {
    const noPrefix = new SpmTokenizer({ ...vocab, addSpacePrefix: false });
    expect(noPrefix.encode("aaa").map((id) => noPrefix.piece(id))).toEqual(["aaa"]);
    const { model: m2 } = await loadVocabInLlamaCpp(noPrefix, "handmade-no-prefix");
    expectSameAsLlama(noPrefix, m2, randomTexts(6));
  });
});

// Pieces are bytes: a lone U+FEFF (Llama-2's token 30143), a BOM inside a piece, an empty piece, and
// pieces that are not UTF-8 at all, read from a GGUF file the way LabEngine reads it (fromGguf).
describe("a vocabulary whose pieces are bytes (BOM, invalid UTF-8, empty), from GGUF, against llama.cpp", () => {
  const { doc, ids } = trickyLlamaDocument({ seed: 4, nEmbd: 32, nFf: 64, nHead: 4, nKvHead: 2, nLayer: 1, nCtx: 64 });
  const tokenizerKeys = doc.metadata.filter((e) => e.key.startsWith("tokenizer."));
  const id = (name: string) => ids.get(name)!;
  let tok: SpmTokenizer;
  let model: LlamaModel;

  /** Writes the vocabulary as stored (not through toGgufMetadata) and loads it in both tokenizers. */
  async function load(name: string, metadata: GgufKv[]): Promise<{ tok: SpmTokenizer; model: LlamaModel }> {
    const path = join(dir, `${name}.gguf`);
    await writeGguf(path, { metadata: [...VOCAB_ONLY_LLAMA_KEYS, ...metadata], tensors: [] });
    const m = await import("node-llama-cpp");
    const llama = await m.getLlama({ gpu: false, build: "never", logLevel: m.LlamaLogLevel.disabled });
    disposeLlama ??= () => llama.dispose();
    return { tok: SpmTokenizer.fromGguf(await openGguf(path, { validate: false })), model: await llama.loadModel({ modelPath: path, vocabOnly: true, gpuLayers: 0 }) };
  }
  beforeAll(async () => {
    ({ tok, model } = await load("tricky", tokenizerKeys));
  });

  /** Each piece as text (invalid bytes as U+FFFD, which is all a JS string can pass to llama.cpp), in company. */
  const pieceTexts = () => TRICKY_PIECES.flatMap(([name, bytes]) => {
    const t = name === "empty" ? `[EMPTY_${id(name)}]` : new TextDecoder("utf-8", { ignoreBOM: true }).decode(bytes).replaceAll(SPACE, " ");
    return [t, `x${t}y`, ` ${t}`, `${t} the`, `${t}${t}`, `the${t}`, `\n${t}`];
  });

  it("encodes U+FEFF to the BOM token and text containing each piece exactly as llama.cpp does", () => {
    // The space prefix makes "\uFEFF" the piece "▁\uFEFF"; after a letter it is the lone BOM piece.
    expect(tok.encode("\uFEFF")).toEqual([id("space + BOM")]);
    expect(tok.encode("x\uFEFF").at(-1)).toBe(id("BOM only"));
    expect(Array.from(model.tokenize("x\uFEFF", false))).toEqual(tok.encode("x\uFEFF"));
    const rng = new Rng(30143);
    const alphabet = ["\uFEFF", "a", "b", "x", "e", " ", "hi", "\uFFFD", "€", "😀", "/", "\0", "\u2581", "the"];
    const random = Array.from({ length: 2000 }, () => Array.from({ length: rng.int(0, 10) }, () => rng.pick(alphabet)).join(""));
    expectSameAsLlama(tok, model, [...pieceTexts(), ...random]);
  });

  it("decodes each piece to its bytes, and every pair of pieces (after BOS, bytes, words) to llama.cpp's text", () => {
    expect(tok.decode([id("BOM only")])).toBe("\uFEFF");
    expect(model.detokenize([id("BOM only")] as Token[], false)).toBe("\uFEFF");
    expect(tok.decode([id("BOM then text"), id("BOM only")])).toBe("\uFEFFhi\uFEFF");
    expect([...tok.decodeBytes([id("text + lone continuation byte")])]).toEqual([0x78, 0x80]);
    expect([...tok.decodeBytes([id("overlong 2-byte '/'")])]).toEqual([0xc0, 0xaf]);
    const pieceIds = TRICKY_PIECES.map(([name]) => id(name));
    const others = [tok.bosId, tok.eosId, 3 + 0x41, 3 + 0xe2, 3 + 0x80, 300, 400];
    let compared = 0;
    for (const a of pieceIds) {
      for (const b of [...pieceIds, ...others]) {
        for (const seq of [[a], [a, b], [b, a], [tok.bosId, a, b], [a, a, b]]) {
          expect(tok.decode(seq), JSON.stringify(seq)).toBe(model.detokenize(seq as Token[], false));
          compared++;
        }
      }
    }
    expect(compared).toBe(15 * 22 * 5);
  });

  it("cuts out a user-defined BOM piece like llama.cpp; refuses a user-defined piece that is not UTF-8", async () => {
    const asUserDefined = (names: string[]) => tokenizerKeys.map((e) => e.key !== "tokenizer.ggml.token_type" ? e
      : { ...e, value: (e.value as number[]).map((t, i) => (names.some((n) => id(n) === i) ? TokenType.USER_DEFINED : t)) });
    const user = await load("tricky-user-defined", asUserDefined(["BOM only", "BOM inside"]));
    expect(user.tok.encode("a\uFEFFb")).toEqual([id("BOM inside")]);
    const rng = new Rng(2);
    const alphabet = ["\uFEFF", "a", "b", " ", "hi", "x"];
    expectSameAsLlama(user.tok, user.model, Array.from({ length: 1000 }, () => Array.from({ length: rng.int(0, 8) }, () => rng.pick(alphabet)).join("")));
    const metadata = asUserDefined(["lone continuation byte"]);
    const file = { metadata: new Map(metadata.map((e) => [e.key, e])) };
    expect(() => SpmTokenizer.fromGguf(file)).toThrow(/user-defined token \d+ "\\x80" is not valid UTF-8/);
  });

  it("keeps the pieces' bytes through toGgufMetadata and JSON", () => {
    const tokens = tok.toGgufMetadata().find((e) => e.key === "tokenizer.ggml.tokens")!.value as string[];
    for (const [name, bytes] of TRICKY_PIECES) {
      if (name !== "empty") expect(Buffer.from(ggufStringToBytes(tokens[id(name)])).equals(Buffer.from(bytes)), name).toBe(true);
    }
    const back = SpmTokenizer.fromJSON(JSON.parse(JSON.stringify(tok.toJSON())));
    expect(back.toJSON()).toEqual(tok.toJSON());
    expect(back.decodeBytes([id("byte FF")])).toEqual(Uint8Array.of(0xff));
  });
});

describe("training and bad vocabularies", () => {
  it("is deterministic and respects the vocabulary size", () => {
    const texts = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog", "12 + 34 = 46"];
    const a = SpmTokenizer.train(texts, { vocabSize: 512, minPairCount: 1 });
    const b = SpmTokenizer.train(texts, { vocabSize: 512, minPairCount: 1 });
    expect(a.toJSON()).toEqual(b.toJSON());
    expect(a.vocabSize).toBeLessThanOrEqual(512);
    expect(a.encode("the cat").map((id) => a.piece(id))).toEqual(["▁the", "▁cat"]);
  });

  it("keeps single characters to half the free vocabulary; the rest fall back to bytes", () => {
    const cjk = Array.from({ length: 400 }, (_, i) => String.fromCodePoint(0x4e00 + i)).join("");
    const tok = SpmTokenizer.train([cjk, cjk], { vocabSize: 512 });
    expect(tok.vocabSize).toBeLessThanOrEqual(512);
    expect(tok.encode(cjk).length).toBeGreaterThan(400); // some characters became 3 byte tokens
    expect(tok.decode(tok.encode(cjk))).toBe(cjk);
  });

  it("rejects bad options and malformed vocabularies with TokenizerError", () => {
    expect(() => SpmTokenizer.train(["x"], { vocabSize: 100 })).toThrow(/vocabSize must be an integer in \[512, 4096\]/);
    const tok = loadTokenizer();
    const base = tok.vocab;
    const dup = [...base.tokens];
    dup[600] = dup[601];
    expect(() => new SpmTokenizer({ ...base, tokens: dup })).toThrow(/appears twice/);
    const noByte = [...base.tokens];
    noByte[3 + 0xc3] = "<0xC3-missing>";
    expect(() => new SpmTokenizer({ ...base, tokens: noByte })).toThrow(/byte token <0xC3> is missing/);
    expect(() => new SpmTokenizer({ ...base, bosId: 99999 })).toThrow(TokenizerError);
    expect(() => tok.decode([tok.vocabSize])).toThrow(/outside the vocabulary/);
    expect(() => SpmTokenizer.fromJSON({ format: "other" } as never)).toThrow(/not an inference-lab tokenizer/);
    expect(() => SpmTokenizer.fromGguf({ metadata: new Map([["tokenizer.ggml.model", { value: "gpt2" }]]) })).toThrow(/expected "llama"/);
  });
});
