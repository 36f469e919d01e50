// A SentencePiece-style BPE tokenizer whose encode/decode give exactly the ids and text llama.cpp gives
// for the same vocabulary stored in a GGUF file (tokenizer.ggml.model = "llama", LLAMA_VOCAB_TYPE_SPM).
//
// How llama.cpp tokenizes SPM text (src/llama-vocab.cpp, llm_tokenizer_spm_session), which encode mirrors:
//   1. prepend " " (add_space_prefix) to the text, then replace every " " with "▁" (U+2581);
//   2. split into UTF-8 characters: each is one symbol;
//   3. repeatedly merge the adjacent pair whose concatenation is a vocabulary token with the HIGHEST
//      score (ties: the leftmost pair), until no adjacent pair forms a token;
//   4. each final symbol is its token, or, if it is not in the vocabulary, one <0xNN> token per UTF-8 byte.
// (Before step 1, text matching a USER_DEFINED token is cut out as that token, and the space prefix is
// repeated after it; our trained vocabularies have none, but GGUF files may.)
// Decoding maps "▁" back to " ", byte tokens to their byte, control/unknown tokens to nothing, and drops
// one leading space of the first token (the space that encoding prepended).
//
// Pieces are bytes, as in llama.cpp: a piece read from GGUF may be a lone U+FEFF (Llama-2's token
// 30143), or not valid UTF-8 at all (held as escaped bytes, lab/gguf/format.ts "Strings are bytes").
// Such a piece decodes to exactly its bytes, and since text to encode is always valid UTF-8, encoding
// can never produce it (llama.cpp cannot either). llama.cpp reads pieces as C strings: fromGguf cuts
// a piece at a NUL and names an empty piece "[EMPTY_i]", as llama.cpp does.
//
// Training (ours, not llama.cpp's) is classic BPE over word counts: start from characters and repeatedly
// add the most frequent adjacent pair as a new piece. Piece k gets score -k, so "merged earlier" means
// "higher score", which is exactly the order step 3 applies merges in.
//
// Vocabulary layout:  0 <unk> | 1 <s> | 2 </s> | 3..258 <0x00>..<0xFF> | learned pieces (highest score
// first) | single characters.  Token types follow llama.cpp's LLAMA_TOKEN_TYPE_*: 1 normal, 2 unknown,
// 3 control, 6 byte.
//
// Reading order: 1. vocabulary  2. training  3. encoding  4. decoding  5. storage (JSON, GGUF).
import { readFileSync } from "node:fs";
import { ggufStringToBytes, isUtf8Text, kv, showGgufString, type GgufKv } from "./gguf/index.ts";

export const TokenType = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;
export type TokenTypeId = (typeof TokenType)[keyof typeof TokenType];

/** U+2581 LOWER ONE EIGHTH BLOCK: how SentencePiece writes a space inside a piece. */
export const SPACE = "\u2581";

export class TokenizerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TokenizerError";
  }
}

// ---------------------------------------------------------------------------------------------------
// 1. The vocabulary
// ---------------------------------------------------------------------------------------------------

export interface Vocabulary {
  tokens: string[];      // [vocabSize] piece text, "▁" for spaces
  scores: Float32Array;  // [vocabSize] f32, higher merges first
  types: Int32Array;     // [vocabSize] TokenType
  bosId: number;
  eosId: number;
  unkId: number;
  addSpacePrefix: boolean;
  addBos: boolean;
  addEos: boolean;
}

const byteText = (b: number) => `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`;

/** Chunks encoded per piece of text are cached; the cache is dropped when it grows past this. */
const CACHE_LIMIT = 200_000;

/** Only short chunks (words, in a trained vocabulary) are worth caching. */
const CACHE_MAX_CHUNK = 64;

const UTF8 = new TextEncoder();
/** ignoreBOM: a text that starts with U+FEFF (the BOM token) keeps it, as llama.cpp's does. */
const UTF8_TEXT = new TextDecoder("utf-8", { ignoreBOM: true });
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const LONE_SURROGATE_ALL = new RegExp(LONE_SURROGATE.source, "g");

