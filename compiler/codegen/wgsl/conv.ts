// conv2d and its two gradients as implicit GEMMs with a small register block and no workgroup
// memory: the family that runs well on lavapipe (barriers are expensive there; every storage
// load is costly, so each loaded value should feed several FMAs). Each invocation computes a
// block of up to 4 channels x 4 consecutive outputs, one vec4 accumulator per channel:
//   conv2d             4 output channels x 4 output pixels; loop over (c, kh, kw)
//   conv2d_input_grad  4 input channels  x 4 input pixels;  loop over (o, kh, kw), a gather
//                      (no scatter, so no atomics and a fixed summation order)
//   conv2d_weight_grad 4 output channels x 4 taps (c, kh, kw); loop over (n, oh, ow)
// A channel block never straddles a group, so one group's slice of the operands serves it.
// Out-of-range pixels and taps are clamped for loads and skipped for stores.
import type { ConvAttrs } from "../../ir/primitives.ts";
import { type KernelEmitter, i32, u32 } from "./kernel.ts";

const PB = 4;

/** The widest channel block (4, 2 or 1) that divides the channels of one group. */
function channelBlock(perGroup: number): number {
  return perGroup % 4 === 0 ? 4 : perGroup % 2 === 0 ? 2 : 1;
}

const qs = Array.from({ length: PB }, (_, q) => q);
const js = (n: number) => Array.from({ length: n }, (_, j) => j);

/** vec4 of the four block elements: a guarded load each (index clamped to 0 when outside). */
function gather(buf: string, index: (q: number) => string, ok: (q: number) => string): string {
  return `vec4<f32>(${qs.map((q) => `select(0.0, ${buf}[select(0, ${index(q)}, ${ok(q)})], ${ok(q)})`).join(", ")})`;
}

/** Stores acc{j}[q] to `dest(j, q)` for elements inside `limit`. */
function stores(nj: number, first: string, limit: number, dest: (j: number, q: number) => string): string {
  return js(nj)
    .flatMap((j) => qs.map((q) => `if (${first} + ${u32(q)} < ${u32(limit)}) { y[${dest(j, q)}] = acc${j}[${q}]; }`))
    .join("\n");
}

function accs(n: number): string {
  return js(n)
    .map((j) => `var acc${j} = vec4<f32>(0.0);`)
    .join("\n");
}

function dims(x: number[], w: number[], y: number[], a: ConvAttrs) {
  const [N, C, H, W] = x as [number, number, number, number];
  const [O, CG, K] = w as [number, number, number];
  const [, , HO, WO] = y as [number, number, number, number];
  return { N, C, H, W, O, CG, K, HO, WO, OG: O / a.groups, HW: H * W, HOWO: HO * WO, KK: K * K, S: a.stride, P: a.padding, D: a.dilation };
}

/** `n % 1` and `n / 1` read badly in dumps; the WGSL compiler folds them either way. */
function divs(e: string, s: number): { mod: string; div: string } {
  return s === 1 ? { mod: "", div: e } : { mod: ` && ${e} % ${i32(s)} == 0`, div: `${e} / ${i32(s)}` };
}

