import { mkdir, realpath, stat } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import * as nodePath from 'node:path';
import {
  checkDirectoryPath,
  claimStoreDirectory,
  JournalCorruptedError,
  newJournalId,
  ReadOnlyError,
  type Reporter,
  StorageError,
} from '@cairn/actor-core';
import { type Database, type Key, open, type RootDatabase } from 'lmdb';
import { orderUnorderedEvents } from './legacy-order';
import {
  decodeEntryKey,
  decodeFormat,
  decodeJournalId,
  encodeFormat,
  encodeIdMetadata,
  encodeJournalId,
  entryKeyEnd,
  FORMAT_KEY,
  idPrefix,
  JOURNAL_ID_KEY,
  LMDB_FORMAT_VERSION,
  LMDB_FORMAT_VERSION_UNORDERED,
  metadataKey,
} from './record-codec';
import { asJournalDamage } from './structure-damage';

/** How the environment is opened; fixed for as long as anyone in the process has it open. */
export interface LmdbEnvironmentSettings {
  /** See LmdbMessageJournalOptions.noSync. */
  readonly noSync: boolean;
  /** See LmdbMessageJournalOptions.mapSize; undefined leaves it to lmdb-js, which grows the map as needed. */
  readonly mapSize: number | undefined;
  /** See LmdbMessageJournalOptions.readOnly. */
  readonly readOnly: boolean;
}

export type BinaryDatabase = Database<Buffer, Buffer>;

interface Entry {
  env: Promise<LmdbEnvironment>;
  refs: number;
}

const DATABASE_NAMES = [
  'journal',
  'metadata',
  'snapshots',
  'positions',
  'tags',
  'legacyPositions',
  'offsets',
] as const;
/** The named databases an application may open beside Cairn's own (LmdbOffsetStore.readModel). */
export const MAX_READ_MODEL_DATABASES = 48;
/** Prefix of a read-model database's name, so it can never be one of Cairn's. */
const READ_MODEL_PREFIX = 'read-model:';

/** Open environments by real directory path; a journal and a snapshot store on one path share one. */
const environments = new Map<string, Entry>();
/** Closes still in progress, so reopening a path waits until LMDB let go of it. */
const closing = new Map<string, Promise<void>>();

/**
 * One LMDB environment (a directory with data.mdb and lock.mdb) and its three named databases, shared
 * within the process and reference-counted: `acquire` per user, `release` per user, the last release
 * closes it. LMDB itself serialises writers across processes.
 */
export class LmdbEnvironment {
  /** Events only: keys [id, sequenceNr] (see record-codec.ts). Control keys never live here. */
  readonly journal: BinaryDatabase;
  /** Per-id highest and low-water mark, and the format version. */
  readonly metadata: BinaryDatabase;
  /** Snapshot envelopes, keys [id, sequenceNr]. */
  readonly snapshots: BinaryDatabase;
  /** The global order: position -> journal key (see record-codec.ts). */
  readonly positions: BinaryDatabase;
  /** The positions of each tag: [tag, position] -> journal key. */
  readonly tags: BinaryDatabase;
  /** Positions of events written before the global order existed: journal key -> position. */
  readonly legacyPositions: BinaryDatabase;
  /** Projection offsets (LmdbOffsetStore): projection name -> offset. */
  readonly offsets: BinaryDatabase;
  /** The positions database again, for ranges of views (as journalViews). */
  readonly positionViews: BinaryDatabase;
  /** The tags database again, for ranges of views (as journalViews). */
  readonly tagViews: BinaryDatabase;
  private readonly readModels = new Map<string, Database<unknown, Key>>();
  /** The journal's random id (offsets carry it), read at open. */
  journalId = '';
  /**
   * The journal database again, for streaming reads only: its getRange yields each key and value as a
   * view into lmdb-js's reused read buffers instead of a fresh copy of each (two ArrayBuffers per record;
   * measured 0.9 -> 2.7 M records/s for the bare iteration). A record is valid only until the iterator's
   * next step: a loop over it must check it and copy out what it keeps before moving on, and must not
   * call get() on this handle.
   */
  readonly journalViews: BinaryDatabase;
  /** The snapshots database again, for ranges of views (as journalViews). */
  readonly snapshotViews: BinaryDatabase;

