// The MFA/MIFA modulation x * sigmoid(wd d + wl l) * wc and its six gradients as IR, as
// models/lib/mfa.drifa computes it: shared by the fusion tests and the kernel bench. x, d and l
// are graph inputs (activations in a real network, each in a buffer of its own) and wd, wl, wc
// parameters (one arena); with `packed`, d and l join the parameters' arena, the layout of the
// bench's hand-fused kernels (x and dy in buffers of their own, the small tensors in one).
import { differentiate } from "../compiler/ir/autodiff.ts";
import { add, broadcastTo, mul, sumTo } from "../compiler/ir/emit.ts";
import { Graph } from "../compiler/ir/graph.ts";

/** x * sigmoid(wd * d + wl * l) * wc, as models/lib/mfa.drifa writes it: d and l per sample
 * and channel ([N, C], "model") or per element ("full"); wd a scalar, wl and wc per channel. */
export function modulationGraph(variant: "model" | "full", [N, C, H, W]: number[], { packed = false } = {}) {
  const g = new Graph();
  const big = [N!, C!, H!, W!];
  const small = variant === "full" ? big : [N!, C!];
  const x = g.input("x", big);
  const d = packed ? g.param("d", small) : g.input("d", small);
  const l = packed ? g.param("l", small) : g.input("l", small);
  const dy = g.input("dy", big);
  const wd = g.param("wd", []);
  const wl = g.param("wl", [C!]);
  const wc = g.param("wc", [C!]);
  const a = add(g, mul(g, broadcastTo(g, wd, small, []), d), mul(g, broadcastTo(g, wl, small, [1]), l));
  // As the lowering of mfa.drifa: σ of the [N, C] gate, then broadcast over the planes.
  const s = variant === "full" ? g.emit("sigmoid", [a], {}) : broadcastTo(g, g.emit("sigmoid", [a], {}), big, [0, 1]);
  const y = mul(g, mul(g, x, s), broadcastTo(g, wc, big, [1]));
  // Backward from an upstream gradient dy: the loss <y, dy>.
  const loss = sumTo(g, mul(g, y, dy), [], []);
  const wrt = [x, d, l, wd, wl, wc];
  const grads = differentiate(g, loss, wrt);
  return { g, y, grads: wrt.map((v) => grads.byValue.get(v)!) };
}
