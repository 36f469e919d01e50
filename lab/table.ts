// Tables of results: rows of plain objects → a danfojs DataFrame, a table shown in the notebook
// (HTML in tslab, aligned text elsewhere), and CSV files with a stable column order and number format.
//
// Rows are the kit's lingua franca (every benchmark returns `{ name, tokensPerSecond, ... }[]`);
// danfojs is only loaded when a DataFrame is really asked for: importing it costs ~1 s (it pulls in
// @tensorflow/tfjs), which scripts that only print or write CSV should not pay.
//
// Reading order: cells and columns → formatting → text/HTML tables → showTable → CSV write/read →
// DataFrames.
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import type { DataFrame } from "danfojs";
import { displayInNotebook } from "./plot/display.ts";

/** A table cell after normalization: what CSV and the display know how to write. */
export type Cell = string | number | boolean | null;

/** Bad rows or columns: not objects, no columns, a value that cannot be a cell, a malformed CSV. */
export class TableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TableError";
  }
}

// ─── cells and columns ───────────────────────────────────────────────────────────────────────────

/** Column names in first-seen order over all rows (row 0's keys first, then new keys as they appear). */
export function columnsOf(rows: readonly object[]): string[] {
  const seen = new Set<string>();
  for (const row of rows) for (const key of Object.keys(row)) seen.add(key);
  return [...seen];
}

/** One value as a cell: bigint → number if exact else string, Date → ISO string, arrays/objects → JSON. */
export function toCell(value: unknown, column = "?"): Cell {
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case "string": case "number": case "boolean": return value;
    case "bigint": return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
    case "object":
      if (value instanceof Date) return value.toISOString();
      if (ArrayBuffer.isView(value)) return JSON.stringify(Array.from(value as unknown as ArrayLike<number>));
      return JSON.stringify(value);
    default:
      throw new TableError(`column "${column}": cannot put a ${typeof value} in a table cell`);
  }
}

function checkRows(rows: unknown, who: string): readonly object[] {
  if (!Array.isArray(rows)) throw new TableError(`${who}: expected an array of row objects, got ${typeof rows}`);
  rows.forEach((row, i) => {
    if (row === null || typeof row !== "object" || Array.isArray(row)) {
      throw new TableError(`${who}: row ${i} is not an object (${row === null ? "null" : Array.isArray(row) ? "array" : typeof row})`);
    }
  });
  return rows;
}

/** Rows as a grid of cells in `columns` order (missing keys become null). */
function grid(rows: readonly object[], columns: string[]): Cell[][] {
  return rows.map((row) => columns.map((c) => toCell((row as Record<string, unknown>)[c], c)));
}

// ─── number formatting ───────────────────────────────────────────────────────────────────────────

/**
 * A number as text with at least `digits` significant digits and never a rounded-away integer part:
 * integers exactly (123456789), fractions rounded (0.1234567 → 0.123457 with 6 digits,
 * 1234567.891 → 1234568), NaN/±Infinity spelled out. No thousands separators: CSV must parse back.
 */
export function formatNumber(x: number, digits = 6): string {
  if (!Number.isFinite(x)) return String(x);
  if (Number.isInteger(x)) return String(x);
  const intDigits = Math.max(1, Math.floor(Math.log10(Math.abs(x))) + 1);
  return String(Number(x.toPrecision(Math.min(100, Math.max(digits, intDigits)))));
}

function formatCell(cell: Cell, digits: number): string {
  if (cell === null) return "";
  if (typeof cell === "number") return formatNumber(cell, digits);
  return String(cell);
}

// ─── text and HTML tables ────────────────────────────────────────────────────────────────────────

export interface TableOptions {
  /** Columns to show, in order. Default: columnsOf(rows). */
  columns?: string[];
  /** Significant digits for fractional numbers. Default 4 for display, 6 for CSV. */
  digits?: number;
  /** Rows shown before "… N more rows". Default 50. */
  maxRows?: number;
}

/** Rows or a DataFrame as rows. DataFrames are recognized by shape (columns + values), not by class. */
function asRows(data: readonly object[] | DataFrame, who: string): readonly object[] {
  if (Array.isArray(data)) return checkRows(data, who);
  const df = data as { columns?: unknown; values?: unknown };
  if (df && Array.isArray(df.columns) && Array.isArray(df.values)) return dataFrameRows(data as DataFrame);
  throw new TableError(`${who}: expected an array of row objects or a danfojs DataFrame`);
}

