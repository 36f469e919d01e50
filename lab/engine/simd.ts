// LabEngine's hot loops as WebAssembly SIMD: one matrix (F32 or Q8_0, rows = outputs) times T
// activation vectors. V8 compiles each f32x4 instruction to one SSE instruction, so four weights are
// multiplied and added per instruction instead of one — the gap that leaves plain JavaScript
// far behind llama.cpp's AVX kernels. The module is assembled below from its opcodes (a few hundred
// bytes, nothing binary committed) so every instruction can be read.
//
// Sections: 1. instruction helpers · 2. the two kernels · 3. the arena (one WebAssembly.Memory holding
// the fp16 table, every weight matrix, and the activation buffers).
//
// Both kernels compute each (row, token) dot product with the same instruction sequence whatever T
// is, so a batched decode gives bit-identical results to one-at-a-time decode.

// =============================================================================================
// 1. Instruction helpers (the assembler, shared with the trainer, is lab/wasm.ts).

import { I32, OP, SIMD, V128, assembleModule, compileModule, get, i32, set, simd, tee, uleb, wasmFunction as fn } from "../wasm.ts";

// Instruction helpers (each returns bytes).
const add = [OP.i32Add];
const mul = [OP.i32Mul];
/** memarg: alignment hint (log2) 0 = unaligned is fine, offset bytes */
const load = (offset = 0) => simd(SIMD.v128Load, 0, ...uleb(offset));
const load8x8s = (offset = 0) => simd(SIMD.v128Load8x8S, 0, ...uleb(offset));
const store = (offset = 0) => simd(SIMD.v128Store, 0, ...uleb(offset));
const fadd = simd(SIMD.f32x4Add);
const fmul = simd(SIMD.f32x4Mul);
const zero = simd(SIMD.v128Const, ...new Array(16).fill(0));
/** Horizontal sum of a v128 local: ((l0 + l1) + l2) + l3 as f32. */
const hsum = (v: number) => [
  ...get(v), ...simd(SIMD.f32x4ExtractLane, 0), ...get(v), ...simd(SIMD.f32x4ExtractLane, 1), OP.f32Add,
  ...get(v), ...simd(SIMD.f32x4ExtractLane, 2), OP.f32Add, ...get(v), ...simd(SIMD.f32x4ExtractLane, 3), OP.f32Add,
];
/** do { body } while (counter += step) < limit */
const loopWhile = (body: number[], counter: number, step: number[], limit: number[]) => [
  OP.loop, 0x40, ...body, ...get(counter), ...step, OP.i32Add, ...tee(counter), ...limit, OP.i32LtU, OP.brIf, 0, OP.end,
];

// =============================================================================================
// 2. The kernels

/**
 * matmul_f32(w, x, out, nIn, nOut, T, outStride): out[t·outStride + o] = Σ_i w[o][i]·x[t][i], byte
 * pointers (outStride in floats: a tile of rows can write its columns of a wider output).
 * Four rows at a time, and tokens two at a time: each f32x4 of the four weight rows is loaded once
 * and multiplied with two tokens' activations (eight running sums), so a load feeds two
 * multiply-adds instead of one; an odd last token runs alone. Each (row, token) sum still adds the
 * same products in the same order whether its token was paired or not, so results do not depend
 * on T. Requires nIn % 4 == 0, nOut % 4 == 0, T ≥ 1.
 * With `accumulate` (matmul_f32_acc) the products are added to out instead of stored: paged
 * attention sums P·V over a sequence's KV blocks this way, one block at a time.
 */
function matmulF32(accumulate = false) {
  const [w, x, out, nIn, nOut, T, outStride] = [0, 1, 2, 3, 4, 5, 6];
  const [o, t, k, rowBytes, xRow, outRow, xRow2, outRow2, pairLimit] = [7, 8, 9, 10, 11, 12, 13, 14, 15];
  const rows = [16, 17, 18, 19]; // i32: the four weight rows' pointers
  const acc = [20, 21, 22, 23]; // v128: their running sums for token t
  const acc2 = [24, 25, 26, 27]; // v128: … for token t + 1
  const [xv, xv2, wv] = [28, 29, 30];
  const storeSums = (sums: number[], row: number) => sums.flatMap((a, j) => accumulate
    ? [...get(row), ...get(row), OP.f32Load, 2, ...uleb(4 * j), ...hsum(a), OP.f32Add, OP.f32Store, 2, ...uleb(4 * j)]
    : [...get(row), ...hsum(a), OP.f32Store, 2, ...uleb(4 * j)]);
  // outRow = out + (t·outStride + o)·4
  const setOutRow = [...get(out), ...get(t), ...get(outStride), ...mul, ...get(o), ...add, ...i32(2), OP.i32Shl, ...add, ...set(outRow)];
  // xRow = x + t·rowBytes (activations are rows of nIn floats too)
  const setXRow = [...get(x), ...get(t), ...get(rowBytes), ...mul, ...add, ...set(xRow)];
  const perK = [
    ...get(xRow), ...get(k), ...add, ...load(), ...set(xv),
    ...acc.flatMap((a, j) => [...get(a), ...get(rows[j]), ...get(k), ...add, ...load(), ...get(xv), ...fmul, ...fadd, ...set(a)]),
  ];
  const oneToken = [
    ...acc.flatMap((a) => [...zero, ...set(a)]),
    ...i32(0), ...set(k),
    ...loopWhile(perK, k, i32(16), get(rowBytes)),
    ...setOutRow,
    ...storeSums(acc, outRow),
  ];
  const perKPair = [
    ...get(xRow), ...get(k), ...add, ...load(), ...set(xv),
    ...get(xRow2), ...get(k), ...add, ...load(), ...set(xv2),
    ...acc.flatMap((a, j) => [
      ...get(rows[j]), ...get(k), ...add, ...load(), ...set(wv),
      ...get(a), ...get(wv), ...get(xv), ...fmul, ...fadd, ...set(a),
      ...get(acc2[j]), ...get(wv), ...get(xv2), ...fmul, ...fadd, ...set(acc2[j]),
    ]),
  ];
  const twoTokens = [
    ...setXRow, ...get(xRow), ...get(rowBytes), ...add, ...set(xRow2),
    ...[...acc, ...acc2].flatMap((a) => [...zero, ...set(a)]),
    ...i32(0), ...set(k),
    ...loopWhile(perKPair, k, i32(16), get(rowBytes)),
    ...setOutRow, ...get(outRow), ...get(outStride), ...i32(2), OP.i32Shl, ...add, ...set(outRow2),
    ...storeSums(acc, outRow), ...storeSums(acc2, outRow2),
  ];
  const perRowGroup = [
    // rows[j] = w + (o + j)·rowBytes
    ...get(w), ...get(o), ...get(rowBytes), ...mul, ...add, ...tee(rows[0]),
    ...get(rowBytes), ...add, ...tee(rows[1]), ...get(rowBytes), ...add, ...tee(rows[2]), ...get(rowBytes), ...add, ...set(rows[3]),
    ...i32(0), ...set(t),
    // Pairs (t, t+1) while t + 1 < T, i.e. while t < T − 1; none when T < 2.
    OP.block, 0x40,
    ...get(T), ...i32(2), OP.i32LtU, OP.brIf, 0,
    ...get(T), ...i32(-1), ...add, ...set(pairLimit),
    ...loopWhile(twoTokens, t, i32(2), get(pairLimit)),
    OP.end,
    // The odd last token, if any (t < T).
    OP.block, 0x40,
    ...get(t), ...get(T), OP.i32GeU, OP.brIf, 0,
    ...setXRow, ...oneToken,
    OP.end,
  ];
  return fn(7, [[13, I32], [11, V128]], [
    ...get(nIn), ...i32(2), OP.i32Shl, ...set(rowBytes),
    ...i32(0), ...set(o),
    ...loopWhile(perRowGroup, o, i32(4), get(nOut)),
  ]);
}

