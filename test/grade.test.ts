// The grader itself: a student's exception costs only that task, an infinite loop is stopped by the
// per-task timeout, the table reads "not started" for untouched stubs, and every failure teaches:
// the failing test's name, expected and received in full, the file:line:column in the student's
// code (assertion, runtime error, syntax error), and a refusal for code that imports the kit's own
// implementation of its task.
import { spawnSync } from "node:child_process";
import { cp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkImports, formatTable, gradeTasks, locate, selectTasks, type TaskResult } from "../lab/grade.ts";
import { TASKS } from "./exercises/tasks.ts";

// Three "students", each a copy of the solutions with some mistakes edited in.
const A = `.grade-fixture-${process.pid}-a` as const;
const B = `.grade-fixture-${process.pid}-b` as const;
const C = `.grade-fixture-${process.pid}-c` as const;

async function student(dir: string, edits: Record<string, [string, string][]>, extra: Record<string, string> = {}) {
  await mkdir(dir, { recursive: true });
  await cp("solutions/quantization", `${dir}/quantization`, { recursive: true });
  for (const [file, replacements] of Object.entries(edits)) {
    const path = `${dir}/quantization/${file}`;
    let source = await readFile(path, "utf8");
    for (const [from, to] of replacements) {
      if (!source.includes(from)) throw new Error(`fixture: "${from}" is not in ${path}`);
      source = source.replace(from, to);
    }
    await writeFile(path, source);
  }
  for (const [file, text] of Object.entries(extra)) await writeFile(`${dir}/quantization/${file}`, text);
}

/** The line (1-based) of a fixture file that contains `text`. */
async function lineOf(path: string, text: string): Promise<number> {
  return (await readFile(path, "utf8")).split("\n").findIndex((l) => l.includes(text)) + 1;
}

const ROUNDING_BUG = "view.setInt8(base + 2 + j, Math.round(v)); // JavaScript's rounding";

beforeAll(async () => {
  // A: 1.1 rounds halves the JavaScript way (an assertion fails), 1.2 is right, 1.3 crashes with a
  // TypeError, 1.4 loops forever, 1.5 gets Q1 wrong and gives Q5 to 2 significant figures only.
  await student(A, {
    "blocks.ts": [["view.setInt8(base + 2 + j, Math.sign(v) * Math.round(Math.abs(v)));", ROUNDING_BUG]],
    "memory.ts": [["export function planMemory(c: ServingConfig): MemoryPlan {",
      "export function planMemory(c: ServingConfig): MemoryPlan {\n  (c as any).parameters.toFixed.call(null);"],
    ["export function chooseLevel(", "export function chooseLevel(...args: Parameters<typeof chooseLevel2>): LevelChoice {\n  for (;;) { void args; /* never returns */ }\n}\nexport function chooseLevel2("]],
    "quiz.ts": [['q1: "b",', 'q1: "a",'], ["q5: (70e9 * 4.5) / 8 / 1e9,", "q5: 39,"]],
  });
  // C: memory.ts does not parse (so no task of the set can load).
  await student(C, {
    "memory.ts": [["const weightBytes = (c.parameters * c.bitsPerWeight) / 8;", "const weightBytes = (c.parameters * c.bitsPerWeight) / ;"]],
  });
  // B: 1.1 delegates to lab/quant through a helper file, the quiz copies the reference answers.
  await student(B, {
    "blocks.ts": [["import { fp16ToFp32, fp32ToFp16 } from \"../../lab/quant/float.ts\";",
      "import { fp16ToFp32, fp32ToFp16 } from \"../../lab/quant/float.ts\";\nimport { kitQuantize } from \"./helper.ts\";\nvoid kitQuantize;"]],
    "quiz.ts": [["export function quizAnswers(): QuizAnswers {", "import { quizAnswers as reference } from \"../../solutions/quantization/quiz.ts\";\nexport function quizAnswers(): QuizAnswers {\n  void reference;"]],
  }, { "helper.ts": "import { quantFormat } from \"../../lab/quant/index.ts\";\nexport const kitQuantize = quantFormat(\"Q8_0\").quantizeRow;\n" });
});