/** Aligned plain-text table: numbers right-aligned, everything else left-aligned. */
export function formatTable(data: readonly object[] | DataFrame, options: TableOptions = {}): string {
  const rows = asRows(data, "formatTable");
  const { columns = columnsOf(rows), digits = 4, maxRows = 50 } = options;
  const shown = grid(rows.slice(0, maxRows), columns);
  const text = shown.map((r) => r.map((c) => formatCell(c, digits)));
  const numeric = columns.map((_, j) => shown.length > 0 && shown.every((r) => r[j] === null || typeof r[j] === "number"));
  const widths = columns.map((c, j) => Math.max(c.length, ...text.map((r) => r[j].length)));
  const pad = (s: string, j: number) => (numeric[j] ? s.padStart(widths[j]) : s.padEnd(widths[j]));
  const lines = [
    columns.map(pad).join("  ").trimEnd(),
    widths.map((w) => "─".repeat(w)).join("  "),
    ...text.map((r) => r.map(pad).join("  ").trimEnd()),
  ];
  if (rows.length > maxRows) lines.push(`… ${rows.length - maxRows} more rows (${rows.length} in all)`);
  return lines.join("\n");
}

const escapeHtml = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

/** The same table as an HTML <table> (numbers right-aligned), for notebooks. */
export function htmlTable(data: readonly object[] | DataFrame, options: TableOptions = {}): string {
  const rows = asRows(data, "htmlTable");
  const { columns = columnsOf(rows), digits = 4, maxRows = 50 } = options;
  const shown = grid(rows.slice(0, maxRows), columns);
  const td = (c: Cell) => (typeof c === "number"
    ? `<td style="text-align:right;font-variant-numeric:tabular-nums">${escapeHtml(formatCell(c, digits))}</td>`
    : `<td style="text-align:left">${escapeHtml(formatCell(c, digits))}</td>`);
  const head = columns.map((c) => `<th style="text-align:left">${escapeHtml(c)}</th>`).join("");
  const body = shown.map((r) => `<tr>${r.map(td).join("")}</tr>`).join("\n");
  const more = rows.length > maxRows
    ? `\n<caption style="caption-side:bottom">… ${rows.length - maxRows} more rows (${rows.length} in all)</caption>` : "";
  return `<table class="lab-table">${more}\n<thead><tr>${head}</tr></thead>\n<tbody>\n${body}\n</tbody>\n</table>`;
}

// ─── showTable ───────────────────────────────────────────────────────────────────────────────────

/**
 * Shows rows (or a DataFrame) as an HTML table in a tslab notebook, or prints the text table elsewhere.
 * The notebook output also carries the text table (text/plain): Jupyter shows no HTML in a notebook
 * it does not trust (every freshly cloned one) and falls back to it.
 */
export function showTable(data: readonly object[] | DataFrame, options: TableOptions = {}): void {
  const text = formatTable(data, options);
  if (displayInNotebook({ "text/html": htmlTable(data, options), "text/plain": text })) return;
  console.log(text);
}

// ─── CSV ─────────────────────────────────────────────────────────────────────────────────────────