/**
 * matmul_q8_0(w, x, out, nIn, nOut, T, table, accs): the same product for Q8_0 weights (blocks of
 * 34 bytes: fp16 scale d, then 32 int8 q; weight = q·d). Each block is decoded ONCE into eight
 * f32x4 vectors (load8x8_s → i32x4 extend → convert) and dotted with all T activation vectors;
 * accs holds one f32x4 running sum per token. d comes from `table`, the 65536-entry fp16 → f32
 * table. Requires nIn % 32 == 0, T ≥ 1; accs has room for 16·T bytes.
 */
function matmulQ8_0() {
  const [w, x, out, nIn, nOut, T, table, accs] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [o, t, b, rowBytes, p, xBlock, accPtr, xBytes, nBlocks] = [8, 9, 10, 11, 12, 13, 14, 15, 16];
  const q = [17, 18, 19, 20, 21, 22, 23, 24]; // v128: the block's 32 weights as 8 × f32x4
  const [d, sum, h] = [25, 26, 27];
  // 8 int8 → i16x8 (sign-extending load), then its low and high halves → i32x4 → f32x4.
  const decode = [0, 1, 2, 3].flatMap((j) => [
    ...get(p), ...load8x8s(2 + 8 * j), ...set(h),
    ...get(h), ...simd(SIMD.i32x4ExtendLowI16x8S), ...simd(SIMD.f32x4ConvertI32x4S), ...set(q[2 * j]),
    ...get(h), ...simd(SIMD.i32x4ExtendHighI16x8S), ...simd(SIMD.f32x4ConvertI32x4S), ...set(q[2 * j + 1]),
  ]);
  const perToken = [
    // xBlock = x + t·xBytes + b·128 ; accPtr = accs + 16·t
    ...get(x), ...get(t), ...get(xBytes), ...mul, ...add, ...get(b), ...i32(128), ...mul, ...add, ...set(xBlock),
    ...get(accs), ...get(t), ...i32(4), OP.i32Shl, ...add, ...set(accPtr),
    ...get(q[0]), ...get(xBlock), ...load(0), ...fmul, ...set(sum),
    ...q.slice(1).flatMap((ql, i) => [...get(sum), ...get(ql), ...get(xBlock), ...load(16 * (i + 1)), ...fmul, ...fadd, ...set(sum)]),
    ...get(accPtr), ...get(accPtr), ...load(), ...get(sum), ...get(d), ...fmul, ...fadd, ...store(),
  ];
  const perBlock = [
    // p = w + o·rowBytes + b·34
    ...get(w), ...get(o), ...get(rowBytes), ...mul, ...add, ...get(b), ...i32(34), ...mul, ...add, ...set(p),
    ...get(table), ...get(p), OP.i32Load16U, 1, 0, ...i32(2), OP.i32Shl, ...add, OP.f32Load, 2, 0, ...simd(SIMD.f32x4Splat), ...set(d),
    ...decode,
    ...i32(0), ...set(t),
    ...loopWhile(perToken, t, i32(1), get(T)),
  ];
  const perRow = [
    ...i32(0), ...set(t),
    ...loopWhile([...get(accs), ...get(t), ...i32(4), OP.i32Shl, ...add, ...zero, ...store()], t, i32(1), get(T)),
    ...i32(0), ...set(b),
    ...loopWhile(perBlock, b, i32(1), get(nBlocks)),
    ...i32(0), ...set(t),
    ...loopWhile([
      // out[t·nOut + o] = hsum(accs[t])
      ...get(accs), ...get(t), ...i32(4), OP.i32Shl, ...add, ...load(), ...set(sum),
      ...get(out), ...get(t), ...get(nOut), ...mul, ...get(o), ...add, ...i32(2), OP.i32Shl, ...add,
      ...hsum(sum), OP.f32Store, 2, 0,
    ], t, i32(1), get(T)),
  ];
  return fn(8, [[9, I32], [11, V128]], [
    ...get(nIn), ...i32(5), OP.i32ShrU, ...tee(nBlocks), ...i32(34), ...mul, ...set(rowBytes),
    ...get(nIn), ...i32(2), OP.i32Shl, ...set(xBytes),
    ...i32(0), ...set(o),
    ...loopWhile(perRow, o, i32(1), get(nOut)),
  ]);
}

/**
 * matvec_q4_k(w, x, out, nIn, nOut, table, xsums): one vector times a Q4_K matrix. A 144-byte block
 * holds 256 weights in 8 sub-blocks of 32: fp16 d and dmin, twelve bytes packing eight 6-bit scales
 * sc and mins m, then 128 bytes of 4-bit levels q (chunk c = bytes 32c..32c+31: weight 64c+l in the
 * low nibble, 64c+32+l in the high one). weight = d·sc·q − dmin·m, so a sub-block contributes
 *   d·sc·Σ q·x − dmin·m·Σ x.
 * Σ q·x runs in f32x4 lanes (nibbles → u16 → u32 → f32); Σ x per 32-weight sub-block is the same for
 * every row, so the caller computes it once into xsums. Requires nIn % 256 == 0.
 */
