// The routines: matmul, convolution and its two gradients, and the window gather that windowed
// pooling lowers to (pooling = a reduction over the gathered window axis).
//
// conv2d, conv2d_input_grad and conv2d_weight_grad are three faces of one trilinear form
// T(x, w, g) = sum over (n, o, oh, ow, c, kh, kw) of x[n, c, ih, iw] * w[o, c', kh, kw] * g[n, o, oh, ow]
// (ih = oh*stride - padding + kh*dilation, likewise iw): each computes the derivative of T with
// respect to one argument. So one loop nest implements all three, and each one's VJP is another.
import { type ConvAttrs, type OpRule, type WindowAttrs, fmtShape, irAssert, numel } from "../primitives.ts";

type Routine = "matmul" | "conv2d" | "conv2d_input_grad" | "conv2d_weight_grad" | "windows" | "windows_transpose";

export function windowOutput(size: number, k: number, stride: number, padding: number, dilation: number): number {
  return Math.floor((size + 2 * padding - dilation * (k - 1) - 1) / stride) + 1;
}

function conv(a: ConvAttrs): ConvAttrs {
  return { stride: a.stride, padding: a.padding, dilation: a.dilation, groups: a.groups };
}

/** Checks x [N, C, H, W] and w [O, C/groups, k, k] and returns the output shape [N, O, Ho, Wo]. */
function convShape(x: number[], w: number[], a: ConvAttrs): number[] {
  irAssert(x.length === 4 && w.length === 4 && w[2] === w[3], () => `conv2d of ${fmtShape(x)} with weight ${fmtShape(w)}`);
  const [n, c, h, wd] = x as [number, number, number, number];
  const [o, cg, k] = w as [number, number, number, number];
  irAssert([a.stride, a.dilation, a.groups].every((v) => Number.isInteger(v) && v >= 1) && a.padding >= 0, () => `conv2d attributes ${JSON.stringify(a)}`);
  irAssert(c % a.groups === 0 && o % a.groups === 0 && cg === c / a.groups, () => `conv2d: ${c} input channels, ${o} outputs, groups ${a.groups}, weight ${fmtShape(w)}`);
  const ho = windowOutput(h, k, a.stride, a.padding, a.dilation);
  const wo = windowOutput(wd, k, a.stride, a.padding, a.dilation);
  irAssert(ho >= 1 && wo >= 1, () => `conv2d leaves no output from ${fmtShape(x)}`);
  return [n, o, ho, wo];
}

type Mode = "forward" | "input" | "weight";

/** The loop nest of T: "forward" writes Y from X, W; "input" accumulates X from Y, W;
 * "weight" accumulates W from X, Y. */
function convLoop(mode: Mode, X: Float64Array, Wt: Float64Array, Y: Float64Array, xs: number[], ws: number[], ys: number[], a: ConvAttrs): void {
  const [N, C, H, W] = xs as [number, number, number, number];
  const [O, Cg, K] = ws as [number, number, number, number];
  const Ho = ys[2]!;
  const Wo = ys[3]!;
  const Og = O / a.groups;
  const { stride: s, padding: p, dilation: d } = a;
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      const grp = Math.floor(o / Og);
      for (let oh = 0; oh < Ho; oh++) {
        for (let ow = 0; ow < Wo; ow++) {
          const yi = ((n * O + o) * Ho + oh) * Wo + ow;
          const gy = Y[yi]!;
          let acc = 0;
          for (let ci = 0; ci < Cg; ci++) {
            const xBase = (n * C + grp * Cg + ci) * H * W;
            const wBase = (o * Cg + ci) * K * K;
            for (let kh = 0; kh < K; kh++) {
              const ih = oh * s - p + kh * d;
              if (ih < 0 || ih >= H) continue;
              for (let kw = 0; kw < K; kw++) {
                const iw = ow * s - p + kw * d;
                if (iw < 0 || iw >= W) continue;
                const xi = xBase + ih * W + iw;
                const wi = wBase + kh * K + kw;
                if (mode === "forward") acc += X[xi]! * Wt[wi]!;
                else if (mode === "input") X[xi]! += gy * Wt[wi]!;
                else Wt[wi]! += gy * X[xi]!;
              }
            }
          }
          if (mode === "forward") Y[yi] = acc;
        }
      }
    }
  }
}

