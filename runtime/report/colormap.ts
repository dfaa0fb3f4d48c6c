// Colour maps for heat maps (Grad-CAM, uncertainty maps). Turbo and viridis are perceptually
// ordered (lightness changes monotonically or smoothly, no false edges); jet is provided because
// Grad-CAM papers, including DRIFA-Net's, use it and readers compare figures side by side.
// Pure functions, browser-safe.

export type ColormapName = "turbo" | "viridis" | "jet";

const clamp01 = (v: number) => (v < 0 ? 0 : v > 1 ? 1 : v);

// Turbo: Anton Mikhailov's colour map, polynomial approximation by Ruofei Du (Google, Apache-2.0).
const TURBO = {
  r: [0.13572138, 4.6153926, -42.66032258, 132.13108234, -152.94239396, 59.28637943],
  g: [0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604],
  b: [0.1066733, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973],
};

// Viridis (matplotlib): degree-6 polynomial fit by Matt Zucker; within ~1% of the table.
const VIRIDIS = {
  r: [0.2777273272234177, 0.1050930431085774, -0.3308618287255563, -4.634230498983486, 6.228269936347081, 4.776384997670288, -5.435455855934631],
  g: [0.005407344544966578, 1.404613529898575, 0.214847559468213, -5.799100973351585, 14.17993336680509, -13.74514537774601, 4.645852612178535],
  b: [0.3340998053353061, 1.384590162594685, 0.09509516302823659, -19.33244095627987, 56.69055260068105, -65.35303263337234, 26.3124352495832],
};

function poly(c: readonly number[], t: number): number {
  let v = 0;
  for (let i = c.length - 1; i >= 0; i--) v = v * t + c[i]!;
  return clamp01(v);
}

/** RGB in [0, 1] for a value t in [0, 1] (clamped). */
export function colormap(name: ColormapName, t: number): [number, number, number] {
  t = clamp01(t);
  switch (name) {
    case "turbo":
      return [poly(TURBO.r, t), poly(TURBO.g, t), poly(TURBO.b, t)];
    case "viridis":
      return [poly(VIRIDIS.r, t), poly(VIRIDIS.g, t), poly(VIRIDIS.b, t)];
    case "jet":
      // MATLAB's jet: piecewise-linear ramps, dark blue -> cyan -> yellow -> dark red.
      return [clamp01(1.5 - Math.abs(4 * t - 3)), clamp01(1.5 - Math.abs(4 * t - 2)), clamp01(1.5 - Math.abs(4 * t - 1))];
    default:
      throw new Error(`unknown colour map ${String(name)}`);
  }
}

/** A 256-entry RGB lookup table (bytes), so per-pixel work is one index instead of a polynomial. */
export function colormapTable(name: ColormapName): Uint8Array {
  const lut = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) {
    const [r, g, b] = colormap(name, i / 255);
    lut[i * 3] = Math.round(r * 255);
    lut[i * 3 + 1] = Math.round(g * 255);
    lut[i * 3 + 2] = Math.round(b * 255);
  }
  return lut;
}
