// Register-blocked convolutions for lavapipe-like adapters (CPU SIMD across invocations, where
// every storage load costs an 8-lane loop with a bounds check): count loads, not FLOPs.
// NCHW activations are read as vec4 along W; accumulators are vec4 over 4 adjacent pixels.
//
//   conv2d, conv2d_input_grad: one invocation computes OB output channels x PH rows x 4*PV
//     columns. Per input channel it loads the input rows it needs as vec4 chunks once, and the
//     OB*K*K weights; every loaded vec4 then feeds K taps x OB channels (the shifted or, with a
//     stride, strided vectors of the taps are register shuffles, free on a SIMD-over-lanes
//     machine). The input gradient is the same loop on dy with flipped, transposed weights and
//     padding (K-1)D - P: a gather, so no atomics and a fixed summation order (stride 1 only:
//     a strided input gradient is a scatter).
//   conv2d_weight_grad: one invocation computes OB x CB (output, input) channel pairs x all K*K
//     taps, reducing over (n, oh, ow) in a fixed order, R output rows and 4*PV columns a step:
//     each loaded dy vec4 feeds CB*K*K dot products, each x chunk OB*K of them.
//
// A channel block never straddles a group. Rows or chunks outside the image load zeros (the
// index is clamped, then selected away), and those outside (or inside) for every tile are known
// here: no load (or no check). Stores outside the output are skipped. Shapes the blocked
// kernels cannot take (widths not multiples of 4, strided input gradients) return undefined
// and the kernels in conv.ts and tiled.ts stay.
import type { ConvAttrs, Prim } from "../../ir/primitives.ts";
import { type KernelBody, type KernelContext, type KernelVariant, assemble, i32, u32 } from "./kernel.ts";

export interface FwdParams {
  /** Output channels per invocation. */
  OB: number;
  /** Output rows per invocation. */
  PH: number;
  /** vec4 chunks per output row per invocation. */
  PV: number;
  wg: number;
  /** Lane order: consecutive invocations take consecutive pixel tiles (sharing weights)
   * instead of consecutive channel blocks (sharing the input patch). */
  tileFast?: boolean;
}

export interface WgradParams {
  OB: number;
  CB: number;
  /** Output rows per reduction step. */
  R: number;
  /** vec4 chunks per row per reduction step. */
  PV: number;
  wg: number;
}

// Measured on lavapipe (2 cores, 256-bit SIMD): 4 channels x 8 rows x 8 columns (64 vec4
// accumulators) needs 40 input and 36 weight loads per input channel for 576 vec4 FMAs, and
// beat 8 x 4 x 8 (24 + 72 loads) by 1.2-1.5x; the weight gradient's 8 x 4 channel pairs x 9
// taps (288 scalar accumulators) over 2 rows x 8 columns a step beat smaller blocks.
export const FWD_DEFAULT: FwdParams = { OB: 4, PH: 8, PV: 2, wg: 64 };
export const WGRAD_DEFAULT: WgradParams = { OB: 8, CB: 4, R: 2, PV: 2, wg: 32 };

/** `e * s` as i32 WGSL, `e` alone for s = 1. */
const times = (e: string, s: number) => (s === 1 ? e : `${e} * ${i32(s)}`);
const range = (n: number) => Array.from({ length: n }, (_, j) => j);
const comps = ["x", "y", "z", "w"];

/** A stride-1 convolution seen as a forward one: `x` [N, CI, HI, WI] -> [N, CO, HO, WO]. */
interface Geom {
  N: number;
  CI: number;
  HI: number;
  WI: number;
  CO: number;
  CIG: number;
  COG: number;
  HO: number;
  WO: number;
  K: number;
  /** Stride, padding, dilation. */
  S: number;
  P: number;
  D: number;
  /** WGSL statements defining `wb{j}` (u32: the weight index of out channel co0+j, in channel 0, tap 0). */
  wbase: (OB: number) => string;
  /** Index step per input channel. */
  wstride: number;
  /** Index offset of tap (kh, kw). */
  tap: (kh: number, kw: number) => number;
}

