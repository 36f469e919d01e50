// Is this process a running tslab kernel? If so, send rich outputs to the cell being run.
// Shared by lab/plot (figures), lab/table (tables) and lab/study/progress (a bar redrawn in place);
// costs nothing outside a notebook.
//
// Why MIME bundles and not tslab's display.svg()/display.html(): those send ONE type per output,
// and Jupyter shows a cloned notebook "Not Trusted", which hides image/svg+xml and text/html. An
// output must therefore carry a fallback beside them — image/png for a figure, text/plain for a
// table — in the SAME display_data message, so the front end picks the richest type it may show
// and a cell still has one output area per figure. tslab's public API has no call for that, so we
// use the function its public API itself calls (jupyter.js's lastWriteDisplayData, tslab 1.0.22).
import { randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import { join, sep } from "node:path";

/** MIME type → content: text as a string, binary (image/png) as bytes (sent base64, as nbformat stores it). */
export type MimeBundle = Record<string, string | Uint8Array>;

/** Per-MIME display hints, e.g. { "image/png": { width: 640 } } to show a 2× PNG at its CSS size. */
export type MimeMetadata = Record<string, Record<string, unknown>>;

/** The part of tslab's jupyter.js module we call: set while the kernel is serving a cell. */
interface TslabJupyterModule {
  lastWriteDisplayData?: (
    msg: { data: Record<string, string>; metadata: MimeMetadata; transient: { display_id?: string } },
    update: boolean,
  ) => void;
}

/**
 * tslab's jupyter.js module when the tslab kernel has been loaded into this process, else undefined.
 * We look tslab up in the module cache instead of importing it: importing tslab would load its
 * whole TypeScript compiler into every plain-Node script, and a second copy would not be connected
 * to the kernel anyway.
 */
function tslabJupyter(): TslabJupyterModule | undefined {
  const cache = createRequire(join(process.cwd(), "noop.js")).cache;
  const key = Object.keys(cache).find((k) => k.endsWith(`${sep}tslab${sep}dist${sep}jupyter.js`));
  return key ? (cache[key]?.exports as TslabJupyterModule | undefined) : undefined;
}

/** True when this process is a tslab kernel serving a cell right now (so displays reach a notebook). */
export function inNotebook(): boolean {
  return typeof tslabJupyter()?.lastWriteDisplayData === "function";
}

function encodeBundle(bundle: MimeBundle): Record<string, string> {
  const data: Record<string, string> = {};
  for (const [mime, value] of Object.entries(bundle)) {
    data[mime] = typeof value === "string" ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("base64");
  }
  return data;
}

function send(bundle: MimeBundle, metadata: MimeMetadata, displayId: string | undefined, update: boolean): boolean {
  const write = tslabJupyter()?.lastWriteDisplayData;
  if (typeof write !== "function") return false;
  try {
    write({ data: encodeBundle(bundle), metadata, transient: displayId ? { display_id: displayId } : {} }, update);
    return true;
  } catch {
    return false; // tslab loaded but no longer connected to a kernel
  }
}

/**
 * Sends one output with every representation in `bundle` to the notebook (one display_data, so
 * one output area); false when not in a live tslab kernel, and then nothing was shown.
 */
export function displayInNotebook(bundle: MimeBundle, metadata: MimeMetadata = {}): boolean {
  return send(bundle, metadata, undefined, false);
}

/** An output that redraws itself in place (first show: display_data; later ones: update_display_data). */
export interface UpdatableDisplay {
  show(bundle: MimeBundle, metadata?: MimeMetadata): boolean;
}

/** A display that can be redrawn, or undefined outside a live tslab kernel. */
export function updatableDisplay(): UpdatableDisplay | undefined {
  if (!inNotebook()) return undefined;
  const id = randomBytes(8).toString("hex");
  let shown = false;
  return {
    show(bundle, metadata = {}) {
      const ok = send(bundle, metadata, id, shown);
      shown ||= ok;
      return ok;
    },
  };
}
