// lab/study: the end-to-end studies behind the notebooks, one module per question.
//   quantization.ts  notebook 01: quantize a model to a ladder of levels and measure each on both engines
//   analysis.ts      relative quality, memory at a serving shape, the level chooser's table, claims check
//   anatomy.ts       one Q4_0 and one Q4_K block of real weights, field by field
//   figures.ts       the study's figures (Plot options from rows)
//   progress.ts      a progress bar that redraws in place in tslab
export * from "./quantization.ts";
export * from "./analysis.ts";
export * from "./anatomy.ts";
export * from "./figures.ts";
export * from "./progress.ts";
