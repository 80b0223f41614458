import { readdir, stat } from 'node:fs/promises';
import * as path from 'node:path';
import type { HealthCheck } from '@cairn/actor-core';
import {
  AbstractSnapshotStore,
  type CorruptionLocation,
  checkDirectoryPath,
  checkOpenOptions,
  claimStoreDirectory,
  isPersistenceError,
  type OptionSchema,
  SNAPSHOT_OPTION_TYPES,
  SnapshotCorruptedError,
  type SnapshotMetadata,
  type SnapshotStoreCapabilities,
  type SnapshotStoreOptions,
  StorageError,
  type StoredSnapshot,
  type StoreFiles,
  storeBackendOf,
} from '@cairn/actor-core';
import { DirectoryLock } from './directory-lock';
import { decodeSnapshotEnvelope, encodeSnapshotEnvelope } from './envelope';
import { IoPool } from './io-pool';
import {
  isHashedDirectoryName,
  PERSISTENCE_ID_FILE,
  type PersistenceIdDirectoryName,
  persistenceIdDirectoryName,
  persistenceIdFromDirectoryName,
} from './persistence-id-directory';

export interface FileSnapshotStoreOptions extends SnapshotStoreOptions {
  /** The directory holding the snapshots; created (with missing parents) when it does not exist. */
  readonly path: string;
  /**
   * Default true: a save is on stable storage when it resolves (the temp file is fsynced before it is
   * renamed into place, and the directory after). false skips the fsyncs: much faster saves, and a
   * process crash still loses nothing, but a power loss may lose recent snapshots; a snapshot torn by the
   * power loss is never served (it fails its checksum, is reported and skipped in favour of an older one).
   */
  readonly fsync?: boolean;
  /**
   * Threads of the store's IO pool (the process's shared pool for this count, see IoPool and
   * `ioIdleMs`). Default max(1, floor(cores / 2)). Snapshots of different persistence ids are written in
   * parallel up to this many; one id's calls always run in order.
   */
  readonly ioThreads?: number;
  /**
   * When the threads of the process's shared IO pool end once no file journal or snapshot store uses
   * them any more. Every file journal and file snapshot store of the process with the same `ioThreads`
   * shares one pool. Default: they are kept (unref'd: they never keep the process alive) until the
   * process exits or `endIdleIoThreads()` is called, so a store opened later starts without waiting for
   * a thread (40-200 ms each). A number: they end that many ms after the last store closed (the value
   * of the store that closes last applies); 0: they end with that close(), which then resolves once they
   * have ended (nothing of the store remains).
   */
  readonly ioIdleMs?: number;
  /**
   * Default false. `true` opens an existing store for reading beside a process that writes it (as
   * `cairn` does): the directory must exist (StorageError otherwise), nothing is created or removed (not
   * even the temp files of interrupted saves), and save, delete and prune reject with ReadOnlyError
   * (code `ERR_READ_ONLY`). Saves the writer completes meanwhile are seen: each is renamed into place whole.
   */
  readonly readOnly?: boolean;
  /**
   * A writable store locks its directory (`snapshots.lock`, refreshed in the background) so a second
   * process cannot write it: its open rejects with JournalLockedError naming the holder. A holder that
   * died stops refreshing, and after this many ms the next open takes the lock over (at once when the
   * holder provably no longer runs on this machine). Default 2000. Stores of one process on one directory
   * share the lock. Read-only opens take none.
   */
  readonly lockStaleMs?: number;
}

/** Every option FileSnapshotStore.open takes: checked by open() and by the provider's validateOptions. */
export const FILE_SNAPSHOT_OPTION_TYPES: OptionSchema = {
  ...SNAPSHOT_OPTION_TYPES,
  fsync: 'boolean',
  ioThreads: { check: (v) => Number.isSafeInteger(v) && (v as number) >= 1, expected: 'an integer >= 1' },
  ioIdleMs: { check: (v) => Number.isSafeInteger(v) && (v as number) >= 0, expected: 'an integer >= 0' },
  readOnly: 'boolean',
  lockStaleMs: { check: (v) => Number.isSafeInteger(v) && (v as number) >= 1, expected: 'an integer >= 1' },
};