// ---------------------------------------------------------------------------------------------------
// 2. Training
// ---------------------------------------------------------------------------------------------------

export interface TrainOptions {
  /** Total vocabulary size including the 3 special and 256 byte tokens (512–4096). */
  vocabSize: number;
  /** Characters seen fewer times than this fall back to bytes (default 2). */
  minCharCount?: number;
  /** A pair must occur at least this often to become a piece (default 2). */
  minPairCount?: number;
}

const isDigit = (ch: string) => ch >= "0" && ch <= "9";
const isControlChar = (ch: string) => ch.codePointAt(0)! < 0x20 || ch === "\u007f";

/** The words BPE counts: text as the encoder sees it (space prefix, "▁" for spaces), cut before each
 *  "▁", around each digit (digits never merge, so numbers are always one token per digit, which small
 *  models learn arithmetic from far more easily) and around characters outside the alphabet. The one
 *  exception is added by learnPieces: "▁0".."▁9", so a number's first digit carries its space. */
function splitTrainingWords(text: string, alphabet: Set<string>, counts: Map<string, number>): void {
  const s = SPACE + text.replaceAll(" ", SPACE);
  let word = "";
  const flush = () => {
    if (word) counts.set(word, (counts.get(word) ?? 0) + 1);
    word = "";
  };
  for (const ch of s) {
    if (!alphabet.has(ch) || isDigit(ch)) {
      flush();
      continue; // single characters need no counting: they are in the vocabulary or byte fallback
    }
    if (ch === SPACE) flush();
    word += ch;
  }
  flush();
}

/** Heap-free BPE: each round counts pairs over the distinct words (weighted by frequency) and merges
 *  the most frequent one everywhere. Distinct words number in the thousands for our corpus, so this
 *  is a few seconds for ~700 merges. */
function learnPieces(texts: string[], opts: Required<TrainOptions>, reserved: Set<string>): { chars: string[]; pieces: string[] } {
  // Alphabet: characters by frequency, control characters excluded (they fall back to bytes, as
  // newline does in LLaMA's own vocabulary).
  const charCounts = new Map<string, number>();
  charCounts.set(SPACE, 0);
  for (const t of texts) {
    charCounts.set(SPACE, charCounts.get(SPACE)! + 1);
    for (const ch of t) {
      const c = ch === " " ? SPACE : ch;
      charCounts.set(c, (charCounts.get(c) ?? 0) + 1);
    }
  }
  // At most half of the free vocabulary goes to single characters; rarer ones fall back to bytes.
  const chars = [...charCounts.entries()]
    .filter(([ch, n]) => n >= opts.minCharCount && !isControlChar(ch) && !reserved.has(ch))
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map(([ch]) => ch)
    .slice(0, Math.floor((opts.vocabSize - reserved.size) / 2));
  const budget = opts.vocabSize - reserved.size - chars.length;
  const alphabet = new Set(chars);

  const wordCounts = new Map<string, number>();
  for (const t of texts) splitTrainingWords(t, alphabet, wordCounts);

  // Words as arrays of symbol ids; symbol id -> text.
  const symbolText: string[] = [...chars];
  const symbolId = new Map<string, number>(chars.map((c, i) => [c, i]));
  const words: number[][] = [];
  const freq: number[] = [];
  for (const [w, n] of wordCounts) {
    words.push([...w].map((ch) => symbolId.get(ch)!));
    freq.push(n);
  }
  const mergeable = (id: number) => !/[0-9]/.test(symbolText[id]);

  // "▁" + digit is a piece, so " 47" is ▁4 7 rather than ▁ 4 7. A lone "▁" token before every number
  // is a position whose query cannot tell an answer from an operand: in a probe (2 layers, 300 steps)
  // a model learned to copy a one-digit operand after "A:" 100% of the time without it and 0% with it.
  const pieces: string[] = chars.includes(SPACE) ? chars.filter(isDigit).sort().map((d) => SPACE + d) : [];
  const known = new Set<string>([...reserved, ...chars, ...pieces]);
  const pairCounts = new Map<number, number>();
  const PAIR = 1 << 16;
  while (pieces.length < budget) {
    pairCounts.clear();
    for (let w = 0; w < words.length; w++) {
      const sym = words[w];
      for (let i = 0; i + 1 < sym.length; i++) {
        const key = sym[i] * PAIR + sym[i + 1];
        pairCounts.set(key, (pairCounts.get(key) ?? 0) + freq[w]);
      }
    }
    let best = -1;
    let bestCount = opts.minPairCount - 1;
    let bestText = "";
    for (const [key, n] of pairCounts) {
      if (n < bestCount) continue;
      const a = Math.floor(key / PAIR), b = key % PAIR;
      if (!mergeable(a) || !mergeable(b)) continue;
      const text = symbolText[a] + symbolText[b];
      if (reserved.has(text)) continue;
      if (n > bestCount || text < bestText) { best = key; bestCount = n; bestText = text; }
    }
    if (best < 0) break;
    const a = Math.floor(best / PAIR), b = best % PAIR;
    let merged = symbolId.get(bestText);
    if (merged === undefined) {
      merged = symbolText.length;
      symbolText.push(bestText);
      symbolId.set(bestText, merged);
    }
    if (!known.has(bestText)) { known.add(bestText); pieces.push(bestText); }
    for (const sym of words) {
      for (let i = 0; i + 1 < sym.length; i++) {
        if (sym[i] === a && sym[i + 1] === b) sym.splice(i, 2, merged);
      }
    }
  }
  return { chars, pieces };
}