function matvecQ4K() {
  const [w, x, out, nIn, nOut, table, xsums] = [0, 1, 2, 3, 4, 5, 6];
  const [o, b, nBlocks, rowBytes, p, xb, sb] = [7, 8, 9, 10, 11, 12, 13];
  const [d, dmin, minTerm, rowMin] = [14, 15, 16, 17]; // f32
  const [acc, A, B, v, sumqx, mask, e] = [18, 19, 20, 21, 22, 23, 24]; // v128
  const byte = (off: number) => [...get(p), OP.i32Load8U, 0, ...uleb(4 + off)]; // scales[off]
  const and = (n: number) => [...i32(n), OP.i32And];
  const shr = (n: number) => [...i32(n), OP.i32ShrU];
  const shl = (n: number) => [...i32(n), OP.i32Shl];
  // The 6-bit scale and min of sub-block j (llama.cpp's get_scale_min_k4), as i32 on the stack.
  const scale = (j: number) => j < 4 ? [...byte(j), ...and(63)]
    : [...byte(j + 4), ...and(15), ...byte(j - 4), ...shr(6), ...shl(4), OP.i32Or];
  const min = (j: number) => j < 4 ? [...byte(j + 4), ...and(63)]
    : [...byte(j + 4), ...shr(4), ...byte(j), ...shr(6), ...shl(4), OP.i32Or];
  const fhalf = (off: number) => [...get(table), ...get(p), OP.i32Load16U, 1, ...uleb(off), ...i32(2), OP.i32Shl, ...add, OP.f32Load, 2, 0];
  // Σ over 16 levels in v (u8 lanes) × 16 floats of x starting at float xo of the block.
  const dot16 = (xo: number) => [
    ...get(v), ...simd(SIMD.i16x8ExtendLowI8x16U), ...set(e),
    ...get(sumqx), ...get(e), ...simd(SIMD.i32x4ExtendLowI16x8U), ...simd(SIMD.f32x4ConvertI32x4S), ...get(xb), ...load(4 * xo), ...fmul, ...fadd,
    ...get(e), ...simd(SIMD.i32x4ExtendHighI16x8U), ...simd(SIMD.f32x4ConvertI32x4S), ...get(xb), ...load(4 * xo + 16), ...fmul, ...fadd,
    ...get(v), ...simd(SIMD.i16x8ExtendHighI8x16U), ...set(e),
    ...get(e), ...simd(SIMD.i32x4ExtendLowI16x8U), ...simd(SIMD.f32x4ConvertI32x4S), ...get(xb), ...load(4 * xo + 32), ...fmul, ...fadd,
    ...get(e), ...simd(SIMD.i32x4ExtendHighI16x8U), ...simd(SIMD.f32x4ConvertI32x4S), ...get(xb), ...load(4 * xo + 48), ...fmul, ...fadd,
    ...set(sumqx),
  ];
  const subBlock = (j: number, nibble: (src: number) => number[]) => [
    ...zero, ...set(sumqx),
    ...nibble(A), ...set(v), ...dot16(32 * j),
    ...nibble(B), ...set(v), ...dot16(32 * j + 16),
    // acc += sumqx · (d·sc_j);  minTerm += m_j · Σx_j
    ...get(acc), ...get(sumqx), ...get(d), ...scale(j), OP.f32ConvertI32U, OP.f32Mul, ...simd(SIMD.f32x4Splat), ...fmul, ...fadd, ...set(acc),
    ...get(minTerm), ...min(j), OP.f32ConvertI32U, ...get(sb), OP.f32Load, 2, ...uleb(4 * j), OP.f32Mul, OP.f32Add, ...set(minTerm),
  ];
  const low = (src: number) => [...get(src), ...get(mask), ...simd(SIMD.v128And)];
  const high = (src: number) => [...get(src), ...i32(4), ...simd(SIMD.i8x16ShrU)];
  const perBlock = [
    // p = w + o·rowBytes + b·144 ; xb = x + b·1024 ; sb = xsums + b·32
    ...get(w), ...get(o), ...get(rowBytes), ...mul, ...add, ...get(b), ...i32(144), ...mul, ...add, ...set(p),
    ...get(x), ...get(b), ...i32(10), OP.i32Shl, ...add, ...set(xb),
    ...get(xsums), ...get(b), ...i32(5), OP.i32Shl, ...add, ...set(sb),
    ...fhalf(0), ...set(d), ...fhalf(2), ...set(dmin),
    OP.f32Const, 0, 0, 0, 0, ...set(minTerm),
    ...[0, 1, 2, 3].flatMap((c) => [
      ...get(p), ...load(16 + 32 * c), ...set(A), ...get(p), ...load(16 + 32 * c + 16), ...set(B),
      ...subBlock(2 * c, low), ...subBlock(2 * c + 1, high),
    ]),
    ...get(rowMin), ...get(dmin), ...get(minTerm), OP.f32Mul, OP.f32Add, ...set(rowMin),
  ];
  const perRow = [
    ...zero, ...set(acc), OP.f32Const, 0, 0, 0, 0, ...set(rowMin),
    ...i32(0), ...set(b),
    ...loopWhile(perBlock, b, i32(1), get(nBlocks)),
    ...get(out), ...get(o), ...i32(2), OP.i32Shl, ...add, ...hsum(acc), ...get(rowMin), OP.f32Sub, OP.f32Store, 2, 0,
  ];
  return fn(7, [[7, I32], [4, 0x7d], [7, V128]], [
    ...i32(15), ...simd(SIMD.i8x16Splat), ...set(mask),
    ...get(nIn), ...i32(8), OP.i32ShrU, ...tee(nBlocks), ...i32(144), ...mul, ...set(rowBytes),
    ...i32(0), ...set(o),
    ...loopWhile(perRow, o, i32(1), get(nOut)),
  ]);
}

/**
 * matvec_q6_k(w, x, out, nIn, nOut, table): one vector times a Q6_K matrix. A 210-byte block holds
 * 256 weights in 16 sub-blocks of 16: ql[128] (low 4 bits), qh[64] (high 2 bits), scales[16]
 * (signed int8), fp16 d. weight = d·sc·(q − 32). Bytes ql[l], ql[l+32], qh[l] of half h give the
 * weights 128h + l + {0, 32, 64, 96}; sixteen consecutive l form one sub-block. The 6-bit levels
 * are assembled with byte-lane masks and shifts, 16 at a time. Requires nIn % 256 == 0.
 */
