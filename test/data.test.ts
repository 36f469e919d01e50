// The tiny-world corpus: determinism, hold-out, fact coverage, answer correctness, the committed files
// against a regeneration, and the loaders' errors.
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  CODE_MAX, DIALOG, DataError, EVAL_SETS, RELATIONS, TASKS, buildDataset, chatFactAnswer, checkDataset, defaultDataDir, exactMatch,
  factAnswer, factQuestion, generateCorpus, loadCorpus, loadDialog, loadEvalSet, loadTokenizer, splitDocuments,
  updateReadme, writeDataset,
} from "../lab/data/index.ts";

// One regeneration serves every test: the committed-data check and the corpus properties.
const regenerated = buildDataset(1, 1024);
const corpus = regenerated.corpus;
const allTrainingText = [...TASKS.flatMap((t) => [corpus.text[t].train, corpus.text[t].val]), corpus.dialog].join("\n");
const scratch = mkdtempSync(join(tmpdir(), "lab-data-test-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** An interpreter for the code family written independently of the generator: statements split on
 *  "; ", `name = a op b` or `name = n`, and a final print(expr). */
function runProgram(program: string): number {
  const env = new Map<string, number>();
  const value = (t: string) => (/^\d+$/.test(t) ? Number(t) : env.get(t)!);
  const evalExpr = (e: string) => {
    const parts = e.split(" ");
    if (parts.length === 1) return value(parts[0]);
    const [l, op, r] = parts;
    return op === "+" ? value(l) + value(r) : op === "-" ? value(l) - value(r) : value(l) * value(r);
  };
  let printed = NaN;
  for (const stmt of program.split("; ")) {
    const m = /^print\((.*)\)$/.exec(stmt);
    if (m) printed = evalExpr(m[1]);
    else {
      const [name, expr] = stmt.split(" = ");
      env.set(name, evalExpr(expr));
    }
  }
  return printed;
}

describe("generateCorpus", () => {
  it("is deterministic per seed and differs across seeds", () => {
    const again = generateCorpus(1);
    expect(again.text).toEqual(corpus.text);
    expect(again.eval).toEqual(corpus.eval);
    const other = generateCorpus(2);
    expect(other.text.prose.train).not.toEqual(corpus.text.prose.train);
    expect(other.eval.arithmetic).not.toEqual(corpus.eval.arithmetic);
  });

  it("has eval sets of a few hundred items with the documented shapes", () => {
    expect(corpus.eval.prose.length).toBeGreaterThanOrEqual(150);
    for (const name of ["arithmetic", "facts", "code"] as const) {
      expect(corpus.eval[name].length).toBeGreaterThanOrEqual(200);
      expect(new Set(corpus.eval[name].map((e) => e.prompt)).size).toBe(corpus.eval[name].length);
      for (const e of corpus.eval[name]) {
        expect(e.prompt.endsWith(name === "code" ? " Output:" : " A:")).toBe(true);
        expect(e.answer).toBe(e.answer.trim());
        expect(e.answer.length).toBeGreaterThan(0);
      }
    }
  });

  it("gives correct answers for arithmetic and code (checked by an independent interpreter)", () => {
    for (const e of corpus.eval.arithmetic) {
      const m = /^Q: (\d+) ([+-]) (\d+) = \? A:$/.exec(e.prompt)!;
      expect(m).not.toBeNull();
      const want = m[2] === "+" ? Number(m[1]) + Number(m[3]) : Number(m[1]) - Number(m[3]);
      expect(e.answer).toBe(String(want));
    }
    for (const e of corpus.eval.code) {
      const program = /^Code: (.*) Output:$/.exec(e.prompt)![1];
      expect(e.answer).toBe(String(runProgram(program)));
      expect(Number(e.answer)).toBeGreaterThanOrEqual(0);
      expect(Number(e.answer)).toBeLessThanOrEqual(CODE_MAX);
    }
    // The training lines too (a sample of each file).
    for (const line of corpus.text.arithmetic.train.split("\n").filter(Boolean).slice(0, 2000)) {
      const m = /^Q: (\d+) ([+-]) (\d+) = \? A: (\d+)$/.exec(line)!;
      expect(Number(m[4])).toBe(m[2] === "+" ? Number(m[1]) + Number(m[3]) : Number(m[1]) - Number(m[3]));
    }
    for (const line of corpus.text.code.train.split("\n").filter(Boolean).slice(0, 2000)) {
      const m = /^Code: (.*) Output: (\d+)$/.exec(line)!;
      expect(Number(m[2])).toBe(runProgram(m[1]));
    }
  });

  it("holds arithmetic and code eval items out of every training and validation text", () => {
    // Every question the training text asks, in QA lines and as chat user turns.
    const asked = new Set<string>();
    for (const line of allTrainingText.split("\n")) {
      const m = /^(?:Q: (.*) = \? A: |Code: (.*) Output: |User: What is (.*)\?$|User: What does this program print\? (.*)$)/.exec(line);
      if (m) asked.add(m[1] ?? m[2] ?? m[3] ?? m[4]);
    }
    expect(asked.size).toBeGreaterThan(40_000); // the parse found the questions (about 48k distinct)
    for (const e of corpus.eval.arithmetic) expect(asked.has(e.prompt.slice(3, e.prompt.indexOf(" = ?")))).toBe(false);
    for (const e of corpus.eval.code) expect(asked.has(e.prompt.slice("Code: ".length, -" Output:".length))).toBe(false);
    const trainStories = new Set(splitDocuments(corpus.text.prose.train));
    for (const e of corpus.eval.prose) expect(trainStories.has(e.text)).toBe(false);
  });

  it("teaches the whole single-digit table and asks only held-out problems with a 2-digit operand", () => {
    const train = corpus.text.arithmetic.train;
    for (let a = 0; a <= 9; a++) {
      for (let b = 0; b <= 9; b++) {
        expect(train.includes(`Q: ${a} + ${b} = ? A: ${a + b}\n`)).toBe(true);
        if (a >= b) expect(train.includes(`Q: ${a} - ${b} = ? A: ${a - b}\n`)).toBe(true);
      }
    }
    const operands = corpus.eval.arithmetic.map((e) => /^Q: (\d+) [+-] (\d+) = \? A:$/.exec(e.prompt)!.slice(1).map(Number));
    for (const [a, b] of operands) {
      expect(Math.max(a, b)).toBeGreaterThanOrEqual(10);
      expect(Math.max(a, b)).toBeLessThanOrEqual(99);
    }
    // Enough 2-digit additions for the model card's aim to be a measurement, not an anecdote.
    expect(corpus.eval.arithmetic.filter((e) => /^Q: \d\d \+ \d\d =/.test(e.prompt)).length).toBeGreaterThanOrEqual(40);
  });

  it("covers every fact of the knowledge base in the training text (recall is memorization)", () => {
    const facts = corpus.text.facts.train;
    expect(corpus.world.people.length).toBeGreaterThanOrEqual(150);
    for (const p of corpus.world.people) {
      for (const rel of RELATIONS) expect(facts.includes(`Q: ${factQuestion(p, rel)} A: ${factAnswer(p, rel)}\n`)).toBe(true);
    }
    for (const e of corpus.eval.facts) expect(facts.includes(`${e.prompt} ${e.answer}\n`)).toBe(true);
    expect(new Set(corpus.world.people.map((p) => p.name)).size).toBe(corpus.world.people.length);
  });

  it("writes dialog: short exchanges in the chat answer form, every person fact in it, no system prompt", () => {
    const docs = splitDocuments(corpus.dialog);
    const lines = docs.flatMap((d) => d.split("\n"));
    // Alternating User/Assistant lines, at most DIALOG.exchangesPerDoc exchanges a document.
    for (const d of docs) {
      const ls = d.split("\n");
      expect(ls.length % 2).toBe(0);
      expect(ls.length).toBeLessThanOrEqual(2 * DIALOG.exchangesPerDoc);
      ls.forEach((l, i) => expect(l.startsWith(i % 2 === 0 ? "User: " : "Assistant: ")).toBe(true));
    }
    expect(corpus.dialog.includes("System:")).toBe(false);
    // Every person fact, each asked exactly personRepeats times, answered in the chat eval set's form.
    const exchanges = new Map<string, number>();
    for (let i = 0; i < lines.length; i += 2) exchanges.set(`${lines[i]}\n${lines[i + 1]}`, (exchanges.get(`${lines[i]}\n${lines[i + 1]}`) ?? 0) + 1);
    for (const p of corpus.world.people) {
      for (const rel of RELATIONS) expect(exchanges.get(`User: ${factQuestion(p, rel)}\nAssistant: ${chatFactAnswer(p, rel)}`)).toBe(DIALOG.personRepeats);
    }
    const persons = corpus.eval.chat.filter((c) => c.kind === "person");
    for (const c of persons) expect(corpus.dialog.includes(`${c.prompt.split("\n").at(-2)}\nAssistant: ${c.answer}`)).toBe(true);
    const count = (re: RegExp) => lines.filter((l) => re.test(l)).length;
    expect(count(/^User: What is \d+ [+-] \d+\?$/)).toBe(DIALOG.sums);
    expect(count(/^User: What does this program print\? /)).toBe(DIALOG.programs);
    expect(count(/^Assistant: Hello! How can I help you today\?$/)).toBe(DIALOG.greetings);
    // Sums and programs answered correctly (held out of the eval sets: the test above covers dialog).
    for (let i = 0; i < lines.length; i += 2) {
      const sum = /^User: What is (\d+) ([+-]) (\d+)\?$/.exec(lines[i]);
      if (sum) {
        const want = sum[2] === "+" ? Number(sum[1]) + Number(sum[3]) : Number(sum[1]) - Number(sum[3]);
        expect(lines[i + 1]).toBe(`Assistant: ${sum[1]} ${sum[2]} ${sum[3]} = ${want}.`);
      }
      const prog = /^User: What does this program print\? (.*)$/.exec(lines[i]);
      if (prog) expect(lines[i + 1]).toBe(`Assistant: It prints ${runProgram(prog[1])}.`);
    }
    expect(loadDialog()).toEqual(docs);
  });

  it("opens every chat transcript with the same long system prompt", () => {
    const chats = splitDocuments(corpus.text.chat.train);
    const prompt = chats[0].split("\n")[0];
    expect(prompt.split(" ").length).toBeGreaterThan(400);
    for (const c of chats) expect(c.startsWith(prompt + "\nUser: ")).toBe(true);
  });

  it("asks held-out chat questions after the system prompt, each answerable from training facts or the Q/A eval items", () => {
    const chat = corpus.eval.chat, system = splitDocuments(corpus.text.chat.train)[0].split("\n")[0];
    const tokenizer = regenerated.tokenizer;
    expect(chat).toHaveLength(250);
    expect(["person", "sum", "program"].map((k) => chat.filter((c) => c.kind === k).length)).toEqual([150, 50, 50]);
    const arithmetic = new Map(corpus.eval.arithmetic.map((e) => [e.prompt, e.answer]));
    const code = new Map(corpus.eval.code.map((e) => [e.prompt, e.answer]));
    const facts = corpus.text.facts.train;
    for (const c of chat) {
      const lines = c.prompt.split("\n");
      expect(lines[0]).toBe(system);
      expect(lines.at(-1)).toBe("Assistant:");
      expect(lines.length % 2).toBe(1); // system, 1–3 earlier exchanges, the question, "Assistant:"
      expect(lines.length).toBeGreaterThanOrEqual(5);
      expect(lines.length).toBeLessThanOrEqual(9);
      // Fits the 1,024-token context with room to answer.
      expect(tokenizer.encode(c.prompt, { bos: true }).length + tokenizer.encode(" " + c.answer).length).toBeLessThanOrEqual(1010);
      const question = lines.at(-2)!.replace(/^User: /, "");
      if (c.kind === "person") {
        expect(facts.includes(`${c.qaPrompt} ${c.qaAnswer}\n`)).toBe(true); // the fact is in training
        expect(c.qaPrompt).toBe(`Q: ${question} A:`);
        expect(c.answer.endsWith(` ${c.qaAnswer}.`)).toBe(true);
      } else if (c.kind === "sum") {
        expect(arithmetic.get(c.qaPrompt)).toBe(c.qaAnswer); // the very item of the arithmetic set
        const [, expr] = /^What is (.+)\?$/.exec(question)!;
        expect(c.answer).toBe(`${expr} = ${c.qaAnswer}.`);
        expect(allTrainingText.includes(`Q: ${expr} = ? A:`) || allTrainingText.includes(`User: What is ${expr}?\n`)).toBe(false); // held out
      } else {
        expect(code.get(c.qaPrompt)).toBe(c.qaAnswer);
        const program = question.replace("What does this program print? ", "");
        expect(runProgram(program)).toBe(Number(c.qaAnswer));
        expect(c.answer).toBe(`It prints ${c.qaAnswer}.`);
        expect(allTrainingText.includes(`Code: ${program} Output:`) || allTrainingText.includes(`print? ${program}\n`)).toBe(false);
      }
    }
  });

  it("writes documents without blank lines inside and keeps the corpus modest", () => {
    let total = 0;
    for (const t of TASKS) {
      for (const split of ["train", "val"] as const) {
        const text = corpus.text[t][split];
        total += Buffer.byteLength(text);
        expect(text.endsWith("\n")).toBe(true);
        for (const d of splitDocuments(text)) expect(d).toBe(d.trim());
      }
    }
    expect(total).toBeLessThan(10e6);
  });
});

describe("exactMatch", () => {
  it("compares the first line of a continuation, trimmed", () => {
    expect(exactMatch(" 432\nQ: 1 + 1", "432")).toBe(true);
    expect(exactMatch("432 ", "432")).toBe(true);
    expect(exactMatch(" 4321", "432")).toBe(false);
    expect(exactMatch("", "432")).toBe(false);
  });
});

describe("committed data/", () => {
  it("matches a regeneration byte for byte (lab data check)", () => {
    const result = checkDataset(defaultDataDir(), regenerated);
    expect(result.problems).toEqual([]);
    expect(result.ok).toBe(true);
  });

  it("loads through the loaders", () => {
    for (const t of TASKS) expect(loadCorpus(t, "val").length).toBeGreaterThan(0);
    expect(loadEvalSet("prose")[0].text.length).toBeGreaterThan(0);
    for (const name of EVAL_SETS.filter((n) => n !== "prose")) expect(loadEvalSet(name)[0].answer).toBeTypeOf("string");
    expect(loadTokenizer().vocabSize).toBe(1024);
  });

  it("writeDataset reproduces it, and a changed file is detected and named", () => {
    const dir = join(scratch, "gen");
    writeDataset(regenerated, dir);
    expect(checkDataset(dir, regenerated).problems).toEqual([]);
    for (const rel of ["corpus/prose.val.txt", "tokenizer.json", "eval/code.jsonl"]) {
      expect(readFileSync(join(dir, rel))).toEqual(readFileSync(join(defaultDataDir(), rel)));
    }
    writeFileSync(join(dir, "eval/facts.jsonl"), readFileSync(join(dir, "eval/facts.jsonl"), "utf8") + "\n");
    const result = checkDataset(dir, regenerated);
    expect(result.ok).toBe(false);
    expect(result.problems).toHaveLength(1);
    expect(result.problems[0]).toContain("eval/facts.jsonl");
  });
});

describe("loading errors and the README section", () => {
  it("rejects bad eval lines, unknown sets and missing files with DataError", () => {
    const dir = join(scratch, "bad");
    mkdirSync(join(dir, "eval"), { recursive: true });
    writeFileSync(join(dir, "eval/code.jsonl"), '{"prompt":"a","answer":"b"}\n{"prompt":"a"}\n');
    expect(() => loadEvalSet("code", dir)).toThrow(/line 2: "answer" must be a string/);
    writeFileSync(join(dir, "eval/facts.jsonl"), "not json\n");
    expect(() => loadEvalSet("facts", dir)).toThrow(DataError);
    expect(() => loadEvalSet("nope" as "facts", dir)).toThrow(/unknown eval set/);
    expect(() => loadCorpus("prose", "train", dir)).toThrow(/missing/);
    expect(() => checkDataset(dir)).toThrow(/manifest.json is missing/);
  });

  it("replaces only its own README section", () => {
    const section = "<!-- BEGIN lab data generate (generated; do not edit by hand) -->\nX\n<!-- END lab data generate -->";
    const top = "# Data\n\nHand-written intro.\n";
    const once = updateReadme(top, section);
    expect(once.startsWith(top)).toBe(true);
    const twice = updateReadme(once + "\nTrailer.\n", section.replace("X", "Y"));
    expect(twice).toContain("Hand-written intro.");
    expect(twice).toContain("Trailer.");
    expect(twice).toContain("\nY\n");
    expect(twice).not.toContain("\nX\n");
  });
});