// ---------------------------------------------------------------------------------------------------
// The tokenizer
// ---------------------------------------------------------------------------------------------------

interface Bigram { score: number; left: number; right: number; size: number }

/** Max-heap order of llama.cpp's llm_bigram_spm::comparator: higher score first, then smaller left. */
function before(x: Bigram, y: Bigram): boolean {
  return x.score > y.score || (x.score === y.score && x.left < y.left);
}

export class SpmTokenizer {
  readonly vocab: Vocabulary;
  private readonly idOf: Map<string, number>;  // every token's text -> id, as llama.cpp's token_to_id
  private readonly byteIds: Int32Array;        // [256] id of <0xNN>
  private readonly joinable: Set<string>;      // characters that occur inside some multi-character token
  private readonly cutBeforeSpace: boolean;    // no token has "▁" after its first character
  private readonly pieceBytes: Uint8Array[];   // [vocabSize] UTF-8 bytes each token decodes to
  private readonly userDefined: number[];      // ids of USER_DEFINED tokens, longest text first
  private cache = new Map<string, number[]>();

  constructor(vocab: Vocabulary) {
    const n = vocab.tokens.length;
    if (vocab.scores.length !== n || vocab.types.length !== n) throw new TokenizerError("tokens, scores and types differ in length");
    for (const [name, id] of [["bos", vocab.bosId], ["eos", vocab.eosId], ["unk", vocab.unkId]] as const) {
      if (!Number.isInteger(id) || id < 0 || id >= n) throw new TokenizerError(`${name} id ${id} is outside the vocabulary of ${n}`);
    }
    this.vocab = vocab;
    this.idOf = new Map();
    vocab.tokens.forEach((t, i) => {
      if (this.idOf.has(t)) throw new TokenizerError(`token text ${JSON.stringify(t)} appears twice (ids ${this.idOf.get(t)} and ${i})`);
      this.idOf.set(t, i);
    });
    this.byteIds = new Int32Array(256);
    for (let b = 0; b < 256; b++) {
      // llama.cpp falls back to the byte itself as a one-character token (only ASCII can be one).
      const id = this.idOf.get(byteText(b)) ?? (b < 0x80 ? this.idOf.get(String.fromCharCode(b)) : undefined);
      if (id === undefined) throw new TokenizerError(`byte token ${byteText(b)} is missing`);
      this.byteIds[b] = id;
    }
    this.joinable = new Set();
    this.cutBeforeSpace = true;
    for (const t of vocab.tokens) {
      const cps = [...t];
      if (cps.length < 2) continue;
      for (const c of cps) this.joinable.add(c);
      if (cps.indexOf(SPACE, 1) > 0) this.cutBeforeSpace = false;
    }
    this.pieceBytes = vocab.tokens.map((t, i) => {
      switch (vocab.types[i]) {
        case TokenType.NORMAL: return pieceToBytes(t.replaceAll(SPACE, " "), i);
        case TokenType.USER_DEFINED:
          // llama.cpp finds these by searching the text's bytes, so one that is not UTF-8 text could
          // match inside a character; our text-based search cannot do that, so such a vocabulary is refused.
          if (!isUtf8Text(t)) throw new TokenizerError(`user-defined token ${i} ${showGgufString(t)} is not valid UTF-8; the kit's tokenizer does not support that`);
          return pieceToBytes(t, i);
        case TokenType.BYTE: return Uint8Array.of(parseInt(t.slice(3, 5), 16));
        default: return new Uint8Array(0); // control, unknown, unused: llama.cpp prints nothing
      }
    });
    // llama.cpp sorts by UTF-8 length with an unstable sort; equal lengths keep id order here.
    this.userDefined = vocab.tokens.flatMap((_, i) => (vocab.types[i] === TokenType.USER_DEFINED ? [i] : []))
      .sort((a, b) => this.pieceBytes[b].length - this.pieceBytes[a].length || a - b);
  }