  private constructor(
    readonly directory: string,
    readonly settings: LmdbEnvironmentSettings,
    private readonly root: RootDatabase,
  ) {
    const binary = { encoding: 'binary', keyEncoding: 'binary' } as const;
    this.journal = root.openDB({ name: 'journal', ...binary }) as unknown as BinaryDatabase;
    this.metadata = root.openDB({ name: 'metadata', ...binary }) as unknown as BinaryDatabase;
    this.snapshots = root.openDB({ name: 'snapshots', ...binary }) as unknown as BinaryDatabase;
    this.positions = root.openDB({ name: 'positions', ...binary }) as unknown as BinaryDatabase;
    this.tags = root.openDB({ name: 'tags', ...binary }) as unknown as BinaryDatabase;
    this.legacyPositions = root.openDB({ name: 'legacyPositions', ...binary }) as unknown as BinaryDatabase;
    this.offsets = root.openDB({ name: 'offsets', ...binary }) as unknown as BinaryDatabase;
    this.positionViews = yieldingViews(
      root.openDB({ name: 'positions', ...binary }) as unknown as BinaryDatabase,
    );
    this.tagViews = yieldingViews(root.openDB({ name: 'tags', ...binary }) as unknown as BinaryDatabase);
    this.journalViews = yieldingViews(
      root.openDB({ name: 'journal', ...binary }) as unknown as BinaryDatabase,
    );
    this.snapshotViews = yieldingViews(
      root.openDB({ name: 'snapshots', ...binary }) as unknown as BinaryDatabase,
    );
  }

  /**
   * Bytes of the pages in use: every tree's branch, leaf and overflow pages (the main database, each
   * database of the journal, snapshots and read models, and the free list's own tree) plus the two meta
   * pages. Pages on the free list (freed by deletes, reused by later writes) are not counted, so this
   * falls when truncation deletes events although data.mdb keeps its size.
   */
  usedBytes(): number {
    type TreeStats = {
      pageSize: number;
      treeBranchPageCount: number;
      treeLeafPageCount: number;
      overflowPages: number;
    };
    const pages = (s: TreeStats) => s.treeBranchPageCount + s.treeLeafPageCount + s.overflowPages;
    const first = this.journal.getStats() as TreeStats & { root: TreeStats; free: TreeStats };
    let used = 2 + pages(first.root) + pages(first.free) + pages(first);
    const others: Array<{ getStats(): unknown }> = [
      this.metadata,
      this.snapshots,
      this.positions,
      this.tags,
      this.legacyPositions,
      this.offsets,
      ...this.readModels.values(),
    ];
    for (const db of others) used += pages(db.getStats() as TreeStats);
    return used * first.pageSize;
  }

  /**
   * Opens (or shares) the environment at `directory`, creating the directory when missing, and brings
   * its metadata to the current format (the migration of the hardening plan: a journal without metadata gets each
   * id's highest from its last key). Rejects with TypeError when the path is already open in this process
   * with different settings: one environment cannot be durable for one user and not for another.
   */
  static async acquire(
    directory: string,
    settings: LmdbEnvironmentSettings,
    reporter: Reporter,
  ): Promise<LmdbEnvironment> {
    await checkDirectoryPath(directory, 'LMDB environment');
    if (settings.readOnly) await LmdbEnvironment.requireExisting(directory);
    else await mkdir(directory, { recursive: true });
    // Refuses another backend's directory (a file journal, say) before LMDB creates its files in it.
    await claimStoreDirectory(directory, 'lmdb', { readOnly: settings.readOnly });
    const real = await realpath(directory);
    await closing.get(real);
    let entry = environments.get(real);
    if (!entry) {
      const env = LmdbEnvironment.open(real, settings, reporter);
      entry = { env, refs: 0 };
      environments.set(real, entry);
      env.catch(() => {
        if (environments.get(real) === entry) environments.delete(real);
      });
    }
    entry.refs++;
    let env: LmdbEnvironment;
    try {
      env = await entry.env;
    } catch (e) {
      entry.refs--;
      throw e;
    }
    // A read-only user may share a writable environment (it never writes through it; its journal or store
    // refuses writes itself); a writable user cannot share a read-only one. noSync and mapSize only
    // matter to writers.
    const mismatch = settings.readOnly
      ? undefined
      : env.settings.readOnly
        ? 'readOnly: true'
        : env.settings.noSync !== settings.noSync ||
            (settings.mapSize !== undefined && env.settings.mapSize !== settings.mapSize)
          ? `noSync: ${env.settings.noSync}, mapSize: ${env.settings.mapSize ?? 'default'}`
          : undefined;
    if (mismatch !== undefined) {
      await env.release();
      throw new TypeError(
        `${real} is already open in this process with ${mismatch}; ` +
          'a journal and a snapshot store sharing a path must use the same settings',
      );
    }
    return env;
  }

