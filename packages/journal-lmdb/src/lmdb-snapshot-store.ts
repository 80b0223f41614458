import {
  AbstractSnapshotStore,
  type CorruptionLocation,
  SnapshotCorruptedError,
  type SnapshotMetadata,
  type SnapshotStoreCapabilities,
  type SnapshotStoreOptions,
  StorageError,
  type StoredSnapshot,
} from '@cairn/actor-core';
import { decodeSnapshotEnvelope, encodeSnapshotEnvelope } from '@cairn/snapshot';
import { firstOf, LmdbEnvironment } from './environment';
import { checkLmdbOptions } from './lmdb-options';
import {
  decodeEntryKey,
  encodeSnapshotValue,
  entryKey,
  entryKeyEnd,
  idPrefix,
  SNAPSHOT_PREFIX_BYTES,
  sequenceNrOf,
  snapshotTimestamp,
} from './record-codec';
import { asSnapshotDamage, type DamageSite, unreadableSnapshot } from './structure-damage';

/** Options of `LmdbSnapshotStore.open`. */
export interface LmdbSnapshotStoreOptions extends SnapshotStoreOptions {
  /**
   * The environment's directory (created when missing); shared with an LmdbMessageJournal opened on the
   * same path in this process, in which case `noSync` and `mapSize` must match the journal's.
   */
  readonly path: string;
  /**
   * Default false: a save resolves once it is synced to disk. `true` skips the sync: faster, but a power
   * loss can lose acknowledged snapshots or corrupt the environment (see LmdbMessageJournalOptions.noSync).
   */
  readonly noSync?: boolean;
  /** Initial map size in bytes. Default: lmdb-js's, which grows automatically. */
  readonly mapSize?: number;
  /**
   * Default false. `true` opens an existing environment read-only (see LmdbMessageJournalOptions.readOnly):
   * nothing is created or written, and save, delete and prune reject with ReadOnlyError.
   */
  readonly readOnly?: boolean;
}

/** Ids per page of persistenceIds(). */
const IDS_PAGE = 1000;

/**
 * Snapshots in the `snapshots` database of an LMDB environment, keyed [persistenceId, sequenceNr]. Each
 * value is the checksummed envelope of @cairn/snapshot behind a small prefix holding the timestamp (with
 * its own CRC), so listing never decodes a state. A save is one synced write transaction (atomic, durable,
 * replacing a snapshot at the same sequenceNr). A snapshot failing any check is reported by loadLatest and
 * skipped in favour of an older one, never deleted automatically.
 */
export class LmdbSnapshotStore<S = unknown> extends AbstractSnapshotStore<S> {
  /** Snapshots survive close() and a reopen of the same path. */
  readonly capabilities: SnapshotStoreCapabilities = {
    persistent: true,
    health: true,
    readOnly: true,
    import: true,
    metrics: true,
    listIds: true,
  };
  /** The directory given to open(). */
  readonly path: string;
  private env!: LmdbEnvironment;

  private constructor(options: LmdbSnapshotStoreOptions) {
    super(options);
    this.path = options.path;
  }

  /**
   * Opens (creating when missing, unless readOnly) the store in directory `options.path`.
   * Defaults: serializer "msgpack", noSync false (durable), mapSize lmdb-js's, readOnly false.
   * @throws TypeError or RangeError for bad options, or when the path is open in this process with other
   *   noSync/mapSize settings; with readOnly, StorageError when no environment exists at the path and
   *   ReadOnlyError when it would need migrating.
   */
  static async open<S = unknown>(options: LmdbSnapshotStoreOptions): Promise<LmdbSnapshotStore<S>> {
    const settings = checkLmdbOptions('LmdbSnapshotStore', options);
    const store = new LmdbSnapshotStore<S>(options);
    store.env = await LmdbEnvironment.acquire(options.path, settings, store.reporter);
    return store;
  }

  protected async _save(snapshot: StoredSnapshot): Promise<void> {
    const key = entryKey(idPrefix(snapshot.persistenceId), snapshot.sequenceNr);
    const value = encodeSnapshotValue(key, snapshot.timestamp, encodeSnapshotEnvelope(snapshot));
    // One put is one atomic operation: no transaction callback (whose round trip through the main
    // thread would add latency to every save); the promise resolves once the commit is synced.
    const site = this.site(snapshot.persistenceId, snapshot.sequenceNr);
    await this.guardAsync(site, () => this.env.put(this.env.snapshots, key, value));
  }

  protected async _list(persistenceId: string): Promise<SnapshotMetadata[]> {
    return this.guard({ key: `snapshots:${persistenceId}#*`, persistenceId }, () =>
      this.listStored(persistenceId),
    );
  }

  protected async _load(persistenceId: string, meta: SnapshotMetadata): Promise<StoredSnapshot> {
    return this.guard(this.site(persistenceId, meta.sequenceNr), () => this.loadStored(persistenceId, meta));
  }

  /**
   * The distinct ids of the snapshot keys, found by seeking: the first key at or after the last id's
   * range end names the next id, so each id costs one B-tree seek however many snapshots it has, and no
   * value is read. Read in pages of IDS_PAGE ids.
   */
  protected override async *_persistenceIds(): AsyncGenerator<string> {
    let start: Buffer | undefined;
    for (;;) {
      const from = start;
      const page = this.guard({ key: 'snapshots:<persistence ids>' }, () => this.idsFrom(from));
      for (const id of page.ids) yield id;
      if (page.next === undefined) return;
      start = page.next;
    }
  }