  /** Trains a vocabulary on documents (each is encoded as the model will see it, with a space prefix). */
  static train(texts: string[], opts: TrainOptions): SpmTokenizer {
    const o = { minCharCount: 2, minPairCount: 2, ...opts };
    if (!Number.isInteger(o.vocabSize) || o.vocabSize < 512 || o.vocabSize > 4096) {
      throw new TokenizerError(`vocabSize must be an integer in [512, 4096], got ${o.vocabSize}`);
    }
    const specials = ["<unk>", "<s>", "</s>"];
    const bytes = Array.from({ length: 256 }, (_, b) => byteText(b));
    const reserved = new Set([...specials, ...bytes]);
    const { chars, pieces } = learnPieces(texts, o, reserved);
    const normal = [...pieces, ...chars];
    const tokens = [...specials, ...bytes, ...normal];
    const scores = new Float32Array(tokens.length);
    const types = new Int32Array(tokens.length);
    types.set([TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL]);
    types.fill(TokenType.BYTE, 3, 3 + 256);
    types.fill(TokenType.NORMAL, 3 + 256);
    normal.forEach((_, k) => { scores[3 + 256 + k] = -k; });
    return new SpmTokenizer({ tokens, scores, types, bosId: 1, eosId: 2, unkId: 0, addSpacePrefix: true, addBos: true, addEos: false });
  }

  get vocabSize(): number { return this.vocab.tokens.length; }
  get bosId(): number { return this.vocab.bosId; }
  get eosId(): number { return this.vocab.eosId; }
  get unkId(): number { return this.vocab.unkId; }

  /** The text of a token as stored ("▁the", "<0x0A>", "<s>"). */
  piece(id: number): string {
    const t = this.vocab.tokens[id];
    if (t === undefined) throw new TokenizerError(`token id ${id} is outside the vocabulary of ${this.vocabSize}`);
    return t;
  }

  // -------------------------------------------------------------------------------------------------
  // 3. Encoding
  // -------------------------------------------------------------------------------------------------

  /** Token ids for text, identical to llama.cpp's llama_tokenize(text, add_special = bos, parse_special
   *  = false): special-token text such as "<s>" inside `text` is ordinary text. `eos` appends </s>. */
  encode(text: string, opts: { bos?: boolean; eos?: boolean } = {}): number[] {
    const out: number[] = [];
    if (opts.bos) out.push(this.vocab.bosId);
    if (text.length > 0) {
      // llama.cpp receives text as UTF-8, where a lone surrogate has become U+FFFD.
      if (LONE_SURROGATE.test(text)) text = text.replace(LONE_SURROGATE_ALL, "\uFFFD");
      // The space prefix goes before the text and after every user-defined token (is_prev_special).
      let afterToken = true;
      for (const fragment of this.userDefined.length > 0 ? this.partition(text) : [text]) {
        if (typeof fragment === "number") {
          out.push(fragment);
          afterToken = true;
        } else {
          const s = (this.vocab.addSpacePrefix && afterToken ? " " : "") + fragment;
          this.encodeEscaped(s.replaceAll(" ", SPACE), out);
          afterToken = false;
        }
      }
    }
    if (opts.eos) out.push(this.vocab.eosId);
    return out;
  }

