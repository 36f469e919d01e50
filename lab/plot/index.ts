// Figures for the lab: render Observable Plot charts in Node (jsdom), turn them into one standalone,
// normalized SVG, show them inline in tslab, and save them as notebooks/figures/NAME.svg + NAME.png.
//
// Reading order:
//   1. seededRandom        — the one RNG every example figure uses (mulberry32)
//   2. renderFigure        — Plot options (or a function of `document`) → standalone SVG string
//   3. standalone layout   — how Plot's <figure> (title, legends, chart, caption) becomes one <svg>
//   4. normalizeSvg        — rounded numbers, stable ids/classes, sorted attributes (for snapshots)
//   5. svgToPng            — resvg with a font it can find, so PNG text actually renders
//   6. showFigure / saveFigure
//
// Why standalone: Plot returns an HTML <figure> as soon as a chart has a title or a legend; an HTML
// fragment is neither a valid .svg file nor something resvg can rasterize. We redraw the title,
// subtitle, swatch legends and caption as SVG text and nest Plot's own <svg> elements unchanged.
import { existsSync, renameSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { deflateSync } from "node:zlib";
import { createRequire } from "node:module";
import type { JSDOM as JSDOMClass } from "jsdom";
import * as Plot from "@observablehq/plot";
import { Resvg } from "@resvg/resvg-js";
import { displayInNotebook, inNotebook } from "./display.ts";
import { mulberry32 } from "../random.ts";

export { Plot };
export type PlotOptions = Plot.PlotOptions;

/** A bad figure name, a non-SVG string, or a figure function that returned no element. */
export class FigureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FigureError";
  }
}

// ─── 1. seededRandom ─────────────────────────────────────────────────────────────────────────────

/**
 * mulberry32: a tiny 32-bit PRNG; the same seed gives the same sequence on every machine.
 * Returns uniform numbers in [0, 1). Use it for every random example so figures are reproducible.
 */
export function seededRandom(seed: number): () => number {
  if (!Number.isFinite(seed)) throw new FigureError(`seededRandom: seed must be a finite number, got ${seed}`);
  return mulberry32(seed);
}

/** A standard normal sample from two uniforms of `random` (Box–Muller). */

/** A standard normal draw from a uniform generator (Box–Muller); see lab/random.ts. */
export { gaussian } from "../random.ts";

// ─── 2. renderFigure ─────────────────────────────────────────────────────────────────────────────

/** A figure: Plot options (the usual case), or a function building any element from `document`. */
export type FigureSpec = PlotOptions | ((document: Document) => Element);

export interface RenderOptions {
  /** Background painted behind everything; "none" for transparent. Default "white". */
  background?: string;
  /** Prefix of the stable ids normalizeSvg assigns (clip paths, markers). Default "f". */
  idPrefix?: string;
}

const SVG_NS = "http://www.w3.org/2000/svg";
const XLINK_NS = "http://www.w3.org/1999/xlink";

// One private jsdom window for the whole process, made on first render. jsdom is required lazily:
// importing it takes ~1 s, which code that only wants seededRandom or Plot's types should not pay.
let sharedWindow: JSDOMClass["window"] | undefined;
function domWindow(): JSDOMClass["window"] {
  if (sharedWindow) return sharedWindow;
  const { JSDOM } = createRequire(import.meta.url)("jsdom") as typeof import("jsdom");
  const { window } = new JSDOM("<!DOCTYPE html><html><body></body></html>");
  // jsdom has no <canvas>; Plot paints continuous color legends on a 256×1 canvas. Ours records
  // the fill of each pixel and encodes them as a PNG data URL, which both browsers and resvg draw.
  const document = window.document;
  const createElement = document.createElement.bind(document);
  document.createElement = ((name: string, options?: ElementCreationOptions) =>
    name.toLowerCase() === "canvas" ? rampCanvas() : createElement(name, options)) as Document["createElement"];
  sharedWindow = window;
  return window;
}

