// A progress bar for long notebook cells: in tslab one output that redraws itself in place (an HTML
// <progress> with a text line), on a terminal one line on stderr redrawn with "\r", and nothing at
// all in non-interactive runs (tests, CI logs). Only the final state is kept in a saved notebook.
import { updatableDisplay } from "../plot/display.ts";
import type { StudyProgress } from "./quantization.ts";

const escapeHtml = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

export interface ProgressBar {
  /** done of total, with a short label of what is happening now */
  update(done: number, total: number, label: string): void;
  /** the final line */
  finish(label: string): void;
}

/** A bar titled `title`; redraws at most every `intervalMs` (the last update is always drawn by finish). */
export function progressBar(title: string, intervalMs = 150): ProgressBar {
  const display = updatableDisplay();
  const tty = !display && process.stderr.isTTY === true;
  let last = 0;
  const draw = (done: number, total: number, label: string) => {
    const frac = total > 0 ? Math.min(1, done / total) : 1;
    if (display) {
      // text/plain too: an untrusted notebook shows no HTML.
      display.show({
        "text/html": `<div style="font-family:monospace"><b>${escapeHtml(title)}</b> ` +
          `<progress value="${frac.toFixed(3)}" max="1" style="width:240px;vertical-align:middle"></progress> ` +
          `${Math.round(100 * frac)}% ${escapeHtml(label)}</div>`,
        "text/plain": `${title}: ${Math.round(100 * frac)}% ${label}`,
      });
    } else if (tty) {
      const width = 30;
      const filled = Math.round(width * frac);
      process.stderr.write(`\r${title} [${"#".repeat(filled)}${".".repeat(width - filled)}] ${String(Math.round(100 * frac)).padStart(3)}% ${label.slice(0, 40).padEnd(40)}`);
    }
  };
  return {
    update(done, total, label) {
      const now = performance.now();
      if (now - last < intervalMs) return;
      last = now;
      draw(done, total, label);
    },
    finish(label) {
      draw(1, 1, label);
      if (tty) process.stderr.write("\n");
    },
  };
}

/**
 * A progress bar driven by runQuantizationStudy's events: quantizing is the first fifth of the bar,
 * measuring the rest, each split evenly over the levels.
 */
export function studyProgressBar(levels: readonly string[], title = "quantization study"): { onProgress: (e: StudyProgress) => void; finish: (label: string) => void } {
  const bar = progressBar(title);
  const all = ["F32", ...levels.filter((l) => l !== "F32")];
  return {
    onProgress(e) {
      const within = all.indexOf(e.level) + (e.total > 0 ? e.done / e.total : 1);
      const frac = e.phase === "quantize" ? (0.2 * within) / all.length : 0.2 + (0.8 * within) / all.length;
      bar.update(frac, 1, e.phase === "quantize" ? `quantizing ${e.level}${e.cached ? " (cached)" : ""}` : `${e.level} · ${e.engine} · ${e.step}`);
    },
    finish: (label) => bar.finish(label),
  };
}
