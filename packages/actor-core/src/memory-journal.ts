import {
  AbstractMessageJournal,
  type JournalOptions,
  type JournalWrite,
  type StoredEvent,
} from './abstract-journal';
import { JournalClosedError, JournalLockedError, SequenceConflictError } from './errors';
import { MemoryFaults } from './memory-faults';
import { newJournalId } from './offset-codec';
import { checkOpenOptions, JOURNAL_OPTION_TYPES, type OptionSchema } from './provider-options';
import type { OrderedFilter, PositionedEvent } from './query-reader';
import type { JournalCapabilities, ProjectionLock, ProjectionRecordStore } from './spi';
import { checkOffsetToSave, checkProjectionName } from './validation';

/** An event of this journal: its positions are numbers (one counter). */
interface NumberedEvent extends PositionedEvent {
  readonly position: number;
}

/** One id's events in memory, ascending sequenceNr (and so ascending position). */
interface MemoryLog {
  events: NumberedEvent[];
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
  /** @internal Every surviving event, ascending position: the global order. */
  all: NumberedEvent[] = [];
  /** @internal The surviving events of each tag, ascending position. */
  readonly byTag = new Map<string, NumberedEvent[]>();
  /** @internal The position of the last committed event. */
  head = 0;
  /** @internal Offsets saved by projections (the memory OffsetStore). */
  readonly offsets = new Map<string, string>();
  /** @internal Projections' status records. */
  readonly projectionStatuses = new Map<string, string>();
  /** @internal Projection names whose lock is held (by a journal on this store). */
  readonly projectionLocks = new Set<string>();
  /** @internal */
  readonly journalId = newJournalId();
}

export interface MemoryMessageJournalOptions extends JournalOptions {
  /** The data to use; default a new, empty store. */
  readonly store?: MemoryJournalStore;
  /** Fault injection; default none armed. */
  readonly faults?: MemoryFaults;
}

/** Every option MemoryMessageJournal.open takes: checked by open() and by the memory provider. */
export const MEMORY_JOURNAL_OPTION_TYPES: OptionSchema = {
  ...JOURNAL_OPTION_TYPES,
  store: 'object',
  faults: 'object',
  readOnly: 'boolean',
};

const PAGE = 256;

/**
 * A journal held in memory: the whole contract, queries included (the global order is the order of
 * commits, positions 1, 2, 3, ...), no durability. For tests and development.
 */
