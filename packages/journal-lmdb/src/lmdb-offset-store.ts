import { randomBytes } from 'node:crypto';
import {
  checkOffsetToSave,
  checkProjectionName,
  JournalClosedError,
  JournalCorruptedError,
  JournalLockedError,
  type OffsetStore,
  ReadOnlyError,
} from '@cairn/actor-core';
import type { Database, Key } from 'lmdb';
import type { LmdbEnvironment } from './environment';
import { ownProcessMark, type ProcessMark, stillRuns } from './process-liveness';
import {
  decodeOffset,
  encodeOffset,
  offsetKey,
  PROJECTION_LOCK,
  PROJECTION_OFFSET,
  PROJECTION_STATUS,
  projectionKey,
} from './record-codec';

/** A projection's lock record: who holds it, and a token only the holder knows. */
interface LockRecord extends ProcessMark {
  readonly since: string;
  readonly token: string;
}

/** The exclusive right to run one projection name (see lockProjection). */
export interface LmdbProjectionLock {
  /** Gives the name up; idempotent. */
  release(): Promise<void>;
}

/** Longest read-model name, in UTF-8 bytes. */
const MAX_NAME_BYTES = 200;

/** How a read-model database stores its keys and values (lmdb-js's encodings). */
export interface ReadModelOptions {
  /** Default 'msgpack' (lmdb-js's default: structured values). */
  readonly encoding?: 'msgpack' | 'json' | 'string' | 'binary' | 'ordered-binary';
  /** Default 'ordered-binary' (lmdb-js's default: strings, numbers and arrays of them sort naturally). */
  readonly keyEncoding?: 'ordered-binary' | 'uint32' | 'binary';
}

/** What the offset store needs of the journal it belongs to. */
interface OwningJournal {
  readonly closed: boolean;
  readonly readOnly: boolean;
  readonly path: string;
}

/**
 * The LMDB journal's OffsetStore: projection offsets in the `offsets` database of the journal's own
 * environment, each record checksummed. `save` commits in one write transaction that is synced before it
 * resolves (unless the journal was opened with `noSync`), so a saved offset survives a crash.
 *
 * Exactly-once projections: `transactSync(name, offset, body)` runs a synchronous `body` that writes the
 * read model into this same environment (through `readModel(name)` databases) and saves the offset in the
 * same LMDB write transaction, so after a crash either both are there or neither is.
 *
 * Get one with `journal.offsetStore()` or `createPersistence({ journal: { provider: 'lmdb', ... } }).offsets`.
 * It lives as long as its journal: afterwards every call rejects with JournalClosedError.
 */
export class LmdbOffsetStore implements OffsetStore {
  /**
   * Keeps projection statuses and a cross-process lock per projection name besides the offsets, and
   * saves an offset in the read model's own transaction (`transactSync`: exactly-once projections).
   */
  readonly capabilities = { projectionRecords: true, exactlyOnce: true } as const;
  /** Locks taken through this store and not yet released: released when the journal closes. */
  private readonly held = new Set<LmdbProjectionLock>();
  private environmentReleased = false;

  /** @internal Made by LmdbMessageJournal.offsetStore(). */
  constructor(
    private readonly journal: OwningJournal,
    private readonly env: LmdbEnvironment,
  ) {}

  /** The offset saved last under `projectionName`, or undefined when none was saved. */
  async load(projectionName: string): Promise<string | undefined> {
    const key = checkName(projectionName);
    this.checkOpen();
    return this.read(projectionName, key);
  }

  /**
   * Saves `offset` under `projectionName`, replacing the previous one: one LMDB write transaction, synced
   * before it resolves unless the journal was opened with `noSync`. A bad name or offset is a TypeError or
   * RangeError and saves nothing.
   */
  async save(projectionName: string, offset: string): Promise<void> {
    const key = checkName(projectionName);
    checkOffset(offset);
    this.checkWritable('save');
    const record = encodeOffset(key, offset);
    await this.env.write(() => {
      this.env.offsets.putSync(key, record);
    });
  }

