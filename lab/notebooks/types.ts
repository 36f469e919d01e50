// Type declarations of the lab, as tslab needs them to type-check notebook cells.
//
// Why: a cell imports the lab through lab/notebook.cjs (see that file). tslab type-checks every cell
// with its own bundled TypeScript 5.0 and compiles every .ts file a cell depends on itself; for .ts
// files outside the notebook's folder that compile step fails ("unexpected emit path"). So the types
// a cell sees must come from declaration files only: lab/notebook.d.cts re-exports
// lab/.types/lab/notebook.d.ts, which this module generates with the project's own tsc (5.9) from
// lab/notebook.ts and everything it imports. The runtime never uses these files: cells run the real
// sources through tsx, so a stale declaration can at worst produce a wrong type error, never wrong
// behaviour. They are regenerated whenever a lab source changes (checked by size + mtime), before
// `lab notebooks run`, `lab regenerate` and `lab jupyter` start a kernel — and at install time: the
// root package's `prepare` script (`npm install`, `npm ci`) runs this file, so a Jupyter started
// any other way (`jupyter lab`, nbconvert) on a fresh clone finds them. tslab reads them once per
// kernel, so they must exist BEFORE the kernel starts; lab/notebook.cjs stops with what to run
// when they do not.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { copyFile, mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const LAB_DIR = join(dirname(fileURLToPath(import.meta.url)), "..");
const REPO_ROOT = dirname(LAB_DIR);
export const TYPES_DIR = join(LAB_DIR, ".types");
const STAMP = ".stamp";

/** Every TypeScript source and hand-written declaration under `dir` (not the generated ones). */
async function labSources(dir = LAB_DIR): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.name.startsWith(".") || entry.name === "node_modules") continue;
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...await labSources(p));
    else if (/\.(ts|mts|cts)$/.test(entry.name)) out.push(p);
  }
  return out.sort();
}

/** A fingerprint of the lab's sources: changes whenever a file is added, removed or edited. */
async function sourcesFingerprint(files: string[]): Promise<string> {
  const hash = createHash("sha256");
  for (const f of files) {
    const s = await stat(f);
    hash.update(`${relative(REPO_ROOT, f)}\0${s.size}\0${s.mtimeMs}\n`);
  }
  return hash.digest("hex");
}

export interface TypesResult { regenerated: boolean; seconds: number; dir: string; diagnostics: string }

/**
 * Makes lab/.types/ current. Declarations are emitted even when some lab file has type errors
 * (another module being written): those errors are returned in `diagnostics`, not thrown; only a
 * missing lab/.types/lab/notebook.d.ts afterwards is an error.
 */
export async function ensureNotebookTypes(opts: { force?: boolean } = {}): Promise<TypesResult> {
  const t0 = performance.now();
  // The declarations cover lab/ and the exercises and solutions lab/notebook.ts loads (lab.exercises.*, lab.taskCode).
  const extraDirs = ["exercises", "solutions"].map((d) => join(REPO_ROOT, d)).filter((d) => existsSync(d));
  const files = [...await labSources(), ...(await Promise.all(extraDirs.map((d) => labSources(d)))).flat()];
  const fingerprint = await sourcesFingerprint(files);
  const stampPath = join(TYPES_DIR, STAMP);
  if (!opts.force && existsSync(stampPath) && (await readFile(stampPath, "utf8")) === fingerprint) {
    return { regenerated: false, seconds: 0, dir: TYPES_DIR, diagnostics: "" };
  }
  // Build into a private folder and swap it in, so parallel runs never see half a tree.
  const tmp = `${TYPES_DIR}.tmp-${process.pid}-${Date.now()}`;
  const tsc = join(dirname(createRequire(import.meta.url).resolve("typescript/package.json")), "bin", "tsc");
  let diagnostics = "";
  try {
    await promisify(execFile)(process.execPath, [
      tsc, join(LAB_DIR, "notebook.ts"),
      // rootDir is the repository: lab/notebook.ts also reaches exercises/ (typed, loaded on demand).
      "--declaration", "--emitDeclarationOnly", "--outDir", tmp, "--rootDir", REPO_ROOT,
      "--module", "nodenext", "--moduleResolution", "nodenext", "--target", "es2022", "--lib", "es2023,dom",
      "--strict", "--allowImportingTsExtensions", "--skipLibCheck", "--types", "node",
      "--resolveJsonModule", "--esModuleInterop", "--pretty", "false",
    ], { cwd: REPO_ROOT, maxBuffer: 16 << 20 });
  } catch (err) {
    diagnostics = String((err as { stdout?: string }).stdout ?? (err as Error).message).trim();
  }
  // Hand-written declarations (e.g. engine/node-llama.d.mts for a .mjs) are not emitted by tsc.
  for (const f of files.filter((p) => /\.d\.(ts|mts|cts)$/.test(p) && !p.endsWith("notebook.d.cts"))) {
    const dest = join(tmp, relative(REPO_ROOT, f));
    await mkdir(dirname(dest), { recursive: true });
    await copyFile(f, dest);
  }
  if (!existsSync(join(tmp, "lab", "notebook.d.ts"))) {
    await rm(tmp, { recursive: true, force: true });
    throw new Error(`could not generate lab/.types/lab/notebook.d.ts for notebook cells:\n${diagnostics}`);
  }
  await writeFile(join(tmp, STAMP), fingerprint);
  const old = `${tmp}-old`;
  await rename(TYPES_DIR, old).catch(() => {});
  try {
    await rename(tmp, TYPES_DIR);
  } catch {
    await rm(tmp, { recursive: true, force: true }); // another process swapped its copy in first
  }
  await rm(old, { recursive: true, force: true });
  return { regenerated: true, seconds: (performance.now() - t0) / 1000, dir: TYPES_DIR, diagnostics };
}

// `tsx lab/notebooks/types.ts` (the package's `prepare` script): generate them now. Never fails the
// install: a failure is printed with what to run, and notebooks say the same. (No top-level await:
// lab/notebook.cjs require()s this file as CommonJS.)
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  ensureNotebookTypes().then(
    (r) => process.stderr.write(r.regenerated
      ? `lab: generated the type declarations notebook cells need (lab/.types, ${r.seconds.toFixed(1)} s)\n`
      : "lab: the type declarations for notebook cells (lab/.types) are up to date\n"),
    (err: Error) => process.stderr.write(`lab: could not generate the type declarations for notebook cells (lab/.types): ${err.message}\n` +
      "lab: notebooks will not type-check until this works; fix the error above, then run `npm run prepare`.\n"),
  );
}