afterAll(async () => {
  await rm(A, { recursive: true, force: true });
  await rm(B, { recursive: true, force: true });
  await rm(C, { recursive: true, force: true });
});

describe("grader", () => {
  let a: Record<string, TaskResult>;
  beforeAll(async () => {
    // The fixtures are copies of question 1's solutions: grade that question's tasks.
    a = Object.fromEntries((await gradeTasks(selectTasks(["1"]), A, 10_000)).map((r) => [r.id, r]));
  }, 180_000);

  it("scores each task on its own: pass, fail, timeout", () => {
    expect(a["1.2"]).toMatchObject({ status: "pass", earned: 20 });
    expect(a["1.4"]).toMatchObject({ status: "timeout", earned: 0 });
    expect(a["1.4"]!.seconds).toBeLessThan(40);
    expect(a["1.1"]!.status).toBe("fail");
    expect(a["1.1"]!.earned).toBeGreaterThan(0);
    expect(a["1.1"]!.earned).toBeLessThan(20);
    expect(a["1.3"]!.status).toBe("fail");
    const table = formatTable(Object.values(a));
    expect(table).toMatch(/1\.4\s+Level chooser.*0\/25\s+timeout/);
    expect(table).toMatch(/total: \d/);
  });

  it("an assertion failure shows the test's name and expected and received in full", async () => {
    const f = a["1.1"]!.failure!;
    // The ramp block hits x·id = ±0.5 exactly: C's roundf goes away from zero, Math.round does not.
    expect(f.test).toBe("task 1.1 — Q8_0 quantize/dequantize > is bit-exact with ggml on zero, constant, ramp, outlier and tie blocks");
    expect(f.expected).toBe("none");
    expect(f.received).toMatch(/^byte \d+ \(block 2, byte \d+: q_\d+\): got \d+, expected \d+$/);
    expect(f.message).toContain(`expected '${f.received}' to be 'none'`); // not cut at 40 characters
    expect(f.checkedAt).toMatch(/^test\/exercises\/quantization\.test\.ts:\d+:\d+$/);
    const table = formatTable([a["1.1"]!]);
    expect(table).toContain("failing test: is bit-exact with ggml on zero, constant, ramp, outlier and tie blocks");
    expect(table).toContain("expected: none");
    expect(table).toContain(`received: ${f.received}`);
    expect(table).toContain("hints: exercises/quantization/HINTS.md, task 1.1");
  });

  it("the hashed quiz: a wrong choice and a number off at 3 significant figures fail, the rest pass", () => {
    const quiz = a["1.5"]!;
    expect(quiz).toMatchObject({ status: "fail", passed: 4, total: 6, earned: 10 });
    expect(quiz.failure!.message).toContain('Q1: "a" (read as "a") is not the right answer');
    expect(quiz.failing).toEqual(["Q1: which tensors Q4_K_M keeps at higher precision", "Q5: gigabytes of a 70B model at 4.5 bpw"]);
  });

  it("a runtime error shows its message and the file:line:column in the student's code", async () => {
    const r = a["1.3"]!;
    expect(r.message).toMatch(/^TypeError: /);
    const line = await lineOf(`${A}/quantization/memory.ts`, "toFixed.call(null)");
    expect(r.failure!.location).toMatch(new RegExp(`^${A}/quantization/memory\\.ts:${line}:\\d+$`));
    expect(r.failure!.code).toBe("(c as any).parameters.toFixed.call(null);");
    expect(r.failing!.length).toBeGreaterThan(1);
    expect(formatTable([r])).toContain(`at ${r.failure!.location}\n      (c as any).parameters.toFixed.call(null);`);
  });

  it("a syntax error shows the parser's message and its file:line:column", async () => {
    const [r] = await gradeTasks(selectTasks(["1.3"]), C, 30_000);
    expect(r!.status).toBe("error");
    expect(r!.message).toBe("SyntaxError: Unexpected token");
    const line = await lineOf(`${C}/quantization/memory.ts`, "c.bitsPerWeight) / ;");
    expect(r!.failure!.location).toMatch(new RegExp(`^${C}/quantization/memory\\.ts:${line}:\\d+$`));
    expect(r!.failure!.code).toBe("const weightBytes = (c.parameters * c.bitsPerWeight) / ;");
    expect(formatTable([r!])).toContain("the tests could not load your code:\n  SyntaxError: Unexpected token");
  }, 60_000);

  it("refuses code that imports the kit's implementation of its task, or the solutions", async () => {
    const [quant, quiz] = await gradeTasks(selectTasks(["1.1", "1.5"]), B, 30_000);
    expect(quant).toMatchObject({ status: "refused", earned: 0 });
    expect(quant!.message).toMatch(new RegExp(`^${B}/quantization/helper\\.ts:1:1 imports "\\.\\./\\.\\./lab/quant/index\\.ts" \\(lab/quant/index\\.ts\\), the kit's own implementation`));
    expect(quant!.message).toContain("(allowed: lab/quant/float.ts)");
    expect(quiz).toMatchObject({ status: "refused" });
    expect(quiz!.message).toContain("(solutions/quantization/quiz.ts), the reference solution");
    expect(formatTable([quant!])).toContain("task 1.1 — refused");
    // The solutions are off limits from any file of the set the tests load, so 1.3 is refused too.
    expect((await checkImports(selectTasks(["1.3"])[0]!, B))!).toMatch(/quiz\.ts:\d+:1 imports .*the reference solution/);
  }, 60_000);

  it("the import check passes the reference solutions and the untouched stubs", async () => {
    for (const task of TASKS) {
      expect(await checkImports(task, "solutions"), `solutions, task ${task.id}`).toBeUndefined();
      expect(await checkImports(task, "exercises"), `exercises, task ${task.id}`).toBeUndefined();
    }
  });

  it("locates an error in the graded tree only: test/exercises/ is not exercises/", () => {
    const root = process.cwd();
    const stack = `TypeError: x\n    at /x (${root}/test/exercises/quantization.test.ts:96:18)\n    at quantizeQ8_0Row (${root}/exercises/quantization/blocks.ts:4:7)`;
    expect(locate(stack, "exercises")).toEqual({ location: "exercises/quantization/blocks.ts:4:7", code: expect.any(String) });
    expect(locate(`at ${root}/test/exercises/quantization.test.ts:96:18`, "exercises")).toEqual({});
    expect(locate("╭─[ exercises/quantization/memory.ts:3:1 ]", "exercises").location).toBe("exercises/quantization/memory.ts:3:1");
  });

  it("selects tasks by id or by question and rejects unknown ones", () => {
    expect(selectTasks(["1.3"]).map((t) => t.id)).toEqual(["1.3"]);
    expect(selectTasks(["1"]).length).toBe(TASKS.filter((t) => t.id.startsWith("1.")).length);
    expect(() => selectTasks(["7.7"])).toThrow(/no task "7.7"/);
  });

  it("`npm run -s grade -- 1.5 --json` (README's form) prints exactly one JSON document on stdout", () => {
    const r = spawnSync("npm", ["run", "-s", "grade", "--", "1.5", "--json"], { encoding: "utf8", timeout: 120_000 });
    expect(r.status).toBe(1); // the stub is not started
    const doc = JSON.parse(r.stdout); // throws on npm's banner or any second document
    expect(doc).toMatchObject({ target: "exercises", points: 15, earned: 0 });
    expect(doc.results[0]).toMatchObject({ id: "1.5", status: "not started" });
    expect(r.stderr).toContain("task 1.5: not started");
  }, 150_000);
});