/** Renders a figure to a standalone, normalized SVG string (xmlns, width/height, background). */
export function renderFigure(spec: FigureSpec, options: RenderOptions = {}): string {
  const window = domWindow();
  const document = window.document;
  const element = typeof spec === "function" ? spec(document) : Plot.plot({ ...spec, document });
  if (!element || typeof (element as Element).tagName !== "string") {
    throw new FigureError("renderFigure: the figure function must return a DOM element (an <svg> or Plot's <figure>)");
  }
  const svg = toStandaloneSvg(document, element, options.background ?? "white");
  return normalizeSvg(new window.XMLSerializer().serializeToString(svg), { idPrefix: options.idPrefix });
}

// ─── 3. standalone layout ────────────────────────────────────────────────────────────────────────

const PAD = 10; // px around a composed figure
const FONT = "system-ui, sans-serif"; // Plot's own default; resvg maps sans-serif to a real font below
const CHAR_WIDTH = 0.6; // average glyph advance in em, to wrap text without measuring it

function toStandaloneSvg(document: Document, element: Element, background: string): SVGSVGElement {
  if (element.localName === "svg" && element.namespaceURI === SVG_NS) {
    const svg = element.cloneNode(true) as SVGSVGElement;
    const width = numberAttr(svg, "width", 640);
    const height = numberAttr(svg, "height", 400);
    svg.setAttribute("width", String(width));
    svg.setAttribute("height", String(height));
    if (!svg.hasAttribute("viewBox")) svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    if (!svg.hasAttribute("font-family")) svg.setAttribute("font-family", FONT);
    addBackground(document, svg, background, width, height);
    return svg;
  }
  // Plot's <figure>, or a lone swatch legend from Plot.legend({color: …}) which is an HTML <div>.
  const parts = isSwatches(element) ? [element] : [...element.children];
  return composeFigure(document, parts, background);
}

/** Lays out Plot's <figure> children top to bottom: h2 title, h3 subtitle, legends, charts, caption. */
function composeFigure(document: Document, parts: Element[], background: string): SVGSVGElement {
  const root = document.createElementNS(SVG_NS, "svg") as SVGSVGElement;
  const charts = parts.filter((c) => c.localName === "svg");
  const width = (charts.length > 0 ? Math.max(100, ...charts.map((c) => numberAttr(c, "width", 0))) : 640) + 2 * PAD;
  const inner = width - 2 * PAD;
  let y = PAD;

  const textLines = (text: string, fontSize: number, attrs: Record<string, string>) => {
    for (const line of wrapText(text, inner, fontSize)) {
      const t = svgEl(document, "text", { x: String(PAD), y: String(y + fontSize), "font-size": String(fontSize), ...attrs });
      t.textContent = line;
      root.appendChild(t);
      y += Math.round(fontSize * 1.4);
    }
  };

  for (const child of parts) {
    const tag = child.localName;
    if (tag === "style") continue;
    if (tag === "h2") textLines(text(child), 16, { "font-weight": "bold" });
    else if (tag === "h3") textLines(text(child), 12, { "fill-opacity": "0.75" });
    else if (tag === "figcaption") { y += 4; textLines(text(child), 12, { "fill-opacity": "0.75" }); }
    else if (tag === "svg") {
      const w = numberAttr(child, "width", inner);
      const h = numberAttr(child, "height", 0);
      const nested = child.cloneNode(true) as Element;
      nested.setAttribute("x", String(PAD));
      nested.setAttribute("y", String(y));
      nested.setAttribute("width", String(w));
      nested.setAttribute("height", String(h));
      nested.setAttribute("overflow", "visible"); // Plot sets this in CSS, which resvg ignores
      root.appendChild(nested);
      y += h;
    } else if (isSwatches(child)) {
      y = layoutSwatches(document, root, child, y, inner);
    } else if (text(child)) {
      textLines(text(child), 10, {});
    }
  }
  const height = Math.ceil(y + PAD);
  setAttrs(root, {
    width: String(width), height: String(height), viewBox: `0 0 ${width} ${height}`,
    "font-family": FONT, "font-size": "10",
  });
  addBackground(document, root, background, width, height);
  return root;
}

