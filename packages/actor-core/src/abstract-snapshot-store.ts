import {
  type CorruptionLocation,
  isPersistenceError,
  ReadOnlyError,
  SnapshotCorruptedError,
  SnapshotStoreClosedError,
  StorageError,
  WriteRejectedError,
} from './errors';
import { type HealthCheck, type HealthReport, healthReport, LastWrite } from './health';
import { KeyedQueue } from './keyed-queue';
import { LatencyRecorder, type SnapshotStoreMetrics } from './metrics';
import { defaultReporter, type Reporter } from './report';
import { resolveSerializer, type Serializer, type SerializerRegistry, serializersFor } from './serializer';
import type {
  ListableSnapshotStore,
  MeteredSnapshotStore,
  SnapshotCriteria,
  SnapshotEntry,
  SnapshotInfo,
  SnapshotStore,
  SnapshotStoreCapabilities,
} from './spi';
import { checkCount, checkOptionalObject, checkPersistenceId, checkSequenceNr } from './validation';

/** A snapshot as a backend stores it: the state already serialized. */
export interface StoredSnapshot {
  readonly persistenceId: string;
  readonly sequenceNr: number;
  readonly timestamp: number;
  readonly serializerId: number;
  readonly payload: Uint8Array;
}

/** What a backend can tell about a snapshot without loading it. */
export type SnapshotMetadata = SnapshotInfo;

export interface SnapshotStoreOptions {
  /** How states are encoded: a Serializer, or "msgpack" (default) or "json". */
  readonly serializer?: Serializer | string | number;
  /** Where skipped corrupt snapshots are reported. Default: process.emitWarning. */
  readonly reporter?: Reporter;
  /**
   * Default false. `true` opens the store for reading only: the backend opens its storage read-only and
   * the core refuses save, delete and prune with ReadOnlyError. Only for a backend that declares the
   * `readOnly` capability.
   */
  readonly readOnly?: boolean;
  /** Where the data lives (a directory, for the built-in backends); named in error messages. */
  readonly path?: string;
}

function matches(meta: SnapshotMetadata, criteria: SnapshotCriteria | undefined): boolean {
  if (criteria?.maxSequenceNr !== undefined && meta.sequenceNr > criteria.maxSequenceNr) return false;
  if (criteria?.maxTimestamp !== undefined && meta.timestamp > criteria.maxTimestamp) return false;
  if (criteria?.minSequenceNr !== undefined && meta.sequenceNr < criteria.minSequenceNr) return false;
  if (criteria?.minTimestamp !== undefined && meta.timestamp < criteria.minTimestamp) return false;
  return true;
}

function checkCriteria(criteria: SnapshotCriteria | undefined): void {
  checkOptionalObject(criteria, 'criteria');
  if (criteria?.maxSequenceNr !== undefined) checkCount(criteria.maxSequenceNr, 'criteria.maxSequenceNr');
  if (criteria?.maxTimestamp !== undefined) checkCount(criteria.maxTimestamp, 'criteria.maxTimestamp');
  if (criteria?.minSequenceNr !== undefined) checkCount(criteria.minSequenceNr, 'criteria.minSequenceNr');
  if (criteria?.minTimestamp !== undefined) checkCount(criteria.minTimestamp, 'criteria.minTimestamp');
}

/**
 * The rules every Cairn snapshot store follows, written once: validation, lifecycle, per-id ordering,
 * serialization, criteria, the fallback past corrupt snapshots, pruning. A backend implements the
 * `_`-prefixed raw calls.
 *
 * Backend obligations: `_save` is atomic and durable, and replaces a snapshot at the same sequenceNr;
 * `_load` verifies the checksum and throws SnapshotCorruptedError (with file/offset or key) when it fails;
 * `_list` never fails because one snapshot is corrupt (list what can be listed).
 */