function matvecQ6K() {
  const [w, x, out, nIn, nOut, table] = [0, 1, 2, 3, 4, 5];
  const [o, b, nBlocks, rowBytes, p, xb] = [6, 7, 8, 9, 10, 11];
  const d = 12; // f32
  const [acc, LO, HI, HB, v, sumqx, e] = [13, 14, 15, 16, 17, 18, 19]; // v128
  const splat8 = (n: number) => [...i32(n), ...simd(SIMD.i8x16Splat)];
  const andMask = (src: number, m: number) => [...get(src), ...splat8(m), ...simd(SIMD.v128And)];
  const dot16 = (xo: number) => [
    ...get(v), ...simd(SIMD.i16x8ExtendLowI8x16S), ...set(e),
    ...get(sumqx), ...get(e), ...simd(SIMD.i32x4ExtendLowI16x8S), ...simd(SIMD.f32x4ConvertI32x4S), ...get(xb), ...load(4 * xo), ...fmul, ...fadd,
    ...get(e), ...simd(SIMD.i32x4ExtendHighI16x8S), ...simd(SIMD.f32x4ConvertI32x4S), ...get(xb), ...load(4 * xo + 16), ...fmul, ...fadd,
    ...get(v), ...simd(SIMD.i16x8ExtendHighI8x16S), ...set(e),
    ...get(e), ...simd(SIMD.i32x4ExtendLowI16x8S), ...simd(SIMD.f32x4ConvertI32x4S), ...get(xb), ...load(4 * xo + 32), ...fmul, ...fadd,
    ...get(e), ...simd(SIMD.i32x4ExtendHighI16x8S), ...simd(SIMD.f32x4ConvertI32x4S), ...get(xb), ...load(4 * xo + 48), ...fmul, ...fadd,
    ...set(sumqx),
  ];
  // The four 16-level vectors of group (h, part), as u8 lanes 0..63.
  const levels = [
    [...andMask(LO, 0x0f), ...andMask(HB, 0x03), ...i32(4), ...simd(SIMD.i8x16Shl), ...simd(SIMD.v128Or)],
    [...andMask(HI, 0x0f), ...andMask(HB, 0x0c), ...i32(2), ...simd(SIMD.i8x16Shl), ...simd(SIMD.v128Or)],
    [...get(LO), ...i32(4), ...simd(SIMD.i8x16ShrU), ...andMask(HB, 0x30), ...simd(SIMD.v128Or)],
    [...get(HI), ...i32(4), ...simd(SIMD.i8x16ShrU), ...andMask(HB, 0xc0), ...i32(2), ...simd(SIMD.i8x16ShrU), ...simd(SIMD.v128Or)],
  ];
  const group = (h: number, part: number) => [
    ...get(p), ...load(64 * h + 16 * part), ...set(LO),
    ...get(p), ...load(64 * h + 32 + 16 * part), ...set(HI),
    ...get(p), ...load(128 + 32 * h + 16 * part), ...set(HB),
    ...levels.flatMap((lv, k) => [
      ...lv, ...splat8(32), ...simd(SIMD.i8x16Sub), ...set(v), // q − 32 as signed lanes
      ...zero, ...set(sumqx), ...dot16(128 * h + 16 * part + 32 * k),
      // acc += sumqx · (d·sc[8h + part + 2k])
      ...get(acc), ...get(sumqx), ...get(d), ...get(p), OP.i32Load8S, 0, ...uleb(192 + 8 * h + part + 2 * k), OP.f32ConvertI32S, OP.f32Mul,
      ...simd(SIMD.f32x4Splat), ...fmul, ...fadd, ...set(acc),
    ]),
  ];
  const perBlock = [
    // p = w + o·rowBytes + b·210 ; xb = x + b·1024
    ...get(w), ...get(o), ...get(rowBytes), ...mul, ...add, ...get(b), ...i32(210), ...mul, ...add, ...set(p),
    ...get(x), ...get(b), ...i32(10), OP.i32Shl, ...add, ...set(xb),
    ...get(table), ...get(p), OP.i32Load16U, 1, ...uleb(208), ...i32(2), OP.i32Shl, ...add, OP.f32Load, 2, 0, ...set(d),
    ...group(0, 0), ...group(0, 1), ...group(1, 0), ...group(1, 1),
  ];
  const perRow = [
    ...zero, ...set(acc),
    ...i32(0), ...set(b),
    ...loopWhile(perBlock, b, i32(1), get(nBlocks)),
    ...get(out), ...get(o), ...i32(2), OP.i32Shl, ...add, ...hsum(acc), OP.f32Store, 2, 0,
  ];
  return fn(6, [[6, I32], [1, 0x7d], [7, V128]], [
    ...get(nIn), ...i32(8), OP.i32ShrU, ...tee(nBlocks), ...i32(210), ...mul, ...set(rowBytes),
    ...i32(0), ...set(o),
    ...loopWhile(perRow, o, i32(1), get(nOut)),
  ]);
}

/**
 * Writes the four f32x4 of the 16 integer lanes in v (extended with `ext8`/`ext16`: signed or
 * unsigned) times vs, minus vm when given, to dst + 4·xo.
 */
function store16(v: number, e: number, dst: number, xo: number, vs: number, signed: boolean, vm?: number): number[] {
  const [lo8, hi8, lo16, hi16] = signed
    ? [SIMD.i16x8ExtendLowI8x16S, SIMD.i16x8ExtendHighI8x16S, SIMD.i32x4ExtendLowI16x8S, SIMD.i32x4ExtendHighI16x8S]
    : [SIMD.i16x8ExtendLowI8x16U, SIMD.i16x8ExtendHighI8x16U, SIMD.i32x4ExtendLowI16x8U, SIMD.i32x4ExtendHighI16x8U];
  const one = (ext16: number, off: number) => [
    ...get(dst), ...get(e), ...simd(ext16), ...simd(SIMD.f32x4ConvertI32x4S), ...get(vs), ...fmul,
    ...(vm !== undefined ? [...get(vm), ...simd(SIMD.f32x4Sub)] : []), ...store(4 * xo + off),
  ];
  return [
    ...get(v), ...simd(lo8), ...set(e), ...one(lo16, 0), ...one(hi16, 16),
    ...get(v), ...simd(hi8), ...set(e), ...one(lo16, 32), ...one(hi16, 48),
  ];
}

