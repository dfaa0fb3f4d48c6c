// The second kernel family: classic workgroup shared-memory tiling, for adapters where
// workgroup memory and barriers are cheap and loads coalesce (real GPUs). On lavapipe the
// register-blocked kernels (conv.ts, routines.ts) win by a wide margin, since every barrier
// is expensive there; the runtime picks between the two per adapter by measuring at first use
// (runtime/autotune.ts), so each family only has to be good where it is chosen.
//
// matmul and the three convolution primitives all are a batch of GEMMs C[M, N] = A[M, K] B[K, N]
// whose operands are read through index arithmetic (an implicit GEMM: no im2col buffer):
//   matmul             one GEMM; op(A) op(B) with the transposes folded into strides
//   conv2d             per (image, group): W[o, (c,kh,kw)] x X[(c,kh,kw), pixel]
//   conv2d_input_grad  per (image, group): W^T[c, (o,kh,kw)] x dY[(o,kh,kw), input pixel], a gather
//   conv2d_weight_grad per group: dY[o, (n,pixel)] x X[(n,pixel), (c,kh,kw)]
// A 16x16 workgroup computes a 16x16 tile of C, one element per invocation, stepping K by 16:
// each invocation stages one element of A's and one of B's tile in workgroup memory. Each
// output element sums its K products in increasing k, 16 at a time into a partial sum (the
// register kernels sum straight through: both are within f32 rounding of float64).
// Bindings are those of the register kernels (inputs read, output read_write, array<f32>),
// so either variant runs in the same plan slot with the same bind group.
import type { ConvAttrs, IRNode, Prim } from "../../ir/primitives.ts";
import { fmtShape } from "../../ir/primitives.ts";
import type { KernelContext, KernelVariant } from "./kernel.ts";
import { i32, u32 } from "./kernel.ts";

const T = 16;

/** A batched implicit GEMM: WGSL bodies of the operand loads (a value, with zero outside)
 * and of the output index, over u32 `b` (batch), `r` (row), `k`, `c` (column). */
interface Gemm {
  M: number;
  N: number;
  K: number;
  batch: number;
  /** Statements ending in `return <f32>;` for A(b, r, k); r < M and k < K are checked before. */
  loadA: string;
  /** Same for B(b, k, c); k < K and c < N are checked before. */
  loadB: string;
  /** An expression: the flat output index of C(b, r, c). */
  out: string;
}

function convDims(x: number[], w: number[], y: number[], a: ConvAttrs) {
  const [N, C, H, W] = x as [number, number, number, number];
  const [O, CG, K] = w as [number, number, number];
  const [, , HO, WO] = y as [number, number, number, number];
  return {
    N,
    C,
    H,
    W,
    O,
    CG,
    K,
    HO,
    WO,
    G: a.groups,
    OG: O / a.groups,
    HW: H * W,
    HOWO: HO * WO,
    KK: K * K,
    S: a.stride,
    P: a.padding,
    D: a.dilation,
  };
}

/** `return x[idx]` when `ok`, else 0: the index is clamped so no load leaves the buffer. */
const guarded = (buf: string, idx: string, ok: string) => `let ok = ${ok};\nreturn select(0.0, ${buf}[select(0, ${idx}, ok)], ok);`;

function matmulGemm({ attrs, inShapes, outShape }: KernelContext<"matmul">): Gemm {
  const [M, N] = outShape as [number, number];
  const a = inShapes[0]!;
  const K = attrs.transA ? a[0]! : a[1]!;
  const [ar, ak] = attrs.transA ? [1, M] : [K, 1];
  const [bk, bc] = attrs.transB ? [1, K] : [N, 1];
  return {
    M,
    N,
    K,
    batch: 1,
    loadA: `return x0[r * ${u32(ar)} + k * ${u32(ak)}];`,
    loadB: `return x1[k * ${u32(bk)} + c * ${u32(bc)}];`,
    out: `r * ${u32(N)} + c`,
  };
}