/** Largest block in `choices` dividing `n`, or undefined. */
function block(n: number, choices: number[]): number | undefined {
  return choices.find((b) => n % b === 0);
}

function fwdBody(g: Geom, p: FwdParams): KernelBody | undefined {
  const OB = block(g.COG, [p.OB, 4, 2, 1].filter((b) => b <= p.OB))!;
  const PH = Math.min(p.PH, g.HO);
  const WV = g.WO / 4;
  const PV = Math.min(p.PV, WV);
  const TH = Math.ceil(g.HO / PH);
  const TW = Math.ceil(WV / PV);
  const NOB = g.CO / OB;
  const WIV = g.WI / 4;
  const { K, S, P, D } = g;
  // Input rows relative to oh0*S - P that some (ph, kh) reads.
  const rows = [...new Set(range(PH).flatMap((ph) => range(K).map((kh) => ph * S + kh * D)))].sort((a, b) => a - b);
  // Chunks relative to w0v*S: input columns (4v + e)*S - P + kw*D of the tile's first column.
  const colMin = -P;
  const colMax = (4 * PV - 1) * S - P + (K - 1) * D;
  const j0 = Math.floor(colMin / 4);
  const j1 = Math.floor(colMax / 4);
  const chunks = range(j1 - j0 + 1).map((k) => k + j0);
  const cname = (j: number) => (j < 0 ? `m${-j}` : `${j}`);
  /** The vec4 of input columns rel..rel+3 of row r. */
  /** The vec4 of input columns rel, rel+S, rel+2S, rel+3S of row r, or undefined when it is all zeros. */
  const vecAt = (r: number, rel: number) => {
    const j = Math.floor(rel / 4);
    const q = rel - 4 * j;
    if (q === 0 && S === 1) return zero(r, j) ? undefined : `v${r}_${cname(j)}`;
    const parts = range(4).map((e) => {
      const jj = Math.floor((rel + S * e) / 4);
      return zero(r, jj) ? undefined : `v${r}_${cname(jj)}.${comps[rel + S * e - 4 * jj]}`;
    });
    if (parts.every((x) => x === undefined)) return undefined;
    return `vec4<f32>(${parts.map((x) => x ?? "0.0").join(", ")})`;
  };
  // Rows and chunks that are inside the image for every tile, or outside for every one, need
  // no check, or no load at all.
  const rowIn = (r: number) => range(TH).map((th) => th * PH * S + r - P >= 0 && th * PH * S + r - P < g.HI);
  const colIn = (j: number) => range(TW).map((tw) => tw * PV * S + j >= 0 && tw * PV * S + j < WIV);
  const state = (v: boolean[]) => (v.every((b) => b) ? "in" : v.every((b) => !b) ? "out" : "check");
  const rowState = new Map(rows.map((r) => [r, state(rowIn(r))]));
  const colState = new Map(chunks.map((j) => [j, state(colIn(j))]));
  const zero = (r: number, j: number) => rowState.get(r) === "out" || colState.get(j) === "out";
  const L: string[] = p.tileFast
    ? [
        `let tw = i % ${u32(TW)};`,
        `let t1 = i / ${u32(TW)};`,
        `let th = t1 % ${u32(TH)};`,
        `let t2 = t1 / ${u32(TH)};`,
        `let n = t2 % ${u32(g.N)};`,
        `let ob = t2 / ${u32(g.N)};`,
      ]
    : [
        `let ob = i % ${u32(NOB)};`,
        `let t1 = i / ${u32(NOB)};`,
        `let tw = t1 % ${u32(TW)};`,
        `let t2 = t1 / ${u32(TW)};`,
        `let th = t2 % ${u32(TH)};`,
        `let n = t2 / ${u32(TH)};`,
      ];
  L.push(
    `let co0 = ob * ${u32(OB)};`,
    `let grp = co0 / ${u32(g.COG)};`,
    `let oh0 = i32(th * ${u32(PH)});`,
    `let w0v = i32(tw * ${u32(PV)});`,
    g.wbase(OB),
  );
  for (const r of rows) {
    L.push(`let ih${r} = ${times("oh0", S)} + ${i32(r - P)};`);
    L.push(`let ro${r} = u32(clamp(ih${r}, 0, ${i32(g.HI - 1)})) * ${u32(WIV)};`);
    L.push(`let rv${r} = ih${r} >= 0 && ih${r} < ${i32(g.HI)};`);
  }
  for (const j of chunks) {
    L.push(`let cj${cname(j)} = ${times("w0v", S)} + ${i32(j)};`);
    L.push(`let cx${cname(j)} = u32(clamp(cj${cname(j)}, 0, ${i32(WIV - 1)}));`);
    L.push(`let cv${cname(j)} = cj${cname(j)} >= 0 && cj${cname(j)} < ${i32(WIV)};`);
  }
  for (const j of range(OB)) for (const ph of range(PH)) for (const v of range(PV)) L.push(`var a${j}_${ph}_${v} = vec4<f32>(0.0);`);
  L.push(`let xb = (n * ${u32(g.CI)} + grp * ${u32(g.CIG)}) * ${u32(g.HI * WIV)};`);
  L.push(`for (var c = 0u; c < ${u32(g.CIG)}; c++) {`);
  L.push(`  let xc = xb + c * ${u32(g.HI * WIV)};`);
  for (const r of rows) {
    for (const j of chunks) {
      if (zero(r, j)) continue;
      const ok = [...(rowState.get(r) === "check" ? [`rv${r}`] : []), ...(colState.get(j) === "check" ? [`cv${cname(j)}`] : [])];
      const load = `x0[xc + ro${r} + cx${cname(j)}]`;
      L.push(`  let v${r}_${cname(j)} = ${ok.length ? `select(vec4<f32>(0.0), ${load}, ${ok.join(" && ")})` : load};`);
    }
  }
  for (const j of range(OB)) {
    L.push(`  let wc${j} = wb${j} + c * ${u32(g.wstride)};`);
    for (const kh of range(K)) for (const kw of range(K)) L.push(`  let w${j}_${kh}_${kw} = x1[wc${j} + ${u32(g.tap(kh, kw))}];`);
    for (const ph of range(PH)) {
      for (const v of range(PV)) {
        const terms: string[] = [];
        for (const kh of range(K))
          for (const kw of range(K)) {
            const x = vecAt(ph * S + kh * D, 4 * v * S - P + kw * D);
            if (x) terms.push(`w${j}_${kh}_${kw} * ${x}`);
          }
        // One statement per tap keeps the summation order fixed (tap-major per channel).
        for (const t of terms) L.push(`  a${j}_${ph}_${v} += ${t};`);
      }
    }
  }
  L.push(`}`);
  const HOWV = g.HO * WV;
  for (const j of range(OB)) {
    for (const ph of range(PH)) {
      for (const v of range(PV)) {
        const conds: string[] = [];
        if (g.HO % PH !== 0) conds.push(`oh0 + ${i32(ph)} < ${i32(g.HO)}`);
        if (WV % PV !== 0) conds.push(`w0v + ${i32(v)} < ${i32(WV)}`);
        const st = `y[(n * ${u32(g.CO)} + co0 + ${u32(j)}) * ${u32(HOWV)} + u32(oh0 + ${i32(ph)}) * ${u32(WV)} + u32(w0v + ${i32(v)})] = a${j}_${ph}_${v};`;
        L.push(conds.length ? `if (${conds.join(" && ")}) { ${st} }` : st);
      }
    }
  }
  return {
    invocations: g.N * TH * TW * NOB,
    body: L.join("\n"),
    types: ["vec4<f32>", "f32", "vec4<f32>"],
    workgroupSize: p.wg,
  };
}

