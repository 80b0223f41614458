import {
  AbstractMessageJournal,
  type CorruptionLocation,
  JournalCorruptedError,
  type JournalOptions,
  type JournalWrite,
  ReadOnlyError,
  SequenceConflictError,
  type StoredEvent,
} from '@cairn/actor-core';
import { firstOf, LmdbEnvironment } from './environment';
import { checkLmdbOptions } from './lmdb-options';
import {
  decodeEntryKey,
  decodeEvent,
  decodeIdMetadata,
  describeEntryKey,
  encodeEvent,
  encodeIdMetadata,
  entryKey,
  entryKeyEnd,
  ID_KEYS_END,
  ID_KEYS_START,
  type IdMetadata,
  idOfMetadataKey,
  idPrefix,
  metadataKey,
  PayloadArena,
  sequenceNrOf,
} from './record-codec';
import { asJournalDamage, type DamageSite } from './structure-damage';

/** Options of `LmdbMessageJournal.open`. */
export interface LmdbMessageJournalOptions extends JournalOptions {
  /**
   * The environment's directory (created when missing). A snapshot store opened on the same path in
   * this process shares the environment (and its durability settings).
   */
  readonly path: string;
  /**
   * Default false: every commit is synced to disk before its appends resolve. `true` skips the sync
   * (lmdb-js: "we discourage this flag for data that needs integrity and durability"): appends resolve
   * as soon as the transaction is committed to the OS, many times faster, but a power loss or kernel
   * crash can lose acknowledged appends or corrupt the environment. A process crash alone loses nothing.
   */
  readonly noSync?: boolean;
  /**
   * Initial size of the memory map in bytes. Default: lmdb-js's default, which grows the map
   * automatically as the data grows; a larger value avoids some remapping on write-heavy starts.
   */
  readonly mapSize?: number;
  /**
   * Default false. `true` opens an existing environment read-only (lmdb-js `readOnly`, for tools such as
   * the `cairn` CLI): nothing is created, migrated or written (LMDB still registers the reader in
   * lock.mdb, which is what lets it read safely while another process writes); `path` must hold an
   * environment a writable open made, or open rejects (StorageError when it is missing, ReadOnlyError
   * when it would need migrating). Every write (append, appendBatch, importEntries, truncateBefore)
   * rejects with ReadOnlyError (code `ERR_READ_ONLY`). Reads see what other processes committed.
   */
  readonly readOnly?: boolean;
}

/** Entries per page on reads: bounds a reader's memory to about PAGE records. */
const READ_PAGE = 1000;
/** Keys deleted per transaction on truncation, so a huge truncation never holds the writer lock for long. */
const TRUNCATE_CHUNK = 10_000;
/** Ids per page in persistenceIds(). */
const IDS_PAGE = 1000;

/**
 * A durable journal on LMDB (lmdb-js): one environment per directory with the named databases
 * `journal` (events keyed [persistenceId, sequenceNr], each value carrying a CRC-32 over key and value),
 * `metadata` (per id: highest sequenceNr and truncation low-water mark; the format version) and
 * `snapshots` (used by LmdbSnapshotStore).
 *
 * Appends from all ids are grouped by the base class (maxBatchSize, maxBatchDelayMs) and each group is
 * committed in one LMDB write transaction together with its metadata updates; the transaction is synced
 * before the appends resolve (unless `noSync`). Inside the transaction every write is checked against
 * the stored highest sequenceNr, so a second process appending to the same id is refused with
 * SequenceConflictError instead of interleaving. Reads stream in pages and verify every record's CRC.
 */
export class LmdbMessageJournal<M = unknown> extends AbstractMessageJournal<M> {
  /** lmdb-js runs write transactions one after another, so several commits may be queued at once. */
  readonly capabilities = { persistent: true, concurrentCommits: true } as const;
  /** The directory given to open(). */
  readonly path: string;
  /** Opened with `readOnly: true`: every write rejects with ReadOnlyError. */
  readonly readOnly: boolean;
  private env!: LmdbEnvironment;

  private constructor(options: LmdbMessageJournalOptions) {
    super(options);
    this.path = options.path;
    this.readOnly = options.readOnly ?? false;
  }

