import type { StoredEvent } from './abstract-journal';
import { deletionMarker, isDeletionMarker } from './deletion';
import {
  type CorruptionLocation,
  isPersistenceError,
  JournalClosedError,
  JournalCorruptedError,
} from './errors';
import type { DeletionMarker, JournalEntry, ReadOptions } from './spi';
import { NO_TAGS } from './tags';
import { checkCount, checkOptionalObject, checkPersistenceId, checkSequenceNr } from './validation';

/** What an IdReader needs of the journal it reads: AbstractMessageJournal hands it these. */
export interface IdReaderHost<M> {
  /** Throws JournalClosedError unless the journal is open. */
  checkOpen(): void;
  isOpen(): boolean;
  /** The id's highest, after the appends issued before the read (to tell a missing tail). */
  highestSequenceNr(persistenceId: string): Promise<number>;
  /** The backend's pages of stored events (`_read`). */
  read(persistenceId: string, from: number, to: number, max: number): AsyncIterable<readonly StoredEvent[]>;
  /** One counted pull from a backend iterator (close() waits for it). */
  pull<T>(it: AsyncIterator<T>): Promise<IteratorResult<T>>;
  /** Throws JournalCorruptedError when numbers `from`..`to` are missing and no truncation explains it. */
  checkMissing(persistenceId: string, from: number, to: number): Promise<void>;
  locate(persistenceId: string, sequenceNr: number): Pick<CorruptionLocation, 'file' | 'offset' | 'key'>;
  decode(persistenceId: string, stored: StoredEvent): M;
  eventRead(): void;
  corruptionDetected(): void;
}

const DONE: IteratorResult<never> = { done: true, value: undefined };

/**
 * One `readFrom` of one id: checks its arguments (a bad one rejects the first `next()`), pulls the
 * backend's pages, and serves their events in order, checking that the numbers run without gap or
 * repeat (a gap truncation does not explain is corruption, named, never skipped) and decoding each.
 * Events of a page already read are served without another await (the fast path of a replay).
 * Hand-written rather than an async generator: a replay serves millions of entries, and serving the
 * entries of a page already in memory costs one resolved promise each here against several generator
 * resumptions. Validation errors reject the first next(), like a generator's.
 */
export class IdReader<M> implements AsyncIterator<JournalEntry<M> | DeletionMarker> {
  private to = 0;
  private max = 0;
  /** Serve the id's deletion marker (`deletions: true`); otherwise it is passed over. */
  private deletions = false;
  private invalid: unknown;
  private pages: AsyncIterator<readonly StoredEvent[]> | undefined;
  private page: readonly StoredEvent[] = [];
  private index = 0;
  private served = 0;
  private previous: number;
  private highest = 0;
  private finished: boolean;

  constructor(
    private readonly host: IdReaderHost<M>,
    private readonly persistenceId: string,
    private readonly fromSequenceNr: number,
    options?: ReadOptions,
  ) {
    try {
      host.checkOpen();
      checkPersistenceId(persistenceId);
      checkSequenceNr(fromSequenceNr, 'fromSequenceNr');
      checkOptionalObject(options, 'options');
      this.to = options?.toSequenceNr ?? Number.MAX_SAFE_INTEGER;
      this.max = options?.max ?? Number.MAX_SAFE_INTEGER;
      checkSequenceNr(this.to, 'toSequenceNr');
      checkCount(this.max, 'max');
      const deletions = options?.deletions ?? false;
      if (typeof deletions !== 'boolean') {
        throw new TypeError(`options.deletions must be a boolean, got ${typeof deletions}`);
      }
      this.deletions = deletions;
    } catch (e) {
      this.invalid = e;
    }
    this.previous = fromSequenceNr - 1;
    this.finished = this.invalid === undefined && (this.max === 0 || this.to < fromSequenceNr);
  }

