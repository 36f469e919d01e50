// A tiny WebAssembly assembler, shared by the trainer's matmul (lab/train/simd.ts) and LabEngine's
// kernels (lab/engine/simd.ts). Kernels are written as arrays of opcodes in TypeScript, so nothing
// binary is committed and every instruction can be read. Only what those kernels use is here:
// value types, opcodes, LEB128, instruction helpers, and a module with one imported memory
// ("env"."memory") and exported functions that take i32 arguments.

export const I32 = 0x7f, V128 = 0x7b;

export const OP = {
  block: 0x02, loop: 0x03, end: 0x0b, brIf: 0x0d, select: 0x1b,
  localGet: 0x20, localSet: 0x21, localTee: 0x22,
  i32Load: 0x28, f32Load: 0x2a, i32Load8S: 0x2c, i32Load8U: 0x2d, i32Load16U: 0x2f, f32Store: 0x38,
  i32Const: 0x41, f32Const: 0x43, i32LtU: 0x49, i32GeU: 0x4f,
  i32Add: 0x6a, i32Mul: 0x6c, i32And: 0x71, i32Or: 0x72, i32Shl: 0x74, i32ShrU: 0x76,
  f32Add: 0x92, f32Sub: 0x93, f32Mul: 0x94, f32ConvertI32S: 0xb2, f32ConvertI32U: 0xb3,
  simd: 0xfd,
} as const;

/** SIMD instructions follow the 0xfd prefix as a LEB128 sub-opcode. */
export const SIMD = {
  v128Load: 0x00, v128Load8x8S: 0x01, v128Load16x4U: 0x04, v128Store: 0x0b, v128Const: 0x0c,
  i8x16Splat: 0x0f, i32x4Splat: 0x11, f32x4Splat: 0x13, f32x4ExtractLane: 0x1f, v128And: 0x4e, v128Or: 0x50,
  i8x16Shl: 0x6b, i8x16ShrU: 0x6d, i8x16Sub: 0x71, i32x4Shl: 0xab,
  i16x8ExtendLowI8x16S: 0x87, i16x8ExtendHighI8x16S: 0x88, i16x8ExtendLowI8x16U: 0x89, i16x8ExtendHighI8x16U: 0x8a,
  i32x4ExtendLowI16x8S: 0xa7, i32x4ExtendHighI16x8S: 0xa8, i32x4ExtendLowI16x8U: 0xa9, i32x4ExtendHighI16x8U: 0xaa,
  f32x4Add: 0xe4, f32x4Sub: 0xe5, f32x4Mul: 0xe6, f32x4ConvertI32x4S: 0xfa,
} as const;

/** Unsigned LEB128. */
export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

/** Signed LEB128. */
export function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) { out.push(byte); return out; }
    out.push(byte | 0x80);
  }
}

export const vec = (items: number[][]) => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];
const utf8 = (s: string) => vec([...Buffer.from(s, "utf8")].map((b) => [b]));

// Instruction helpers (each returns bytes).
export const get = (l: number) => [OP.localGet, ...uleb(l)];
export const set = (l: number) => [OP.localSet, ...uleb(l)];
export const tee = (l: number) => [OP.localTee, ...uleb(l)];
export const i32 = (n: number) => [OP.i32Const, ...sleb(n)];
export const simd = (sub: number, ...imm: number[]) => [OP.simd, ...uleb(sub), ...imm];

/** A function taking `params` i32 arguments and returning nothing: its type and its sized code. */
export interface WasmFunction { type: number[]; code: number[] }

/** Locals as [count, value type] runs; `body` without the final `end`. */
export function wasmFunction(params: number, locals: [count: number, type: number][], body: number[]): WasmFunction {
  const type = [0x60, ...vec(new Array(params).fill([I32])), ...vec([])];
  const code = [...vec(locals.map(([n, t]) => [...uleb(n), t])), ...body, OP.end];
  return { type, code: [...uleb(code.length), ...code] };
}

/** A module importing one memory as env.memory and exporting each function under its key. */
export function assembleModule(functions: Record<string, WasmFunction>): Uint8Array<ArrayBuffer> {
  const list = Object.entries(functions);
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // "\0asm", version 1
    ...section(1, vec(list.map(([, f]) => f.type))),
    ...section(2, vec([[...utf8("env"), ...utf8("memory"), 0x02, 0x00, ...uleb(1)]])),
    ...section(3, vec(list.map((_, i) => uleb(i)))),
    ...section(7, vec(list.map(([name], i) => [...utf8(name), 0x00, ...uleb(i)]))),
    ...section(10, vec(list.map(([, f]) => f.code))),
  ]);
}

/** The compiled module, or null where this runtime has no WebAssembly SIMD (callers fall back to JS). */
export function compileModule(bytes: Uint8Array<ArrayBuffer>): WebAssembly.Module | null {
  return WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
}