  /** llama.cpp's tokenizer_st_partition with parse_special = false: the text of every user-defined
   *  token (longest first) is cut out and becomes that token; control tokens stay ordinary text. */
  private partition(text: string): (string | number)[] {
    let fragments: (string | number)[] = [text];
    for (const id of this.userDefined) {
      const needle = this.vocab.tokens[id];
      const next: (string | number)[] = [];
      for (const f of fragments) {
        if (typeof f === "number") { next.push(f); continue; }
        let from = 0;
        for (let at = f.indexOf(needle); at >= 0; at = f.indexOf(needle, from)) {
          if (at > from) next.push(f.slice(from, at));
          next.push(id);
          from = at + needle.length;
        }
        if (from < f.length) next.push(f.slice(from));
      }
      fragments = next;
    }
    return fragments;
  }

  /** Cuts the text where no merge can cross (a character no multi-character token contains; before a
   *  "▁" when tokens only start with one) and encodes each chunk through the cache. Merges in separate
   *  chunks never interact, so the result equals merging the whole text at once. */
  private encodeEscaped(s: string, out: number[]): void {
    let start = 0;
    let i = 0;
    while (i < s.length) {
      const cp = s.codePointAt(i)!;
      const w = cp > 0xffff ? 2 : 1;
      const ch = w === 1 ? s[i] : s.slice(i, i + 2);
      if (!this.joinable.has(ch)) {
        if (i > start) this.encodeChunk(s.slice(start, i), out);
        this.emitSymbol(ch, out);
        start = i + w;
      } else if (ch === SPACE && this.cutBeforeSpace && i > start) {
        this.encodeChunk(s.slice(start, i), out);
        start = i;
      }
      i += w;
    }
    if (i > start) this.encodeChunk(s.slice(start, i), out);
  }

  private encodeChunk(chunk: string, out: number[]): void {
    const cached = this.cache.get(chunk);
    if (cached) {
      for (const id of cached) out.push(id);
      return;
    }
    const ids = this.mergeChunk(chunk);
    if (chunk.length <= CACHE_MAX_CHUNK) {
      if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
      this.cache.set(chunk, ids);
    }
    for (const id of ids) out.push(id);
  }

  /** llm_tokenizer_spm_session::tokenize on one chunk: symbols are characters in a linked list, a heap
   *  holds every adjacent pair that forms a token, stale heap entries are recognised by their size. */
  private mergeChunk(chunk: string): number[] {
    // Symbols, in UTF-16 units of `chunk`.
    const start: number[] = [];
    for (let i = 0; i < chunk.length; i += chunk.codePointAt(i)! > 0xffff ? 2 : 1) start.push(i);
    const n = start.length;
    const len = start.map((s, k) => (k + 1 < n ? start[k + 1] : chunk.length) - s);
    const prev = start.map((_, k) => k - 1);
    const next = start.map((_, k) => (k + 1 < n ? k + 1 : -1));

    const heap: Bigram[] = [];
    const push = (b: Bigram) => {
      heap.push(b);
      let i = heap.length - 1;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (!before(heap[i], heap[p])) break;
        [heap[i], heap[p]] = [heap[p], heap[i]];
        i = p;
      }
    };
    const pop = (): Bigram => {
      const top = heap[0];
      const last = heap.pop()!;
      if (heap.length > 0) {
        heap[0] = last;
        let i = 0;
        for (;;) {
          const l = 2 * i + 1, r = l + 1;
          let m = i;
          if (l < heap.length && before(heap[l], heap[m])) m = l;
          if (r < heap.length && before(heap[r], heap[m])) m = r;
          if (m === i) break;
          [heap[i], heap[m]] = [heap[m], heap[i]];
          i = m;
        }
      }
      return top;
    };
    const tryAddBigram = (left: number, right: number) => {
      if (left < 0 || right < 0) return;
      const size = len[left] + len[right];
      const id = this.idOf.get(chunk.slice(start[left], start[left] + size));
      if (id === undefined) return;
      push({ score: this.vocab.scores[id], left, right, size });
    };

