// The data layer's public API, for the trainer and tools. Nothing here imports the compiler.
export { DataError, BadData, asDataError, type Skipped } from "./errors.ts";
export { Rng, hashSeed } from "./rng.ts";
export {
  decodeImage,
  readImage,
  decodeNifti,
  decodeVolumeBytes,
  readVolume,
  axialSlice,
  mriToImage,
  sniffFormat,
  type Raster,
  type Volume,
  type ImageFormat,
} from "./decode.ts";
export { encodeJpeg, encodePng, encodeBmp, encodeNifti, type Rgb8, type NiftiType } from "./encode.ts";
export {
  resize,
  augment,
  drawAugment,
  writeCHW,
  toTensor,
  IMAGENET,
  UNIT_RANGE,
  PAPER_AUGMENT,
  PAPER_AUGMENT_MRI,
  type Normalize,
  type AugmentOptions,
  type AugmentDraw,
} from "./transform.ts";
export {
  loadHam10000,
  loadClassFolders,
  loadSipakmed,
  loadTrainTest,
  loadBrats,
  readCsv,
  chooseSlices,
  HAM10000_CLASSES,
  BRATS_GRADES,
  BRATS_SEQUENCES,
  IMAGE_EXTENSIONS,
  type Sample,
  type DataSet,
  type LoadOptions,
  type Ham10000Options,
  type ClassFolderOptions,
  type BratsOptions,
} from "./datasets.ts";
export { stratifiedSplit, splitDataSet, oversampleIndices, pairByIndex, classCounts, type Split, type SplitOptions, type Pairing, type PairOptions } from "./split.ts";
export { SampleReader, computeStats, type ReaderOptions } from "./pipeline.ts";
export { BatchLoader, type SourceSpec, type LoaderOptions, type Batch } from "./loader.ts";
export { synth, paintClass, SIPAKMED_FOLDERS, type SynthOptions, type SynthResult } from "./synth.ts";