export abstract class AbstractSnapshotStore<S = unknown>
  implements SnapshotStore<S>, MeteredSnapshotStore<S>, ListableSnapshotStore<S>
{
  abstract readonly capabilities: SnapshotStoreCapabilities;
  /** Opened with `readOnly: true`: save, delete and prune reject with ReadOnlyError. */
  readonly readOnly: boolean;
  protected readonly serializer: Serializer;
  /** This store's serializers for decoding (its own, then the built-ins): nothing process-wide. */
  private readonly serializers: SerializerRegistry;
  private readonly location: string;
  protected readonly reporter: Reporter;
  private closing: Promise<void> | undefined;
  private readonly queue = new KeyedQueue();
  private readonly counts = {
    saves: 0,
    saveFailures: 0,
    loads: 0,
    loadsEmpty: 0,
    corruptSkipped: 0,
    deleted: 0,
  };
  private readonly saveLatency = new LatencyRecorder();
  /** The last save's outcome, for health(). */
  private readonly lastSave = new LastWrite();
  private readonly loadLatency = new LatencyRecorder();
  /** Reads outside the per-id queue in progress (see `counted`), and who waits for them to end. */
  private activeReads = 0;
  private readsIdle: (() => void) | undefined;

  protected constructor(options: SnapshotStoreOptions = {}) {
    checkOptionalObject(options, 'options');
    this.serializer = resolveSerializer(options.serializer);
    this.serializers = serializersFor(this.serializer);
    this.reporter = options.reporter ?? defaultReporter;
    if (options.readOnly !== undefined && typeof options.readOnly !== 'boolean')
      throw new TypeError(`options.readOnly must be a boolean, got ${typeof options.readOnly}`);
    this.readOnly = options.readOnly ?? false;
    this.location = typeof options.path === 'string' ? options.path : 'snapshot store';
  }

  protected abstract _save(snapshot: StoredSnapshot): Promise<void>;
  /** Every snapshot of the id, in any order. */
  protected abstract _list(persistenceId: string): Promise<SnapshotMetadata[]>;
  protected abstract _load(persistenceId: string, meta: SnapshotMetadata): Promise<StoredSnapshot>;
  protected abstract _delete(persistenceId: string, snapshots: readonly SnapshotMetadata[]): Promise<void>;
  protected abstract _close(): Promise<void>;
  /**
   * Optional, for a backend that declares `listIds`: every persistenceId with at least one snapshot,
   * each once, read in pages (the core checks the store is open before each page and close() waits for
   * a page being read). A backend that implements it declares `listIds: true`.
   */
  protected _persistenceIds?(): AsyncIterable<string>;
  /** Where a snapshot lives, for corruption reports. Backends with files override this. */
  protected _locate(
    persistenceId: string,
    meta: SnapshotMetadata,
  ): Pick<CorruptionLocation, 'file' | 'offset' | 'key'> {
    return { key: `${persistenceId}#${meta.sequenceNr}` };
  }

  /**
   * Called for every save, delete and prune after its arguments were validated and after the core's own
   * read-only refusal: throw to refuse the write, before anything is queued. The default lets it through.
   */
  protected writeGate(_operation: string): void {}

  /** Refuses a write with ReadOnlyError when the store was opened read-only, then asks the backend's gate. */
  private gate(operation: string): void {
    if (this.readOnly) throw new ReadOnlyError(this.location, `${operation} refused, nothing written`);
    this.writeGate(operation);
  }

  async save(persistenceId: string, sequenceNr: number, state: S): Promise<void> {
    return this.storeSnapshot(persistenceId, sequenceNr, state, Date.now(), 'save');
  }

  /**
   * Saves a snapshot taken elsewhere with its original timestamp (a copy between stores, a restore from
   * a dump), otherwise exactly as `save`: checksummed, durable when it resolves.
   */
  async importSnapshot(entry: SnapshotEntry<S>): Promise<void> {
    if (typeof entry !== 'object' || entry === null) {
      throw new TypeError('importSnapshot needs an entry { persistenceId, sequenceNr, timestamp, state }');
    }
    const { timestamp } = entry;
    if (typeof timestamp !== 'number' || !Number.isSafeInteger(timestamp) || timestamp < 0) {
      throw new RangeError(
        `timestamp must be a whole number of ms since the epoch, got ${String(timestamp)}`,
      );
    }
    return this.storeSnapshot(
      entry.persistenceId,
      entry.sequenceNr,
      entry.state,
      timestamp,
      'importSnapshot',
    );
  }

  private async storeSnapshot(
    persistenceId: string,
    sequenceNr: number,
    state: S,
    timestamp: number,
    operation: 'save' | 'importSnapshot',
  ): Promise<void> {
    this.checkOpen();
    checkPersistenceId(persistenceId);
    checkSequenceNr(sequenceNr);
    this.gate(operation);
    let payload: Uint8Array;
    try {
      payload = this.serializer.encode(state);
    } catch (e) {
      // A rejection like the journal's: nothing stored, the store carries on.
      return Promise.reject(
        new WriteRejectedError(
          persistenceId,
          `the snapshot state cannot be serialized by "${this.serializer.name}": ${(e as Error)?.message ?? e}`,
          { cause: e },
        ),
      );
    }
    const snapshot: StoredSnapshot = {
      persistenceId,
      sequenceNr,
      timestamp,
      serializerId: this.serializer.id,
      payload,
    };
    const started = performance.now();
    return this.run(persistenceId, 'save', () => this._save(snapshot)).then(
      () => {
        this.saveLatency.since(started);
        this.counts.saves++;
        this.lastSave.succeeded();
      },
      (e: unknown) => {
        this.saveLatency.since(started);
        this.counts.saveFailures++;
        this.lastSave.failed(e);
        throw e;
      },
    );
  }

  /** What this store has done since it was opened (see SnapshotStoreMetrics); a snapshot, cheap to take. */
  metrics(): SnapshotStoreMetrics {
    return {
      ...this.counts,
      saveSeconds: this.saveLatency.snapshot(),
      loadSeconds: this.loadLatency.snapshot(),
    };
  }

  async loadLatest(
    persistenceId: string,
    criteria?: SnapshotCriteria,
  ): Promise<SnapshotEntry<S> | undefined> {
    this.checkOpen();
    checkPersistenceId(persistenceId);
    checkCriteria(criteria);
    const started = performance.now();
    const found = await this.run(persistenceId, 'load', async () => {
      const candidates = (await this._list(persistenceId))
        .filter((m) => matches(m, criteria))
        .sort((a, b) => b.sequenceNr - a.sequenceNr);
      for (const meta of candidates) {
        try {
          return this.decode(persistenceId, meta, await this._load(persistenceId, meta));
        } catch (e) {
          if (!isPersistenceError(e, 'ERR_SNAPSHOT_CORRUPTED')) throw e;
          this.counts.corruptSkipped++;
          this.reporter({
            kind: 'snapshot-skipped',
            persistenceId,
            error: e,
            message: `${e.message}; falling back to an older snapshot`,
          });
        }
      }
      return undefined;
    });
    this.loadLatency.since(started);
    if (found) this.counts.loads++;
    else this.counts.loadsEmpty++;
    return found;
  }

  async delete(persistenceId: string, criteria?: SnapshotCriteria): Promise<void> {
    this.checkOpen();
    checkPersistenceId(persistenceId);
    checkCriteria(criteria);
    this.gate('delete');
    return this.run(persistenceId, 'delete', async () => {
      const doomed = (await this._list(persistenceId)).filter((m) => matches(m, criteria));
      if (doomed.length > 0) await this._delete(persistenceId, doomed);
      this.counts.deleted += doomed.length;
    });
  }

  async prune(persistenceId: string, keep: number): Promise<number> {
    this.checkOpen();
    checkPersistenceId(persistenceId);
    checkCount(keep, 'keep');
    this.gate('prune');
    return this.run(persistenceId, 'prune', async () => {
      const all = (await this._list(persistenceId)).sort((a, b) => b.sequenceNr - a.sequenceNr);
      const doomed = all.slice(keep);
      if (doomed.length > 0) await this._delete(persistenceId, doomed);
      this.counts.deleted += doomed.length;
      return doomed.length;
    });
  }

  /**
   * ListableSnapshotStore (capability `listIds`): every persistenceId with at least one snapshot, each
   * once, in no set order. Rejects with TypeError on a store that does not declare `listIds` (ask
   * `canListSnapshotIds(store)` first), with SnapshotStoreClosedError once closed (also between pages).
   */
  async *persistenceIds(): AsyncGenerator<string, void, undefined> {
    this.checkOpen();
    const listing = this._persistenceIds;
    if (this.capabilities.listIds !== true || listing === undefined) {
      throw new TypeError(
        'this snapshot store cannot list its persistenceIds (it does not declare the listIds capability; ' +
          'ask canListSnapshotIds(store) first)',
      );
    }
    const ids = listing.call(this)[Symbol.asyncIterator]();
    try {
      while (true) {
        const next = await this.counted(() => ids.next(), 'persistenceIds');
        if (next.done) return;
        yield next.value;
      }
    } finally {
      await ids.return?.();
    }
  }

  /**
   * ListableSnapshotStore (capability `listIds`): the snapshots of `persistenceId` by ascending
   * sequenceNr, without loading or checking any (corrupt ones are listed too). TypeError on a store that
   * does not declare `listIds`.
   */
  async listSnapshots(persistenceId: string): Promise<SnapshotInfo[]> {
    this.checkOpen();
    checkPersistenceId(persistenceId);
    if (this.capabilities.listIds !== true) {
      throw new TypeError(
        'this snapshot store cannot list snapshots (it does not declare the listIds capability)',
      );
    }
    const listed = await this.run(persistenceId, 'list', () => this._list(persistenceId));
    return listed
      .map(({ sequenceNr, timestamp }) => ({ sequenceNr, timestamp }))
      .sort((a, b) => a.sequenceNr - b.sequenceNr);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        await this.queue.idle();
        await this.readsSettled();
      } finally {
        await this._close();
      }
    })();
    return this.closing;
  }

  get closed(): boolean {
    return this.closing !== undefined;
  }

  /**
   * What an operator pages on, now (the status is the worst check's): `open` (failed once closed),
   * `last-save` (failed while the last save failed, with its age in seconds), `corruption` (degraded once
   * a corrupt snapshot was skipped since open), and the backend's own (the file store's `lock`).
   */
  health(): HealthReport {
    const skipped = this.counts.corruptSkipped;
    const checks: HealthCheck[] = [
      this.closing
        ? { name: 'open', status: 'failed', detail: 'closed' }
        : { name: 'open', status: 'ok', detail: this.readOnly ? 'open, read-only' : 'open' },
      this.lastSave.check('last-save', 'save'),
      {
        name: 'corruption',
        status: skipped > 0 ? 'degraded' : 'ok',
        detail:
          skipped > 0
            ? `${skipped} corrupt snapshots skipped since open; run \`cairn verify\``
            : 'no corrupt snapshot seen since open',
        value: skipped,
      },
    ];
    if (this._healthChecks && !this.closing) checks.push(...this._healthChecks());
    return healthReport(checks);
  }

  /** Optional: the backend's own health checks (synchronous and cheap), added to the core's in health(). */
  protected _healthChecks?(): HealthCheck[];

  protected checkOpen(): void {
    if (this.closing) throw new SnapshotStoreClosedError();
  }

  /** A read outside the per-id queue (a page of persistenceIds), counted so close() waits for it. */
  private async counted<T>(call: () => Promise<T>, operation: string): Promise<T> {
    this.checkOpen();
    this.activeReads++;
    try {
      return await call();
    } catch (e) {
      if (isPersistenceError(e)) throw e;
      throw new StorageError(`snapshot ${operation} failed: ${(e as Error)?.message ?? e}`, { cause: e });
    } finally {
      if (--this.activeReads === 0) this.readsIdle?.();
    }
  }

  private readsSettled(): Promise<void> {
    if (this.activeReads === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.readsIdle = () => {
        this.readsIdle = undefined;
        resolve();
      };
    });
  }

  private decode(persistenceId: string, meta: SnapshotMetadata, stored: StoredSnapshot): SnapshotEntry<S> {
    const corrupt = (reason: string, cause?: unknown) =>
      new SnapshotCorruptedError(
        { persistenceId, sequenceNr: meta.sequenceNr, ...this._locate(persistenceId, meta), reason },
        { cause },
      );
    if (stored.persistenceId !== persistenceId || stored.sequenceNr !== meta.sequenceNr) {
      throw corrupt(`envelope names "${stored.persistenceId}" sequenceNr ${stored.sequenceNr}`);
    }
    const serializer = this.serializers.get(stored.serializerId);
    if (!serializer) throw corrupt(`unknown serializer id ${stored.serializerId}`);
    let state: S;
    try {
      state = serializer.decode(stored.payload) as S;
    } catch (e) {
      throw corrupt(`state cannot be decoded by "${serializer.name}"`, e);
    }
    return { persistenceId, sequenceNr: stored.sequenceNr, timestamp: stored.timestamp, state };
  }

  private async run<T>(persistenceId: string, operation: string, call: () => Promise<T>): Promise<T> {
    return this.queue.run(persistenceId, async () => {
      try {
        return await call();
      } catch (e) {
        if (isPersistenceError(e)) throw e;
        throw new StorageError(
          `snapshot ${operation} for "${persistenceId}" failed: ${(e as Error)?.message ?? e}`,
          {
            cause: e,
          },
        );
      }
    });
  }
}