  /** Up to IDS_PAGE ids from key `start` on, and where the next page starts (undefined: no more). */
  private idsFrom(start: Buffer | undefined): { ids: string[]; next: Buffer | undefined } {
    const ids: string[] = [];
    let at = start;
    while (ids.length < IDS_PAGE) {
      const key = firstOf(this.env.snapshots.getKeys({ ...(at ? { start: at } : {}), limit: 1 }));
      if (key === undefined) return { ids, next: undefined };
      const decoded = decodeEntryKey(key);
      if (!decoded) {
        throw new SnapshotCorruptedError({
          key: `snapshots:0x${Buffer.from(key).toString('hex')}`,
          reason: 'the key is not [persistenceId, sequenceNr]; the ids after it cannot be listed',
        });
      }
      ids.push(decoded.persistenceId);
      at = entryKeyEnd(idPrefix(decoded.persistenceId));
    }
    return { ids, next: at };
  }

  private listStored(persistenceId: string): SnapshotMetadata[] {
    const prefix = idPrefix(persistenceId);
    const listed: SnapshotMetadata[] = [];
    // One cursor over the id's keys and values, as views (see journalViews in environment.ts): only the
    // 12-byte prefix of each value is read, before the loop steps on.
    for (const { key, value } of this.env.snapshotViews.getRange({
      start: prefix,
      end: entryKeyEnd(prefix),
    })) {
      const timestamp = snapshotTimestamp(key, value);
      // A damaged prefix still lists the snapshot (as the oldest possible), so loadLatest tries it,
      // reports it and falls back, instead of it silently vanishing from every query.
      listed.push({
        sequenceNr: sequenceNrOf(key, prefix.length),
        timestamp: typeof timestamp === 'number' ? timestamp : 0,
      });
    }
    return listed;
  }

  private loadStored(persistenceId: string, meta: SnapshotMetadata): StoredSnapshot {
    const key = entryKey(idPrefix(persistenceId), meta.sequenceNr);
    // getBinaryFast: the value in lmdb-js's reused buffer, not a copy. It is verified there and only the
    // payload is copied out (below), before anything else can read from this environment.
    const value = this.env.snapshots.getBinaryFast(key);
    const where = this._locate(persistenceId, meta).key!;
    if (value === undefined) {
      // Listed a moment ago, not found now. Still listed: the B-tree lists a key it cannot look up, which
      // only damaged pages do. Gone from the listing too: another process deleted it meanwhile.
      if (this.listStored(persistenceId).some((m) => m.sequenceNr === meta.sequenceNr)) {
        throw unreadableSnapshot(this.path, this.site(persistenceId, meta.sequenceNr));
      }
      throw new StorageError(
        `snapshot ${where} was deleted (by another process) between listing and loading it; load again`,
      );
    }
    const timestamp = snapshotTimestamp(key, value);
    if (typeof timestamp === 'string') {
      throw new SnapshotCorruptedError({
        persistenceId,
        sequenceNr: meta.sequenceNr,
        key: where,
        reason: timestamp,
      });
    }
    const snapshot = decodeSnapshotEnvelope(value.subarray(SNAPSHOT_PREFIX_BYTES), { key: where });
    if (snapshot.timestamp !== timestamp) {
      throw new SnapshotCorruptedError({
        persistenceId,
        sequenceNr: meta.sequenceNr,
        key: where,
        reason: `envelope timestamp ${snapshot.timestamp} differs from the record's ${timestamp}`,
      });
    }
    return { ...snapshot, payload: Buffer.from(snapshot.payload) };
  }

  protected async _delete(persistenceId: string, snapshots: readonly SnapshotMetadata[]): Promise<void> {
    const prefix = idPrefix(persistenceId);
    const db = this.env.snapshots;
    // One batch: all the removes in one transaction, executed by lmdb-js's write thread.
    await this.guardAsync({ key: `snapshots:${persistenceId}#*`, persistenceId }, () =>
      this.env.batch(() => {
        for (const { sequenceNr } of snapshots) db.remove(entryKey(prefix, sequenceNr));
      }),
    );
  }

  private site(persistenceId: string, sequenceNr: number): DamageSite {
    return { key: `snapshots:${persistenceId}#${sequenceNr}`, persistenceId, sequenceNr };
  }

  /** Runs a synchronous LMDB call; damaged pages become SnapshotCorruptedError naming `site`. */
  private guard<T>(site: DamageSite, call: () => T): T {
    try {
      return call();
    } catch (e) {
      throw asSnapshotDamage(e, this.path, site);
    }
  }

  /** As guard, for a call that returns a promise (a write). */
  private async guardAsync<T>(site: DamageSite, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (e) {
      throw asSnapshotDamage(e, this.path, site);
    }
  }

  protected async _close(): Promise<void> {
    await this.env?.release();
  }

  protected override _locate(
    persistenceId: string,
    meta: SnapshotMetadata,
  ): Pick<CorruptionLocation, 'file' | 'offset' | 'key'> {
    return { key: `snapshots:${persistenceId}#${meta.sequenceNr}` };
  }
}
