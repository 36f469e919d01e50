// The matmul kernel again, as WebAssembly SIMD: C[M][N] (+)= A[M][K]·B[N][K]ᵀ over f32x4 lanes.
// V8 turns each f32x4 op into one SSE instruction, so a 2×4 block (8 vector accumulators, 2+4
// vector loads per 4 values of K) does 4× the work per instruction of the scalar JS kernel. The
// module is ~300 bytes, assembled below from its opcodes so nothing binary is committed and every
// instruction can be read. Operands must live in the arena's WebAssembly.Memory; matmul.ts falls
// back to JS for anything else (Float64Array, ragged edges).
//
// Sections: the kernel · the arena (a Float32Array allocator over wasm memory).

// The assembler is shared with LabEngine's kernels: lab/wasm.ts.
import { I32, OP, SIMD, V128, assembleModule, compileModule, get, i32, set, simd, wasmFunction, type WasmFunction } from "../wasm.ts";

// ─── The kernel ──────────────────────────────────────────────────────────────────────────────────
// matmul_nt(c, a, b, M, N, K, accumulate, nCols): byte pointers c, a, b; C's rows are N floats apart
// but only columns [0, nCols) are computed. Requires M % 2 == 0, nCols % 4 == 0, K % 4 == 0, all > 0. For each 2×4 output block it runs over K four floats at a time, then sums
// each accumulator's four lanes.

function matmulKernel(): WasmFunction {
  // Locals: params 0..7 = c a b M N K acc nCols; then i32 i, j, k, kBytes, a0, a1, b0, b1, b2, b3,
  // cRow; then v128 acc[2][4], x0, x1, y.
  const [c, a, b, M, N, , accumulate, nCols] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [i, j, k, kBytes, a0, a1, b0, b1, b2, b3, cRow] = [8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18];
  const acc = (r: number, col: number) => 19 + r * 4 + col;
  const [x0, x1, y] = [27, 28, 29];
  const v128Load = (ptr: number[]) => [...ptr, ...simd(SIMD.v128Load, 0, 0)]; // align hint 1, offset 0
  const lane = (v: number, l: number) => [...get(v), ...simd(SIMD.f32x4ExtractLane, l)];
  const hsum = (v: number) => [...lane(v, 0), ...lane(v, 1), OP.f32Add, ...lane(v, 2), OP.f32Add, ...lane(v, 3), OP.f32Add];
  const storeOut = (r: number, col: number) => [
    // f32 at cRow + r·N·4 + col·4 ← hsum(acc) + (accumulate ? old : 0)
    ...get(cRow), ...(r ? [...get(N), ...i32(2), OP.i32Shl, OP.i32Add] : []), ...i32(col * 4), OP.i32Add,
    ...hsum(acc(r, col)),
    ...get(cRow), ...(r ? [...get(N), ...i32(2), OP.i32Shl, OP.i32Add] : []), ...i32(col * 4), OP.i32Add,
    OP.f32Load, 2, 0, OP.f32Const, 0, 0, 0, 0, ...get(accumulate), OP.select, OP.f32Add,
    OP.f32Store, 2, 0,
  ];
  const zero16 = new Array(16).fill(0);
  const body: number[] = [
    ...get(5), ...i32(2), OP.i32Shl, ...set(kBytes),
    ...i32(0), ...set(i),
    OP.loop, 0x40,
    //   a0 = a + i·kBytes; a1 = a0 + kBytes
    ...get(a), ...get(i), ...get(kBytes), OP.i32Mul, OP.i32Add, OP.localTee, a0, ...get(kBytes), OP.i32Add, ...set(a1),
    ...i32(0), ...set(j),
    OP.loop, 0x40,
    //     b0..b3 = b + j·kBytes + {0,1,2,3}·kBytes
    ...get(b), ...get(j), ...get(kBytes), OP.i32Mul, OP.i32Add, OP.localTee, b0, ...get(kBytes), OP.i32Add,
    OP.localTee, b1, ...get(kBytes), OP.i32Add, OP.localTee, b2, ...get(kBytes), OP.i32Add, ...set(b3),
  ];
  for (let r = 0; r < 2; r++) for (let col = 0; col < 4; col++) body.push(...simd(SIMD.v128Const, ...zero16), ...set(acc(r, col)));
  body.push(...i32(0), ...set(k), OP.loop, 0x40);
  body.push(...v128Load([...get(a0), ...get(k), OP.i32Add]), ...set(x0));
  body.push(...v128Load([...get(a1), ...get(k), OP.i32Add]), ...set(x1));
  [b0, b1, b2, b3].forEach((bp, col) => {
    body.push(...v128Load([...get(bp), ...get(k), OP.i32Add]), ...set(y));
    for (const [r, x] of [[0, x0], [1, x1]]) {
      body.push(...get(acc(r, col)), ...get(x), ...get(y), ...simd(SIMD.f32x4Mul), ...simd(SIMD.f32x4Add), ...set(acc(r, col)));
    }
  });
  body.push(...get(k), ...i32(16), OP.i32Add, OP.localTee, k, ...get(kBytes), OP.i32LtU, OP.brIf, 0, OP.end);
  //     cRow = c + (i·N + j)·4
  body.push(...get(c), ...get(i), ...get(N), OP.i32Mul, ...get(j), OP.i32Add, ...i32(2), OP.i32Shl, OP.i32Add, ...set(cRow));
  for (let r = 0; r < 2; r++) for (let col = 0; col < 4; col++) body.push(...storeOut(r, col));
  body.push(...get(j), ...i32(4), OP.i32Add, OP.localTee, j, ...get(nCols), OP.i32LtU, OP.brIf, 0, OP.end);
  body.push(...get(i), ...i32(2), OP.i32Add, OP.localTee, i, ...get(M), OP.i32LtU, OP.brIf, 0, OP.end);
  return wasmFunction(8, [[11, I32], [11, V128]], body);
}