  /** Every projection name with a saved offset or status, sorted. */
  async names(): Promise<string[]> {
    this.checkOpen();
    const names = new Set<string>();
    for (const kind of [PROJECTION_OFFSET, PROJECTION_STATUS]) {
      for (const key of this.env.offsets.getKeys({
        start: Buffer.from([kind]),
        end: Buffer.from([kind + 1]),
      })) {
        names.add((key as Buffer).toString('utf8', 1));
      }
    }
    return [...names].sort();
  }

  /** Removes the saved offset (the projection then starts from the first event); the status stays. */
  async deleteOffset(projectionName: string): Promise<void> {
    const key = checkName(projectionName);
    this.checkWritable('deleteOffset');
    await this.env.write(() => {
      this.env.offsets.removeSync(key);
    });
  }

  /** Replaces the projection's status record (opaque to the store); atomic and durable like `save`. */
  async saveStatus(projectionName: string, status: string): Promise<void> {
    checkProjectionName(projectionName);
    if (typeof status !== 'string') throw new TypeError(`status must be a string, got ${typeof status}`);
    this.checkWritable('saveStatus');
    const key = projectionKey(PROJECTION_STATUS, projectionName);
    const record = encodeOffset(key, status);
    await this.env.write(() => {
      this.env.offsets.putSync(key, record);
    });
  }

  /** The status record saved last, or undefined. */
  async loadStatus(projectionName: string): Promise<string | undefined> {
    checkProjectionName(projectionName);
    this.checkOpen();
    return this.read(projectionName, projectionKey(PROJECTION_STATUS, projectionName), 'status');
  }

  /** True while a running process (this one included) holds the projection's lock. */
  async projectionLocked(projectionName: string): Promise<boolean> {
    checkProjectionName(projectionName);
    this.checkOpen();
    const holder = this.readLock(projectionName);
    return holder !== undefined && (await stillRuns(holder));
  }

  /**
   * Takes the projection's lock: a lock record in this environment naming this process, which every
   * process opening the environment respects. Rejects with JournalLockedError naming the holder while a
   * running process (this one included) holds it. A holder that died without releasing it (SIGKILL,
   * power loss) is recognised as gone at once (an LMDB environment is shared only within one machine, so
   * the holder's pid, and on Linux its start time and the boot id, can be checked) and its lock taken
   * over. Released by `release()` or when the journal closes; no timer keeps it.
   */
  async lockProjection(projectionName: string): Promise<LmdbProjectionLock> {
    checkProjectionName(projectionName);
    this.checkWritable('lockProjection');
    const key = projectionKey(PROJECTION_LOCK, projectionName);
    const me = await ownProcessMark();
    const mine: LockRecord = {
      ...me,
      since: new Date().toISOString(),
      token: randomBytes(8).toString('hex'),
    };
    for (;;) {
      const found = this.readLock(projectionName);
      if (found && (await stillRuns(found))) {
        throw new JournalLockedError(`${this.env.directory} projection "${projectionName}"`, {
          pid: found.pid,
          since: new Date(found.since),
        });
      }
      this.checkWritable('lockProjection');
      // Taken only if the record is still the one judged above (absent, or a dead holder's).
      const taken = await this.env.write(() => {
        const now = this.readLock(projectionName);
        if (now?.token !== found?.token) return false;
        this.env.offsets.putSync(key, encodeOffset(key, JSON.stringify(mine)));
        return true;
      });
      if (taken) break;
    }
    let released = false;
    const lock: LmdbProjectionLock = {
      release: async () => {
        if (released) return;
        released = true;
        this.held.delete(lock);
        // After the journal closed, releaseAll already removed it.
        if (this.environmentReleased) return;
        await this.env.write(() => {
          if (this.readLock(projectionName)?.token === mine.token) this.env.offsets.removeSync(key);
        });
      },
    };
    this.held.add(lock);
    return lock;
  }

  /** @internal Called by the journal before it releases the environment: gives up the locks still held. */
  async releaseAll(): Promise<void> {
    await Promise.allSettled([...this.held].map((lock) => lock.release()));
    this.environmentReleased = true;
  }