function dimsOf(x: number[], w: number[], y: number[], a: ConvAttrs) {
  const [N, C, H, W] = x as [number, number, number, number];
  const [O, CG, K] = w as [number, number, number];
  const [, , HO, WO] = y as [number, number, number, number];
  return { N, C, H, W, O, CG, K, HO, WO, OG: O / a.groups, KK: K * K, S: a.stride, P: a.padding, D: a.dilation };
}

const vec4ok = (...ws: number[]) => ws.every((w) => w % 4 === 0);

export function conv2dBlocked(ctx: KernelContext<"conv2d">, p: FwdParams = FWD_DEFAULT): KernelBody | undefined {
  const d = dimsOf(ctx.inShapes[0]!, ctx.inShapes[1]!, ctx.outShape, ctx.attrs);
  if (!vec4ok(d.W, d.WO)) return undefined;
  return fwdBody(
    {
      N: d.N,
      CI: d.C,
      HI: d.H,
      WI: d.W,
      CO: d.O,
      CIG: d.CG,
      COG: d.OG,
      HO: d.HO,
      WO: d.WO,
      K: d.K,
      S: d.S,
      P: d.P,
      D: d.D,
      wbase: (OB) => range(OB).map((j) => `let wb${j} = (co0 + ${u32(j)}) * ${u32(d.CG * d.KK)};`).join("\n"),
      wstride: d.KK,
      tap: (kh, kw) => kh * d.K + kw,
    },
    p,
  );
}

