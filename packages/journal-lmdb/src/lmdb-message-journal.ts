import {
  AbstractMessageJournal,
  type CorruptionLocation,
  type JournalCapabilities,
  JournalCorruptedError,
  type JournalOptions,
  type JournalWrite,
  type OrderedFilter,
  type PositionedEvent,
  PositionedEventInBuffer,
  SequenceConflictError,
  type WriteConflicts,
} from '@cairn/actor-core';
import { firstOf, LmdbEnvironment } from './environment';
import { LmdbOffsetStore } from './lmdb-offset-store';
import { checkLmdbOptions } from './lmdb-options';
import {
  decodeEntryKey,
  decodeEvent,
  decodeIdMetadata,
  decodeNumber,
  describeEntryKey,
  encodeEvent,
  encodeIdMetadata,
  encodeNumber,
  entryKey,
  entryKeyEnd,
  eventIndexEntries,
  HEAD_KEY,
  ID_KEYS_END,
  ID_KEYS_START,
  type IdMetadata,
  idOfMetadataKey,
  idPrefix,
  type LmdbStoredEvent,
  metadataKey,
  PayloadArena,
  positionKey,
  readPosition,
  sequenceNrOf,
  stampPosition,
  TRUNCATING_KEYS_END,
  TRUNCATING_KEYS_START,
  tagKey,
  tagPrefix,
  truncatingKey,
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

/** One event found through an index database. */
export interface IndexedEvent {
  readonly persistenceId: string;
  readonly position: number;
  readonly event: LmdbStoredEvent;
}

/** A page of the global order (see readIndexPage). */
export interface IndexPage {
  readonly events: readonly IndexedEvent[];
  readonly last: number;
}

const NO_PREFIXES: readonly Buffer[] = [];
const NO_TAGS: readonly string[] = [];

/** The core's form of an event found through an index. */
function positioned({ persistenceId, position, event }: IndexedEvent): PositionedEvent {
  return new PositionedEventInBuffer(
    persistenceId,
    position,
    event.sequenceNr,
    event.timestamp,
    event.serializerId,
    event.bytes,
    event.start,
    event.end,
    event.tags,
  );
}

/** How often a journal with live queries reads the head counter to notice other processes' commits. */
const FOREIGN_POLL_MS = 25;

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
 * SequenceConflictError (an append with expectedSequenceNr) or numbered again after it (one without)
 * instead of interleaving. Reads stream in pages and verify every record's CRC.
 */
export class LmdbMessageJournal<M = unknown> extends AbstractMessageJournal<M> {
  /**
   * lmdb-js runs write transactions one after another, so several commits may be queued at once.
   * sharedWriters: several processes may open one environment and write it (LMDB's writer lock serializes
   * their transactions); each commit checks every id's stored highest inside its write transaction and
   * stores only the ids that continue it, so the core reads an id's highest from storage, never from
   * what this process remembers.
   */
  readonly capabilities: JournalCapabilities = {
    persistent: true,
    health: true,
    concurrentCommits: true,
    query: true,
    deletion: true,
    foreignCommits: true,
    sharedWriters: true,
    readOnly: true,
    import: true,
    flush: true,
    metrics: true,
  };
  /** The directory given to open(). */
  readonly path: string;
  private env!: LmdbEnvironment;
  private offsetStoreOfJournal: LmdbOffsetStore | undefined;

  private constructor(options: LmdbMessageJournalOptions) {
    super(options);
    this.path = options.path;
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
    const settings = checkLmdbOptions('LmdbMessageJournal', options);
    const journal = new LmdbMessageJournal<M>(options);
    journal.env = await LmdbEnvironment.acquire(options.path, settings, journal.reporter);
    if (!journal.readOnly) {
      try {
        await journal.finishTruncations();
      } catch (e) {
        await journal.env.release();
        throw e;
      }
    }
    return journal;
  }

  /**
   * The OffsetStore kept in this journal's environment (the `offsets` database), with `transactSync` for
   * exactly-once projections; see LmdbOffsetStore. One per journal; it lives as long as the journal.
   */
  offsetStore(): LmdbOffsetStore {
    this.offsetStoreOfJournal ??= new LmdbOffsetStore(this, this.env);
    return this.offsetStoreOfJournal;
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

  protected async _write(writes: readonly JournalWrite[]): Promise<WriteConflicts> {
    // Keys and records are built before the transaction: the callback below runs on the main thread
    // while LMDB's writer lock is held, so it should do no more than check, number and put. Records are
    // encoded at position 0 and stamped with their position inside the transaction.
    const records: Buffer[] = [];
    const tagPrefixes: Array<readonly Buffer[]> = [];
    /** The persistenceId of each record pair, to leave out the ids that conflict. */
    const owners: string[] = [];
    const first = new Map<string, { key: Buffer; expected: number; highest: number }>();
    for (const { persistenceId, events } of writes) {
      const prefix = idPrefix(persistenceId);
      for (const event of events) {
        const key = entryKey(prefix, event.sequenceNr);
        const tags = event.tags ?? NO_TAGS;
        records.push(key, encodeEvent(key, event, tags));
        tagPrefixes.push(tags.length === 0 ? NO_PREFIXES : tags.map(tagPrefix));
        owners.push(persistenceId);
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
    return this.guardAsync(site, () => this.commit(first, records, tagPrefixes, owners));
  }

  private commit(
    first: ReadonlyMap<string, { key: Buffer; expected: number; highest: number }>,
    records: readonly Buffer[],
    tagPrefixes: ReadonlyArray<readonly Buffer[]>,
    owners: readonly string[],
  ): Promise<WriteConflicts> {
    const { journal, metadata, positions, tags: tagIndex } = this.env;
    return this.env.write(() => {
      // Check every id before the first put, inside the write transaction (which holds LMDB's writer lock
      // across processes): an id whose stored highest is not the one its first event continues (another
      // process wrote it) is left out and reported; the others are stored. Writes of one id within a group
      // are consecutive (the base numbers them), so checking the first covers them all.
      const updates: Array<[Buffer, IdMetadata]> = [];
      const conflicts = new Map<string, number>();
      for (const [persistenceId, { key, expected, highest }] of first) {
        const stored = this.readMetadata(persistenceId, key) ?? { highest: 0, lowWater: 0 };
        if (stored.highest !== expected) conflicts.set(persistenceId, stored.highest);
        else updates.push([key, { highest, lowWater: stored.lowWater }]);
      }
      // The global order's counter is read and advanced inside the transaction, which holds LMDB's writer
      // lock across processes: every process writing this environment draws from one counter, and the
      // positions become visible exactly when the events do. A transaction that aborts assigns nothing.
      let position = this.readHead();
      for (let i = 0; i < records.length; i += 2) {
        if (conflicts.size > 0 && conflicts.has(owners[i / 2]!)) continue;
        const key = records[i]!;
        const record = records[i + 1]!;
        position++;
        stampPosition(key, record, position);
        // noOverwrite: an entry already at the key means the metadata lags the journal (something wrote
        // events without it). Overwriting would silently replace an acknowledged event; refuse instead.
        // lmdb-js returns whether the put happened (its README); its .d.ts declares void.
        const written = journal.putSync(key, record, { noOverwrite: true }) as unknown;
        if (written !== true) {
          const where = decodeEntryKey(key);
          throw new JournalCorruptedError({
            persistenceId: where?.persistenceId,
            sequenceNr: where?.sequenceNr,
            key: `journal:${describeEntryKey(key)}`,
            reason: 'an entry already exists at the key the metadata says is free; refusing to overwrite it',
          });
        }
        // MDB_APPEND: a new position is above every stored one (the counter only grows), so LMDB skips the
        // search for its place. Should a position at or above it exist (a damaged head counter), the put
        // does not happen (lmdb-js returns false): refuse the commit rather than lose the index entry.
        if ((positions.putSync(positionKey(position), key, { append: true }) as unknown) !== true) {
          throw new JournalCorruptedError({
            key: 'metadata:head',
            reason: `the head counter gives position ${position}, but the positions index already reaches it or beyond`,
          });
        }
        for (const prefix of tagPrefixes[i / 2]!) tagIndex.putSync(tagKey(prefix, position), key);
      }
      metadata.putSync(HEAD_KEY, encodeNumber(HEAD_KEY, position));
      for (const [key, meta] of updates) metadata.putSync(key, encodeIdMetadata(key, meta));
      return conflicts;
    });
  }

  /** Metadata for an id that never had events: highest `highest`, everything up to it truncated. */
  protected override async _startAfter(persistenceId: string, highest: number): Promise<void> {
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
  ): AsyncGenerator<LmdbStoredEvent[]> {
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
  ): Generator<LmdbStoredEvent[]> {
    const prefix = idPrefix(persistenceId);
    let next = fromSequenceNr;
    let left = max;
    const arena = new PayloadArena();
    while (left > 0 && next <= toSequenceNr) {
      // Looked up per page: a truncation running meanwhile may have raised it.
      const lowWater = this.readMetadata(persistenceId)?.lowWater ?? 0;
      if (next < lowWater) next = lowWater;
      if (next > toSequenceNr) return;
      const page: LmdbStoredEvent[] = [];
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
    const site = { key: `journal:${persistenceId}#..${sequenceNr - 1}`, persistenceId };
    await this.guardAsync(site, () => this.truncate(persistenceId, sequenceNr));
  }

  private async truncate(persistenceId: string, sequenceNr: number): Promise<void> {
    const { metadata } = this.env;
    const key = metadataKey(persistenceId);
    // The low-water mark goes in first (durably), with a marker saying the id's index entries below it
    // are being removed: from then on reads by id skip everything below the mark and reads by position or
    // tag skip the id's entries below it, so the deletes below may take several transactions without
    // anyone seeing a half-truncated id.
    const bound = await this.env.write(() => {
      const meta = this.readMetadata(persistenceId);
      if (!meta) return 0;
      // sequenceNr is already clamped to highest + 1 by the core: events appended later stay visible.
      const lowWater = Math.max(meta.lowWater, sequenceNr);
      if (lowWater !== meta.lowWater) {
        metadata.putSync(key, encodeIdMetadata(key, { ...meta, lowWater }));
        const marker = truncatingKey(persistenceId);
        metadata.putSync(marker, encodeNumber(marker, lowWater));
      }
      return lowWater;
    });
    if (bound <= 1) return;
    await this.finishTruncation(persistenceId);
  }

  /**
   * Deletes the events below an id's unfinished truncation mark, with their index entries, in
   * transactions of TRUNCATE_CHUNK events, and removes the mark in the transaction that deletes the last
   * of them. Each transaction re-reads the mark, so concurrent truncations of one id (or one resumed at
   * open) share the work.
   */
  private async finishTruncation(persistenceId: string): Promise<void> {
    const { journal, metadata, positions, tags: tagIndex, legacyPositions } = this.env;
    const prefix = idPrefix(persistenceId);
    const marker = truncatingKey(persistenceId);
    const arena = new PayloadArena();
    for (;;) {
      const finished = await this.env.write(() => {
        const raw = metadata.get(marker);
        if (raw === undefined) return true;
        const bound = decodeNumber(marker, raw);
        if (typeof bound === 'string') {
          throw new JournalCorruptedError({
            persistenceId,
            key: `metadata:truncating:${persistenceId}`,
            reason: bound,
          });
        }
        const doomed = [
          ...journal.getRange({ start: prefix, end: entryKey(prefix, bound), limit: TRUNCATE_CHUNK }),
        ];
        for (const { key, value } of doomed) {
          const entries = eventIndexEntries(key, value, arena);
          if (typeof entries === 'string') {
            // Its index entries cannot be found without a readable record: keep the mark (index reads keep
            // skipping the id below it) and name the record.
            const where = decodeEntryKey(key);
            throw new JournalCorruptedError({
              persistenceId,
              sequenceNr: where?.sequenceNr,
              key: `journal:${describeEntryKey(key)}`,
              reason: `${entries}; truncation cannot remove its index entries`,
            });
          }
          let position = entries.position;
          if (position === 0) {
            const legacy = legacyPositions.get(key);
            if (legacy !== undefined) {
              position = readPosition(legacy);
              legacyPositions.removeSync(key);
            }
          }
          if (position > 0) {
            positions.removeSync(positionKey(position));
            for (const tag of entries.tags) tagIndex.removeSync(tagKey(tagPrefix(tag), position));
          }
          journal.removeSync(key);
        }
        if (doomed.length < TRUNCATE_CHUNK) {
          metadata.removeSync(marker);
          return true;
        }
        return false;
      });
      if (finished) return;
    }
  }

  /** Finishes the truncations a crash (or a failed transaction) left unfinished. */
  private async finishTruncations(): Promise<void> {
    const ids = [
      ...this.env.metadata.getKeys({ start: TRUNCATING_KEYS_START, end: TRUNCATING_KEYS_END }),
    ].map(idOfMetadataKey);
    for (const id of ids) await this.finishTruncation(id);
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

  /**
   * maxDiskBytes counts the environment's used pages (its trees, snapshots included when they share
   * it): data.mdb never shrinks, but pages freed by truncation are reused, so they count as free.
   */
  protected override _diskBytesUsed(): number {
    return this.env.usedBytes();
  }

  protected async _close(): Promise<void> {
    await this.offsetStoreOfJournal?.releaseAll();
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

  /** The last position assigned in the global order (0 before the first event), as committed. */
  protected readHead(): number {
    const raw = this.env.metadata.getBinaryFast(HEAD_KEY);
    if (raw === undefined) return 0;
    const head = decodeNumber(HEAD_KEY, raw);
    if (typeof head === 'string') throw new JournalCorruptedError({ key: 'metadata:head', reason: head });
    return head;
  }

  /** The journal's random id, created with its storage (offsets carry it). */
  protected override _journalId(): string {
    return this.env.journalId;
  }

  /**
   * The head counter: advanced in the same write transaction that commits the events, so every position
   * at or below it is committed and readable, whichever process wrote it.
   */
  protected override async _headPosition(): Promise<number> {
    return this.guard({ key: 'metadata:head' }, () => this.readHead());
  }

  /**
   * Pages of the surviving events with `after < position <= upTo` matching `filter`, one LMDB read
   * snapshot per page, read when pulled. All events and tags walk an index database (positions, or
   * [tag, position]) and fetch each record by its key; one id's events are read by key from the first one
   * whose position is above `after` (a binary search), as readFrom reads them.
   */
  protected override async *_readOrdered(
    after: number,
    upTo: number,
    filter: OrderedFilter,
  ): AsyncGenerator<readonly PositionedEvent[]> {
    if (filter.kind === 'persistenceId') {
      yield* this.readOrderedById(
        after,
        upTo,
        filter.persistenceId,
        filter.fromSequenceNr,
        filter.toSequenceNr,
      );
      return;
    }
    const tag = filter.kind === 'tag' ? filter.tag : undefined;
    let position = after;
    while (position < upTo) {
      const from = position;
      const page = this.guard(
        { key: tag === undefined ? `positions:${from + 1}..${upTo}` : `tags:${tag}#${from + 1}..${upTo}` },
        () => this.readIndexPage(from, upTo, READ_PAGE, tag),
      );
      if (page.last === position) return;
      position = page.last;
      if (page.events.length > 0) yield page.events.map(positioned);
    }
  }

  private async *readOrderedById(
    after: number,
    upTo: number,
    persistenceId: string,
    fromSequenceNr: number,
    toSequenceNr: number,
  ): AsyncGenerator<readonly PositionedEvent[]> {
    const site = { key: `journal:${persistenceId}#positions`, persistenceId };
    const start = after > 0 ? this.guard(site, () => this.firstSequenceNrAfter(persistenceId, after)) : 1;
    const from = Math.max(fromSequenceNr, start);
    if (from > toSequenceNr) return;
    for await (const events of this._read(persistenceId, from, toSequenceNr, Number.MAX_SAFE_INTEGER)) {
      this.guard(site, () => this.withPositions(persistenceId, events));
      let end = events.length;
      while (end > 0 && events[end - 1]!.position > upTo) end--;
      const out: PositionedEvent[] = [];
      for (let i = 0; i < end; i++) {
        const event = events[i]!;
        if (event.position > after) out.push(positioned({ persistenceId, position: event.position, event }));
      }
      if (out.length > 0) yield out;
      if (end < events.length) return;
    }
  }

  /**
   * Notices commits of other processes: one timer per journal (started by the core with its first live
   * query, stopped with the last one or at close) reads the head counter every FOREIGN_POLL_MS (a single
   * LMDB get; lmdb-js renews its read snapshot on each timer turn) and calls `onCommit` when it moved.
   * lmdb-js offers no change notification across processes (its 'committed' and 'aftercommit' events fire
   * only for commits made in the process that listens; checked with lmdb-js 3.5), so the counter is polled.
   */
  protected override _watchForeignCommits(onCommit: () => void): () => void {
    let seen = this.readHead();
    const timer = setInterval(() => {
      if (this.closed) return;
      let head: number;
      try {
        head = this.readHead();
      } catch {
        // Let the readers meet the error themselves (a damaged head record is named when they read it).
        onCommit();
        return;
      }
      if (head !== seen) {
        seen = head;
        onCommit();
      }
    }, FOREIGN_POLL_MS);
    return () => clearInterval(timer);
  }

  /**
   * One page of the global order (or of one tag's part of it): the events at positions above `after` and
   * up to `upTo`, at most `limit` index entries scanned, read in one LMDB read snapshot. `last` is the last position
   * scanned (`after` when nothing was), so the next page starts after it even when every entry of this one
   * was skipped (an id whose truncation is still deleting its index entries).
   */
  protected readIndexPage(after: number, upTo: number, limit: number, tag?: string): IndexPage {
    const truncating = this.unfinishedTruncations();
    // Index entries first, copied out of the view buffers: the record lookups below reuse them.
    const found: Array<{ position: number; key: Buffer }> = [];
    if (tag === undefined) {
      const range = this.env.positionViews.getRange({
        start: positionKey(after + 1),
        end: positionKey(upTo),
        inclusiveEnd: true,
        limit,
      });
      for (const { key, value } of range) {
        found.push({ position: readPosition(key), key: Buffer.from(value as Uint8Array) });
      }
    } else {
      const prefix = tagPrefix(tag);
      const range = this.env.tagViews.getRange({
        start: tagKey(prefix, after + 1),
        end: tagKey(prefix, upTo),
        inclusiveEnd: true,
        limit,
      });
      for (const { key, value } of range) {
        found.push({ position: readPosition(key, prefix.length), key: Buffer.from(value as Uint8Array) });
      }
    }
    const events: IndexedEvent[] = [];
    const arena = new PayloadArena();
    let last = after;
    for (const { position, key } of found) {
      let event: IndexedEvent | undefined;
      try {
        event = this.indexedEvent(position, key, tag, truncating, arena);
      } catch (e) {
        // Serve the intact events before it first: the next page starts at the bad entry and throws.
        if (events.length > 0) return { events, last };
        throw e;
      }
      if (event) events.push(event);
      last = position;
    }
    return { events, last };
  }

  /** The event an index entry names; undefined when its id is being truncated below it. */
  private indexedEvent(
    position: number,
    key: Buffer,
    tag: string | undefined,
    truncating: Map<string, number> | undefined,
    arena: PayloadArena,
  ): IndexedEvent | undefined {
    const where = decodeEntryKey(key);
    const indexKey = tag === undefined ? `positions:${position}` : `tags:${tag}#${position}`;
    if (!where) {
      throw new JournalCorruptedError({
        key: indexKey,
        reason: `index entry holds 0x${key.toString('hex')}, not a journal key`,
      });
    }
    const { persistenceId, sequenceNr } = where;
    const bound = truncating?.get(persistenceId);
    if (bound !== undefined && sequenceNr < bound) return undefined;
    const value = this.env.journal.getBinaryFast(key);
    if (value === undefined) {
      throw new JournalCorruptedError({
        persistenceId,
        sequenceNr,
        key: indexKey,
        reason: `the index names ${persistenceId}#${sequenceNr}, which the journal does not hold`,
      });
    }
    const event = decodeEvent(key, value, sequenceNr, arena);
    if (typeof event === 'string') {
      throw new JournalCorruptedError({
        persistenceId,
        sequenceNr,
        key: `journal:${describeEntryKey(key)}`,
        reason: event,
      });
    }
    if (event.position === 0) {
      const legacy = this.env.legacyPositions.getBinaryFast(key);
      if (legacy !== undefined) event.position = readPosition(legacy);
    }
    if (event.position !== position) {
      throw new JournalCorruptedError({
        persistenceId,
        sequenceNr,
        key: indexKey,
        reason: `the index puts ${persistenceId}#${sequenceNr} at position ${position}, the event says ${event.position}`,
      });
    }
    return { persistenceId, position, event };
  }

  /**
   * Fills in the positions of version-1 events (stored before the global order existed; their positions
   * live in `legacyPositions`) in a page read by `_read`.
   */
  protected withPositions(persistenceId: string, page: readonly LmdbStoredEvent[]): void {
    let prefix: Buffer | undefined;
    for (const event of page) {
      if (event.position !== 0) continue;
      prefix ??= idPrefix(persistenceId);
      const key = entryKey(prefix, event.sequenceNr);
      const legacy = this.env.legacyPositions.getBinaryFast(key);
      if (legacy === undefined) {
        throw new JournalCorruptedError({
          persistenceId,
          sequenceNr: event.sequenceNr,
          key: `legacyPositions:${persistenceId}#${event.sequenceNr}`,
          reason: 'an event stored before the global order existed has no position',
        });
      }
      event.position = readPosition(legacy);
    }
  }

  /**
   * The lowest sequenceNr of the id whose position is above `position` (highest + 1 when there is none):
   * where an eventsByPersistenceId resumes after an offset. A binary search over the id's surviving
   * events, whose positions ascend with their sequenceNrs.
   */
  protected firstSequenceNrAfter(persistenceId: string, position: number): number {
    const meta = this.readMetadata(persistenceId);
    if (!meta) return 1;
    const prefix = idPrefix(persistenceId);
    const arena = new PayloadArena();
    let low = Math.max(1, meta.lowWater);
    let high = meta.highest + 1;
    while (low < high) {
      const mid = Math.floor((low + high) / 2);
      const key = entryKey(prefix, mid);
      const value = this.env.journal.getBinaryFast(key);
      if (value === undefined) {
        // Truncated meanwhile (below a raised low-water mark): everything from here on is above it.
        if (mid < (this.readMetadata(persistenceId)?.lowWater ?? 0)) {
          low = mid + 1;
          continue;
        }
        throw new JournalCorruptedError({
          persistenceId,
          sequenceNr: mid,
          key: `journal:${describeEntryKey(key)}`,
          reason: `sequenceNr ${mid} is missing below the highest, ${meta.highest}`,
        });
      }
      const event = decodeEvent(key, value, mid, arena);
      if (typeof event === 'string') {
        throw new JournalCorruptedError({
          persistenceId,
          sequenceNr: mid,
          key: `journal:${describeEntryKey(key)}`,
          reason: event,
        });
      }
      this.withPositions(persistenceId, [event]);
      if (event.position > position) high = mid;
      else low = mid + 1;
    }
    return low;
  }

  /** Ids whose truncation has not finished removing index entries, with their low-water marks. */
  private unfinishedTruncations(): Map<string, number> | undefined {
    let bounds: Map<string, number> | undefined;
    for (const { key, value } of this.env.metadata.getRange({
      start: TRUNCATING_KEYS_START,
      end: TRUNCATING_KEYS_END,
    })) {
      const bound = decodeNumber(key as Buffer, value as Buffer);
      const id = idOfMetadataKey(key as Buffer);
      if (typeof bound === 'string') {
        throw new JournalCorruptedError({
          persistenceId: id,
          key: `metadata:truncating:${id}`,
          reason: bound,
        });
      }
      bounds ??= new Map();
      bounds.set(id, bound);
    }
    return bounds;
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