  /**
   * A read-only open never creates anything: lmdb-js would create the directory and LMDB the data file,
   * so both are checked first.
   */
  private static async requireExisting(directory: string): Promise<void> {
    const dataFile = nodePath.join(directory, 'data.mdb');
    try {
      if (!(await stat(directory)).isDirectory()) throw new Error(`${directory} is not a directory`);
      await stat(dataFile);
    } catch (e) {
      throw new StorageError(
        `no LMDB environment at ${directory} (${dataFile} not found); a read-only open never creates one`,
        { cause: e },
      );
    }
  }

  private static async open(
    directory: string,
    settings: LmdbEnvironmentSettings,
    reporter: Reporter,
  ): Promise<LmdbEnvironment> {
    let root: RootDatabase;
    try {
      root = openRoot(directory, settings);
    } catch (e) {
      throw asJournalDamage(e, directory, { key: 'data.mdb (opening the environment)' });
    }
    try {
      if (settings.readOnly) {
        // Read-only, lmdb-js cannot create a named database and opening a missing one yields a handle
        // that fails on first use: name the missing one instead. Every writable open creates all three.
        const present = new Set<unknown>(root.getKeys());
        const missing = DATABASE_NAMES.filter((name) => !present.has(name));
        if (missing.length > 0) {
          throw new ReadOnlyError(
            directory,
            `the environment has no ${missing.join(', ')} database (written before Cairn kept metadata, or ` +
              'never opened by Cairn); open it once writable to migrate it, then read-only',
          );
        }
      }
      const env = new LmdbEnvironment(directory, settings, root);
      env.prepareFormat(reporter);
      return env;
    } catch (e) {
      await root.close();
      throw asJournalDamage(e, directory, { key: 'metadata:format (opening the environment)' });
    }
  }

  /** Gives up one reference; the last one closes the environment. */
  async release(): Promise<void> {
    const entry = environments.get(this.directory);
    if (!entry) return;
    if (--entry.refs > 0) return;
    environments.delete(this.directory);
    const done = this.root.close().finally(() => closing.delete(this.directory));
    closing.set(this.directory, done);
    await done;
  }

  /**
   * Runs `body` in one write transaction that is rolled back (nothing written) if `body` throws. A commit
   * that fails in LMDB (a full disk, an I/O error) rejects with its system error (see commitFailure).
   */
  async write<T>(body: () => T): Promise<T> {
    try {
      return (await this.journal.childTransaction(body)) as T;
    } catch (e) {
      throw await commitFailure(e);
    }
  }

  /** As write, for lmdb-js's own single-put transaction (a snapshot save). */
  async put(db: BinaryDatabase, key: Buffer, value: Buffer): Promise<void> {
    try {
      await db.put(key, value);
    } catch (e) {
      throw await commitFailure(e);
    }
  }

  /** As write, for a batch of removes. */
  async batch(body: () => void): Promise<void> {
    try {
      await this.snapshots.batch(body);
    } catch (e) {
      throw await commitFailure(e);
    }
  }

  /**
   * Runs `body` synchronously in one write transaction (lmdb-js transactionSync): it waits for LMDB's
   * writer lock (held across processes) on the calling thread, runs `body` holding it, and commits (and,
   * unless noSync, syncs) before returning. `body` throwing rolls everything back. No other write, of this
   * process or another, interleaves with it.
   */
  writeSync<T>(body: () => T): T {
    return this.root.transactionSync(body) as T;
  }

  /**
   * The application's named database `name` in this environment (lmdb-js defaults: msgpack values,
   * ordered-binary keys, unless `options` say otherwise); opened once per name and environment.
   */
  readModel<K extends Key = Key, V = unknown>(
    name: string,
    options: {
      encoding?: 'msgpack' | 'json' | 'string' | 'binary' | 'ordered-binary';
      keyEncoding?: 'ordered-binary' | 'uint32' | 'binary';
    } = {},
  ): Database<V, K> {
    let db = this.readModels.get(name);
    if (!db) {
      if (this.readModels.size >= MAX_READ_MODEL_DATABASES) {
        throw new RangeError(
          `at most ${MAX_READ_MODEL_DATABASES} read-model databases per environment; "${name}" would be one more`,
        );
      }
      db = this.root.openDB({ name: `${READ_MODEL_PREFIX}${name}`, ...options }) as unknown as Database<
        unknown,
        Key
      >;
      this.readModels.set(name, db);
    }
    return db as unknown as Database<V, K>;
  }

