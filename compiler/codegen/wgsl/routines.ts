// matmul (register-blocked, no workgroup memory, as the conv family) and the window gather
// of pooling with its transpose (a gather as well: each input pixel sums the window slots
// that read it, so no scatter and no atomics).
import { type KernelEmitter, f32, i32, u32 } from "./kernel.ts";

const matmul: KernelEmitter<"matmul"> = ({ attrs, inShapes, outShape }) => {
  const [M, N] = outShape as [number, number];
  const a = inShapes[0]!;
  const K = attrs.transA ? a[0]! : a[1]!;
  // Element (r, k) of op(A) is A[r * ar + k * ak]; (k, c) of op(B) is B[k * bk + c * bc].
  const [ar, ak] = attrs.transA ? [1, M] : [K, 1];
  const [bk, bc] = attrs.transB ? [1, K] : [N, 1];
  // Up to 4 rows x 4 columns per invocation; a row's 4 columns form one vec4 accumulator.
  const RM = Math.min(4, M);
  const RN = Math.min(4, N);
  const nbN = Math.ceil(N / RN);
  const rows = Array.from({ length: RM }, (_, q) => q);
  const cols = Array.from({ length: 4 }, (_, p) => p);
  const body = [
    `let r0 = (i / ${u32(nbN)}) * ${u32(RM)};`,
    `let c0 = (i % ${u32(nbN)}) * ${u32(RN)};`,
    // Clamped, so loads stay in bounds; the stores below skip the clamped duplicates.
    ...rows.map((q) => `let ra${q} = min(r0 + ${u32(q)}, ${u32(M - 1)}) * ${u32(ar)};`),
    ...cols.slice(0, RN).map((p) => `let cb${p} = min(c0 + ${u32(p)}, ${u32(N - 1)}) * ${u32(bc)};`),
    ...rows.map((q) => `var acc${q} = vec4<f32>(0.0);`),
    `for (var k = 0u; k < ${u32(K)}; k++) {`,
    `  let kb = k * ${u32(bk)};`,
    `  let ka = k * ${u32(ak)};`,
    `  let b = vec4<f32>(${cols.map((p) => (p < RN ? `x1[kb + cb${p}]` : "0.0")).join(", ")});`,
    ...rows.map((q) => `  acc${q} += x0[ra${q} + ka] * b;`),
    `}`,
    ...rows.flatMap((q) =>
      cols.slice(0, RN).map((p) => {
        const conds = [...(M % RM ? [`r0 + ${u32(q)} < ${u32(M)}`] : []), ...(N % RN ? [`c0 + ${u32(p)} < ${u32(N)}`] : [])];
        const store = `y[(r0 + ${u32(q)}) * ${u32(N)} + c0 + ${u32(p)}] = acc${q}[${p}];`;
        return conds.length ? `if (${conds.join(" && ")}) { ${store} }` : store;
      }),
    ),
  ].join("\n");
  return { invocations: Math.ceil(M / RM) * nbN, body };
};

const windows: KernelEmitter<"windows"> = ({ attrs, inShapes, outShape }) => {
  const [, , H, W] = inShapes[0] as [number, number, number, number];
  const [, , HO, WO, KK] = outShape as [number, number, number, number, number];
  const { k, stride: S, padding: P } = attrs;
  const body = [
    `let kk = i % ${u32(KK)};`,
    `let ow = i32((i / ${u32(KK)}) % ${u32(WO)});`,
    `let oh = i32((i / ${u32(KK * WO)}) % ${u32(HO)});`,
    `let nc = i / ${u32(KK * WO * HO)};`,
    `let ih = oh * ${i32(S)} - ${i32(P)} + i32(kk / ${u32(k)});`,
    `let iw = ow * ${i32(S)} - ${i32(P)} + i32(kk % ${u32(k)});`,
    `let ok = ih >= 0 && ih < ${i32(H)} && iw >= 0 && iw < ${i32(W)};`,
    // Padding reads the attribute's value (-inf for max pooling, +inf for min, 0 for average).
    `y[i] = select(${f32(attrs.pad)}, x0[select(0, i32(nc * ${u32(H * W)}) + ih * ${i32(W)} + iw, ok)], ok);`,
  ].join("\n");
  return { invocations: outShape.reduce((x, y) => x * y, 1), body };
};

const windowsTranspose: KernelEmitter<"windows_transpose"> = ({ attrs, inShapes, outShape }) => {
  const [, , HO, WO, KK] = inShapes[0] as [number, number, number, number, number];
  const [, , H, W] = outShape as [number, number, number, number];
  const { k, stride: S, padding: P } = attrs;
  // Window (oh, ow) slot (kh, kw) reads input (oh*S - P + kh, ow*S - P + kw).
  const exact = (v: string) => (S === 1 ? "" : ` && ${v} % ${i32(S)} == 0`);
  const over = (v: string) => (S === 1 ? v : `${v} / ${i32(S)}`);
  const body = [
    `let iw = i32(i % ${u32(W)}) + ${i32(P)};`,
    `let ih = i32((i / ${u32(W)}) % ${u32(H)}) + ${i32(P)};`,
    `let nc = i32(i / ${u32(H * W)});`,
    `var acc = 0.0;`,
    `for (var kh = 0; kh < ${i32(k)}; kh++) {`,
    `  let th = ih - kh;`,
    `  let rh = th >= 0${exact("th")} && ${over("th")} < ${i32(HO)};`,
    `  for (var kw = 0; kw < ${i32(k)}; kw++) {`,
    `    let tw = iw - kw;`,
    `    let ok = rh && tw >= 0${exact("tw")} && ${over("tw")} < ${i32(WO)};`,
    `    let g = ((nc * ${i32(HO)} + ${over("th")}) * ${i32(WO)} + ${over("tw")}) * ${i32(KK)} + kh * ${i32(k)} + kw;`,
    `    if (ok) { acc += x0[g]; }`,
    `  }`,
    `}`,
    `y[i] = acc;`,
  ].join("\n");
  return { invocations: outShape.reduce((x, y) => x * y, 1), body };
};

export const routineEmitters: { [P in "matmul" | "windows" | "windows_transpose"]: KernelEmitter<P> } = {
  matmul,
  windows,
  windows_transpose: windowsTranspose,
};
