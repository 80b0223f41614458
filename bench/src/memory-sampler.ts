/**
 * Peak heap and RSS growth over a stretch of work. Synchronous replays (better-sqlite3, lmdb-js ranges)
 * block the event loop, so a timer alone would miss their peak: the workload also calls `sample()` from its
 * per-event callback, and the timer covers the asynchronous stretches.
 */
export class MemorySampler {
  private readonly baseHeap: number;
  private readonly baseRss: number;
  private peakHeap: number;
  private peakRss: number;
  private readonly timer: NodeJS.Timeout;

  constructor(intervalMs = 10) {
    collectGarbage();
    const { heapUsed, rss } = process.memoryUsage();
    this.baseHeap = heapUsed;
    this.baseRss = rss;
    this.peakHeap = heapUsed;
    this.peakRss = rss;
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  sample(): void {
    const { heapUsed, rss } = process.memoryUsage();
    if (heapUsed > this.peakHeap) this.peakHeap = heapUsed;
    if (rss > this.peakRss) this.peakRss = rss;
  }

  /** Stops sampling; growth of the peak over the baseline taken at construction, in MiB. */
  stop(): { heapGrowthMiB: number; rssGrowthMiB: number } {
    this.sample();
    clearInterval(this.timer);
    return {
      heapGrowthMiB: (this.peakHeap - this.baseHeap) / 2 ** 20,
      rssGrowthMiB: (this.peakRss - this.baseRss) / 2 ** 20,
    };
  }
}

/** A full collection when node runs with --expose-gc (the runner starts every cell that way). */
export function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) gc();
}