const conv2d: KernelEmitter<"conv2d"> = ({ attrs, inShapes, outShape }) => {
  const d = dims(inShapes[0]!, inShapes[1]!, outShape, attrs);
  const OB = channelBlock(d.OG);
  const NPB = Math.ceil(d.HOWO / PB);
  const body = [
    `let pb = i % ${u32(NPB)};`,
    `let ob = (i / ${u32(NPB)}) % ${u32(d.O / OB)};`,
    `let n = i / ${u32(NPB * (d.O / OB))};`,
    `let o0 = ob * ${u32(OB)};`,
    `let grp = o0 / ${u32(d.OG)};`,
    `let p0 = pb * ${u32(PB)};`,
    ...qs.flatMap((q) => [
      `let pp${q} = min(p0 + ${u32(q)}, ${u32(d.HOWO - 1)});`,
      `let ih${q} = i32(pp${q} / ${u32(d.WO)}) * ${i32(d.S)} - ${i32(d.P)};`,
      `let iw${q} = i32(pp${q} % ${u32(d.WO)}) * ${i32(d.S)} - ${i32(d.P)};`,
    ]),
    `let xb = (n * ${u32(d.C)} + grp * ${u32(d.CG)}) * ${u32(d.HW)};`,
    `let wb = o0 * ${u32(d.CG * d.KK)};`,
    accs(OB),
    `for (var c = 0u; c < ${u32(d.CG)}; c++) {`,
    `  let xc = i32(xb + c * ${u32(d.HW)});`,
    `  let wc = wb + c * ${u32(d.KK)};`,
    `  for (var kh = 0; kh < ${i32(d.K)}; kh++) {`,
    ...qs.flatMap((q) => [`    let h${q} = ih${q} + kh * ${i32(d.D)};`, `    let rh${q} = h${q} >= 0 && h${q} < ${i32(d.H)};`]),
    `    for (var kw = 0; kw < ${i32(d.K)}; kw++) {`,
    ...qs.flatMap((q) => [`      let w${q} = iw${q} + kw * ${i32(d.D)};`, `      let ok${q} = rh${q} && w${q} >= 0 && w${q} < ${i32(d.W)};`]),
    `      let xv = ${gather("x0", (q) => `xc + h${q} * ${i32(d.W)} + w${q}`, (q) => `ok${q}`)};`,
    `      let t = wc + u32(kh * ${i32(d.K)} + kw);`,
    ...js(OB).map((j) => `      acc${j} += x1[t + ${u32(j * d.CG * d.KK)}] * xv;`),
    `    }`,
    `  }`,
    `}`,
    stores(OB, "p0", d.HOWO, (j, q) => `(n * ${u32(d.O)} + o0 + ${u32(j)}) * ${u32(d.HOWO)} + p0 + ${u32(q)}`),
  ].join("\n");
  return { invocations: d.N * (d.O / OB) * NPB, body };
};

const conv2dInputGrad: KernelEmitter<"conv2d_input_grad"> = ({ attrs, inShapes, outShape }) => {
  // Inputs (g [N, O, Ho, Wo], w); output dx [N, C, H, W].
  const d = dims(outShape, inShapes[1]!, inShapes[0]!, attrs);
  const CB = channelBlock(d.CG);
  const NPB = Math.ceil(d.HW / PB);
  const body = [
    `let pb = i % ${u32(NPB)};`,
    `let cb = (i / ${u32(NPB)}) % ${u32(d.C / CB)};`,
    `let n = i / ${u32(NPB * (d.C / CB))};`,
    `let c0 = cb * ${u32(CB)};`,
    `let grp = c0 / ${u32(d.CG)};`,
    `let ci0 = c0 % ${u32(d.CG)};`,
    `let p0 = pb * ${u32(PB)};`,
    ...qs.flatMap((q) => [
      `let pp${q} = min(p0 + ${u32(q)}, ${u32(d.HW - 1)});`,
      `let ih${q} = i32(pp${q} / ${u32(d.W)}) + ${i32(d.P)};`,
      `let iw${q} = i32(pp${q} % ${u32(d.W)}) + ${i32(d.P)};`,
    ]),
    accs(CB),
    `for (var oo = 0u; oo < ${u32(d.OG)}; oo++) {`,
    `  let o = grp * ${u32(d.OG)} + oo;`,
    `  let gc = i32((n * ${u32(d.O)} + o) * ${u32(d.HOWO)});`,
    `  let wc = (o * ${u32(d.CG)} + ci0) * ${u32(d.KK)};`,
    `  for (var kh = 0; kh < ${i32(d.K)}; kh++) {`,
    // Output row oh reaches input row ih through tap kh iff ih + P - kh*D = oh*S.
    ...qs.flatMap((q) => {
      const t = divs(`t${q}`, d.S);
      return [`    let t${q} = ih${q} - kh * ${i32(d.D)};`, `    let rh${q} = t${q} >= 0${t.mod} && ${t.div} < ${i32(d.HO)};`, `    let oh${q} = ${t.div};`];
    }),
    `    for (var kw = 0; kw < ${i32(d.K)}; kw++) {`,
    ...qs.flatMap((q) => {
      const u = divs(`u${q}`, d.S);
      return [`      let u${q} = iw${q} - kw * ${i32(d.D)};`, `      let ok${q} = rh${q} && u${q} >= 0${u.mod} && ${u.div} < ${i32(d.WO)};`, `      let ow${q} = ${u.div};`];
    }),
    `      let gv = ${gather("x0", (q) => `gc + oh${q} * ${i32(d.WO)} + ow${q}`, (q) => `ok${q}`)};`,
    `      let t = wc + u32(kh * ${i32(d.K)} + kw);`,
    ...js(CB).map((j) => `      acc${j} += x1[t + ${u32(j * d.KK)}] * gv;`),
    `    }`,
    `  }`,
    `}`,
    stores(CB, "p0", d.HW, (j, q) => `(n * ${u32(d.C)} + c0 + ${u32(j)}) * ${u32(d.HW)} + p0 + ${u32(q)}`),
  ].join("\n");
  return { invocations: d.N * (d.C / CB) * NPB, body };
};