let compiled: WebAssembly.Module | null | undefined;

/** The compiled module, or null where WebAssembly SIMD is unavailable. */
function simdModule(): WebAssembly.Module | null {
  if (compiled === undefined) {
    compiled = compileModule(assembleModule({ matmul_nt: matmulKernel() }));
  }
  return compiled;
}

// ─── The arena ───────────────────────────────────────────────────────────────────────────────────

type MatmulFn = (c: number, a: number, b: number, M: number, N: number, K: number, acc: number, nCols: number) => void;

/** A fixed-size WebAssembly.Memory handing out 16-byte-aligned Float32Arrays, plus the kernel
 *  instance bound to it. Never grows: growing would detach every view handed out. */
export class SimdArena {
  readonly memory: WebAssembly.Memory;
  readonly buffer: ArrayBuffer;
  readonly kernel: MatmulFn;
  private used = 0;

  private constructor(bytes: number, module: WebAssembly.Module) {
    const pages = Math.max(1, Math.ceil(bytes / 65536));
    this.memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
    this.buffer = this.memory.buffer;
    const instance = new WebAssembly.Instance(module, { env: { memory: this.memory } });
    this.kernel = instance.exports.matmul_nt as MatmulFn;
    arenas.set(this.buffer, this.kernel);
  }

  /** An arena of `floats` f32 (plus alignment slack), or null without WebAssembly SIMD. */
  static create(floats: number, allocations: number): SimdArena | null {
    const module = simdModule();
    return module ? new SimdArena(4 * floats + 16 * (allocations + 1), module) : null;
  }

  alloc(n: number): Float32Array {
    const offset = Math.ceil(this.used / 16) * 16;
    if (offset + 4 * n > this.buffer.byteLength) throw new RangeError(`SimdArena: out of memory allocating ${n} floats`);
    this.used = offset + 4 * n;
    return new Float32Array(this.buffer, offset, n);
  }
}

const arenas = new WeakMap<ArrayBufferLike, MatmulFn>();

/** The kernel when all three arrays are views of the same arena, else undefined. */
export function simdKernelFor(c: ArrayBufferView, a: ArrayBufferView, b: ArrayBufferView): MatmulFn | undefined {
  const kernel = arenas.get(c.buffer);
  return kernel && a.buffer === c.buffer && b.buffer === c.buffer ? kernel : undefined;
}

export function simdAvailable(): boolean {
  return simdModule() !== null;
}