/**
 * decode_q4_k(w, nIn, nRows, dst, table): nRows consecutive Q4_K rows → F32 rows at dst (the
 * weights d·sc·q − dmin·m, block by block), for the F32 kernel to multiply with many vectors.
 */
function decodeQ4K() {
  const [w, nIn, nRows, dst, table] = [0, 1, 2, 3, 4];
  const [r, b, nBlocks, rowBytes, p, db] = [5, 6, 7, 8, 9, 10];
  const [d, dmin] = [11, 12]; // f32
  const [A, B, v, e, mask, vs, vm] = [13, 14, 15, 16, 17, 18, 19]; // v128
  const byte = (off: number) => [...get(p), OP.i32Load8U, 0, ...uleb(4 + off)];
  const and = (n: number) => [...i32(n), OP.i32And];
  const shr = (n: number) => [...i32(n), OP.i32ShrU];
  const shl = (n: number) => [...i32(n), OP.i32Shl];
  const scale = (j: number) => j < 4 ? [...byte(j), ...and(63)]
    : [...byte(j + 4), ...and(15), ...byte(j - 4), ...shr(6), ...shl(4), OP.i32Or];
  const min = (j: number) => j < 4 ? [...byte(j + 4), ...and(63)]
    : [...byte(j + 4), ...shr(4), ...byte(j), ...shr(6), ...shl(4), OP.i32Or];
  const fhalf = (off: number) => [...get(table), ...get(p), OP.i32Load16U, 1, ...uleb(off), ...i32(2), OP.i32Shl, ...add, OP.f32Load, 2, 0];
  const low = (src: number) => [...get(src), ...get(mask), ...simd(SIMD.v128And)];
  const high = (src: number) => [...get(src), ...i32(4), ...simd(SIMD.i8x16ShrU)];
  const subBlock = (j: number, nibble: (src: number) => number[]) => [
    ...get(d), ...scale(j), OP.f32ConvertI32U, OP.f32Mul, ...simd(SIMD.f32x4Splat), ...set(vs),
    ...get(dmin), ...min(j), OP.f32ConvertI32U, OP.f32Mul, ...simd(SIMD.f32x4Splat), ...set(vm),
    ...nibble(A), ...set(v), ...store16(v, e, db, 32 * j, vs, false, vm),
    ...nibble(B), ...set(v), ...store16(v, e, db, 32 * j + 16, vs, false, vm),
  ];
  const perBlock = [
    // p = w + r·rowBytes + b·144 ; db = dst + (r·nIn + 256·b)·4
    ...get(w), ...get(r), ...get(rowBytes), ...mul, ...add, ...get(b), ...i32(144), ...mul, ...add, ...set(p),
    ...get(dst), ...get(r), ...get(nIn), ...mul, ...get(b), ...i32(8), OP.i32Shl, ...add, ...i32(2), OP.i32Shl, ...add, ...set(db),
    ...fhalf(0), ...set(d), ...fhalf(2), ...set(dmin),
    ...[0, 1, 2, 3].flatMap((c) => [
      ...get(p), ...load(16 + 32 * c), ...set(A), ...get(p), ...load(16 + 32 * c + 16), ...set(B),
      ...subBlock(2 * c, low), ...subBlock(2 * c + 1, high),
    ]),
  ];
  return fn(5, [[6, I32], [2, 0x7d], [7, V128]], [
    ...i32(15), ...simd(SIMD.i8x16Splat), ...set(mask),
    ...get(nIn), ...i32(8), OP.i32ShrU, ...tee(nBlocks), ...i32(144), ...mul, ...set(rowBytes),
    ...i32(0), ...set(r),
    ...loopWhile([...i32(0), ...set(b), ...loopWhile(perBlock, b, i32(1), get(nBlocks))], r, i32(1), get(nRows)),
  ]);
}

/** decode_q6_k(w, nIn, nRows, dst, table): nRows consecutive Q6_K rows → F32 rows d·sc·(q − 32). */
function decodeQ6K() {
  const [w, nIn, nRows, dst, table] = [0, 1, 2, 3, 4];
  const [r, b, nBlocks, rowBytes, p, db] = [5, 6, 7, 8, 9, 10];
  const d = 11; // f32
  const [LO, HI, HB, v, e, vs] = [12, 13, 14, 15, 16, 17]; // v128
  const splat8 = (n: number) => [...i32(n), ...simd(SIMD.i8x16Splat)];
  const andMask = (src: number, m: number) => [...get(src), ...splat8(m), ...simd(SIMD.v128And)];
  const levels = [
    [...andMask(LO, 0x0f), ...andMask(HB, 0x03), ...i32(4), ...simd(SIMD.i8x16Shl), ...simd(SIMD.v128Or)],
    [...andMask(HI, 0x0f), ...andMask(HB, 0x0c), ...i32(2), ...simd(SIMD.i8x16Shl), ...simd(SIMD.v128Or)],
    [...get(LO), ...i32(4), ...simd(SIMD.i8x16ShrU), ...andMask(HB, 0x30), ...simd(SIMD.v128Or)],
    [...get(HI), ...i32(4), ...simd(SIMD.i8x16ShrU), ...andMask(HB, 0xc0), ...i32(2), ...simd(SIMD.i8x16ShrU), ...simd(SIMD.v128Or)],
  ];
  const group = (h: number, part: number) => [
    ...get(p), ...load(64 * h + 16 * part), ...set(LO),
    ...get(p), ...load(64 * h + 32 + 16 * part), ...set(HI),
    ...get(p), ...load(128 + 32 * h + 16 * part), ...set(HB),
    ...levels.flatMap((lv, k) => [
      ...lv, ...splat8(32), ...simd(SIMD.i8x16Sub), ...set(v),
      ...get(d), ...get(p), OP.i32Load8S, 0, ...uleb(192 + 8 * h + part + 2 * k), OP.f32ConvertI32S, OP.f32Mul, ...simd(SIMD.f32x4Splat), ...set(vs),
      ...store16(v, e, db, 128 * h + 16 * part + 32 * k, vs, true),
    ]),
  ];
  const perBlock = [
    ...get(w), ...get(r), ...get(rowBytes), ...mul, ...add, ...get(b), ...i32(210), ...mul, ...add, ...set(p),
    ...get(dst), ...get(r), ...get(nIn), ...mul, ...get(b), ...i32(8), OP.i32Shl, ...add, ...i32(2), OP.i32Shl, ...add, ...set(db),
    ...get(table), ...get(p), OP.i32Load16U, 1, ...uleb(208), ...i32(2), OP.i32Shl, ...add, OP.f32Load, 2, 0, ...set(d),
    ...group(0, 0), ...group(0, 1), ...group(1, 0), ...group(1, 1),
  ];
  return fn(5, [[6, I32], [1, 0x7d], [6, V128]], [
    ...get(nIn), ...i32(8), OP.i32ShrU, ...tee(nBlocks), ...i32(210), ...mul, ...set(rowBytes),
    ...i32(0), ...set(r),
    ...loopWhile([...i32(0), ...set(b), ...loopWhile(perBlock, b, i32(1), get(nBlocks))], r, i32(1), get(nRows)),
  ]);
}