  /**
   * Exactly-once: runs `body` and saves `offset` under `projectionName` in ONE LMDB write transaction, and
   * returns what `body` returned. Whatever `body` writes through this environment's databases (the
   * `readModel(...)` ones) commits together with the offset, or, if `body` throws, none of it does (the
   * error is rethrown and the saved offset stays the previous one).
   *
   * Synchronous by design: lmdb-js's `transactionSync` takes LMDB's writer lock (shared by every process
   * that has the environment open) on the calling thread, runs `body` while holding it, then commits and
   * (unless `noSync`) syncs to disk before returning. The event loop is blocked meanwhile (the lock wait
   * and the sync included), and other writers, in this process and others, wait for it: keep `body` short
   * and do no I/O in it. `body` must not return a promise (a TypeError, nothing written): anything
   * awaited would run after the commit, outside the transaction. Inside `body` use the databases'
   * synchronous calls (`putSync`, `removeSync`, `get`); reads see the transaction's own writes.
   *
   * A projection runner calls it once per event (or per batch of events it hands to a synchronous
   * handler), with the offset of the last event the body applied.
   */
  transactSync<T>(projectionName: string, offset: string, body: () => T): T {
    const key = checkName(projectionName);
    checkOffset(offset);
    if (typeof body !== 'function') throw new TypeError('body must be a function');
    this.checkWritable('transactSync');
    const record = encodeOffset(key, offset);
    return this.env.writeSync(() => {
      const result = body();
      if (isThenable(result)) {
        throw new TypeError(
          'transactSync: body returned a promise; it must be synchronous (its awaited part would run outside the transaction); nothing was written',
        );
      }
      this.env.offsets.putSync(key, record);
      return result;
    });
  }

  /**
   * The application's database `name` in the journal's environment, for read models written inside
   * `transactSync` (and read anywhere). lmdb-js's Database API: `get`, `getRange`, and inside
   * transactSync `putSync` / `removeSync`. Opened once per name; at most 48 per environment. Its name
   * lives in its own namespace, so it cannot collide with Cairn's databases.
   */
  readModel<K extends Key = Key, V = unknown>(name: string, options: ReadModelOptions = {}): Database<V, K> {
    if (typeof name !== 'string' || name.length === 0) {
      throw new TypeError('read-model name must be a non-empty string');
    }
    if (Buffer.byteLength(name, 'utf8') > MAX_NAME_BYTES) {
      throw new RangeError(`read-model name must be at most ${MAX_NAME_BYTES} bytes of UTF-8`);
    }
    this.checkOpen();
    return this.env.readModel<K, V>(name, options);
  }

  private read(projectionName: string, key: Buffer, what = 'offset'): string | undefined {
    const raw = this.env.offsets.get(key);
    if (raw === undefined) return undefined;
    const text = decodeOffset(key, raw);
    if (typeof text !== 'string') {
      const name = what === 'offset' ? `offsets:${projectionName}` : `offsets:${projectionName}#${what}`;
      throw new JournalCorruptedError({ key: name, reason: text.reason });
    }
    return text;
  }

  private readLock(projectionName: string): LockRecord | undefined {
    const text = this.read(projectionName, projectionKey(PROJECTION_LOCK, projectionName), 'lock');
    if (text === undefined) return undefined;
    try {
      const record = JSON.parse(text) as LockRecord;
      if (typeof record.pid === 'number' && typeof record.token === 'string') return record;
    } catch {
      // named below
    }
    throw new JournalCorruptedError({
      key: `offsets:${projectionName}#lock`,
      reason: 'lock record is not a holder description',
    });
  }

  private checkOpen(): void {
    if (this.journal.closed) throw new JournalClosedError('journal');
  }

  private checkWritable(operation: string): void {
    this.checkOpen();
    if (this.journal.readOnly)
      throw new ReadOnlyError(this.journal.path, `${operation} refused, nothing written`);
  }
}

/** The offsets-database key of a valid projection name (TypeError/RangeError otherwise). */
function checkName(name: unknown): Buffer {
  checkProjectionName(name);
  return offsetKey(name);
}

function checkOffset(offset: unknown): asserts offset is string {
  checkOffsetToSave(offset);
}

function isThenable(value: unknown): boolean {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}