    for (let k = 1; k < n; k++) tryAddBigram(k - 1, k);
    while (heap.length > 0) {
      const b = pop();
      if (len[b.left] === 0 || len[b.right] === 0 || len[b.left] + len[b.right] !== b.size) continue;
      len[b.left] += len[b.right];
      len[b.right] = 0;
      next[b.left] = next[b.right];
      if (next[b.right] >= 0) prev[next[b.right]] = b.left;
      tryAddBigram(prev[b.left], b.left);
      tryAddBigram(b.left, next[b.left]);
    }

    const ids: number[] = [];
    for (let k = 0; k !== -1; k = next[k]) this.emitSymbol(chunk.slice(start[k], start[k] + len[k]), ids);
    return ids;
  }

  /** A final symbol: its token, or its UTF-8 bytes as byte tokens (llama.cpp's resegment). */
  private emitSymbol(text: string, out: number[]): void {
    const id = this.idOf.get(text);
    if (id !== undefined) {
      out.push(id);
      return;
    }
    for (const b of UTF8.encode(text)) out.push(this.byteIds[b]);
  }

  // -------------------------------------------------------------------------------------------------
  // 4. Decoding
  // -------------------------------------------------------------------------------------------------

  /** The UTF-8 bytes llama.cpp's llama_detokenize(remove_special = false, unparse_special = false)
   *  writes: control and unknown tokens vanish, and one leading space of the first token is dropped. */
  decodeBytes(ids: readonly number[]): Uint8Array {
    const parts: Uint8Array[] = [];
    let total = 0;
    ids.forEach((id, i) => {
      let bytes = this.pieceBytes[id];
      if (bytes === undefined) throw new TokenizerError(`token id ${id} is outside the vocabulary of ${this.vocabSize}`);
      if (i === 0 && this.vocab.addSpacePrefix && bytes.length > 0 && bytes[0] === 0x20) bytes = bytes.subarray(1);
      parts.push(bytes);
      total += bytes.length;
    });
    const out = new Uint8Array(total);
    let o = 0;
    for (const p of parts) { out.set(p, o); o += p.length; }
    return out;
  }

  /** Text for ids, as node-llama-cpp's detokenize gives it: a leading U+FEFF stays, and each invalid
   *  UTF-8 sequence (a character cut short, a piece that is not text) becomes U+FFFD. */
  decode(ids: readonly number[]): string {
    return UTF8_TEXT.decode(this.decodeBytes(ids));
  }

  // -------------------------------------------------------------------------------------------------
  // 5. Storage: our JSON file and GGUF metadata
  // -------------------------------------------------------------------------------------------------

  toJSON(): TokenizerJson {
    const v = this.vocab;
    return {
      format: "inference-lab-spm/1",
      bosId: v.bosId, eosId: v.eosId, unkId: v.unkId,
      addSpacePrefix: v.addSpacePrefix, addBos: v.addBos, addEos: v.addEos,
      tokens: v.tokens, scores: [...v.scores], types: [...v.types],
    };
  }

  static fromJSON(json: TokenizerJson): SpmTokenizer {
    if (json?.format !== "inference-lab-spm/1") throw new TokenizerError(`not an inference-lab tokenizer (format ${JSON.stringify(json?.format)})`);
    return new SpmTokenizer({
      tokens: json.tokens, scores: Float32Array.from(json.scores), types: Int32Array.from(json.types),
      bosId: json.bosId, eosId: json.eosId, unkId: json.unkId,
      addSpacePrefix: json.addSpacePrefix, addBos: json.addBos, addEos: json.addEos,
    });
  }

  /** Reads data/tokenizer.json (or another file written by `lab data generate`). */
  static load(path: string): SpmTokenizer {
    let json: TokenizerJson;
    try {
      json = JSON.parse(readFileSync(path, "utf8"));
    } catch (err) {
      throw new TokenizerError(`cannot read tokenizer ${path}: ${(err as Error).message}`);
    }
    return SpmTokenizer.fromJSON(json);
  }

  /** The tokenizer.ggml.* entries llama.cpp reads for an SPM ("llama") vocabulary, with the exact
   *  value types it checks. */
  toGgufMetadata(): GgufKv[] {
    const v = this.vocab;
    return [
      kv.str("tokenizer.ggml.model", "llama"),
      kv.strings("tokenizer.ggml.tokens", v.tokens),
      kv.f32s("tokenizer.ggml.scores", [...v.scores]),
      kv.i32s("tokenizer.ggml.token_type", [...v.types]),
      kv.u32("tokenizer.ggml.bos_token_id", v.bosId),
      kv.u32("tokenizer.ggml.eos_token_id", v.eosId),
      kv.u32("tokenizer.ggml.unknown_token_id", v.unkId),
      kv.bool("tokenizer.ggml.add_bos_token", v.addBos),
      kv.bool("tokenizer.ggml.add_eos_token", v.addEos),
      kv.bool("tokenizer.ggml.add_space_prefix", v.addSpacePrefix),
    ];
  }

  /** The vocabulary of a GGUF file with tokenizer.ggml.model = "llama", read with llama.cpp's defaults
   *  (add_space_prefix and add_bos true, add_eos false, scores 0 when absent, types normal) and as
   *  llama.cpp reads pieces: as C strings (cut at a NUL), an empty one renamed "[EMPTY_i]". */
  static fromGguf(file: { metadata: Map<string, { value: unknown }> }): SpmTokenizer {
    const get = <T>(key: string): T | undefined => file.metadata.get(key)?.value as T | undefined;
    const model = get<string>("tokenizer.ggml.model");
    if (model !== "llama") throw new TokenizerError(`tokenizer.ggml.model is ${JSON.stringify(model)}, expected "llama" (SentencePiece)`);
    const tokens = get<string[]>("tokenizer.ggml.tokens");
    if (!Array.isArray(tokens)) throw new TokenizerError("tokenizer.ggml.tokens is missing");
    const n = tokens.length;
    const scores = get<number[]>("tokenizer.ggml.scores");
    const types = get<number[]>("tokenizer.ggml.token_type");
    const id = (key: string, fallback: number) => Number(get<number>(key) ?? fallback);
    return new SpmTokenizer({
      tokens: tokens.map(asLlamaCppReadsPiece),
      scores: scores ? Float32Array.from(scores.slice(0, n)) : new Float32Array(n),
      types: types ? Int32Array.from(types.slice(0, n)) : new Int32Array(n).fill(TokenType.NORMAL),
      bosId: id("tokenizer.ggml.bos_token_id", 1),
      eosId: id("tokenizer.ggml.eos_token_id", 2),
      unkId: id("tokenizer.ggml.unknown_token_id", 0),
      addSpacePrefix: get<boolean>("tokenizer.ggml.add_space_prefix") ?? true,
      addBos: get<boolean>("tokenizer.ggml.add_bos_token") ?? true,
      addEos: get<boolean>("tokenizer.ggml.add_eos_token") ?? false,
    });
  }
}

/** The bytes of a piece (escaped bytes included); TokenizerError for text no bytes map to. */
function pieceToBytes(text: string, id: number): Uint8Array {
  try {
    return ggufStringToBytes(text);
  } catch (err) {
    throw new TokenizerError(`token ${id}: ${(err as Error).message}`);
  }
}

/** llama_vocab::impl::load: gguf_get_arr_str gives a C string (cut at the first NUL), and an empty
 *  piece becomes "[EMPTY_i]". */
function asLlamaCppReadsPiece(piece: string, id: number): string {
  const nul = piece.indexOf("\0");
  const text = nul >= 0 ? piece.slice(0, nul) : piece;
  return text === "" ? `[EMPTY_${id}]` : text;
}

export interface TokenizerJson {
  format: "inference-lab-spm/1";
  bosId: number;
  eosId: number;
  unkId: number;
  addSpacePrefix: boolean;
  addBos: boolean;
  addEos: boolean;
  tokens: string[];
  scores: number[];
  types: number[];
}