  private prepareFormat(reporter: Reporter): void {
    if (this.settings.readOnly) {
      // No write transaction exists read-only: check the format record in a read and refuse what only a
      // writable open could prepare, rather than read an unmigrated journal without its metadata.
      const stored = this.metadata.get(FORMAT_KEY);
      if (stored === undefined) {
        throw new ReadOnlyError(
          this.directory,
          'the environment has no format record (written before Cairn kept metadata, or never opened by ' +
            'Cairn); open it once writable to migrate it, then read-only',
        );
      }
      if (this.checkFormat(stored) !== LMDB_FORMAT_VERSION) {
        throw new ReadOnlyError(
          this.directory,
          `the environment has format ${LMDB_FORMAT_VERSION_UNORDERED} (written before Cairn kept a global ` +
            'order of events); open it once writable to give its events their positions, then read-only',
        );
      }
      this.journalId = this.readJournalId();
      return;
    }
    // One transaction: a crash midway leaves the environment as it was, and the next open does it all again.
    const { initialised, ordered } = this.root.transactionSync(() => {
      const stored = this.metadata.get(FORMAT_KEY);
      let version = LMDB_FORMAT_VERSION_UNORDERED;
      let initialised = 0;
      if (stored !== undefined) version = this.checkFormat(stored);
      else initialised = this.initialiseMetadataFromJournal();
      let ordered = 0;
      if (version === LMDB_FORMAT_VERSION_UNORDERED) {
        ordered = orderUnorderedEvents(this);
        this.metadata.putSync(FORMAT_KEY, encodeFormat(LMDB_FORMAT_VERSION));
      }
      if (this.metadata.get(JOURNAL_ID_KEY) === undefined) {
        this.metadata.putSync(JOURNAL_ID_KEY, encodeJournalId(newJournalId()));
      }
      return { initialised, ordered };
    });
    this.journalId = this.readJournalId();
    if (initialised > 0) {
      reporter({
        kind: 'lmdb-metadata-initialised',
        message:
          `${this.directory}: the journal had no metadata; initialised the highest sequenceNr of ${initialised} ` +
          'persistence id(s) from their last stored key. Entries truncated before the upgrade cannot be ' +
          'counted: recover from snapshots where you had deleted events',
      });
    }
    if (ordered > 0) {
      reporter({
        kind: 'lmdb-global-order-assigned',
        message:
          `${this.directory}: upgraded to format ${LMDB_FORMAT_VERSION}; the ${ordered} event(s) written before ` +
          'the global order existed got positions 1..' +
          `${ordered} (by timestamp, then persistence id, then sequenceNr), fixed from now on`,
      });
    }
  }

  private readJournalId(): string {
    const raw = this.metadata.get(JOURNAL_ID_KEY);
    const id = raw === undefined ? { reason: 'missing' } : decodeJournalId(raw);
    if (typeof id !== 'string') {
      throw new JournalCorruptedError({ key: `metadata/journal-id in ${this.directory}`, reason: id.reason });
    }
    return id;
  }

  /** The stored format version (one this build reads), or a JournalCorruptedError. */
  private checkFormat(stored: Buffer): number {
    const version = decodeFormat(stored);
    if (typeof version === 'string') {
      throw new JournalCorruptedError({ key: `metadata/format in ${this.directory}`, reason: version });
    }
    if (version !== LMDB_FORMAT_VERSION && version !== LMDB_FORMAT_VERSION_UNORDERED) {
      throw new JournalCorruptedError({
        key: `metadata/format in ${this.directory}`,
        reason: `format version ${version}, this build reads ${LMDB_FORMAT_VERSION_UNORDERED} and ${LMDB_FORMAT_VERSION}: written by a newer Cairn, or corrupted`,
      });
    }
    return version;
  }