/**
 * decode_f16(w, nIn, nRows, dst, table): nRows consecutive F16 rows → F32 rows. Four halves at a
 * time: zero-extend to 32 bits, move exponent+mantissa up 13 bits and multiply by 2^112 (rebiasing
 * the exponent from 15 to 127; subnormals and zero come out exact), then put the sign back.
 * Infinities and NaNs (never in trained weights) come out as large finite numbers.
 */
function decodeF16() {
  const [w, nIn, nRows, dst] = [0, 1, 2, 3];
  const [i, n] = [5, 6];
  const h = 7; // v128
  const splat32 = (k: number) => [...i32(k), ...simd(SIMD.i32x4Splat)];
  const body = [
    // h = 4 halves at w + 2i, as u32 lanes
    ...get(w), ...get(i), ...i32(1), OP.i32Shl, ...add, ...simd(SIMD.v128Load16x4U, 1, 0), ...set(h),
    ...get(dst), ...get(i), ...i32(2), OP.i32Shl, ...add,
    ...get(h), ...splat32(0x7fff), ...simd(SIMD.v128And), ...i32(13), ...simd(SIMD.i32x4Shl),
    ...splat32(0x77800000), ...fmul, // × 2^112 (the f32 whose bits are 0x77800000)
    ...get(h), ...splat32(0x8000), ...simd(SIMD.v128And), ...i32(16), ...simd(SIMD.i32x4Shl), ...simd(SIMD.v128Or),
    ...store(),
  ];
  return fn(5, [[2, I32], [1, V128]], [
    ...get(nIn), ...get(nRows), ...mul, ...set(n),
    ...i32(0), ...set(i),
    ...loopWhile(body, i, i32(4), get(n)),
  ]);
}

/** decode_q4_0(w, nIn, nRows, dst, table): Q4_0 rows (18-byte blocks: fp16 d, 16 bytes of nibbles;
 *  weight j = (low nibble of byte j − 8)·d, weight 16 + j = (high nibble − 8)·d) → F32 rows. */
function decodeQ4_0() {
  const [w, nIn, nRows, dst, table] = [0, 1, 2, 3, 4];
  const [k, n, p, db] = [5, 6, 7, 8];
  const [q, v, e, vs] = [9, 10, 11, 12]; // v128
  const splat8 = (x: number) => [...i32(x), ...simd(SIMD.i8x16Splat)];
  const body = [
    // block k: p = w + 18k ; db = dst + 128k
    ...get(w), ...get(k), ...i32(18), ...mul, ...add, ...set(p),
    ...get(dst), ...get(k), ...i32(7), OP.i32Shl, ...add, ...set(db),
    ...get(table), ...get(p), OP.i32Load16U, 1, 0, ...i32(2), OP.i32Shl, ...add, OP.f32Load, 2, 0, ...simd(SIMD.f32x4Splat), ...set(vs),
    ...get(p), ...load(2), ...set(q),
    ...get(q), ...splat8(0x0f), ...simd(SIMD.v128And), ...splat8(8), ...simd(SIMD.i8x16Sub), ...set(v), ...store16(v, e, db, 0, vs, true),
    ...get(q), ...i32(4), ...simd(SIMD.i8x16ShrU), ...splat8(8), ...simd(SIMD.i8x16Sub), ...set(v), ...store16(v, e, db, 16, vs, true),
  ];
  return fn(5, [[4, I32], [4, V128]], [
    ...get(nIn), ...get(nRows), ...mul, ...i32(5), OP.i32ShrU, ...set(n),
    ...i32(0), ...set(k),
    ...loopWhile(body, k, i32(1), get(n)),
  ]);
}

/** decode_bf16(w, nIn, nRows, dst, table): BF16 rows → F32 rows (a bf16 is the top half of an f32). */
function decodeBF16() {
  const [w, nIn, nRows, dst] = [0, 1, 2, 3];
  const [i, n] = [5, 6];
  const body = [
    ...get(dst), ...get(i), ...i32(2), OP.i32Shl, ...add,
    ...get(w), ...get(i), ...i32(1), OP.i32Shl, ...add, ...simd(SIMD.v128Load16x4U, 1, 0), ...i32(16), ...simd(SIMD.i32x4Shl),
    ...store(),
  ];
  return fn(5, [[2, I32]], [
    ...get(nIn), ...get(nRows), ...mul, ...set(n),
    ...i32(0), ...set(i),
    ...loopWhile(body, i, i32(4), get(n)),
  ]);
}

/** decode_q4_1(w, nIn, nRows, dst, table): Q4_1 rows (20-byte blocks: fp16 d, fp16 m, 16 bytes of
 *  nibbles; weight j = low nibble of byte j·d + m, weight 16 + j = high nibble·d + m) → F32 rows. */
