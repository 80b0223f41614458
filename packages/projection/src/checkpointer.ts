import type { OffsetStore } from './read-side';

/**
 * Decides when a projection's offset is saved and saves it, one save at a time. It is only ever told of
 * an offset after the handler resolved for that event (and so for every earlier one: events are handled
 * one by one, in order), which is the whole at-least-once rule.
 */
export class Checkpointer {
  private handledOffset: string | undefined;
  private savedOffset: string | undefined;
  private unsaved = 0;
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  private closed = false;
  /** Saves that succeeded, and the last save error (cleared by the next success). */
  saves = 0;
  lastSaveError: unknown;

  constructor(
    private readonly offsets: OffsetStore,
    private readonly name: string,
    private readonly every: number,
    private readonly afterMs: number,
    initial: string | undefined,
  ) {
    this.handledOffset = initial;
    this.savedOffset = initial;
  }

  get saved(): string | undefined {
    return this.savedOffset;
  }

  get handled(): string | undefined {
    return this.handledOffset;
  }

  /** Records that the handler resolved for the event at `offset`; true when a save is due now. */
  markHandled(offset: string): boolean {
    this.handledOffset = offset;
    this.unsaved++;
    if (this.unsaved >= this.every) return true;
    this.arm();
    return false;
  }

  /** Makes sure a save happens within `afterMs`, also when no further event comes. */
  private arm(): void {
    if (this.timer !== undefined || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      // A timed save that fails is tried again a period later; the loop's own saves report errors.
      this.save().catch(() => this.arm());
    }, this.afterMs);
  }

  /** Records an offset the handler's own transaction saved (exactly-once): handled and saved at once. */
  markSaved(offset: string): void {
    this.handledOffset = offset;
    this.savedOffset = offset;
    this.saves++;
  }

  /** Saves the newest handled offset (after any save in flight); resolves when it is stored. */
  save(): Promise<void> {
    this.clearTimer();
    const run = this.chain.then(async () => {
      const offset = this.handledOffset;
      if (offset === undefined || offset === this.savedOffset) return;
      const counted = this.unsaved;
      try {
        await this.offsets.save(this.name, offset);
      } catch (e) {
        this.lastSaveError = e;
        throw e;
      }
      this.lastSaveError = undefined;
      this.savedOffset = offset;
      this.saves++;
      this.unsaved = Math.max(0, this.unsaved - counted);
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Stops the timer; later handled offsets only get saved by an explicit save(). */
  close(): void {
    this.closed = true;
    this.clearTimer();
  }

  private clearTimer(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }
}