  /**
   * For every id in the journal database that has no metadata entry, records its last key as its
   * highest and its first key as its low-water mark. Visits each id once: after reading an id's last key it jumps past all its keys.
   */
  private initialiseMetadataFromJournal(): number {
    let count = 0;
    let start: Buffer | undefined;
    for (;;) {
      const first = firstOf(this.journal.getKeys({ ...(start ? { start } : {}), limit: 1 }));
      if (first === undefined) return count;
      const decoded = decodeEntryKey(first);
      if (!decoded) {
        throw new JournalCorruptedError({
          key: `0x${Buffer.from(first).toString('hex')}`,
          reason: 'journal key is not [persistenceId, sequenceNr]; cannot initialise metadata from it',
        });
      }
      const prefix = idPrefix(decoded.persistenceId);
      const end = entryKeyEnd(prefix);
      const last = firstOf(this.journal.getKeys({ start: end, end: prefix, reverse: true, limit: 1 }));
      const highest = last === undefined ? 0 : (decodeEntryKey(last)?.sequenceNr ?? 0);
      const key = metadataKey(decoded.persistenceId);
      if (this.metadata.get(key) === undefined) {
        // A legacy journal deleted old entries without a mark: its first surviving key is the low-water mark,
        // so the numbers below it read as truncated, not as missing.
        this.metadata.putSync(key, encodeIdMetadata(key, { highest, lowWater: decoded.sequenceNr }));
        count++;
      }
      start = end;
    }
  }
}

/**
 * Makes `db`'s range iteration hand out views instead of copies. lmdb-js (3.x) reads a range entry's key
 * with the store's `readKey` and passes its value to the store's `decoder` without copying it when
 * `decoderCopies` is set (what it does for its own msgpack decoder); both are replaced here. Should a
 * later lmdb-js ignore them, ranges yield copies again: slower, never wrong.
 */
function yieldingViews(db: BinaryDatabase): BinaryDatabase {
  const internals = db as unknown as {
    readKey: (target: Uint8Array, start: number, end: number) => Uint8Array;
    decoder: { decode: (bytes: Uint8Array, size: number) => Uint8Array };
    decoderCopies: boolean;
  };
  internals.readKey = (target, start, end) => target.subarray(start, end);
  internals.decoder = { decode: (bytes, size) => bytes.subarray(0, size) };
  internals.decoderCopies = true;
  return db;
}

/**
 * lmdb-js rejects a failed commit with "Commit failed (see commitError for details)" and puts the system
 * error (ENOSPC, EIO, ...) on `commitError`, a promise that rejects with it. That promise is taken here,
 * so it is never left unhandled, and its error becomes the cause, named by its code.
 */
async function commitFailure(e: unknown): Promise<unknown> {
  const pending = (e as { commitError?: PromiseLike<unknown> } | null)?.commitError;
  if (typeof pending?.then !== 'function') return e;
  const timeout = new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 1000).unref());
  const system = await Promise.race([
    Promise.resolve(pending).then(
      () => undefined,
      (c: unknown) => c,
    ),
    timeout,
  ]);
  if (typeof (system as Error | undefined)?.message !== 'string') return e;
  const errno = (system as { code?: unknown }).code;
  const name = typeof errno === 'number' ? errnoName(errno) : undefined;
  const failure = new Error(`LMDB commit failed: ${name ? `${name}: ` : ''}${(system as Error).message}`, {
    cause: system,
  }) as NodeJS.ErrnoException;
  if (name) failure.code = name;
  if (typeof errno === 'number') failure.errno = -errno;
  return failure;
}

function errnoName(errno: number): string | undefined {
  for (const [name, value] of Object.entries(osConstants.errno)) if (value === errno) return name;
  return undefined;
}

function openRoot(directory: string, settings: LmdbEnvironmentSettings): RootDatabase {
  return open({
    path: directory,
    // Cairn groups writes itself (the journal's group commit). lmdb-js's event-turn batching opens each
    // batch with a write whose promise nobody can reach: when that batch's commit fails (a full disk), the
    // rejection is unhandled and Node ends the process.
    eventTurnBatching: false,
    // A path with a dot would otherwise be taken for a file name; Cairn's path is always a directory.
    noSubdir: false,
    // Cairn's own databases plus the read models an application keeps beside them.
    maxDbs: DATABASE_NAMES.length + MAX_READ_MODEL_DATABASES,
    // Sync inside the commit, so a write's promise resolves only once it is on disk. Measured against
    // overlappingSync + awaiting db.flushed: the same throughput or better here, and no second promise.
    overlappingSync: false,
    noSync: settings.noSync,
    readOnly: settings.readOnly,
    ...(settings.mapSize === undefined ? {} : { mapSize: settings.mapSize }),
  });
}

/** The first item of a (lazy, synchronous) lmdb-js range, or undefined. */
export function firstOf<T>(range: Iterable<T>): T | undefined {
  for (const item of range) return item;
  return undefined;
}
