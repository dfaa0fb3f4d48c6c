// Seeded parameter initialisation, shared by the float64 interpreter (compiler/ir) and the
// generated trainers, so that the same seed gives the same initial weights everywhere. Each
// tensor draws from its own stream, seeded by (seed, name): adding a layer does not change the
// others' initial values. Browser-safe.

/** The PCG hash (Jarzynski and Olano, "Hash functions for GPU rendering", 2020): u32 -> u32 with
 * only 32-bit multiplies, shifts and xors, so WGSL computes the same bits; dropout masks use it. */
export function pcgHash(v: number): number {
  const state = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> ((state >>> 28) + 4)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

/** A seeded uniform generator in [0, 1): the PCG hash of a running counter. */
export function seededUniform(seed: number): () => number {
  let counter = pcgHash(seed >>> 0);
  return () => {
    counter = (counter + 1) >>> 0;
    // Two hashes give 53 random bits, so the normal draws below never see log(0).
    const hi = pcgHash(counter) >>> 5;
    const lo = pcgHash((counter ^ 0x9e3779b9) >>> 0) >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  };
}

function nameSeed(seed: number, name: string): number {
  let h = pcgHash(seed >>> 0);
  for (let i = 0; i < name.length; i++) h = pcgHash((h + name.charCodeAt(i)) >>> 0);
  return h;
}

/** How a tensor starts (the checker's `Init`, restated here: the runtime never imports the
 * compiler). */
export type InitSpec =
  | { kind: "constant"; value: number }
  | { kind: "he"; fanIn: number }
  | { kind: "glorot"; fanIn: number; fanOut: number }
  | { kind: "normal"; std: number }
  | { kind: "uniform"; low: number; high: number };

export interface TensorInit {
  name: string;
  /** Element count. */
  size: number;
  init: InitSpec;
}

/** Initial values of one tensor, in float64 (callers round to f32 for the GPU). */
export function initTensor(t: TensorInit, seed: number): Float64Array {
  const u = seededUniform(nameSeed(seed, t.name));
  const normal = () => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
  const v = new Float64Array(t.size);
  const init = t.init;
  for (let i = 0; i < t.size; i++) {
    switch (init.kind) {
      case "constant":
        v[i] = init.value;
        break;
      case "he":
        v[i] = normal() * Math.sqrt(2 / init.fanIn);
        break;
      case "glorot": {
        const r = Math.sqrt(6 / (init.fanIn + init.fanOut));
        v[i] = (2 * u() - 1) * r;
        break;
      }
      case "normal":
        v[i] = normal() * init.std;
        break;
      case "uniform":
        v[i] = init.low + (init.high - init.low) * u();
        break;
    }
  }
  return v;
}
