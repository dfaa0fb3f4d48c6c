// The format of a compiled model's manifest.json, written by `drifac compile` and read by the
// runtime (Node or browser). Plans are the runtime's own plain-data plans with each kernel's
// WGSL replaced by the index of a shader file, so every distinct kernel is stored once.
import type { InitSpec } from "../init.ts";
import type { KernelLaunch } from "../executor.ts";
import type { InferPlanInfo, TrainPlanInfo } from "../trainer-exec.ts";
import type { GradcamPlanInfo } from "./gradcam.ts";
import type { TrainSettings } from "../trainer/types.ts";

export const MANIFEST_FORMAT = "drifa-compiled/1";

/** A kernel variant with its WGSL replaced by a shader file index, like the kernel itself. */
export interface StoredVariant {
  name: string;
  shader: number;
  workgroupSize: [number, number, number];
  dispatch: [number, number, number];
}

/** Manifests written before variants existed have none: their kernels run the default only. */
export type StoredKernel = Omit<KernelLaunch, "wgsl" | "variants"> & { shader: number; variants?: StoredVariant[] };
export type Stored<P extends { kernels: KernelLaunch[] }> = Omit<P, "kernels"> & { kernels: StoredKernel[] };

export interface ManifestParameter {
  name: string;
  shape: number[];
  role: "param" | "buffer";
  init: InitSpec;
  /** Byte offset in a checkpoint's flat f32 layout (parameters and buffers in this order). */
  offset: number;
}

/** Per plan: dispatches, compute passes and buffer copies per run, submits (always 1), distinct
 * pipelines, and GPU memory in bytes. */
export interface PlanStats {
  dispatches: number;
  passes: number;
  copies: number;
  submits: number;
  pipelines: number;
  /** Peak GPU memory of the plan's buffers, with the static memory plan (buffer reuse). */
  bytes: number;
  /** The same without buffer reuse (every value its own buffer). */
  unplannedBytes: number;
}

export interface BatchPlans {
  train: Stored<TrainPlanInfo>;
  /** Inference: dropout off, running statistics. */
  infer: Stored<InferPlanInfo>;
  /** Monte Carlo dropout inference: dropout kept on where the model marks it mc. */
  mc: Stored<InferPlanInfo>;
  /** Grad-CAM (runtime/compiled/gradcam.ts); absent in folders compiled before it existed and
   * for models without tasks. */
  gradcam?: Stored<GradcamPlanInfo>;
  stats: { train: PlanStats; infer: PlanStats; mc: PlanStats };
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  model: string;
  /** The .drifa file and --set values it was compiled from, and the compiler that did it;
   * `fuse: false` when compiled with --no-fuse (recompiles for new batch sizes keep it). */
  source: { file: string; settings: Record<string, number | string | boolean>; compiler: string; drifac: string; fuse?: boolean };
  inputs: { name: string; shape: number[] }[];
  tasks: { name: string; classes: string[]; weight: number; data: string }[];
  train: TrainSettings;
  parameters: ManifestParameter[];
  /** Shader files, relative to the manifest. */
  shaders: string[];
  /** Plans per batch size (shapes are constants in the kernels). */
  plans: Record<string, BatchPlans>;
}

/** Restores each kernel's WGSL (and its variants') from the shader texts. */
export function hydrate<P extends { kernels: KernelLaunch[] }>(plan: Stored<P>, shaders: readonly string[]): P {
  const kernel = ({ shader, variants, ...k }: StoredKernel): KernelLaunch => ({
    ...k,
    wgsl: shaders[shader]!,
    ...(variants ? { variants: variants.map(({ shader: v, ...rest }) => ({ ...rest, wgsl: shaders[v]! })) } : {}),
  });
  return { ...plan, kernels: plan.kernels.map(kernel) } as unknown as P;
}