export function conv2dInputGradBlocked(ctx: KernelContext<"conv2d_input_grad">, p: FwdParams = FWD_DEFAULT): KernelBody | undefined {
  // Inputs (dy [N, O, Ho, Wo], w [O, C/G, k, k]); output dx [N, C, H, W]: a forward convolution
  // of dy with w'[c, o, kh, kw] = w[o, c, K-1-kh, K-1-kw] and padding (K-1)D - P.
  const d = dimsOf(ctx.outShape, ctx.inShapes[1]!, ctx.inShapes[0]!, ctx.attrs);
  if (d.S !== 1 || !vec4ok(d.W, d.WO)) return undefined;
  const K = d.K;
  return fwdBody(
    {
      N: d.N,
      CI: d.O,
      HI: d.HO,
      WI: d.WO,
      CO: d.C,
      CIG: d.OG,
      COG: d.CG,
      HO: d.H,
      WO: d.W,
      K,
      S: 1,
      P: (K - 1) * d.D - d.P,
      D: d.D,
      // co0 + j is input channel c = grp * CG + ci; weight w[grp * OG + oo, ci, ...].
      wbase: (OB) => range(OB).map((j) => `let wb${j} = (grp * ${u32(d.OG * d.CG)} + co0 % ${u32(d.CG)} + ${u32(j)}) * ${u32(d.KK)};`).join("\n"),
      wstride: d.CG * d.KK,
      tap: (kh, kw) => (K - 1 - kh) * K + (K - 1 - kw),
    },
    p,
  );
}