function conv2dGemm({ attrs, inShapes, outShape }: KernelContext<"conv2d">): Gemm {
  const d = convDims(inShapes[0]!, inShapes[1]!, outShape, attrs);
  const grp = `(b % ${u32(d.G)})`;
  const n = `(b / ${u32(d.G)})`;
  return {
    M: d.OG,
    N: d.HOWO,
    K: d.CG * d.KK,
    batch: d.N * d.G,
    loadA: `return x1[(${grp} * ${u32(d.OG)} + r) * ${u32(d.CG * d.KK)} + k];`,
    loadB: [
      `let h = i32(c / ${u32(d.WO)}) * ${i32(d.S)} - ${i32(d.P)} + i32((k / ${u32(d.K)}) % ${u32(d.K)}) * ${i32(d.D)};`,
      `let w = i32(c % ${u32(d.WO)}) * ${i32(d.S)} - ${i32(d.P)} + i32(k % ${u32(d.K)}) * ${i32(d.D)};`,
      `let plane = i32((${n} * ${u32(d.C)} + ${grp} * ${u32(d.CG)} + k / ${u32(d.KK)}) * ${u32(d.HW)});`,
      guarded("x0", `plane + h * ${i32(d.W)} + w`, `h >= 0 && h < ${i32(d.H)} && w >= 0 && w < ${i32(d.W)}`),
    ].join("\n"),
    out: `(${n} * ${u32(d.O)} + ${grp} * ${u32(d.OG)} + r) * ${u32(d.HOWO)} + c`,
  };
}

function inputGradGemm({ attrs, inShapes, outShape }: KernelContext<"conv2d_input_grad">): Gemm {
  // Inputs (g [N, O, Ho, Wo], w [O, C/G, k, k]); output dx [N, C, H, W].
  const d = convDims(outShape, inShapes[1]!, inShapes[0]!, attrs);
  const grp = `(b % ${u32(d.G)})`;
  const n = `(b / ${u32(d.G)})`;
  // Output row oh reaches input row h through tap kh iff h + P - kh*D = oh*S.
  const exact = (v: string) => (d.S === 1 ? "" : ` && ${v} % ${i32(d.S)} == 0`);
  const over = (v: string) => (d.S === 1 ? v : `(${v} / ${i32(d.S)})`);
  return {
    M: d.CG,
    N: d.HW,
    K: d.OG * d.KK,
    batch: d.N * d.G,
    loadA: `return x1[((${grp} * ${u32(d.OG)} + k / ${u32(d.KK)}) * ${u32(d.CG)} + r) * ${u32(d.KK)} + k % ${u32(d.KK)}];`,
    loadB: [
      `let th = i32(c / ${u32(d.W)}) + ${i32(d.P)} - i32((k / ${u32(d.K)}) % ${u32(d.K)}) * ${i32(d.D)};`,
      `let tw = i32(c % ${u32(d.W)}) + ${i32(d.P)} - i32(k % ${u32(d.K)}) * ${i32(d.D)};`,
      `let plane = i32((${n} * ${u32(d.O)} + ${grp} * ${u32(d.OG)} + k / ${u32(d.KK)}) * ${u32(d.HOWO)});`,
      guarded("x0", `plane + ${over("th")} * ${i32(d.WO)} + ${over("tw")}`, `th >= 0${exact("th")} && ${over("th")} < ${i32(d.HO)} && tw >= 0${exact("tw")} && ${over("tw")} < ${i32(d.WO)}`),
    ].join("\n"),
    out: `(${n} * ${u32(d.C)} + ${grp} * ${u32(d.CG)} + r) * ${u32(d.HW)} + c`,
  };
}

function weightGradGemm({ attrs, inShapes, outShape }: KernelContext<"conv2d_weight_grad">): Gemm {
  // Inputs (x [N, C, H, W], g [N, O, Ho, Wo]); output dw [O, C/G, k, k]; one GEMM per group.
  const d = convDims(inShapes[0]!, outShape, inShapes[1]!, attrs);
  return {
    M: d.OG,
    N: d.CG * d.KK,
    K: d.N * d.HOWO,
    batch: d.G,
    loadA: `return x1[((k / ${u32(d.HOWO)}) * ${u32(d.O)} + b * ${u32(d.OG)} + r) * ${u32(d.HOWO)} + k % ${u32(d.HOWO)}];`,
    loadB: [
      `let q = k % ${u32(d.HOWO)};`,
      `let h = i32(q / ${u32(d.WO)}) * ${i32(d.S)} - ${i32(d.P)} + i32((c / ${u32(d.K)}) % ${u32(d.K)}) * ${i32(d.D)};`,
      `let w = i32(q % ${u32(d.WO)}) * ${i32(d.S)} - ${i32(d.P)} + i32(c % ${u32(d.K)}) * ${i32(d.D)};`,
      `let plane = i32(((k / ${u32(d.HOWO)}) * ${u32(d.C)} + b * ${u32(d.CG)} + c / ${u32(d.KK)}) * ${u32(d.HW)});`,
      guarded("x0", `plane + h * ${i32(d.W)} + w`, `h >= 0 && h < ${i32(d.H)} && w >= 0 && w < ${i32(d.W)}`),
    ].join("\n"),
    out: `(b * ${u32(d.OG)} + r) * ${u32(d.CG * d.KK)} + c`,
  };
}

