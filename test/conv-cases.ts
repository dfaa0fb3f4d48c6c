// Convolution cases shared by the GPU kernel tests: [x shape, weight shape, attributes] covering
// padding, stride, dilation, groups, 7x7 and 1x1.
import type { PrimAttrs } from "../compiler/ir/primitives.ts";

export const convCases: [number[], number[], PrimAttrs["conv2d"]][] = [
  [[2, 3, 5, 5], [4, 3, 3, 3], { stride: 1, padding: 1, dilation: 1, groups: 1 }],
  [[1, 2, 7, 6], [3, 2, 3, 3], { stride: 2, padding: 1, dilation: 1, groups: 1 }],
  [[2, 4, 6, 6], [2, 2, 3, 3], { stride: 1, padding: 2, dilation: 2, groups: 2 }],
  [[1, 3, 9, 9], [2, 3, 7, 7], { stride: 2, padding: 3, dilation: 1, groups: 1 }],
  [[2, 8, 3, 3], [8, 8, 1, 1], { stride: 2, padding: 0, dilation: 1, groups: 1 }],
  [[1, 8, 4, 5], [8, 2, 3, 3], { stride: 1, padding: 1, dilation: 1, groups: 4 }],
];

// Shapes for the register-blocked kernels (compiler/codegen/wgsl/conv-blocked.ts: widths
// multiple of 4; the input gradient stride 1 only): odd channel counts (blocks of 2 and 1), edge
// tiles in H and W (guarded stores), groups with dilation, a 5x5 without padding, a 1x1 with
// more padding than the kernel (negative padding in the input gradient), stride 2. Small channel counts keep the unrolled
// shaders small: they compile slowly on lavapipe.
export const blockedConvCases: [number[], number[], PrimAttrs["conv2d"]][] = [
  [[2, 3, 10, 8], [6, 3, 3, 3], { stride: 1, padding: 1, dilation: 1, groups: 1 }],
  [[1, 4, 5, 12], [4, 2, 3, 3], { stride: 1, padding: 2, dilation: 2, groups: 2 }],
  [[1, 3, 8, 8], [4, 3, 5, 5], { stride: 1, padding: 0, dilation: 1, groups: 1 }],
  [[2, 4, 4, 4], [4, 4, 1, 1], { stride: 1, padding: 2, dilation: 1, groups: 1 }],
  [[2, 3, 9, 16], [4, 3, 3, 3], { stride: 2, padding: 1, dilation: 1, groups: 1 }],
];
