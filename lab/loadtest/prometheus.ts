// The server's own counters, read from its Prometheus /metrics page before and after a load test and
// subtracted, so a load test can say "the server counted 6,400 generation tokens and 12 preemptions
// while we ran" next to what the client measured.
//
// Why a parser here and not parse-prometheus-text-format (which the tests use as an oracle): that
// library merges a histogram's series with different labels into one (vLLM labels every series with
// model_name) and drops their _count and _sum, and it files a Python client's `x_total` samples under
// a second, untyped family. The text exposition format (version 0.0.4) is small enough to read
// exactly: `# HELP name text`, `# TYPE name counter|gauge|histogram|summary|untyped`, and sample
// lines `name{label="value",…} value [timestamp]`, label values escaped with \\, \" and \n.
//
// Reading order: parsePrometheusText (lines → families of samples), seriesKey, diffMetrics (what a
// load test reports), fetchMetrics.

export type MetricType = "counter" | "gauge" | "histogram" | "summary" | "untyped";

export interface Sample {
  /** The sample's own name: for a histogram family "x", one of x_bucket, x_count, x_sum. */
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface MetricFamily {
  name: string;
  type: MetricType;
  help: string;
  samples: Sample[];
}

/** A /metrics page that is not the Prometheus text format, with the line that broke it. */
export class PrometheusFormatError extends Error {
  constructor(message: string, readonly line: number) {
    super(`Prometheus text format, line ${line}: ${message}`);
    this.name = "PrometheusFormatError";
  }
}

const TYPES = new Set<MetricType>(["counter", "gauge", "histogram", "summary", "untyped"]);
const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;

/** Which family a sample belongs to: its own name, or the name less a suffix its family's type allows. */
function familyOf(sample: string, families: Map<string, MetricFamily>): MetricFamily | undefined {
  const exact = families.get(sample);
  if (exact) return exact;
  for (const [suffix, types] of [["_bucket", ["histogram"]], ["_count", ["histogram", "summary"]], ["_sum", ["histogram", "summary"]],
    ["_total", ["counter"]], ["_created", ["counter", "histogram", "summary"]]] as const) {
    if (!sample.endsWith(suffix)) continue;
    const f = families.get(sample.slice(0, -suffix.length));
    if (f && (types as readonly string[]).includes(f.type)) return f;
  }
  return undefined;
}

/** Parses a /metrics page into families, in the order they appear. Throws PrometheusFormatError. */
export function parsePrometheusText(text: string): MetricFamily[] {
  const families = new Map<string, MetricFamily>();
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    const at = i + 1;
    if (line === "") continue;
    if (line.startsWith("#")) {
      const m = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s+(.*))?$/.exec(line);
      if (!m) continue; // a plain comment
      const [, kind, name, rest = ""] = m;
      if (!NAME.test(name!) || NAME.exec(name!)![0] !== name) throw new PrometheusFormatError(`bad metric name "${name}"`, at);
      const family = families.get(name!) ?? { name: name!, type: "untyped" as MetricType, help: "", samples: [] };
      families.set(name!, family);
      if (kind === "HELP") family.help = rest.replace(/\\(\\|n)/g, (_, c: string) => (c === "n" ? "\n" : "\\"));
      else {
        const type = rest.trim().toLowerCase() as MetricType;
        if (!TYPES.has(type)) throw new PrometheusFormatError(`unknown metric type "${rest}"`, at);
        family.type = type;
      }
      continue;
    }
    const sample = parseSampleLine(line, at);
    let family = familyOf(sample.name, families);
    if (!family) {
      family = { name: sample.name, type: "untyped", help: "", samples: [] };
      families.set(sample.name, family);
    }
    family.samples.push(sample);
  }
  return [...families.values()];
}