const DEFAULT_LOCK_STALE_MS = 2000;

/** A directory's lock, shared by the stores of this process open on it; the last close releases it. */
interface SharedLock {
  readonly lock: Promise<DirectoryLock>;
  refs: number;
  /** Set when the lock was lost: every store on the directory refuses writes from then on. */
  lost?: Error;
}
const sharedLocks = new Map<string, SharedLock>();

/** How many stores of this process are open on each directory (their temp files must survive a second open). */
const openRoots = new Map<string, number>();

/** Bounds the memory of the "directory is ready" cache for stores that see millions of ids. */
const MAX_READY_DIRECTORIES = 100_000;

/** Where temp files are written before they are renamed into a persistenceId's directory. */
export const TEMP_DIRECTORY = '.tmp';
const SEQUENCE_DIGITS = 16; // Number.MAX_SAFE_INTEGER has 16 digits
const SNAPSHOT_FILE = /^(\d{16})-(\d{16})\.snapshot$/;

// Not `.snap`: jest treats every *.snap file under its roots as a (possibly obsolete) test snapshot.
/** `<sequenceNr>-<timestamp>.snapshot`, both zero-padded to 16 digits, so names sort by sequenceNr. */
export function snapshotFileName(sequenceNr: number, timestamp: number): string {
  return `${String(sequenceNr).padStart(SEQUENCE_DIGITS, '0')}-${String(timestamp).padStart(SEQUENCE_DIGITS, '0')}.snapshot`;
}

/** The sequenceNr and timestamp a snapshot file name carries, or undefined for any other name. */
export function parseSnapshotFileName(name: string): SnapshotMetadata | undefined {
  const m = SNAPSHOT_FILE.exec(name);
  if (!m) return undefined;
  const sequenceNr = Number(m[1]);
  const timestamp = Number(m[2]);
  if (!Number.isSafeInteger(sequenceNr) || sequenceNr < 1 || !Number.isSafeInteger(timestamp))
    return undefined;
  return { sequenceNr, timestamp };
}

/**
 * Snapshots as files: one directory per persistenceId (a reversible, collision-free encoding of the id,
 * see persistence-id-directory.ts), one file per snapshot named `<sequenceNr>-<timestamp>.snapshot`, so that
 * listing and criteria need only the directory, and each file one checksummed envelope (envelope.ts).
 *
 * Why a crash never leaves a torn or half-replaced snapshot visible: a save writes the envelope to a temp
 * file in `<path>/.tmp`, fsyncs it, renames it to its final name (rename is atomic: the name points to the
 * old file or the complete new one), and fsyncs the id's directory, and only then resolves. A crash before
 * the rename leaves just a temp file, removed on the next open; after the rename the new snapshot is
 * complete. A save at a sequenceNr that already has a snapshot with another timestamp removes the older
 * file after the rename; should a crash come in between, the listing takes the higher timestamp (both are
 * complete snapshots of the state after the same event; only a clock stepped back between the two saves
 * makes that the earlier one). Every load verifies the checksums; a corrupt file is reported,
 * skipped and left in place for inspection, never deleted automatically.
 *
 * All blocking file work runs on the process's shared IoPool; `close()` waits for the store's calls in
 * flight and releases the pool (its threads stay for the next store, see `ioIdleMs`).
 */
