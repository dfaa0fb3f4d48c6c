// The order the fused kernels run in: each after the kernels it reads from, preferring the
// program's order (the smallest value id first), so values live about as long as the program
// says. Kahn's algorithm over the kernel graph with a binary heap.
import { FusionError, type KernelGroup } from "./fuse.ts";

/** Kernels in an order where each runs after the kernels it reads from, preferring the program's
 * order (the smallest value id first), so values live about as long as the program says. */
export function schedule(groups: KernelGroup[]): KernelGroup[] {
  const producer = new Map<number, number>();
  groups.forEach((g, k) => g.roots.forEach((r) => producer.set(r, k)));
  const waiting = groups.map(() => 0);
  const dependents: number[][] = groups.map(() => []);
  groups.forEach((g, k) => {
    const from = new Set(g.reads.map((r) => producer.get(r)).filter((p): p is number => p !== undefined));
    waiting[k] = from.size;
    for (const p of from) dependents[p]!.push(k);
  });
  const key = (k: number) => groups[k]!.roots[0]!;
  const heap = new MinHeap<number>((a, b) => key(a) - key(b));
  groups.forEach((_, k) => {
    if (waiting[k] === 0) heap.push(k);
  });
  const out: KernelGroup[] = [];
  while (heap.size > 0) {
    const k = heap.pop()!;
    out.push(groups[k]!);
    for (const d of dependents[k]!) if (--waiting[d]! === 0) heap.push(d);
  }
  if (out.length !== groups.length) throw new FusionError("internal error: the fused kernels depend on each other in a cycle");
  return out;
}

class MinHeap<T> {
  private items: T[] = [];
  constructor(private less: (a: T, b: T) => number) {}
  get size(): number {
    return this.items.length;
  }
  push(x: T): void {
    const a = this.items;
    a.push(x);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.less(a[i]!, a[p]!) >= 0) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }
  pop(): T | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.less(a[l]!, a[m]!) < 0) m = l;
        if (r < a.length && this.less(a[r]!, a[m]!) < 0) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}