export function conv2dWeightGradBlocked(ctx: KernelContext<"conv2d_weight_grad">, p: WgradParams = WGRAD_DEFAULT): KernelBody | undefined {
  // Inputs (x [N, C, H, W], dy [N, O, Ho, Wo]); output dw [O, C/G, k, k].
  const d = dimsOf(ctx.inShapes[0]!, ctx.outShape, ctx.inShapes[1]!, ctx.attrs);
  if (!vec4ok(d.W, d.WO)) return undefined;
  const { K, S, P, D } = d;
  const OB = block(d.OG, [p.OB, 4, 2, 1].filter((b) => b <= p.OB))!;
  const CB = block(d.CG, [p.CB, 4, 2, 1].filter((b) => b <= p.CB))!;
  const WV = d.WO / 4;
  const WIV = d.W / 4;
  const PV = block(WV, range(p.PV).map((k) => p.PV - k))!;
  const R = block(d.HO, range(p.R).map((k) => p.R - k))!;
  const NOB = d.O / OB;
  const NCB = d.CG / CB;
  const rows = [...new Set(range(R).flatMap((r) => range(K).map((kh) => r * S + kh * D)))].sort((a, b) => a - b);
  const j0 = Math.floor(-P / 4);
  const j1 = Math.floor(((4 * PV - 1) * S - P + (K - 1) * D) / 4);
  const chunks = range(j1 - j0 + 1).map((k) => k + j0);
  const cname = (j: number) => (j < 0 ? `m${-j}` : `${j}`);
  const vecAt = (c: number, r: number, rel: number) => {
    const j = Math.floor(rel / 4);
    const q = rel - 4 * j;
    if (q === 0 && S === 1) return `x${c}_${r}_${cname(j)}`;
    return `vec4<f32>(${range(4)
      .map((e) => {
        const jj = Math.floor((rel + S * e) / 4);
        return `x${c}_${r}_${cname(jj)}.${comps[rel + S * e - 4 * jj]}`;
      })
      .join(", ")})`;
  };
  const L: string[] = [
    // Lanes of a workgroup share the input channel block (the x loads) over output blocks.
    `let ob = i % ${u32(NOB)};`,
    `let cb = i / ${u32(NOB)};`,
    `let o0 = ob * ${u32(OB)};`,
    `let grp = o0 / ${u32(d.OG)};`,
    `let c0 = cb * ${u32(CB)};`,
  ];
  for (const o of range(OB)) for (const c of range(CB)) for (const t of range(d.KK)) L.push(`var a${o}_${c}_${t} = 0.0;`);
  L.push(`for (var n = 0u; n < ${u32(d.N)}; n++) {`);
  L.push(`  let xn = (n * ${u32(d.C)} + grp * ${u32(d.CG)} + c0) * ${u32(d.H * WIV)};`);
  L.push(`  let gn = (n * ${u32(d.O)} + o0) * ${u32(d.HO * WV)};`);
  L.push(`  for (var oh = 0; oh < ${i32(d.HO)}; oh += ${i32(R)}) {`);
  for (const r of rows) {
    L.push(`    let ih${r} = ${times("oh", S)} + ${i32(r - P)};`);
    L.push(`    let ro${r} = u32(clamp(ih${r}, 0, ${i32(d.H - 1)})) * ${u32(WIV)};`);
    L.push(`    let rv${r} = ih${r} >= 0 && ih${r} < ${i32(d.H)};`);
  }
  L.push(`    for (var wv = 0; wv < ${i32(WV)}; wv += ${i32(PV)}) {`);
  for (const j of chunks) {
    L.push(`      let cj${cname(j)} = ${times("wv", S)} + ${i32(j)};`);
    L.push(`      let cx${cname(j)} = u32(clamp(cj${cname(j)}, 0, ${i32(WIV - 1)}));`);
    L.push(`      let cv${cname(j)} = cj${cname(j)} >= 0 && cj${cname(j)} < ${i32(WIV)};`);
  }
  for (const o of range(OB))
    for (const r of range(R))
      for (const v of range(PV)) L.push(`      let g${o}_${r}_${v} = x1[gn + ${u32(o * d.HO * WV)} + u32(oh + ${i32(r)}) * ${u32(WV)} + u32(wv + ${i32(v)})];`);
  for (const c of range(CB)) {
    for (const r of rows)
      for (const j of chunks)
        L.push(`      let x${c}_${r}_${cname(j)} = select(vec4<f32>(0.0), x0[xn + ${u32(c * d.H * WIV)} + ro${r} + cx${cname(j)}], rv${r} && cv${cname(j)});`);
    for (const o of range(OB)) {
      for (const kh of range(K)) {
        for (const kw of range(K)) {
          const t = kh * K + kw;
          for (const r of range(R))
            for (const v of range(PV)) L.push(`      a${o}_${c}_${t} += dot(g${o}_${r}_${v}, ${vecAt(c, r * S + kh * D, 4 * v * S - P + kw * D)});`);
        }
      }
    }
  }
  L.push(`    }`);
  L.push(`  }`);
  L.push(`}`);
  for (const o of range(OB))
    for (const c of range(CB))
      for (const t of range(d.KK)) L.push(`y[(o0 + ${u32(o)}) * ${u32(d.CG * d.KK)} + (c0 + ${u32(c)}) * ${u32(d.KK)} + ${u32(t)}] = a${o}_${c}_${t};`);
  return {
    invocations: NOB * NCB,
    body: L.join("\n"),
    types: ["vec4<f32>", "vec4<f32>", "f32"],
    workgroupSize: p.wg,
  };
}

