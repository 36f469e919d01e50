// The one matrix kernel the trainer needs: C[M][N] (+)= A[M][K] · B[N][K]ᵀ, both operands read along K.
// Every other product is this one after a cheap transpose (a weight transpose costs O(params), the
// product O(rows · params)): forward y = x·Wᵀ, input gradient dx = dy·(Wᵀ)ᵀ, weight gradient
// dW = dyᵀ·(xᵀ)ᵀ. A plain triple loop does one multiply-add per two loads; the 4×4 register block
// below keeps 16 accumulators live and does 16 multiply-adds per 8 loads, ~2.5× faster in V8.
// Generic over Float32Array (training) and Float64Array (gradient checks). When all three operands
// are f32 views of one SimdArena (lab/train/simd.ts), the bulk runs in the WebAssembly SIMD kernel
// and only the ragged edges here.
import { simdKernelFor } from "./simd.ts";

export type Floats = Float32Array | Float64Array;

/** C[M][N] = A[M][K]·B[N][K]ᵀ, or C += … when accumulate. Row-major, tightly packed. */
export function matmulNT(C: Floats, A: Floats, B: Floats, M: number, N: number, K: number, accumulate = false): void {
  const kernel = K % 4 === 0 && M >= 2 && N >= 4 ? simdKernelFor(C, A, B) : undefined;
  if (kernel) {
    const M2 = M - (M % 2), N4 = N - (N % 4);
    kernel(C.byteOffset, A.byteOffset, B.byteOffset, M2, N, K, accumulate ? 1 : 0, N4);
    matmulEdges(C, A, B, M, N, K, accumulate, M2, N4);
    return;
  }
  const M4 = M - (M % 4), N4 = N - (N % 4);
  for (let i = 0; i < M4; i += 4) {
    const a0 = i * K, a1 = a0 + K, a2 = a1 + K, a3 = a2 + K;
    for (let j = 0; j < N4; j += 4) {
      const b0 = j * K, b1 = b0 + K, b2 = b1 + K, b3 = b2 + K;
      let c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
      let c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
      for (let k = 0; k < K; k++) {
        const x0 = A[a0 + k], x1 = A[a1 + k], x2 = A[a2 + k], x3 = A[a3 + k];
        const y0 = B[b0 + k], y1 = B[b1 + k], y2 = B[b2 + k], y3 = B[b3 + k];
        c00 += x0 * y0; c01 += x0 * y1; c02 += x0 * y2; c03 += x0 * y3;
        c10 += x1 * y0; c11 += x1 * y1; c12 += x1 * y2; c13 += x1 * y3;
        c20 += x2 * y0; c21 += x2 * y1; c22 += x2 * y2; c23 += x2 * y3;
        c30 += x3 * y0; c31 += x3 * y1; c32 += x3 * y2; c33 += x3 * y3;
      }
      const r0 = i * N + j, r1 = r0 + N, r2 = r1 + N, r3 = r2 + N;
      if (accumulate) {
        C[r0] += c00; C[r0 + 1] += c01; C[r0 + 2] += c02; C[r0 + 3] += c03;
        C[r1] += c10; C[r1 + 1] += c11; C[r1 + 2] += c12; C[r1 + 3] += c13;
        C[r2] += c20; C[r2 + 1] += c21; C[r2 + 2] += c22; C[r2 + 3] += c23;
        C[r3] += c30; C[r3 + 1] += c31; C[r3 + 2] += c32; C[r3 + 3] += c33;
      } else {
        C[r0] = c00; C[r0 + 1] = c01; C[r0 + 2] = c02; C[r0 + 3] = c03;
        C[r1] = c10; C[r1 + 1] = c11; C[r1 + 2] = c12; C[r1 + 3] = c13;
        C[r2] = c20; C[r2 + 1] = c21; C[r2 + 2] = c22; C[r2 + 3] = c23;
        C[r3] = c30; C[r3 + 1] = c31; C[r3 + 2] = c32; C[r3 + 3] = c33;
      }
    }
  }
  matmulEdges(C, A, B, M, N, K, accumulate, M4, N4);
}

/** The outputs outside the first mBlock rows × nBlock columns, as plain dot products. */
function matmulEdges(C: Floats, A: Floats, B: Floats, M: number, N: number, K: number, accumulate: boolean,
  mBlock: number, nBlock: number): void {
  for (let i = 0; i < M; i++) {
    for (let j = i < mBlock ? nBlock : 0; j < N; j++) {
      let s = 0;
      const a = i * K, b = j * K;
      for (let k = 0; k < K; k++) s += A[a + k] * B[b + k];
      if (accumulate) C[i * N + j] += s; else C[i * N + j] = s;
    }
  }
}

/** The textbook triple loop, kept as the correctness oracle and the benchmark baseline. */
export function matmulNTNaive(C: Floats, A: Floats, B: Floats, M: number, N: number, K: number, accumulate = false): void {
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += A[i * K + k] * B[j * K + k];
      if (accumulate) C[i * N + j] += s; else C[i * N + j] = s;
    }
  }
}

/** dst[cols][rows] = src[rows][cols]ᵀ. */
export function transpose(dst: Floats, src: Floats, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let c = 0; c < cols; c++) dst[c * rows + r] = src[base + c];
  }
}