const conv2dWeightGrad: KernelEmitter<"conv2d_weight_grad"> = ({ attrs, inShapes, outShape }) => {
  // Inputs (x [N, C, H, W], g [N, O, Ho, Wo]); output dw [O, C/groups, k, k].
  const d = dims(inShapes[0]!, outShape, inShapes[1]!, attrs);
  const OB = channelBlock(d.OG);
  const T = d.CG * d.KK;
  const NTB = Math.ceil(T / PB);
  const body = [
    `let tb = i % ${u32(NTB)};`,
    `let o0 = (i / ${u32(NTB)}) * ${u32(OB)};`,
    `let grp = o0 / ${u32(d.OG)};`,
    `let t0 = tb * ${u32(PB)};`,
    ...qs.flatMap((q) => [
      `let tt${q} = min(t0 + ${u32(q)}, ${u32(T - 1)});`,
      `let xc${q} = i32((grp * ${u32(d.CG)} + tt${q} / ${u32(d.KK)}) * ${u32(d.HW)});`,
      `let dh${q} = i32((tt${q} / ${u32(d.K)}) % ${u32(d.K)}) * ${i32(d.D)} - ${i32(d.P)};`,
      `let dw${q} = i32(tt${q} % ${u32(d.K)}) * ${i32(d.D)} - ${i32(d.P)};`,
    ]),
    accs(OB),
    `for (var n = 0u; n < ${u32(d.N)}; n++) {`,
    `  let xn = i32(n * ${u32(d.C * d.HW)});`,
    `  let gn = (n * ${u32(d.O)} + o0) * ${u32(d.HOWO)};`,
    `  for (var oh = 0; oh < ${i32(d.HO)}; oh++) {`,
    ...qs.flatMap((q) => [
      `    let h${q} = oh * ${i32(d.S)} + dh${q};`,
      `    let rh${q} = h${q} >= 0 && h${q} < ${i32(d.H)};`,
      `    let row${q} = xn + xc${q} + h${q} * ${i32(d.W)};`,
    ]),
    `    for (var ow = 0; ow < ${i32(d.WO)}; ow++) {`,
    ...qs.flatMap((q) => [`      let w${q} = ow * ${i32(d.S)} + dw${q};`, `      let ok${q} = rh${q} && w${q} >= 0 && w${q} < ${i32(d.W)};`]),
    `      let xv = ${gather("x0", (q) => `row${q} + w${q}`, (q) => `ok${q}`)};`,
    `      let gi = gn + u32(oh * ${i32(d.WO)} + ow);`,
    ...js(OB).map((j) => `      acc${j} += x1[gi + ${u32(j * d.HOWO)}] * xv;`),
    `    }`,
    `  }`,
    `}`,
    stores(OB, "t0", T, (j, q) => `(o0 + ${u32(j)}) * ${u32(T)} + t0 + ${u32(q)}`),
  ].join("\n");
  return { invocations: (d.O / OB) * NTB, body };
};

export const convEmitters: { [P in "conv2d" | "conv2d_input_grad" | "conv2d_weight_grad"]: KernelEmitter<P> } = {
  conv2d,
  conv2d_input_grad: conv2dInputGrad,
  conv2d_weight_grad: conv2dWeightGrad,
};
