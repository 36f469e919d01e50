// Reference solutions for tasks 1.1 (Q8_0) and 1.2 (Q4_0): the two simplest ggml block formats,
// written so each byte can be traced to a line. The grader compares bytes with ggml's
// own, recorded from node-llama-cpp's libggml (test/exercises/ggml-vectors.json).
import { fp16ToFp32, fp32ToFp16 } from "../../lab/quant/float.ts";

export const QK8_0 = 32; // weights per Q8_0 block
export const Q8_0_BLOCK_BYTES = 2 + QK8_0; // fp16 scale d, then 32 × int8
export const QK4_0 = 32; // weights per Q4_0 block
export const Q4_0_BLOCK_BYTES = 2 + QK4_0 / 2; // fp16 scale d, then 16 bytes of packed nibbles

function blocksOf(n: number, qk: number, what: string): number {
  if (!Number.isInteger(n) || n < 0 || n % qk !== 0) throw new RangeError(`${what}: row length ${n} is not a multiple of ${qk}`);
  return n / qk;
}

/** Task 1.1a — Q8_0: per block d = max|x| / 127 (stored fp16), q = round(x / d) as int8. */
export function quantizeQ8_0Row(x: Float32Array): Uint8Array {
  const nb = blocksOf(x.length, QK8_0, "Q8_0");
  const out = new Uint8Array(nb * Q8_0_BLOCK_BYTES);
  const view = new DataView(out.buffer);
  for (let b = 0; b < nb; b++) {
    let amax = 0;
    for (let j = 0; j < QK8_0; j++) amax = Math.max(amax, Math.abs(x[b * QK8_0 + j]!));
    const d = Math.fround(amax / 127);
    const id = d ? Math.fround(1 / d) : 0;
    const base = b * Q8_0_BLOCK_BYTES;
    view.setUint16(base, fp32ToFp16(d), true);
    for (let j = 0; j < QK8_0; j++) {
      const v = Math.fround(x[b * QK8_0 + j]! * id);
      // C's roundf: halves away from zero (Math.round would send -2.5 to -2).
      view.setInt8(base + 2 + j, Math.sign(v) * Math.round(Math.abs(v)));
    }
  }
  return out;
}

/** Task 1.1b — Q8_0 back to f32: x = d × q. */
export function dequantizeQ8_0Row(bytes: Uint8Array, n: number): Float32Array {
  const nb = blocksOf(n, QK8_0, "Q8_0");
  if (bytes.length < nb * Q8_0_BLOCK_BYTES) throw new RangeError(`Q8_0: ${n} weights need ${nb * Q8_0_BLOCK_BYTES} bytes, got ${bytes.length}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(n);
  for (let b = 0; b < nb; b++) {
    const base = b * Q8_0_BLOCK_BYTES;
    const d = fp16ToFp32(view.getUint16(base, true));
    for (let j = 0; j < QK8_0; j++) out[b * QK8_0 + j] = d * view.getInt8(base + 2 + j);
  }
  return out;
}

/**
 * Task 1.2a — Q4_0: per block take the value m with the largest magnitude (keeping its sign),
 * d = m / −8 (fp16), q = min(15, trunc(x / d + 8.5)) in 0..15. Byte j holds weight j in its low
 * nibble and weight j + 16 in its high nibble.
 */
export function quantizeQ4_0Row(x: Float32Array): Uint8Array {
  const nb = blocksOf(x.length, QK4_0, "Q4_0");
  const out = new Uint8Array(nb * Q4_0_BLOCK_BYTES);
  const view = new DataView(out.buffer);
  for (let b = 0; b < nb; b++) {
    let amax = 0, max = 0;
    for (let j = 0; j < QK4_0; j++) {
      const v = x[b * QK4_0 + j]!;
      if (amax < Math.abs(v)) { amax = Math.abs(v); max = v; }
    }
    const d = Math.fround(max / -8);
    const id = d ? Math.fround(1 / d) : 0;
    const base = b * Q4_0_BLOCK_BYTES;
    view.setUint16(base, fp32ToFp16(d), true);
    const nibble = (v: number) => Math.min(15, Math.trunc(Math.fround(Math.fround(v * id) + 8.5)));
    for (let j = 0; j < QK4_0 / 2; j++) {
      out[base + 2 + j] = nibble(x[b * QK4_0 + j]!) | (nibble(x[b * QK4_0 + j + QK4_0 / 2]!) << 4);
    }
  }
  return out;
}

/** Task 1.2b — Q4_0 back to f32: x = d × (q − 8). */
export function dequantizeQ4_0Row(bytes: Uint8Array, n: number): Float32Array {
  const nb = blocksOf(n, QK4_0, "Q4_0");
  if (bytes.length < nb * Q4_0_BLOCK_BYTES) throw new RangeError(`Q4_0: ${n} weights need ${nb * Q4_0_BLOCK_BYTES} bytes, got ${bytes.length}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(n);
  for (let b = 0; b < nb; b++) {
    const base = b * Q4_0_BLOCK_BYTES;
    const d = fp16ToFp32(view.getUint16(base, true));
    for (let j = 0; j < QK4_0 / 2; j++) {
      const byte = bytes[base + 2 + j]!;
      out[b * QK4_0 + j] = d * ((byte & 0x0f) - 8);
      out[b * QK4_0 + j + QK4_0 / 2] = d * ((byte >> 4) - 8);
    }
  }
  return out;
}
