import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// Graded exercises import the implementation as "@target/…": the reference solutions by default,
// the student's exercises/ with LAB_TARGET=exercises (see lab/grade.ts).
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
  },
});