const indent = (s: string, by: string) =>
  s
    .split("\n")
    .map((l) => by + l)
    .join("\n");

/** The tiled WGSL module of a batched implicit GEMM. */
function tiledModule(node: IRNode, inShapes: number[][], outShape: number[], g: Gemm): string {
  const nIn = node.inputs.length;
  return [
    `// drifa kernel (tiled ${T}x${T}): ${node.prim}(${inShapes.map(fmtShape).join(", ")}) -> ${fmtShape(outShape)}`,
    ...node.inputs.map((_, j) => `@group(0) @binding(${j}) var<storage, read> x${j}: array<f32>;`),
    `@group(0) @binding(${nIn}) var<storage, read_write> y: array<f32>;`,
    `var<workgroup> ta: array<f32, ${T * T}>;`,
    `var<workgroup> tb: array<f32, ${T * T}>;`,
    "",
    `fn loadA(b: u32, r: u32, k: u32) -> f32 {`,
    `  if (r >= ${u32(g.M)} || k >= ${u32(g.K)}) { return 0.0; }`,
    indent(g.loadA, "  "),
    `}`,
    "",
    `fn loadB(b: u32, k: u32, c: u32) -> f32 {`,
    `  if (k >= ${u32(g.K)} || c >= ${u32(g.N)}) { return 0.0; }`,
    indent(g.loadB, "  "),
    `}`,
    "",
    `@compute @workgroup_size(${T}, ${T}, 1)`,
    `fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {`,
    `  let b = wid.z;`,
    `  let r = wid.y * ${u32(T)} + lid.y;`,
    `  let c = wid.x * ${u32(T)} + lid.x;`,
    `  var acc = 0.0;`,
    // Every invocation of the workgroup runs every step (no early return before the barriers:
    // they must stay in uniform control flow); out-of-range elements load zeros.
    `  for (var k0 = 0u; k0 < ${u32(g.K)}; k0 += ${u32(T)}) {`,
    `    ta[lid.y * ${u32(T)} + lid.x] = loadA(b, r, k0 + lid.x);`,
    `    tb[lid.y * ${u32(T)} + lid.x] = loadB(b, k0 + lid.y, c);`,
    `    workgroupBarrier();`,
    // A partial sum per tile, then into the total: blocked summation, whose rounding error
    // grows with K/16 + 16 rather than K (7x7 convolutions sum hundreds of products).
    `    var part = 0.0;`,
    `    for (var kk = 0u; kk < ${u32(T)}; kk++) {`,
    `      part += ta[lid.y * ${u32(T)} + kk] * tb[kk * ${u32(T)} + lid.x];`,
    `    }`,
    `    acc += part;`,
    `    workgroupBarrier();`,
    `  }`,
    `  if (r < ${u32(g.M)} && c < ${u32(g.N)}) { y[${g.out}] = acc; }`,
    `}`,
    "",
  ].join("\n");
}

const gemms: {
  [P in "matmul" | "conv2d" | "conv2d_input_grad" | "conv2d_weight_grad"]: (ctx: KernelContext<P>) => Gemm;
} = {
  matmul: matmulGemm,
  conv2d: conv2dGemm,
  conv2d_input_grad: inputGradGemm,
  conv2d_weight_grad: weightGradGemm,
};

const MAX_GROUPS = 65535;

/** The tiled alternative of a node's kernel, or none for primitives without one. */
export function tiledVariant(ctx: KernelContext<Prim>): KernelVariant | undefined {
  const make = gemms[ctx.node.prim as keyof typeof gemms] as ((c: KernelContext<Prim>) => Gemm) | undefined;
  if (!make) return undefined;
  const g = make(ctx);
  const dispatch: [number, number, number] = [Math.ceil(g.N / T), Math.ceil(g.M / T), g.batch];
  // Beyond a dispatch dimension's limit the register kernel (which splits its grid) is the only one.
  if (dispatch.some((n) => n > MAX_GROUPS)) return undefined;
  return {
    name: "tiled",
    wgsl: tiledModule(ctx.node, ctx.inShapes, ctx.outShape, g),
    workgroupSize: [T, T, 1],
    dispatch,
  };
}