function parseSampleLine(line: string, at: number): Sample {
  const name = NAME.exec(line)?.[0];
  if (!name) throw new PrometheusFormatError(`a sample line must start with a metric name: ${JSON.stringify(line)}`, at);
  let i = name.length;
  const labels: Record<string, string> = {};
  if (line[i] === "{") {
    i++;
    for (;;) {
      while (line[i] === " " || line[i] === ",") i++;
      if (line[i] === "}") { i++; break; }
      const label = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(i))?.[0];
      if (!label) throw new PrometheusFormatError(`bad label name at column ${i + 1}: ${JSON.stringify(line)}`, at);
      i += label.length;
      while (line[i] === " ") i++;
      if (line[i] !== "=" ) throw new PrometheusFormatError(`expected = after label ${label}`, at);
      i++;
      while (line[i] === " ") i++;
      if (line[i] !== '"') throw new PrometheusFormatError(`label ${label}: the value must be in double quotes`, at);
      i++;
      let value = "";
      for (;;) {
        const c = line[i];
        if (c === undefined) throw new PrometheusFormatError(`label ${label}: unterminated value`, at);
        i++;
        if (c === '"') break;
        if (c === "\\") {
          const e = line[i++];
          value += e === "n" ? "\n" : e === "\\" ? "\\" : e === '"' ? '"' : `\\${e ?? ""}`;
        } else value += c;
      }
      labels[label] = value;
    }
  }
  const rest = line.slice(i).trim().split(/\s+/);
  if (rest.length < 1 || rest[0] === "" || rest.length > 2) throw new PrometheusFormatError(`expected "value [timestamp]" after the name and labels: ${JSON.stringify(line)}`, at);
  const value = parseValue(rest[0]!);
  if (value === undefined) throw new PrometheusFormatError(`bad sample value "${rest[0]}"`, at);
  return { name, labels, value };
}

function parseValue(s: string): number | undefined {
  if (/^[+]?inf$/i.test(s)) return Infinity;
  if (/^-inf$/i.test(s)) return -Infinity;
  if (/^nan$/i.test(s)) return NaN;
  const x = Number(s);
  return s.trim() !== "" && !Number.isNaN(x) ? x : undefined;
}

/** `name{a="1",b="2"}` with labels sorted, or the bare name: one series, as Prometheus writes it. */
export function seriesKey(name: string, labels: Record<string, string>): string {
  const keys = Object.keys(labels).sort();
  if (keys.length === 0) return name;
  const esc = (v: string) => v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
  return `${name}{${keys.map((k) => `${k}="${esc(labels[k]!)}"`).join(",")}}`;
}

export interface MetricsDiff {
  /** Counters, and histograms' and summaries' _count and _sum: after − before, per series
   *  (a series new since `before` counts from 0; a counter that went down was reset: its after value). */
  counters: Record<string, number>;
  /** Gauges (requests running, KV usage, RSS): the value before and after. */
  gauges: Record<string, { before: number | null; after: number }>;
}

/** What changed on the server between two /metrics pages. Buckets and _created samples are left out. */
export function diffMetrics(before: MetricFamily[], after: MetricFamily[]): MetricsDiff {
  const values = (families: MetricFamily[]) => {
    const counters = new Map<string, number>();
    const gauges = new Map<string, number>();
    for (const f of families) {
      for (const s of f.samples) {
        const key = seriesKey(s.name, s.labels);
        if (f.type === "counter" && !s.name.endsWith("_created")) counters.set(key, s.value);
        else if ((f.type === "histogram" || f.type === "summary") && (s.name.endsWith("_count") || s.name.endsWith("_sum")) && s.name !== f.name) counters.set(key, s.value);
        else if (f.type === "gauge") gauges.set(key, s.value);
      }
    }
    return { counters, gauges };
  };
  const b = values(before);
  const a = values(after);
  const counters: Record<string, number> = {};
  for (const [key, v] of a.counters) {
    const was = b.counters.get(key) ?? 0;
    counters[key] = v >= was ? v - was : v;
  }
  const gauges: Record<string, { before: number | null; after: number }> = {};
  for (const [key, v] of a.gauges) gauges[key] = { before: b.gauges.get(key) ?? null, after: v };
  return { counters, gauges };
}

/** GET a /metrics page and parse it, or say why there is none (llama-server without --metrics
 *  answers 501, an OpenAI proxy 404, some servers a page that is not the text format). */
export async function fetchMetrics(url: string, timeoutMs = 10_000): Promise<{ families: MetricFamily[] } | { unavailable: string }> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    return { unavailable: `GET ${url} failed: ${err instanceof Error ? err.message : String(err)}` };
  }
  if (res.status !== 200) {
    await res.body?.cancel();
    return { unavailable: `GET ${url} answered ${res.status}` };
  }
  try {
    return { families: parsePrometheusText(await res.text()) };
  } catch (err) {
    return { unavailable: `GET ${url}: ${err instanceof Error ? err.message : String(err)}` };
  }
}

/** The value of one gauge or counter series in a page (labels must match exactly; none: the bare name). */
export function sampleValue(families: MetricFamily[], name: string, labels: Record<string, string> = {}): number | undefined {
  const key = seriesKey(name, labels);
  for (const f of families) for (const s of f.samples) if (seriesKey(s.name, s.labels) === key) return s.value;
  return undefined;
}
