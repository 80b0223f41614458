import { mkdir, realpath, stat } from 'node:fs/promises';
import * as nodePath from 'node:path';
import { JournalCorruptedError, ReadOnlyError, type Reporter, StorageError } from '@cairn/actor-core';
import { type Database, open, type RootDatabase } from 'lmdb';
import {
  decodeEntryKey,
  decodeFormat,
  encodeFormat,
  encodeIdMetadata,
  entryKeyEnd,
  FORMAT_KEY,
  idPrefix,
  LMDB_FORMAT_VERSION,
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

const DATABASE_NAMES = ['journal', 'metadata', 'snapshots'] as const;

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
    this.journalViews = yieldingViews(
      root.openDB({ name: 'journal', ...binary }) as unknown as BinaryDatabase,
    );
    this.snapshotViews = yieldingViews(
      root.openDB({ name: 'snapshots', ...binary }) as unknown as BinaryDatabase,
    );
  }

  /**
   * Opens (or shares) the environment at `directory`, creating the directory when missing, and brings
   * its metadata to the current format (the migration of seed 004: a journal without metadata gets each
   * id's highest from its last key). Rejects with TypeError when the path is already open in this process
   * with different settings: one environment cannot be durable for one user and not for another.
   */
  static async acquire(
    directory: string,
    settings: LmdbEnvironmentSettings,
    reporter: Reporter,
  ): Promise<LmdbEnvironment> {
    if (settings.readOnly) await LmdbEnvironment.requireExisting(directory);
    else await mkdir(directory, { recursive: true });
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

  /** Runs `body` in one write transaction that is rolled back (nothing written) if `body` throws. */
  write<T>(body: () => T): Promise<T> {
    return this.journal.childTransaction(body) as Promise<T>;
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
      this.checkFormat(stored);
      return;
    }
    const migrated = this.root.transactionSync(() => {
      const stored = this.metadata.get(FORMAT_KEY);
      if (stored !== undefined) {
        this.checkFormat(stored);
        return 0;
      }
      const initialised = this.initialiseMetadataFromJournal();
      this.metadata.putSync(FORMAT_KEY, encodeFormat(LMDB_FORMAT_VERSION));
      return initialised;
    });
    if (migrated > 0) {
      reporter({
        kind: 'lmdb-metadata-initialised',
        message:
          `${this.directory}: the journal had no metadata; initialised the highest sequenceNr of ${migrated} ` +
          'persistence id(s) from their last stored key. Entries truncated before the upgrade cannot be ' +
          'counted: recover from snapshots where you had deleted events',
      });
    }
  }

  private checkFormat(stored: Buffer): void {
    const version = decodeFormat(stored);
    if (typeof version === 'string') {
      throw new JournalCorruptedError({ key: `metadata/format in ${this.directory}`, reason: version });
    }
    if (version !== LMDB_FORMAT_VERSION) {
      throw new JournalCorruptedError({
        key: `metadata/format in ${this.directory}`,
        reason: `format version ${version}, this build reads ${LMDB_FORMAT_VERSION}: written by a newer Cairn, or corrupted`,
      });
    }
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

function openRoot(directory: string, settings: LmdbEnvironmentSettings): RootDatabase {
  return open({
    path: directory,
    // A path with a dot would otherwise be taken for a file name; Cairn's path is always a directory.
    noSubdir: false,
    maxDbs: 4,
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
