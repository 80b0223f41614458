import { JournalClosedError } from './errors';

/** The error a query's aborted signal ends it with: an Error named AbortError, the signal's reason as cause. */
export class QueryAbortedError extends Error {
  constructor(reason: unknown) {
    super('the query was aborted (its signal fired)', { cause: reason });
    this.name = 'AbortError';
  }
}

interface Waiter {
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
}

/**
 * How live queries learn about commits: a counter that every commit (of this process, or of another
 * process when the backend watches for those) moves on, and a set of parked readers it wakes. A parked
 * reader costs one promise; there is no timer or poll per reader. A backend that watches for other
 * processes' commits runs one watcher per journal, while at least one live query is open.
 */
export class CommitSignal {
  private generation = 0;
  private waiters = new Set<Waiter>();
  private closed = false;
  private liveQueries = 0;
  private stopWatching: (() => void) | undefined;

  constructor(private readonly watchForeign?: (onCommit: () => void) => () => void) {}

  /** Moves on with every commit; read it before reading the head, pass it to wait(). */
  get current(): number {
    return this.generation;
  }

  /** A commit happened: wakes every parked reader. */
  notify = (): void => {
    this.generation++;
    if (this.waiters.size === 0) return;
    const waiting = this.waiters;
    this.waiters = new Set();
    for (const w of waiting) w.resolve();
  };

  /**
   * Resolves at the first commit after generation `seen` (at once if there was one); rejects with
   * JournalClosedError at close() and with an AbortError when `signal` aborts. `cancel` (for a query
   * that ends meanwhile) resolves it and forgets it.
   */
  wait(seen: number, signal: AbortSignal | undefined): { promise: Promise<void>; cancel: () => void } {
    if (this.closed) return { promise: Promise.reject(new JournalClosedError('journal')), cancel: () => {} };
    if (signal?.aborted)
      return { promise: Promise.reject(new QueryAbortedError(signal.reason)), cancel: () => {} };
    if (seen !== this.generation) return { promise: Promise.resolve(), cancel: () => {} };
    let waiter!: Waiter;
    const onAbort = (): void => {
      this.waiters.delete(waiter);
      waiter.reject(new QueryAbortedError(signal!.reason));
    };
    const promise = new Promise<void>((resolve, reject) => {
      waiter = {
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        reject: (e) => {
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      };
    });
    this.waiters.add(waiter);
    signal?.addEventListener('abort', onAbort, { once: true });
    return {
      promise,
      cancel: () => {
        if (this.waiters.delete(waiter)) waiter.resolve();
      },
    };
  }

  /** A live query started: the first one starts the backend's watcher for other processes' commits. */
  liveQueryStarted(): void {
    if (this.liveQueries++ === 0 && this.watchForeign && !this.closed) {
      this.stopWatching = this.watchForeign(this.notify);
    }
  }

  /** A live query ended: the last one stops the watcher. */
  liveQueryEnded(): void {
    if (--this.liveQueries === 0) this.unwatch();
  }

  /** The journal is closing: every parked reader rejects with JournalClosedError. */
  close(): void {
    this.closed = true;
    this.unwatch();
    const waiting = this.waiters;
    this.waiters = new Set();
    for (const w of waiting) w.reject(new JournalClosedError('journal'));
  }

  /** Parked readers now (for tests and metrics). */
  get parked(): number {
    return this.waiters.size;
  }

  private unwatch(): void {
    const stop = this.stopWatching;
    this.stopWatching = undefined;
    stop?.();
  }
}
