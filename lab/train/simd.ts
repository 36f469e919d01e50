// The matmul kernel again, as WebAssembly SIMD: C[M][N] (+)= A[M][K]·B[N][K]ᵀ over f32x4 lanes.
// V8 turns each f32x4 op into one SSE instruction, so a 2×4 block (8 vector accumulators, 2+4
// vector loads per 4 values of K) does 4× the work per instruction of the scalar JS kernel. The
// module is ~300 bytes, assembled below from its opcodes so nothing binary is committed and every
// instruction can be read. Operands must live in the arena's WebAssembly.Memory; matmul.ts falls
// back to JS for anything else (Float64Array, ragged edges).
//
// Sections: a tiny assembler · the kernel · the arena (a Float32Array allocator over wasm memory).

// ─── A tiny assembler ────────────────────────────────────────────────────────────────────────────

const I32 = 0x7f, V128 = 0x7b;
const op = {
  block: 0x02, loop: 0x03, end: 0x0b, brIf: 0x0d,
  localGet: 0x20, localSet: 0x21, localTee: 0x22,
  i32Const: 0x41, f32Const: 0x43,
  i32Add: 0x6a, i32Mul: 0x6c, i32LtU: 0x49, i32Shl: 0x74,
  f32Load: 0x2a, f32Store: 0x38, f32Add: 0x92, select: 0x1b,
  simd: 0xfd,
} as const;
// SIMD sub-opcodes (after the 0xfd prefix, LEB128-encoded).
const simdOp = { v128Load: 0x00, v128Const: 0x0c, f32x4ExtractLane: 0x1f, f32x4Add: 0xe4, f32x4Mul: 0xe6 } as const;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) { out.push(byte); return out; }
    out.push(byte | 0x80);
  }
}

const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];
const vec = (items: number[][]) => [...uleb(items.length), ...items.flat()];
const name = (s: string) => vec([...Buffer.from(s, "utf8")].map((b) => [b]));

// ─── The kernel ──────────────────────────────────────────────────────────────────────────────────
// matmul_nt(c, a, b, M, N, K, accumulate, nCols): byte pointers c, a, b; C's rows are N floats apart
// but only columns [0, nCols) are computed. Requires M % 2 == 0, nCols % 4 == 0, K % 4 == 0, all > 0. For each 2×4 output block it runs over K four floats at a time, then sums
// each accumulator's four lanes.

