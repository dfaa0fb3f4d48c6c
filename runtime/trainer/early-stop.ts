// Early stopping and "best so far" tracking on the monitored loss (validation loss, or training
// loss when there is no validation set). Keras EarlyStopping semantics with min_delta = 0: an
// epoch improves when its loss is strictly below the best; training stops once `patience` epochs
// in a row have not improved. The same tracker decides when the best checkpoint is written, so
// "best" always means what early stopping restores. Patience null/0 = never stop, still track.

export interface EarlyStopState {
  best: number | null;
  /** 1-based epoch of the best loss (0 before any). */
  bestEpoch: number;
  /** Epochs in a row without improvement. */
  wait: number;
  stopped: boolean;
}

export class EarlyStopping {
  readonly patience: number | null;
  readonly minDelta: number;
  private s: EarlyStopState = { best: null, bestEpoch: 0, wait: 0, stopped: false };

  constructor(patience: number | null, minDelta = 0) {
    if (patience !== null && !(Number.isInteger(patience) && patience >= 0))
      throw new Error(`early stopping: patience must be a non-negative integer, got ${patience}`);
    this.patience = patience === 0 ? null : patience;
    this.minDelta = minDelta;
  }

  /**
   * Records epoch `epoch` (1-based) with its monitored loss. `improved`: a new best (write the
   * best checkpoint); `stop`: patience ran out. A NaN loss never improves.
   */
  update(epoch: number, loss: number | null): { improved: boolean; stop: boolean } {
    const s = this.s;
    const improved = loss !== null && Number.isFinite(loss) && (s.best === null || loss < s.best - this.minDelta);
    if (improved) {
      s.best = loss;
      s.bestEpoch = epoch;
      s.wait = 0;
    } else {
      s.wait++;
      if (this.patience !== null && s.wait >= this.patience) s.stopped = true;
    }
    return { improved, stop: s.stopped };
  }

  get best(): number | null {
    return this.s.best;
  }

  get bestEpoch(): number {
    return this.s.bestEpoch;
  }

  get stopped(): boolean {
    return this.s.stopped;
  }

  state(): EarlyStopState {
    return { ...this.s };
  }

  load(state: EarlyStopState): void {
    if (!Number.isInteger(state.wait) || state.wait < 0) throw new Error("early stopping: saved state is corrupt");
    this.s = { ...state };
  }
}