  /**
   * Opens (creating when missing, unless readOnly) the journal in directory `options.path`.
   * Defaults: maxBatchSize 1000, maxBatchDelayMs 100, noSync false (durable), serializer "msgpack",
   * mapSize lmdb-js's (grows automatically), readOnly false.
   * @throws TypeError or RangeError for bad options (nothing is opened); JournalCorruptedError when the
   *   environment's format record is damaged or from a newer Cairn; with readOnly, StorageError when no
   *   environment exists at the path and ReadOnlyError when it would need migrating.
   */
  static async open<M = unknown>(options: LmdbMessageJournalOptions): Promise<LmdbMessageJournal<M>> {
    const settings = checkLmdbOptions(options);
    const journal = new LmdbMessageJournal<M>(options);
    journal.env = await LmdbEnvironment.acquire(options.path, settings, journal.reporter);
    return journal;
  }

  /** Writes are refused with ReadOnlyError when opened read-only. */
  protected override writeGate(_persistenceId: string, operation: string): undefined {
    if (this.readOnly) throw new ReadOnlyError(this.path, `${operation} refused, nothing written`);
    return undefined;
  }

  protected async _highestSequenceNr(persistenceId: string): Promise<number> {
    return this.guard({ key: `journal:${persistenceId}#highest`, persistenceId }, () =>
      this.highestStored(persistenceId),
    );
  }

  private highestStored(persistenceId: string): number {
    const prefix = idPrefix(persistenceId);
    const last = firstOf(
      this.env.journal.getKeys({ start: entryKeyEnd(prefix), end: prefix, reverse: true, limit: 1 }),
    );
    const lastStored = last === undefined ? 0 : sequenceNrOf(last, prefix.length);
    const meta = this.readMetadata(persistenceId);
    if (meta === undefined) {
      if (lastStored === 0) return 0;
      throw new JournalCorruptedError({
        persistenceId,
        sequenceNr: lastStored,
        key: `metadata:${persistenceId}`,
        reason: `metadata entry missing while the journal holds entries up to ${lastStored}`,
      });
    }
    if (lastStored > meta.highest) {
      throw new JournalCorruptedError({
        persistenceId,
        sequenceNr: lastStored,
        key: `metadata:${persistenceId}`,
        reason: `metadata says highest ${meta.highest} but the journal holds entry ${lastStored}`,
      });
    }
    return meta.highest;
  }

  protected async _write(writes: readonly JournalWrite[]): Promise<void> {
    if (this.readOnly) throw new ReadOnlyError(this.path, 'write refused, nothing written');
    // Keys and records are built before the transaction: the callback below runs on the main thread
    // while LMDB's writer lock is held, so it should do no more than check and put.
    const records: Buffer[] = [];
    const first = new Map<string, { key: Buffer; expected: number; highest: number }>();
    for (const { persistenceId, events } of writes) {
      const prefix = idPrefix(persistenceId);
      for (const event of events) {
        const key = entryKey(prefix, event.sequenceNr);
        records.push(key, encodeEvent(key, event));
      }
      const highest = events[events.length - 1]!.sequenceNr;
      const known = first.get(persistenceId);
      if (known) known.highest = highest;
      else
        first.set(persistenceId, {
          key: metadataKey(persistenceId),
          expected: events[0]!.sequenceNr - 1,
          highest,
        });
    }
    const site: DamageSite = {
      key: `journal:${writes.map((w) => `${w.persistenceId}#${w.events[0]!.sequenceNr}..`).join(',')}`,
    };
    await this.guardAsync(site, () => this.commit(first, records));
  }