function kernelBody(): number[] {
  // Locals: params 0..7 = c a b M N K acc nCols; then i32 i, j, k, kBytes, a0, a1, b0, b1, b2, b3,
  // cRow; then v128 acc[2][4], x0, x1, y.
  const [c, a, b, M, N, , accumulate, nCols] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [i, j, k, kBytes, a0, a1, b0, b1, b2, b3, cRow] = [8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18];
  const acc = (r: number, col: number) => 19 + r * 4 + col;
  const [x0, x1, y] = [27, 28, 29];
  const get = (l: number) => [op.localGet, ...uleb(l)];
  const set = (l: number) => [op.localSet, ...uleb(l)];
  const i32 = (n: number) => [op.i32Const, ...sleb(n)];
  const simd = (sub: number, ...imm: number[]) => [op.simd, ...uleb(sub), ...imm];
  const v128Load = (ptr: number[]) => [...ptr, ...simd(simdOp.v128Load, 0, 0)]; // align hint 1, offset 0
  const lane = (v: number, l: number) => [...get(v), ...simd(simdOp.f32x4ExtractLane, l)];
  const hsum = (v: number) => [...lane(v, 0), ...lane(v, 1), op.f32Add, ...lane(v, 2), op.f32Add, ...lane(v, 3), op.f32Add];
  const storeOut = (r: number, col: number) => [
    // f32 at cRow + r·N·4 + col·4 ← hsum(acc) + (accumulate ? old : 0)
    ...get(cRow), ...(r ? [...get(N), ...i32(2), op.i32Shl, op.i32Add] : []), ...i32(col * 4), op.i32Add,
    ...hsum(acc(r, col)),
    ...get(cRow), ...(r ? [...get(N), ...i32(2), op.i32Shl, op.i32Add] : []), ...i32(col * 4), op.i32Add,
    op.f32Load, 2, 0, op.f32Const, 0, 0, 0, 0, ...get(accumulate), op.select, op.f32Add,
    op.f32Store, 2, 0,
  ];
  const zero16 = new Array(16).fill(0);
  const body: number[] = [
    ...get(5), ...i32(2), op.i32Shl, ...set(kBytes),
    ...i32(0), ...set(i),
    op.loop, 0x40,
    //   a0 = a + i·kBytes; a1 = a0 + kBytes
    ...get(a), ...get(i), ...get(kBytes), op.i32Mul, op.i32Add, op.localTee, a0, ...get(kBytes), op.i32Add, ...set(a1),
    ...i32(0), ...set(j),
    op.loop, 0x40,
    //     b0..b3 = b + j·kBytes + {0,1,2,3}·kBytes
    ...get(b), ...get(j), ...get(kBytes), op.i32Mul, op.i32Add, op.localTee, b0, ...get(kBytes), op.i32Add,
    op.localTee, b1, ...get(kBytes), op.i32Add, op.localTee, b2, ...get(kBytes), op.i32Add, ...set(b3),
  ];
  for (let r = 0; r < 2; r++) for (let col = 0; col < 4; col++) body.push(...simd(simdOp.v128Const, ...zero16), ...set(acc(r, col)));
  body.push(...i32(0), ...set(k), op.loop, 0x40);
  body.push(...v128Load([...get(a0), ...get(k), op.i32Add]), ...set(x0));
  body.push(...v128Load([...get(a1), ...get(k), op.i32Add]), ...set(x1));
  [b0, b1, b2, b3].forEach((bp, col) => {
    body.push(...v128Load([...get(bp), ...get(k), op.i32Add]), ...set(y));
    for (const [r, x] of [[0, x0], [1, x1]]) {
      body.push(...get(acc(r, col)), ...get(x), ...get(y), ...simd(simdOp.f32x4Mul), ...simd(simdOp.f32x4Add), ...set(acc(r, col)));
    }
  });
  body.push(...get(k), ...i32(16), op.i32Add, op.localTee, k, ...get(kBytes), op.i32LtU, op.brIf, 0, op.end);
  //     cRow = c + (i·N + j)·4
  body.push(...get(c), ...get(i), ...get(N), op.i32Mul, ...get(j), op.i32Add, ...i32(2), op.i32Shl, op.i32Add, ...set(cRow));
  for (let r = 0; r < 2; r++) for (let col = 0; col < 4; col++) body.push(...storeOut(r, col));
  body.push(...get(j), ...i32(4), op.i32Add, op.localTee, j, ...get(nCols), op.i32LtU, op.brIf, 0, op.end);
  body.push(...get(i), ...i32(2), op.i32Add, op.localTee, i, ...get(M), op.i32LtU, op.brIf, 0, op.end);
  body.push(op.end);
  const locals = vec([[...uleb(11), I32], [...uleb(11), V128]]);
  return [...locals, ...body];
}

function assembleModule(): Uint8Array<ArrayBuffer> {
  const fnType = [0x60, ...vec(new Array(8).fill([I32])), ...vec([])];
  const body = kernelBody();
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([fnType])),
    ...section(2, vec([[...name("env"), ...name("memory"), 0x02, 0x00, ...uleb(1)]])),
    ...section(3, vec([uleb(0)])),
    ...section(7, vec([[...name("matmul_nt"), 0x00, ...uleb(0)]])),
    ...section(10, vec([[...uleb(body.length), ...body]])),
  ];
  return new Uint8Array(bytes);
}

let compiled: WebAssembly.Module | null | undefined;

/** The compiled module, or null where WebAssembly SIMD is unavailable. */
function simdModule(): WebAssembly.Module | null {
  if (compiled === undefined) {
    const bytes = assembleModule();
    compiled = WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
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