function decodeQ4_1() {
  const [w, nIn, nRows, dst, table] = [0, 1, 2, 3, 4];
  const [k, n, p, db] = [5, 6, 7, 8];
  const [q, v, e, vs, vm] = [9, 10, 11, 12, 13]; // v128
  const splat8 = (x: number) => [...i32(x), ...simd(SIMD.i8x16Splat)];
  const half = (off: number) => [...get(table), ...get(p), OP.i32Load16U, 1, ...uleb(off), ...i32(2), OP.i32Shl, ...add, OP.f32Load, 2, 0];
  const body = [
    ...get(w), ...get(k), ...i32(20), ...mul, ...add, ...set(p),
    ...get(dst), ...get(k), ...i32(7), OP.i32Shl, ...add, ...set(db),
    ...half(0), ...simd(SIMD.f32x4Splat), ...set(vs),
    // store16 subtracts vm: keep −m there
    ...f32Neg(half(2)), ...simd(SIMD.f32x4Splat), ...set(vm),
    ...get(p), ...load(4), ...set(q),
    ...get(q), ...splat8(0x0f), ...simd(SIMD.v128And), ...set(v), ...store16(v, e, db, 0, vs, false, vm),
    ...get(q), ...i32(4), ...simd(SIMD.i8x16ShrU), ...set(v), ...store16(v, e, db, 16, vs, false, vm),
  ];
  return fn(5, [[4, I32], [5, V128]], [
    ...get(nIn), ...get(nRows), ...mul, ...i32(5), OP.i32ShrU, ...set(n),
    ...i32(0), ...set(k),
    ...loopWhile(body, k, i32(1), get(n)),
  ]);
}

/** −x for an f32 computed by `x` (0 − x). */
function f32Neg(x: number[]): number[] {
  return [OP.f32Const, 0, 0, 0, 0, ...x, OP.f32Sub];
}

function assemble(): Uint8Array<ArrayBuffer> {
  return assembleModule({
    matmul_f32: matmulF32(), matmul_f32_acc: matmulF32(true), matmul_q8_0: matmulQ8_0(), matvec_q4_k: matvecQ4K(), matvec_q6_k: matvecQ6K(),
    decode_q4_k: decodeQ4K(), decode_q6_k: decodeQ6K(), decode_f16: decodeF16(), decode_q4_0: decodeQ4_0(),
    decode_bf16: decodeBF16(), decode_q4_1: decodeQ4_1(),
  });
}

let compiled: WebAssembly.Module | null | undefined;

/** The compiled module, or null where WebAssembly SIMD is unavailable (then LabEngine uses JS). */
export function simdModule(): WebAssembly.Module | null {
  if (compiled === undefined) {
    compiled = compileModule(assemble());
  }
  return compiled;
}

// =============================================================================================
// 3. The arena

export type Kernel = (...args: number[]) => void;

/**
 * One WebAssembly.Memory, sized once (growing would detach every view): the fp16 table, then the
 * weight matrices copied in by `place` (the engine keeps views, not copies), then activation
 * buffers for up to `maxRows` vectors in and out. Pointers are byte offsets, 16-byte aligned.
 */
export class SimdArena {
  readonly memory: WebAssembly.Memory;
  /** matmul_f32(w, x, out, nIn, nOut, T, outStride) on byte pointers into this memory. */
  readonly f32Kernel: Kernel;
  /** The same, adding into out (matmul_f32_acc). */
  readonly f32AccKernel: Kernel;
  private readonly q8Kernel: Kernel;
  private readonly q4kKernel: Kernel;
  private readonly q6kKernel: Kernel;
  private readonly decodeKernels: Record<"Q4_K" | "Q6_K" | "F16" | "Q4_0" | "BF16" | "Q4_1", Kernel>;
  private readonly xsumsPtr: number;
  private readonly xsums: Float32Array; // [maxIn/32] f32 Σx per 32-float chunk of one vector
  private readonly table: number;
  private readonly xPtr: number;
  private readonly outPtr: number;
  private readonly accPtr: number;
  private readonly tilePtr: number;
  readonly xBuffer: Float32Array; // [maxRows][maxIn] f32
  readonly outBuffer: Float32Array; // [maxRows][maxOut] f32
  readonly tile: Float32Array; // [TILE_ROWS][maxIn] f32 weight rows decoded from another format
  private used: number;

  constructor(weightBytes: number, readonly maxRows: number, readonly maxIn: number, readonly maxOut: number) {
    const module = simdModule();
    if (!module) throw new Error("WebAssembly SIMD is not available");
    const align = (n: number) => Math.ceil(n / 16) * 16;
    const tableBytes = 65536 * 4;
    const total = tableBytes + align(weightBytes) + align(4 * maxRows * maxIn) + align(4 * maxRows * maxOut) + 16 * maxRows +
      align(4 * TILE_ROWS * maxIn) + align(4 * Math.ceil(maxIn / 32)) + 16;
    const pages = Math.ceil(total / 65536);
    this.memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
    const instance = new WebAssembly.Instance(module, { env: { memory: this.memory } });
    this.f32Kernel = instance.exports.matmul_f32 as Kernel;
    this.f32AccKernel = instance.exports.matmul_f32_acc as Kernel;
    this.q8Kernel = instance.exports.matmul_q8_0 as Kernel;
    this.q4kKernel = instance.exports.matvec_q4_k as Kernel;
    this.q6kKernel = instance.exports.matvec_q6_k as Kernel;
    this.decodeKernels = {
      Q4_K: instance.exports.decode_q4_k as Kernel, Q6_K: instance.exports.decode_q6_k as Kernel,
      F16: instance.exports.decode_f16 as Kernel, Q4_0: instance.exports.decode_q4_0 as Kernel,
      BF16: instance.exports.decode_bf16 as Kernel, Q4_1: instance.exports.decode_q4_1 as Kernel,
    };
    const buffer = this.memory.buffer;
    this.table = 0;
    fillFp16Table(new Float32Array(buffer, 0, 65536));
    this.used = tableBytes;
    this.xPtr = align(tableBytes + weightBytes);
    this.outPtr = align(this.xPtr + 4 * maxRows * maxIn);
    this.accPtr = align(this.outPtr + 4 * maxRows * maxOut);
    this.tilePtr = align(this.accPtr + 16 * maxRows);
    this.tile = new Float32Array(buffer, this.tilePtr, TILE_ROWS * maxIn);
    this.xsumsPtr = align(this.tilePtr + 4 * TILE_ROWS * maxIn);
    this.xsums = new Float32Array(buffer, this.xsumsPtr, Math.ceil(maxIn / 32));
    this.xBuffer = new Float32Array(buffer, this.xPtr, maxRows * maxIn);
    this.outBuffer = new Float32Array(buffer, this.outPtr, maxRows * maxOut);
  }