export class FileSnapshotStore<S = unknown> extends AbstractSnapshotStore<S> {
  /** What the conformance kit and callers may rely on: snapshots survive close, crash and reopen. */
  readonly capabilities: SnapshotStoreCapabilities = {
    persistent: true,
    health: true,
    readOnly: true,
    import: true,
    metrics: true,
    listIds: true,
  };
  /** The store's directory, absolute. */
  readonly path: string;
  /** Whether saves are fsynced before they resolve (see FileSnapshotStoreOptions.fsync). */
  readonly fsync: boolean;
  private readonly io: IoPool;
  private readonly tempDir: string;
  /** Id directories known to exist durably, and when hashed to belong to their id. */
  private readonly readyDirectories = new Set<string>();
  /** The newest snapshot file an id's listing read along, for the load that follows it (see `_list`). */
  private readonly prefetched = new Map<string, { file: string; data: Uint8Array }>();
  /** Counted in `openRoots` (from the temp cleanup in open until close). */
  private registered = false;
  /** The directory's lock (writable stores only), from open until close. */
  private sharedLock: SharedLock | undefined;
  private readonly lockStaleMs: number;

  private constructor(options: FileSnapshotStoreOptions, root: string, io: IoPool) {
    super(options);
    this.path = root;
    this.fsync = options.fsync ?? true;
    this.io = io;
    this.tempDir = path.join(root, TEMP_DIRECTORY);
    this.lockStaleMs = options.lockStaleMs ?? DEFAULT_LOCK_STALE_MS;
  }

  /**
   * True when `directory` holds a FileSnapshotStore: the file backend's marker (or no marker, as data
   * written before markers has none) and this store's temp directory or one id directory of
   * `<sequenceNr>-<timestamp>.snapshot` files. Reads only; for tools pointed at a bare directory.
   */
  static async holdsStore(directory: string): Promise<boolean> {
    const backend = await storeBackendOf(directory);
    if (backend !== undefined && backend !== 'file') return false;
    const entries = await readdir(directory, { withFileTypes: true }).catch(() => []);
    if (entries.some((e) => e.name === TEMP_DIRECTORY && e.isDirectory())) return true;
    for (const entry of entries) {
      if (!entry.isDirectory()) continue;
      const files = await readdir(path.join(directory, entry.name)).catch(() => [] as string[]);
      if (files.some((f) => SNAPSHOT_FILE.test(f))) return true;
    }
    return false;
  }

  /**
   * The snapshot files (`<sequenceNr>-<timestamp>.snapshot`) in the id directories of `directory`,
   * counted and sized; temp files of saves in progress are not counted. Reads only; for tools.
   */
  static async describeFiles(directory: string): Promise<StoreFiles[]> {
    const snapshots = { label: 'snapshot files', count: 0, bytes: 0 };
    for (const entry of await readdir(directory, { withFileTypes: true })) {
      if (!entry.isDirectory() || entry.name === TEMP_DIRECTORY) continue;
      const dir = path.join(directory, entry.name);
      const names = await readdir(dir).catch(() => [] as string[]);
      for (const name of names) {
        if (!SNAPSHOT_FILE.test(name)) continue;
        // A file a live writer replaced meanwhile is simply not counted.
        const size = await stat(path.join(dir, name)).then(
          (s) => s.size,
          () => undefined,
        );
        if (size === undefined) continue;
        snapshots.count++;
        snapshots.bytes += size;
      }
    }
    return [snapshots];
  }

