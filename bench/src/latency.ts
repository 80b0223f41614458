/** Per-operation latencies of one workload, in milliseconds, kept in a preallocated buffer. */
export class LatencyRecorder {
  private readonly samples: Float64Array;
  private count = 0;

  constructor(capacity: number) {
    this.samples = new Float64Array(capacity);
  }

  record(ms: number): void {
    if (this.count < this.samples.length) {
      this.samples[this.count++] = ms;
    }
  }

  /** The q-quantile (0..1) by nearest rank, or undefined when nothing was recorded. */
  quantile(q: number): number | undefined {
    if (this.count === 0) return undefined;
    const sorted = this.samples.slice(0, this.count).sort();
    const rank = Math.min(this.count - 1, Math.max(0, Math.ceil(q * this.count) - 1));
    return sorted[rank];
  }

  get size(): number {
    return this.count;
  }
}
