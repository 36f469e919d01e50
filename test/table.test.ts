// lab/table: stable columns and number formats in CSV, round trips, typed errors that write nothing,
// text/HTML display, and danfojs DataFrames built from rows.
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import {
  TableError, columnsOf, dataFrameRows, formatNumber, formatTable, htmlTable, parseCsv, readCsv, showTable,
  toCsv, toDataFrame, writeCsv,
} from "../lab/table.ts";

const tmp = mkdtempSync(join(tmpdir(), "lab-table-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const rows = [
  { format: "Q4_0", bpw: 4.5, tokensPerSecond: 123.456789123, ok: true },
  { format: 'odd, "quoted"\nname', bpw: 8.5, bytes: 12345678901, note: null },
  { format: "F32", bpw: 32, tokensPerSecond: 0.000123456789, ok: false, note: " padded " },
];

describe("columns and numbers", () => {
  it("orders columns by first appearance across rows", () => {
    expect(columnsOf(rows)).toEqual(["format", "bpw", "tokensPerSecond", "ok", "bytes", "note"]);
    expect(columnsOf([])).toEqual([]);
  });

  it("formats numbers with 6 significant digits but never rounds the integer part", () => {
    expect(formatNumber(123.456789123)).toBe("123.457");
    expect(formatNumber(0.000123456789)).toBe("0.000123457");
    expect(formatNumber(1234567.891)).toBe("1234568");
    expect(formatNumber(12345678901)).toBe("12345678901");
    expect(formatNumber(-2.5)).toBe("-2.5");
    expect(formatNumber(Number.NaN)).toBe("NaN");
    expect(formatNumber(-Infinity)).toBe("-Infinity");
    expect(formatNumber(Math.PI, 3)).toBe("3.14");
  });
});

describe("CSV", () => {
  it("writes a header, quotes only where needed, empty for missing values", () => {
    expect(toCsv(rows)).toBe(
      "format,bpw,tokensPerSecond,ok,bytes,note\n" +
      "Q4_0,4.5,123.457,true,,\n" +
      '"odd, ""quoted""\nname",8.5,,,12345678901,\n' +
      'F32,32,0.000123457,false,," padded "\n',
    );
    expect(toCsv(rows, { columns: ["bpw", "format"], digits: 2 }).split("\n")[1]).toBe("4.5,Q4_0");
  });

  it("round-trips through a file written atomically", () => {
    const path = join(tmp, "nested", "results.csv");
    writeCsv(path, rows);
    expect(readdirSync(join(tmp, "nested"))).toEqual(["results.csv"]);
    const back = readCsv(path);
    expect(back).toHaveLength(3);
    expect(back[0]).toEqual({ format: "Q4_0", bpw: 4.5, tokensPerSecond: 123.457, ok: true, bytes: null, note: null });
    expect(back[1].format).toBe('odd, "quoted"\nname');
    expect(back[1].bytes).toBe(12345678901);
    expect(back[2].note).toBe(" padded ");
    expect(toCsv(back)).toBe(readFileSync(path, "utf8")); // formatting is a fixed point
  });

  it("keeps quoted numbers and huge integers as strings when parsing", () => {
    expect(parseCsv('a,b,c\n"007",18446744073709551615,-1e-3\n')).toEqual([{ a: "007", b: "18446744073709551615", c: -0.001 }]);
    expect(parseCsv("a,b\r\n1,2\r\n")).toEqual([{ a: 1, b: 2 }]);
  });

  it("rejects bad rows and malformed CSV with TableError, writing nothing", () => {
    const path = join(tmp, "never.csv");
    expect(() => writeCsv(path, "rows" as unknown as object[])).toThrow(TableError);
    expect(() => writeCsv(path, [{ a: 1 }, 2 as unknown as object])).toThrow(/row 1 is not an object/);
    expect(() => writeCsv(path, [{ a: () => 1 }])).toThrow(/column "a"/);
    expect(() => writeCsv(path, [])).toThrow(TableError);
    expect(existsSync(path)).toBe(false);
    expect(() => parseCsv("")).toThrow(TableError);
    expect(() => parseCsv('a\n"open')).toThrow(/unterminated/);
    expect(() => parseCsv("a,b\n1\n")).toThrow(/line 2 has 1 fields/);
  });

  it("writes a header-only file when columns are given for no rows", () => {
    expect(toCsv([], { columns: ["x", "y"] })).toBe("x,y\n");
  });
});

describe("display", () => {
  it("formats an aligned text table, numbers right-aligned, with a row limit", () => {
    const text = formatTable([{ name: "a", n: 1.5 }, { name: "longer", n: 100 }, { name: "c", n: 2 }], { maxRows: 2 });
    expect(text).toBe(
      "name      n\n" +
      "──────  ───\n" +
      "a       1.5\n" +
      "longer  100\n" +
      "… 1 more rows (3 in all)",
    );
  });

  it("escapes HTML in cells and headers", () => {
    const html = htmlTable([{ "<b>": "<script>&", x: 1 }]);
    expect(html).toContain("<th style=\"text-align:left\">&lt;b&gt;</th>");
    expect(html).toContain("&lt;script&gt;&amp;");
    expect(html).not.toContain("<script>");
  });

  it("prints the text table outside a notebook", () => {
    const log = vi.spyOn(console, "log").mockImplementation(() => {});
    try {
      showTable([{ a: 1 }]);
      expect(log).toHaveBeenCalledWith("a\n─\n1");
    } finally {
      log.mockRestore();
    }
  });
});

describe("DataFrame", () => {
  it("builds a danfojs DataFrame with stable columns, aligns missing keys, and converts back", async () => {
    const df = await toDataFrame([{ b: 2, a: "x" }, { a: "y", c: true }]);
    expect(df.columns).toEqual(["b", "a", "c"]);
    expect(df.shape).toEqual([2, 3]);
    const back = dataFrameRows(df);
    expect(back[0]).toMatchObject({ b: 2, a: "x" });
    expect(back[1]).toMatchObject({ a: "y", c: true });
    expect(formatTable(df)).toContain("b  a");
    await expect(toDataFrame([])).rejects.toThrow(TableError);
  }, 30_000);
});