function isSwatches(element: Element): boolean {
  return [...element.classList].some((c) => c.endsWith("-swatches"));
}

/** One row-wrapped line of [swatch][label] items, like Plot's flex layout, in SVG coordinates. */
function layoutSwatches(document: Document, root: Element, legend: Element, top: number, inner: number): number {
  const rowHeight = 20;
  let x = PAD;
  let y = top + 4;
  const place = (itemWidth: number) => {
    if (x > PAD && x + itemWidth > PAD + inner) { x = PAD; y += rowHeight; }
  };
  for (const item of legend.children) {
    if (item.localName === "style") continue;
    const swatch = [...item.children].find((c) => c.localName === "svg");
    const label = text(item);
    if (!swatch) { // a legend label (e.g. "Format family") rather than a swatch
      if (!label) continue;
      const w = label.length * CHAR_WIDTH * 10 + 12;
      place(w);
      const t = svgEl(document, "text", { x: String(x), y: String(y + 11), "font-weight": "bold" });
      t.textContent = label;
      root.appendChild(t);
      x += w;
      continue;
    }
    const sw = numberAttr(swatch, "width", 15);
    const sh = numberAttr(swatch, "height", 15);
    const itemWidth = sw + 5 + label.length * CHAR_WIDTH * 10 + 10;
    place(itemWidth);
    const nested = swatch.cloneNode(true) as Element;
    setAttrs(nested, { x: String(x), y: String(y), width: String(sw), height: String(sh) });
    root.appendChild(nested);
    const t = svgEl(document, "text", { x: String(x + sw + 5), y: String(y + sh / 2), dy: "0.35em", "text-anchor": "start" });
    t.textContent = label;
    root.appendChild(t);
    x += itemWidth;
  }
  return y + rowHeight + 6;
}

function wrapText(text: string, width: number, fontSize: number): string[] {
  const maxChars = Math.max(8, Math.floor(width / (fontSize * CHAR_WIDTH)));
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > maxChars) { lines.push(line); line = word; }
    else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}

function addBackground(document: Document, svg: Element, fill: string, width: number, height: number): void {
  if (fill === "none") return;
  const rect = svgEl(document, "rect", { width: String(width), height: String(height), fill });
  svg.insertBefore(rect, svg.firstChild);
}

function svgEl(document: Document, tag: string, attrs: Record<string, string>): Element {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  return el;
}

function setAttrs(el: Element, attrs: Record<string, string>): void {
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
}

function numberAttr(el: Element, name: string, fallback: number): number {
  const x = parseFloat(el.getAttribute(name) ?? "");
  return Number.isFinite(x) ? x : fallback;
}

function text(el: Element): string {
  // A swatch's text sits beside its <svg>; <style> text is CSS, not words.
  let s = "";
  for (const node of el.childNodes) {
    if (node.nodeType === 3) s += node.textContent;
    else if (node.nodeType === 1 && !["style", "svg"].includes((node as Element).localName)) s += text(node as Element);
  }
  return s.replace(/\s+/g, " ").trim();
}

/** The minimum of CanvasRenderingContext2D that Plot's ramp legend uses, encoding to PNG. */
function rampCanvas(): HTMLCanvasElement {
  const pixels: [number, number, number, number][] = [];
  let fill: [number, number, number, number] = [0, 0, 0, 255];
  const canvas = {
    width: 256,
    height: 1,
    getContext: () => ({
      set fillStyle(css: string) { fill = parseCssColor(css); },
      fillRect: (x: number) => { pixels[x] = fill; },
    }),
    toDataURL: () => `data:image/png;base64,${encodePng(canvas.width, pixels).toString("base64")}`,
  };
  return canvas as unknown as HTMLCanvasElement;
}

