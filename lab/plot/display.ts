// Is this process a running tslab kernel? If so, its `display` object (svg/html outputs in the cell).
// Shared by lab/plot (figures) and lab/table (tables); costs nothing outside a notebook.
import { createRequire } from "node:module";
import { join, sep } from "node:path";

export interface TslabDisplay {
  svg(s: string): void;
  html(s: string): void;
}

/**
 * tslab's display object when the tslab kernel has been loaded into this process, else undefined.
 * We look tslab up in the module cache instead of importing it: importing tslab would load its
 * whole TypeScript compiler into every plain-Node script, and a second copy would not be connected
 * to the kernel anyway. Calls on the result throw "Not ready" if the kernel is not serving a cell.
 */
export function tslabDisplay(): TslabDisplay | undefined {
  const cache = createRequire(join(process.cwd(), "noop.js")).cache;
  const key = Object.keys(cache).find((k) => k.endsWith(`${sep}tslab${sep}dist${sep}jupyter.js`));
  if (!key) return undefined;
  try {
    return (createRequire(key)("./public.js") as { display: TslabDisplay }).display;
  } catch {
    return undefined;
  }
}

/** Sends `content` to the notebook as `kind`; false when not in a live tslab kernel. */
export function displayInNotebook(kind: "svg" | "html", content: string): boolean {
  const display = tslabDisplay();
  if (!display) return false;
  try {
    display[kind](content);
    return true;
  } catch {
    return false; // tslab loaded but not connected to a kernel ("Not ready")
  }
}