  next(): Promise<IteratorResult<JournalEntry<M> | DeletionMarker>> {
    if (this.invalid !== undefined) return this.slow();
    if (this.finished) return Promise.resolve(DONE);
    if (this.served >= this.max) return this.finish().then(() => DONE);
    while (this.index < this.page.length) {
      if (!this.host.isOpen()) return this.fail(new JournalClosedError('journal'));
      try {
        const value = this.entry(this.page[this.index++]!);
        if (value !== undefined) return Promise.resolve({ done: false, value });
      } catch (e) {
        return this.fail(e);
      }
    }
    return this.slow();
  }

  return(): Promise<IteratorResult<JournalEntry<M> | DeletionMarker>> {
    return this.finish().then(() => DONE);
  }

  private async finish(): Promise<void> {
    if (this.finished && !this.pages) return;
    this.finished = true;
    const open = this.pages;
    this.pages = undefined;
    await open?.return?.();
  }

  /** The entry for a stored record, checked; undefined for a deletion marker that is passed over. */
  private entry(stored: StoredEvent): JournalEntry<M> | DeletionMarker | undefined {
    const { persistenceId, previous } = this;
    // `previous` at or past the start: a record of this read came before (a served or passed-over one).
    const gap = previous >= this.fromSequenceNr && this.index > 1 && stored.sequenceNr > previous + 1;
    if (gap || stored.sequenceNr <= previous || stored.sequenceNr > this.to) {
      // For a gap, name the first missing number: that is what a reader lacks.
      const at = gap ? previous + 1 : stored.sequenceNr;
      throw new JournalCorruptedError({
        persistenceId,
        sequenceNr: at,
        ...this.host.locate(persistenceId, at),
        reason: gap
          ? `sequenceNr ${previous + 1} to ${stored.sequenceNr - 1} missing inside one read`
          : `sequenceNr ${stored.sequenceNr} out of order after ${previous}`,
      });
    }
    this.previous = stored.sequenceNr;
    if (isDeletionMarker(stored)) {
      if (!this.deletions) return undefined;
      this.served++;
      return deletionMarker(persistenceId, stored);
    }
    this.served++;
    this.host.eventRead();
    return {
      persistenceId,
      sequenceNr: stored.sequenceNr,
      timestamp: stored.timestamp,
      message: this.host.decode(persistenceId, stored),
      tags: stored.tags ?? NO_TAGS,
    };
  }

  private async fail(e: unknown): Promise<never> {
    if (isPersistenceError(e, 'ERR_JOURNAL_CORRUPTED')) this.host.corruptionDetected();
    await this.finish();
    throw e;
  }

  /** The next page from the backend (the first pull opens the read), with the missing-number checks. */
  private async slow(): Promise<IteratorResult<JournalEntry<M> | DeletionMarker>> {
    if (this.invalid !== undefined) {
      const e = this.invalid;
      this.invalid = undefined;
      this.finished = true;
      throw e;
    }
    const { host, persistenceId } = this;
    try {
      if (!this.pages) {
        // highestSequenceNr first waits for the appends issued before this read. Its value only tells a
        // missing tail: a storage whose highest cannot be read still serves what it has.
        this.highest = await host.highestSequenceNr(persistenceId).catch(() => 0);
        // One more than asked: a deletion marker passed over takes a record's place (an id has at most
        // one: each deletion truncates everything before its own marker).
        const max = this.deletions || this.max >= Number.MAX_SAFE_INTEGER ? this.max : this.max + 1;
        this.pages = host.read(persistenceId, this.fromSequenceNr, this.to, max)[Symbol.asyncIterator]();
      }
      for (;;) {
        const next = await host.pull(this.pages);
        if (next.done) {
          // Nothing more: fine if the range is exhausted, otherwise entries are missing at the end.
          if (this.served < this.max) {
            await host.checkMissing(persistenceId, this.previous + 1, Math.min(this.to, this.highest));
          }
          await this.finish();
          return DONE;
        }
        this.page = next.value;
        this.index = 0;
        const first = this.page[0];
        if (first && first.sequenceNr > this.previous + 1) {
          await host.checkMissing(persistenceId, this.previous + 1, first.sequenceNr - 1);
        }
        while (this.index < this.page.length) {
          const value = this.entry(this.page[this.index++]!);
          if (value !== undefined) return { done: false, value };
        }
      }
    } catch (e) {
      return this.fail(e);
    }
  }
}
