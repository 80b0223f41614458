/**
 * What a journal, a snapshot store and an actor system count while they run, for dashboards and health checks: kept by the
 * core's base classes (so every backend reports the same things), read with `metrics()` as a plain
 * snapshot. `@cairn/metrics` exposes them to Prometheus.
 */

/** Upper bounds (seconds) of the latency buckets: from a fast fdatasync to a stalled disk. */
export const LATENCY_BUCKETS_SECONDS: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
];

/** A latency distribution in Prometheus' shape: cumulative counts per upper bound, plus sum and count. */
export interface LatencyHistogram {
  /** `count` of the observations at most `le` seconds, for each bound of LATENCY_BUCKETS_SECONDS. */
  readonly buckets: ReadonlyArray<{ readonly le: number; readonly count: number }>;
  /** Seconds, summed over all observations. */
  readonly sum: number;
  /** All observations (the +Inf bucket). */
  readonly count: number;
}

export interface JournalMetrics {
  /** Events stored and acknowledged. */
  readonly eventsAppended: number;
  /** Group commits stored (each one write and one sync of the backend). */
  readonly commits: number;
  /** Group commits that failed in storage: their appends were rejected. */
  readonly commitFailures: number;
  /** Appends refused before storage because a message cannot be serialized (WriteRejectedError). */
  readonly serializationRejections: number;
  /** Appends refused because another writer got there first (SequenceConflictError). */
  readonly sequenceConflicts: number;
  /** Events numbered and waiting for their commit: the write-ahead lag. */
  readonly pendingEvents: number;
  /** Serialized payload bytes of those events (bounded by maxPendingBytes). */
  readonly pendingBytes: number;
  /** Appends waiting for room now (onBackpressure 'wait'): not numbered yet, not in pendingEvents. */
  readonly backpressureWaiting: number;
  /** Appends that had to wait for room since open. */
  readonly backpressureWaits: number;
  /** Appends refused with BackpressureError since open (onBackpressure 'reject'). */
  readonly backpressureRejections: number;
  /**
   * Bytes of disk the data uses now, as the backend counts it (file: live segments; LMDB: used pages);
   * undefined for a backend that does not measure it.
   */
  readonly diskBytesUsed?: number;
  /** The journal's maxDiskBytes; undefined when there is no cap. */
  readonly maxDiskBytes?: number;
  /** Events served by readFrom. */
  readonly eventsRead: number;
  /** Reads that stopped at corruption (JournalCorruptedError). */
  readonly corruptionsDetected: number;
  /** From a group commit starting to its outcome. */
  readonly commitSeconds: LatencyHistogram;
}

export interface SnapshotStoreMetrics {
  /** Snapshots stored. */
  readonly saves: number;
  /** Saves that failed in storage. */
  readonly saveFailures: number;
  /** loadLatest calls that found a snapshot. */
  readonly loads: number;
  /** loadLatest calls that found none (or none that verifies). */
  readonly loadsEmpty: number;
  /** Corrupt snapshots skipped in favour of an older one (each also reported). */
  readonly corruptSkipped: number;
  /** Snapshots removed by delete and prune. */
  readonly deleted: number;
  /** From a save being queued to its outcome. */
  readonly saveSeconds: LatencyHistogram;
  /** From a loadLatest being queued to its outcome. */
  readonly loadSeconds: LatencyHistogram;
}

export interface ActorSystemMetrics {
  /** Live actors (recovering, running or waiting for a restart). */
  readonly actors: number;
  /** Recoveries that completed, first starts and restarts alike. */
  readonly recoveries: number;
  /** Recoveries that failed (RecoveryFailedError). */
  readonly recoveryFailures: number;
  /** Recoveries that started from a snapshot. */
  readonly recoveriesFromSnapshot: number;
  /** Events replayed by recoveries. */
  readonly eventsReplayed: number;
  /** Restarts scheduled by supervision after a failure. */
  readonly restarts: number;
  /** Actors stopped by a failure (no supervision, or its restarts used up). */
  readonly failureStops: number;
  /** Commands refused because an actor's stash was full (StashOverflowError). */
  readonly stashOverflows: number;
  /** Persists refused by a sequence conflict after which the actor reloaded from storage (onConflict 'reload-and-retry'). */
  readonly conflictReloads: number;
  /** Entity actors live now (recovering or running, not passivating). */
  readonly activeEntities: number;
  /** Entity actors started (first message, or the first after a passivation). */
  readonly entityActivations: number;
  /** Entity actors stopped by passivation (idle, least recently used, or Effect.stop()). */
  readonly entityPassivations: number;
  /** From a recovery starting (snapshot load, replay) to its outcome. */
  readonly recoverySeconds: LatencyHistogram;
}

/** Counts observations into LATENCY_BUCKETS_SECONDS; cheap enough for every commit. */
export class LatencyRecorder {
  private readonly counts = new Array<number>(LATENCY_BUCKETS_SECONDS.length).fill(0);
  private sum = 0;
  private count = 0;

  /** Records the time since `startedAt` (a performance.now() reading). */
  since(startedAt: number): void {
    const seconds = (performance.now() - startedAt) / 1000;
    this.sum += seconds;
    this.count++;
    const bucket = LATENCY_BUCKETS_SECONDS.findIndex((le) => seconds <= le);
    if (bucket >= 0) this.counts[bucket]!++;
  }

  snapshot(): LatencyHistogram {
    let cumulative = 0;
    return {
      buckets: LATENCY_BUCKETS_SECONDS.map((le, i) => {
        cumulative += this.counts[i]!;
        return { le, count: cumulative };
      }),
      sum: this.sum,
      count: this.count,
    };
  }
}
