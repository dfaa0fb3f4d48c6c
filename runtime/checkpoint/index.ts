// Checkpoints in the safetensors format. safetensors.ts is browser-safe; file.ts needs Node.
export { decodeSafetensors, encodeSafetensors, safetensorsParts, type DType, type Safetensors, type Tensor, type TensorMap } from "./safetensors.ts";
export { loadSafetensors, saveSafetensors, writeFileAtomic, type AtomicWriteOptions } from "./file.ts";
