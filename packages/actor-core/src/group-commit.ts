/**
 * Group commit: writes from many persistence ids queue up and are committed together, so one sync
 * pays for many appends.
 *
 * When a batch starts committing:
 * - at once (after the current event-loop turn, so a burst of appends shares it) when no commit is in flight;
 * - when the queue holds maxBatchSize entries, even while another commit is in flight;
 * - when the oldest queued write has waited maxBatchDelayMs behind a commit in flight;
 * - as soon as a commit finishes and writes are waiting.
 *
 * A key (persistence id) is in at most one commit at a time: its later writes wait for the earlier
 * commit's outcome. So acknowledgments per key come strictly in order, and a failed commit never leaves
 * a later commit of the same key stored behind a gap.
 */

export interface GroupCommitOptions<K, W> {
  /** The most entries (summed `size`) one commit takes; a single larger write is committed alone. */
  readonly maxBatchSize: number;
  readonly maxBatchDelayMs: number;
  /** Commits that may be in flight at once (pipelining); >= 1. */
  readonly maxConcurrentCommits: number;
  /**
   * Commits the writes; resolves when all are durable, rejects when none (or an unknown part) is. It may
   * instead resolve to a PartialCommit naming the writes (by index) that failed or were not stored and
   * should be committed again; every other write of the call is durable.
   */
  // biome-ignore lint/suspicious/noConfusingVoidType: a commit that stores everything resolves to nothing
  readonly commit: (writes: readonly W[]) => Promise<void | PartialCommit>;
  /**
   * Given a failed commit's error, the keys it is about when it is about some of them only (a sequence
   * conflict of one id, say). Those writes fail; the others, which the failed commit did not store, are
   * committed again at once. Undefined: every write of the commit fails.
   */
  readonly isolate?: (error: unknown, items: readonly QueuedWrite<K, W>[]) => ReadonlySet<K> | undefined;
  /** Called after a commit settles, before the waiting promises are settled. */
  readonly settled?: (items: readonly QueuedWrite<K, W>[], error: unknown) => void;
}

/**
 * What a commit that stored only some of its writes reports, by index into the writes it was given. The
 * writes in neither set are durable.
 */
export interface PartialCommit {
  /** Writes that failed, with their error: they settle with it. */
  readonly failed: ReadonlyMap<number, unknown>;
  /** Writes that were not stored and are queued again, ahead of every later write (keeping per-key order). */
  readonly retry: ReadonlySet<number>;
}

export interface QueuedWrite<K, W> {
  readonly key: K;
  readonly write: W;
  readonly size: number;
  /** Bytes the write holds in memory until it settles (for backpressure); 0 when not counted. */
  readonly bytes: number;
  readonly enqueuedAt: number;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
  readonly promise: Promise<void>;
}

export class GroupCommit<K, W> {
  private queue: QueuedWrite<K, W>[] = [];
  private queuedSize = 0;
  private inFlightSize = 0;
  private queuedBytes = 0;
  private inFlightBytes = 0;
  private readonly inFlightKeys = new Map<K, number>();
  private readonly inFlight = new Set<Promise<void>>();
  private scheduled = false;
  private timer: NodeJS.Timeout | undefined;
  /**
   * The delay timer fired and nothing could start (every commit slot busy, or every queued key in a
   * commit): no timer until that changes, since a commit finishing dispatches anyway, and a timer
   * re-armed for an already overdue write would fire at 0 ms in a loop for as long as the commit lasts.
   */
  private stalled = false;

  constructor(private readonly options: GroupCommitOptions<K, W>) {}

  /** Queues a write; the promise settles with its commit. */
  enqueue(key: K, write: W, size: number, bytes = 0): Promise<void> {
    let resolve!: () => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.queue.push({ key, write, size, bytes, enqueuedAt: Date.now(), resolve, reject, promise });
    this.queuedSize += size;
    this.queuedBytes += bytes;
    if (this.inFlight.size < this.options.maxConcurrentCommits && !this.inFlightKeys.has(key)) {
      this.stalled = false;
    }
    if (this.inFlight.size === 0 || this.queuedSize >= this.options.maxBatchSize) this.schedule();
    else this.armTimer();
    return promise;
  }

  /** Entries (summed `size`) queued or in a commit in flight. */
  get pendingSize(): number {
    return this.queuedSize + this.inFlightSize;
  }

  /** Bytes (summed `bytes`) queued or in a commit in flight. */
  get pendingBytes(): number {
    return this.queuedBytes + this.inFlightBytes;
  }

  /** Removes the queued (not yet committing) writes of `key` and returns them. */
  drop(key: K): QueuedWrite<K, W>[] {
    const dropped: QueuedWrite<K, W>[] = [];
    this.queue = this.queue.filter((q) => {
      if (q.key !== key) return true;
      dropped.push(q);
      this.queuedSize -= q.size;
      this.queuedBytes -= q.bytes;
      return false;
    });
    return dropped;
  }

