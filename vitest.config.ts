import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// Graded exercises import the implementation as "@target/…": at run time the reference solutions by
// default, the student's exercises/ with LAB_TARGET=exercises (see lab/grade.ts). For the editor and
// the typecheck, tsconfig.json maps "@target/*" to exercises/ (so go-to-definition from a test lands
// in the student's file, not the solution); test/exercises/kit-types.ts makes both trees' types equal.
// (The grader's own tests point LAB_TARGET at a fixture folder beside these two: `.grade-fixture-*`.)
const target = process.env.LAB_TARGET ?? "solutions";
if (target !== "solutions" && target !== "exercises" && !/^\.grade-fixture-[\w-]+$/.test(target)) {
  throw new Error(`LAB_TARGET must be "solutions" or "exercises", got "${target}"`);
}

export default defineConfig({
  resolve: {
    alias: [{ find: /^@target\//, replacement: fileURLToPath(new URL(`./${target}/`, import.meta.url)) }],
  },
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Two cores: files run in parallel on at most two workers.
    maxWorkers: 2,
    // Under the grader (lab/grade.ts sets LAB_GRADE_REPORT) assertion messages are not cut at chai's
    // default 40 characters: "expected 'byte 78 (block 2): got 193, exp…' to be 'none'" hides the hint.
    ...(process.env.LAB_GRADE_REPORT ? { chaiConfig: { truncateThreshold: 0 } } : {}),
  },
});
