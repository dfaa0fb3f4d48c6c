// What a page needs to run a compiled model: the runner, device acquisition, the trainer loop
// and the synthetic data. No Node built-ins are reachable from here (a bundler checks).
export { acquireDevice, DeviceError, type Gpu } from "../device.ts";
export { CompiledModelError, CompiledRunner, initialState, readCompiled, type LoadOptions, type ReadText } from "./runner.ts";
export type { Manifest } from "./manifest.ts";
export { GpuGradcam, GradcamRunner, argmaxRows, type GradcamMap, type GradcamOutput, type GradcamPlanInfo } from "./gradcam.ts";
export { SyntheticData } from "../trainer/synthetic.ts";
export type { Batch, ModelRunner } from "../trainer/types.ts";