  /**
   * Opens (creating when missing, unless readOnly) the store in `options.path`, and removes temp files
   * that a crashed save left behind (not when readOnly).
   * @throws TypeError for bad options; StorageError when the directory cannot be created or read, or
   *   (readOnly) does not exist.
   */
  static async open<S = unknown>(options: FileSnapshotStoreOptions): Promise<FileSnapshotStore<S>> {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError('FileSnapshotStore.open needs an options object with a path');
    }
    if (typeof options.path !== 'string' || options.path.length === 0) {
      throw new TypeError('FileSnapshotStore.open: path must be a non-empty string');
    }
    checkOpenOptions('FileSnapshotStore', options, FILE_SNAPSHOT_OPTION_TYPES);
    const root = path.resolve(options.path);
    await checkDirectoryPath(root, 'file snapshot store');
    const io = IoPool.shared({
      threads: options.ioThreads,
      ...(options.ioIdleMs === undefined ? {} : { idleMs: options.ioIdleMs }),
    });
    let store: FileSnapshotStore<S> | undefined;
    try {
      store = new FileSnapshotStore<S>(options, root, io);
      await store.prepare();
      return store;
    } catch (e) {
      store?.unregister();
      await store?.releaseLock().catch(() => undefined);
      await io.close();
      if (e instanceof TypeError || e instanceof RangeError || isPersistenceError(e)) throw e;
      throw new StorageError(`cannot open the snapshot store in ${root}: ${(e as Error).message}`, {
        cause: e,
      });
    }
  }

  private async prepare(): Promise<void> {
    if (this.readOnly) {
      try {
        await this.io.run({ op: 'readdir', args: { path: this.path } });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        throw new StorageError(
          `no snapshot store at ${this.path}: a read-only open never creates one (open it writable once)`,
          { cause: e },
        );
      }
      await claimStoreDirectory(this.path, 'file', { readOnly: true });
      return;
    }
    await this.makeDirectory(this.path);
    await this.takeLock();
    // Refuses another backend's directory (an LMDB environment, say) before anything is created in it.
    await claimStoreDirectory(this.path, 'file');
    await this.makeDirectory(this.tempDir);
    // Another store of this process open on the same directory may have saves in flight: keep ours then.
    const keepOwn = (openRoots.get(this.path) ?? 0) > 0;
    openRoots.set(this.path, (openRoots.get(this.path) ?? 0) + 1);
    this.registered = true;
    const removed = await this.io.run({ op: 'removeStaleTempFiles', args: { path: this.tempDir, keepOwn } });
    if (removed.length > 0) {
      this.reporter({
        kind: 'snapshot-temp-removed',
        message: `removed ${removed.length} temp file(s) of interrupted snapshot saves from ${this.tempDir}`,
      });
    }
  }

  /** Takes the directory's lock, or a share of it when another store of this process holds it. */
  private async takeLock(): Promise<void> {
    let shared = sharedLocks.get(this.path);
    if (!shared) {
      const entry: SharedLock = {
        refs: 0,
        lock: DirectoryLock.acquire(this.path, 'snapshots', this.lockStaleMs, this.reporter, (error) => {
          const lost = new StorageError(
            `lost the lock of the snapshot store ${this.path} (another process may have taken it): ` +
              `${error.message}; saves, deletes and prunes are refused: reopen the store`,
            { cause: error },
          );
          entry.lost = lost;
          this.reporter({ kind: 'lock-lost', message: lost.message, error: lost });
        }),
      };
      shared = entry;
      sharedLocks.set(this.path, entry);
      entry.lock.catch(() => {
        if (sharedLocks.get(this.path) === entry) sharedLocks.delete(this.path);
      });
    }
    shared.refs++;
    this.sharedLock = shared;
    await shared.lock;
  }

  /** Gives up this store's share of the lock; the last share releases it. */
  private async releaseLock(): Promise<void> {
    const shared = this.sharedLock;
    this.sharedLock = undefined;
    if (!shared || --shared.refs > 0) return;
    if (sharedLocks.get(this.path) === shared) sharedLocks.delete(this.path);
    const lock = await shared.lock.catch(() => undefined);
    await lock?.release();
  }

  /** Refuses a write once the directory's lock was lost. */
  private checkLock(): void {
    if (this.sharedLock?.lost) throw this.sharedLock.lost;
  }

  /** Creates a directory and makes its entry durable: fsync the parent of every directory created. */
  private async makeDirectory(dir: string): Promise<void> {
    const created = await this.io.run({ op: 'mkdir', args: { path: dir } });
    if (this.fsync) {
      for (const d of created) await this.io.run({ op: 'fsyncDir', args: { path: path.dirname(d) } });
    }
  }

  private directoryOf(persistenceId: string): PersistenceIdDirectoryName & { path: string } {
    const name = persistenceIdDirectoryName(persistenceId);
    return { ...name, path: path.join(this.path, name.name) };
  }

  /** Creates a hashed id directory if missing, with its id file, or checks that it belongs to the id. */
  private async prepareHashedDirectory(persistenceId: string, dir: string): Promise<void> {
    await this.makeDirectory(dir);
    const idFile = path.join(dir, PERSISTENCE_ID_FILE);
    let stored: string | undefined;
    try {
      stored = Buffer.from(await this.io.run({ op: 'readFile', args: { path: idFile } })).toString('utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (stored === undefined) {
      await this.io.run({
        op: 'writeFileAtomic',
        args: {
          path: idFile,
          data: Buffer.from(persistenceId, 'utf8'),
          fsync: this.fsync,
          tempDir: this.tempDir,
        },
      });
    } else if (stored !== persistenceId) {
      throw new StorageError(
        `snapshot directory ${dir} belongs to another persistenceId (${JSON.stringify(stored.slice(0, 80))}...), ` +
          'a SHA-256 collision or a tampered directory; nothing was written',
      );
    }
  }

  /** The snapshot files of an id, by sequenceNr; stale duplicates of a sequenceNr are listed too. */
  private async files(persistenceId: string): Promise<{ dir: string; bySequenceNr: Map<number, string[]> }> {
    const dir = this.directoryOf(persistenceId).path;
    const names = await this.io.run({ op: 'readdir', args: { path: dir, missingOk: true } });
    return { dir, bySequenceNr: bySequenceNr(names) };
  }

  protected async _save(snapshot: StoredSnapshot): Promise<void> {
    this.checkLock();
    this.prefetched.delete(snapshot.persistenceId);
    const dir = this.directoryOf(snapshot.persistenceId);
    const firstSave = !this.readyDirectories.has(dir.path);
    // A hashed directory needs its id file before any snapshot; a plain one is created by the write.
    if (firstSave && dir.hashed) await this.prepareHashedDirectory(snapshot.persistenceId, dir.path);
    await this.io.run({
      op: 'writeFileAtomic',
      args: {
        path: path.join(dir.path, snapshotFileName(snapshot.sequenceNr, snapshot.timestamp)),
        data: encodeSnapshotEnvelope(snapshot),
        fsync: this.fsync,
        tempDir: this.tempDir,
        createDirectory: firstSave,
        // The directory's own entry in the root must be durable before the first save resolves, also
        // when the directory existed: an earlier process may have died between its mkdir and that fsync.
        syncDirectoryEntry: firstSave,
        // Saving again at a sequenceNr replaces: the file of another timestamp goes once this one is in.
        supersedes: `^${String(snapshot.sequenceNr).padStart(SEQUENCE_DIGITS, '0')}-\\d{16}\\.snapshot$`,
      },
      transfer: true, // the envelope is ours alone: hand it to the thread without a copy
    });
    if (firstSave) {
      // A cache, not a record: forgetting only costs a forgotten id's next save one cheap fsync.
      if (this.readyDirectories.size >= MAX_READY_DIRECTORIES) this.readyDirectories.clear();
      this.readyDirectories.add(dir.path);
    }
  }

  protected async _list(persistenceId: string): Promise<SnapshotMetadata[]> {
    // The listing also reads the newest file: loadLatest, the common caller, loads it next, and one
    // trip to an IO thread instead of two halves the cost of a recovery's snapshot load. The bytes are
    // kept only until the calls that follow in the same turn (loadLatest's first _load) have run. The
    // read is wasted when criteria exclude the newest snapshot and for prune/delete: one small read
    // beside the fsyncs those make, against a round trip saved on every recovery.
    const dir = this.directoryOf(persistenceId).path;
    const { names, last } = await this.io.run({
      op: 'readdirAndReadLast',
      args: { path: dir, pattern: SNAPSHOT_FILE.source, missingOk: true },
    });
    if (last) {
      const entry = { file: path.join(dir, last.name), data: last.data };
      this.prefetched.set(persistenceId, entry);
      setImmediate(() => {
        if (this.prefetched.get(persistenceId) === entry) this.prefetched.delete(persistenceId);
      });
    } else {
      this.prefetched.delete(persistenceId);
    }
    const metas: SnapshotMetadata[] = [];
    for (const same of bySequenceNr(names).values()) metas.push(newest(same));
    return metas;
  }

  /**
   * The ids of the directories that hold at least one snapshot file (an id whose snapshots were all
   * deleted keeps an empty directory, and is not listed). A plain directory name decodes to its id; a
   * hashed one names it in its id file, or, should that be missing, in its snapshots' envelopes. A
   * hashed directory that names no id it hashes to is reported (SnapshotCorruptedError naming the
   * directory) and left out; anything that is no id directory (the temp directory, the lock, the format
   * marker) is not an id.
   */
  protected override async *_persistenceIds(): AsyncGenerator<string> {
    const names = await this.io.run({ op: 'readdir', args: { path: this.path } });
    for (const name of names) {
      let persistenceId = persistenceIdFromDirectoryName(name);
      const hashed = persistenceId === undefined && isHashedDirectoryName(name);
      if (persistenceId === undefined && !hashed) continue;
      const dir = path.join(this.path, name);
      let files: string[];
      try {
        files = await this.io.run({ op: 'readdir', args: { path: dir, missingOk: true } });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOTDIR') continue; // a file of that name, no id
        throw e;
      }
      const snapshots = files.filter((f) => SNAPSHOT_FILE.test(f));
      if (snapshots.length === 0) continue;
      if (hashed) persistenceId = await this.idOfHashedDirectory(dir, name, snapshots);
      if (persistenceId !== undefined) yield persistenceId;
    }
  }

  /** The id a hashed directory belongs to: its id file's, or its newest readable snapshot's. */
  private async idOfHashedDirectory(
    dir: string,
    name: string,
    snapshots: readonly string[],
  ): Promise<string | undefined> {
    const belongs = (id: string) => persistenceIdDirectoryName(id).name === name;
    const idFile = path.join(dir, PERSISTENCE_ID_FILE);
    try {
      const bytes = await this.io.run({ op: 'readFile', args: { path: idFile } });
      const id = Buffer.from(bytes).toString('utf8');
      if (belongs(id)) return id;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    for (const file of [...snapshots].reverse()) {
      const where = path.join(dir, file);
      try {
        const stored = decodeSnapshotEnvelope(await this.io.run({ op: 'readFile', args: { path: where } }), {
          file: where,
        });
        if (belongs(stored.persistenceId)) return stored.persistenceId;
      } catch (e) {
        if (!isPersistenceError(e, 'ERR_SNAPSHOT_CORRUPTED')) throw e;
      }
    }
    const error = new SnapshotCorruptedError({
      file: idFile,
      offset: 0,
      reason:
        `the hashed snapshot directory ${name} names no persistenceId that hashes to it (its id file is ` +
        'missing or altered, and no snapshot in it names one); its snapshots cannot be listed',
    });
    this.reporter({
      kind: 'snapshot-skipped',
      error,
      message: `${error.message}; it is left out of persistenceIds`,
    });
    return undefined;
  }

  protected async _load(persistenceId: string, meta: SnapshotMetadata): Promise<StoredSnapshot> {
    const file = path.join(
      this.directoryOf(persistenceId).path,
      snapshotFileName(meta.sequenceNr, meta.timestamp),
    );
    const prefetched = this.prefetched.get(persistenceId);
    this.prefetched.delete(persistenceId);
    const bytes =
      prefetched?.file === file
        ? prefetched.data
        : await this.io.run({ op: 'readFile', args: { path: file } });
    let stored: StoredSnapshot;
    try {
      stored = decodeSnapshotEnvelope(bytes, { file });
    } catch (e) {
      // An unreadable header cannot name its snapshot, but the file's place does: the id's directory
      // and the sequenceNr in its name are what the reader was looking for.
      if (!(e instanceof SnapshotCorruptedError) || e.persistenceId !== undefined) throw e;
      throw new SnapshotCorruptedError(
        { persistenceId, sequenceNr: meta.sequenceNr, file, offset: e.offset, reason: e.reason },
        { cause: e.cause },
      );
    }
    if (stored.timestamp !== meta.timestamp) {
      // The core checks id and sequenceNr; the timestamp is in the name only for us.
      throw new SnapshotCorruptedError({
        persistenceId,
        sequenceNr: meta.sequenceNr,
        file,
        offset: 24, // the envelope's timestamp field
        reason: `the envelope's timestamp ${stored.timestamp} differs from the file name's ${meta.timestamp}`,
      });
    }
    return stored;
  }

  protected async _delete(persistenceId: string, snapshots: readonly SnapshotMetadata[]): Promise<void> {
    this.checkLock();
    this.prefetched.delete(persistenceId);
    const { dir, bySequenceNr } = await this.files(persistenceId);
    let removed = false;
    for (const { sequenceNr } of snapshots) {
      for (const name of bySequenceNr.get(sequenceNr) ?? []) {
        await this.unlinkIfPresent(path.join(dir, name));
        removed = true;
      }
    }
    // Durable deletion: without it a power loss could bring a deleted snapshot back.
    if (removed && this.fsync) await this.io.run({ op: 'fsyncDir', args: { path: dir } });
  }

  protected override _locate(
    persistenceId: string,
    meta: SnapshotMetadata,
  ): Pick<CorruptionLocation, 'file' | 'offset' | 'key'> {
    return {
      file: path.join(
        this.directoryOf(persistenceId).path,
        snapshotFileName(meta.sequenceNr, meta.timestamp),
      ),
      offset: 0,
    };
  }

  /** `lock`: the directory's lock held; failed once it was lost (saves are refused from then on). */
  protected override _healthChecks(): HealthCheck[] {
    if (this.readOnly) return [{ name: 'lock', status: 'ok', detail: 'read-only: no lock taken' }];
    const lost = this.sharedLock?.lost;
    if (lost) return [{ name: 'lock', status: 'failed', detail: lost.message }];
    return [{ name: 'lock', status: 'ok', detail: `${this.path} locked by this process` }];
  }

  protected async _close(): Promise<void> {
    this.prefetched.clear();
    this.unregister();
    try {
      await this.io.close();
    } finally {
      await this.releaseLock();
    }
  }

  private unregister(): void {
    if (!this.registered) return;
    this.registered = false;
    const count = (openRoots.get(this.path) ?? 1) - 1;
    if (count > 0) openRoots.set(this.path, count);
    else openRoots.delete(this.path);
  }

  private async unlinkIfPresent(file: string): Promise<void> {
    try {
      await this.io.run({ op: 'unlink', args: { path: file } });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
}

/** Snapshot file names grouped by sequenceNr (several when a crash interrupted a replacement). */
function bySequenceNr(names: readonly string[]): Map<number, string[]> {
  const groups = new Map<number, string[]>();
  for (const name of names) {
    const meta = parseSnapshotFileName(name);
    if (!meta) continue;
    const same = groups.get(meta.sequenceNr);
    if (same) same.push(name);
    else groups.set(meta.sequenceNr, [name]);
  }
  return groups;
}

/** Of several files of one sequenceNr (a crash interrupted a replacement), the one saved last. */
function newest(names: readonly string[]): SnapshotMetadata {
  let best: SnapshotMetadata | undefined;
  for (const name of names) {
    const meta = parseSnapshotFileName(name) as SnapshotMetadata;
    if (!best || meta.timestamp > best.timestamp) best = meta;
  }
  return best as SnapshotMetadata;
}