function windowsShape(x: number[], a: WindowAttrs): number[] {
  irAssert(x.length === 4 && a.k >= 1 && a.stride >= 1 && a.padding >= 0 && a.padding < a.k, () => `windows of ${fmtShape(x)} with ${JSON.stringify(a)}`);
  const ho = windowOutput(x[2]!, a.k, a.stride, a.padding, 1);
  const wo = windowOutput(x[3]!, a.k, a.stride, a.padding, 1);
  irAssert(ho >= 1 && wo >= 1, () => `windows leave no output from ${fmtShape(x)}`);
  return [x[0]!, x[1]!, ho, wo, a.k * a.k];
}

/** The loop nest shared by windows (gather; padding reads `pad`) and its transpose (scatter-add). */
function windowLoop(gather: boolean, X: Float64Array, Y: Float64Array, xs: number[], ys: number[], a: WindowAttrs, pad: number): void {
  const [N, C, H, W] = xs as [number, number, number, number];
  const [, , Ho, Wo, KK] = ys as [number, number, number, number, number];
  const { k, stride, padding } = a;
  for (let nc = 0; nc < N * C; nc++) {
    for (let oh = 0; oh < Ho; oh++) {
      for (let ow = 0; ow < Wo; ow++) {
        const yBase = ((nc * Ho + oh) * Wo + ow) * KK;
        for (let kh = 0; kh < k; kh++) {
          const ih = oh * stride - padding + kh;
          for (let kw = 0; kw < k; kw++) {
            const iw = ow * stride - padding + kw;
            const inside = ih >= 0 && ih < H && iw >= 0 && iw < W;
            const yi = yBase + kh * k + kw;
            if (gather) Y[yi] = inside ? X[(nc * H + ih) * W + iw]! : pad;
            else if (inside) X[(nc * H + ih) * W + iw]! += Y[yi]!;
          }
        }
      }
    }
  }
}

function win(a: WindowAttrs): WindowAttrs {
  return { k: a.k, stride: a.stride, padding: a.padding };
}

