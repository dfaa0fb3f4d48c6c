// 1x1 convolutions (stride 1, no padding, one group) as what they are: at every pixel, a
// matrix-vector product over the channels. One invocation takes up to four vec4s of pixels of
// one sample (vec4s along the flattened H*W plane, so any plane of a multiple of 4 pixels, 2x2
// included), loads their input channels once into a private array, and computes every output
// channel from it. The weight index then depends on loop counters only, the same in every
// invocation, so an adapter that runs invocations as SIMD lanes (lavapipe) loads each weight
// once per group of lanes instead of gathering it per lane, and each weight load feeds up to
// four vec4 multiply-adds; the blocked kernel (conv-blocked.ts), built for K x K taps, keeps 64
// vec4 accumulators and gathers its weights per output-channel block.
//
// conv2d:            y[n, o, p] = sum over c of w[o, c] * x[n, c, p]
// conv2d_input_grad: dx[n, o, p] = sum over c of w[c, o] * dy[n, c, p] (the same product with
//                    the weight transposed)
// Each sum runs over c in increasing order, as in the register kernel.
import type { ConvAttrs, Prim } from "../../ir/primitives.ts";
import { type KernelBody, type KernelContext, type KernelVariant, assemble, u32 } from "./kernel.ts";

export const POINTWISE_VARIANT = "pointwise";

/** [N, reduced channels, output channels, H*W / 4] of a 1x1 convolution node, or undefined
 * when the node is not one this kernel takes. */
function dims(ctx: KernelContext<Prim>): { N: number; R: number; O: number; P4: number; transposed: boolean } | undefined {
  const prim = ctx.node.prim;
  if (prim !== "conv2d" && prim !== "conv2d_input_grad") return undefined;
  const a = ctx.attrs as ConvAttrs;
  const w = ctx.inShapes[1]!;
  if (w[2] !== 1 || w[3] !== 1 || a.stride !== 1 || a.padding !== 0 || a.groups !== 1) return undefined;
  const [N, O, H, W] = ctx.outShape as [number, number, number, number];
  const R = ctx.inShapes[0]![1]!;
  const [ih, iw] = ctx.inShapes[0]!.slice(2);
  if (ih !== H || iw !== W || (H * W) % 4 !== 0) return undefined;
  return { N, R, O, P4: (H * W) / 4, transposed: prim === "conv2d_input_grad" };
}

/** The kernel over `d`, PV vec4s of pixels an invocation (PV divides P4). */
function pointwiseBody(d: NonNullable<ReturnType<typeof dims>>, PV: number, wg: number): KernelBody {
  const { N, R, O, P4 } = d;
  const weight = d.transposed ? `c * ${u32(O)} + o` : `o * ${u32(R)} + c`;
  const vs = Array.from({ length: PV }, (_, v) => v);
  const body = [
    `let p = (i % ${u32(P4 / PV)}) * ${u32(PV)};`,
    `let n = i / ${u32(P4 / PV)};`,
    `var xs: array<vec4<f32>, ${R * PV}>;`,
    `let xb = n * ${u32(R * P4)} + p;`,
    `for (var c = 0u; c < ${u32(R)}; c++) {`,
    ...vs.map((v) => `  xs[c * ${u32(PV)} + ${u32(v)}] = x0[xb + c * ${u32(P4)} + ${u32(v)}];`),
    `}`,
    `let yb = n * ${u32(O * P4)} + p;`,
    `for (var o = 0u; o < ${u32(O)}; o++) {`,
    ...vs.map((v) => `  var a${v} = vec4<f32>(0.0);`),
    `  for (var c = 0u; c < ${u32(R)}; c++) {`,
    `    let wv = x1[${weight}];`,
    ...vs.map((v) => `    a${v} += wv * xs[c * ${u32(PV)} + ${u32(v)}];`),
    `  }`,
    ...vs.map((v) => `  y[yb + o * ${u32(P4)} + ${u32(v)}] = a${v};`),
    `}`,
  ];
  return { invocations: (N * P4) / PV, body: body.join("\n"), types: ["vec4<f32>", "f32", "vec4<f32>"], workgroupSize: wg };
}

/** The pointwise variant of a 1x1 convolution or its input gradient, where it applies. Four
 * vec4s of pixels an invocation where the plane allows (each weight load then feeds four vec4
 * multiply-adds), in workgroups of 16 so that even HIFA's [8,16,16,16] maps make 8 of them for
 * the cores to share: on lavapipe [8,16,32,32] took 0.40 ms against 1.6 ms blocked or register,
 * [8,16,16,16] 0.13-0.18 ms against 0.40-0.57 ms; at 4x4 maps and below, or 32 channels and
 * more, the blocked and register kernels stay as fast or faster (the autotuner keeps them). */
export function pointwiseVariant(ctx: KernelContext<Prim>): KernelVariant | undefined {
  const d = dims(ctx);
  if (!d) return undefined;
  const [PV, wg] = d.P4 % 4 === 0 ? [4, 16] : d.P4 % 2 === 0 ? [2, 32] : [1, 64];
  const spec = assemble(ctx, pointwiseBody(d, PV, wg));
  return { name: POINTWISE_VARIANT, wgsl: spec.wgsl, workgroupSize: spec.workgroupSize, dispatch: spec.dispatch };
}
