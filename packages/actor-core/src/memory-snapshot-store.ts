import {
  AbstractSnapshotStore,
  type SnapshotMetadata,
  type SnapshotStoreOptions,
  type StoredSnapshot,
} from './abstract-snapshot-store';
import { MemoryFaults } from './memory-faults';
import { checkOpenOptions, type OptionSchema, SNAPSHOT_OPTION_TYPES } from './provider-options';
import type { SnapshotStoreCapabilities } from './spi';

/** The data of in-memory snapshot stores; open a new store on it to "reopen" within one process. */
export class MemorySnapshotData {
  /** @internal */
  readonly snapshots = new Map<string, Map<number, StoredSnapshot>>();
}

export interface MemorySnapshotStoreOptions extends SnapshotStoreOptions {
  readonly store?: MemorySnapshotData;
  readonly faults?: MemoryFaults;
}

/** Every option MemorySnapshotStore.open takes: checked by open() and by the memory provider. */
export const MEMORY_SNAPSHOT_OPTION_TYPES: OptionSchema = {
  ...SNAPSHOT_OPTION_TYPES,
  store: 'object',
  faults: 'object',
  readOnly: 'boolean',
};

/** Snapshots held in memory. For tests and development. */
export class MemorySnapshotStore<S = unknown> extends AbstractSnapshotStore<S> {
  readonly capabilities: SnapshotStoreCapabilities = {
    persistent: false,
    health: true,
    readOnly: true,
    import: true,
    metrics: true,
    listIds: true,
  };
  readonly store: MemorySnapshotData;
  readonly faults: MemoryFaults;

  private constructor(options: MemorySnapshotStoreOptions) {
    super(options);
    this.store = options.store ?? new MemorySnapshotData();
    this.faults = options.faults ?? new MemoryFaults();
  }

  static async open<S = unknown>(options: MemorySnapshotStoreOptions = {}): Promise<MemorySnapshotStore<S>> {
    checkOpenOptions('MemorySnapshotStore', options, MEMORY_SNAPSHOT_OPTION_TYPES);
    return new MemorySnapshotStore<S>(options);
  }

  protected async _save(snapshot: StoredSnapshot): Promise<void> {
    await this.faults.beforeSnapshotSave();
    let byId = this.store.snapshots.get(snapshot.persistenceId);
    if (!byId) {
      byId = new Map();
      this.store.snapshots.set(snapshot.persistenceId, byId);
    }
    byId.set(snapshot.sequenceNr, snapshot);
  }

  protected async _list(persistenceId: string): Promise<SnapshotMetadata[]> {
    const byId = this.store.snapshots.get(persistenceId);
    return byId ? [...byId.values()].map(({ sequenceNr, timestamp }) => ({ sequenceNr, timestamp })) : [];
  }

  protected async _load(persistenceId: string, meta: SnapshotMetadata): Promise<StoredSnapshot> {
    await this.faults.beforeSnapshotLoad();
    const found = this.store.snapshots.get(persistenceId)?.get(meta.sequenceNr);
    if (!found) throw new Error(`snapshot ${persistenceId}#${meta.sequenceNr} vanished`);
    return found;
  }

  protected async _delete(persistenceId: string, snapshots: readonly SnapshotMetadata[]): Promise<void> {
    const byId = this.store.snapshots.get(persistenceId);
    for (const s of snapshots) byId?.delete(s.sequenceNr);
    if (byId?.size === 0) this.store.snapshots.delete(persistenceId);
  }

  protected override async *_persistenceIds(): AsyncGenerator<string> {
    // A copy: saves and deletes while the caller iterates must not disturb the iteration.
    yield* [...this.store.snapshots.keys()];
  }

  protected async _close(): Promise<void> {}
}