export const routineRules: { [P in Routine]: OpRule<P> } = {
  matmul: {
    arity: 2,
    shape([a, b], t) {
      irAssert(a!.length === 2 && b!.length === 2, () => `matmul of ${fmtShape(a!)} and ${fmtShape(b!)}`);
      const [m, ka] = t.transA ? [a![1]!, a![0]!] : [a![0]!, a![1]!];
      const [kb, n] = t.transB ? [b![1]!, b![0]!] : [b![0]!, b![1]!];
      irAssert(ka === kb, () => `matmul: inner sizes ${ka} and ${kb} differ`);
      return [m, n];
    },
    eval([A, B], t, [as, bs], [M, N]) {
      const K = t.transA ? as![0]! : as![1]!;
      // Element (i, k) of op(A) is A[i * ai + k * ak]; likewise (k, j) of op(B).
      const [ai, ak] = t.transA ? [1, M!] : [K, 1];
      const [bk, bj] = t.transB ? [1, K] : [N!, 1];
      const Y = new Float64Array(M! * N!);
      for (let i = 0; i < M!; i++) {
        for (let j = 0; j < N!; j++) {
          let acc = 0;
          for (let k = 0; k < K; k++) acc += A![i * ai + k * ak]! * B![k * bk + j * bj]!;
          Y[i * N! + j] = acc;
        }
      }
      return Y;
    },
    vjp: (e, node, g, needs) => {
      // C = op(A) op(B): dop(A) = G op(B)^T, dop(B) = op(A)^T G, then undo the transposes;
      // each case is again one matmul with flags.
      const [a, b] = node.inputs as [number, number];
      const { transA: ta, transB: tb } = node.attrs;
      const mm = (x: number, y: number, transA: boolean, transB: boolean) => e.emit("matmul", [x, y], { transA, transB });
      const da = !needs[0] ? null : ta ? mm(b, g, tb, true) : mm(g, b, false, !tb);
      const db = !needs[1] ? null : tb ? mm(g, a, true, ta) : mm(a, g, !ta, false);
      return [da, db];
    },
  },
  conv2d: {
    arity: 2,
    shape: ([x, w], a) => convShape(x!, w!, a),
    eval([x, w], a, [xs, ws], out) {
      const y = new Float64Array(numel(out));
      convLoop("forward", x!, w!, y, xs!, ws!, out, a);
      return y;
    },
    vjp: (e, node, g, needs) => {
      const [x, w] = node.inputs as [number, number];
      const [, , h, wd] = e.shapeOf(x) as [number, number, number, number];
      const a = conv(node.attrs);
      return [
        needs[0] ? e.emit("conv2d_input_grad", [g, w], { ...a, h, w: wd }) : null,
        needs[1] ? e.emit("conv2d_weight_grad", [x, g], { ...a, k: e.shapeOf(w)[2]! }) : null,
      ];
    },
  },
  conv2d_input_grad: {
    arity: 2,
    shape([g, w], a) {
      irAssert(g!.length === 4 && w!.length === 4, () => `conv2d_input_grad of ${fmtShape(g!)} with ${fmtShape(w!)}`);
      const xs = [g![0]!, w![1]! * a.groups, a.h, a.w];
      const ys = convShape(xs, w!, a);
      irAssert(ys.every((d, i) => d === g![i]), () => `conv2d_input_grad: ${fmtShape(g!)} is not the output shape ${fmtShape(ys)} of ${fmtShape(xs)}`);
      return xs;
    },
    eval([g, w], a, [gs, ws], out) {
      const x = new Float64Array(numel(out));
      convLoop("input", x, w!, g!, out, ws!, gs!, a);
      return x;
    },
    vjp: (e, node, c, needs) => {
      const [g, w] = node.inputs as [number, number];
      const a = conv(node.attrs);
      return [
        needs[0] ? e.emit("conv2d", [c, w], a) : null,
        needs[1] ? e.emit("conv2d_weight_grad", [c, g], { ...a, k: e.shapeOf(w)[2]! }) : null,
      ];
    },
  },
  conv2d_weight_grad: {
    arity: 2,
    shape([x, g], a) {
      irAssert(x!.length === 4 && g!.length === 4 && x![1]! % a.groups === 0, () => `conv2d_weight_grad of ${fmtShape(x!)} and ${fmtShape(g!)}`);
      const ws = [g![1]!, x![1]! / a.groups, a.k, a.k];
      const ys = convShape(x!, ws, a);
      irAssert(ys.every((d, i) => d === g![i]), () => `conv2d_weight_grad: ${fmtShape(g!)} is not the output shape ${fmtShape(ys)}`);
      return ws;
    },
    eval([x, g], a, [xs, gs], out) {
      const w = new Float64Array(numel(out));
      convLoop("weight", x!, w, g!, xs!, out, gs!, a);
      return w;
    },
    vjp: (e, node, c, needs) => {
      const [x, g] = node.inputs as [number, number];
      const [, , h, wd] = e.shapeOf(x) as [number, number, number, number];
      const a = conv(node.attrs);
      return [needs[0] ? e.emit("conv2d_input_grad", [g, c], { ...a, h, w: wd }) : null, needs[1] ? e.emit("conv2d", [x, c], a) : null];
    },
  },
  windows: {
    arity: 1,
    shape: ([x], a) => windowsShape(x!, a),
    eval([x], a, [xs], out) {
      const y = new Float64Array(numel(out));
      windowLoop(true, x!, y, xs!, out, a, a.pad);
      return y;
    },
    // Padded positions are constants: their gradient is dropped by the transpose.
    vjp: (e, node, g) => {
      const [, , h, w] = e.shapeOf(node.inputs[0]!) as [number, number, number, number];
      return [e.emit("windows_transpose", [g], { ...win(node.attrs), h, w })];
    },
  },
  windows_transpose: {
    arity: 1,
    shape([g], a) {
      irAssert(g!.length === 5, () => `windows_transpose of ${fmtShape(g!)}`);
      const xs = [g![0]!, g![1]!, a.h, a.w];
      const ys = windowsShape(xs, a);
      irAssert(ys.every((d, i) => d === g![i]), () => `windows_transpose: ${fmtShape(g!)} is not the windows of ${fmtShape(xs)}`);
      return xs;
    },
    eval([g], a, [gs], out) {
      const x = new Float64Array(numel(out));
      windowLoop(false, x, g!, out, gs!, a, 0);
      return x;
    },
    vjp: (e, node, c) => [e.emit("windows", [c], { ...win(node.attrs), pad: 0 })],
  },
};
