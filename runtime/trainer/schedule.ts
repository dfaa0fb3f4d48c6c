// Learning-rate schedules, stepped once per epoch (like Keras callbacks and PyTorch's epoch-level
// schedulers). The state is plain JSON so a resumed run continues with the same rate, the same
// plateau counter and the same cooldown.
//
// - constant:            lr
// - step(every, gamma):  lr · gamma^floor(epoch / every)            (PyTorch StepLR)
// - cosine(min_lr):      min_lr + (lr - min_lr)(1 + cos(π · epoch / epochs)) / 2
//                        (PyTorch CosineAnnealingLR with T_max = epochs: the first epoch uses lr,
//                        the last one is just above min_lr)
// - plateau(factor, patience, min_lr, threshold = 1e-4, threshold_mode = "abs", cooldown = 0):
//   Keras ReduceLROnPlateau, which is what the paper's code used (factor 0.2, patience 5,
//   min_lr 1e-5). A loss counts as an improvement when it is below best - threshold ("abs",
//   Keras' min_delta) or below best · (1 - threshold) ("rel", PyTorch's default mode). After
//   `patience` epochs in a row without improvement (Keras: wait >= patience; PyTorch waits one
//   epoch more, num_bad > patience) the rate becomes max(lr · factor, min_lr) and the counter
//   restarts. Cooldown defaults to 0 as in both libraries: the `cooldown` epochs after a
//   reduction never count as bad, so the next reduction comes cooldown + patience epochs later at
//   the earliest (PyTorch's count; Keras' counter ignores only cooldown - 1 epochs). A NaN or
//   missing loss never counts as an improvement. Once at min_lr nothing changes any more.

import type { ScheduleConfig } from "./types.ts";

export interface ScheduleState {
  kind: ScheduleConfig["kind"];
  /** Epochs finished (the next epoch's index, 0-based). */
  epoch: number;
  /** The rate for the next epoch. */
  lr: number;
  /** plateau: best monitored loss so far (null before the first). */
  best: number | null;
  /** plateau: epochs in a row without improvement. */
  wait: number;
  /** plateau: cooldown epochs left. */
  cooldown: number;
  /** plateau: reductions made so far. */
  reductions: number;
}

function num(config: ScheduleConfig, key: string, fallback?: number): number {
  const v = config[key] ?? fallback;
  if (typeof v !== "number" || !Number.isFinite(v))
    throw new Error(`schedule ${config.kind}: option ${key} must be a number${v === undefined ? " (missing)" : `, got ${String(v)}`}`);
  return v;
}

export class LrSchedule {
  readonly config: ScheduleConfig;
  readonly baseLr: number;
  readonly epochs: number;
  private s: ScheduleState;

  /**
   * @param baseLr  the optimiser's lr
   * @param epochs  the run's length (cosine decays over it)
   */
  constructor(config: ScheduleConfig, baseLr: number, epochs: number) {
    if (!(baseLr > 0)) throw new Error(`schedule: lr must be positive, got ${baseLr}`);
    this.config = config;
    this.baseLr = baseLr;
    this.epochs = epochs;
    this.validate();
    this.s = { kind: config.kind, epoch: 0, lr: baseLr, best: null, wait: 0, cooldown: 0, reductions: 0 };
    this.s.lr = this.rateAt(0);
  }

  private validate(): void {
    const c = this.config;
    switch (c.kind) {
      case "constant":
        return;
      case "step":
        if (!(num(c, "every") >= 1)) throw new Error("schedule step: every must be at least 1");
        if (!(num(c, "gamma", 0.1) > 0)) throw new Error("schedule step: gamma must be positive");
        return;
      case "cosine":
        if (!(num(c, "min_lr", 0) >= 0)) throw new Error("schedule cosine: min_lr must be >= 0");
        return;
      case "plateau": {
        const f = num(c, "factor");
        if (!(f > 0 && f < 1)) throw new Error(`schedule plateau: factor must be in (0, 1), got ${f}`);
        if (!(num(c, "patience", 5) >= 0)) throw new Error("schedule plateau: patience must be >= 0");
        if (!(num(c, "min_lr", 0) >= 0)) throw new Error("schedule plateau: min_lr must be >= 0");
        if (!(num(c, "threshold", 1e-4) >= 0)) throw new Error("schedule plateau: threshold must be >= 0");
        if (!(num(c, "cooldown", 0) >= 0)) throw new Error("schedule plateau: cooldown must be >= 0");
        const mode = c.threshold_mode ?? "abs";
        if (mode !== "abs" && mode !== "rel") throw new Error(`schedule plateau: threshold_mode must be "abs" or "rel", got ${String(mode)}`);
        return;
      }
      default:
        throw new Error(`schedule: unknown kind ${String((c as { kind: unknown }).kind)}`);
    }
  }

  /** The closed-form rate of epoch e for the schedules that have one. */
  private rateAt(e: number): number {
    const c = this.config;
    switch (c.kind) {
      case "step":
        return this.baseLr * Math.pow(num(c, "gamma", 0.1), Math.floor(e / num(c, "every")));
      case "cosine": {
        const min = num(c, "min_lr", 0);
        const t = this.epochs > 0 ? Math.min(e, this.epochs) / this.epochs : 0;
        return min + ((this.baseLr - min) * (1 + Math.cos(Math.PI * t))) / 2;
      }
      default:
        return this.s?.lr ?? this.baseLr;
    }
  }

  /** The learning rate for the current (next) epoch. */
  get lr(): number {
    return this.s.lr;
  }

  /**
   * Ends an epoch. `loss` is the monitored loss (validation, or training without validation);
   * only plateau looks at it. Returns whether the rate was reduced by plateau.
   */
  endEpoch(loss: number | null): { reduced: boolean } {
    const s = this.s;
    s.epoch++;
    if (this.config.kind !== "plateau") {
      s.lr = this.rateAt(s.epoch);
      return { reduced: false };
    }
    const c = this.config;
    const threshold = num(c, "threshold", 1e-4);
    const rel = (c.threshold_mode ?? "abs") === "rel";
    const patience = num(c, "patience", 5);
    const minLr = num(c, "min_lr", 0);
    const finite = loss !== null && Number.isFinite(loss);
    const improved = finite && (s.best === null || loss < (rel ? s.best * (1 - threshold) : s.best - threshold));
    if (improved) s.best = loss;
    // A cooldown epoch still records a new best but never counts as bad (see the file comment).
    if (improved || s.cooldown > 0) {
      s.cooldown = Math.max(0, s.cooldown - 1);
      s.wait = 0;
      return { reduced: false };
    }
    s.wait++;
    // The tiny margin keeps float noise (lr · factor landing a hair above min_lr) from reducing forever.
    if (s.wait >= patience && s.lr > minLr * (1 + 1e-9)) {
      s.lr = Math.max(s.lr * num(c, "factor"), minLr);
      s.wait = 0;
      s.cooldown = num(c, "cooldown", 0);
      s.reductions++;
      return { reduced: true };
    }
    return { reduced: false };
  }

  /** A JSON-safe copy of the state, for resume. */
  state(): ScheduleState {
    return { ...this.s };
  }

  /** Restores a state saved by state(); the config must be the same kind. */
  load(state: ScheduleState): void {
    if (state.kind !== this.config.kind) throw new Error(`schedule: saved state is for ${state.kind}, this run uses ${this.config.kind}`);
    if (!(state.lr > 0) || !Number.isInteger(state.epoch) || state.epoch < 0) throw new Error("schedule: saved state is corrupt");
    this.s = { ...state };
  }
}
