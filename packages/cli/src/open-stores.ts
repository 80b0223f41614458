import {
  createPersistence,
  type MessageJournal,
  type OffsetStore,
  type PersistenceReport,
  type SnapshotStore,
  type StoreConfig,
} from '@cairn/actor-core';
import type { ResolvedStores } from './store-location';

/** A journal and/or snapshot store opened for one command, with what their backends reported. */
export interface OpenedStores {
  readonly journal: MessageJournal | undefined;
  readonly snapshots: SnapshotStore | undefined;
  /** The journal provider's offset store (projections' offsets), when it keeps one. */
  readonly offsets: OffsetStore | undefined;
  readonly journalConfig: StoreConfig | undefined;
  readonly snapshotsConfig: StoreConfig | undefined;
  /**
   * Everything the backends reported while open (a torn tail cut back on open, corruption found by a
   * scan, a corrupt snapshot skipped by loadLatest), in order. Collected through the `reporter` option
   * instead of process warnings, so each command can show them as findings.
   */
  readonly reports: PersistenceReport[];
  close(): Promise<void>;
}

/** "lmdb /data/journal", for headers and messages. */
export function describeStore(config: StoreConfig | undefined): string {
  if (!config) return 'none';
  return config.path === undefined ? config.provider : `${config.provider} ${config.path}`;
}

/**
 * Opens what `stores` names through the public route (createPersistence, so custom providers named in a
 * config work too). A half that was not given is opened as an unused in-memory store and reported as
 * undefined, since createPersistence always opens both.
 *
 * With `readOnly`, the file and LMDB stores open read-only: no lock is taken (a running application may
 * keep writing), nothing is created, removed, cut back, compacted or migrated, and any write would be
 * refused.
 */
export async function openStores(
  stores: ResolvedStores,
  options: { readOnly?: boolean } = {},
): Promise<OpenedStores> {
  const reports: PersistenceReport[] = [];
  const reporter = (report: PersistenceReport) => {
    reports.push(report);
  };
  const readOnlyCapable = (provider: string) => provider === 'lmdb' || provider === 'file';
  const section = (config: StoreConfig | undefined): StoreConfig =>
    config
      ? {
          ...config,
          reporter,
          ...(options.readOnly && readOnlyCapable(config.provider) ? { readOnly: true } : {}),
        }
      : { provider: 'memory' };
  const persistence = await createPersistence({
    journal: section(stores.journal),
    snapshots: section(stores.snapshots),
  });
  return {
    journal: stores.journal ? persistence.journal : undefined,
    snapshots: stores.snapshots ? persistence.snapshots : undefined,
    offsets: stores.journal ? persistence.offsets : undefined,
    journalConfig: stores.journal,
    snapshotsConfig: stores.snapshots,
    reports,
    close: () => persistence.close(),
  };
}