function parseCssColor(css: string): [number, number, number, number] {
  const rgb = /^rgba?\(\s*([\d.]+)[\s,]+([\d.]+)[\s,]+([\d.]+)(?:[\s,/]+([\d.]+))?\s*\)$/.exec(css.trim());
  if (rgb) return [+rgb[1], +rgb[2], +rgb[3], rgb[4] === undefined ? 255 : Math.round(+rgb[4] * 255)];
  const hex = /^#([0-9a-f]{6})$/i.exec(css.trim());
  if (hex) { const n = parseInt(hex[1], 16); return [n >> 16, (n >> 8) & 255, n & 255, 255]; }
  return [0, 0, 0, 255];
}

/** A one-row RGBA PNG (8-bit, filter 0): signature, IHDR, IDAT (zlib), IEND. */
function encodePng(width: number, pixels: [number, number, number, number][]): Buffer {
  const raw = Buffer.alloc(1 + 4 * width);
  for (let x = 0; x < width; x++) raw.set(pixels[x] ?? [0, 0, 0, 0], 1 + 4 * x);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(1, 4);
  ihdr.set([8, 6, 0, 0, 0], 8); // bit depth 8, color type RGBA, deflate, no filter, no interlace
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk("IHDR", ihdr), pngChunk("IDAT", deflateSync(raw)), pngChunk("IEND", Buffer.alloc(0)),
  ]);
}

function pngChunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, "ascii");
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