  /** Resolves when every write queued before the call has been committed or failed. */
  async drain(): Promise<void> {
    const waits = this.queue.map((q) => q.promise);
    this.schedule();
    await Promise.allSettled([...waits, ...this.inFlight]);
  }

  /** Stops the delay timer; queued writes stay queued. */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.dispatch();
    });
  }

  private armTimer(): void {
    if (this.timer || this.queue.length === 0 || this.stalled) return;
    const oldest = this.queue[0]!.enqueuedAt;
    const wait = Math.max(0, oldest + this.options.maxBatchDelayMs - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.dispatch(true);
    }, wait);
  }

  private dispatch(fromTimer = false): void {
    let started = false;
    while (this.queue.length > 0 && this.inFlight.size < this.options.maxConcurrentCommits) {
      const batch = this.takeBatch();
      if (batch.length === 0) break;
      this.run(batch);
      started = true;
      // Pipeline another commit only when the rest of the queue is itself a full batch.
      if (this.queuedSize < this.options.maxBatchSize) break;
    }
    if (started) this.stalled = false;
    else if (fromTimer) this.stalled = true;
    if (this.queue.length > 0 && this.inFlight.size > 0) this.armTimer();
    else this.stop();
  }

  /** Takes queue entries in order, skipping keys that are in a commit in flight (and every later entry of them). */
  private takeBatch(): QueuedWrite<K, W>[] {
    const taken: QueuedWrite<K, W>[] = [];
    const rest: QueuedWrite<K, W>[] = [];
    const blocked = new Set<K>();
    let size = 0;
    let bytes = 0;
    for (const q of this.queue) {
      const full = taken.length > 0 && size + q.size > this.options.maxBatchSize;
      if (full || blocked.has(q.key) || this.inFlightKeys.has(q.key)) {
        blocked.add(q.key);
        rest.push(q);
        continue;
      }
      taken.push(q);
      size += q.size;
      bytes += q.bytes;
    }
    this.queue = rest;
    this.queuedSize -= size;
    this.queuedBytes -= bytes;
    return taken;
  }

  private run(batch: QueuedWrite<K, W>[]): void {
    let size = 0;
    let bytes = 0;
    for (const q of batch) {
      this.inFlightKeys.set(q.key, (this.inFlightKeys.get(q.key) ?? 0) + 1);
      size += q.size;
      bytes += q.bytes;
    }
    this.inFlightSize += size;
    this.inFlightBytes += bytes;
    const done = this.options
      .commit(batch.map((q) => q.write))
      .then(
        (partial) => ({ error: undefined as unknown, partial: partial ?? undefined }),
        (e: unknown) => ({ error: e ?? new Error('commit failed'), partial: undefined }),
      )
      .then(({ error, partial }) => {
        this.release(batch);
        this.inFlight.delete(done);
        this.inFlightSize -= size;
        this.inFlightBytes -= bytes;
        this.stalled = false;
        if (partial) {
          this.settlePartial(batch, partial);
          return;
        }
        const failing = error === undefined ? undefined : this.options.isolate?.(error, batch);
        const rest = failing ? batch.filter((q) => !failing.has(q.key)) : [];
        if (failing && rest.length > 0 && rest.length < batch.length) {
          const failed = batch.filter((q) => failing.has(q.key));
          this.options.settled?.(failed, error);
          for (const q of failed) q.reject(error);
          this.run(rest);
          return;
        }
        this.options.settled?.(batch, error);
        for (const q of batch) {
          if (error === undefined) q.resolve();
          else q.reject(error);
        }
        if (this.queue.length > 0) this.schedule();
      });
    this.inFlight.add(done);
  }

  /** Settles a commit that stored some writes: resolves those, fails the failed, queues the retries first. */
  private settlePartial(batch: readonly QueuedWrite<K, W>[], partial: PartialCommit): void {
    const stored: QueuedWrite<K, W>[] = [];
    const again: QueuedWrite<K, W>[] = [];
    batch.forEach((q, i) => {
      if (partial.retry.has(i)) again.push(q);
      else if (!partial.failed.has(i)) stored.push(q);
    });
    if (again.length > 0) {
      this.queue = [...again, ...this.queue];
      for (const q of again) {
        this.queuedSize += q.size;
        this.queuedBytes += q.bytes;
      }
    }
    this.options.settled?.(stored, undefined);
    for (const q of stored) q.resolve();
    batch.forEach((q, i) => {
      if (!partial.failed.has(i)) return;
      const error = partial.failed.get(i);
      this.options.settled?.([q], error);
      q.reject(error);
    });
    if (this.queue.length > 0) this.schedule();
  }

  private release(batch: readonly QueuedWrite<K, W>[]): void {
    for (const q of batch) {
      const n = (this.inFlightKeys.get(q.key) ?? 1) - 1;
      if (n === 0) this.inFlightKeys.delete(q.key);
      else this.inFlightKeys.set(q.key, n);
    }
  }
}