  private commit(
    first: ReadonlyMap<string, { key: Buffer; expected: number; highest: number }>,
    records: readonly Buffer[],
  ): Promise<void> {
    const { journal, metadata } = this.env;
    return this.env.write(() => {
      // Check every id before the first put: a conflict writes nothing (the child transaction would roll
      // back anyway; this keeps the abort path trivial). Writes of one id within a group are consecutive
      // (the base numbers them), so checking the first against the stored highest covers them all.
      const updates: Array<[Buffer, IdMetadata]> = [];
      for (const [persistenceId, { key, expected, highest }] of first) {
        const stored = this.readMetadata(persistenceId, key) ?? { highest: 0, lowWater: 0 };
        if (stored.highest !== expected)
          throw new SequenceConflictError(persistenceId, expected, stored.highest);
        updates.push([key, { highest, lowWater: stored.lowWater }]);
      }
      for (let i = 0; i < records.length; i += 2) {
        // noOverwrite: an entry already at the key means the metadata lags the journal (something wrote
        // events without it). Overwriting would silently replace an acknowledged event; refuse instead.
        // lmdb-js returns whether the put happened (its README); its .d.ts declares void.
        const written = journal.putSync(records[i]!, records[i + 1]!, { noOverwrite: true }) as unknown;
        if (written !== true) {
          const where = decodeEntryKey(records[i]!);
          throw new JournalCorruptedError({
            persistenceId: where?.persistenceId,
            sequenceNr: where?.sequenceNr,
            key: `journal:${describeEntryKey(records[i]!)}`,
            reason: 'an entry already exists at the key the metadata says is free; refusing to overwrite it',
          });
        }
      }
      for (const [key, meta] of updates) metadata.putSync(key, encodeIdMetadata(key, meta));
    });
  }

  /** Metadata for an id that never had events: highest `highest`, everything up to it truncated. */
  protected override async _startAfter(persistenceId: string, highest: number): Promise<void> {
    if (this.readOnly) throw new ReadOnlyError(this.path, 'write refused, nothing written');
    const key = metadataKey(persistenceId);
    const write = () =>
      this.env.write(() => {
        const stored = this.readMetadata(persistenceId, key);
        if (stored && stored.highest !== 0) throw new SequenceConflictError(persistenceId, 0, stored.highest);
        this.env.metadata.putSync(key, encodeIdMetadata(key, { highest, lowWater: highest + 1 }));
      });
    await this.guardAsync({ key: `metadata:${persistenceId}`, persistenceId }, write);
  }

  protected async *_read(
    persistenceId: string,
    fromSequenceNr: number,
    toSequenceNr: number,
    max: number,
  ): AsyncGenerator<StoredEvent[]> {
    let next = fromSequenceNr;
    try {
      for (const page of this.pages(persistenceId, fromSequenceNr, toSequenceNr, max)) {
        yield page;
        next = page[page.length - 1]!.sequenceNr + 1;
      }
    } catch (e) {
      const range = toSequenceNr === Number.MAX_SAFE_INTEGER ? `${next}..` : `${next}..${toSequenceNr}`;
      throw asJournalDamage(e, this.path, {
        key: `journal:${persistenceId}#${range}`,
        persistenceId,
        sequenceNr: next,
      });
    }
  }

  /** The pages of a read (LMDB reads are synchronous; _read names the range when one fails). */
  private *pages(
    persistenceId: string,
    fromSequenceNr: number,
    toSequenceNr: number,
    max: number,
  ): Generator<StoredEvent[]> {
    const prefix = idPrefix(persistenceId);
    let next = fromSequenceNr;
    let left = max;
    const arena = new PayloadArena();
    while (left > 0 && next <= toSequenceNr) {
      // Looked up per page: a truncation running meanwhile may have raised it.
      const lowWater = this.readMetadata(persistenceId)?.lowWater ?? 0;
      if (next < lowWater) next = lowWater;
      if (next > toSequenceNr) return;
      const page: StoredEvent[] = [];
      // Views, not copies (see journalViews): each record is checked and its payload copied out by
      // decodeEvent before the loop steps on.
      const limit = Math.min(READ_PAGE, left);
      const range = this.env.journalViews.getRange({
        start: entryKey(prefix, next),
        end: entryKey(prefix, toSequenceNr),
        inclusiveEnd: true,
        limit,
      });
      for (const { key, value } of range) {
        const sequenceNr = sequenceNrOf(key, prefix.length);
        const event = decodeEvent(key, value, sequenceNr, arena);
        if (typeof event === 'string') {
          // Named before yielding: the key is a view into a buffer lmdb-js reuses once the read moves on.
          const where = `journal:${describeEntryKey(key)}`;
          // Serve the intact records before it first: nothing past the bad one, everything before it.
          if (page.length > 0) yield page;
          throw new JournalCorruptedError({ persistenceId, sequenceNr, key: where, reason: event });
        }
        page.push(event);
      }
      if (page.length === 0) return;
      left -= page.length;
      next = page[page.length - 1]!.sequenceNr + 1;
      yield page;
      // A short page ended the range: no second lookup (most recoveries read one page).
      if (page.length < limit) return;
    }
  }

