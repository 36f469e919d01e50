// The .ipynb file (nbformat 4): reading, and writing back in a normalized form so that running an
// unchanged notebook twice gives byte-identical files and git diffs show only real changes.
//
// Normalized means: keys sorted and 1-space indent with a trailing newline (what Jupyter itself
// writes, so saving from JupyterLab gives a small diff too); multi-line strings stored as arrays of
// lines; execution counts 1, 2, 3… in cell order; volatile metadata dropped (cell timing
// "execution", "collapsed"/"scrolled" view state, widget state); the kernelspec pinned to tslab.
import { readFile, rename, writeFile } from "node:fs/promises";
import type { CellOutput } from "./kernel.ts";

export interface NotebookCell {
  cell_type: "code" | "markdown" | "raw";
  id?: string;
  source: string | string[];
  metadata: Record<string, unknown>;
  outputs?: CellOutput[];
  execution_count?: number | null;
  attachments?: unknown;
}

export interface Notebook {
  nbformat: number;
  nbformat_minor: number;
  metadata: Record<string, any>;
  cells: NotebookCell[];
}

export class NotebookFormatError extends Error {
  constructor(readonly path: string, message: string) {
    super(`${path}: ${message}`);
    this.name = "NotebookFormatError";
  }
}

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

export async function readNotebook(path: string): Promise<Notebook> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new NotebookFormatError(path, "no such notebook");
    throw err;
  }
  return parseNotebook(path, text);
}

/** Parses and checks the text of an .ipynb (`path` only names it in errors). */
export function parseNotebook(path: string, text: string): Notebook {
  let doc: any;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new NotebookFormatError(path, `not valid JSON (${(err as Error).message})`);
  }
  if (doc?.nbformat !== 4 || !Array.isArray(doc.cells)) {
    throw new NotebookFormatError(path, `not an nbformat-4 notebook (nbformat=${doc?.nbformat})`);
  }
  for (const [i, cell] of doc.cells.entries()) {
    if (!["code", "markdown", "raw"].includes(cell?.cell_type)) throw new NotebookFormatError(path, `cell ${i} has unknown cell_type "${cell?.cell_type}"`);
    if (typeof cell.source !== "string" && !Array.isArray(cell.source)) throw new NotebookFormatError(path, `cell ${i} has no source`);
    cell.metadata ??= {};
  }
  doc.metadata ??= {};
  return doc as Notebook;
}

/** A cell's source as one string (nbformat allows a string or an array of lines). */
export function cellSource(cell: NotebookCell): string {
  return Array.isArray(cell.source) ? cell.source.join("") : cell.source;
}

// ---------------------------------------------------------------------------------------------
// Normalizing and writing
// ---------------------------------------------------------------------------------------------

/** The kernelspec every kit notebook uses; `lab jupyter` registers it under this name. */
export const TSLAB_KERNELSPEC = { display_name: "TypeScript", language: "typescript", name: "tslab" };

const VOLATILE_CELL_METADATA = ["execution", "collapsed", "scrolled", "ExecuteTime"];

/** Text MIME types Jupyter stores as arrays of lines. Everything else (base64 images, JSON) stays as is. */
function isMultilineMime(mime: string): boolean {
  return mime.startsWith("text/") || mime === "image/svg+xml" || mime === "application/javascript";
}

/** "a\nb\n" -> ["a\n", "b\n"], as nbformat stores multi-line strings. */
export function splitLines(text: string): string[] {
  return text.match(/[^\n]*\n|[^\n]+$/g) ?? [];
}

function joinText(value: unknown): unknown {
  return Array.isArray(value) && value.every((v) => typeof v === "string") ? value.join("") : value;
}

function normalizeOutput(out: CellOutput): CellOutput {
  switch (out.output_type) {
    case "stream":
      return { output_type: "stream", name: out.name, text: joinText(out.text) as string };
    case "error":
      return { output_type: "error", ename: out.ename, evalue: out.evalue, traceback: out.traceback };
    case "display_data":
    case "execute_result": {
      const data: Record<string, unknown> = {};
      for (const [mime, value] of Object.entries(out.data)) data[mime] = joinText(value);
      return out.output_type === "display_data"
        ? { output_type: "display_data", data, metadata: out.metadata ?? {} }
        : { output_type: "execute_result", execution_count: out.execution_count, data, metadata: out.metadata ?? {} };
    }
  }
}

/**
 * Returns a normalized copy: volatile metadata removed, execution counts renumbered 1..n over the
 * code cells that ran (cells with outputs but no count keep null), every cell given a stable id.
 */
export function normalizeNotebook(nb: Notebook, languageInfo?: Record<string, unknown>): Notebook {
  let count = 0;
  const usedIds = new Set<string>();
  const cells = nb.cells.map((cell, index): NotebookCell => {
    const metadata = { ...cell.metadata };
    for (const key of VOLATILE_CELL_METADATA) delete metadata[key];
    // Stable ids: keep the author's, else derive one from the position (nbformat >= 4.5 requires ids).
    let id = typeof cell.id === "string" && /^[a-zA-Z0-9-_]{1,64}$/.test(cell.id) ? cell.id : `cell-${index}`;
    while (usedIds.has(id)) id = `${id}-${index}`;
    usedIds.add(id);
    const base = { cell_type: cell.cell_type, id, metadata, source: cellSource(cell) };
    if (cell.cell_type !== "code") return cell.attachments ? { ...base, attachments: cell.attachments } : base;
    const ran = cell.execution_count !== null && cell.execution_count !== undefined;
    const execution_count = ran ? ++count : null;
    const outputs = (cell.outputs ?? []).map(normalizeOutput).map((o) =>
      o.output_type === "execute_result" ? { ...o, execution_count } : o);
    return { ...base, execution_count, outputs };
  });
  const metadata: Record<string, any> = { ...nb.metadata, kernelspec: TSLAB_KERNELSPEC };
  if (languageInfo) metadata.language_info = languageInfo;
  delete metadata.widgets;
  return { nbformat: 4, nbformat_minor: Math.max(nb.nbformat_minor ?? 5, 5), metadata, cells };
}

/** Objects with their keys sorted, recursively (Python's json.dump(sort_keys=True), as nbformat writes). */
function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) out[k] = sortKeys((value as Record<string, unknown>)[k]);
    return out;
  }
  return value;
}

/**
 * The file text: sorted keys, 1-space indent, trailing newline, and the strings nbformat stores
 * as arrays of lines (cell sources, stream text, text-like output data) split into lines.
 */
export function serializeNotebook(nb: Notebook): string {
  const asLines = (v: unknown) => (typeof v === "string" ? splitLines(v) : v);
  const cells = nb.cells.map((cell) => ({
    ...cell,
    source: asLines(cellSource(cell)),
    ...(cell.outputs ? {
      outputs: cell.outputs.map((o): unknown => {
        if (o.output_type === "stream") return { ...o, text: asLines(o.text) };
        if (o.output_type === "display_data" || o.output_type === "execute_result") {
          const data: Record<string, unknown> = {};
          for (const [mime, v] of Object.entries(o.data)) data[mime] = isMultilineMime(mime) ? asLines(v) : v;
          return { ...o, data };
        }
        return o;
      }),
    } : {}),
  }));
  return JSON.stringify(sortKeys({ ...nb, cells }), null, 1) + "\n";
}

/** Atomic write (temp file + rename): an interrupted run never leaves half a notebook. */
export async function writeNotebook(path: string, nb: Notebook): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, serializeNotebook(nb));
  await rename(tmp, path);
}
