// The static memory plan: values that live only within a step share buffers by liveness.
//
// Kernels run in a fixed order (the fusion pass's schedule). A value is live from the kernel
// that writes it to the last kernel that reads it; after that its buffer may hold a value
// written by a LATER kernel (never the same one: WebGPU forbids binding one buffer read-only
// and writable in a dispatch, and a kernel's outputs must not overwrite its own inputs). Whole
// buffers are reused, never parts of them: each value is a view at offset 0 of its pool buffer,
// which is as large as the largest value it ever holds. Values the host reads after the step
// (losses, gradients before their copies, checks) are kept to the end.

export interface Lifetime {
  /** Caller's key for the value. */
  id: number;
  floats: number;
  /** Index of the kernel that writes it. */
  def: number;
  /** Index of the last kernel that reads it; Infinity for values read after the step. */
  lastUse: number;
}

export interface MemoryPlan {
  /** Floats of each pool buffer. */
  pools: number[];
  /** Value id -> pool index. */
  poolOf: Map<number, number>;
}

/** Assigns values to pool buffers, greedy by size: largest value first, into the smallest
 * existing buffer that is free over its whole lifetime (every value already there either dies
 * before it is written or is written after its last read), else a new buffer of its size.
 * Largest first means a buffer is never grown, and the total stays near the largest amount of
 * memory live at once (the lower bound for this schedule). */
export function planMemory(values: readonly Lifetime[]): MemoryPlan {
  const pools: number[] = [];
  const held: Lifetime[][] = [];
  const poolOf = new Map<number, number>();
  const bySize = [...values].sort((a, b) => b.floats - a.floats || a.def - b.def || a.id - b.id);
  const apart = (a: Lifetime, b: Lifetime) => b.def > a.lastUse || a.def > b.lastUse;
  for (const v of bySize) {
    let pick = -1;
    for (let p = 0; p < pools.length; p++) {
      if (pick >= 0 && pools[p]! >= pools[pick]!) continue;
      if (held[p]!.every((w) => apart(w, v))) pick = p;
    }
    if (pick < 0) {
      pick = pools.length;
      pools.push(v.floats);
      held.push([]);
    }
    held[pick]!.push(v);
    poolOf.set(v.id, pick);
  }
  return { pools, poolOf };
}
