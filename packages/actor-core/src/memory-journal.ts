import {
  AbstractMessageJournal,
  type JournalOptions,
  type JournalWrite,
  type StoredEvent,
} from './abstract-journal';
import { SequenceConflictError } from './errors';
import { MemoryFaults } from './memory-faults';

/** One id's events in memory. */
interface MemoryLog {
  events: StoredEvent[];
  highest: number;
  /** Everything below this was truncated. */
  lowWater: number;
}

/**
 * The data of in-memory journals. It outlives a journal: open a new MemoryMessageJournal on the same
 * store to "reopen" (within one process). Nothing here survives the process.
 */
export class MemoryJournalStore {
  /** @internal */
  readonly logs = new Map<string, MemoryLog>();
}

export interface MemoryMessageJournalOptions extends JournalOptions {
  /** The data to use; default a new, empty store. */
  readonly store?: MemoryJournalStore;
  /** Fault injection; default none armed. */
  readonly faults?: MemoryFaults;
}

const PAGE = 256;

/** A journal held in memory: the whole contract, no durability. For tests and development. */
export class MemoryMessageJournal<M = unknown> extends AbstractMessageJournal<M> {
  readonly capabilities = { persistent: false } as const;
  readonly store: MemoryJournalStore;
  readonly faults: MemoryFaults;

  private constructor(options: MemoryMessageJournalOptions) {
    super(options);
    this.store = options.store ?? new MemoryJournalStore();
    this.faults = options.faults ?? new MemoryFaults();
  }

  static async open<M = unknown>(
    options: MemoryMessageJournalOptions = {},
  ): Promise<MemoryMessageJournal<M>> {
    return new MemoryMessageJournal<M>(options);
  }

  protected async _highestSequenceNr(persistenceId: string): Promise<number> {
    return this.store.logs.get(persistenceId)?.highest ?? 0;
  }

  protected async _write(writes: readonly JournalWrite[]): Promise<void> {
    await this.faults.beforeWrite(writes.map((w) => w.persistenceId));
    for (const { persistenceId, events } of writes) {
      let log = this.store.logs.get(persistenceId);
      if (!log) {
        log = { events: [], highest: 0, lowWater: 1 };
        this.store.logs.set(persistenceId, log);
      }
      for (const e of events) log.events.push(e);
      log.highest = events[events.length - 1]!.sequenceNr;
    }
  }

  protected async *_read(
    persistenceId: string,
    from: number,
    to: number,
    max: number,
  ): AsyncGenerator<StoredEvent[]> {
    let left = max;
    while (left > 0) {
      await this.faults.beforeRead();
      // Look the position up again for every page: a truncation may have shifted the array meanwhile.
      const events = this.store.logs.get(persistenceId)?.events ?? [];
      let index = lowerBound(events, from);
      const page: StoredEvent[] = [];
      while (index < events.length && page.length < Math.min(PAGE, left) && events[index]!.sequenceNr <= to) {
        page.push(events[index++]!);
      }
      if (page.length === 0) return;
      left -= page.length;
      from = page[page.length - 1]!.sequenceNr + 1;
      yield page;
    }
  }

  protected async _truncateBefore(persistenceId: string, sequenceNr: number): Promise<void> {
    const log = this.store.logs.get(persistenceId);
    if (!log) return;
    log.events = log.events.slice(lowerBound(log.events, sequenceNr));
    log.lowWater = Math.max(log.lowWater, sequenceNr);
  }

  protected override async _startAfter(persistenceId: string, highest: number): Promise<void> {
    await this.faults.beforeWrite([persistenceId]);
    const log = this.store.logs.get(persistenceId);
    if (log && log.highest !== 0) throw new SequenceConflictError(persistenceId, 0, log.highest);
    this.store.logs.set(persistenceId, { events: [], highest, lowWater: highest + 1 });
  }

  protected override async _lowWaterMark(persistenceId: string): Promise<number> {
    return this.store.logs.get(persistenceId)?.lowWater ?? 1;
  }

  protected async *_persistenceIds(): AsyncGenerator<string> {
    yield* [...this.store.logs.keys()];
  }

  protected async _close(): Promise<void> {}
}

/** Index of the first event with sequenceNr >= target. */
function lowerBound(events: readonly StoredEvent[], target: number): number {
  let lo = 0;
  let hi = events.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (events[mid]!.sequenceNr < target) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