  protected async _truncateBefore(persistenceId: string, sequenceNr: number): Promise<void> {
    if (this.readOnly) throw new ReadOnlyError(this.path, 'truncateBefore refused, nothing written');
    // The low-water mark goes in first (durably): from then on reads skip everything below it, and the
    // deletes below may take several transactions without anyone seeing a half-truncated id.
    const site = { key: `journal:${persistenceId}#..${sequenceNr - 1}`, persistenceId };
    await this.guardAsync(site, () => this.truncate(persistenceId, sequenceNr));
  }

  private async truncate(persistenceId: string, sequenceNr: number): Promise<void> {
    const { journal, metadata } = this.env;
    const key = metadataKey(persistenceId);
    const prefix = idPrefix(persistenceId);
    const bound = await this.env.write(() => {
      const meta = this.readMetadata(persistenceId);
      if (!meta) return 0;
      // Never above highest + 1: events appended later must stay visible.
      const lowWater = Math.max(meta.lowWater, Math.min(sequenceNr, meta.highest + 1));
      if (lowWater !== meta.lowWater) metadata.putSync(key, encodeIdMetadata(key, { ...meta, lowWater }));
      return lowWater;
    });
    if (bound <= 1) return;
    const end = entryKey(prefix, bound);
    for (;;) {
      const deleted = await this.env.write(() => {
        const doomed = [...journal.getKeys({ start: prefix, end, limit: TRUNCATE_CHUNK })];
        for (const k of doomed) journal.removeSync(k);
        return doomed.length;
      });
      if (deleted < TRUNCATE_CHUNK) return;
    }
  }

  protected async *_persistenceIds(): AsyncGenerator<string> {
    let start = ID_KEYS_START;
    let exclusiveStart = false;
    for (;;) {
      const from = start;
      const after = exclusiveStart;
      const keys = this.guard({ key: 'metadata:<persistence ids>' }, () => [
        ...this.env.metadata.getKeys({
          start: from,
          end: ID_KEYS_END,
          exclusiveStart: after,
          limit: IDS_PAGE,
        }),
      ]);
      for (const key of keys) yield idOfMetadataKey(key);
      if (keys.length < IDS_PAGE) return;
      start = keys[keys.length - 1]!;
      exclusiveStart = true;
    }
  }

  protected async _close(): Promise<void> {
    await this.env?.release();
  }

  protected override async _lowWaterMark(persistenceId: string): Promise<number> {
    return this.guard({ key: `metadata:${persistenceId}`, persistenceId }, () =>
      Math.max(1, this.readMetadata(persistenceId)?.lowWater ?? 1),
    );
  }

  /** Runs a synchronous LMDB call; damaged pages become JournalCorruptedError naming `site`. */
  private guard<T>(site: DamageSite, call: () => T): T {
    try {
      return call();
    } catch (e) {
      throw asJournalDamage(e, this.path, site);
    }
  }

  /** As guard, for a call that returns a promise (a write transaction). */
  private async guardAsync<T>(site: DamageSite, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (e) {
      throw asJournalDamage(e, this.path, site);
    }
  }

  protected override _locate(
    persistenceId: string,
    sequenceNr: number,
  ): Pick<CorruptionLocation, 'file' | 'offset' | 'key'> {
    return { key: `journal:${persistenceId}#${sequenceNr}` };
  }

  /** The id's metadata (in the current transaction when called inside one); undefined for an unknown id. */
  private readMetadata(
    persistenceId: string,
    key: Buffer = metadataKey(persistenceId),
  ): IdMetadata | undefined {
    // getBinaryFast: no copy; the numbers are read out before the next get reuses the buffer.
    const raw = this.env.metadata.getBinaryFast(key);
    if (raw === undefined) return undefined;
    const meta = decodeIdMetadata(key, raw);
    if (typeof meta === 'string') {
      throw new JournalCorruptedError({ persistenceId, key: `metadata:${persistenceId}`, reason: meta });
    }
    return meta;
  }
}