export class MemoryMessageJournal<M = unknown> extends AbstractMessageJournal<M> {
  readonly capabilities: JournalCapabilities = {
    persistent: false,
    health: true,
    query: true,
    deletion: true,
    readOnly: true,
    import: true,
    flush: true,
    metrics: true,
  };
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
    // The base class checks the shared options first (a RangeError for a batch size of 0); constructing
    // a memory journal touches nothing, so the schema check (unknown options) can follow it.
    const journal = new MemoryMessageJournal<M>(options);
    checkOpenOptions('MemoryMessageJournal', options, MEMORY_JOURNAL_OPTION_TYPES);
    return journal;
  }

  /**
   * The OffsetStore kept in this journal's store (so it survives a "reopen" on the same store), with the
   * projection records and locks of every journal opened on that store.
   */
  offsetStore(): ProjectionRecordStore {
    return new MemoryOffsetStore(this);
  }

  protected async _highestSequenceNr(persistenceId: string): Promise<number> {
    return this.store.logs.get(persistenceId)?.highest ?? 0;
  }

  protected async _write(writes: readonly JournalWrite[]): Promise<void> {
    await this.faults.beforeWrite(writes.map((w) => w.persistenceId));
    const store = this.store;
    // Positions are taken here, inside the commit, in commit order; nothing below awaits, so the
    // commit (and the head moving past it) is atomic.
    for (const { persistenceId, events } of writes) {
      let log = store.logs.get(persistenceId);
      if (!log) {
        log = { events: [], highest: 0, lowWater: 1 };
        store.logs.set(persistenceId, log);
      }
      for (const e of events) {
        const positioned: NumberedEvent = { ...e, persistenceId, position: ++store.head };
        log.events.push(positioned);
        store.all.push(positioned);
        for (const tag of e.tags ?? []) {
          const tagged = store.byTag.get(tag);
          if (tagged) tagged.push(positioned);
          else store.byTag.set(tag, [positioned]);
        }
      }
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
      let index = lowerBound(events, from, bySequenceNr);
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

  protected override _journalId(): string {
    return this.store.journalId;
  }

  protected override async _headPosition(): Promise<number> {
    return this.store.head;
  }

  protected override async *_readOrdered(
    after: number,
    upTo: number,
    filter: OrderedFilter,
  ): AsyncGenerator<NumberedEvent[]> {
    for (;;) {
      await this.faults.beforeRead();
      // Looked up again for every page: truncation replaces the arrays.
      const events = this.ordered(filter);
      let index = lowerBound(events, after + 1, byPosition);
      if (filter.kind === 'persistenceId') {
        index = Math.max(index, lowerBound(events, filter.fromSequenceNr, bySequenceNr));
      }
      const page: NumberedEvent[] = [];
      while (index < events.length && page.length < PAGE) {
        const event = events[index++]!;
        if (event.position > upTo) break;
        if (filter.kind === 'persistenceId' && event.sequenceNr > filter.toSequenceNr) break;
        page.push(event);
      }
      if (page.length === 0) return;
      after = page[page.length - 1]!.position;
      yield page;
    }
  }

  protected async _truncateBefore(persistenceId: string, sequenceNr: number): Promise<void> {
    this.faults.beforeTruncate();
    const log = this.store.logs.get(persistenceId);
    if (!log) return;
    const cut = lowerBound(log.events, sequenceNr, bySequenceNr);
    if (cut > 0) {
      const gone = new Set(log.events.slice(0, cut));
      log.events = log.events.slice(cut);
      const keep = (e: NumberedEvent) => !gone.has(e);
      this.store.all = this.store.all.filter(keep);
      for (const [tag, events] of this.store.byTag) {
        const left = events.filter(keep);
        if (left.length === 0) this.store.byTag.delete(tag);
        else if (left.length !== events.length) this.store.byTag.set(tag, left);
      }
    }
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

  private ordered(filter: OrderedFilter): readonly NumberedEvent[] {
    switch (filter.kind) {
      case 'all':
        return this.store.all;
      case 'tag':
        return this.store.byTag.get(filter.tag) ?? [];
      case 'persistenceId':
        return this.store.logs.get(filter.persistenceId)?.events ?? [];
    }
  }
}

/** The memory provider's OffsetStore: offsets, statuses and locks in the journal's MemoryJournalStore. */
class MemoryOffsetStore implements ProjectionRecordStore {
  readonly capabilities = { projectionRecords: true } as const;

  constructor(private readonly journal: MemoryMessageJournal<unknown>) {}

  private get store(): MemoryJournalStore {
    if (this.journal.closed) throw new JournalClosedError('journal');
    return this.journal.store;
  }

  async load(projectionName: string): Promise<string | undefined> {
    checkProjectionName(projectionName);
    return this.store.offsets.get(projectionName);
  }

  async save(projectionName: string, offset: string): Promise<void> {
    checkProjectionName(projectionName);
    checkOffsetToSave(offset);
    this.store.offsets.set(projectionName, offset);
  }

  async names(): Promise<string[]> {
    const store = this.store;
    return [...new Set([...store.offsets.keys(), ...store.projectionStatuses.keys()])].sort();
  }

  async deleteOffset(projectionName: string): Promise<void> {
    checkProjectionName(projectionName);
    this.store.offsets.delete(projectionName);
  }

  async saveStatus(projectionName: string, status: string): Promise<void> {
    checkProjectionName(projectionName);
    if (typeof status !== 'string') throw new TypeError('status must be a string');
    this.store.projectionStatuses.set(projectionName, status);
  }

  async loadStatus(projectionName: string): Promise<string | undefined> {
    checkProjectionName(projectionName);
    return this.store.projectionStatuses.get(projectionName);
  }

  async projectionLocked(projectionName: string): Promise<boolean> {
    checkProjectionName(projectionName);
    return this.store.projectionLocks.has(projectionName);
  }

  async lockProjection(projectionName: string): Promise<ProjectionLock> {
    checkProjectionName(projectionName);
    const locks = this.store.projectionLocks;
    if (locks.has(projectionName)) {
      throw new JournalLockedError(`projection "${projectionName}" (memory store)`, { pid: process.pid });
    }
    locks.add(projectionName);
    let held = true;
    return {
      release: async () => {
        if (held) locks.delete(projectionName);
        held = false;
      },
    };
  }
}

const bySequenceNr = (e: NumberedEvent) => e.sequenceNr;
const byPosition = (e: NumberedEvent) => e.position;

/** Index of the first event whose key is >= target (the events ascend by both keys). */
function lowerBound(
  events: readonly NumberedEvent[],
  target: number,
  key: (e: NumberedEvent) => number,
): number {
  let lo = 0;
  let hi = events.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (key(events[mid]!) < target) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
