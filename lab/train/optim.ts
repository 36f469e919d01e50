// AdamW with a warmup + cosine learning-rate schedule and global-norm gradient clipping.
// Weight decay applies to matrices and embeddings only: decaying RMSNorm gains towards 0 would
// fight the normalisation they exist to rescale.
import type { Floats } from "./matmul.ts";
import type { ParamLayout } from "./model.ts";

export interface OptimizerSettings {
  lr: number; // peak learning rate
  minLr: number; // floor of the cosine
  warmupSteps: number;
  totalSteps: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  clipNorm: number; // rescale the gradient when its global L2 norm exceeds this
}

/** Linear warmup to lr over warmupSteps, then cosine down to minLr at totalSteps. step counts from 0. */
export function learningRate(o: OptimizerSettings, step: number): number {
  if (step < o.warmupSteps) return (o.lr * (step + 1)) / o.warmupSteps;
  const progress = Math.min(1, (step - o.warmupSteps) / Math.max(1, o.totalSteps - o.warmupSteps));
  return o.minLr + 0.5 * (o.lr - o.minLr) * (1 + Math.cos(Math.PI * progress));
}

export function globalNorm(grads: Floats): number {
  let ss = 0;
  for (let i = 0; i < grads.length; i++) ss += grads[i] * grads[i];
  return Math.sqrt(ss);
}

/** Adam moments, one entry per parameter. */
export interface AdamState {
  m: Float32Array; // [nParams] first moment
  v: Float32Array; // [nParams] second moment
}

export function newAdamState(nParams: number): AdamState {
  return { m: new Float32Array(nParams), v: new Float32Array(nParams) };
}

/** One AdamW step at `step` (0-based): clips grads in place, updates params and moments.
 *  Returns the learning rate used and the gradient norm before clipping. */
export function adamwStep(o: OptimizerSettings, layout: ParamLayout, params: Floats, grads: Floats,
  state: AdamState, step: number): { lr: number; gradNorm: number } {
  const lr = learningRate(o, step);
  const gradNorm = globalNorm(grads);
  const clip = gradNorm > o.clipNorm ? o.clipNorm / gradNorm : 1;
  const t = step + 1;
  const c1 = 1 / (1 - Math.pow(o.beta1, t)), c2 = 1 / (1 - Math.pow(o.beta2, t));
  const { m, v } = state;
  for (const slot of layout.slots) {
    const decay = slot.kind === "norm" ? 0 : o.weightDecay;
    const end = slot.offset + slot.size;
    for (let i = slot.offset; i < end; i++) {
      const g = grads[i] * clip;
      m[i] = o.beta1 * m[i] + (1 - o.beta1) * g;
      v[i] = o.beta2 * v[i] + (1 - o.beta2) * g * g;
      params[i] -= lr * ((m[i] * c1) / (Math.sqrt(v[i] * c2) + o.eps) + decay * params[i]);
    }
  }
  return { lr, gradNorm };
}