/** The blocked kernel body of a convolution node, or undefined where it does not apply. */
export function blockedConv(ctx: KernelContext<Prim>, fwd: FwdParams = FWD_DEFAULT, wgrad: WgradParams = WGRAD_DEFAULT): KernelBody | undefined {
  switch (ctx.node.prim) {
    case "conv2d":
      return conv2dBlocked(ctx as KernelContext<"conv2d">, fwd);
    case "conv2d_input_grad":
      return conv2dInputGradBlocked(ctx as KernelContext<"conv2d_input_grad">, fwd);
    case "conv2d_weight_grad":
      return conv2dWeightGradBlocked(ctx as KernelContext<"conv2d_weight_grad">, wgrad);
    default:
      return undefined;
  }
}

/** Multiply-adds of a convolution node (the same for its three forms). */
export function convFlops(ctx: KernelContext<Prim>): number {
  const p = ctx.node.prim;
  // The weight and the output of the forward convolution.
  const [w, y] = p === "conv2d" ? [ctx.inShapes[1]!, ctx.outShape] : p === "conv2d_input_grad" ? [ctx.inShapes[1]!, ctx.inShapes[0]!] : [ctx.outShape, ctx.inShapes[1]!];
  return 2 * y[0]! * y[1]! * y[2]! * y[3]! * w[1]! * w[2]! * w[3]!;
}

/** K of the K x K convolution kernel. */
export function kernelSize(ctx: KernelContext<Prim>): number {
  return ctx.node.prim === "conv2d_weight_grad" ? ctx.outShape[2]! : ctx.inShapes[1]![2]!;
}

/** Below this many FLOPs a convolution with a kernel larger than 1x1 keeps only the simple
 * kernels: the blocked one's body, unrolled over the K*K taps, costs seconds of shader
 * compilation on lavapipe (cold cache), more than it can save on a small convolution. 4 MFLOP
 * takes in DRIFA-Net's 3x3 convolutions at width 16, 64x64, batch 8 (9.4 MFLOP each), which made
 * its training step 19 % faster. A 1x1 convolution's blocked body is short (tens of ms to
 * compile) and its vec4 loads beat the register kernel's guarded gathers at any size (HIFA's
 * [8,64,4,4]: 0.12 against 0.22 ms forward, 0.16 against 0.47 ms weight gradient), so 1x1
 * convolutions always get it. */
export const BLOCKED_MIN_FLOPS = 4e6;

export const BLOCKED_VARIANT = "blocked";

/** The blocked variant of a convolution node, when its shape allows one and it is large
 * enough to pay for its compilation (`force` skips the size test: tests). */
export function blockedVariant(ctx: KernelContext<Prim>, options: { force?: boolean } = {}): KernelVariant | undefined {
  if (ctx.node.prim !== "conv2d" && ctx.node.prim !== "conv2d_input_grad" && ctx.node.prim !== "conv2d_weight_grad") return undefined;
  if (!options.force && kernelSize(ctx) > 1 && convFlops(ctx) < BLOCKED_MIN_FLOPS) return undefined;
  const body = blockedConv(ctx);
  if (!body) return undefined;
  const spec = assemble(ctx, body);
  return { name: BLOCKED_VARIANT, wgsl: spec.wgsl, workgroupSize: spec.workgroupSize, dispatch: spec.dispatch };
}
