/**
 * Backpressure: a journal bounds what it holds for commits not yet done (events numbered and queued or in
 * a commit in flight, and their serialized bytes). An append that would pass a bound either waits for
 * room, in the order appends were issued (so one id's appends keep their order), or is refused with
 * BackpressureError before it is numbered, storing nothing.
 */

/** What an append does when the journal holds as much pending work as its bounds allow. */
export type BackpressureMode = 'wait' | 'reject';

export const DEFAULT_MAX_PENDING_EVENTS = 100_000;
export const DEFAULT_MAX_PENDING_BYTES = 64 * 1024 * 1024;

/** What is pending now: events and serialized payload bytes queued or in a commit in flight. */
export interface PendingWork {
  readonly events: number;
  readonly bytes: number;
}

interface Waiter {
  readonly events: number;
  readonly bytes: number;
  /** Called once there is room, synchronously, so what it queues counts before the next waiter is judged. */
  readonly admit: () => void;
  /** Resolved after `admit` ran (for flush and close). */
  onAdmitted?: Array<() => void>;
}

export class Backpressure {
  private readonly waiters: Waiter[] = [];
  private releaseScheduled = false;
  /** Appends that had to wait for room. */
  waits = 0;
  /** Appends refused with BackpressureError. */
  rejections = 0;

  constructor(
    readonly maxPendingEvents: number,
    readonly maxPendingBytes: number,
    readonly mode: BackpressureMode,
    private readonly pending: () => PendingWork,
  ) {}

  /**
   * True when a write of `events` events and `bytes` bytes may be queued now: nobody waits before it and
   * it fits under both bounds. A write larger than a bound on its own is let through when nothing is
   * pending, so it is committed alone instead of never.
   */
  hasRoom(events: number, bytes: number): boolean {
    return this.waiters.length === 0 && this.fits(events, bytes);
  }

  /** Appends waiting for room now. */
  get waiting(): number {
    return this.waiters.length;
  }

  /** Queues `admit` to run (synchronously, in issue order) once the write fits. */
  wait(events: number, bytes: number, admit: () => void): void {
    this.waits++;
    this.waiters.push({ events, bytes, admit });
  }

  /** Says what is pending against the bounds, for a BackpressureError. */
  describe(events: number, bytes: number): string {
    const now = this.pending();
    return (
      `the journal holds ${now.events} events (${now.bytes} bytes) waiting to be committed; ` +
      `${events} more (${bytes} bytes) would pass maxPendingEvents ${this.maxPendingEvents} or ` +
      `maxPendingBytes ${this.maxPendingBytes}`
    );
  }

  /** Call when pending work settled: admits the waiters that fit now (after the current turn). */
  roomFreed(): void {
    if (this.waiters.length === 0 || this.releaseScheduled) return;
    this.releaseScheduled = true;
    queueMicrotask(() => {
      this.releaseScheduled = false;
      this.release();
    });
  }

  /** Resolves once every append waiting now was admitted (and so queued, or failed). */
  admittedSoFar(): Promise<void> {
    const last = this.waiters[this.waiters.length - 1];
    if (!last) return Promise.resolve();
    return new Promise((resolve) => {
      last.onAdmitted ??= [];
      last.onAdmitted.push(resolve);
    });
  }

  private release(): void {
    while (this.waiters.length > 0) {
      const next = this.waiters[0]!;
      if (!this.fits(next.events, next.bytes)) break;
      this.waiters.shift();
      next.admit();
      for (const resolve of next.onAdmitted ?? []) resolve();
    }
  }

  private fits(events: number, bytes: number): boolean {
    const now = this.pending();
    if (now.events === 0 && now.bytes === 0) return true;
    return now.events + events <= this.maxPendingEvents && now.bytes + bytes <= this.maxPendingBytes;
  }
}
