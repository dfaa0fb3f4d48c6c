// Uncertainty from Monte Carlo dropout over an ensemble. Pure computation, browser-safe.
export {
  mcUncertainty,
  rankUncertain,
  rowEntropy,
  type McSamples,
  type McUncertainty,
  type UncertainCase,
  type UncertaintyScore,
} from "./mc-dropout.ts";