function csvField(text: string): string {
  return /[",\r\n]|^\s|\s$/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/**
 * CSV text (RFC 4180, "\n" line ends, trailing newline): a header, then one line per row in
 * `columns` order; numbers via formatNumber(x, digits = 6), null/undefined as empty fields.
 */
export function toCsv(rows: readonly object[], options: { columns?: string[]; digits?: number } = {}): string {
  checkRows(rows, "toCsv");
  const { columns = columnsOf(rows), digits = 6 } = options;
  if (columns.length === 0) throw new TableError("toCsv: no columns (no rows and no `columns` option)");
  const lines = [columns.map(csvField).join(",")];
  for (const r of grid(rows, columns)) lines.push(r.map((c) => csvField(formatCell(c, digits))).join(","));
  return lines.join("\n") + "\n";
}

/** Writes rows as CSV to `path` atomically (temp file + rename; parent folders created). */
export function writeCsv(path: string, rows: readonly object[], options: { columns?: string[]; digits?: number } = {}): void {
  const text = toCsv(rows, options); // throws before anything touches the disk
  mkdirSync(dirname(path), { recursive: true });
  const temp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  try {
    writeFileSync(temp, text);
    renameSync(temp, path);
  } finally {
    rmSync(temp, { force: true });
  }
}

/** Splits CSV text into records of fields (quotes, doubled quotes, newlines inside quotes). */
export function parseCsvRecords(text: string): { fields: string[]; quoted: boolean[] }[] {
  const records: { fields: string[]; quoted: boolean[] }[] = [];
  let fields: string[] = [];
  let quoted: boolean[] = [];
  let i = 0;
  const n = text.length;
  if (n === 0) return records;
  for (;;) {
    let field = "";
    let wasQuoted = false;
    if (text[i] === '"') {
      wasQuoted = true;
      i++;
      for (;;) {
        if (i >= n) throw new TableError("parseCsv: unterminated quoted field");
        if (text[i] === '"') {
          if (text[i + 1] === '"') { field += '"'; i += 2; continue; }
          i++;
          break;
        }
        field += text[i++];
      }
      if (i < n && text[i] !== "," && text[i] !== "\n" && text[i] !== "\r") {
        throw new TableError(`parseCsv: unexpected character after closing quote at offset ${i}`);
      }
    } else {
      while (i < n && text[i] !== "," && text[i] !== "\n" && text[i] !== "\r") field += text[i++];
    }
    fields.push(field);
    quoted.push(wasQuoted);
    if (i < n && text[i] === ",") { i++; continue; }
    records.push({ fields, quoted });
    fields = [];
    quoted = [];
    if (text[i] === "\r") i++;
    if (text[i] === "\n") i++;
    if (i >= n) return records;
  }
}

/**
 * CSV text → rows keyed by the header. Unquoted fields that look like numbers become numbers
 * (integers beyond 2^53 stay strings, so they are not silently rounded),
 * true/false become booleans, empty unquoted fields become null; quoted fields stay strings.
 */
export function parseCsv(text: string): Record<string, Cell>[] {
  const [header, ...records] = parseCsvRecords(text);
  if (!header) throw new TableError("parseCsv: empty input (no header line)");
  const columns = header.fields;
  return records.map(({ fields, quoted }, r) => {
    if (fields.length !== columns.length) {
      throw new TableError(`parseCsv: line ${r + 2} has ${fields.length} fields, the header has ${columns.length}`);
    }
    const row: Record<string, Cell> = {};
    columns.forEach((c, j) => { row[c] = quoted[j] ? fields[j] : parseField(fields[j]); });
    return row;
  });
}

function parseField(s: string): Cell {
  if (s === "") return null;
  if (s === "true") return true;
  if (s === "false") return false;
  if (/^-?\d+$/.test(s)) return Number.isSafeInteger(Number(s)) ? Number(s) : s; // 2^64-ish ids stay exact strings
  if (/^-?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?$|^-?Infinity$|^NaN$/i.test(s)) return Number(s);
  return s;
}

/** Reads a CSV file written by writeCsv (or any RFC 4180 CSV with a header) back into rows. */
export function readCsv(path: string): Record<string, Cell>[] {
  return parseCsv(readFileSync(path, "utf8"));
}

// ─── DataFrames (danfojs, loaded on first use) ───────────────────────────────────────────────────

type Danfo = typeof import("danfojs");
let danfo: Promise<Danfo> | undefined;

/** The danfojs module, imported once on first call (~1 s: it brings @tensorflow/tfjs along). */
export function loadDanfo(): Promise<Danfo> {
  danfo ??= import("danfojs");
  return danfo;
}

/**
 * Rows → a danfojs DataFrame with columns in columnsOf(rows) order. Built column by column so rows
 * with missing keys line up (missing → null, which danfojs shows as NaN in number columns).
 */
export async function toDataFrame(rows: readonly object[], options: { columns?: string[] } = {}): Promise<DataFrame> {
  checkRows(rows, "toDataFrame");
  const { columns = columnsOf(rows) } = options;
  if (columns.length === 0) throw new TableError("toDataFrame: no columns (no rows and no `columns` option)");
  const cells = grid(rows, columns);
  const data: Record<string, Cell[]> = {};
  columns.forEach((c, j) => { data[c] = cells.map((r) => r[j]); });
  const dfd = await loadDanfo();
  return new dfd.DataFrame(data, { columns });
}

/** A DataFrame back to rows (column order kept). */
export function dataFrameRows(df: DataFrame): Record<string, Cell>[] {
  const columns = df.columns as string[];
  const values = df.values as unknown[][];
  return values.map((r) => Object.fromEntries(columns.map((c, j) => [c, toCell(r[j], c)])));
}