  /** Copies bytes into the weight region; returns the pointer and a view of the copy. */
  place(bytes: Uint8Array): { ptr: number; view: Uint8Array } {
    const ptr = Math.ceil(this.used / 16) * 16;
    if (ptr + bytes.byteLength > this.xPtr) throw new RangeError("SimdArena: weight region is full");
    const view = new Uint8Array(this.memory.buffer, ptr, bytes.byteLength);
    view.set(bytes);
    this.used = ptr + bytes.byteLength;
    return { ptr, view };
  }

  /** Zeroed floats in the weight region for other data the kernels read in place (the KV pool,
   *  attention buffers); the constructor's weightBytes must have counted them. */
  reserveFloats(n: number): { ptr: number; view: Float32Array } {
    const ptr = Math.ceil(this.used / 16) * 16;
    if (ptr + 4 * n > this.xPtr) throw new RangeError("SimdArena: weight region is full");
    this.used = ptr + 4 * n;
    return { ptr, view: new Float32Array(this.memory.buffer, ptr, n) };
  }

  /** out[t][o] = W·x[t] for T vectors; x: [T][nIn], out: [T][nOut] (JS arrays, copied in/out). */
  matmul(type: SimdType, wPtr: number, x: Float32Array, T: number, nIn: number, nOut: number, out: Float32Array): void {
    if (T > this.maxRows || nIn > this.maxIn || nOut > this.maxOut) throw new RangeError("SimdArena: product larger than the activation buffers");
    this.xBuffer.set(x.subarray(0, T * nIn));
    if (type === "F32") this.f32Kernel(wPtr, this.xPtr, this.outPtr, nIn, nOut, T, nOut);
    else if (type === "Q8_0") this.q8Kernel(wPtr, this.xPtr, this.outPtr, nIn, nOut, T, this.table, this.accPtr);
    else if (T !== 1 || TILE_ONLY.has(type)) {
      // Several vectors (and F16 / Q4_0, which have no one-vector kernel): TILE_ROWS rows at a time
      // are decoded ONCE (in wasm) into the F32 tile, which the F32 kernel multiplies with all T vectors.
      if (nOut % 4 !== 0) throw new RangeError(`SimdArena: ${type} with several vectors needs nOut % 4 == 0`);
      const rowBytes = ROW_BYTES[type](nIn);
      for (let o0 = 0; o0 < nOut; o0 += TILE_ROWS) {
        const rows = Math.min(TILE_ROWS, nOut - o0);
        this.decodeKernels[type](wPtr + o0 * rowBytes, nIn, rows, this.tilePtr, this.table);
        this.f32Kernel(this.tilePtr, this.xPtr, this.outPtr + 4 * o0, nIn, rows, T, nOut);
      }
    }
    else if (type === "Q6_K") this.q6kKernel(wPtr, this.xPtr, this.outPtr, nIn, nOut, this.table);
    else {
      for (let c = 0; c < nIn / 32; c++) {
        let sum = 0;
        for (let l = 0; l < 32; l++) sum += x[32 * c + l];
        this.xsums[c] = sum;
      }
      this.q4kKernel(wPtr, this.xPtr, this.outPtr, nIn, nOut, this.table, this.xsumsPtr);
    }
    out.set(this.outBuffer.subarray(0, T * nOut));
  }

  /**
   * The same product for a weight type without a SIMD kernel, for T ≥ 2 vectors: TILE_ROWS rows at
   * a time are decoded ONCE (by the format's own dequantizeRow) into an F32 tile, which the F32
   * kernel multiplies with all T vectors. Requires nIn % 4 == 0 and nOut % 4 == 0.
   */
  matmulDecoded(decodeRow: (row: number, dst: Float32Array) => void, x: Float32Array, T: number, nIn: number, nOut: number, out: Float32Array): void {
    if (T > this.maxRows || nIn > this.maxIn || nOut > this.maxOut) throw new RangeError("SimdArena: product larger than the activation buffers");
    this.xBuffer.set(x.subarray(0, T * nIn));
    for (let o0 = 0; o0 < nOut; o0 += TILE_ROWS) {
      const rows = Math.min(TILE_ROWS, nOut - o0);
      for (let r = 0; r < rows; r++) decodeRow(o0 + r, this.tile.subarray(r * nIn, (r + 1) * nIn));
      this.f32Kernel(this.tilePtr, this.xPtr, this.outPtr + 4 * o0, nIn, rows, T, nOut);
    }
    out.set(this.outBuffer.subarray(0, T * nOut));
  }
}

/** Weight rows decoded per tile in matmulDecoded (a multiple of 4; 16 rows × 1024 floats = 64 KiB). */
const TILE_ROWS = 16;

/** Weight types with SIMD kernels (F32, Q8_0: any number of vectors; Q4_K, Q6_K: a one-vector kernel
 *  and decoded tiles for several; F16, BF16, Q4_0, Q4_1: decoded tiles always). */
export type SimdType = "F32" | "Q8_0" | "Q4_K" | "Q6_K" | "F16" | "BF16" | "Q4_0" | "Q4_1";
const TILE_ONLY = new Set<SimdType>(["F16", "BF16", "Q4_0", "Q4_1"]);
const ROW_BYTES: Record<Exclude<SimdType, "F32" | "Q8_0">, (nIn: number) => number> = {
  Q4_K: (n) => (n / 256) * 144, Q6_K: (n) => (n / 256) * 210, F16: (n) => 2 * n, BF16: (n) => 2 * n,
  Q4_0: (n) => (n / 32) * 18, Q4_1: (n) => (n / 32) * 20,
};

/** Whether the SIMD kernels can run a product of this shape for this weight type. */
export function simdSupports(type: string, nIn: number, nOut: number): type is SimdType {
  if (type === "F32") return nIn % 4 === 0 && nOut % 4 === 0;
  if (type === "Q8_0") return nIn % 32 === 0;
  if (type === "Q4_K" || type === "Q6_K") return nIn % 256 === 0;
  if (type === "F16" || type === "BF16") return nIn % 4 === 0 && nOut % 4 === 0;
  if (type === "Q4_0" || type === "Q4_1") return nIn % 32 === 0 && nOut % 4 === 0;
  return false;
}

/** IEEE half → single for every 16-bit pattern (zero, subnormal, normal, inf, NaN). */
function fillFp16Table(table: Float32Array): void {
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    table[h] = exp === 0 ? sign * mant * 2 ** -24
      : exp === 31 ? (mant ? NaN : sign * Infinity)
      : sign * (1 + mant / 1024) * 2 ** (exp - 15);
  }
}
