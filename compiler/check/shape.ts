// Tensor shapes as types: each axis has an optional label (its dimension name) and a size.
// Broadcasting lines axes up by label, never by position alone: a [N, C] attention map times a
// [N, C, H, W] feature map aligns N and C, and anything that does not line up is an error.
import { Size } from "./size.ts";

export interface Axis {
  label: string | null;
  size: Size;
}

export type Shape = Axis[];

export function formatAxis(a: Axis): string {
  const size = a.size.toString();
  if (a.label === null) return size;
  if (a.label === size) return a.label;
  return `${a.label}=${size}`;
}

export function formatShape(s: Shape): string {
  return `[${s.map(formatAxis).join(", ")}]`;
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((ax, i) => ax.size.equals(b[i]!.size) && ax.label === b[i]!.label);
}

export function numel(s: Shape): Size {
  return s.reduce((acc, a) => acc.mul(a.size), Size.of(1));
}

/** The outcome of broadcasting: the result shape, and for each operand the result axis that each
 * of its axes maps to (what lowering needs to index the operand). */
export interface Broadcast {
  shape: Shape;
  axisMaps: number[][];
}

export type BroadcastResult = { ok: true; value: Broadcast } | { ok: false; reason: string };

function isOne(a: Axis): boolean {
  return a.size.value === 1;
}

/** Broadcast two shapes by dimension label. */
export function broadcast2(a: Shape, b: Shape): BroadcastResult {
  if (a.length === 0) return { ok: true, value: { shape: b, axisMaps: [[], b.map((_, i) => i)] } };
  if (b.length === 0) return { ok: true, value: { shape: a, axisMaps: [a.map((_, i) => i), []] } };
  // Same labels in the same order: elementwise, sizes must agree (or be 1 on one side).
  if (a.length === b.length && a.every((ax, i) => ax.label === b[i]!.label)) {
    const shape: Shape = [];
    for (let i = 0; i < a.length; i++) {
      const x = a[i]!;
      const y = b[i]!;
      if (x.size.equals(y.size) || isOne(y)) shape.push(x);
      else if (isOne(x)) shape.push(y);
      else return { ok: false, reason: `axis ${i}${x.label ? ` (${x.label})` : ""} has size ${x.size} on the left and ${y.size} on the right` };
    }
    const ident = a.map((_, i) => i);
    return { ok: true, value: { shape, axisMaps: [ident, ident] } };
  }
  const swap = b.length > a.length;
  const big = swap ? b : a;
  const small = swap ? a : b;
  const map: number[] = [];
  let last = -1;
  for (const ax of small) {
    if (ax.label === null) {
      return { ok: false, reason: `an unlabelled axis of size ${ax.size} cannot be lined up; give the dimension a name` };
    }
    const at = big.findIndex((x) => x.label === ax.label);
    if (at < 0) return { ok: false, reason: `dimension ${ax.label} is not in ${formatShape(big)}` };
    if (at <= last) return { ok: false, reason: `dimension ${ax.label} is out of order` };
    if (!big[at]!.size.equals(ax.size) && !isOne(ax)) {
      return { ok: false, reason: `dimension ${ax.label} has size ${big[at]!.size} in one and ${ax.size} in the other` };
    }
    map.push(at);
    last = at;
  }
  const ident = big.map((_, i) => i);
  return { ok: true, value: { shape: big, axisMaps: swap ? [map, ident] : [ident, map] } };
}