let crcTable: Uint32Array | undefined;
function crc32(bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (const b of bytes) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// ─── 4. normalizeSvg ─────────────────────────────────────────────────────────────────────────────

export interface NormalizeOptions {
  /** Ids become `${idPrefix}-1`, `${idPrefix}-2`, … in document order. Default "f". */
  idPrefix?: string;
  /** Decimal places kept in numeric attribute values. Default 2. */
  digits?: number;
}

const PLOT_CLASS = /\bplot-[0-9a-f]{6}\b/g; // Plot's per-version class name, e.g. plot-d6a7b5
// Only numbers with a decimal point are rounded: "6e8" inside the color #2c6e8e must stay as it is.
const NUMBER_WITH_POINT = /-?(?:\d+\.\d*|\.\d+)(?:e[+-]?\d+)?/gi;
const XMLNS_NS = "http://www.w3.org/2000/xmlns/";

/**
 * Makes an SVG string comparable across runs and machines, the way Plot's own test suite does:
 * numbers in attributes rounded to `digits` decimals (text content is left alone), Plot's class
 * hash replaced by "plot", generated ids (plot-clip-7 …) renamed in document order with their
 * url(#…)/href references, attributes sorted by name (namespace declarations regenerated). Idempotent: normalizeSvg(normalizeSvg(s)) === normalizeSvg(s).
 */
export function normalizeSvg(svg: string, options: NormalizeOptions = {}): string {
  const { idPrefix = "f", digits = 2 } = options;
  if (!/^[A-Za-z][\w-]*$/.test(idPrefix)) throw new FigureError(`normalizeSvg: idPrefix must be a plain name, got "${idPrefix}"`);
  const window = domWindow();
  const root = parseSvgDocument(svg, "normalizeSvg");
  const elements = [root, ...root.getElementsByTagName("*")];

  const ids = new Map<string, string>();
  for (const el of elements) {
    const id = el.getAttribute("id");
    if (id !== null && !ids.has(id)) ids.set(id, `${idPrefix}-${ids.size + 1}`);
  }
  // String(+x.toFixed(d)) drops trailing zeros and turns -0 into "0".
  const round = (value: string) => value.replace(NUMBER_WITH_POINT, (n) => String(+(+n).toFixed(digits)));
  const renameRefs = (value: string) =>
    value.replace(/url\(#([^)]+)\)/g, (whole, id: string) => (ids.has(id) ? `url(#${ids.get(id)})` : whole));

  for (const el of elements) {
    // Namespace declarations are dropped and regenerated by the serializer; xlink attributes get
    // their conventional "xlink:" prefix (d3 sets them without one, so serializers invent "ns1:").
    const attrs = [...el.attributes].map((a) => ({
      ns: a.namespaceURI, local: a.localName, value: a.value,
      name: a.namespaceURI === XLINK_NS ? `xlink:${a.localName}` : a.name,
    }));
    for (const a of attrs) el.removeAttributeNS(a.ns, a.local);
    const kept = attrs.filter((a) => a.ns !== XMLNS_NS);
    kept.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const a of kept) {
      let value = a.value;
      if (a.name === "id") value = ids.get(a.value) ?? value;
      else if (a.local === "href") value = value.startsWith("#") && ids.has(value.slice(1)) ? `#${ids.get(value.slice(1))}` : value;
      else if (a.name === "class") value = value.replace(PLOT_CLASS, "plot");
      else if (!/^(#|data:)|:\/\//.test(value)) value = renameRefs(round(value.replace(PLOT_CLASS, "plot")));
      el.setAttributeNS(a.ns, a.name, value);
    }
    if (el.localName === "style" && el.textContent) el.textContent = el.textContent.replace(PLOT_CLASS, "plot");
  }
  if (elements.some((el) => el.hasAttributeNS(XLINK_NS, "href"))) root.setAttributeNS(XMLNS_NS, "xmlns:xlink", XLINK_NS);
  return new window.XMLSerializer().serializeToString(root);
}

/** Parses SVG text (XML rules) and returns its root, or throws FigureError naming `who`. */
function parseSvgDocument(svg: string, who: string): Element {
  if (typeof svg !== "string") throw new FigureError(`${who}: expected an SVG string, got ${typeof svg}`);
  const doc = new (domWindow().DOMParser)().parseFromString(svg, "image/svg+xml");
  const root = doc.documentElement;
  if (!root || root.localName !== "svg" || doc.getElementsByTagName("parsererror").length > 0) {
    throw new FigureError(`${who}: input is not a well-formed <svg> document: ${JSON.stringify(svg.slice(0, 40))}`);
  }
  return root;
}

// ─── 5. svgToPng ─────────────────────────────────────────────────────────────────────────────────

// resvg only draws text with fonts it has loaded, and maps the generic "sans-serif" to Arial, which
// Debian does not ship. We load a known sans family explicitly (fast: no system scan) and fall back
// to scanning system fonts if none of these files exists.
const SANS_FONTS: { family: string; files: string[] }[] = [
  { family: "DejaVu Sans", files: ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"] },
  { family: "Liberation Sans", files: ["/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf", "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf"] },
  { family: "Noto Sans", files: ["/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf", "/usr/share/fonts/truetype/noto/NotoSans-Bold.ttf"] },
  { family: "FreeSans", files: ["/usr/share/fonts/truetype/freefont/FreeSans.ttf", "/usr/share/fonts/truetype/freefont/FreeSansBold.ttf"] },
  { family: "Helvetica", files: ["/System/Library/Fonts/Helvetica.ttc"] },
  { family: "Arial", files: ["C:\\Windows\\Fonts\\arial.ttf"] },
];

/** The sans-serif family resvg will use for text, or undefined if none of the known fonts exists. */
export function figureFont(): { family: string; files: string[] } | undefined {
  for (const font of SANS_FONTS) {
    const files = font.files.filter((f) => existsSync(f));
    if (files.length > 0) return { family: font.family, files };
  }
  return undefined;
}

export interface RasterOptions {
  /** Output pixels per SVG unit. Default 2 (sharp text on high-density screens). */
  scale?: number;
}

/** Rasterizes an SVG string: width × height RGBA pixels at `scale` × the SVG's own size. */
export function rasterizeSvg(svg: string, options: RasterOptions = {}): { width: number; height: number; pixels: Buffer; png: () => Buffer } {
  const { scale = 2 } = options;
  if (!(scale > 0 && scale <= 8)) throw new FigureError(`rasterizeSvg: scale must be in (0, 8], got ${scale}`);
  const font = figureFont();
  let image;
  try {
    image = new Resvg(svg, {
      fitTo: { mode: "zoom", value: scale },
      font: font
        ? { loadSystemFonts: false, fontFiles: font.files, defaultFontFamily: font.family, sansSerifFamily: font.family }
        : { loadSystemFonts: true },
    }).render();
  } catch (err) {
    throw new FigureError(`rasterizeSvg: resvg could not read the SVG: ${(err as Error).message}`);
  }
  return { width: image.width, height: image.height, pixels: image.pixels, png: () => image.asPng() };
}

/** PNG bytes of an SVG string at `scale` × its width/height (default 2). */
export function svgToPng(svg: string, options: RasterOptions = {}): Buffer {
  return rasterizeSvg(svg, options).png();
}

// ─── 6. showFigure / saveFigure ──────────────────────────────────────────────────────────────────

/**
 * Shows a figure inline in a tslab notebook and returns undefined, so the cell prints nothing else;
 * outside tslab it returns the SVG string. Takes an SVG string from renderFigure, or a figure spec
 * that it renders first. One output carries both the SVG (crisp, ids never clash between cells)
 * and a PNG at `scale` × (default 2) shown at the SVG's own width: Jupyter hides SVG in a notebook
 * it does not trust (every freshly cloned one), and then shows the PNG instead.
 */
export function showFigure(figure: string | FigureSpec, options: RasterOptions = {}): string | undefined {
  const svg = typeof figure === "string" ? figure : renderFigure(figure);
  if (!inNotebook()) return svg;
  const root = parseSvgDocument(svg, "showFigure");
  const width = numberAttr(root, "width", 0);
  const png = svgToPng(svg, options);
  const shown = displayInNotebook(
    { "image/svg+xml": svg, "image/png": png },
    width > 0 ? { "image/png": { width: Math.round(width) } } : {},
  );
  return shown ? undefined : svg;
}

const FIGURE_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;

export interface SaveOptions {
  /** Output folder, created if missing. Default "notebooks/figures" (relative to the working directory). */
  dir?: string;
  /** Also write NAME.png. Default true. */
  png?: boolean;
  /** PNG pixels per SVG unit. Default 2. */
  scale?: number;
}

/**
 * Writes NAME.svg (and NAME.png) into `dir`. NAME is letters, digits, "_" and "-" only: no path
 * separators, dots or extension. Both files are rendered first and then renamed into place, so a
 * failure leaves any previous version untouched. Returns the paths written.
 */
export function saveFigure(name: string, svg: string, options: SaveOptions = {}): { svg: string; png?: string } {
  const { dir = join("notebooks", "figures"), png = true, scale = 2 } = options;
  if (typeof name !== "string" || !FIGURE_NAME.test(name)) {
    throw new FigureError(`saveFigure: figure name must match ${FIGURE_NAME} (no path separators, dots or extension), got ${JSON.stringify(name)}`);
  }
  parseSvgDocument(svg, `saveFigure(${name})`);
  const pngBytes = png ? svgToPng(svg, { scale }) : undefined; // may throw: nothing written yet
  mkdirSync(dir, { recursive: true });
  const svgPath = resolve(dir, `${name}.svg`);
  const pngPath = resolve(dir, `${name}.png`);
  const files: [string, string | Buffer][] = [[svgPath, svg.endsWith("\n") ? svg : svg + "\n"]];
  if (pngBytes) files.push([pngPath, pngBytes]);
  const temps = files.map(([path]) => `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`);
  try {
    files.forEach(([, data], i) => writeFileSync(temps[i], data));
    files.forEach(([path], i) => renameSync(temps[i], path));
  } finally {
    for (const t of temps) rmSync(t, { force: true });
  }
  return pngBytes ? { svg: svgPath, png: pngPath } : { svg: svgPath };
}
